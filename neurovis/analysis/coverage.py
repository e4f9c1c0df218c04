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
- **ground truth** (where the model's world has one): a hook the caller passes to
  :func:`neurovis.facets` (``truth=``, from the model's zoo entry: the glyph world's is
  :func:`neurovis.glyphs.coverage.glyph_ground_truth`) names what every kept sample shows;
  a mode of the class or unit is found when it holds at least :data:`FOUND_SHARE` of them.
"""

from __future__ import annotations

from typing import Any, Callable

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
MAX_SAMPLES = 400

GroundTruth = Callable[[Any, torch.Tensor, np.ndarray], "dict[str, Any] | None"]
"""``truth(condition, kept_rgb01, labels) -> dict | None``: the ground truth of a report's
kept samples. ``kept_rgb01`` ``(n, 3, H, W)`` float RGB in [0, 1], ``labels`` ``(n,)`` the
facet of each. The dict holds ``labeller`` (who named the samples), ``facets`` (``[{"facet",
"mode", "name", "share"}]``, each facet's most common named mode), ``realism`` and, where
the condition has known modes, ``rule``, ``modes`` (``[{"mode", "name", "share",
"found"}]``), ``n_modes`` and ``n_found``; ``None``: nothing to say for this condition."""


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
