"""neurovis.glyphs.evaluation: the measures on constructed cases with known answers, then a tiny run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.glyphs import evaluation as ev
from neurovis.errors import NeurovisError

GLYPH_CLASS_3 = (3, 45, 50, 63)


def test_acceptance_counts_the_threshold_and_never_nan():
    probs = np.array([[0.5, 0.97, 0.99, np.nan], [0.0, 0.96999, 1.0, 0.2]])
    assert ev.acceptance(probs) == pytest.approx(3 / 8)
    assert ev.acceptance(probs, threshold=0.5) == pytest.approx(5 / 8)
    # a float32 tensor at exactly the threshold passes, as Chains.accepted says
    t = torch.tensor([[0.99, 0.97, 0.5]], dtype=torch.float32)
    accepted = nv.Chains(torch.zeros(1, 3, 1), t, t, t, torch.zeros(1, dtype=torch.bool), torch.zeros(1), {}).accepted()
    assert ev.acceptance(t[:, 1:]) == 0.5 == float(accepted[:, 1:].float().mean())
    assert not accepted[0, 0]  # the start is never a sample, whatever its probability
    assert math.isnan(ev.acceptance([]))


def test_facet_recall_two_percent_rule_at_the_boundary():
    # 50 accepted: mode 18 holds exactly 1/50 = 2% -> found
    modes = [0] * 49 + [18]
    assert ev.facet_recall(modes, (0, 18, 25, 59)) == 0.5
    assert ev.modes_found(modes, (0, 18, 25, 59)) == [0, 18]
    # 51 accepted: 1/51 < 2% -> not found
    assert ev.facet_recall([0] * 50 + [18], (0, 18, 25, 59)) == 0.25
    # modes outside the class never count; nothing accepted -> 0
    assert ev.facet_recall([1, 2, 3, 4], (0, 18, 25, 59)) == 0.0
    assert ev.facet_recall([], (0, 18, 25, 59)) == 0.0
    assert ev.facet_recall(torch.tensor([59, 25, 18, 0]), (0, 18, 25, 59)) == 1.0
    assert ev.facet_recall([0] * 9 + [18], (0, 18), min_share=0.1) == 1.0
    with pytest.raises(NeurovisError):
        ev.facet_recall([0], ())


def test_mode_shares_sum_to_one():
    assert ev.mode_shares([5, 5, 7, 9]) == {5: 0.5, 7: 0.25, 9: 0.25}
    assert ev.mode_shares([]) == {}


def test_realism_is_the_confident_share():
    assert ev.realism([0.95, 0.9, 0.5, 0.1]) == 0.5
    assert ev.realism(torch.tensor([0.9, 0.1], dtype=torch.float32)) == 0.5  # 0.9 in float32 passes
    assert ev.realism([0.95, 0.5], level=0.4) == 1.0
    assert math.isnan(ev.realism([]))


def test_nmi_of_identical_and_independent_labelings():
    modes = np.array([3, 3, 45, 45, 50, 50, 63, 63])
    assert ev.facet_mode_nmi([1, 1, 0, 0, 3, 3, 2, 2], modes) == pytest.approx(1.0)  # same partition, other names
    a = np.array([0, 0, 1, 1] * 5)
    b = np.array([0, 1, 0, 1] * 5)
    assert ev.facet_mode_nmi(a, b) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(NeurovisError):
        ev.facet_mode_nmi([0, 1], [0])
    with pytest.raises(NeurovisError):
        ev.facet_mode_nmi([], [])


def test_mixing_on_a_hand_made_chain():
    # windows of 3 samples, the trailing 7th sample dropped: chain 0 [1,1,2] [2,3,3];
    # chain 1 [5,5,5] [5,6,7], where 6 is not confident
    modes = np.array([[1, 1, 2, 2, 3, 3, 4], [5, 5, 5, 5, 6, 7, 8]])
    conf = np.ones_like(modes, dtype=bool)
    conf[1, 4] = False
    assert ev.mixing(modes, window=3) == pytest.approx((2 + 2 + 1 + 3) / 4)
    assert ev.mixing(modes, conf, window=3) == pytest.approx((2 + 2 + 1 + 2) / 4)
    # whole chains: 4 distinct in chain 0; 3 confident ones (5, 7, 8; not 6) in chain 1
    assert ev.mixing(modes, conf, window=None) == pytest.approx((4 + 3) / 2)
    # a window longer than the chain: the whole chain
    assert ev.mixing(modes, conf, window=100) == ev.mixing(modes, conf, window=None)
    # nothing confident: 0 modes visited
    assert ev.mixing(modes, np.zeros_like(conf), window=3) == 0.0
    with pytest.raises(NeurovisError):
        ev.mixing(modes, window=0)
    with pytest.raises(NeurovisError):
        ev.mixing(modes[0])


def test_discriminator_logprob_by_hand():
    torch.manual_seed(0)
    linear = nn.Linear(12, 1)
    disc = nn.Sequential(nn.Flatten(), linear, nn.Flatten(0))
    images = torch.rand(5, 3, 2, 2)
    z = (images.flatten(1) @ linear.weight.T + linear.bias).squeeze(1).tolist()
    by_hand = sum(-math.log1p(math.exp(-v)) for v in z) / len(z)
    assert ev.discriminator_logprob(disc, images, batch_size=2) == pytest.approx(by_hand, rel=1e-6)
    assert math.isnan(ev.discriminator_logprob(disc, images[:0]))
    two = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(NeurovisError):
        ev.discriminator_logprob(two, images)


class PixelOracle:
    """Reads a mode off pixel (0, 0, 0) (mode = round(63·value)) and a confidence off channel 1."""

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (images[:, 0, 0, 0] * 63).round().long(), images[:, 1, 0, 0]


def test_evaluate_chains_bundles_the_measures():
    # 2 chains x 6 samples of 3x2x2 "images" decoded by an identity pixel prior; sample 0 of
    # each chain is its start: never accepted, whatever its probability
    modes = torch.tensor([[3, 3, 3, 45, 45, 7], [50, 50, 50, 50, 50, 50]])
    conf = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 0.2]])
    codes = torch.zeros(2, 6, 3, 2, 2)
    codes[:, :, 0] = (modes / 63.0)[..., None, None]
    codes[:, :, 1] = conf[..., None, None]
    probs = torch.tensor([[0.99, 0.99, 0.99, 0.99, 0.99, 0.1], [0.99, 0.98, 0.1, 0.1, 0.1, 0.1]])
    prior = nv.PixelPrior((3, 2, 2))
    config = {"steps": 5, "rule": "faithful", "wall_time_s": 1.5}
    ch = nv.Chains(codes, probs, probs, probs, torch.zeros(2, dtype=torch.bool), torch.arange(2), config, prior)
    labels = np.full(12, -1)
    labels[[1, 2, 3, 4, 7]] = [0, 0, 1, 1, 1]  # kept samples: modes 3, 3, 45, 45, 50
    out = ev.evaluate_chains(ch, PixelOracle(), GLYPH_CLASS_3, mixing_window=2, min_kept_for_nmi=5,
                             report=type("R", (), {"labels": labels})())
    assert out["acceptance"] == pytest.approx(5 / 12) and out["n_accepted"] == 5
    # found through confidently named accepted samples: 3, 3, 45 (the 0.5 one does not count), 50
    assert out["modes_found"] == [3, 45, 50] and out["facet_recall"] == 0.75
    assert out["realism"] == pytest.approx(4 / 5) and out["realism_all"] == pytest.approx(10 / 12)
    # windows of 2: chain 0 [3,3] [3,45] [(45),7] -> 1, 2, 1; chain 1 [50,50] x2, [50,(50)] -> 1, 1, 1
    assert out["mixing"] == pytest.approx((4 / 3 + 1) / 2) and out["mixing_window"] == 2
    assert out["modes_per_chain"] == pytest.approx((3 + 1) / 2)
    from sklearn.metrics import normalized_mutual_info_score

    assert out["nmi"] == pytest.approx(normalized_mutual_info_score([3, 3, 45, 45, 50], [0, 0, 1, 1, 1]))
    assert out["evaluations"] == 6 and out["evaluations_source"] == "steps+1"
    assert out["wall_time_s"] == 1.5 and out["disc_logprob"] is None and out["mh_acceptance"] is None
    # a failed chain is never accepted and does not mix
    ch.failed[1] = True
    out = ev.evaluate_chains(ch, PixelOracle(), GLYPH_CLASS_3, mixing_window=2)
    assert out["n_accepted"] == 4 and out["modes_found"] == [3, 45] and out["mixing"] == pytest.approx(4 / 3)
    assert out["nmi"] is None and out["nmi_note"] == "no report given"
    # exact samplers record their evaluations
    ch.config.update(evaluations=9, acceptance=[0.5, None, 0.7])
    out = ev.evaluate_chains(ch, PixelOracle(), GLYPH_CLASS_3)
    assert out["evaluations"] == 9 and out["evaluations_source"] == "recorded"
    assert out["mh_acceptance"] == pytest.approx(0.6)


def test_end_to_end_on_the_glyph_world():
    from neurovis.glyphs import GlyphWorld
    from neurovis.glyphs.checkpoints import load_glyph_discriminator

    prior, model, oracle = nv.load_prior("glyphs"), nv.load_model("glyphs"), nv.zoo.load_oracle("glyphs")
    world = GlyphWorld()
    ch = nv.sample(prior, nv.ClassCondition(model, 3), chains=2, steps=5, progress=False)
    report = nv.facets(ch, attribution=False, bootstrap=0, progress=False)
    out = ev.evaluate_chains(ch, oracle, world.class_modes(3), discriminator=load_glyph_discriminator(), report=report)
    assert world.class_modes(3) == GLYPH_CLASS_3
    for key in ("acceptance", "facet_recall", "realism_all"):
        assert 0.0 <= out[key] <= 1.0, key
    assert math.isnan(out["realism"]) or 0.0 <= out["realism"] <= 1.0
    assert math.isfinite(out["disc_logprob_all"]) and out["disc_logprob_all"] <= 0.0
    assert math.isfinite(out["mixing"]) and out["mixing"] >= 0.0 and out["mixing_window"] == 6
    assert out["evaluations"] == 6 and out["wall_time_s"] > 0 and out["n_samples"] == 12
    assert out["nmi"] is None or 0.0 <= out["nmi"] <= 1.0
