"""Exact gradient-based MCMC kernels on a batch of chains: MALA, HMC and MAP with clipping.

These are the samplers of Xu, Acuña & Duvenaud (paper 004) for a target with an evaluable
log density, here ``log π(h)`` for ``B`` chains at once. The kernels know nothing about
models: they take a function ::

    logp_and_grad(h) -> (logp, grad, *aux)

with ``h`` ``(B, *S)``, ``logp`` ``(B,)`` (up to a constant), ``grad = ∂ logp / ∂h``
``(B, *S)`` and optional per-chain extras ``aux`` (``(B, ...)`` each, e.g. the condition's
probability) that travel with the state and are accepted or rejected with it.

Rules (``α`` the step size, ``ξ ~ N(0, I)``):

=========  =====================================================  ====================
rule       proposal                                               correction
=========  =====================================================  ====================
MALA       ``h' = h + α ∇log π(h) + s ξ``, ``s = √(2α) · noise``  Metropolis–Hastings
HMC        ``L`` leapfrog steps of size ``α``, momentum ``N(0,I)``  Metropolis–Hastings
MAP        ``h' = clip(h + α ∇log π(h))`` (004, Algorithm 1)        none (an optimiser)
=========  =====================================================  ====================

MALA with ``noise = 1`` is Algorithm 2 of 004. Any ``noise > 0`` (an annealed one
included) still leaves ``π`` invariant, because the MH ratio uses the proposal density
with the same ``s``. Proposals whose ``logp`` is NaN or ±Inf, or (with ``bounds`` and no
``clip_after_mh``) that fall outside the box, are rejected: the target is then ``π``
truncated to the box (exact, but a chain sitting on a face of the box has many proposals
rejected: start it inside). ``clip_after_mh=True`` is 004's "MALA with clipping": the state
is clipped into the box after the accept/reject step, which no longer leaves ``π`` exactly
invariant, and a clip that moves a chain costs one more evaluation (at the clipped point).

Randomness: chain ``i`` draws only from its own ``torch.Generator`` (``rngs[i]``, CPU), a
fixed number of draws per step whatever happens, so a chain's trajectory does not depend
on which other chains share its batch (see :func:`neurovis.sampling.rng.chain_generator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from neurovis.errors import NeurovisError

LogpGrad = Callable[[torch.Tensor], Sequence[torch.Tensor]]
"""``h (B, *S) -> (logp (B,), grad (B, *S), *aux)``; see the module docstring."""

Bounds = tuple[torch.Tensor, torch.Tensor]
StepSize = float | torch.Tensor


@dataclass(frozen=True)
class State:
    """Where a batch of ``B`` chains stands, with everything known about that point.

    Attributes:
        h: ``(B, *S)`` positions.
        logp: ``(B,)`` log target density at ``h`` (up to a constant).
        grad: ``(B, *S)`` its gradient.
        aux: per-chain extras ``(B, ...)`` returned by the target function after
            ``(logp, grad)``; they are carried (and accepted/rejected) with the state.
    """

    h: torch.Tensor
    logp: torch.Tensor
    grad: torch.Tensor
    aux: tuple[torch.Tensor, ...] = ()

    def where(self, mask: torch.Tensor, other: "State") -> "State":
        """Per chain: this state where ``mask`` ``(B,)`` is true, else ``other``."""

        def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            m = mask.to(a.device).view(-1, *([1] * (a.dim() - 1)))
            return torch.where(m, a, b)

        return State(
            pick(self.h, other.h),
            pick(self.logp, other.logp),
            pick(self.grad, other.grad),
            tuple(pick(a, b) for a, b in zip(self.aux, other.aux)),
        )

    @property
    def finite(self) -> torch.Tensor:
        """``(B,)`` bool: position, log density and gradient all finite."""
        return (
            torch.isfinite(self.h.flatten(1)).all(1)
            & torch.isfinite(self.logp)
            & torch.isfinite(self.grad.flatten(1)).all(1)
        )


@dataclass(frozen=True)
class Step:
    """The outcome of one kernel step for ``B`` chains.

    Attributes:
        state: the new :class:`State`.
        accepted: ``(B,)`` bool, whether the chain moved to its proposal (all true for MAP).
        accept_prob: ``(B,)`` the MH acceptance probability ``min(1, ratio)`` (1 for MAP).
        evaluations: calls made to ``logp_and_grad`` (each one a batched forward+backward).
    """

    state: State
    accepted: torch.Tensor
    accept_prob: torch.Tensor
    evaluations: int


def evaluate(logp_and_grad: LogpGrad, h: torch.Tensor) -> State:
    """Evaluate the target at ``h`` ``(B, *S)`` and wrap the result as a :class:`State`."""
    out = tuple(logp_and_grad(h))
    if len(out) < 2:
        raise NeurovisError("logp_and_grad must return (logp, grad, *aux); got fewer than two tensors")
    logp, grad = out[0], out[1]
    if logp.shape != (h.shape[0],) or grad.shape != h.shape:
        raise NeurovisError(
            f"logp_and_grad returned logp {tuple(logp.shape)} and grad {tuple(grad.shape)} for h "
            f"{tuple(h.shape)}; expected ({h.shape[0]},) and {tuple(h.shape)}"
        )
    return State(h, logp, grad, tuple(out[2:]))


# ----------------------------------------------------------------------------- randomness


def normal(rngs: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """``N(0, I)`` noise shaped like ``like`` ``(B, *S)``; row ``i`` from ``rngs[i]``."""
    shape = tuple(like.shape[1:])
    z = torch.stack([torch.randn(shape, generator=g, dtype=like.dtype) for g in rngs])
    return z.to(like.device)


def uniform(rngs: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """``U[0, 1)`` draws ``(B,)``, entry ``i`` from ``rngs[i]``, on ``like``'s device."""
    u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in rngs])
    return u.to(like.device)


# ----------------------------------------------------------------------------- helpers


def _per_chain(value: StepSize, like: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar or ``(B,)`` tensor as ``(B,)`` on ``like``'s device, checked ``> 0``."""
    b = like.shape[0]
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise NeurovisError(f"{name} must be a number or a ({b},) tensor, got shape {tuple(t.shape)}")
    if not (torch.isfinite(t).all() and (t > 0).all()):
        raise NeurovisError(f"{name} must be positive and finite, got {value}")
    return t


def _col(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` viewed to broadcast against ``(B, *S)``."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def _sq(x: torch.Tensor) -> torch.Tensor:
    """Per-chain squared norm ``(B,)`` of ``(B, *S)``."""
    return (x * x).flatten(1).sum(1)


def check_bounds(bounds: Bounds | tuple[float, float] | None, like: torch.Tensor) -> Bounds | None:
    """``(lower, upper)`` as tensors broadcastable to one point ``like.shape[1:]``, checked.

    Floats give the same limits in every dimension; ``±inf`` leaves a side open.
    """
    if bounds is None:
        return None
    if len(bounds) != 2:
        raise NeurovisError(f"bounds must be (lower, upper), got {len(bounds)} items")
    lower, upper = (torch.as_tensor(b, dtype=like.dtype, device=like.device) for b in bounds)
    point = tuple(like.shape[1:])
    try:
        fits = tuple(torch.broadcast_shapes(lower.shape, upper.shape, point)) == point
    except RuntimeError:
        fits = False
    if not fits:
        raise NeurovisError(
            f"bounds of shapes {tuple(lower.shape)}, {tuple(upper.shape)} do not fit codes of shape {point}"
        )
    if not bool((lower <= upper).all()):
        raise NeurovisError("bounds must satisfy lower ≤ upper (no NaN) in every dimension")
    return lower, upper


def clip(h: torch.Tensor, bounds: Bounds | None) -> torch.Tensor:
    """``h`` ``(B, *S)`` clamped into ``bounds`` (identity for ``None``)."""
    return h if bounds is None else torch.clamp(h, bounds[0], bounds[1])


def inside(h: torch.Tensor, bounds: Bounds | None) -> torch.Tensor:
    """``(B,)`` bool: every coordinate of each chain within ``bounds``."""
    if bounds is None:
        return torch.ones(h.shape[0], dtype=torch.bool, device=h.device)
    return ((h >= bounds[0]) & (h <= bounds[1])).flatten(1).all(1)


def mh_accept(log_ratio: torch.Tensor, rngs: Sequence[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """Metropolis–Hastings decision for ``B`` chains.

    Args:
        log_ratio: ``(B,)`` log of the MH ratio; NaN counts as ``-inf`` (always rejected).
        rngs: one generator per chain; each draws exactly one uniform.

    Returns:
        ``(accepted (B,) bool, accept_prob (B,) = min(1, exp(log_ratio)))``.
    """
    lr = torch.nan_to_num(log_ratio.double(), nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    prob = torch.exp(lr.clamp(max=0.0))
    u = uniform(rngs, log_ratio)
    return u < prob, prob.to(log_ratio.dtype)


def _clip_after(step: Step, logp_and_grad: LogpGrad, bounds: Bounds | None) -> Step:
    """004's "clipping after the MH step": clamp, re-evaluating only if some chain moved."""
    clipped = clip(step.state.h, bounds)
    moved = (clipped != step.state.h).flatten(1).any(1)
    if not moved.any():
        return step
    fresh = evaluate(logp_and_grad, clipped)
    return Step(fresh.where(moved, step.state), step.accepted, step.accept_prob, step.evaluations + 1)


# ----------------------------------------------------------------------------- MALA


def mala_log_ratio(current: State, proposal: State, step_size: StepSize, noise: StepSize = 1.0) -> torch.Tensor:
    """Log MH ratio ``(B,)`` of a MALA move ``current → proposal``.

    ``log π(h') − log π(h) + log q(h | h') − log q(h' | h)`` with
    ``q(y | x) = N(y; x + α ∇log π(x), 2α·noise² I)``.
    """
    alpha = _col(_per_chain(step_size, current.h, "step_size"), current.h)
    var = 2.0 * alpha * _col(_per_chain(noise, current.h, "noise"), current.h) ** 2
    fwd = proposal.h - current.h - alpha * current.grad
    bwd = current.h - proposal.h - alpha * proposal.grad
    log_q_fwd = -_sq(fwd / var.sqrt()) / 2
    log_q_bwd = -_sq(bwd / var.sqrt()) / 2
    return proposal.logp - current.logp + log_q_bwd - log_q_fwd


def mala_step(
    state: State,
    logp_and_grad: LogpGrad,
    step_size: StepSize,
    rngs: Sequence[torch.Generator],
    *,
    noise: StepSize = 1.0,
    bounds: Bounds | None = None,
    clip_after_mh: bool = False,
) -> Step:
    """One Metropolis-adjusted Langevin step (004, Algorithm 2) for ``B`` chains.

    Args:
        state: the chains' current :class:`State` (``h`` ``(B, *S)``).
        logp_and_grad: the target, ``h -> (logp (B,), grad (B, *S), *aux)``.
        step_size: ``α``, a number or a per-chain ``(B,)`` tensor, ``> 0``.
        rngs: ``B`` generators; chain ``i`` draws one ``N(0, I)`` of shape ``S`` then one
            uniform from ``rngs[i]`` per step.
        noise: multiplier of the Langevin noise ``√(2α)`` (``> 0``; < 1 for annealing). The
            MH ratio accounts for it, so ``π`` stays invariant.
        bounds: ``(lower, upper)`` broadcastable to ``S``. Without ``clip_after_mh``
            proposals outside the box are rejected (target ``π`` truncated to the box).
        clip_after_mh: clamp the state into ``bounds`` after the MH step (004's "MALA with
            clipping"; not exact). Costs one more evaluation when any chain was clamped.

    Returns:
        :class:`Step`; one evaluation (two when clipping moved a chain).
    """
    alpha = _col(_per_chain(step_size, state.h, "step_size"), state.h)
    scale = (2.0 * alpha).sqrt() * _col(_per_chain(noise, state.h, "noise"), state.h)
    h_new = state.h + alpha * state.grad + scale * normal(rngs, state.h)
    proposal = evaluate(logp_and_grad, h_new)
    log_ratio = mala_log_ratio(state, proposal, step_size, noise)
    if bounds is not None and not clip_after_mh:
        log_ratio = torch.where(inside(h_new, bounds), log_ratio, torch.full_like(log_ratio, -math.inf))
    accepted, prob = mh_accept(log_ratio, rngs)
    step = Step(proposal.where(accepted, state), accepted, prob, 1)
    return _clip_after(step, logp_and_grad, bounds) if clip_after_mh else step


# ----------------------------------------------------------------------------- HMC


def hmc_step(
    state: State,
    logp_and_grad: LogpGrad,
    step_size: StepSize,
    leapfrog_steps: int,
    rngs: Sequence[torch.Generator],
    *,
    bounds: Bounds | None = None,
    clip_after_mh: bool = False,
) -> Step:
    """One Hamiltonian Monte Carlo step (Neal 2011; 004) for ``B`` chains, unit mass.

    Draws momentum ``p ~ N(0, I)``, runs ``leapfrog_steps`` leapfrog steps of size
    ``step_size`` on ``H(h, p) = −log π(h) + ½|p|²`` and accepts the end point with
    probability ``min(1, exp(H_start − H_end))``.

    Args:
        state: current :class:`State` (``h`` ``(B, *S)``); its gradient starts the
            trajectory, so a step costs exactly ``leapfrog_steps`` evaluations.
        logp_and_grad: the target, ``h -> (logp (B,), grad (B, *S), *aux)``.
        step_size: leapfrog step ``ε``, a number or a per-chain ``(B,)`` tensor, ``> 0``.
        leapfrog_steps: ``L ≥ 1``.
        rngs: ``B`` generators; chain ``i`` draws one ``N(0, I)`` then one uniform per step.
        bounds, clip_after_mh: as in :func:`mala_step` (only the end point is checked
            against the box when truncating).

    Returns:
        :class:`Step` with ``leapfrog_steps`` evaluations (one more if clipping moved a chain).
    """
    if int(leapfrog_steps) != leapfrog_steps or leapfrog_steps < 1:
        raise NeurovisError(f"leapfrog_steps must be an integer ≥ 1, got {leapfrog_steps}")
    eps = _col(_per_chain(step_size, state.h, "step_size"), state.h)
    p0 = normal(rngs, state.h)
    p = p0 + 0.5 * eps * state.grad
    cur = state
    for i in range(int(leapfrog_steps)):
        cur = evaluate(logp_and_grad, cur.h + eps * p)
        p = p + (eps if i < leapfrog_steps - 1 else 0.5 * eps) * cur.grad
    log_ratio = cur.logp - state.logp - 0.5 * _sq(p) + 0.5 * _sq(p0)
    if bounds is not None and not clip_after_mh:
        log_ratio = torch.where(inside(cur.h, bounds), log_ratio, torch.full_like(log_ratio, -math.inf))
    accepted, prob = mh_accept(log_ratio, rngs)
    step = Step(cur.where(accepted, state), accepted, prob, int(leapfrog_steps))
    return _clip_after(step, logp_and_grad, bounds) if clip_after_mh else step


# ----------------------------------------------------------------------------- MAP


def map_step(
    state: State,
    logp_and_grad: LogpGrad,
    step_size: StepSize,
    *,
    bounds: Bounds | None = None,
) -> Step:
    """One step of MAP with clipping (004, Algorithm 1; the original DGN-AM).

    ``h ← clip(h + α ∇log π(h))``: gradient ascent, no noise, no MH; ``bounds=None`` is
    plain gradient ascent. Every chain is "accepted".

    Args:
        state: current :class:`State` (``h`` ``(B, *S)``).
        logp_and_grad: the target, ``h -> (logp (B,), grad (B, *S), *aux)``.
        step_size: ``α``, a number or a per-chain ``(B,)`` tensor, ``> 0``.
        bounds: ``(lower, upper)`` broadcastable to ``S`` (e.g. from :func:`code_bounds`).

    Returns:
        :class:`Step` with one evaluation.
    """
    alpha = _col(_per_chain(step_size, state.h, "step_size"), state.h)
    new = evaluate(logp_and_grad, clip(state.h + alpha * state.grad, bounds))
    ones = torch.ones(state.h.shape[0], dtype=torch.bool, device=state.h.device)
    return Step(new, ones, ones.to(state.logp.dtype), 1)


# ----------------------------------------------------------------------------- schedules and bounds


def step_schedule(step_size: float, t: int, decay: float = 0.0, offset: float = 1.0) -> float:
    """Step size at step ``t``: ``α_t = α · (b / (b + t))^γ`` (Teh et al. 2016), ``γ = decay``.

    ``decay = 0`` keeps ``α`` constant; ``γ ∈ (0.5, 1]`` is the SGLD range. ``offset`` is ``b > 0``.
    """
    return float(step_size) * (offset / (offset + t)) ** decay if decay else float(step_size)


def noise_schedule(noise: float, t: int, anneal: float = 0.0) -> float:
    """Noise multiplier at step ``t``: ``noise · (1 + t)^(−γ/2)``, ``γ = anneal``.

    The noise *variance* decays as ``(1 + t)^(−γ)`` (Neelakantan et al. 2015 use
    ``γ = 0.55``); ``anneal = 0`` keeps it constant.
    """
    return float(noise) * (1.0 + t) ** (-anneal / 2) if anneal else float(noise)


def code_bounds(encoder_codes: torch.Tensor, lo: float = 1.0, hi: float = 99.0) -> Bounds:
    """Per-dimension percentile bounds of codes of natural images (for MAP with clipping).

    Args:
        encoder_codes: ``(N, *S)`` codes, e.g. ``prior.encode(images)`` or ``E(x)`` on a
            set of real images (N ≥ 1).
        lo, hi: percentiles in ``[0, 100]``, ``lo ≤ hi`` (linear interpolation, as
            ``numpy.percentile``).

    Returns:
        ``(lower, upper)``, each ``(*S)``, on the codes' device and dtype (float).
    """
    if encoder_codes.dim() < 2 or encoder_codes.shape[0] < 1:
        raise NeurovisError(f"encoder_codes must be (N, *code_shape) with N ≥ 1, got {tuple(encoder_codes.shape)}")
    if not (0.0 <= lo <= hi <= 100.0):
        raise NeurovisError(f"need 0 ≤ lo ≤ hi ≤ 100 (percentiles), got lo={lo}, hi={hi}")
    codes = encoder_codes.detach()
    codes = codes.float() if not codes.is_floating_point() else codes
    if not torch.isfinite(codes).all():
        raise NeurovisError("encoder_codes contain NaN/Inf; drop those images before computing bounds")
    ordered = torch.sort(codes, dim=0).values
    n = ordered.shape[0]

    def percentile(q: float) -> torch.Tensor:
        pos = q / 100.0 * (n - 1)
        i = min(int(math.floor(pos)), n - 1)
        j = min(i + 1, n - 1)
        w = pos - i
        return ordered[i] * (1.0 - w) + ordered[j] * w

    return percentile(lo), percentile(hi)
