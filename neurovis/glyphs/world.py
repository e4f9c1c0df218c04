"""The procedural glyph world: a seeded, vectorised image source with known modes.

An image is one coloured glyph on a low-saturation background. A *mode* is a
(shape, colour) pair, ``mode = shape * n_colours + colour`` (8 x 8 = 64 modes). A
*class* is a union of modes given by a partition; the default partition
(:data:`DEFAULT_PARTITION`) has 16 classes of 4 modes, each class with 4 different
shapes and 4 different colours. The partition is a literal table below, so it never
changes between versions.

Images are float32 tensors ``(N, 3, S, S)`` (S = 64 by default), RGB, values in [0, 1].
Rendering is vectorised in torch (signed distance functions of rotated and scaled
coordinate grids), several thousand images per second on one CPU core.
Determinism: ``world.sample(n, seed)`` is bitwise identical for the same ``(n, seed)``
(same machine, same torch build).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Iterator, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurovis.glyphs.shapes import SHAPE_SDFS, SHAPES

COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "magenta",
)
"""Colour names, index = colour id."""

COLOUR_RGB: tuple[tuple[float, float, float], ...] = (
    (0.92, 0.10, 0.08),  # red
    (1.00, 0.52, 0.00),  # orange
    (0.96, 0.90, 0.08),  # yellow
    (0.08, 0.72, 0.12),  # green
    (0.02, 0.80, 0.86),  # cyan
    (0.10, 0.24, 0.96),  # blue
    (0.56, 0.14, 0.86),  # purple
    (0.96, 0.14, 0.70),  # magenta
)
"""Nominal glyph colours (RGB in [0, 1]), aligned with :data:`COLOURS`. Rendered glyphs
vary around these by a brightness factor in [0.85, 1], +-0.03 per channel and shading."""

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checker")
"""Background styles, index = background id. All are grey with a faint tint
(per-channel offset within +-0.04), so they never look like a saturated glyph colour."""

# Default partition: class -> modes. Drawn once (numpy RandomState(20170101), greedy
# assignment under "4 distinct shapes and 4 distinct colours per class") and frozen here.
DEFAULT_CLASS_MODES: tuple[tuple[int, ...], ...] = (
    (0, 18, 25, 59),
    (1, 26, 39, 61),
    (2, 12, 21, 31),
    (3, 45, 50, 63),
    (4, 9, 19, 54),
    (5, 33, 42, 52),
    (6, 10, 37, 60),
    (7, 17, 30, 43),
    (8, 35, 46, 53),
    (11, 23, 49, 56),
    (13, 36, 47, 48),
    (14, 24, 34, 44),
    (15, 22, 29, 32),
    (16, 28, 55, 57),
    (20, 41, 51, 62),
    (27, 38, 40, 58),
)


def _modes_to_classes(class_modes: Sequence[Sequence[int]], n_modes: int) -> tuple[int, ...]:
    table = [-1] * n_modes
    for c, modes in enumerate(class_modes):
        for m in modes:
            table[int(m)] = c
    return tuple(table)


DEFAULT_PARTITION: tuple[int, ...] = _modes_to_classes(DEFAULT_CLASS_MODES, 64)
"""Default mode -> class table (length 64, values 0..15)."""

PartitionLike = Union[Mapping[int, int], Sequence[int], Sequence[Sequence[int]], np.ndarray, Tensor]


@dataclass
class GlyphBatch:
    """A batch of world images and everything known about them.

    Attributes:
        images: (N, 3, S, S) float32, RGB in [0, 1].
        modes: (N,) int64, ``shape * n_colours + colour``.
        shapes: (N,) int64 shape index (see :data:`SHAPES`).
        colours: (N,) int64 colour index (see :data:`COLOURS`).
        classes: (N,) int64 class under the world's partition.
        masks: (N, 1, S, S) float32 glyph coverage in [0, 1] (anti-aliased).
        backgrounds: (N,) int64 background style (see :data:`BACKGROUNDS`).
        centres: (N, 2) float32 glyph centre (x, y) in pixels.
        scales: (N,) float32 pixels per glyph unit (the glyph fits a disk of this radius).
        angles: (N,) float32 rotation in radians.
    """

    images: Tensor
    modes: Tensor
    shapes: Tensor
    colours: Tensor
    classes: Tensor
    masks: Tensor
    backgrounds: Tensor
    centres: Tensor
    scales: Tensor
    angles: Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: Union[int, slice, Tensor]) -> "GlyphBatch":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return GlyphBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: Union[str, torch.device]) -> "GlyphBatch":
        """Move every tensor to ``device``."""
        return GlyphBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class GlyphWorld:
    """Seeded procedural world of coloured glyphs.

    Args:
        partition: mode -> class assignment. ``None`` for :data:`DEFAULT_PARTITION`;
            a mapping ``{mode: class}`` or a sequence/array of length ``n_modes`` giving
            each mode's class; or a list of lists (class -> modes). Every mode must
            belong to exactly one class; classes are numbered 0..K-1 with none empty.
        class_names: optional names for the classes (default: built from mode names).
        size: image side in pixels (the shipped networks expect 64).

    Example:
        >>> world = GlyphWorld()
        >>> batch = world.sample(8, seed=0)
        >>> batch.images.shape, batch.classes.tolist()[:2]  # doctest: +SKIP
    """

    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = COLOURS

    def __init__(
        self,
        partition: PartitionLike | None = None,
        class_names: Sequence[str] | None = None,
        size: int = 64,
    ) -> None:
        self.size = int(size)
        self.n_shapes = len(SHAPES)
        self.n_colours = len(COLOURS)
        self.n_modes = self.n_shapes * self.n_colours
        self.partition: tuple[int, ...] = self._parse_partition(partition)
        self.n_classes = max(self.partition) + 1
        self._class_modes = tuple(
            tuple(m for m in range(self.n_modes) if self.partition[m] == c) for c in range(self.n_classes)
        )
        if class_names is None:
            class_names = [
                f"class {c}: " + " | ".join(self.mode_name(m) for m in self._class_modes[c])
                for c in range(self.n_classes)
            ]
        if len(class_names) != self.n_classes:
            raise ValueError(f"class_names has {len(class_names)} names for {self.n_classes} classes")
        self.class_names: list[str] = list(class_names)
        self._partition_t = torch.tensor(self.partition, dtype=torch.int64)
        self._colour_t = torch.tensor(COLOUR_RGB, dtype=torch.float32)
        half = self.size / 2.0
        coords = torch.arange(self.size, dtype=torch.float32) + 0.5
        self._ys, self._xs = torch.meshgrid(coords, coords, indexing="ij")  # (S, S) pixel centres
        self._xc, self._yc = self._xs - half, self._ys - half

    # ------------------------------------------------------------------ partition
    def _parse_partition(self, partition: PartitionLike | None) -> tuple[int, ...]:
        n = self.n_modes
        if partition is None:
            return DEFAULT_PARTITION
        if isinstance(partition, Tensor):
            partition = partition.tolist()
        if isinstance(partition, np.ndarray):
            partition = partition.tolist()
        if isinstance(partition, Mapping):
            table = [-1] * n
            for m, c in partition.items():
                m = int(m)
                if not 0 <= m < n:
                    raise ValueError(f"partition names mode {m}; modes are 0..{n - 1}")
                table[m] = int(c)
        else:
            seq = list(partition)
            if seq and all(isinstance(s, (list, tuple, np.ndarray, Tensor)) for s in seq):
                table = [-1] * n
                for c, modes in enumerate(seq):
                    for m in list(modes):
                        m = int(m)
                        if not 0 <= m < n:
                            raise ValueError(f"partition names mode {m}; modes are 0..{n - 1}")
                        if table[m] != -1:
                            raise ValueError(f"mode {m} is in classes {table[m]} and {c}")
                        table[m] = c
            else:
                if len(seq) != n:
                    raise ValueError(f"partition table has {len(seq)} entries, expected {n} (one per mode)")
                table = [int(c) for c in seq]
        missing = [m for m in range(n) if table[m] < 0]
        if missing:
            raise ValueError(f"modes without a class: {missing}")
        k = max(table) + 1
        empty = sorted(set(range(k)) - set(table))
        if empty:
            raise ValueError(f"classes must be numbered 0..{k - 1} with none empty; empty: {empty}")
        return tuple(table)

    def class_modes(self, c: int) -> tuple[int, ...]:
        """The modes (sorted) that make up class ``c``."""
        return self._class_modes[c]

    def mode_name(self, m: int) -> str:
        """E.g. ``"red triangle"``."""
        s, c = divmod(int(m), self.n_colours)
        return f"{COLOURS[c]} {SHAPES[s]}"

    @property
    def mode_names(self) -> list[str]:
        """Names of all modes, index = mode."""
        return [self.mode_name(m) for m in range(self.n_modes)]

    def mode_of(self, shape: int, colour: int) -> int:
        """Mode index of a (shape, colour) pair."""
        return int(shape) * self.n_colours + int(colour)

    def classes_of(self, modes: Tensor) -> Tensor:
        """Class of each mode, (N,) int64 -> (N,) int64."""
        return self._partition_t.to(modes.device)[modes.long()]

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        n: int,
        seed: int = 0,
        modes: Union[int, Sequence[int], Tensor, None] = None,
        classes: Union[int, Sequence[int], Tensor, None] = None,
    ) -> GlyphBatch:
        """Render ``n`` images, deterministically from ``seed``.

        Args:
            n: number of images.
            seed: any int in [0, 2**63); the same ``(n, seed, modes, classes)`` gives a
                bitwise identical batch.
            modes: force the modes (one int, or a length-``n`` sequence). Default: uniform
                over all modes. The other random parameters do not depend on this choice.
            classes: instead of ``modes``, force the classes (one int or length ``n``);
                each image's mode is drawn uniformly among its class's modes.

        Returns:
            a :class:`GlyphBatch`; ``images`` is (n, 3, S, S) float32 RGB in [0, 1].
        """
        g = torch.Generator().manual_seed(int(seed))
        return self._render(int(n), g, modes=modes, classes=classes)

    def stream(
        self, batch_size: int, seed: int = 0, n_batches: int | None = None
    ) -> Iterator[GlyphBatch]:
        """Endless (or ``n_batches`` long) stream of fresh batches for training.

        Batch ``i`` is seeded from ``(seed, i)`` through :class:`numpy.random.SeedSequence`,
        so streams are reproducible and batches do not repeat ``sample(n, seed)`` sets.
        """
        i = 0
        while n_batches is None or i < n_batches:
            yield self.sample(batch_size, seed=stream_seed(seed, i))
            i += 1

    # ------------------------------------------------------------------ rendering
    def _render(self, n: int, g: torch.Generator, modes=None, classes=None) -> GlyphBatch:
        S = self.size
        f32 = torch.float32

        def U(lo: float, hi: float, *shape: int) -> Tensor:
            return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=f32)

        # --- draw every random quantity, always in this order
        mode = torch.randint(0, self.n_modes, (n,), generator=g)
        pick = torch.rand(n, generator=g)  # used when classes are forced
        scale = U(0.17, 0.33, n) * S  # pixels per glyph unit
        margin = scale + 1.0
        cx = margin + torch.rand(n, generator=g) * (S - 2 * margin)
        cy = margin + torch.rand(n, generator=g) * (S - 2 * margin)
        angle = U(0.0, 2 * math.pi, n)
        bg_style = torch.randint(0, len(BACKGROUNDS), (n,), generator=g)
        grey = U(0.03, 0.95, n)
        tint = U(-0.04, 0.04, n, 3)
        amp = U(0.08, 0.30, n)
        phi = U(0.0, 2 * math.pi, n)
        period = U(5.0, 14.0, n) * (S / 64.0)
        phase = U(0.0, 2 * math.pi, n)
        noise_grid = torch.randn(n, 1, 6, 6, generator=g)
        bright = U(0.85, 1.0, n)
        jitter = U(-0.03, 0.03, n, 3)
        shade_amp = U(0.0, 0.12, n)
        shade_phi = U(0.0, 2 * math.pi, n)
        pix_sigma = U(0.0, 0.02, n)
        pix_noise = torch.randn(n, 3, S, S, generator=g)

        # --- forced modes / classes
        if modes is not None and classes is not None:
            raise ValueError("give modes or classes, not both")
        if modes is not None:
            mode = _as_index(modes, n, self.n_modes, "modes")
        elif classes is not None:
            cls = _as_index(classes, n, self.n_classes, "classes")
            sizes = torch.tensor([len(m) for m in self._class_modes])
            offs = torch.cumsum(sizes, 0) - sizes
            flat = torch.tensor([m for ms in self._class_modes for m in ms])
            j = (pick * sizes[cls]).long().clamp(max=sizes[cls] - 1)
            mode = flat[offs[cls] + j]
        shape_id = mode // self.n_colours
        colour_id = mode % self.n_colours

        # --- glyph mask from signed distances in rotated/scaled glyph coordinates
        dx = self._xs[None] - cx[:, None, None]  # (n, S, S)
        dy = self._ys[None] - cy[:, None, None]
        ca, sa = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        inv = (1.0 / scale)[:, None, None]
        u = (ca * dx + sa * dy) * inv
        v = (-sa * dx + ca * dy) * inv
        sdf = torch.empty(n, S, S, dtype=f32)
        for k, fn in enumerate(SHAPE_SDFS):
            sel = (shape_id == k).nonzero(as_tuple=True)[0]
            if sel.numel():
                sdf[sel] = fn(u[sel], v[sel])
        mask = (0.5 - sdf * scale[:, None, None]).clamp_(0.0, 1.0)[:, None]  # (n, 1, S, S)

        # --- background: grey level + pattern, faint tint
        cphi, sphi = torch.cos(phi)[:, None, None], torch.sin(phi)[:, None, None]
        p1 = cphi * self._xc + sphi * self._yc  # (n, S, S) projection along phi, pixels
        p2 = -sphi * self._xc + cphi * self._yc
        w = (2 * math.pi / period)[:, None, None]
        ph = phase[:, None, None]
        pattern = torch.zeros(n, S, S, dtype=f32)
        st = bg_style
        for style in range(1, len(BACKGROUNDS)):
            sel = (st == style).nonzero(as_tuple=True)[0]
            if not sel.numel():
                continue
            if style == 1:  # gradient
                pat = p1[sel] / (S * 0.5 * math.sqrt(2.0))
            elif style == 2:  # smooth noise texture
                pat = F.interpolate(noise_grid[sel], size=(S, S), mode="bicubic", align_corners=False)[:, 0] * 0.6
            elif style == 3:  # stripes
                pat = 0.5 * torch.tanh(3.0 * torch.sin(w[sel] * p1[sel] + ph[sel]))
            else:  # checker
                pat = 0.5 * torch.tanh(3.0 * torch.sin(w[sel] * p1[sel] + ph[sel]) * torch.sin(w[sel] * p2[sel]))
            pattern[sel] = pat * amp[sel, None, None]
        bg = (grey[:, None, None] + pattern).clamp(0.0, 1.0)[:, None] + tint[:, :, None, None]

        # --- glyph colour with brightness, jitter and linear shading
        base = self._colour_t[colour_id] * bright[:, None] + jitter  # (n, 3)
        shade = torch.cos(shade_phi)[:, None, None] * dx + torch.sin(shade_phi)[:, None, None] * dy
        shade = 1.0 + shade_amp[:, None, None] * shade / scale[:, None, None]
        glyph = base[:, :, None, None] * shade[:, None]

        img = torch.lerp(bg, glyph, mask)
        img = img + pix_sigma[:, None, None, None] * pix_noise
        img = img.clamp_(0.0, 1.0)
        return GlyphBatch(
            images=img.contiguous(),
            modes=mode.long(),
            shapes=shape_id.long(),
            colours=colour_id.long(),
            classes=self._partition_t[mode],
            masks=mask.contiguous(),
            backgrounds=bg_style.long(),
            centres=torch.stack([cx, cy], 1),
            scales=scale,
            angles=angle,
        )

    def __repr__(self) -> str:
        return f"GlyphWorld(size={self.size}, n_modes={self.n_modes}, n_classes={self.n_classes})"


def stream_seed(seed: int, index: int) -> int:
    """Seed of batch ``index`` of a stream started with ``seed`` (a 63-bit int)."""
    state = np.random.SeedSequence([int(seed), int(index), 0x6C79]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def _as_index(x, n: int, bound: int, what: str) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.int64).flatten()
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"{what} has {t.numel()} entries for {n} images")
    if (t < 0).any() or (t >= bound).any():
        raise ValueError(f"{what} must lie in 0..{bound - 1}")
    return t
