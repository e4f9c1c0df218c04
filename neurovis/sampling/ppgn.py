"""The PPGN kernel: the MALA-approx step (Eq. 11) with the reference code's faithful rule (SPEC §1.2).

One step, all chains as one batch, one generator forward serving both passes::

    x  = G(h)                                   # decode (with grad)
    d  = ε1·(R(h) − h) + ε2·∂ log p(y|x)/∂h + N(0, ε3²)
    faithful:  h ← clip(h + lr · d / mean|d|)   # mean per chain (the reference code)
    textbook:  h ← clip(h + d)                  # Eq. 11 as written

The step is :meth:`PPGN.step` (ε1 enters as ``eps1 · prior.prior_term(h, x)``, the prior's
``R(h) − h``); the loop around it (buffers, NaN policy, progress, the record) is
:func:`neurovis.sampling.loop.run_chains`. Chain ``i``'s randomness (start, noise, resets,
jitter) comes from its own generator seeded by ``(seed, i)`` only
(:mod:`neurovis.sampling.rng`), so chain 2 of a 4-chain run equals chain 2 of a 3-chain run.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from neurovis._utils.speed import autocast as _autocast
from neurovis.conditions import Condition, ConditionResult
from neurovis.errors import NeurovisError
from neurovis.method import PPGN_RULES, Method, resolve_method
from neurovis.priors.base import Prior
from neurovis.sampling.loop import Kernel, Run, nonfinite
from neurovis.sampling.mcmc import Step


class NoStartBankWarning(UserWarning):
    """A run asked for real-image starts from a prior that has no start bank."""


RULES = PPGN_RULES
"""The PPGN kernel's update rules (see the module docstring; named in :mod:`neurovis.method`)."""

RESET_EPS1_RANGE = (1e-6, 1e-2)
"""A restart draws a new ``ε1 ~ U(1e-6, 1e-2)`` per chain (the reference hidden-unit scripts)."""


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


def _check(eps: Sequence[float] | None, lr: float | None, rule: str | None, reset_every: int | None) -> None:
    """One-line errors for settings given (``None`` = the method's)."""
    if eps is not None and (len(eps) != 3 or any(not math.isfinite(e) or e < 0 for e in eps)):
        raise NeurovisError(f"eps must be three finite numbers ≥ 0 (ε1, ε2, ε3), got {tuple(eps)}")
    if rule is not None and rule not in RULES:
        raise NeurovisError(f"unknown rule {rule!r}; use one of {', '.join(RULES)}")
    if lr is not None and (not math.isfinite(lr) or lr <= 0):
        raise NeurovisError(f"lr must be a positive number, got {lr!r}")
    if reset_every is not None and reset_every < 0:
        raise NeurovisError(f"reset_every must be ≥ 0 (0 = never), got {reset_every!r}")


@dataclass(frozen=True)
class PPGNState:
    """Sample ``t`` of a PPGN run: the codes and their evaluation (the graph the step follows).

    Attributes:
        h: ``(C, *code_shape)`` codes, float32, detached.
        eps1: ``(C,)`` each chain's ε1 in force (restarts draw a new one).
        hg: ``h`` as the leaf of the evaluation's graph (no grad at the last sample).
        x: ``(C, ...)`` the decoded images ``G(h)`` (float32).
        result: the condition at the (augmented) images.
    """

    h: torch.Tensor
    eps1: torch.Tensor
    hg: torch.Tensor
    x: torch.Tensor
    result: ConditionResult


@dataclass(frozen=True)
class PPGN(Kernel):
    """The PPGN sampler's kernel (MALA-approx, Eq. 11 of the paper): see the module docstring.

    Every setting left ``None`` comes from the prior's method
    (:func:`neurovis.method.resolve_method`, the one place defaults are decided): for
    generator priors ε ``(1e-5, 1, 1e-17)``, lr 1, the faithful rule, and resets every 10
    steps (recommended) or never (``preset="paper"``).

    Args:
        rule: ``"faithful"`` (normalised step, the reference code) or ``"textbook"``.
        eps: ``(ε1, ε2, ε3)``: prior weight, condition weight, noise standard deviation.
        lr: step size of the faithful rule (ignored by ``textbook``).
        lr_end: if set, lr goes linearly from ``lr`` to ``lr_end`` over the run.
        reset_every: every N steps restart each chain from a new start
            (``prior.initial_codes``) with a new ``ε1 ~ U(1e-6, 1e-2)``; 0 = never. No restart
            follows the last step, so every chain's last sample is a sampled state.
    """

    rule: str | None = None
    eps: tuple[float, float, float] | None = None
    lr: float | None = None
    lr_end: float | None = None
    reset_every: int | None = None
    _method: Method | None = field(default=None, init=False, repr=False, compare=False)
    _preset: str | None = field(default=None, init=False, repr=False, compare=False)

    label = "sampling"
    advice = "lower lr or eps, check the model for NaN, or pass on_nan='mark' to drop failed chains"
    precisions = ("fp32", "bf16")

    def __post_init__(self) -> None:
        _check(self.eps, self.lr, self.rule, self.reset_every)
        if self.eps is not None:
            object.__setattr__(self, "eps", tuple(float(e) for e in self.eps))

    def bind(self, prior: Prior, condition: Condition, preset: str | None = None,
             starts: str | None = None) -> tuple["PPGN", Prior]:
        """Every ``None`` setting from ``prior``'s method under ``preset`` (and ``starts``);
        the prior in its paper treatment for ``preset="paper"``, its start bank on or off."""
        method = resolve_method(prior, preset, eps=self.eps, lr=self.lr, rule=self.rule,
                                reset_every=self.reset_every, starts=starts)
        prior = method_prior(prior, method, preset)
        _check(method.eps, method.lr, method.rule, method.reset_every)
        bound = dataclasses.replace(self, rule=method.rule, eps=method.eps, lr=method.lr,
                                    reset_every=method.reset_every)
        object.__setattr__(bound, "_method", method)
        object.__setattr__(bound, "_preset", preset)
        return bound, prior

    def _evaluate(self, run: Run, h: torch.Tensor, eps1: torch.Tensor, t: int) -> PPGNState:
        """Decode ``h`` and evaluate the condition (with the graph, but at the last sample);
        non-finite values that are stored or followed fail the chain at step ``t``."""
        prior, device = run.prior, run.prior.device
        last = t == run.steps
        with torch.set_grad_enabled(not last), _autocast(device, run.precision):
            hg = h.detach().requires_grad_(not last)
            x = prior.decode(hg).float()
            result = run.condition.evaluate(prior.augment(x, run.rngs), prior.pixel_space)
        # what is stored (and what the step follows) must be finite, the last sample too
        run.fail(nonfinite({"probability": result.prob, "activation": result.activation,
                            "objective": result.objective, "extra term": result.extra}), t)
        return PPGNState(h, eps1, hg, x, result)

    def start(self, run: Run, h0: torch.Tensor) -> PPGNState:
        """Sample 0: the start codes with ``ε1`` from the settings, evaluated."""
        assert self.eps is not None, "bind() first"
        eps1 = torch.full((run.chains,), float(self.eps[0]), device=run.prior.device)
        return self._evaluate(run, h0, eps1, 0)

    def step(self, run: Run, state: PPGNState, t: int) -> Step:
        """Step ``t``: ``d = ε1·(R(h) − h) + ε2·∂log p(y|x)/∂h + N(0, ε3²)``, the rule's update,
        the clip, a restart where due, then the evaluation of sample ``t + 1``."""
        prior, condition, rngs, device = run.prior, run.condition, run.rngs, run.prior.device
        _, eps2, eps3 = (float(e) for e in self.eps)  # type: ignore[union-attr]
        lr, lr_end, steps, chains = self.lr, self.lr_end, run.steps, run.chains
        h, eps1, hg, x, result = state.h, state.eps1, state.hg, state.x, state.result
        view = (chains,) + (1,) * len(prior.code_shape)

        total = eps2 * result.objective.sum()
        if result.extra is not None:
            total = total + result.extra.sum()
        (grad,) = torch.autograd.grad(total, hg) if total.requires_grad else (torch.zeros_like(h),)
        with torch.no_grad():
            d = grad
            if eps1.any():  # ε1 enters here: eps1 · (R(h) − h), the prior's term
                with _autocast(device, run.precision):
                    term = prior.prior_term(h, condition.composite(x.detach()))
                d = d + eps1.view(view) * term.float()
            if eps3 > 0:
                noise = torch.stack([torch.randn(prior.code_shape, generator=g) for g in rngs])
                d = d + eps3 * noise.to(device)
            step_lr = lr if lr_end is None else lr + (lr_end - lr) * t / max(steps - 1, 1)  # type: ignore[operator]
            finite = torch.isfinite(d.flatten(1)).all(1)
            if self.rule == "faithful":
                scale = d.abs().flatten(1).mean(1).view(view)
                d = torch.where(scale > 0, d / scale.clamp_min(torch.finfo(d.dtype).tiny), torch.zeros_like(d))
                h_new = prior.clip(h + step_lr * d)
            else:
                h_new = prior.clip(h + d)
            bad = ~(finite & torch.isfinite(h_new.flatten(1)).all(1)).cpu() & ~run.failed
            if bad.any():
                grad_ok = torch.isfinite(grad.flatten(1)).all(1).cpu()
                run.fail([("" if not bad[b] else "the update step: gradient NaN/Inf" if not grad_ok[b]
                           else "the update step: prior term or noise NaN/Inf" if not finite[b]
                           else "the update step: new code NaN/Inf") for b in range(chains)], t)
            failed = run.failed
            keep = failed.to(device).view(view)
            h = torch.where(keep, h, h_new)
            if self.reset_every and (t + 1) % self.reset_every == 0 and t + 1 < steps:  # never a start as the last sample
                fresh = prior.initial_codes(rngs).to(device)
                new_eps = torch.tensor(
                    [float(torch.empty(1).uniform_(*RESET_EPS1_RANGE, generator=g)) for g in rngs], device=device
                )
                h = torch.where(keep, h, fresh)
                eps1 = torch.where(failed.to(device), eps1, new_eps)
        new = self._evaluate(run, h, eps1, t + 1)
        moved = torch.ones(chains, dtype=torch.bool)
        return Step(new, moved, moved.double(), 1)  # type: ignore[arg-type]

    def record(self, state: PPGNState, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``t``: codes, the condition's probability and activation, ε1 (the trace)."""
        return state.h, state.result.prob, state.result.activation, state.eps1

    def config(self, run: Run) -> dict[str, Any]:
        """``rule``, ``eps``, ``lr``, ``lr_end``, ``reset_every``, ``preset`` and the resolved ``method``."""
        eps1, eps2, eps3 = (float(e) for e in self.eps)  # type: ignore[union-attr]
        return {
            "eps": [eps1, eps2, eps3],
            "lr": self.lr,
            "lr_end": self.lr_end,
            "rule": self.rule,
            "reset_every": self.reset_every,
            "preset": self._preset or "recommended",
            "method": self._method.describe() if self._method is not None else None,
        }
