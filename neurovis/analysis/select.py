"""Which samples a report keeps and picks, and the pipeline status they imply.

Samples are numbered in *flat order*: sample ``i`` is chain ``i // (T + 1)``, step
``i % (T + 1)`` of a run of ``C`` chains of ``T`` steps (the order of ``samples.h5``).

Status rules, first match wins:

1. ``dead_unit``: a unit's activation is never above 0 over every sample (any condition:
   its activation never changes); when natural images are given, they must not activate
   it either (if they do, the chains failed, not the unit: rule 2 applies, with a note).
2. ``nothing_passed_threshold``: no sample has ``p ≥ threshold``.
3. ``single_facet``: the kept samples form one facet (fewer than 4 kept, silhouette does
   not beat the Gaussian null, or one facet was asked for).
4. ``ok``: two or more facets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurovis.chains import Chains

STATUSES = ("ok", "nothing_passed_threshold", "single_facet", "dead_unit")
"""Pipeline statuses, in ``facets.json`` as ``status``."""

STATUS_TEXT = {
    "ok": "The kept samples form {n_facets} facets.",
    "nothing_passed_threshold": (
        "No sample reached p ≥ {threshold:g}: the chains never drove the condition that far. "
        "Run longer chains (--steps), more chains (--chains), a larger ε2, or lower --threshold."
    ),
    "single_facet": (
        "The kept samples form a single facet: {why}. The unit (or class) looks unimodal "
        "under this prior, or too few samples passed to tell facets apart."
    ),
    "dead_unit": (
        "The unit never activates: {why}, so it cannot be driven and has no facets. "
        "Check the layer and unit index, or the model's weights."
    ),
}
"""One explanation per status, formatted with the report's numbers and shown on the page."""


@dataclass(frozen=True)
class Selection:
    """The samples a report keeps and the random pick it lays out.

    Attributes:
        n_chains, n_steps: ``C`` and ``T`` of the run (``T + 1`` samples per chain).
        kept: ``(n_kept,)`` flat indices of samples with ``p ≥ threshold`` (failed chains
            and NaN probabilities never pass), ascending.
        picked: ``(n_picked,)`` flat indices, a seeded random subset of ``kept`` of size
            ``min(pick, n_kept)``, ascending.
        threshold: the probability threshold.
    """

    n_chains: int
    n_steps: int
    kept: np.ndarray
    picked: np.ndarray
    threshold: float
    keep: dict | None = None
    """How samples were kept: ``{"rule": "probability" | "activation", ...}`` with the
    activation threshold, percentile and natural images of the activation rule."""

    @property
    def n_samples(self) -> int:
        return self.n_chains * (self.n_steps + 1)

    def chain_step(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(chain, step)`` arrays of flat sample indices."""
        flat = np.asarray(flat, dtype=np.int64)
        return flat // (self.n_steps + 1), flat % (self.n_steps + 1)


def select(chains: Chains, threshold: float = 0.97, pick: int = 400, seed: int = 0,
           activation_threshold: float | None = None, keep: dict | None = None) -> Selection:
    """Keep samples with ``p ≥ threshold`` (or, given ``activation_threshold``, samples whose
    activation reaches it) and pick up to ``pick`` of them at random. Starts and restarts
    (:attr:`~neurovis.Chains.is_start`) and failed chains are never kept.

    The pick is drawn with ``numpy.random.default_rng(seed)`` without replacement, so the
    same chains, threshold, pick and seed give the same pick.
    """
    failed = chains.failed.numpy().astype(bool)
    if activation_threshold is None:
        probs = np.nan_to_num(chains.probs.numpy().astype(np.float64), nan=-1.0)
        ok = probs >= threshold
    else:
        acts = np.nan_to_num(chains.activations.numpy().astype(np.float64), nan=-np.inf)
        ok = acts >= activation_threshold
    ok &= ~chains.is_start.numpy()
    ok[failed] = False
    kept = np.flatnonzero(ok.reshape(-1))
    n_pick = min(int(pick), kept.size)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(kept, size=n_pick, replace=False)) if n_pick else kept[:0]
    return Selection(chains.n_chains, chains.n_steps, kept, picked, float(threshold), keep)


def dead_unit_reason(activations: np.ndarray, is_unit: bool) -> str | None:
    """Why the unit counts as dead, or ``None`` if it is alive.

    A unit (``is_unit``) is dead when its activation is never above 0 over every finite
    sample; any condition is dead when its activation is constant (range ≤ 1e-6 of its
    scale). ``activations`` may hold NaN for failed chains; they are ignored.
    """
    a = np.asarray(activations, dtype=np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return "no finite activation"
    top, low = float(a.max()), float(a.min())
    if is_unit and top <= 0:
        return f"its activation stays ≤ 0 (max {top:.3g})"
    if top - low <= 1e-6 * max(1.0, abs(top), abs(low)):
        return f"its activation is constant ({top:.3g})"
    return None
