"""The t-SNE grid: picked samples laid out on a square grid of cells (Fig. S11, S19).

1. Embed the picked samples' features in 2-D with t-SNE (scikit-learn, PCA init, seeded,
   perplexity ``min(30, (N − 1) / 3)``); with fewer than 5 samples, the first two PCA
   axes (or a line) stand in for t-SNE.
2. Scale the embedding to the ``side × side`` grid (``side = ceil(√N)``) and assign each
   sample to its own cell by an exact optimal assignment (scipy
   ``linear_sum_assignment`` on squared distances to the cell centres).
3. Above :data:`EXACT_LIMIT` samples, the exact assignment (cubic) is done within groups:
   the facets, ordered along the embedding's main axis, each get a contiguous run of
   cells in that order (cells sorted the same way), and a group still larger than the
   limit is split at its median along its wider axis, recursively.

The result is injective: no two samples share a cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

EXACT_LIMIT = 2500


@dataclass
class Grid:
    """Cells of the picked samples.

    Attributes:
        side: the grid is ``side × side``.
        cells: ``(N, 2)`` int ``(row, col)`` of each picked sample, all distinct.
        embedding: ``(N, 2)`` float, the 2-D embedding (t-SNE or its stand-in).
        method: how the embedding was made, in words.
        assignment: ``"exact"`` or ``"within groups"``.
    """

    side: int
    cells: np.ndarray
    embedding: np.ndarray
    method: str
    assignment: str

    def describe(self) -> dict[str, Any]:
        return {"side": self.side, "embedding": self.method, "assignment": self.assignment}


def embed(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D embedding of ``x (N, D)``: t-SNE for N ≥ 5, else PCA (or a line)."""
    n = x.shape[0]
    x = x.astype(np.float64).reshape(n, -1)
    if n >= 5:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (n - 1) / 3.0))
        e = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
        return e, f"t-SNE (scikit-learn, perplexity {perplexity:.3g}, PCA init, seed {seed})"
    if n >= 3 and x.shape[1] >= 2:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x), f"PCA (only {n} samples: too few for t-SNE)"
    return np.stack([np.arange(n, dtype=np.float64), np.zeros(n)], 1), f"a line (only {n} samples)"


def _scale(e: np.ndarray, side: int) -> np.ndarray:
    """Embedding scaled per axis onto ``[0, side − 1]`` (in (row, col) = (y, x) order)."""
    lo, hi = e.min(0), e.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    p = (e - lo) / span * (side - 1)
    return p[:, ::-1]


def _assign(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Optimal injective assignment of ``points (n, 2)`` to ``cells (m, 2)``, m ≥ n."""
    from scipy.optimize import linear_sum_assignment

    cost = ((points[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    out = np.empty((points.shape[0], 2), dtype=np.int64)
    out[rows] = cells[cols]
    return out


def _split(points: np.ndarray, cells: np.ndarray, groups: np.ndarray, limit: int) -> np.ndarray:
    """Assign within groups, recursively, so no exact problem exceeds ``limit`` points."""
    n = points.shape[0]
    if n <= limit:
        return _assign(points, cells)
    ids = np.unique(groups)
    if len(ids) < 2:  # one big group: halve it at the median of its wider axis
        axis = int(np.argmax(points.max(0) - points.min(0)))
        order = np.argsort(points[:, axis], kind="stable")
        groups = np.zeros(n, np.int64)
        groups[order[n // 2 :]] = 1
        ids = np.array([0, 1])
    # order groups along the main axis of the points, cells likewise, hand out runs
    centre = points.mean(0)
    u, s, vt = np.linalg.svd(points - centre, full_matrices=False)
    direction = vt[0]
    means = {g: float(((points[groups == g] - centre) @ direction).mean()) for g in ids}
    order_groups = sorted(ids, key=lambda g: means[g])
    cell_order = np.argsort((cells - centre) @ direction, kind="stable")
    sizes = np.array([(groups == g).sum() for g in order_groups])
    spare = cells.shape[0] - n
    extra = np.floor(spare * sizes / n).astype(int)
    extra[: spare - extra.sum()] += 1
    out = np.empty((n, 2), dtype=np.int64)
    start = 0
    for g, size, more in zip(order_groups, sizes, extra):
        mine = np.flatnonzero(groups == g)
        take = cell_order[start : start + size + more]
        start += size + more
        out[mine] = _split(points[mine], cells[take], np.zeros(len(mine), np.int64), limit)
    return out


def grid_layout(
    x: np.ndarray, groups: np.ndarray | None = None, seed: int = 0, limit: int = EXACT_LIMIT
) -> Grid:
    """Lay out samples with features ``x (N, D)`` on a square grid (see module docstring).

    Args:
        x: features of the picked samples.
        groups: ``(N,)`` facet labels, used only above ``limit`` samples.
        seed: t-SNE seed.
        limit: largest exact assignment problem.
    """
    n = x.shape[0]
    if n == 0:
        return Grid(0, np.zeros((0, 2), np.int64), np.zeros((0, 2)), "none (no samples)", "exact")
    side = max(1, math.ceil(math.sqrt(n)))
    e, method = embed(x, seed)
    points = _scale(e, side)
    rr, cc = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    cells = np.stack([rr.ravel(), cc.ravel()], 1).astype(np.float64)
    if n <= limit:
        assigned, how = _assign(points, cells), "exact"
    else:
        g = np.zeros(n, np.int64) if groups is None else np.asarray(groups)
        assigned, how = _split(points, cells, g, limit), "within groups"
    return Grid(side, assigned.astype(np.int64), e, method, how)
