"""Real images beside synthetic ones (the paper's Fig. 2 a/c, Fig. S19).

From a source of natural images (an image folder, or a model's own source such as the glyph
world's, :func:`neurovis.glyphs.natural.glyph_world_images`, which the caller passes in):

- **top 9**: the natural images that most activate the unit (or class logit);
- **random 9 from the class**: for a class condition, 9 random images labelled with that
  class; for a unit, 9 random images of the label whose images activate the unit most on
  average (its "class"); without labels, 9 random images;
- **nearest natural images per facet** in the condition network's own feature space
  (:func:`neurovis.analysis.features.model_features`, cosine distance), from the facet's
  medoid. A facet is flagged *no natural neighbour* when its medoid's nearest natural
  image is farther than the 95th percentile of the natural images' own nearest-neighbour
  distances (it lies off the natural data).

Natural images are held as ``uint8 (N, 3, H, W)`` RGB, resized to the prior's image size
so the network sees them as it saw the samples.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from neurovis._utils.torch_utils import eval_mode, module_device
from neurovis.analysis.features import _base_condition, model_features
from neurovis.conditions import ClassCondition, Condition, InpaintCondition, UnitCondition
from neurovis.errors import NeurovisError
from neurovis.pixels import PixelSpace

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
N_SHOW = 9
N_NEIGHBOURS = 5
FLAG_PERCENTILE = 95.0


@dataclass
class NaturalImages:
    """A set of natural images.

    Attributes:
        images: ``(N, 3, H, W)`` uint8 RGB.
        labels: ``(N,)`` int label per image (−1 unknown), or ``None``.
        label_names: name of each label, or ``None``.
        names: an identifier per image (relative path, or ``world #i``).
        source: where the images come from, in words.
    """

    images: torch.Tensor
    labels: np.ndarray | None
    label_names: list[str] | None
    names: list[str]
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def rgb01(self, index: slice | np.ndarray | None = None) -> torch.Tensor:
        """Images as float RGB in [0, 1] (all, or the selected ones)."""
        x = self.images if index is None else self.images[torch.as_tensor(index) if isinstance(index, np.ndarray) else index]
        return x.float() / 255.0

    def resized(self, size: tuple[int, int]) -> "NaturalImages":
        """The same images at ``size`` (H, W) (antialiased bilinear)."""
        if tuple(self.images.shape[-2:]) == tuple(size):
            return self
        out = []
        for start in range(0, len(self), 256):
            x = self.images[start : start + 256].float()
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            out.append(x.round().clamp(0, 255).to(torch.uint8))
        return NaturalImages(torch.cat(out), self.labels, self.label_names, self.names, self.source)


def _load_one(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            h, w = size
            sw, sh = im.size
            scale = max(w / sw, h / sh)
            cw, ch = w / scale, h / scale  # centre crop to the target aspect, then resize
            left, top = (sw - cw) / 2, (sh - ch) / 2
            im = im.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch), reducing_gap=3.0)
        return np.asarray(im, dtype=np.uint8).copy()


def load_image_folder(
    root: str | os.PathLike[str], size: tuple[int, int], limit: int = 2000, seed: int = 0
) -> NaturalImages:
    """Natural images from a folder (recursive), centre-cropped and resized to ``size``.

    Images in class subfolders (``root/<label>/...``, the ``ImageFolder`` layout) get that
    label; images directly in ``root`` get none. Above ``limit`` files a seeded random
    subset is read. Unreadable files are skipped (counted in ``source``).
    """
    root = Path(root)
    if not root.is_dir():
        raise NeurovisError(f"--images {root}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NeurovisError(f"--images {root}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
    if len(files) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(files), limit, replace=False))
        files = [files[i] for i in keep]
    arrays, names, label_of = [], [], []
    skipped = 0
    for path in files:
        try:
            arrays.append(_load_one(path, size))
        except Exception:  # noqa: BLE001 - a bad file in a user's folder is skipped, not fatal
            skipped += 1
            continue
        rel = path.relative_to(root)
        names.append(rel.as_posix())
        label_of.append(rel.parts[0] if len(rel.parts) > 1 else None)
    if not arrays:
        raise NeurovisError(f"--images {root}: none of the {len(files)} image files could be read")
    label_names = sorted({n for n in label_of if n is not None}) or None
    labels = None
    if label_names:
        lookup = {n: i for i, n in enumerate(label_names)}
        labels = np.array([lookup.get(n, -1) if n is not None else -1 for n in label_of], dtype=np.int64)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    source = f"image folder {root} ({len(arrays)} images" + (f", {skipped} unreadable skipped" if skipped else "") + ")"
    return NaturalImages(images, labels, label_names, names, source)


@dataclass
class NaturalAnalysis:
    """What the natural images say about the condition and its facets.

    Attributes:
        source: where the images come from.
        activations, probs: ``(N,)`` the condition's activation and probability on each.
        top: indices of the :data:`N_SHOW` most activating images.
        random: indices of :data:`N_SHOW` random images from the class (see ``random_rule``).
        random_rule: how ``random`` was drawn, in words.
        feature_space: the network feature space of the neighbours (or why there is none).
        neighbours: per facet, ``[(index, cosine distance), ...]`` nearest first, or None.
        flagged: per facet, True when it has no natural neighbour.
        flag_distance: the distance above which a facet is flagged.
    """

    source: str
    activations: np.ndarray
    probs: np.ndarray
    top: np.ndarray
    random: np.ndarray
    random_rule: str
    feature_space: str
    neighbours: list[list[tuple[int, float]]] | None = None
    flagged: list[bool] | None = None
    flag_distance: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def score(condition: Condition, natural: NaturalImages, space: PixelSpace, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The condition's ``(activations (N,), probabilities (N,))`` on the natural images."""
    cond = condition.condition if isinstance(condition, InpaintCondition) else condition
    mods = cond.modules()
    device = module_device(mods[0]) if mods else torch.device("cpu")
    acts, probs = [], []

    with eval_mode(mods), torch.no_grad():
        for start in range(0, len(natural), batch_size):
            x = space.from_rgb01(natural.rgb01(slice(start, start + batch_size)).to(device))
            r = cond.evaluate(x, space)
            acts.append(r.activation.float().cpu())
            probs.append(r.prob.float().cpu())
    return torch.cat(acts).numpy(), torch.cat(probs).numpy()


def _class_label(condition: Condition, natural: NaturalImages, acts: np.ndarray) -> tuple[int | None, str]:
    """The natural label standing for the condition's class, and the rule used."""
    if natural.labels is None or not natural.label_names:
        return None, "9 random natural images (the source has no labels)"
    base = _base_condition(condition)
    names = [n.lower() for n in natural.label_names]
    if isinstance(base, ClassCondition):
        model_names = getattr(base.model, "class_names", None)
        wanted = model_names[base.class_index] if model_names and base.class_index < len(model_names) else None
        if wanted is not None and wanted.lower() in names:
            return names.index(wanted.lower()), f"9 random natural images labelled {wanted!r}"
        for i, n in enumerate(names):
            match = re.fullmatch(r"(?:class[_\- ]?)?0*(\d+)", n)
            if match and int(match.group(1)) == base.class_index:
                return i, f"9 random natural images labelled {natural.label_names[i]!r} (class {base.class_index})"
        return None, f"9 random natural images (no label matches class {base.class_index})"
    if isinstance(base, UnitCondition):
        labels = natural.labels
        valid = [lab for lab in range(len(names)) if (labels == lab).any()]
        if valid:
            best = max(valid, key=lambda lab: float(acts[labels == lab].mean()))
            return best, (f"9 random natural images of {natural.label_names[best]!r}, the label whose images "
                          "activate the unit most on average")
    return None, "9 random natural images"


def analyse(
    natural: NaturalImages,
    condition: Condition,
    space: PixelSpace,
    medoids_rgb01: torch.Tensor | None,
    seed: int = 0,
    scores: tuple[np.ndarray, np.ndarray] | None = None,
) -> NaturalAnalysis:
    """Score natural images, pick the top and random nine, find each facet's neighbours.

    Args:
        natural: the images, already at the prior's image size.
        condition: the condition the chains sampled for.
        space: the prior's pixel space (natural images are converted into it).
        medoids_rgb01: ``(k, 3, H, W)`` the facets' medoids, RGB uint8 or in [0, 1] (or None).
        seed: seed of the random nine.
        scores: :func:`score` of the images, if already computed.
    """
    acts, probs = scores if scores is not None else score(condition, natural, space)
    order = np.argsort(-np.nan_to_num(acts, nan=-np.inf), kind="stable")
    top = order[:N_SHOW]
    rng = np.random.default_rng(seed)
    label, rule = _class_label(condition, natural, acts)
    pool = np.arange(len(natural)) if label is None else np.flatnonzero(natural.labels == label)  # type: ignore[operator]
    random = np.sort(rng.choice(pool, size=min(N_SHOW, pool.size), replace=False))
    result = NaturalAnalysis(natural.source, acts, probs, top, random, rule, "")
    if medoids_rgb01 is None or medoids_rgb01.shape[0] == 0:
        result.feature_space = "no facets to compare"
        return result
    nat_feats, desc = model_features(condition, natural.images, space)
    if nat_feats is None:
        result.feature_space = desc
        return result
    med_feats, _ = model_features(condition, medoids_rgb01, space)
    result.feature_space = desc + ", cosine distance"
    nat_n = _unit_rows(nat_feats)
    med_n = _unit_rows(med_feats)  # type: ignore[arg-type]
    dist = 1.0 - med_n @ nat_n.T  # (k, N)
    if len(natural) >= 2:
        own = 1.0 - nat_n @ nat_n.T
        np.fill_diagonal(own, np.inf)
        flag_at = float(np.percentile(own.min(1), FLAG_PERCENTILE))
    else:
        flag_at = float("inf")
    result.neighbours = []
    result.flagged = []
    for row in dist:
        idx = np.argsort(row, kind="stable")[:N_NEIGHBOURS]
        result.neighbours.append([(int(i), float(row[i])) for i in idx])
        result.flagged.append(bool(row[idx[0]] > flag_at))
    result.flag_distance = flag_at
    return result


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
