"""The oracle's explicit "no glyph" answer: world images named confidently, off-world
images (noise, textures, blends of two glyphs) given confidence ~0. Runs in seconds."""

import pytest
import torch

from neurovis.glyphs.recipes.classifier import blend_images, noise_images, texture_images
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.nets import ORACLE_FILE, WEIGHTS_DIR, build_glyph_net, load_glyph_oracle, save_glyph_checkpoint

N = 128
LEVEL = 0.9  # neurovis.glyphs.evaluation.DEFAULT_REALISM_LEVEL
SEED = 55_555  # neither the training stream's nor the held-out evaluation's seeds


@pytest.fixture(scope="module")
def oracle():
    return load_glyph_oracle()


def test_shipped_oracle_has_glyph_head(oracle):
    assert oracle.has_glyph_head and oracle.arch["no_glyph"]
    payload = torch.load(WEIGHTS_DIR / ORACLE_FILE, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    assert all(p.dtype == torch.float32 for p in oracle.parameters())


def test_world_images_named_confidently(oracle):
    batch = GlyphWorld().sample(N, seed=SEED)
    modes, conf = oracle.predict(batch.images)
    ok = (modes == batch.modes) & (conf >= LEVEL)
    assert ok.float().mean() >= 0.95, ok.float().mean()
    assert oracle.glyph_prob(batch.images).mean() > 0.95


@pytest.mark.parametrize("make", [noise_images, texture_images, blend_images], ids=["noise", "texture", "blend"])
def test_off_world_images_low_confidence(oracle, make):
    x = make(N, SEED)
    assert x.shape == (N, 3, 64, 64) and x.min() >= 0 and x.max() <= 1
    _, conf = oracle.predict(x)
    assert (conf >= LEVEL).float().mean() <= 0.05, (conf >= LEVEL).float().mean()


def test_forward_is_mode_distribution_given_a_glyph(oracle):
    x = noise_images(4, 1)
    lp = oracle(x)
    assert lp.shape == (4, 64)
    assert torch.allclose(lp.exp().sum(1), torch.ones(4), atol=1e-4)  # unchanged API
    modes, conf = oracle.predict(x)
    p = oracle.glyph_prob(x)
    assert torch.allclose(conf, lp.max(1).values.exp() * p, atol=1e-5)
    assert torch.equal(modes, lp.argmax(1))


def test_two_head_checkpoint_still_loads(tmp_path):
    net = build_glyph_net("oracle", {"n_shapes": 8, "n_colours": 8, "no_glyph": False})
    payload_arch = {"n_shapes": 8, "n_colours": 8}  # as written before the glyph head
    net.arch = payload_arch
    p = save_glyph_checkpoint(tmp_path / "old.pt", net, "oracle", {}, seed=0)
    old = load_glyph_oracle(p)
    assert not old.has_glyph_head
    x = torch.rand(3, 3, 64, 64)
    _, conf = old.predict(x)
    assert torch.allclose(conf, old(x).max(1).values.exp(), atol=1e-6)
    assert torch.equal(old.glyph_prob(x), torch.ones(3))
