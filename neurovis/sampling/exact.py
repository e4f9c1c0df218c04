"""Exact samplers of ``p(h | y)`` for priors with an evaluable density (paper 004).

For DGN-AM's Gaussian prior ``p(h) = N(0, I)`` the posterior over the code is known up to a
constant::

    log p(h | y) = log p(y | G(h)) + log p(h) + const

so it can be sampled exactly (MALA or HMC with a Metropolis–Hastings correction) or
maximised (MAP with clipping, the original DGN-AM), instead of the MALA-approx rule of
:func:`neurovis.sample`. The kernel functions live in :mod:`neurovis.sampling.mcmc`; this module
builds the target from a prior and a condition and wraps them as kernel objects for the
loop (:func:`neurovis.sampling.loop.run_chains`): :class:`MALA`, :class:`HMC` and
:class:`MAP`, e.g. ``nv.sample(prior, cond, kernel=nv.sampling.MALA(step_size=1e-2))``.

The condition's log-likelihood ``log p(y | x)`` (see :func:`likelihood_condition`):

* a class or a unit (:class:`~neurovis.ClassCondition`, :class:`~neurovis.UnitCondition`,
  or any dataclass condition with a ``gradient`` field) with gradient ``reference``,
  ``log_softmax`` or ``softmax``: the exact
  ``log softmax(a)_k`` (the condition is re-made with ``gradient="log_softmax"``);
* with gradient ``logit``: the raw activation ``a_k`` is used as an *energy*,
  ``p(y | x) ∝ exp(a_k)``; this is 004's Eq. (1)–(2), which reads DGN-AM's activation
  ``φ(G(z))`` as ``log p(class | G(z))`` up to a constant. It is not a normalised
  likelihood, and the chain follows whatever scale the activation has;
* :class:`~neurovis.CallableCondition`: the function's output, which is ``log p(y | x)`` by
  contract; :class:`~neurovis.CombinedCondition`: the weighted sum of its parts' (resolved)
  log-likelihoods; :class:`~neurovis.InpaintCondition`: the inner condition's plus the
  ``ε4`` context term ``−ε4 ‖(1 − M) ⊙ (x_real − G(h))‖²`` (a Gaussian likelihood of the
  known pixels);
* any other condition: its ``objective`` (plus ``extra``), taken as ``log p(y | x)`` up to
  a constant.

Differences from :func:`neurovis.sample`: the prior's ``code_clip`` is *not* applied (the
Gaussian density lives on all of ``R^D``; pass ``bounds="prior"`` to use it), the prior's
``augment`` (random jitter) is not applied (a random target would break the MH step), and
there are no ε's or resets.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Callable, ClassVar, Sequence

import torch

from neurovis.chains import Chains
from neurovis.conditions import (
    GRADIENTS,
    CallableCondition,
    ClassCondition,
    CombinedCondition,
    Condition,
    InpaintCondition,
    UnitCondition,
)
from neurovis.errors import NeurovisError
from neurovis.method import EXACT_RULES
from neurovis.priors.base import Prior
from neurovis.sampling.loop import Kernel, LoopOptions, Run, nonfinite, run_chains
from neurovis.sampling.mcmc import (
    Bounds,
    LogpGrad,
    State,
    Step,
    check_bounds,
    clip,
    evaluate,
    hmc_step,
    mala_step,
    map_step,
    noise_schedule,
    step_schedule,
)

RULES = EXACT_RULES
"""The exact kernels' names (``Chains.config["rule"]``, ``nv.sample(rule=...)``; named in :mod:`neurovis.method`)."""


def prior_log_density(prior: Prior) -> Callable[[torch.Tensor], torch.Tensor]:
    """The prior's ``log p(h)``: codes ``(B, *S)`` -> ``(B,)``, differentiable.

    A prior with a ``log_density(h)`` method uses it (:class:`~neurovis.GaussianPrior`,
    DGN-AM's ``N(0, I)``, has one). Any other prior raises :class:`NeurovisError`.
    """
    own = getattr(prior, "log_density", None)
    if callable(own):
        return own
    raise NeurovisError(
        f"{type(prior).__name__} has no evaluable density, so rule='mala'|'hmc'|'map' cannot use it; "
        "use rule='faithful' or 'textbook' with it, or a GaussianPrior (DGN-AM) for the exact rules"
    )


def likelihood_condition(condition: Condition) -> tuple[Condition, str]:
    """The condition whose ``objective`` (+ ``extra``) is ``log p(y | x)``, and what it is.

    See the module docstring for the rules. Returns ``(condition, description)``; the
    probability and activation the new condition reports are those of ``condition``.
    """
    if isinstance(condition, CombinedCondition):
        parts = [likelihood_condition(c) for c in condition.conditions]
        text = "weighted sum of: " + "; ".join(d for _, d in parts)
        return replace(condition, conditions=tuple(c for c, _ in parts)), text
    if isinstance(condition, InpaintCondition):
        inner, text = likelihood_condition(condition.condition)
        return replace(condition, condition=inner), f"{text}; plus the eps4 context term"
    if isinstance(condition, CallableCondition):
        return condition, "the callable's log p(y|x)"
    if isinstance(condition, (ClassCondition, UnitCondition)) or _has_gradient_option(condition):
        if condition.gradient == "logit":  # type: ignore[attr-defined]
            return condition, "energy: raw activation a_k as log p(y|x) up to a constant (004 Eq. 1-2)"
        return replace(condition, gradient="log_softmax"), "log softmax(a)_k (exact log p(y|x))"  # type: ignore[type-var]
    return condition, f"{type(condition).__name__}.objective as log p(y|x) up to a constant"


def _has_gradient_option(condition: Condition) -> bool:
    """A dataclass condition with a ``gradient`` field (reference/log_softmax/logit/softmax)."""
    if not is_dataclass(condition):
        return False
    names = {f.name for f in fields(condition) if f.init}
    return "gradient" in names and getattr(condition, "gradient", None) in GRADIENTS


def log_posterior(prior: Prior, condition: Condition) -> LogpGrad:
    """``log p(h | y)`` up to a constant, as a target for :mod:`neurovis.sampling.mcmc`.

    Returns a function ``h (B, *code_shape) -> (logp (B,), grad (B, *code_shape), prob (B,),
    activation (B,))`` with ``logp = log p(y | G(h)) + log p(h)``, ``grad`` its gradient
    in ``h``, and the condition's probability and raw activation at ``G(h)`` (all detached).
    The models must be in eval mode (samples independent within the batch).
    """
    log_prior = prior_log_density(prior)
    cond, _ = likelihood_condition(condition)

    def logp_and_grad(h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.enable_grad():
            hg = h.detach().requires_grad_(True)
            result = cond.evaluate(prior.decode(hg), prior.pixel_space)
            loglik = result.objective if result.extra is None else result.objective + result.extra
            logp = loglik.to(hg.dtype) + log_prior(hg)
            (grad,) = torch.autograd.grad(logp.sum(), hg, allow_unused=True) if logp.requires_grad else (None,)
        grad = torch.zeros_like(hg) if grad is None else grad
        return logp.detach(), grad.detach(), result.prob.detach().float(), result.activation.detach().float()

    return logp_and_grad


def _resolve_bounds(bounds: Any, prior: Prior) -> Any:
    if isinstance(bounds, str):
        if bounds != "prior":
            raise NeurovisError(f"bounds must be None, 'prior' or (lower, upper), got {bounds!r}")
        clip_range = getattr(prior, "code_clip", None)
        if clip_range is None:
            raise NeurovisError(f"bounds='prior' but {type(prior).__name__} has no code_clip; pass (lower, upper)")
        return tuple(v if isinstance(v, torch.Tensor) else float(v) for v in clip_range)
    return bounds


def _describe_bounds(box: Bounds | None) -> Any:
    if box is None:
        return None
    lower, upper = box
    if lower.numel() == 1 and upper.numel() == 1:
        return [float(lower), float(upper)]
    return {
        "type": "per-dimension",
        "lower": {"min": float(lower.min()), "mean": float(lower.float().mean()), "max": float(lower.max())},
        "upper": {"min": float(upper.min()), "mean": float(upper.float().mean()), "max": float(upper.max())},
    }


def _finite_number(name: str, value: float, low: float, strict: bool) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or not (v > low if strict else v >= low):
        raise NeurovisError(f"{name} must be a finite number {'>' if strict else '≥'} {low:g}, got {value!r}")


def _check_leapfrog(leapfrog_steps: Any) -> None:
    try:
        whole = operator.index(leapfrog_steps) >= 1 and not isinstance(leapfrog_steps, bool)
    except TypeError:
        whole = False
    if not whole:
        raise NeurovisError(f"leapfrog_steps must be an integer ≥ 1, got {leapfrog_steps!r}")


_CHECKS: dict[str, Callable[[Any], None]] = {
    "step_size": lambda v: _finite_number("step_size", v, 0.0, strict=True),
    "leapfrog_steps": _check_leapfrog,
    "noise": lambda v: _finite_number("noise", v, 0.0, strict=True),
    "noise_anneal": lambda v: _finite_number("noise_anneal", v, 0.0, strict=False),
    "step_decay": lambda v: _finite_number("step_decay", v, 0.0, strict=False),
    "step_decay_offset": lambda v: _finite_number("step_decay_offset", v, 0.0, strict=True),
}
"""One-line checks of the exact kernels' numeric settings, by name."""


@dataclass(frozen=True)
class _Exact(Kernel):
    """What MALA, HMC and MAP share: the target ``log p(h | y)`` (:func:`log_posterior`), a
    step-size schedule ``α_t = α (b / (b + t))^γ`` and optional bounds."""

    step_size: float = 1e-2
    step_decay: float = 0.0
    step_decay_offset: float = 1.0
    bounds: str | Bounds | tuple[float, float] | None = None

    rule: ClassVar[str] = ""
    advice = "lower step_size, check the model for NaN, or pass on_nan='mark' to drop failed chains"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _CHECKS:
                _CHECKS[f.name](getattr(self, f.name))
        if getattr(self, "clip_after_mh", False) and self.bounds is None:
            raise NeurovisError("clip_after_mh=True needs bounds=(lower, upper), e.g. from neurovis.sampling.mcmc.code_bounds")

    @property
    def label(self) -> str:  # type: ignore[override]
        """The progress bar's label: the rule's name."""
        return self.rule

    def _truncated(self) -> bool:
        """Whether bounds truncate the target (MH rejects proposals outside the box)."""
        return False

    def bind(self, prior: Prior, condition: Condition, preset: str | None = None,
             starts: str | None = None) -> tuple["_Exact", Prior]:
        """The target for ``prior`` and ``condition`` (priors without a density are refused)
        and the bounds resolved against the prior's codes."""
        super().bind(prior, condition, preset, starts)
        fn = log_posterior(prior, condition)  # raises for priors without a density
        like = torch.zeros((1, *prior.code_shape), dtype=torch.float32, device=prior.device)
        box = check_bounds(_resolve_bounds(self.bounds, prior), like)
        bound = replace(self)
        texts = likelihood_condition(condition)[1], getattr(prior, "density", None) or f"{type(prior).__name__}.log_density"
        for name, value in (("_fn", fn), ("_box", box), ("_texts", texts)):
            object.__setattr__(bound, name, value)
        return bound, prior

    def _target(self, run: Run) -> LogpGrad:
        """The log posterior, noting per chain what came out non-finite (:meth:`Run.note`): a
        log density NaN or +Inf, or at a point of finite density a gradient, probability or
        activation NaN/±Inf. A log density of -Inf (zero density) is a point the MH step
        rejects, not a failure."""
        fn = self._fn  # type: ignore[attr-defined]

        def checked(hh: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = fn(hh)
            logp = out[0]
            zero = (logp == -torch.inf).cpu()
            whats = nonfinite({"log density": logp}, allow_neg_inf=("log density",))
            rest = nonfinite({"gradient": out[1], "probability": out[2], "activation": out[3]})
            run.note([whats[b] or ("" if zero[b] else rest[b]) for b in range(run.chains)])
            return out

        return checked

    def start(self, run: Run, h0: torch.Tensor) -> State:
        """Sample 0: the start (projected into the box of a truncated target), evaluated."""
        box = self._box  # type: ignore[attr-defined]
        h = clip(h0, box) if box is not None and self._truncated() else h0
        state = evaluate(self._target(run), h)
        run.fail(["state NaN/Inf" if bad else "" for bad in (~state.finite.cpu()).tolist()], 0)
        return state

    def alpha(self, t: int) -> float:
        """The step size ``α_t`` at step ``t``."""
        return step_schedule(self.step_size, t, self.step_decay, self.step_decay_offset)

    def _move(self, state: State, target: LogpGrad, t: int, run: Run) -> Step:
        """The rule's step from ``state`` (one of :mod:`neurovis.sampling.mcmc`'s)."""
        raise NotImplementedError

    def step(self, run: Run, state: State, t: int) -> Step:
        """Step ``t`` of the rule; chains that failed in it keep their state."""
        step = self._move(state, self._target(run), t, run)
        run.fail(["state NaN/Inf" if bad else "" for bad in (~step.state.finite.cpu()).tolist()], t)
        kept = step.state.where((~run.failed).to(step.state.h.device), state)
        return Step(kept, step.accepted, step.accept_prob, step.evaluations)

    def record(self, state: State, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """Sample ``t``: codes, the condition's probability and activation, ``α_t`` (the trace)."""
        prob, act = state.aux
        return state.h, prob, act, self.alpha(t)

    def _eps(self) -> list[float] | None:
        """The ``(ε1, ε2, ε3)`` the step equals in Eq. 11 for a Gaussian prior (``None``: no such)."""
        return None

    def config(self, run: Run) -> dict[str, Any]:
        """The rule, its settings, the target's parts and the per-chain acceptance."""
        metropolis = self.rule != "map"
        log_likelihood, log_prior = self._texts  # type: ignore[attr-defined]
        return {
            "eps": self._eps(),
            "lr": None,
            "lr_end": None,
            "rule": self.rule,
            "step_size": float(self.step_size),
            "step_decay": float(self.step_decay),
            "step_decay_offset": float(self.step_decay_offset),
            "leapfrog_steps": operator.index(getattr(self, "leapfrog_steps")) if self.rule == "hmc" else None,
            "noise": float(getattr(self, "noise")) if self.rule == "mala" else None,
            "noise_anneal": float(getattr(self, "noise_anneal")) if self.rule == "mala" else None,
            "bounds": _describe_bounds(self._box),  # type: ignore[attr-defined]
            "clip_after_mh": bool(getattr(self, "clip_after_mh", False)),
            "reset_every": 0,
            "log_likelihood": log_likelihood,
            "log_prior": log_prior,
            "acceptance": run.acceptance(run.accepts) if metropolis else None,
            "acceptance_prob": run.acceptance(run.accept_prob_sum) if metropolis else None,
        }


@dataclass(frozen=True)
class _Metropolis(_Exact):
    """An exact kernel with an MH step (MALA, HMC): ``clip_after_mh`` clips into ``bounds``
    after it (no longer exact); otherwise proposals outside ``bounds`` are rejected."""

    clip_after_mh: bool = False

    def _truncated(self) -> bool:
        return not self.clip_after_mh


@dataclass(frozen=True)
class MALA(_Metropolis):
    """Metropolis-adjusted Langevin (004, Algorithm 2): :func:`~neurovis.sampling.mcmc.mala_step`.

    Args:
        step_size: ``α`` at step 0; ``step_decay``, ``step_decay_offset``: ``γ``, ``b`` of
            ``α_t = α (b / (b + t))^γ`` (Teh et al.; ``γ = 0``: constant).
        noise: multiplier of the noise ``√(2α)`` (``> 0``); ``noise_anneal``: ``γ`` of a
            noise variance decaying as ``(1 + t)^(−γ)`` (Neelakantan et al. suggest 0.55);
            the MH step keeps the chain exact for any value.
        bounds: ``None``, ``"prior"`` (the prior's ``code_clip``), ``(low, high)`` numbers or
            per-dimension ``(lower, upper)`` tensors (:func:`~neurovis.sampling.mcmc.code_bounds`):
            proposals outside are rejected (the posterior truncated to the box; a start
            outside is projected onto it: prefer an ``init`` strictly inside).
        clip_after_mh: clip into ``bounds`` after the MH step (004's "MALA with clipping";
            not an exact sampler any more).
    """

    noise: float = 1.0
    noise_anneal: float = 0.0

    rule = "mala"

    def _move(self, state: State, target: LogpGrad, t: int, run: Run) -> Step:
        return mala_step(state, target, self.alpha(t), run.rngs, noise=noise_schedule(self.noise, t, self.noise_anneal),
                         bounds=self._box, clip_after_mh=self.clip_after_mh)  # type: ignore[attr-defined]

    def _eps(self) -> list[float] | None:
        return [float(self.step_size), float(self.step_size), float(math.sqrt(2 * self.step_size) * self.noise)]


@dataclass(frozen=True)
class HMC(_Metropolis):
    """Hamiltonian Monte Carlo (unit mass, leapfrog, MH): :func:`~neurovis.sampling.mcmc.hmc_step`.

    Args:
        step_size: the leapfrog step ``ε`` at step 0 (decaying as for :class:`MALA`).
        leapfrog_steps: ``L ≥ 1`` leapfrog steps, i.e. evaluations, per step.
        bounds, clip_after_mh: as for :class:`MALA` (only the end point meets the box).
    """

    leapfrog_steps: int = 10

    rule = "hmc"

    def _move(self, state: State, target: LogpGrad, t: int, run: Run) -> Step:
        return hmc_step(state, target, self.alpha(t), self.leapfrog_steps, run.rngs,
                        bounds=self._box, clip_after_mh=self.clip_after_mh)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MAP(_Exact):
    """MAP with clipping (004, Algorithm 1; the original DGN-AM): gradient ascent
    ``h ← clip(h + α_t ∇log p(h | y))`` into ``bounds`` (``None``: plain ascent; the start is
    not clipped), :func:`~neurovis.sampling.mcmc.map_step`. Settings as for :class:`MALA`."""

    rule = "map"

    def _move(self, state: State, target: LogpGrad, t: int, run: Run) -> Step:
        return map_step(state, target, self.alpha(t), bounds=self._box)  # type: ignore[attr-defined]

    def _eps(self) -> list[float] | None:
        return [float(self.step_size), float(self.step_size), 0.0]


KERNELS: dict[str, type[_Exact]] = {"mala": MALA, "hmc": HMC, "map": MAP}
"""The exact kernel of each rule name."""

OPTIONS = ("step_size", "leapfrog_steps", "noise", "noise_anneal", "step_decay", "step_decay_offset", "bounds",
           "clip_after_mh")
"""The keywords of ``nv.sample(rule="mala"|"hmc"|"map", ...)`` (each rule uses its own)."""


def exact_kernel(rule: str, **options: Any) -> _Exact:
    """The kernel of ``rule`` from :func:`neurovis.sample`'s keywords (the ``rule=`` form).

    Every option in :data:`OPTIONS` is checked; those the rule does not use (e.g.
    ``leapfrog_steps`` for MALA) are then ignored, as they always were.
    """
    if rule not in KERNELS:
        raise NeurovisError(f"unknown rule {rule!r} for the exact samplers; use one of {', '.join(RULES)}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"sample() got an unexpected keyword argument {unknown[0]!r}")
    for name, value in options.items():
        if name in _CHECKS:
            _CHECKS[name](value)
    if rule == "map" and options.get("clip_after_mh"):
        raise NeurovisError("clip_after_mh is for rule='mala' or 'hmc'; rule='map' always clips to bounds")
    kernel = KERNELS[rule]
    names = {f.name for f in fields(kernel)}
    return kernel(**{k: v for k, v in options.items() if k in names})


def sample_exact(
    prior: Prior,
    condition: Condition,
    chains: int = 10,
    steps: int = 200,
    seed: int = 0,
    rule: str = "mala",
    *,
    init: torch.Tensor | None = None,
    chain_ids: Sequence[int] | None = None,
    on_nan: str = "raise",
    progress: bool = True,
    **options: Any,
) -> Chains:
    """Sample (or maximise) ``log p(h | y) = log p(y | G(h)) + log p(h)`` with ``chains`` chains.

    ``nv.sample(prior, condition, chains, steps, seed, kernel=exact_kernel(rule, **options),
    ...)``, kept for its callers.

    Args:
        prior: a prior with a density: :class:`~neurovis.GaussianPrior` (``N(0, I)``) or any
            prior with ``log_density(h) -> (B,)``. Others raise :class:`NeurovisError`.
        condition: what to sample for; its log-likelihood is resolved as in the module
            docstring (a ``logit`` condition is used as an energy).
        chains: number of chains, run as one batch.
        steps: steps per chain; each chain yields ``steps + 1`` samples (sample ``t`` is the
            state before step ``t``).
        seed: chain ``i`` draws all its randomness from ``(seed, i)``.
        rule: ``"mala"`` (004 Algorithm 2), ``"hmc"``, or ``"map"`` (004 Algorithm 1).
        options: the kernel's settings, see :class:`MALA`, :class:`HMC` and :class:`MAP`
            (and their defaults): ``step_size``, ``leapfrog_steps``, ``noise``,
            ``noise_anneal``, ``step_decay``, ``step_decay_offset``, ``bounds``,
            ``clip_after_mh``. Options the rule does not use are checked, then ignored.
        init: start codes ``(chains, *code_shape)``; default ``N(0, I)`` per chain.
        chain_ids: indices of these chains in the seeded family (default ``0..chains-1``).
        on_nan: ``"raise"`` (a :class:`~neurovis.ChainDivergedError` naming the chain, the
            step and what was non-finite) or ``"mark"`` (freeze the chain, mark it failed,
            NaN probabilities and activations from its next sample on, and
            ``{"chain", "step", "what"}`` in ``config["failures"]``), for any evaluation
            in a step (the start, a MALA/HMC proposal, a leapfrog point, a MAP step, a clip)
            whose log density is NaN or +Inf, or whose gradient, probability or activation
            is NaN/±Inf at a point of finite density. A log density of -Inf (zero density)
            is not a failure: MALA/HMC reject such a proposal.
        progress: show a progress bar on stderr.

    Returns:
        :class:`~neurovis.Chains`: ``codes`` ``(C, T+1, *code_shape)``, ``probs`` and
        ``activations`` ``(C, T+1)`` of the condition, ``eps1`` ``(C, T+1)`` holding the step
        size ``α_t`` in force (a MALA step is Eq. 11 with ``ε1 = ε2 = α_t`` and
        ``ε3 = √(2α_t)·noise_t`` for a Gaussian prior), and ``config`` with ``rule``,
        ``step_size``, ``leapfrog_steps``, ``evaluations`` (batched forward+backward passes:
        1 + one per MALA/MAP step, 1 + L per HMC step, plus one per clip that moved a
        chain), ``acceptance`` (per chain: the fraction of accepted proposals; ``None`` for
        MAP) and ``acceptance_prob`` (per chain: the mean MH acceptance probability).
    """
    kernel = exact_kernel(rule, **options)
    return run_chains(prior, condition, kernel, chains, steps, seed,
                      LoopOptions(init=init, chain_ids=chain_ids, on_nan=on_nan, progress=progress))
