"""Exact samplers of ``p(h | y)`` for priors with an evaluable density (paper 004).

For DGN-AM's Gaussian prior ``p(h) = N(0, I)`` the posterior over the code is known up to a
constant::

    log p(h | y) = log p(y | G(h)) + log p(h) + const

so it can be sampled exactly (MALA or HMC with a Metropolis–Hastings correction) or
maximised (MAP with clipping, the original DGN-AM), instead of the MALA-approx rule of
:func:`neurovis.sample`. The kernels live in :mod:`neurovis.sampling.mcmc`; this module builds the
target from a prior and a condition and records the run as :class:`~neurovis.Chains`.

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
import sys
import time
from dataclasses import fields, is_dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurovis._version import __version__
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
from neurovis.sampling.mcmc import (
    Bounds,
    LogpGrad,
    State,
    check_bounds,
    clip,
    evaluate,
    hmc_step,
    map_step,
    mala_step,
    noise_schedule,
    step_schedule,
)
from neurovis.priors.base import Prior
from neurovis.priors.generator import GaussianPrior
from neurovis._utils.torch_utils import eval_mode
from neurovis.sampling.ppgn import diverged, nonfinite, start_chains

RULES = ("mala", "hmc", "map")
_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_density(h: torch.Tensor) -> torch.Tensor:
    """``log N(h; 0, I)`` per chain: codes ``(B, *S)`` -> ``(B,)`` (normalised)."""
    flat = h.flatten(1)
    return -0.5 * (flat * flat).sum(1) - 0.5 * flat.shape[1] * _LOG_2PI


def prior_log_density(prior: Prior) -> Callable[[torch.Tensor], torch.Tensor]:
    """The prior's ``log p(h)``: codes ``(B, *S)`` -> ``(B,)``, differentiable.

    A prior with a ``log_density(h)`` method uses it; :class:`~neurovis.GaussianPrior`
    (DGN-AM) is ``N(0, I)``. Any other prior raises :class:`NeurovisError`.
    """
    own = getattr(prior, "log_density", None)
    if callable(own):
        return own
    if isinstance(prior, GaussianPrior):
        return gaussian_log_density
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


def _validate(
    chains: int, steps: int, rule: str, step_size: float, leapfrog_steps: int, noise: float,
    noise_anneal: float, step_decay: float, step_decay_offset: float, clip_after_mh: bool,
    bounds: Any, on_nan: str,
) -> None:
    if rule not in RULES:
        raise NeurovisError(f"unknown rule {rule!r} for the exact samplers; use one of {', '.join(RULES)}")
    if chains < 1 or steps < 0:
        raise NeurovisError(f"need chains ≥ 1 and steps ≥ 0, got chains={chains}, steps={steps}")
    _finite_number("step_size", step_size, 0.0, strict=True)
    try:
        whole = operator.index(leapfrog_steps) >= 1 and not isinstance(leapfrog_steps, bool)
    except TypeError:
        whole = False
    if not whole:
        raise NeurovisError(f"leapfrog_steps must be an integer ≥ 1, got {leapfrog_steps!r}")
    _finite_number("noise", noise, 0.0, strict=True)
    _finite_number("noise_anneal", noise_anneal, 0.0, strict=False)
    _finite_number("step_decay", step_decay, 0.0, strict=False)
    _finite_number("step_decay_offset", step_decay_offset, 0.0, strict=True)
    if clip_after_mh and rule == "map":
        raise NeurovisError("clip_after_mh is for rule='mala' or 'hmc'; rule='map' always clips to bounds")
    if clip_after_mh and bounds is None:
        raise NeurovisError("clip_after_mh=True needs bounds=(lower, upper), e.g. from neurovis.sampling.mcmc.code_bounds")
    if on_nan not in ("raise", "mark"):
        raise NeurovisError(f"on_nan must be 'raise' or 'mark', got {on_nan!r}")


def sample_exact(
    prior: Prior,
    condition: Condition,
    chains: int = 10,
    steps: int = 200,
    seed: int = 0,
    rule: str = "mala",
    *,
    step_size: float = 1e-2,
    leapfrog_steps: int = 10,
    noise: float = 1.0,
    noise_anneal: float = 0.0,
    step_decay: float = 0.0,
    step_decay_offset: float = 1.0,
    bounds: str | Bounds | tuple[float, float] | None = None,
    clip_after_mh: bool = False,
    init: torch.Tensor | None = None,
    chain_ids: Sequence[int] | None = None,
    on_nan: str = "raise",
    progress: bool = True,
) -> Chains:
    """Sample (or maximise) ``log p(h | y) = log p(y | G(h)) + log p(h)`` with ``chains`` chains.

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
        step_size: ``α`` (MALA/MAP) or the leapfrog step ``ε`` (HMC) at step 0.
        leapfrog_steps: ``L`` leapfrog steps per HMC step (HMC only).
        noise: multiplier of MALA's noise ``√(2α)`` (MALA only); the MH step keeps the chain
            exact for any value ``> 0``.
        noise_anneal: ``γ``: MALA's noise variance decays as ``(1 + t)^(−γ)`` (004 uses
            annealed noise after Neelakantan et al.; they suggest 0.55); 0 = constant.
        step_decay, step_decay_offset: ``γ``, ``b``: ``α_t = α (b / (b + t))^γ`` (decaying
            step size, Teh et al.); ``γ = 0`` = constant.
        bounds: ``None``; ``"prior"`` (the prior's ``code_clip``); ``(low, high)`` numbers;
            or per-dimension ``(lower, upper)`` tensors of ``code_shape`` (see
            :func:`neurovis.sampling.mcmc.code_bounds`). MAP clips to them after every step (the
            random start is not clipped). MALA/HMC without ``clip_after_mh`` sample the
            posterior truncated to the box (outside proposals are rejected; a start
            outside is projected onto the box, where many proposals then fail: prefer an
            ``init`` strictly inside).
        clip_after_mh: MALA/HMC: clip into ``bounds`` after the MH step (004's "MALA with
            clipping"; not an exact sampler any more).
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
    own_density = callable(getattr(prior, "log_density", None))
    log_prior_text = f"{type(prior).__name__}.log_density" if own_density else "N(0, I)"
    fn = log_posterior(prior, condition)  # raises for priors without a density
    _, likelihood_text = likelihood_condition(condition)
    _validate(chains, steps, rule, step_size, leapfrog_steps, noise, noise_anneal, step_decay,
              step_decay_offset, clip_after_mh, bounds, on_nan)
    device = prior.device
    started = time.perf_counter()
    ids, rngs, h = start_chains(prior, chains, seed, chain_ids, init)
    box = check_bounds(_resolve_bounds(bounds, prior), h)
    if box is not None and rule != "map" and not clip_after_mh:
        h = clip(h, box)  # a truncated target: start inside its support

    n = steps + 1
    codes = torch.empty((chains, n, *prior.code_shape), dtype=torch.float32)
    probs = torch.empty((chains, n), dtype=torch.float32)
    acts = torch.empty((chains, n), dtype=torch.float32)
    alpha_trace = torch.empty((chains, n), dtype=torch.float32)
    failed = torch.zeros(chains, dtype=torch.bool)
    attempts = torch.zeros(chains, dtype=torch.long)
    accepts = torch.zeros(chains, dtype=torch.long)
    prob_sum = torch.zeros(chains, dtype=torch.float64)
    failures: list[dict[str, Any]] = []
    seen = [""] * chains  # what went non-finite in this step's evaluations, per chain
    advice = "lower step_size, check the model for NaN, or pass on_nan='mark' to drop failed chains"

    def checked(hh: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``fn`` noting, per chain, what came out non-finite: a log density NaN or +Inf, or
        at a point of finite density a gradient, probability or activation NaN/±Inf. A
        log density of -Inf (zero density) is a point the MH step rejects, not a failure."""
        out = fn(hh)
        logp = out[0]
        zero = (logp == -torch.inf).cpu()
        whats = nonfinite({"log density": logp}, allow_neg_inf=("log density",))
        rest = nonfinite({"gradient": out[1], "probability": out[2], "activation": out[3]})
        for b in range(chains):
            what = whats[b] or ("" if zero[b] else rest[b])
            if what and not seen[b]:
                seen[b] = what
        return out

    def check(bad: torch.Tensor, t: int) -> None:
        """Stop or mark chains that are ``bad`` or met a non-finite value in step ``t``."""
        nonlocal failed
        whats = [seen[b] or ("state NaN/Inf" if bad[b] else "") for b in range(chains)]
        seen[:] = [""] * chains
        new = [b for b, w in enumerate(whats) if w and not failed[b]]
        if not new:
            return
        if on_nan == "raise":
            raise diverged(ids, new[0], t, whats[new[0]], advice)
        for b in new:
            failures.append({"chain": ids[b], "step": t, "what": whats[b]})
        failed = failed | torch.isin(torch.arange(chains), torch.tensor(new))

    def record(t: int, state: State, alpha: float) -> None:
        prob, act = state.aux
        codes[:, t] = state.h.detach().cpu()
        probs[:, t] = torch.where(failed, torch.nan, prob.cpu())
        acts[:, t] = torch.where(failed, torch.nan, act.cpu())
        alpha_trace[:, t] = alpha

    evaluations = 0
    with eval_mode(prior.modules() + condition.modules()), tqdm(
        total=steps, disable=not progress, file=sys.stderr, desc=rule, unit="step", leave=False
    ) as bar:
        state = evaluate(checked, h)
        evaluations += 1
        check(~state.finite.cpu(), 0)
        for t in range(steps):
            alpha = step_schedule(step_size, t, step_decay, step_decay_offset)
            record(t, state, alpha)
            if rule == "mala":
                step = mala_step(state, checked, alpha, rngs, noise=noise_schedule(noise, t, noise_anneal),
                                 bounds=box, clip_after_mh=clip_after_mh)
            elif rule == "hmc":
                step = hmc_step(state, checked, alpha, leapfrog_steps, rngs, bounds=box, clip_after_mh=clip_after_mh)
            else:
                step = map_step(state, checked, alpha, bounds=box)
            evaluations += step.evaluations
            live = ~failed
            attempts += live.long()
            accepts += (step.accepted.cpu() & live).long()
            prob_sum += torch.where(live, step.accept_prob.double().cpu(), 0.0)
            check(~step.state.finite.cpu(), t)
            state = step.state.where((~failed).to(step.state.h.device), state)
            bar.update(1)
        record(steps, state, step_schedule(step_size, steps, step_decay, step_decay_offset))

    def per_chain(num: torch.Tensor) -> list[float | None]:
        return [round(float(a) / int(b), 6) if int(b) else None for a, b in zip(num, attempts)]  # small JSON

    if rule == "mala":
        eps: list[float] | None = [float(step_size), float(step_size), float(np.sqrt(2 * step_size) * noise)]
    elif rule == "map":
        eps = [float(step_size), float(step_size), 0.0]
    else:
        eps = None
    config = {
        "chains": chains,
        "steps": steps,
        "eps": eps,
        "lr": None,
        "lr_end": None,
        "seed": seed,
        "rule": rule,
        "step_size": float(step_size),
        "step_decay": float(step_decay),
        "step_decay_offset": float(step_decay_offset),
        "leapfrog_steps": operator.index(leapfrog_steps) if rule == "hmc" else None,
        "noise": float(noise) if rule == "mala" else None,
        "noise_anneal": float(noise_anneal) if rule == "mala" else None,
        "bounds": _describe_bounds(box),
        "clip_after_mh": bool(clip_after_mh),
        "reset_every": 0,
        "chain_ids": ids,
        "init": "given" if init is not None else "random",
        "condition": condition.describe(),
        "log_likelihood": likelihood_text,
        "log_prior": log_prior_text,
        "probability": condition.prob_meaning,
        "prior": prior.describe(),
        "device": str(device),
        "evaluations": evaluations,
        "failures": failures,
        "acceptance": None if rule == "map" else per_chain(accepts),
        "acceptance_prob": None if rule == "map" else per_chain(prob_sum),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "neurovis": __version__,
        "torch": torch.__version__,
    }
    return Chains(codes, probs, acts, alpha_trace, failed, torch.tensor(ids), config, prior, condition)
