"""Pictures of a report, as PNG: image tiles, the t-SNE grid mosaic, the filmstrip with
its probability trace, and attribution overlays.

Images here are ``uint8 (H, W, 3)`` RGB arrays (``(N, H, W, 3)`` for several). Plots are
drawn with matplotlib's Agg canvas through ``matplotlib.figure.Figure`` (no pyplot, no
global backend change).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from neurovis._utils.image import to_uint8  # noqa: F401  (re-exported for the report's writers)

FACET_COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
"""Colour of facet ``i`` is ``FACET_COLOURS[i % 10]`` (matplotlib's tab10)."""


def facet_colour(i: int) -> tuple[int, int, int]:
    return FACET_COLOURS[i % len(FACET_COLOURS)]


def facet_hex(i: int) -> str:
    return "#%02x%02x%02x" % facet_colour(i)


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of an ``(H, W, 3)`` uint8 image."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def save_png(image: np.ndarray, path: Path) -> Path:
    """Write an ``(H, W, 3)`` uint8 image as PNG (``path``'s folder must exist)."""
    Path(path).write_bytes(png_bytes(image))
    return Path(path)


def resize(images: np.ndarray, side: int) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, s, s', 3)`` with the longer side ``side`` (area/bilinear)."""
    n, h, w, _ = images.shape
    if max(h, w) == side:
        return images
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def mosaic(
    images: np.ndarray, cells: np.ndarray, side: int, labels: np.ndarray | None = None, tile: int = 64, border: int = 2
) -> np.ndarray:
    """The grid picture: image ``i`` at ``cells[i] = (row, col)`` of a ``side × side`` grid.

    Each tile is ``tile`` pixels (images resized), framed by its facet's colour when
    ``labels`` are given; empty cells are white. Returns ``(side·tile, side·tile, 3)``.
    """
    tiles = resize(images, tile - 2 * border) if len(images) else images
    out = np.full((side * tile, side * tile, 3), 255, dtype=np.uint8)
    for i, (r, c) in enumerate(cells):
        y, x = int(r) * tile, int(c) * tile
        if labels is not None:
            out[y : y + tile, x : x + tile] = facet_colour(int(labels[i]))
        t = tiles[i]
        out[y + border : y + border + t.shape[0], x + border : x + border + t.shape[1]] = t
    return out


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Heatmap ``(H, W)`` in [0, 1] over a grey version of ``image (H, W, 3)`` uint8."""
    import matplotlib

    cmap = matplotlib.colormaps["inferno"]
    grey = image.astype(np.float32).mean(2, keepdims=True).repeat(3, 2) / 255.0
    colour = cmap(np.clip(heat, 0, 1))[..., :3]
    a = alpha * np.clip(heat, 0, 1)[..., None] ** 0.5
    return (np.clip((1 - a) * grey + a * colour, 0, 1) * 255).round().astype(np.uint8)


def filmstrip(
    frames: np.ndarray,
    frame_steps: list[int],
    probs: np.ndarray,
    chain: int,
    threshold: float,
    path: Path,
    prob_label: str = "p",
) -> Path:
    """One chain as a strip of frames above its probability trace, with the threshold line.

    Args:
        frames: ``(F, H, W, 3)`` uint8 images of the chain at ``frame_steps``.
        frame_steps: the step of each frame.
        probs: ``(C, T+1)`` probabilities of all chains (others drawn faintly).
        chain: the row of ``probs`` the frames come from.
        threshold: drawn as a dashed horizontal line.
        path: where the PNG goes.
    """
    from matplotlib.figure import Figure

    n = len(frames)
    fig = Figure(figsize=(max(6.0, 1.2 * n), 4.2), dpi=100)
    gs = fig.add_gridspec(2, max(n, 1), height_ratios=[1, 1.5], hspace=0.35, wspace=0.05)
    for i, (img, step) in enumerate(zip(frames, frame_steps)):
        ax = fig.add_subplot(gs[0, i])
        ax.imshow(img, interpolation="nearest")
        ax.set_title(f"step {step}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(gs[1, :])
    steps = np.arange(probs.shape[1])
    for c in range(probs.shape[0]):
        if c != chain:
            ax.plot(steps, probs[c], color="0.75", linewidth=0.7)
    ax.plot(steps, probs[chain], color="tab:blue", linewidth=1.6, label=f"chain {chain}")
    ax.scatter(frame_steps, probs[chain, frame_steps], color="tab:blue", s=14, zorder=3)
    ax.axhline(threshold, color="tab:red", linestyle="--", linewidth=1.2, label=f"threshold {threshold:g}")
    ax.set_xlim(0, max(1, probs.shape[1] - 1))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel(prob_label)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, format="png")
    return Path(path)


def pick_frames(n_samples: int, n_frames: int = 10) -> list[int]:
    """Evenly spaced steps ``0 … n_samples − 1`` (at most ``n_frames``, both ends included)."""
    if n_samples <= n_frames:
        return list(range(n_samples))
    return sorted(set(np.linspace(0, n_samples - 1, n_frames).round().astype(int).tolist()))
