"""The files of a report folder and the ``facets.json`` schema (``schema_version`` 1).

A report folder holds ``index.html`` (self-contained: opens from disk, no network),
``facets.json`` (what a pipeline reads), ``samples.h5`` (every sample) and ``img/*.png``.
Paths in the JSON are relative to the folder. Samples are numbered in *flat order*:
sample ``i`` is row ``i // (T + 1)`` of the chains, step ``i % (T + 1)``. Floats that are
undefined (e.g. diversity of one sample) are ``null``; the file never holds NaN.

``facets.json``::

    schema_version   1 (int; bumped on any incompatible change)
    format           "neurovis.analysis"
    created          UTC time, ISO 8601
    title            what was visualised, in words
    status           "ok" | "nothing_passed_threshold" | "single_facet" | "dead_unit"
    status_reason    one paragraph explaining the status (also on the page)
    condition        the condition's description (type, model, layer, unit or class, ...)
    probability      which softmax p is ("softmax over classes", "softmax over the
                     layer's units (channel k at position ...)", ...)
    threshold        samples with p >= threshold are kept
    counts           {chains, steps, samples, failed_chains, kept, picked}
    figures          {acceptance_rate   kept / samples,
                      n_facets,
                      effective_n_facets  exp(entropy of facet size fractions) | null,
                      mean_pairwise_distance  over kept samples, in feature_space | null,
                      vendi_score      cosine kernel, over kept samples | null,
                      stability_ari    {mean, std, n_bootstrap} | null (k < 2),
                      silhouette       at the chosen k | null}
    feature_space    {name: code|pixels|layer|custom, description, dims}
    clustering       {method, reduction, k, chosen_by: given|silhouette|null|too_few_samples,
                      k_range, silhouette_by_k, silhouette, null_silhouette, null_margin,
                      k_tolerance: k is the largest within it of the best silhouette}
    facets           list, largest first:
                     {id, size, fraction, members: [sample...],
                      medoid: {sample, chain, step, image},
                      prob: {mean, min}, activation: {mean, min},
                      diversity: {mean_pairwise_distance, vendi_score},
                      thumbnails: [{sample, image}],
                      attribution: {method, target, image, value, baseline_value,
                                    convergence_delta} | null,
                      natural_neighbours: [{index, name, distance, image}] | null,
                      no_natural_neighbour: bool | null}
    grid             {side, embedding, assignment, image,
                      samples: [sample...], cells: [[row, col]...], facets: [id...]}
                     (one entry per picked sample; cells are distinct) | null
    filmstrip        {chain, steps: [...], image} | null
    natural          {source, top: [{index, name, activation, prob, image}],
                      random: [...same...], random_rule, feature_space, flag_distance,
                      flag_rule} | null (no natural images given)
    files            {html, json, samples, images, thumbnail}
    reproducibility  {command, report_config, sampling_config, seeds: {sampling, report},
                      eps, rule, reset_every, weights: [{role, class, parameters,
                      state_sha256, file, file_sha256}], versions, device, timings_s}

``samples.h5`` (``format = "neurovis.samples"``, ``format_version = 1``; attribute
``facets_json`` holds the JSON above)::

    codes        (N, *code)   float32  chain code h (pixel priors: the image)
    images       (N, H, W, 3) uint8    RGB image of the sample
    probs        (N,)         float32  p (NaN after a chain failed)
    activations  (N,)         float32  the unit's pre-ReLU activation / class logit
    chain        (N,)         int64    the chain's id (its seed stream)
    step         (N,)         int64    step within the chain
    eps1         (N,)         float32  ε1 in force
    failed       (N,)         bool     the sample's chain failed (NaN/Inf)
    kept         (N,)         bool     p >= threshold
    picked       (N,)         bool     in the random pick laid out on the grid
    facet        (N,)         int64    facet id, -1 if not kept
    grid_cell    (N, 2)       int64    (row, col) on the grid, -1 if not picked

``layer.json`` (the index of ``neurovis layer``; ``format = "neurovis.layer"``)::

    schema_version, format, created, title, model, layer,
    units: [{unit, folder, status, acceptance_rate, n_facets, effective_n_facets,
             vendi_score, mean_pairwise_distance, thumbnail}],
    reproducibility: {command, versions, timings_s}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
FORMAT = "neurovis.analysis"
SAMPLES_FORMAT = "neurovis.samples"
SAMPLES_FORMAT_VERSION = 1
LAYER_FORMAT = "neurovis.layer"

REQUIRED_KEYS = (
    "schema_version", "format", "created", "title", "status", "status_reason", "condition", "probability",
    "threshold", "counts", "figures", "feature_space", "clustering", "facets", "grid", "filmstrip", "natural",
    "files", "reproducibility",
)


def clean(value: Any) -> Any:
    """``value`` made JSON-safe: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def validate(doc: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``doc`` is not a version-1 ``facets.json`` (light checks)."""
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise ValueError(f"facets.json lacks {missing}")
    if doc["schema_version"] != SCHEMA_VERSION or doc["format"] != FORMAT:
        raise ValueError(f"not a version-{SCHEMA_VERSION} {FORMAT} document")
    if doc["status"] not in ("ok", "nothing_passed_threshold", "single_facet", "dead_unit"):
        raise ValueError(f"unknown status {doc['status']!r}")
    sizes = [f["size"] for f in doc["facets"]]
    if sizes != sorted(sizes, reverse=True) or any(len(f["members"]) != f["size"] for f in doc["facets"]):
        raise ValueError("facets must be ordered by size and list all their members")
    if sum(sizes) not in (0, doc["counts"]["kept"]):
        raise ValueError("facet sizes must add up to the kept samples")
