"""How chains are run: the sampling method of a prior, defined once.

A :class:`Method` holds every setting of a run that is not the condition or the budget:
the ε weights, the step size and rule, where chains start and how often they restart,
and which samples a report keeps. Each prior carries its **recommended** method (what
:func:`neurovis.sample`, :func:`neurovis.facets` and every command use unless told
otherwise); the **paper** preset is the paper's own settings for the prior's treatment
(its ε, random ``N(0, 1)`` starts, no restarts, keep ``p ≥ 0.97``).

``resolve_method(prior, preset)`` is the one place a default is decided: the Python API
and the command line both call it, so they run the same configuration.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from neurovis.errors import NeurovisError

GRADIENTS = ("reference", "log_softmax", "logit", "softmax")
"""What a class or unit condition differentiates (``gradient=``; see
:class:`~neurovis.ClassCondition`)."""

PPGN_RULES = ("faithful", "textbook")
"""The PPGN kernel's update rules (:mod:`neurovis.sampling.ppgn`)."""

EXACT_RULES = ("mala", "hmc", "map")
"""The exact kernels' names (:mod:`neurovis.sampling.exact`; ``nv.sample(rule=...)``)."""

FEATURE_SPACES = ("network", "code", "pixels", "layer")
"""Where a report clusters its kept samples into facets (``features=``;
:mod:`neurovis.analysis.features`). The default is ``network`` for a condition on a
network's class or unit, ``pixels`` for pixel priors, ``code`` otherwise."""

INPAINT_INITS = ("encode", "random")
"""Where inpainting chains start (``neurovis inpaint --init``): ``encode`` = the code of the
masked photo, ``random`` = the prior's own starts."""

PRESETS = ("recommended", "paper")
"""Names a ``preset`` may take (``None`` means ``"recommended"``)."""

STARTS = ("random", "bank")
"""Where chains start and restart: ``random`` = the prior's own random start (``N(0, 1)``
for a generator); ``bank`` = the code ``E(x)`` of a real image, one drawn per chain from
the prior's start bank (:attr:`~neurovis.GeneratorPrior.start_codes`)."""

KEEP_RULES = ("probability", "activation")
"""Which samples a report keeps for a *hidden unit*: ``probability`` = the paper's rule
(softmax over the layer's channels at the unit's position ``≥ threshold``); ``activation``
= the unit's activation at or above the 99th percentile of its activation on natural
images (samples that drive it as strongly as its strongest real images). Classes (a
model's output layer) are always kept by probability."""

ACCEPT_THRESHOLD = 0.97
"""The paper's keep threshold on the probability (Sec. 3.5 of the paper)."""

NATURAL_PERCENTILE = 99.0
"""Percentile of a hidden unit's activation on natural images that a sample must reach
under the ``activation`` keep rule (the top 1% of real images)."""

RECOMMENDED_RESET_EVERY = 10
"""Restart interval of the recommended method, in steps (at 200 steps: 20 restarts per
chain). Measured on the glyph world (``bench/facet_recall.py``)."""


@dataclass(frozen=True)
class Method:
    """Every setting of a sampling run but the condition and the budget (chains, steps, seed).

    Attributes:
        name: ``"recommended"``, ``"paper"`` or ``"custom"`` (any setting overridden).
        eps: ``(ε1, ε2, ε3)``: prior weight, condition weight, noise standard deviation.
        lr: step size of the faithful rule (its normalised step moves codes by ``lr``
            on average per unit).
        rule: ``"faithful"`` (the reference code's normalised step) or ``"textbook"``.
        reset_every: restart each chain every N steps with a new start and a new
            ``ε1 ~ U(1e-6, 1e-2)``; 0 = never.
        starts: ``"random"`` or ``"bank"`` (see :data:`STARTS`).
        keep: hidden units' keep rule, ``"probability"`` or ``"activation"`` (see
            :data:`KEEP_RULES`).
        threshold: the probability a kept sample reaches (both rules keep classes by it).
    """

    name: str
    eps: tuple[float, float, float]
    lr: float = 1.0
    rule: str = "faithful"
    reset_every: int = 0
    starts: str = "random"
    keep: str = "probability"
    threshold: float = ACCEPT_THRESHOLD

    def __post_init__(self) -> None:
        eps = tuple(float(e) for e in self.eps)
        if len(eps) != 3 or not all(math.isfinite(e) and e >= 0 for e in eps):
            raise NeurovisError(f"eps must be three finite numbers ≥ 0 (ε1, ε2, ε3), got {self.eps!r}")
        object.__setattr__(self, "eps", eps)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise NeurovisError(f"lr must be a positive number, got {self.lr!r}")
        if int(self.reset_every) != self.reset_every or self.reset_every < 0:
            raise NeurovisError(f"reset_every must be ≥ 0 (0 = never), got {self.reset_every!r}")
        if self.starts not in STARTS:
            raise NeurovisError(f"starts must be one of {', '.join(STARTS)}, got {self.starts!r}")
        if self.keep not in KEEP_RULES:
            raise NeurovisError(f"keep must be one of {', '.join(KEEP_RULES)}, got {self.keep!r}")
        if not (math.isfinite(self.threshold) and 0 <= self.threshold <= 1):
            raise NeurovisError(f"threshold must be in [0, 1], got {self.threshold!r}")

    def with_overrides(self, **changes: Any) -> "Method":
        """This method with the given settings replaced (``None`` values ignored); named
        ``"custom"`` when any setting differs."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise NeurovisError(f"unknown method setting(s) {', '.join(sorted(unknown))}")
        new = dataclasses.replace(self, **changes)
        if dataclasses.astuple(dataclasses.replace(new, name=self.name)) != dataclasses.astuple(self):
            new = dataclasses.replace(new, name="custom" if "name" not in changes else changes["name"])
        return new

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every setting."""
        d = dataclasses.asdict(self)
        d["eps"] = list(self.eps)
        return d


def paper_method(prior: Any) -> Method:
    """The paper's settings for ``prior``'s treatment: its ε (``prior.default_eps``), lr 1,
    the faithful rule, random starts, no restarts, keep ``p ≥ 0.97``."""
    return Method("paper", tuple(prior.default_eps))


def recommended_method(prior: Any) -> Method:
    """The method ``prior`` recommends (``prior.recommended``), else the paper's."""
    method = getattr(prior, "recommended", None)
    if method is not None:
        return method
    return dataclasses.replace(paper_method(prior), name="recommended", keep="activation")


def resolve_method(prior: Any, preset: str | None = None, **overrides: Any) -> Method:
    """The full method of a run: ``preset`` (``None`` = ``"recommended"``) for ``prior``,
    with explicit settings (``eps``, ``lr``, ``rule``, ``reset_every``, ``starts``, ``keep``,
    ``threshold``; ``None`` = not given) on top. The API and the CLI both call this."""
    preset = preset or "recommended"
    if preset not in PRESETS:
        raise NeurovisError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    base = paper_method(prior) if preset == "paper" else recommended_method(prior)
    return base.with_overrides(**overrides)
