"""The MALA-approx sampler (Eq. 11) with the reference code's faithful step (SPEC §1.2).

One step, all chains as one batch, one generator forward serving both passes::

    x  = G(h)                                   # decode (with grad)
    d  = ε1·(R(h) − h) + ε2·∂ log p(y|x)/∂h + N(0, ε3²)
    faithful:  h ← clip(h + lr · d / mean|d|)   # mean per chain (the reference code)
    textbook:  h ← clip(h + d)                  # Eq. 11 as written

Chain ``i``'s randomness (start, noise, resets, jitter) comes from its own generator seeded
by ``(seed, i)`` only, so chain 2 of a 4-chain run equals chain 2 of a 3-chain run.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from neurovis._version import __version__
from neurovis._utils.torch_utils import eval_mode
from neurovis._utils.speed import autocast as _autocast
from neurovis._utils.speed import compile_generator, to_channels_last
from neurovis.chains import Chains
from neurovis.conditions import Condition
from neurovis.errors import ChainDivergedError, NeurovisError
from neurovis.method import Method, resolve_method
from neurovis.priors.base import Prior

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

class NoStartBankWarning(UserWarning):
    """A run asked for real-image starts from a prior that has no start bank."""


RULES = ("faithful", "textbook")
EXACT_RULES = ("mala", "hmc", "map")  # neurovis.sampling.exact (which imports this module)
RESET_EPS1_RANGE = (1e-6, 1e-2)
PRECISIONS = ("fp32", "bf16")


def method_prior(prior: Prior, method: Method, preset: str | None = None) -> Prior:
    """The prior a run with ``method`` samples from: for ``preset="paper"``, the prior's
    paper treatment when it names one (``prior.paper_treatment(device)``, e.g. the glyph
    world's Noiseless Joint generator); its start bank switched on (``starts="bank"``) or
    off (``"random"``). Where a bank is asked for and the prior has none, one warning says
    so and the paper's random starts are used."""
    if preset == "paper" and getattr(prior, "paper_treatment", None) is not None:
        prior = prior.paper_treatment(prior.device)
    bank = getattr(prior, "start_codes", None)
    if method.starts == "random" and bank is not None:
        return prior.with_start_codes(None)  # type: ignore[attr-defined]
    if method.starts == "bank" and bank is None and not getattr(prior, "_warned_no_bank", False):
        prior._warned_no_bank = True  # type: ignore[attr-defined]  # once per prior, not once per batch of units
        warnings.warn(NoStartBankWarning(
            f"{getattr(prior, 'name', type(prior).__name__)} has no start bank (codes of real images), so chains "
            "start from N(0, 1) as in the paper; give it one with prior.with_real_starts(images) or --images DIR"))
    return prior


def chain_generator(seed: int, chain: int) -> torch.Generator:
    """The CPU random generator of chain ``chain`` under ``seed`` (independent streams)."""
    state = np.random.SeedSequence([int(seed), int(chain)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def start_chains(
    prior: Prior, chains: int, seed: int, chain_ids: Sequence[int] | None, init: torch.Tensor | None
) -> tuple[list[int], list[torch.Generator], torch.Tensor]:
    """``(ids, rngs, h0)`` of a run: the chain ids (default ``0..chains-1``), each chain's
    generator and the start codes ``(chains, *code_shape)`` float32 on the prior's device
    (``init`` if given, else a random start per chain)."""
    ids = list(range(chains)) if chain_ids is None else [int(i) for i in chain_ids]
    if len(ids) != chains:
        raise NeurovisError(f"chain_ids has {len(ids)} entries for {chains} chains")
    rngs = [chain_generator(seed, i) for i in ids]
    if init is not None:
        if tuple(init.shape) != (chains, *prior.code_shape):
            raise NeurovisError(
                f"init has shape {tuple(init.shape)}; expected ({chains}, {', '.join(map(str, prior.code_shape))})"
            )
        h = init.detach().to(device=prior.device, dtype=torch.float32).clone()
    else:
        h = prior.initial_codes(rngs).to(device=prior.device, dtype=torch.float32)
    return ids, rngs, h


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


def _validate(chains: int, steps: int, eps: Sequence[float], lr: float, rule: str, reset_every: int, on_nan: str,
              precision: str) -> None:
    if chains < 1 or steps < 0:
        raise NeurovisError(f"need chains ≥ 1 and steps ≥ 0, got chains={chains}, steps={steps}")
    if len(eps) != 3 or any(not np.isfinite(e) or e < 0 for e in eps):
        raise NeurovisError(f"eps must be three finite numbers ≥ 0 (ε1, ε2, ε3), got {tuple(eps)}")
    if rule not in RULES:
        raise NeurovisError(f"unknown rule {rule!r}; use one of {', '.join(RULES + EXACT_RULES)}")
    if not np.isfinite(lr) or lr <= 0:
        raise NeurovisError(f"lr must be a positive number, got {lr}")
    if reset_every < 0:
        raise NeurovisError(f"reset_every must be ≥ 0 (0 = never), got {reset_every}")
    if on_nan not in ("raise", "mark"):
        raise NeurovisError(f"on_nan must be 'raise' or 'mark', got {on_nan!r}")
    if precision not in PRECISIONS:
        raise NeurovisError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")


def sample(
    prior: Prior,
    condition: Condition,
    chains: int = 10,
    steps: int = 200,
    eps: Sequence[float] | None = None,
    lr: float | None = None,
    seed: int = 0,
    rule: str | None = None,
    reset_every: int | None = None,
    *,
    preset: str | None = None,
    starts: str | None = None,
    lr_end: float | None = None,
    init: torch.Tensor | None = None,
    chain_ids: Sequence[int] | None = None,
    on_nan: str = "raise",
    progress: bool = True,
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool | str = False,
    **exact: Any,
) -> Chains:
    """Run ``chains`` MALA-approx chains of ``steps`` steps in one batch.

    Every setting left ``None`` comes from the prior's method (:mod:`neurovis.method`):
    ``preset=None`` is the prior's recommended method (for a generator prior with a start
    bank: chains start and restart every 10 steps from the codes of real images),
    ``preset="paper"`` the paper's settings (its ε, ``N(0, 1)`` starts, no restarts; for a
    world prior such as ``glyphs`` also the paper's treatment, Noiseless Joint PPGN-h).
    The resolved method is ``chains.config["method"]``.

    ``rule="mala" | "hmc" | "map"`` runs the exact samplers of Xu et al. instead
    (:func:`neurovis.sampling.exact.sample_exact`: Metropolis-adjusted Langevin, Hamiltonian Monte
    Carlo, MAP with clipping) for priors with a density (:class:`~neurovis.GaussianPrior`);
    they ignore ``eps`` and ``lr`` and take ``step_size``, ``leapfrog_steps``, ``noise``,
    ``noise_anneal``, ``step_decay``, ``bounds`` and ``clip_after_mh`` as keywords.

    Args:
        prior: the prior (e.g. :class:`~neurovis.GeneratorPrior`); its networks' device is
            where the chains run.
        condition: what to sample for (unit, class, combination, callable, inpainting).
        chains: number of chains, run together as one batch.
        steps: steps per chain; each chain yields ``steps + 1`` samples.
        eps: ``(ε1, ε2, ε3)``: prior weight, condition weight, noise standard deviation
            (default: the method's; for generator priors (1e-5, 1, 1e-17)).
        lr: step size of the faithful rule (ignored by ``textbook``; default the method's, 1).
        seed: chain ``i`` draws all its randomness from ``(seed, i)``.
        rule: ``"faithful"`` (normalised step, the reference code; the default) or ``"textbook"``.
        reset_every: (default the method's: 10 recommended, 0 paper) every N steps, restart each chain from a new random start
            (``prior.initial_codes``: ``N(0, 1)``, or a real image's code for a prior made
            with ``with_real_starts``) with a new ``ε1 ~ U(1e-6, 1e-2)`` (the reference
            hidden-unit scripts use 100); 0 = never. No restart follows the last step,
            so every chain's last sample is a sampled state; starts are marked
            (:attr:`Chains.is_start`) and never kept by a report.
        preset: ``None``/``"recommended"`` or ``"paper"`` (see above).
        starts: ``"random"`` or ``"bank"`` (real-image codes); default the method's. Where
            ``bank`` is asked for and the prior has no bank, one warning says so and the
            chains start from the paper's random starts.
        lr_end: if set, lr goes linearly from ``lr`` to ``lr_end`` over the run.
        init: start codes ``(chains, *code_shape)`` (e.g. ``prior.encode(photo)``);
            default a random start per chain (``prior.initial_codes``).
        chain_ids: the indices of these chains in the seeded family (default
            ``0..chains-1``); lets a run be split across processes with identical results.
        on_nan: what to do when a chain goes NaN/±Inf, in what is stored (the condition's
            probability, activation, objective or extra term, at every sample, the last
            included) or in the update step: ``"raise"`` stops with a
            :class:`~neurovis.ChainDivergedError` naming the chain, the step and what was
            non-finite; ``"mark"`` freezes the chain, marks it failed, sets its
            probabilities and activations from that sample on to NaN and records
            ``{"chain", "step", "what"}`` in ``config["failures"]``.
        progress: show a progress bar on stderr.
        precision: ``"fp32"`` (default) or ``"bf16"``: the generator, condition and encoder
            passes run under ``torch.autocast`` in bfloat16 (codes, the update and the
            stored results stay float32). Measured on the glyph world (CPU): the step
            direction keeps a cosine of about 0.99 to fp32's; chains then drift apart as any
            perturbed chains do. Faster where the device has bf16 units (GPUs' tensor cores,
            CPUs with AMX/AVX-512 BF16: 2× at paper size on the dev machine); only for the
            faithful and textbook rules.
        channels_last: store the generator's, encoder's and condition network's 4-D
            weights as channels_last (NHWC), in place, so convolutions run in the layout
            GPUs' tensor cores read (:func:`neurovis._utils.speed.to_channels_last`).
        compile: ``True`` (inductor) or a backend name: ``torch.compile`` the prior's
            generator in place (:func:`neurovis._utils.speed.compile_generator`); the first
            steps pay the compile time.

    Returns:
        :class:`~neurovis.Chains` with codes, probabilities, activations, the ε1 trace and
        the full config.
    """
    if rule in EXACT_RULES:
        reset_every = reset_every or 0
        if reset_every or lr_end is not None or precision != "fp32" or channels_last or compile:
            raise NeurovisError(f"reset_every, lr_end, precision, channels_last and compile are for the faithful/textbook "
                                f"rules; rule={rule!r} takes step_size and step_decay and runs in fp32")
        from neurovis.sampling.exact import sample_exact

        return sample_exact(prior, condition, chains, steps, seed, rule, init=init, chain_ids=chain_ids,
                            on_nan=on_nan, progress=progress, **exact)
    if exact:
        raise NeurovisError(f"{', '.join(sorted(exact))} apply only to rule='mala', 'hmc' or 'map'")
    if rule is not None and rule not in RULES:
        raise NeurovisError(f"unknown rule {rule!r}; use one of {', '.join(RULES + EXACT_RULES)}")
    method = resolve_method(prior, preset, eps=None if eps is None else tuple(eps), lr=lr, rule=rule,
                            reset_every=reset_every, starts=starts)
    prior = method_prior(prior, method, preset)
    eps, lr, rule, reset_every = method.eps, method.lr, method.rule, method.reset_every
    _validate(chains, steps, eps, lr, rule, reset_every, on_nan, precision)
    if channels_last:
        to_channels_last(prior.modules() + condition.modules())
    if compile:
        compile_generator(prior, "inductor" if compile is True else str(compile))
    eps1_0, eps2, eps3 = (float(e) for e in eps)
    device = prior.device
    started = time.perf_counter()
    ids, rngs, h = start_chains(prior, chains, seed, chain_ids, init)
    eps1 = torch.full((chains,), eps1_0, device=device)
    failed = torch.zeros(chains, dtype=torch.bool)
    failures: list[dict[str, Any]] = []
    advice = "lower lr or eps, check the model for NaN, or pass on_nan='mark' to drop failed chains"

    def fail(whats: Sequence[str], t: int) -> None:
        """Stop (``raise``) or mark the chains with a non-empty entry in ``whats``, at step ``t``."""
        nonlocal failed
        new = [b for b, w in enumerate(whats) if w and not failed[b]]
        if not new:
            return
        if on_nan == "raise":
            raise diverged(ids, new[0], t, whats[new[0]], advice)
        for b in new:
            failures.append({"chain": ids[b], "step": t, "what": whats[b]})
            failed[b] = True

    n = steps + 1
    codes = torch.empty((chains, n, *prior.code_shape), dtype=torch.float32)
    probs = torch.empty((chains, n), dtype=torch.float32)
    acts = torch.empty((chains, n), dtype=torch.float32)
    eps1_trace = torch.empty((chains, n), dtype=torch.float32)
    view = (chains,) + (1,) * len(prior.code_shape)

    with eval_mode(prior.modules() + condition.modules()), tqdm(
        total=steps, disable=not progress, file=sys.stderr, desc="sampling", unit="step", leave=False
    ) as bar:
        for t in range(n):
            last = t == steps
            with torch.set_grad_enabled(not last), _autocast(device, precision):
                hg = h.detach().requires_grad_(not last)
                x = prior.decode(hg).float()
                result = condition.evaluate(prior.augment(x, rngs), prior.pixel_space)
            # what is stored (and what the step follows) must be finite, the last sample too
            fail(nonfinite({"probability": result.prob, "activation": result.activation,
                            "objective": result.objective, "extra term": result.extra}), t)
            codes[:, t] = h.detach().cpu()
            probs[:, t] = torch.where(failed, torch.nan, result.prob.float().cpu())
            acts[:, t] = torch.where(failed, torch.nan, result.activation.float().cpu())
            eps1_trace[:, t] = eps1.cpu()
            if last:
                break

            total = eps2 * result.objective.sum()
            if result.extra is not None:
                total = total + result.extra.sum()
            (grad,) = torch.autograd.grad(total, hg) if total.requires_grad else (torch.zeros_like(h),)
            with torch.no_grad():
                d = grad
                if eps1.any():
                    with _autocast(device, precision):
                        term = prior.prior_term(h, condition.composite(x.detach()))
                    d = d + eps1.view(view) * term.float()
                if eps3 > 0:
                    noise = torch.stack([torch.randn(prior.code_shape, generator=g) for g in rngs])
                    d = d + eps3 * noise.to(device)
                step_lr = lr if lr_end is None else lr + (lr_end - lr) * t / max(steps - 1, 1)
                finite = torch.isfinite(d.flatten(1)).all(1)
                if rule == "faithful":
                    scale = d.abs().flatten(1).mean(1).view(view)
                    d = torch.where(scale > 0, d / scale.clamp_min(torch.finfo(d.dtype).tiny), torch.zeros_like(d))
                    h_new = prior.clip(h + step_lr * d)
                else:
                    h_new = prior.clip(h + d)
                bad = ~(finite & torch.isfinite(h_new.flatten(1)).all(1)).cpu() & ~failed
                if bad.any():
                    grad_ok = torch.isfinite(grad.flatten(1)).all(1).cpu()
                    fail([("" if not bad[b] else "the update step: gradient NaN/Inf" if not grad_ok[b]
                           else "the update step: prior term or noise NaN/Inf" if not finite[b]
                           else "the update step: new code NaN/Inf") for b in range(chains)], t)
                keep = failed.to(device).view(view)
                h = torch.where(keep, h, h_new)
                if reset_every and (t + 1) % reset_every == 0 and t + 1 < steps:  # never a start as the last sample
                    fresh = prior.initial_codes(rngs).to(device)
                    new_eps = torch.tensor(
                        [float(torch.empty(1).uniform_(*RESET_EPS1_RANGE, generator=g)) for g in rngs], device=device
                    )
                    h = torch.where(keep, h, fresh)
                    eps1 = torch.where(failed.to(device), eps1, new_eps)
            bar.update(1)

    config = {
        "chains": chains,
        "steps": steps,
        "eps": [eps1_0, eps2, eps3],
        "lr": lr,
        "lr_end": lr_end,
        "seed": seed,
        "rule": rule,
        "reset_every": reset_every,
        "precision": precision,
        "channels_last": bool(channels_last),
        "compile": compile if isinstance(compile, str) else bool(compile),
        "chain_ids": ids,
        "init": "given" if init is not None else ("bank" if getattr(prior, "start_codes", None) is not None else "random"),
        "preset": preset or "recommended",
        "method": method.describe(),
        "condition": condition.describe(),
        "probability": condition.prob_meaning,
        "prior": prior.describe(),
        "device": str(device),
        "failures": failures,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "neurovis": __version__,
        "torch": torch.__version__,
    }
    return Chains(codes, probs, acts, eps1_trace, failed, torch.tensor(ids), config, prior, condition)
