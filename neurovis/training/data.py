"""Image sources for training, addressed by step so a resumed run sees the same batches.

A source's ``batch(step)`` returns images ``(B, 3, H, W)`` as RGB in [0, 1]; the trainer
converts them to the encoder's pixel convention. Batch ``step`` depends only on the seed
and the step, never on what ran before. Named streams (``train-prior --data world``, the
glyph world's :class:`neurovis.glyphs.natural.WorldSource`) come from the zoo
(:func:`neurovis.zoo.image_source`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from neurovis.errors import NeurovisError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


class BatchSource(Protocol):
    """Anything that hands out batch ``step`` of RGB [0, 1] images ``(B, 3, H, W)``."""

    batch_size: int

    def batch(self, step: int) -> torch.Tensor: ...


class FolderSource:
    """Images from a folder (searched recursively), resized to ``size``, seeded epochs.

    Each epoch visits every image once in an order drawn from ``(seed, epoch)``. Images are
    decoded on demand (RGB), resized to cover ``size`` and centre-cropped.
    """

    def __init__(self, root: str | Path, size: tuple[int, int], batch_size: int = 64, seed: int = 0) -> None:
        root = Path(root)
        if not root.is_dir():
            raise NeurovisError(f"image folder {root} does not exist; pass --data DIR with your training images")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise NeurovisError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
        self.size = tuple(size)
        self.batch_size = batch_size
        self.seed = seed

    def _order(self, epoch: int) -> np.ndarray:
        return _permutation(self.seed, epoch, len(self.files))

    def _load(self, path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                h, w = self.size
                scale = max(h / img.height, w / img.width)
                img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))), Image.BILINEAR)
                left, top = (img.width - w) // 2, (img.height - h) // 2
                img = img.crop((left, top, left + w, top + h))
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as err:
            raise NeurovisError(f"cannot read image {path} ({err}); remove it from the folder") from None
        return torch.from_numpy(arr).permute(2, 0, 1)

    def batch(self, step: int) -> torch.Tensor:
        n = len(self.files)
        start = step * self.batch_size
        picks = []
        for k in range(start, start + self.batch_size):
            epoch, pos = divmod(k, n)
            picks.append(self._order(epoch)[pos])
        return torch.stack([self._load(self.files[i]) for i in picks])


@lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)
