"""The glyph world as a source of images: fixed natural images for reports
(:func:`glyph_world_images`) and a fresh stream for training (:class:`WorldSource`)."""

from __future__ import annotations

import numpy as np
import torch

from neurovis.analysis.natural import NaturalImages
from neurovis.glyphs import GlyphWorld, stream_seed

NATURAL_SEED = 20170101
"""Seed of the glyph world images reports use as natural images (plus the run's ``--seed``)."""


def glyph_world_images(n: int = 1000, seed: int = NATURAL_SEED, size: tuple[int, int] | None = None) -> NaturalImages:
    """``n`` images of the default glyph world (seeded), labelled with its classes, as
    uint8 RGB ``(n, 3, H, W)`` (64×64, or ``size``)."""
    world = GlyphWorld()
    batch = world.sample(int(n), seed=int(seed))
    images = (batch.images * 255.0).round().clamp(0, 255).to(torch.uint8)
    out = NaturalImages(images, batch.classes.numpy().astype(np.int64), list(world.class_names),
                        [f"world #{i}" for i in range(n)], f"glyph world ({n} images, seed {seed})")
    return out.resized(size) if size is not None else out


class WorldSource:
    """Fresh glyph-world images for every step (a fixed set overfits): batch ``step`` is
    ``(batch_size, 3, 64, 64)`` RGB [0, 1], a function of ``(seed, step)`` only (a
    :class:`~neurovis.training.data.BatchSource`)."""

    def __init__(self, world: GlyphWorld | None = None, batch_size: int = 64, seed: int = 0) -> None:
        self.world = world if world is not None else GlyphWorld()
        self.batch_size = batch_size
        self.seed = seed

    def batch(self, step: int) -> torch.Tensor:
        return self.world.sample(self.batch_size, seed=stream_seed(self.seed, step)).images
