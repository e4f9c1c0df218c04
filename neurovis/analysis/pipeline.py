"""The facet pipeline (SPEC §4): chains -> kept samples -> facets, grid, figures -> report.

>>> chains = nv.sample(prior, nv.UnitCondition(model, "conv5", 3), chains=10, steps=200)
>>> report = nv.facets(chains, threshold=0.97, pick=400, seed=0)   # doctest: +SKIP
>>> report.status, report.figures["n_facets"], [f.size for f in report.facets]
>>> nv.write_report(report, "out/conv5_3")   # index.html, facets.json, samples.h5, img/*.png
"""

from __future__ import annotations

import datetime as _dt
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neurovis._utils.torch_utils import eval_mode
from neurovis.analysis import clustering as cl
from neurovis.analysis.attribution import attribute
from neurovis.analysis.coverage import GroundTruth, natural_coverage
from neurovis.analysis.features import FeatureFn, Features, compute_features
from neurovis.analysis.grid import Grid, grid_layout
from neurovis.analysis.natural import NaturalAnalysis, NaturalImages, analyse, load_image_folder, score
from neurovis.analysis.provenance import Timer, device_info, versions, weights_identity
from neurovis.analysis.select import STATUS_TEXT, Selection, dead_unit_reason, select
from neurovis.chains import Chains, decode_samples
from neurovis.conditions import InpaintCondition, UnitCondition, _model_input
from neurovis.errors import NeurovisError
from neurovis.method import NATURAL_PERCENTILE

N_THUMBNAILS = 12


@dataclass
class Facet:
    """One facet: a cluster of kept samples.

    Attributes:
        id: 0 for the largest facet, then by decreasing size.
        members: ``(size,)`` flat sample indices, ascending.
        medoid: flat index of the member with the smallest summed distance to the others
            in the feature space.
        prob_mean, prob_min, act_mean, act_min: probability and raw activation over members.
        mean_pairwise_distance, vendi_score: within-facet diversity in the feature space.
        thumbnails: flat indices of members to show (≤ 12, spread over distance to medoid).
        heat: ``(H, W)`` attribution of the medoid in [0, 1], or None.
        attribution: method, target and checks of ``heat``, or None.
    """

    id: int
    members: np.ndarray
    medoid: int
    prob_mean: float
    prob_min: float
    act_mean: float
    act_min: float
    mean_pairwise_distance: float | None
    vendi_score: float | None
    thumbnails: np.ndarray
    heat: np.ndarray | None = None
    attribution: dict[str, Any] | None = None

    @property
    def size(self) -> int:
        return int(self.members.size)


@dataclass
class FacetReport:
    """The result of :func:`facets`: status, facets, figures, grid; :meth:`write` saves it.

    Attributes:
        status: ``ok`` | ``nothing_passed_threshold`` | ``single_facet`` | ``dead_unit``.
        status_reason: the explanation shown on the page.
        facets: list of :class:`Facet`, largest first.
        figures: acceptance rate, number and effective number of facets, diversity
            (mean pairwise distance, Vendi score), stability (bootstrap ARI), silhouette, and
            ``collapsed_chains`` (chains stuck on one state, :func:`collapsed_chains`) and
            ``identical_chains`` (chains that are copies of each other, :func:`identical_chains`).
        selection: kept and picked samples (flat indices).
        labels: ``(N,)`` facet per sample, −1 if not kept.
        grid: the t-SNE grid of the picked samples (None if none were picked).
        images: ``(N, H, W, 3)`` uint8 RGB of every sample.
        features: the feature space of the kept samples.
        clustering: how the facets were found.
        natural: what natural images say (None without a source).
        chains: the chains the report is about.
    """

    status: str
    status_reason: str
    facets: list[Facet]
    figures: dict[str, Any]
    selection: Selection
    labels: np.ndarray
    grid: Grid | None
    images: np.ndarray
    features: Features | None
    clustering: cl.Clustering | None
    natural: NaturalAnalysis | None
    natural_images: NaturalImages | None
    chains: Chains
    config: dict[str, Any]
    provenance: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)

    @property
    def picked_samples(self) -> np.ndarray:
        """Flat indices of the picked samples (the grid's order)."""
        return self.selection.picked

    @property
    def title(self) -> str:
        """What the unit is: the class name for a model's output layer where the model has
        class names; layer, channel and position for a hidden unit."""
        cond = self.chains.config.get("condition", {})
        base = getattr(self.chains.condition, "condition", self.chains.condition)
        names = getattr(getattr(base, "model", None), "class_names", None)
        if cond.get("type") == "unit" and isinstance(cond.get("unit"), int):
            keep = self.selection.keep or {}
            if "output" in str(keep.get("note", "")) and names and cond["unit"] < len(names):
                return f"{cond.get('model')} · {names[cond['unit']]} (layer {cond.get('layer')}, unit {cond['unit']})"
            where = (str(cond.get("selector") or "").replace(f"unit {cond['unit']} ", "").strip("() ")
                     .replace("channel ", "").replace(" on a spatial layer", ""))
            return (f"{cond.get('model')} · layer {cond.get('layer')} · channel {cond['unit']}"
                    + (f" ({where})" if where else ""))
        return describe_condition(cond)

    @property
    def thumbnail(self) -> np.ndarray:
        """``(H, W, 3)`` uint8: the largest facet's medoid, else the best chain's last sample."""
        if self.facets:
            return self.images[self.facets[0].medoid]
        return self.images[self.filmstrip_chain() * (self.chains.n_steps + 1) + self.chains.n_steps]

    def filmstrip_chain(self) -> int:
        """Row of the chain shown in the filmstrip: most kept samples, then highest final p."""
        probs = np.nan_to_num(self.chains.probs.numpy(), nan=-1.0)
        kept = (probs >= self.selection.threshold).sum(1)
        return int(np.lexsort((-probs[:, -1], -kept))[0])


def describe_condition(cond: dict[str, Any]) -> str:
    """A one-line title for a condition description (plain text; escaped when shown)."""
    kind = cond.get("type")
    if kind == "unit":
        return f"{cond.get('model')} · layer {cond.get('layer')} · unit {cond.get('unit')}"
    if kind == "class":
        name, index = cond.get("class_name"), cond.get("class")
        label = name if name and str(name).startswith(f"class {index}") else f"class {index}" + (f" ({name})" if name else "")
        return f"{cond.get('model')} · {label}"
    if kind == "combined":
        return " and ".join(describe_condition(p) for p in cond.get("parts", []))
    if kind == "inpaint":
        return "inpainting: " + describe_condition(cond.get("inner", {}))
    if kind == "callable":
        return f"condition {cond.get('name')}"
    if kind == "caption":
        return f"caption: {cond.get('text') or cond.get('name')}"
    return str(kind or "condition")


def _is_unit(cond: dict[str, Any]) -> bool:
    if cond.get("type") == "unit":
        return True
    if cond.get("type") == "inpaint":
        return _is_unit(cond.get("inner", {}))
    return False


def _thumbnails(members: np.ndarray, dist_to_medoid: np.ndarray, n: int = N_THUMBNAILS) -> np.ndarray:
    """Up to ``n`` members spread evenly over their distance to the medoid (nearest first)."""
    order = members[np.argsort(dist_to_medoid, kind="stable")]
    if order.size <= n:
        return order
    return order[np.linspace(0, order.size - 1, n).round().astype(int)]


def _weights(chains: Chains) -> list[dict[str, Any]]:
    out = []
    seen: set[int] = set()
    if chains.condition is not None:
        for i, m in enumerate(chains.condition.modules()):
            if id(m) not in seen:
                seen.add(id(m))
                out.append(weights_identity("condition network" + (f" {i}" if i else ""), m))
    prior = chains.prior
    if prior is not None:
        for attr in ("generator", "encoder", "dae", "denoiser"):
            m = getattr(prior, attr, None)
            if isinstance(m, torch.nn.Module) and id(m) not in seen:
                seen.add(id(m))
                out.append(weights_identity(f"prior {attr}", m))
    return out


def _dead(acts: np.ndarray, is_unit: bool, nat_scores: tuple[np.ndarray, np.ndarray] | None) -> tuple[str | None, str]:
    """``(why the unit is dead or None, a note for nothing_passed_threshold)``.

    A unit the samples never activate is still alive when natural images activate it:
    then the chains (or the prior) failed, and the status is ``nothing_passed_threshold``.
    """
    n = acts.size
    dead = dead_unit_reason(acts, is_unit)
    if dead is None:
        return None, ""
    if nat_scores is None:
        return f"{dead} over all {n} samples", ""
    if dead_unit_reason(nat_scores[0], is_unit) is None:
        top = float(np.nanmax(nat_scores[0]))
        return None, (f" The samples never activated it, yet natural images do (activation up to {top:.3g}): "
                      "the prior may not reach what the unit responds to.")
    return f"{dead} over all {n} samples and all {nat_scores[0].size} natural images", ""


def _facets(clus: cl.Clustering, x: np.ndarray, kept: np.ndarray, probs: np.ndarray, acts: np.ndarray,
            seed: int) -> list[Facet]:
    """The :class:`Facet` of each cluster: members, medoid, statistics, thumbnails."""
    out = []
    for f in range(clus.k):
        local = np.flatnonzero(clus.labels == f)
        if not local.size:  # never expected (clustering caps k at the distinct points); never fatal
            continue
        members = kept[local]
        xf = x[local]
        d = cl.pairwise(xf) if local.size > 1 else np.zeros((1, 1))
        m_local = int(d.sum(1).argmin())
        out.append(Facet(
            id=f, members=members, medoid=int(members[m_local]),
            prob_mean=float(probs[members].mean()), prob_min=float(probs[members].min()),
            act_mean=float(acts[members].mean()), act_min=float(acts[members].min()),
            mean_pairwise_distance=cl.mean_pairwise_distance(xf, seed), vendi_score=cl.vendi_score(xf),
            thumbnails=_thumbnails(members, d[m_local]),
        ))
    return out


SAME_CODE_RTOL, SAME_CODE_ATOL = 1e-5, 1e-6
"""Two codes count as the same state when ``|a − b| ≤ atol + rtol·|b|`` everywhere: chains
run without noise (ε3 = 1e-17) differ from their copies only in the last bits."""


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: row ``t`` of ``a`` ``(n, D)`` is the same code as row ``t`` of ``b``."""
    return (np.abs(a - b) <= SAME_CODE_ATOL + SAME_CODE_RTOL * np.abs(b)).all(-1)


def collapsed_chains(chains: Chains) -> list[dict[str, int]]:
    """Chains that collapsed onto one state: ``[{"chain": id, "from_step": s}]``.

    A chain (not failed) counts as collapsed when its code stays the same (to
    :data:`SAME_CODE_RTOL`) from step ``s`` to the last sample and it held that state for
    at least half of its ``T + 1`` samples (and at least 2); ``s`` is the first step of
    that final run of equal codes.
    """
    out = []
    n = chains.codes.shape[1]
    need = max(2, (n + 1) // 2)
    failed = chains.failed.numpy().astype(bool)
    ids = chains.chain_ids.numpy()
    for c in range(chains.n_chains):
        if failed[c] or n < need:
            continue
        flat = chains.codes[c].reshape(n, -1).numpy()
        same = _same(flat, flat[-1:].repeat(n, 0))
        differs = np.flatnonzero(~same)
        start = int(differs[-1]) + 1 if differs.size else 0
        if n - start >= need:
            out.append({"chain": int(ids[c]), "from_step": start})
    return out


def identical_chains(chains: Chains) -> list[dict[str, Any]]:
    """Groups of chains that follow one and the same trajectory: ``[{"chains": [ids],
    "from_step": s}]``.

    Chains (not failed) whose codes are the same (to :data:`SAME_CODE_RTOL`) sample for
    sample from step ``s`` to the end, for at least half of the ``T + 1`` samples (and at
    least 2): e.g. chains that start from one code (inpainting starts every chain from the
    photo's code) with no noise, or chains that merged. They are one chain sampled
    several times.
    """
    n = chains.codes.shape[1]
    need = max(2, (n + 1) // 2)
    live = np.flatnonzero(~chains.failed.numpy().astype(bool))
    if live.size < 2 or n < need:
        return []
    flat = chains.codes.reshape(chains.n_chains, n, -1).numpy()
    ids = chains.chain_ids.numpy()
    heads: list[int] = []  # candidates: chains grouped by their last code
    group: dict[int, list[int]] = {}
    for c in live:
        head = next((h for h in heads if _same(flat[c, -1:], flat[h, -1:])[0]), None)
        if head is None:
            heads.append(int(c))
            group[int(c)] = []
        else:
            group[head].append(int(c))
    out = []
    for first, others in group.items():
        starts = {}
        for m in others:
            differs = np.flatnonzero(~_same(flat[m], flat[first]))
            start = int(differs[-1]) + 1 if differs.size else 0
            if n - start >= need:
                starts[int(m)] = start
        if starts:
            rows = [int(first), *starts]
            out.append({"chains": [int(ids[r]) for r in rows], "from_step": max(starts.values())})
    return out


def failure_causes(chains: Chains) -> str:
    """The failed chains and why, in words (from ``config["failures"]`` when recorded)."""
    ids = chains.chain_ids.numpy()
    rows = [int(i) for i in np.flatnonzero(chains.failed.numpy())]
    known = {int(f["chain"]): f for f in chains.config.get("failures") or [] if isinstance(f, dict) and "chain" in f}
    parts = []
    for r in rows:
        f = known.get(int(ids[r]))
        parts.append(f"chain {int(ids[r])} at step {f.get('step')} ({f.get('what')})" if f else f"chain {int(ids[r])}")
    text = "; ".join(parts[:8]) + (f"; and {len(parts) - 8} more" if len(parts) > 8 else "")
    return text if known else text + " (NaN/Inf; the chains do not record what was non-finite)"


def _status(dead: str | None, n_kept: int, clus: cl.Clustering | None, threshold: float, n_facets: int,
            natural_note: str) -> tuple[str, str]:
    """The pipeline status and its explanation (rules in :mod:`neurovis.analysis.select`)."""
    if dead is not None:
        return "dead_unit", STATUS_TEXT["dead_unit"].format(why=dead)
    if not n_kept:
        return "nothing_passed_threshold", STATUS_TEXT["nothing_passed_threshold"].format(threshold=threshold) + natural_note
    if clus is not None and clus.k == 1:
        if clus.chosen_by == "given":
            reason = "one facet was asked for"
        elif clus.chosen_by == "too_few_samples":
            reason = f"only {n_kept} sample(s) passed, fewer than {cl.MIN_SAMPLES}"
        elif clus.chosen_by == "identical":
            reason = f"all {n_kept} kept samples are one and the same point (the chains collapsed onto one state)"
        else:
            best = max(clus.silhouette_by_k.values()) if clus.silhouette_by_k else float("nan")
            reason = (f"the best silhouette over k = 2…10 ({best:.3f}) does not beat a structureless Gaussian "
                      f"null ({clus.null_silhouette:.3f}) by {cl.NULL_MARGIN}")
        return "single_facet", STATUS_TEXT["single_facet"].format(why=reason)
    return "ok", STATUS_TEXT["ok"].format(n_facets=n_facets)


def is_output_layer(condition: Any, x: torch.Tensor, space: Any) -> bool:
    """Whether a unit condition reads the model's output layer (a class logit), so that the
    report keeps its samples by probability as for a class: the layer's output on ``x``
    (images in ``space``) is the model's output."""
    base = condition.condition if isinstance(condition, InpaintCondition) else condition
    if not isinstance(base, UnitCondition):
        return False
    module = dict(base.model.named_modules())[base.layer_path]
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad(), eval_mode([base.model]):
            out = base.model(_model_input(base.model, x, space, base.input_space))
    finally:
        handle.remove()
    return bool(seen) and isinstance(out, torch.Tensor) and isinstance(seen[-1], torch.Tensor) \
        and seen[-1].shape == out.shape and torch.equal(seen[-1], out)


def keep_rule(chains: Chains, keep: str | None, threshold: float, nat_images: "NaturalImages | None",
              nat_scores: tuple[np.ndarray, np.ndarray] | None) -> tuple[float | None, dict[str, Any]]:
    """``(activation threshold or None, description)`` of how the report keeps samples.

    ``keep="activation"`` applies to hidden units (not a model's output layer) with natural
    images: a sample is kept when the unit's activation reaches the 99th percentile of its
    activation on the natural images (:data:`~neurovis.method.NATURAL_PERCENTILE`), i.e.
    drives the unit as strongly as its strongest 1% of real images. Everything else is kept
    by ``p ≥ threshold`` (the paper's rule)."""
    prob_rule = {"rule": "probability", "threshold": float(threshold),
                 "text": f"{chains.config.get('probability', 'probability')} ≥ {threshold:g}"}
    if keep != "activation" or not _is_unit(chains.config.get("condition", {})):
        return None, prob_rule
    if nat_images is None or nat_scores is None or len(nat_images) == 0:
        prob_rule["note"] = "no natural images, so the paper's probability rule (pass natural images for the activation rule)"
        return None, prob_rule
    x = chains.prior.pixel_space.from_rgb01(nat_images.rgb01(slice(0, 2)).to(chains.prior.device))  # type: ignore[union-attr]
    if is_output_layer(chains.condition, x, chains.prior.pixel_space):  # type: ignore[union-attr]
        prob_rule["note"] = "the layer is the model's output (a class), kept by probability"
        return None, prob_rule
    acts = nat_scores[0][np.isfinite(nat_scores[0])]
    if acts.size == 0:
        return None, prob_rule
    level = float(np.percentile(acts, NATURAL_PERCENTILE))
    return level, {
        "rule": "activation", "activation_threshold": level, "percentile": NATURAL_PERCENTILE,
        "natural_images": int(acts.size), "natural_source": nat_images.source,
        "text": (f"activation ≥ {level:.4g}, the {NATURAL_PERCENTILE:g}th percentile of the unit's activation over "
                 f"{acts.size:,} natural images (as strongly as its strongest 1% of real images)"),
    }


def facets(
    chains: Chains,
    threshold: float | None = None,
    pick: int = 400,
    n_facets: int | None = None,
    seed: int = 0,
    *,
    features: str | FeatureFn | None = None,
    natural_images: NaturalImages | str | Path | None = None,
    attribution: bool = True,
    bootstrap: int = 20,
    command: str | Sequence[str] | None = None,
    timings: dict[str, float] | None = None,
    progress: bool = True,
    batch_size: int = 64,
    keep: str | None = None,
    truth: GroundTruth | None = None,
) -> FacetReport:
    """Find the facets of what the chains sampled (SPEC §4).

    Keeps samples with ``p ≥ threshold`` (``p`` as the condition defines it: see the
    report's ``probability``), picks up to ``pick`` of them at random (seeded) for the
    t-SNE grid, clusters *all* kept samples into facets in the feature space, and measures
    them. Needs the chains' prior (to decode images); the condition (attached by
    :func:`neurovis.sample`) is needed for attributions and natural images.

    Args:
        chains: the result of :func:`neurovis.sample` (or :func:`neurovis.load_chains`
            with ``prior=`` and ``condition=``).
        threshold: keep samples with ``p ≥ threshold`` (default the run's method's, 0.97).
        keep: hidden units' keep rule, ``"probability"`` or ``"activation"`` (default the
            run's method's: ``activation`` for the recommended method, ``probability`` for
            the paper preset; see :func:`keep_rule`). Starts and restarts are never kept.
        pick: at most this many kept samples are laid out on the grid.
        n_facets: number of facets; ``None`` chooses it by silhouette over 2…10 (the largest
            k within 0.03 of the best silhouette, :func:`~neurovis.analysis.clustering.choose_k`).
        seed: seeds the pick, k-means, t-SNE, bootstrap and random natural images.
        features: the feature space: ``"network"`` (default for code priors with a unit or
            class condition: the condition network's last activation maps, pooled),
            ``"code"`` (default for other code-prior conditions), ``"pixels"`` (default
            for pixel priors), ``"layer"`` or a function
            ``(codes, images_rgb01) -> (N, D)``; see :mod:`neurovis.analysis.features`.
        natural_images: a :class:`NaturalImages` or an image folder; adds the top-9 and
            random-9 natural images and each facet's nearest natural images.
        truth: the ground-truth hook ``truth(condition, kept_rgb01, labels) -> dict | None``
            (:data:`~neurovis.analysis.coverage.GroundTruth`) whose answer becomes
            ``coverage["ground_truth"]``; default the one the condition's model carries as
            ``ground_truth`` (``nv.load_model`` sets it from the model's zoo entry: the glyph
            world's oracle for ``glyphs``), else none.
        attribution: compute an integrated-gradients heatmap on each facet's medoid.
        bootstrap: resamples for the stability (ARI) figure; 0 skips it.
        command: the command line that made the report (recorded for reproducibility).
        timings: earlier stages' wall times (seconds) to record with the report's own.
        progress: progress bars on stderr.

    Returns:
        a :class:`FacetReport`; ``nv.write_report(report, out_dir)`` writes the report folder.
    """
    method = chains.config.get("method") or {}
    threshold = float(method.get("threshold", 0.97)) if threshold is None else threshold
    keep = method.get("keep", "probability") if keep is None else keep
    if not 0 <= threshold or not np.isfinite(threshold):
        raise NeurovisError(f"threshold must be a finite number ≥ 0, got {threshold}")
    if pick < 1:
        raise NeurovisError(f"pick must be ≥ 1, got {pick}")
    if n_facets is not None and n_facets < 1:
        raise NeurovisError(f"the number of facets must be ≥ 1, got {n_facets}")
    if chains.n_chains and bool(chains.failed.all()):
        raise NeurovisError(
            f"every chain failed, so there is nothing to report: {failure_causes(chains)}; lower lr or eps "
            "(step_size), or check the model and condition for NaN/Inf"
        )
    timer = Timer()
    timer.stages.update(timings or {})
    if "sampling" not in timer.stages and "wall_time_s" in chains.config:
        timer.stages["sampling"] = float(chains.config["wall_time_s"])
    cond_desc = chains.config.get("condition", {})

    with timer("decode"):
        images = decode_samples(chains, batch_size=batch_size, space="uint8", progress=progress).permute(0, 2, 3, 1).numpy()
    n_samples = images.shape[0]
    nat_images: NaturalImages | None = None
    nat_scores = None
    if natural_images is not None:
        if chains.condition is None or chains.prior is None:
            raise NeurovisError("natural images need the chains' condition and prior attached")
        with timer("natural"):
            size = tuple(images.shape[1:3])
            nat_images = (natural_images if isinstance(natural_images, NaturalImages)
                          else load_image_folder(natural_images, size, seed=seed)).resized(size)  # type: ignore[arg-type]
            nat_scores = score(chains.condition, nat_images, chains.prior.pixel_space)
    with timer("select"):
        act_level, keep_desc = keep_rule(chains, keep, threshold, nat_images, nat_scores)
        sel = select(chains, threshold, pick, seed, act_level, keep_desc)
        acts = chains.activations.numpy().reshape(-1)
        probs = chains.probs.numpy().reshape(-1)
        dead, natural_note = _dead(acts, _is_unit(cond_desc), nat_scores)

    labels = np.full(n_samples, -1, dtype=np.int64)
    facet_list: list[Facet] = []
    feats: Features | None = None
    clus: cl.Clustering | None = None
    grid: Grid | None = None
    figures: dict[str, Any] = {
        "acceptance_rate": sel.kept.size / max(n_samples, 1), "n_facets": 0, "effective_n_facets": None,
        "mean_pairwise_distance": None, "vendi_score": None, "stability_ari": None, "silhouette": None,
        "collapsed_chains": collapsed_chains(chains), "identical_chains": identical_chains(chains),
    }
    kept = sel.kept
    if dead is None and kept.size:
        flat_codes = chains.codes.reshape(-1, *chains.codes.shape[2:])
        with timer("features"):
            rgb = torch.from_numpy(images[kept]).permute(0, 3, 1, 2)  # uint8, converted per batch
            feats = compute_features(features, flat_codes[kept], rgb, chains.prior, chains.condition, batch_size)
            x = feats.values
        with timer("cluster"), cl.few_threads():
            clus = cl.cluster(x, n_facets, seed)
            labels[kept] = clus.labels
            facet_list = _facets(clus, x, kept, probs, acts, seed)
            figures.update(
                n_facets=clus.k,
                effective_n_facets=cl.effective_number([f.size for f in facet_list]),
                mean_pairwise_distance=cl.mean_pairwise_distance(x, seed),
                vendi_score=cl.vendi_score(x),
                silhouette=clus.silhouette_by_k.get(clus.k),
            )
        with timer("stability"), cl.few_threads():
            if bootstrap and clus.k >= 2 and clus.reduced is not None:
                figures["stability_ari"] = cl.stability(clus.reduced, clus.labels, bootstrap, seed)
        with timer("grid"), cl.few_threads():
            local_pick = np.searchsorted(kept, sel.picked)
            grid = grid_layout(x[local_pick], clus.labels[local_pick], seed)
        if attribution and chains.condition is not None and chains.prior is not None:
            with timer("attribution"):
                prior = chains.prior
                for f in tqdm(facet_list, disable=not progress, file=sys.stderr, desc="attribution", leave=False):
                    medoid = decode_samples(chains, which=divmod(int(f.medoid), chains.n_steps + 1), space="model")
                    f.heat, f.attribution = attribute(chains.condition, medoid.to(prior.device), prior.pixel_space)
    status, why = _status(dead, kept.size, clus, threshold, figures["n_facets"], natural_note)
    if status == "nothing_passed_threshold" and act_level is not None:
        why = (f"No sample reached the keep rule ({keep_desc['text']}): the chains never drove the unit as far as "
               "its strongest real images. Run longer chains (--steps) or more chains (--chains).") + natural_note
    collapsed = figures["collapsed_chains"]
    if collapsed:
        listed = ", ".join(f"{c['chain']} (from step {c['from_step']})" for c in collapsed[:8])
        why += (f" {len(collapsed)} of {chains.n_chains} chains collapsed onto one state and stopped moving: "
                f"chain {listed}{', …' if len(collapsed) > 8 else ''}.")
    for group in figures["identical_chains"][:4]:
        listed = ", ".join(str(c) for c in group["chains"][:12]) + (", …" if len(group["chains"]) > 12 else "")
        why += (f" Chains {listed} follow one and the same trajectory from step {group['from_step']} on (e.g. one "
                "start and no noise): they are one chain sampled several times.")

    nat: NaturalAnalysis | None = None
    if nat_images is not None:
        with timer("natural"):
            medoids = None
            if facet_list:
                medoids = torch.from_numpy(images[[f.medoid for f in facet_list]]).permute(0, 3, 1, 2)
            nat = analyse(nat_images, chains.condition, chains.prior.pixel_space, medoids, seed,  # type: ignore[union-attr,arg-type]
                          scores=nat_scores)

    coverage: dict[str, Any] = {}
    if dead is None and sel.picked.size and chains.condition is not None and chains.prior is not None:
        with timer("coverage"):
            picked_rgb = torch.from_numpy(images[sel.picked]).permute(0, 3, 1, 2)
            if nat_images is not None and nat_scores is not None:
                coverage["natural"] = natural_coverage(chains.condition, chains.prior.pixel_space, nat_images,
                                                       nat_scores[0], picked_rgb, seed)
            truth = truth if truth is not None else model_truth(chains.condition)
            coverage["ground_truth"] = (truth(chains.condition, picked_rgb.float() / 255.0, labels[sel.picked])
                                        if truth is not None else None)
    coverage["summary"] = summary_line(status, figures["n_facets"], coverage)

    if command is None:
        command = "neurovis.facets(chains, threshold=%r, pick=%r, n_facets=%r, seed=%r)" % (threshold, pick, n_facets, seed)
    elif not isinstance(command, str):
        command = shlex.join(list(command))
    config = {
        "threshold": threshold, "keep": keep_desc, "pick": pick, "n_facets": n_facets, "seed": seed,
        "features": features if isinstance(features, str) or features is None else "custom",
        "natural_images": None if nat_images is None else nat_images.source,
        "attribution": bool(attribution), "bootstrap": bootstrap,
    }
    device = chains.config.get("device", "cpu")
    provenance = {
        "command": command,
        "weights": _weights(chains),
        "versions": versions(),
        "device": device_info(device if isinstance(device, str) else "cpu"),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return FacetReport(status, why, facet_list, figures, sel, labels, grid, images, feats, clus, nat, nat_images,
                       chains, config, provenance, timer.stages, coverage)


def model_truth(condition: Any) -> GroundTruth | None:
    """The ground-truth hook the condition's model carries (its ``ground_truth``
    attribute, set by ``nv.load_model`` from the model's zoo entry), or ``None``."""
    base = condition.condition if isinstance(condition, InpaintCondition) else condition
    hook = getattr(getattr(base, "model", None), "ground_truth", None)
    return hook if callable(hook) else None


def summary_line(status: str, n_facets: int, coverage: dict[str, Any]) -> str:
    """The report's answer in plain words: how many facets, what they show (where a
    labeller exists), and what is missing (ground-truth modes, natural clusters)."""
    if status in ("dead_unit", "nothing_passed_threshold"):
        return "No facets found: " + ("the unit never activates." if status == "dead_unit" else
                                      "no sample passed the keep rule.")
    n = max(int(n_facets), 1)
    text = f"{n} facet{'s' if n != 1 else ''} found"
    truth = coverage.get("ground_truth")
    if truth and truth.get("facets"):
        counts: dict[str, int] = {}
        for f in truth["facets"]:
            counts[f["name"]] = counts.get(f["name"], 0) + 1
        text += ": " + ", ".join(name + (f" ({n} facets)" if n > 1 else "") for name, n in counts.items())
    text += "."
    if truth and truth.get("modes"):
        missing = [m["name"] for m in truth["modes"] if not m["found"]]
        text += (f" Modes of this {'class' if 'class' in truth.get('rule', '') else 'unit'}: {truth['n_modes']}, "
                 f"found: {truth['n_found']}" + (f" (missed: {', '.join(missing)})." if missing else "."))
    nat = coverage.get("natural")
    if nat:
        text += (f" Natural images: {nat['n_found']} of {nat['n_clusters']} clusters of its top images found"
                 + (f", {len(nat['missed'])} missed (shown below)." if nat["missed"] else "."))
    return text
