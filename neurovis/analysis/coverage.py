"""What a report found and what it missed.

Two checks, both written to ``facets.json`` as ``coverage`` and shown first on the page:

- **natural clusters** (any model, with natural images): the unit's top-activating
  natural images (the top :data:`TOP_SHARE` of them, at least :data:`MIN_TOP`) are
  clustered in the condition network's own feature space (the same silhouette rule as the
  facets). Each kept sample is assigned to the cluster of its nearest top natural image
  (cosine distance); a natural cluster is *found* when at least :data:`FOUND_SHARE` of
  the kept samples fall in it, and *missed* otherwise ("missed: looks like these
  images"). The share mirrors the facet-recall rule of the benchmarks (a mode counts as
  found when it holds at least 2% of the accepted samples).
- **ground truth** (the glyph world): the oracle names the mode of every kept sample; a
  mode of the class (or of the hidden unit, see :func:`neurovis.glyphs.evaluation.unit_modes`)
  is found when it holds at least 2% of the kept samples. Each facet is described by its
  most common mode.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from neurovis.analysis import clustering as cl
from neurovis.analysis.features import model_features
from neurovis.analysis.natural import _unit_rows

TOP_SHARE = 0.05
"""Share of the natural images, by activation, that stand for what the unit responds to."""
MIN_TOP = 20
FOUND_SHARE = 0.02
"""A natural cluster or ground-truth mode is found when it holds this share of the kept samples."""
MIN_CLUSTER = 3
MIN_CLUSTER_SHARE = 0.05
"""A natural cluster counts (found or missed) when it holds at least this many (and this
share) of the top images: one odd image is not a facet."""
N_EXAMPLES = 6
_LAYER_ACTS: dict[str, tuple] = {}
REALISM_LEVEL = 0.9
"""The oracle names a sample's mode when its confidence reaches this (as the benchmarks' realism)."""
REPORT_UNIT_IMAGES = 4096
"""World images a report reads a hidden unit's ground-truth modes from (the benchmark uses 16,384)."""
MAX_SAMPLES = 400


def natural_coverage(condition: Any, space: Any, natural: Any, activations: np.ndarray, kept_rgb: torch.Tensor,
                     seed: int = 0) -> dict[str, Any] | None:
    """Cluster the top natural images and say which clusters the kept samples reach.

    Args:
        condition: the chains' condition (its network gives the feature space).
        space: the prior's pixel space.
        natural: :class:`~neurovis.analysis.natural.NaturalImages` at the prior's size.
        activations: ``(N,)`` the condition's activation on each natural image.
        kept_rgb: ``(n, 3, H, W)`` uint8 RGB of (at most :data:`MAX_SAMPLES`) kept samples.
    Returns:
        ``{"rule", "feature_space", "clusters": [{"images", "size", "share", "found"}],
        "n_clusters", "n_found", "missed"}`` or ``None`` when there is nothing to compare.
    """
    acts = np.nan_to_num(np.asarray(activations, dtype=np.float64), nan=-np.inf)
    n_top = min(len(acts), max(MIN_TOP, int(round(TOP_SHARE * len(acts)))))
    if n_top < 4 or kept_rgb.shape[0] == 0:
        return None
    top = np.argsort(-acts, kind="stable")[:n_top]
    nat_feats, desc = model_features(condition, natural.images[torch.as_tensor(top)], space)
    if nat_feats is None:
        return None
    sample_feats, _ = model_features(condition, kept_rgb, space)
    nat_n, smp_n = _unit_rows(nat_feats), _unit_rows(sample_feats)  # type: ignore[arg-type]
    with cl.few_threads():
        clus = cl.cluster(nat_n.astype(np.float32), None, seed)
    nearest = np.argmin(1.0 - smp_n @ nat_n.T, axis=1)
    sample_cluster = clus.labels[nearest]
    clusters = []
    for c in range(clus.k):
        members = top[clus.labels == c]
        order = np.argsort(-acts[members], kind="stable")
        share = float(np.mean(sample_cluster == c))
        clusters.append({"cluster": c, "size": int(members.size), "images": [int(i) for i in members[order][:N_EXAMPLES]],
                         "share": share, "found": share >= FOUND_SHARE,
                         "too_small": members.size < max(MIN_CLUSTER, MIN_CLUSTER_SHARE * n_top)})
    missed = [c["cluster"] for c in clusters if not c["found"] and not c["too_small"]]
    counted = [c for c in clusters if not c["too_small"]]
    return {
        "rule": (f"the top {n_top} natural images by activation, clustered in {desc}; a cluster is found when at "
                 f"least {FOUND_SHARE:.0%} of the kept samples have their nearest top natural image in it; clusters "
                 f"of fewer than {max(MIN_CLUSTER, int(np.ceil(MIN_CLUSTER_SHARE * n_top)))} images are not counted"),
        "feature_space": desc, "n_top": int(n_top), "clusters": clusters, "n_clusters": len(counted),
        "n_found": len(counted) - len(missed), "missed": missed,
    }


def glyph_ground_truth(condition: Any, kept_rgb01: torch.Tensor, labels: np.ndarray) -> dict[str, Any] | None:
    """On the glyph world: the modes of the class (or unit) and which of them the kept
    samples show, by the oracle; each facet's most common mode.

    Args:
        condition: the chains' condition; its model must be a glyph classifier.
        kept_rgb01: ``(n, 3, 64, 64)`` float RGB in [0, 1], the kept samples.
        labels: ``(n,)`` facet of each kept sample.
    """
    from neurovis.conditions import ClassCondition, InpaintCondition, UnitCondition

    base = condition.condition if isinstance(condition, InpaintCondition) else condition
    model = getattr(base, "model", None)
    if getattr(model, "glyph_kind", None) != "classifier" or kept_rgb01.shape[0] == 0:
        return None
    from neurovis.glyphs import GlyphWorld
    from neurovis.zoo import load_oracle

    world = GlyphWorld()
    truth: list[int] | None = None
    rule = ""
    if isinstance(base, ClassCondition):
        truth, rule = list(world.class_modes(base.class_index)), "the class's modes"
    elif isinstance(base, UnitCondition) and base.layer_path == "fc8" and isinstance(base.unit, int):
        truth, rule = list(world.class_modes(int(base.unit))), "the class's modes (fc8 is the class logit)"
    elif isinstance(base, UnitCondition) and isinstance(base.unit, int):
        from neurovis.glyphs.evaluation import DEFAULT_UNIT_MIN_SHARE, DEFAULT_UNIT_TOP, layer_activations, modes_of_top_images

        cached = _LAYER_ACTS.get("last")  # one world pass per layer (a layer command's units share it)
        if cached is None or cached[0]() is not base.model or cached[1:3] != (base.layer, repr(base.position)):
            acts = layer_activations(base.model, base.layer, base.position, n_images=REPORT_UNIT_IMAGES)
            cached = _LAYER_ACTS["last"] = (weakref.ref(base.model), base.layer, repr(base.position), acts)
        acts, world_modes = cached[3]
        if 0 <= base.unit < acts.shape[1]:
            truth = list(modes_of_top_images(acts[:, base.unit], world_modes, DEFAULT_UNIT_TOP, DEFAULT_UNIT_MIN_SHARE))
            rule = (f"the unit's modes: world modes holding ≥ 5% of its top 1% activating images among "
                    f"{REPORT_UNIT_IMAGES:,} world images (neurovis.glyphs.evaluation.unit_modes)")
    oracle = load_oracle("glyphs").to(kept_rgb01.device)
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
