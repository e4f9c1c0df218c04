"""THE sampling loop, written once: chains in a prior's code space moved by a :class:`Kernel`.

A kernel is an object, as an optimizer is in captum's ``optimize(optimizer=…)``: it knows
one update rule (the PPGN step of :mod:`.ppgn`, MALA/HMC/MAP of :mod:`.exact`) and nothing
about buffers, progress bars or NaN policies. :func:`run_chains` owns everything the rules
share::

    kernel, prior = kernel.bind(prior, condition, preset, starts)   # defaults resolved
    ids, rngs, h0 = start_chains(...)                               # neurovis.sampling.rng
    state = kernel.start(run, h0)                                   # evaluation 0
    for t in range(steps):
        record sample t                (kernel.record(state, t): code, p, activation, trace)
        step = kernel.step(run, state, t)                           # mcmc.Step
        tally step.evaluations, step.accepted, step.accept_prob (chains alive before the step)
        state = step.state
    record sample ``steps``; Chains(codes, probs, activations, trace, failed, ids, config)

A kernel reports what went NaN/±Inf with :meth:`Run.fail` (the one NaN policy: raise a
:class:`~neurovis.ChainDivergedError` naming chain, step and what, or mark the chain failed),
and reads :attr:`Run.failed` to freeze failed chains. The loop never imports a kernel module;
kernels import this module, and never :func:`neurovis.sample` or :mod:`.batched`.
"""

from __future__ import annotations

import operator
import os
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
from tqdm.auto import tqdm

from neurovis._utils.speed import compile_generator, to_channels_last
from neurovis._utils.torch_utils import eval_mode
from neurovis._version import __version__
from neurovis.chains import Chains
from neurovis.conditions import Condition
from neurovis.errors import ChainDivergedError, NeurovisError
from neurovis.priors.base import Prior
from neurovis.sampling.mcmc import Step
from neurovis.sampling.rng import start_chains

# Intel MKL picks its sgemm kernel by matrix size, so a row of a batched matmul may differ in
# the last bit from the same row computed in a smaller batch, and MALA chains amplify such
# bits. Strict CNR mode makes each row's result independent of the batch size (and of the
# thread count), so chains sampled together (several units in one batch, neurovis.sampling.batched)
# equal chains sampled alone, on Intel CPUs (on AMD ones MKL ignores strict mode and rows
# differ in the last bit; tests/test_scale.py probes which). Batched runs cost the same; a
# one-chain-at-a-time loop at paper size runs about a third slower (README, "Throughput"),
# measured on the Intel machine. MKL reads the setting at its first
# call: it holds when neurovis is imported before any CPU matmul. A value the user set is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

PRECISIONS = ("fp32", "bf16")
"""``precision=`` values: float32, or the network passes under bfloat16 autocast."""

ON_NAN = ("raise", "mark")
"""``on_nan=`` values (see :meth:`Run.fail`)."""


def nonfinite(values: dict[str, torch.Tensor | None], allow_neg_inf: Sequence[str] = ()) -> list[str]:
    """Per chain, what is NaN or ±Inf among ``values`` (name -> ``(B, ...)``), in words.

    Returns ``B`` strings, ``""`` for a chain whose values are all finite, else e.g.
    ``"probability NaN, activation +Inf"``. Names in ``allow_neg_inf`` may be ``-inf``
    (a log density of zero: the point is outside the support, not broken).
    """
    out: list[list[str]] | None = None
    for name, value in values.items():
        if value is None:
            continue
        v = value.detach().float().reshape(value.shape[0], -1).cpu()
        if out is None:
            out = [[] for _ in range(v.shape[0])]
        nan, pos, neg = torch.isnan(v).any(1), (v == torch.inf).any(1), (v == -torch.inf).any(1)
        if name in allow_neg_inf:
            neg = torch.zeros_like(neg)
        for b in torch.nonzero(nan | pos | neg).flatten().tolist():
            kinds = [k for k, hit in (("NaN", nan[b]), ("+Inf", pos[b]), ("-Inf", neg[b])) if hit]
            out[b].append(f"{name} {'/'.join(kinds)}")
    return [", ".join(w) for w in out] if out is not None else []


def diverged(ids: Sequence[int], row: int, step: int, what: str, advice: str) -> ChainDivergedError:
    """The error for chain row ``row`` going non-finite at ``step``: names chain, step and what."""
    return ChainDivergedError(f"chain {ids[row]} produced NaN/Inf at step {step} ({what}); {advice}",
                              chain=ids[row], step=step)


@dataclass
class Run:
    """One sampling run as a kernel sees it: the target, each chain's randomness, the NaN policy.

    Attributes:
        prior, condition: what is sampled (the prior as :meth:`Kernel.bind` returned it).
        ids: the chains' ids in the seeded family; ``rngs``: their CPU generators (same order).
        steps: steps of the run (sample ``steps`` is the last, never stepped from).
        precision: ``"fp32"`` or ``"bf16"`` (for the kernel's network passes).
        on_nan: ``"raise"`` or ``"mark"`` (see :meth:`fail`).
        advice: what the NaN error suggests (the kernel's :attr:`Kernel.advice`).
        failed: ``(C,)`` bool on the CPU: chains marked failed so far (frozen by the kernel).
        failures: ``{"chain", "step", "what"}`` per failed chain, in the order they failed.
        attempts, accepts, accept_prob_sum: ``(C,)`` per chain: steps taken while alive, of
            them accepted, and the summed MH acceptance probability (filled by the loop).
    """

    prior: Prior
    condition: Condition
    ids: list[int]
    rngs: list[torch.Generator]
    steps: int
    precision: str
    on_nan: str
    advice: str
    failed: torch.Tensor = field(init=False)
    failures: list[dict[str, Any]] = field(default_factory=list, init=False)
    attempts: torch.Tensor = field(init=False)
    accepts: torch.Tensor = field(init=False)
    accept_prob_sum: torch.Tensor = field(init=False)
    _noted: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        self._noted = [""] * n
        self.failed = torch.zeros(n, dtype=torch.bool)
        self.attempts = torch.zeros(n, dtype=torch.long)
        self.accepts = torch.zeros(n, dtype=torch.long)
        self.accept_prob_sum = torch.zeros(n, dtype=torch.float64)

    @property
    def chains(self) -> int:
        """Number of chains ``C`` (rows of every batch)."""
        return len(self.ids)

    def note(self, whats: Sequence[str]) -> None:
        """Keep, per chain, the first non-empty entry of ``whats`` (what went non-finite in an
        evaluation) until the next :meth:`fail`, which acts on it."""
        self._noted = [old or new for old, new in zip(self._noted, whats)]

    def fail(self, whats: Sequence[str], t: int) -> None:
        """The NaN policy, for chains with a non-empty entry in ``whats`` (one per chain) or a
        :meth:`note` since the last call (which comes first), at step ``t``.

        Chains already failed are skipped. ``on_nan="raise"``: a
        :class:`~neurovis.ChainDivergedError` for the first such chain (its id, ``t`` and its
        entry); ``"mark"``: each is marked in :attr:`failed` and recorded in :attr:`failures`.
        """
        whats = [noted or what for noted, what in zip(self._noted, whats)]
        self._noted = [""] * self.chains
        new = [b for b, w in enumerate(whats) if w and not self.failed[b]]
        if not new:
            return
        if self.on_nan == "raise":
            raise diverged(self.ids, new[0], t, whats[new[0]], self.advice)
        for b in new:
            self.failures.append({"chain": self.ids[b], "step": t, "what": whats[b]})
        self.failed = self.failed | torch.isin(torch.arange(self.chains), torch.tensor(new))

    def acceptance(self, values: torch.Tensor) -> list[float | None]:
        """Per chain ``values / attempts`` rounded to 6 digits (``None`` where no step was
        taken alive): :attr:`accepts` gives the acceptance rate, :attr:`accept_prob_sum` the
        mean MH acceptance probability."""
        return [round(float(a) / int(b), 6) if int(b) else None for a, b in zip(values, self.attempts)]


class Kernel(ABC):
    """One update rule behind the loop's protocol (:func:`run_chains` calls these in order).

    Attributes:
        label: the progress bar's label.
        advice: the second half of the NaN error ("lower lr or eps, ...").
        precisions: the ``precision`` values the kernel supports.
    """

    label: ClassVar[str] = "sampling"
    advice: ClassVar[str] = "check the model for NaN, or pass on_nan='mark' to drop failed chains"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    def bind(self, prior: Prior, condition: Condition, preset: str | None = None,
             starts: str | None = None) -> tuple["Kernel", Prior]:
        """This kernel with every default resolved for ``prior`` (and checked), and the prior
        the chains run in. ``preset``/``starts`` choose a sampling method
        (:func:`neurovis.method.resolve_method`); kernels without one refuse them."""
        if (preset or "recommended") != "recommended" or starts is not None:
            raise NeurovisError(f"preset and starts choose a PPGN method; {type(self).__name__} starts from the "
                                "prior's initial codes (pass init= for other starts)")
        return self, prior

    @abstractmethod
    def start(self, run: Run, h0: torch.Tensor) -> Any:
        """The state at sample 0 from start codes ``h0`` ``(C, *code_shape)``: one evaluation."""

    @abstractmethod
    def step(self, run: Run, state: Any, t: int) -> Step:
        """Step ``t``: from sample ``t``'s state to sample ``t + 1``'s, as an
        :class:`~neurovis.sampling.mcmc.Step` (new state, accepted ``(C,)``, acceptance
        probability ``(C,)``, evaluations made). Failed chains stay where they are."""

    @abstractmethod
    def record(self, state: Any, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | float]:
        """What the loop stores of sample ``t``: ``(codes (C, *code_shape), probability (C,),
        activation (C,), trace)``; the trace (``Chains.eps1``) is ``(C,)`` or one number."""

    @abstractmethod
    def config(self, run: Run) -> dict[str, Any]:
        """The kernel's keys of ``Chains.config`` (``rule`` and its settings), after the run."""


def _validate(chains: int, steps: int, seed: int, on_nan: str, precision: str, kernel: Kernel) -> None:
    if not isinstance(kernel, Kernel):
        raise NeurovisError(f"kernel must be a sampling kernel (nv.sampling.PPGN, MALA, HMC or MAP), got "
                            f"{type(kernel).__name__}")
    try:
        operator.index(seed)
    except TypeError:
        raise NeurovisError(f"seed must be an integer, got {seed!r} (eps, lr, rule and reset_every are keywords: "
                            "eps=...)") from None
    if chains < 1 or steps < 0:
        raise NeurovisError(f"need chains ≥ 1 and steps ≥ 0, got chains={chains}, steps={steps}")
    if on_nan not in ON_NAN:
        raise NeurovisError(f"on_nan must be 'raise' or 'mark', got {on_nan!r}")
    if precision not in PRECISIONS:
        raise NeurovisError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision not in kernel.precisions:
        raise NeurovisError(f"precision={precision!r} is not for {type(kernel).__name__}; it runs in "
                            f"{', '.join(kernel.precisions)}")


@dataclass(frozen=True)
class LoopOptions:
    """How :func:`run_chains` runs, beyond chains, steps and seed: :func:`neurovis.sample`'s
    keywords of the same names (see there), gathered once.

    Attributes:
        preset, starts: passed to :meth:`Kernel.bind` (the PPGN method's preset and starts).
        init: start codes ``(chains, *code_shape)``, or ``None`` for the prior's starts.
        chain_ids: the chains' indices in the seeded family (default ``0..chains-1``).
        on_nan: ``"raise"`` or ``"mark"``.
        progress: a progress bar on stderr.
        precision: ``"fp32"`` or ``"bf16"`` (kernels that allow it).
        channels_last, compile: the speed options (:mod:`neurovis._utils.speed`).
    """

    preset: str | None = None
    starts: str | None = None
    init: torch.Tensor | None = None
    chain_ids: Sequence[int] | None = None
    on_nan: str = "raise"
    progress: bool = True
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool | str = False


def run_chains(
    prior: Prior,
    condition: Condition,
    kernel: Kernel,
    chains: int = 10,
    steps: int = 200,
    seed: int = 0,
    options: LoopOptions | None = None,
) -> Chains:
    """Run ``chains`` chains of ``steps`` steps of ``kernel`` in one batch (see the module docstring).

    The arguments are :func:`neurovis.sample`'s, with ``kernel`` a :class:`Kernel` (not
    ``None``) and the rest in ``options`` (default :class:`LoopOptions`). Returns
    :class:`~neurovis.Chains`: codes ``(C, steps + 1, *code_shape)``, probabilities,
    activations and the kernel's trace ``(C, steps + 1)``, failed ``(C,)``, and a config of
    the common keys plus :meth:`Kernel.config`'s.
    """
    o = options or LoopOptions()
    preset, starts, init, chain_ids, on_nan = o.preset, o.starts, o.init, o.chain_ids, o.on_nan
    progress, precision, channels_last, compile = o.progress, o.precision, o.channels_last, o.compile
    _validate(chains, steps, seed, on_nan, precision, kernel)
    kernel, prior = kernel.bind(prior, condition, preset, starts)
    if channels_last:
        to_channels_last(prior.modules() + condition.modules())
    if compile:
        compile_generator(prior, "inductor" if compile is True else str(compile))
    started = time.perf_counter()
    ids, rngs, h0 = start_chains(prior, chains, seed, chain_ids, init)
    run = Run(prior, condition, ids, rngs, steps, precision, on_nan, kernel.advice)

    n = steps + 1
    codes = torch.empty((chains, n, *prior.code_shape), dtype=torch.float32)
    probs = torch.empty((chains, n), dtype=torch.float32)
    acts = torch.empty((chains, n), dtype=torch.float32)
    trace = torch.empty((chains, n), dtype=torch.float32)

    def record(t: int, state: Any) -> None:
        h, prob, act, tr = kernel.record(state, t)
        codes[:, t] = h.detach().cpu()
        probs[:, t] = torch.where(run.failed, torch.nan, prob.float().cpu())
        acts[:, t] = torch.where(run.failed, torch.nan, act.float().cpu())
        trace[:, t] = tr.cpu() if isinstance(tr, torch.Tensor) else tr

    evaluations = 0
    with eval_mode(prior.modules() + condition.modules()), tqdm(
        total=steps, disable=not progress, file=sys.stderr, desc=kernel.label, unit="step", leave=False
    ) as bar:
        state = kernel.start(run, h0)
        evaluations += 1
        for t in range(steps):
            record(t, state)
            live = ~run.failed
            step = kernel.step(run, state, t)
            evaluations += step.evaluations
            run.attempts += live.long()
            run.accepts += (step.accepted.cpu() & live).long()
            run.accept_prob_sum += torch.where(live, step.accept_prob.double().cpu(), 0.0)
            state = step.state
            bar.update(1)
        record(steps, state)

    config = {
        "chains": chains,
        "steps": steps,
        "seed": seed,
        **kernel.config(run),
        "precision": precision,
        "channels_last": bool(channels_last),
        "compile": compile if isinstance(compile, str) else bool(compile),
        "chain_ids": ids,
        "init": "given" if init is not None else ("bank" if getattr(prior, "start_codes", None) is not None else "random"),
        "condition": condition.describe(),
        "probability": condition.prob_meaning,
        "prior": prior.describe(),
        "device": str(prior.device),
        "evaluations": evaluations,
        "failures": run.failures,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "neurovis": __version__,
        "torch": torch.__version__,
    }
    return Chains(codes, probs, acts, trace, run.failed, torch.tensor(ids), config, prior, condition)
