"""The procedural glyph world: determinism, labels, partitions, colours, export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from neurovis.glyphs import (
    BACKGROUNDS,
    COLOUR_RGB,
    DEFAULT_CLASS_MODES,
    DEFAULT_PARTITION,
    SHAPES,
    GlyphWorld,
    write_image_folder,
)


@pytest.fixture(scope="module")
def world() -> GlyphWorld:
    return GlyphWorld()


def _equal(a, b) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in
               ("images", "modes", "shapes", "colours", "classes", "masks", "backgrounds"))


def test_same_seed_same_batch_bitwise(world):
    assert _equal(world.sample(48, seed=5), world.sample(48, seed=5))


def test_different_seed_different_batch(world):
    a, b = world.sample(48, seed=5), world.sample(48, seed=6)
    assert not torch.equal(a.images, b.images)
    assert not torch.equal(a.modes, b.modes)


def test_stream_is_reproducible_and_fresh(world):
    s1 = list(world.stream(16, seed=3, n_batches=3))
    s2 = list(world.stream(16, seed=3, n_batches=3))
    assert all(_equal(a, b) for a, b in zip(s1, s2))
    assert not torch.equal(s1[0].images, s1[1].images)
    assert not torch.equal(s1[0].images, world.sample(16, seed=3).images)


def test_shapes_and_ranges(world):
    b = world.sample(256, seed=1)
    assert b.images.shape == (256, 3, 64, 64) and b.images.dtype == torch.float32
    assert b.images.min() >= 0.0 and b.images.max() <= 1.0
    assert b.masks.shape == (256, 1, 64, 64)
    assert b.masks.min() >= 0.0 and b.masks.max() <= 1.0
    # every glyph is visible and inside the frame: a decent area of full coverage
    assert (b.masks.flatten(1) > 0.99).sum(1).min() >= 40
    border = torch.cat([b.masks[..., 0, :], b.masks[..., -1, :], b.masks[..., :, 0], b.masks[..., :, -1]], -1)
    assert border.max() == 0.0
    assert len(b) == 256 and len(b[3:7]) == 4
    assert set(b.backgrounds.tolist()) == set(range(len(BACKGROUNDS)))


def test_labels_consistent(world):
    b = world.sample(512, seed=2)
    assert torch.equal(b.modes, b.shapes * world.n_colours + b.colours)
    assert torch.equal(b.classes, torch.tensor(world.partition)[b.modes])
    assert torch.equal(b.classes, world.classes_of(b.modes))
    assert world.n_modes == 64 and world.n_classes == 16
    assert len(set(b.modes.tolist())) > 55  # uniform over modes


def test_default_partition_table(world):
    assert world.partition == DEFAULT_PARTITION
    seen = sorted(m for ms in DEFAULT_CLASS_MODES for m in ms)
    assert seen == list(range(64))  # every mode in exactly one class
    for c in range(world.n_classes):
        modes = world.class_modes(c)
        assert 3 <= len(modes) <= 4
        assert modes == tuple(sorted(DEFAULT_CLASS_MODES[c]))
        assert len({m // 8 for m in modes}) == len(modes)  # distinct shapes
        assert len({m % 8 for m in modes}) == len(modes)  # distinct colours
        assert world.class_names[c].startswith(f"class {c}: ")
    assert world.mode_name(world.mode_of(2, 0)) == "red triangle"


def test_user_partitions():
    table = [m % 20 for m in range(64)]  # 20 classes of 3-4 modes
    w1 = GlyphWorld(partition=table)
    w2 = GlyphWorld(partition={m: c for m, c in enumerate(table)})
    w3 = GlyphWorld(partition=np.array(table))
    w4 = GlyphWorld(partition=[[m for m in range(64) if m % 20 == c] for c in range(20)],
                    class_names=[f"k{c}" for c in range(20)])
    for w in (w1, w2, w3, w4):
        assert w.partition == tuple(table) and w.n_classes == 20
    assert w4.class_names[5] == "k5"
    b = w1.sample(64, seed=0)
    assert torch.equal(b.classes, b.modes % 20)
    with pytest.raises(ValueError):
        GlyphWorld(partition=table[:-1])  # a mode without class
    with pytest.raises(ValueError):
        GlyphWorld(partition=[[0, 1], [1, 2]])  # mode in two classes
    with pytest.raises(ValueError):
        GlyphWorld(partition=[m % 20 + (m % 20 >= 5) for m in range(64)])  # class 5 empty


def test_forced_modes_and_classes(world):
    b = world.sample(64, seed=4, modes=torch.arange(64))
    assert torch.equal(b.modes, torch.arange(64))
    free = world.sample(64, seed=4)
    assert torch.equal(b.centres, free.centres)  # other parameters unchanged
    c = world.sample(200, seed=4, classes=7)
    assert (c.classes == 7).all()
    assert set(c.modes.tolist()) == set(world.class_modes(7))


def test_mode_colour_and_shape_are_what_they_say(world):
    """Mean colour of fully covered glyph pixels is nearest to the named colour, and the
    glyph centre is empty exactly for the ring and the crescent."""
    nominal = torch.tensor(COLOUR_RGB) * 0.925  # mean brightness factor
    b = world.sample(64 * 6, seed=11, modes=torch.arange(64).repeat(6))
    full = (b.masks > 0.99).float()
    mean_rgb = (b.images * full).sum((2, 3)) / full.sum((2, 3))
    nearest = torch.cdist(mean_rgb, nominal).argmin(1)
    assert torch.equal(nearest, b.colours)
    assert (mean_rgb - nominal[b.colours]).abs().max() < 0.12
    # backgrounds are grey-ish: low channel spread where there is no glyph
    bgpix = (b.masks == 0).float()
    spread = (b.images.amax(1, keepdim=True) - b.images.amin(1, keepdim=True))
    assert ((spread * bgpix).sum((1, 2, 3)) / bgpix.sum((1, 2, 3))).max() < 0.12
    cx = b.centres[:, 0].floor().long().clamp(0, 63)
    cy = b.centres[:, 1].floor().long().clamp(0, 63)
    centre = b.masks[torch.arange(len(b)), 0, cy, cx]
    hollow = torch.tensor([SHAPES[s] in ("ring", "crescent") for s in b.shapes.tolist()])
    assert (centre[hollow] < 0.5).all() and (centre[~hollow] > 0.5).all()


def test_write_image_folder(tmp_path, world):
    csv_path = write_image_folder(tmp_path / "imgs", 10, seed=3, batch_size=4)
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 10
    b = world.sample(4, seed=__import__("neurovis.glyphs", fromlist=["stream_seed"]).stream_seed(3, 0))
    for j in range(4):
        r = rows[j]
        assert int(r["class"]) == int(b.classes[j]) and int(r["mode"]) == int(b.modes[j])
        assert r["path"].startswith(f"class_{int(b.classes[j]):02d}/")
        img = np.asarray(Image.open(tmp_path / "imgs" / r["path"]).convert("RGB"), dtype=np.float32) / 255.0
        assert img.shape == (64, 64, 3)
        assert np.abs(img - b.images[j].permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
