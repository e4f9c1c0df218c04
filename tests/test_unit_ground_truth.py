"""Ground truth for hidden units (neurovis.glyphs.evaluation.unit_modes and the keep-rule helpers),
on constructed cases and on the shipped glyph classifier's real numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.glyphs import evaluation as ev
from neurovis.pixels import RGB01
from neurovis.errors import NeurovisError
from neurovis.glyphs import COLOUR_RGB, GlyphWorld


class ColourNet(nn.Module):
    """Unit ``k`` of ``flat`` = how close the image's closest pixel is to glyph colour ``k``
    (``max over pixels of −|x − rgb_k|²``, saturating at −0.05 so that every glyph of that
    colour ties): it responds to one colour, whatever the shape."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("rgb", torch.tensor(COLOUR_RGB))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flat = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = -((x[:, None] - self.rgb[None, :, :, None, None]) ** 2).sum(2)  # (B, 8, H, W)
        return self.flat(self.pool(d)).clamp(max=-0.05)


def test_modes_of_top_images_counts_the_top_share_and_the_five_percent_rule():
    # 1,000 images: the top 1% are the 10 largest; modes 3 (6 images), 4 (3), 9 (1)
    acts = np.zeros(1000)
    modes = np.zeros(1000, np.int64)
    acts[:10] = np.arange(10, 0, -1)
    modes[:10] = [3, 3, 3, 3, 3, 3, 4, 4, 4, 9]
    assert ev.modes_of_top_images(acts, modes) == [3, 4, 9]  # 9 holds 10% ≥ 5%
    assert ev.modes_of_top_images(acts, modes, min_share=0.2) == [3, 4]  # 30% and 60%
    assert ev.modes_of_top_images(acts, modes, min_share=0.3) == [3, 4]  # 3/10 exactly counts
    assert ev.modes_of_top_images(acts, modes, top=0.005) == [3]  # top 5 images
    # NaN never ranks at the top
    acts[500] = np.nan
    assert ev.modes_of_top_images(acts, modes) == [3, 4, 9]
    assert ev.modes_of_top_images([], []) == []
    with pytest.raises(NeurovisError):
        ev.modes_of_top_images(acts, modes[:5])
    with pytest.raises(NeurovisError):
        ev.modes_of_top_images(acts, modes, top=0)


def test_keep_threshold_is_the_99th_percentile_and_kept_skips_starts_and_resets():
    a = np.arange(101, dtype=np.float64)
    assert ev.unit_keep_threshold(a) == pytest.approx(99.0)
    assert ev.unit_keep_threshold(a, 50) == pytest.approx(50.0)
    assert ev.unit_keep_threshold(np.append(a, np.nan)) == pytest.approx(99.0)
    assert math.isnan(ev.unit_keep_threshold([np.nan]))
    acts = np.full((2, 21), 5.0)
    acts[1, 3] = np.nan
    kept = ev.unit_kept(acts, 5.0, reset_every=10)
    assert not kept[:, [0, 10, 20]].any() and not kept[1, 3]
    assert kept.sum() == 2 * 18 - 1
    assert ev.unit_kept(acts, 5.0, reset_every=10, failed=[True, False])[0].sum() == 0
    assert ev.unit_kept(acts, 5.01).sum() == 0


def test_dead_on_natural_means_never_above_zero():
    assert ev.dead_on_natural([-1.0, 0.0, np.nan])
    assert ev.dead_on_natural([np.nan])
    assert not ev.dead_on_natural([-1.0, 1e-6])


def test_a_unit_answering_one_colour_gets_exactly_that_colours_eight_modes():
    # top 10% of 2,048 images = 205 of the ~256 images of one colour (~26 per shape, a
    # shape needs 11): the rule must find the 8 shapes of that colour and nothing else
    world = GlyphWorld()
    acts, modes = ev.layer_activations(ColourNet().eval(), "flat", n_images=2048, seed=3)
    for colour in range(8):
        assert ev.modes_of_top_images(acts[:, colour], modes, top=0.1) == [world.mode_of(s, colour) for s in range(8)]
    assert ev.unit_modes(ColourNet().eval(), "flat", 5, n_images=2048, seed=3, top=0.1) == list(range(5, 64, 8))


def test_layer_vector_reads_the_unit_as_unit_condition_does():
    model = nv.load_model("glyphs")
    x = GlyphWorld().sample(6, seed=1).images
    with torch.no_grad():
        for layer, unit, position in (("conv5", 7, None), ("conv3", 2, (1, 5)), ("conv4", 3, "mean"), ("fc6", 11, None)):
            cond = nv.UnitCondition(model, layer, unit, position=position)
            want = cond.evaluate(x, RGB01).activation
            got = ev.layer_vector(model, layer, x, position)[:, unit]
            torch.testing.assert_close(got, want)


@pytest.mark.slow
def test_class_logits_of_the_glyph_classifier_get_modes_of_their_class():
    """fc8 unit c is class c's logit. Its strongest 1% of 8,192 world images come from the
    class's modes (measured: 15 of 16 logits entirely; class 6's logit also draws on class
    3's red ring), and mostly from 1-3 of the 4: the logit ranks the class's modes (class
    0: median 22 on its mode 25, 12-15 on the other three)."""
    model = nv.load_model("glyphs")
    world = GlyphWorld()
    acts, modes = ev.layer_activations(model, "fc8", n_images=8192)
    inside = 0
    for c in range(16):
        truth = ev.modes_of_top_images(acts[:, c], modes)
        assert 1 <= len(truth) <= 4
        inside += set(truth) <= set(world.class_modes(c))
        top = np.argsort(-acts[:, c])[:82]
        assert np.isin(modes[top], world.class_modes(c)).mean() >= 0.9
    assert inside >= 15
    assert ev.modes_of_top_images(acts[:, 0], modes) == [0, 25]
