"""Write world images to disk: a PNG image folder plus a CSV of labels."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image

from neurovis.glyphs.world import GlyphWorld, stream_seed


def write_image_folder(
    root: str | os.PathLike,
    n: int,
    seed: int = 0,
    world: GlyphWorld | None = None,
    by_class: bool = True,
    batch_size: int = 512,
    csv_name: str = "labels.csv",
) -> Path:
    """Render ``n`` world images and save them as 64x64 RGB PNGs (8-bit) under ``root``.

    Layout: ``root/class_07/000123.png`` when ``by_class`` (readable by
    ``torchvision.datasets.ImageFolder`` and by any recursive glob), else
    ``root/000123.png``. ``root/labels.csv`` has one row per image with columns
    ``path`` (relative to root), ``class``, ``mode``, ``shape``, ``colour``, ``mode_name``,
    ``class_name``. Images are batch ``i`` of ``world.stream(batch_size, seed)``, so the
    folder is reproducible from ``(n, seed, batch_size)``.

    Returns:
        the path of the CSV file.
    """
    world = world or GlyphWorld()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(n - 1)))
    rows = []
    done = 0
    b = 0
    while done < n:
        k = min(batch_size, n - done)
        batch = world.sample(k, seed=stream_seed(seed, b))
        arr = (batch.images.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        for j in range(k):
            idx = done + j
            c = int(batch.classes[j])
            rel = Path(f"class_{c:02d}") / f"{idx:0{width}d}.png" if by_class else Path(f"{idx:0{width}d}.png")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr[j], mode="RGB").save(root / rel)
            m = int(batch.modes[j])
            rows.append([rel.as_posix(), c, m, int(batch.shapes[j]), int(batch.colours[j]),
                         world.mode_name(m), world.class_names[c]])
        done += k
        b += 1
    csv_path = root / csv_name
    tmp = csv_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "class", "mode", "shape", "colour", "mode_name", "class_name"])
        w.writerows(rows)
    os.replace(tmp, csv_path)
    return csv_path
