"""The glyph world's ground truth in a report: what the oracle sees in the kept samples.

:func:`glyph_ground_truth` is the ``truth`` hook (:data:`neurovis.analysis.coverage.GroundTruth`)
the zoo's glyph entry hands to :func:`neurovis.facets`: the oracle names the mode of every
kept sample; a mode of the class (or of the hidden unit, see
:func:`neurovis.glyphs.evaluation.unit_modes`) is found when it holds at least
:data:`~neurovis.analysis.coverage.FOUND_SHARE` of the kept samples. Each facet is described
by its most common mode.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from neurovis.analysis.coverage import FOUND_SHARE
from neurovis.conditions import ClassCondition, InpaintCondition, UnitCondition
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.checkpoints import load_oracle
from neurovis.glyphs.evaluation import DEFAULT_UNIT_MIN_SHARE, DEFAULT_UNIT_TOP, layer_activations, modes_of_top_images

REALISM_LEVEL = 0.9
"""The oracle names a sample's mode when its confidence reaches this (as the benchmarks' realism)."""
REPORT_UNIT_IMAGES = 4096
"""World images a report reads a hidden unit's ground-truth modes from (the benchmark uses 16,384)."""
_LAYER_ACTS: dict[str, tuple] = {}


def glyph_ground_truth(condition: Any, kept_rgb01: torch.Tensor, labels: np.ndarray) -> dict[str, Any] | None:
    """On the glyph world: the modes of the class (or unit) and which of them the kept
    samples show, by the oracle; each facet's most common mode.

    Args:
        condition: the chains' condition; its model must be a glyph classifier.
        kept_rgb01: ``(n, 3, 64, 64)`` float RGB in [0, 1], the kept samples.
        labels: ``(n,)`` facet of each kept sample.
    """
    base = condition.condition if isinstance(condition, InpaintCondition) else condition
    model = getattr(base, "model", None)
    if getattr(model, "glyph_kind", None) != "classifier" or kept_rgb01.shape[0] == 0:
        return None
    world = GlyphWorld()
    truth: list[int] | None = None
    rule = ""
    if isinstance(base, ClassCondition):
        truth, rule = list(world.class_modes(base.class_index)), "the class's modes"
    elif isinstance(base, UnitCondition) and base.layer_path == "fc8" and isinstance(base.unit, int):
        truth, rule = list(world.class_modes(int(base.unit))), "the class's modes (fc8 is the class logit)"
    elif isinstance(base, UnitCondition) and isinstance(base.unit, int):
        cached = _LAYER_ACTS.get("last")  # one world pass per layer (a layer command's units share it)
        if cached is None or cached[0]() is not base.model or cached[1:3] != (base.layer, repr(base.position)):
            acts = layer_activations(base.model, base.layer, base.position, n_images=REPORT_UNIT_IMAGES)
            cached = _LAYER_ACTS["last"] = (weakref.ref(base.model), base.layer, repr(base.position), acts)
        acts, world_modes = cached[3]
        if 0 <= base.unit < acts.shape[1]:
            truth = list(modes_of_top_images(acts[:, base.unit], world_modes, DEFAULT_UNIT_TOP, DEFAULT_UNIT_MIN_SHARE))
            rule = (f"the unit's modes: world modes holding ≥ 5% of its top 1% activating images among "
                    f"{REPORT_UNIT_IMAGES:,} world images (neurovis.glyphs.evaluation.unit_modes)")
    oracle = load_oracle().to(kept_rgb01.device)
    modes, conf = oracle.predict(kept_rgb01)
    modes = np.where(conf.numpy() >= REALISM_LEVEL, modes.numpy(), -1)  # -1: the oracle sees no glyph it can name
    shares = {int(m): float(np.mean(modes == m)) for m in np.unique(modes) if m >= 0}
    facets = []
    for f in sorted(set(int(v) for v in labels if v >= 0)):
        fm = modes[labels == f]
        named = fm[fm >= 0]  # described by its most common confidently named mode
        if named.size == 0:
            facets.append({"facet": f, "mode": -1, "name": "no clear glyph", "share": 1.0})
            continue
        values, counts = np.unique(named, return_counts=True)
        top = int(values[np.argmax(counts)])
        facets.append({"facet": f, "mode": top, "name": world.mode_name(top), "share": float(counts.max() / fm.size)})
    out: dict[str, Any] = {"labeller": "the glyph world's oracle", "facets": facets,
                           "realism": float(np.mean(conf.numpy() >= 0.9))}
    if truth is not None:
        found = [m for m in truth if shares.get(m, 0.0) >= FOUND_SHARE]
        out.update(rule=rule, modes=[{"mode": m, "name": world.mode_name(m), "share": shares.get(m, 0.0),
                                      "found": m in found} for m in truth],
                   n_modes=len(truth), n_found=len(found))
    return out
