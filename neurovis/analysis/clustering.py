"""Facets: clustering the kept samples, medoids, diversity and stability.

- Features ``X (N, D)`` are reduced by PCA to at most 50 dimensions (``Z``) for
  clustering; distances, medoids and diversity use the full ``X``.
- Facets are k-means clusters of ``Z`` (``n_init=4``, seeded). ``k`` is given, or chosen
  by the mean silhouette over ``k = 2…10``: the largest ``k`` whose silhouette lies within
  0.03 of the best one (:func:`choose_k`). The best silhouette alone folds rare facets
  into large ones when the silhouettes of several ``k`` are about equal; on glyph-world
  samples the tolerance raised the agreement with the oracle's modes (NMI) from 0.52 to
  0.60 on a chain seed it was not chosen on, and left it unchanged (0.23 → 0.24) on the
  default sampler's samples (``bench/facet_clustering.py --k-tolerance``). The data count
  as a *single* facet when the best silhouette does not beat, by 0.02, the best
  silhouette of a Gaussian null (same size, same per-axis variances in PCA space: one
  blob with the data's spread), or when fewer than 4 samples are kept.
- Duplicates (identical feature rows, common when chains collapse onto one state) are
  clustered as their distinct points weighted by their counts, and ``k`` is capped at the
  number of distinct points, so no facet is ever empty. Silhouettes are still measured
  over every sample. All samples identical: one facet (``chosen_by = "identical"``).
  Data without duplicates take exactly the unweighted path (same facets as before).
- Facets are numbered by size, largest first.
- Effective number of facets: ``exp(entropy of the size fractions)``.
- Diversity: mean pairwise Euclidean distance, and the Vendi score (Friedman & Dieng 2023)
  with the cosine-similarity kernel: ``exp(−Σ λ log λ)`` over the eigenvalues of ``K / N``.
- Stability: k-means refit on bootstrap resamples, labels predicted for all samples and
  compared with the facets by the adjusted Rand index (mean and std over resamples).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from neurovis.errors import NeurovisError

MIN_SAMPLES = 4
K_RANGE = (2, 10)
NULL_MARGIN = 0.02
K_TOLERANCE = 0.03
MAX_PCA_DIMS = 50
MAX_PAIRS_SAMPLES = 2000


@contextmanager
def few_threads() -> Iterator[None]:
    """Hold OpenMP/BLAS pools to ``min(4, cores // 2)`` threads (at least 1) in the block.

    scikit-learn's k-means and t-SNE spin OpenMP threads; on a small machine that is busy
    with other work (a training run), oversubscription made a 30-point t-SNE take 30 s
    instead of 0.2 s.
    """
    with threadpool_limits(limits=max(1, min(4, (os.cpu_count() or 1) // 2))):
        yield


@dataclass
class Clustering:
    """Facet labels of ``N`` samples and how they were chosen.

    Attributes:
        labels: ``(N,)`` int facet of each sample, 0 = largest.
        k: number of facets.
        chosen_by: ``"given"``, ``"silhouette"``, ``"null"`` (silhouette did not beat the
            Gaussian null: one facet), ``"too_few_samples"`` or ``"identical"`` (every
            sample is the same point: one facet).
        silhouette_by_k: mean silhouette per tried ``k``.
        null_silhouette: best silhouette of the Gaussian null (``None`` if not run).
        reduced: ``(N, d)`` PCA features used for clustering.
        reduction: what ``reduced`` is, in words.
        n_distinct: number of distinct feature rows among the ``N`` samples.
    """

    labels: np.ndarray
    k: int
    chosen_by: str
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    null_silhouette: float | None = None
    reduced: np.ndarray | None = None
    reduction: str = ""
    n_distinct: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "method": "k-means (scikit-learn, n_init=4) on PCA-reduced features",
            "reduction": self.reduction,
            "k": self.k,
            "chosen_by": self.chosen_by,
            "k_range": list(K_RANGE),
            "silhouette_by_k": {str(k): round(v, 6) for k, v in self.silhouette_by_k.items()},
            "silhouette": round(self.silhouette_by_k[self.k], 6) if self.k in self.silhouette_by_k else None,
            "null_silhouette": None if self.null_silhouette is None else round(self.null_silhouette, 6),
            "null_margin": NULL_MARGIN,
            "k_tolerance": K_TOLERANCE,
            "n_distinct": self.n_distinct,
        }


def reduce(x: np.ndarray, seed: int = 0, max_dims: int = MAX_PCA_DIMS) -> tuple[np.ndarray, str]:
    """PCA of ``x (N, D)`` to ``min(max_dims, N, D)`` dimensions: ``(Z, description)``."""
    from sklearn.decomposition import PCA

    n, d = x.shape
    dims = min(max_dims, n, d)
    if n < 3 or dims >= d:
        return x.astype(np.float64), f"none ({d} dimensions)"
    z = PCA(n_components=dims, random_state=seed).fit_transform(x.astype(np.float64))
    return z, f"PCA {d} → {dims} dimensions"


def _kmeans(z: np.ndarray, k: int, seed: int, weights: np.ndarray | None = None):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z, sample_weight=weights)


@dataclass(frozen=True)
class Distinct:
    """The distinct rows of ``z (N, d)``: ``rows (M, d)``, ``counts (M,)`` and ``inverse (N,)``
    (sample ``i`` is ``rows[inverse[i]]``); ``None`` from :func:`distinct` when all differ."""

    rows: np.ndarray
    counts: np.ndarray
    inverse: np.ndarray

    def labels(self, z: np.ndarray, k: int, seed: int) -> np.ndarray:
        """``(N,)`` k-means labels of every sample: distinct rows clustered with their
        counts as weights (``k ≤ M``), each sample labelled as its row."""
        fit = _kmeans(self.rows, k, seed, self.counts.astype(np.float64))
        return fit.labels_[self.inverse]


def distinct(x: np.ndarray) -> Distinct | None:
    """The distinct rows of ``x (N, D)``, or ``None`` when there are no duplicates."""
    if x.shape[0] < 2:
        return None
    rows, inverse, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    if rows.shape[0] == x.shape[0]:
        return None
    return Distinct(rows, counts, np.asarray(inverse).reshape(-1))


def _labels(z: np.ndarray, k: int, seed: int, dup: Distinct | None) -> np.ndarray:
    return _kmeans(z, k, seed).labels_ if dup is None else dup.labels(z, k, seed)


def _silhouettes(z: np.ndarray, seed: int, dup: Distinct | None = None) -> dict[int, tuple[float, np.ndarray]]:
    """Mean silhouette (over every sample) and labels per ``k`` in ``K_RANGE``, for the ``k``
    k-means can realise (``k`` ≤ distinct points, no empty cluster)."""
    from sklearn.metrics import silhouette_score

    n = z.shape[0]
    top = min(K_RANGE[1], n - 1) if dup is None else min(K_RANGE[1], n - 1, dup.rows.shape[0])
    out: dict[int, tuple[float, np.ndarray]] = {}
    for k in range(K_RANGE[0], top + 1):
        labels = _labels(z, k, seed, dup)
        if len(np.unique(labels)) < (2 if dup is None else k):
            continue
        score = silhouette_score(z, labels, sample_size=min(n, MAX_PAIRS_SAMPLES), random_state=seed)
        out[k] = (float(score), labels)
    return out


def choose_k(silhouette_by_k: dict[int, float], tolerance: float = K_TOLERANCE) -> int:
    """The largest ``k`` whose mean silhouette is within ``tolerance`` of the best one."""
    best = max(silhouette_by_k.values())
    return max(k for k, score in silhouette_by_k.items() if score >= best - tolerance)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber labels so facet 0 is the largest (ties: the one seen first)."""
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    remap = {int(uniq[i]): new for new, i in enumerate(order)}
    return np.array([remap[int(v)] for v in labels], dtype=np.int64)


def cluster(x: np.ndarray, n_facets: int | None = None, seed: int = 0) -> Clustering:
    """Cluster features ``x (N, D)`` into facets (see the module docstring)."""
    n = x.shape[0]
    if n == 0:
        return Clustering(np.zeros(0, np.int64), 0, "too_few_samples")
    if n_facets is not None and n_facets < 1:
        raise NeurovisError(f"the number of facets must be ≥ 1, got {n_facets}")
    z, reduction = reduce(x, seed)
    dup = distinct(x)
    m = n if dup is None else int(dup.rows.shape[0])
    if dup is not None:  # cluster z's rows of the distinct samples (x's duplicates are z's)
        dup = Distinct(z[np.unique(dup.inverse, return_index=True)[1]], dup.counts, dup.inverse)
    one = np.zeros(n, np.int64)
    if m == 1:
        return Clustering(one, 1, "given" if n_facets is not None else "identical", reduced=z, reduction=reduction,
                          n_distinct=m)
    if n_facets is not None:
        k = min(int(n_facets), m)
        labels = one if k == 1 else _by_size(_labels(z, k, seed, dup))
        return Clustering(labels, int(labels.max()) + 1, "given", reduced=z, reduction=reduction, n_distinct=m)
    if n < MIN_SAMPLES:
        return Clustering(one, 1, "too_few_samples", reduced=z, reduction=reduction, n_distinct=m)
    scores = _silhouettes(z, seed, dup)
    if not scores:
        return Clustering(one, 1, "too_few_samples", reduced=z, reduction=reduction, n_distinct=m)
    best_k = max(scores, key=lambda k: scores[k][0])
    rng = np.random.default_rng(seed)
    null = rng.standard_normal(z.shape) * z.std(axis=0, keepdims=True) + z.mean(axis=0, keepdims=True)
    null_scores = _silhouettes(null, seed)
    null_best = max((s for s, _ in null_scores.values()), default=-1.0)
    by_k = {k: s for k, (s, _) in scores.items()}
    if scores[best_k][0] <= null_best + NULL_MARGIN:
        return Clustering(one, 1, "null", by_k, null_best, z, reduction, m)
    k = choose_k(by_k)
    labels = _by_size(scores[k][1])
    return Clustering(labels, int(labels.max()) + 1, "silhouette", by_k, null_best, z, reduction, m)


def pairwise(x: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, N)`` between the rows of ``x``."""
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(x.astype(np.float64), metric="euclidean")


def medoid(x: np.ndarray) -> int:
    """Index (into ``x``) of the row with the smallest summed distance to the others."""
    if x.shape[0] <= 2:
        return 0
    return int(pairwise(x).sum(1).argmin())


def mean_pairwise_distance(x: np.ndarray, seed: int = 0) -> float | None:
    """Mean Euclidean distance over distinct pairs (on ≤ 2000 seeded rows); None if N < 2."""
    n = x.shape[0]
    if n < 2:
        return None
    if n > MAX_PAIRS_SAMPLES:
        x = x[np.random.default_rng(seed).choice(n, MAX_PAIRS_SAMPLES, replace=False)]
        n = MAX_PAIRS_SAMPLES
    return float(pairwise(x).sum() / (n * (n - 1)))


def vendi_score(x: np.ndarray) -> float | None:
    """Vendi score of ``x (N, D)`` with the cosine kernel: 1 (all alike) … N (orthogonal).

    Zero rows count as one shared direction, orthogonal to the rest.
    """
    n = x.shape[0]
    if n == 0:
        return None
    x = x.astype(np.float64).reshape(n, -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = norms[:, 0] <= 1e-12
    unit = np.where(zero[:, None], 0.0, x / np.maximum(norms, 1e-12))
    unit = np.concatenate([unit, zero[:, None].astype(np.float64)], axis=1)
    s = np.linalg.svd(unit / np.sqrt(n), compute_uv=False)
    lam = s**2
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def effective_number(sizes: list[int] | np.ndarray) -> float | None:
    """``exp(H)`` of the size fractions: k for k equal facets, ~1 for one dominant facet."""
    sizes = np.asarray(sizes, dtype=np.float64)
    sizes = sizes[sizes > 0]
    if sizes.size == 0:
        return None
    p = sizes / sizes.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def stability(z: np.ndarray, labels: np.ndarray, n_boot: int = 20, seed: int = 0) -> dict[str, Any] | None:
    """Bootstrap adjusted Rand index of the k-means facets (``None`` for k < 2).

    Returns ``{"mean", "std", "n_bootstrap"}``: for each resample (with replacement, seeded)
    k-means with the same k is refit and predicts all samples; ARI against ``labels``.
    """
    from sklearn.metrics import adjusted_rand_score

    k = int(labels.max()) + 1 if labels.size else 0
    n = z.shape[0]
    if k < 2 or n_boot < 1:
        return None
    rng = np.random.default_rng(seed)
    scores = []
    for b in range(n_boot):
        idx = rng.choice(n, n, replace=True)
        if len(np.unique(z[idx], axis=0)) < k:
            continue
        fit = _kmeans(z[idx], k, seed + b + 1)
        scores.append(adjusted_rand_score(labels, fit.predict(z)))
    if not scores:
        return None
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "n_bootstrap": len(scores)}
