"""PPGN-h and PPGN-x on the glyph world: loading by name, the DAEs denoise, chains run."""

import pytest
import torch

import neurovis as nv
from neurovis.glyphs.recipes.daes import HDAE_CONFIG, XDAE_CONFIG, denoising_metrics, glyph_codes
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs import nets as glyphs
from neurovis.glyphs.treatments import (
    HDAE_FILE,
    PPGN_X_EPS,
    RETRAIN_DAES_COMMAND,
    XDAE_FILE,
    load_glyph_dae,
    load_glyph_ppgn_h,
    load_glyph_ppgn_x,
)
from neurovis.glyphs.checkpoints import load_payload

# A world seed neither the training stream nor the recorded held-out figures used.
FRESH_SEED = 31_337


@pytest.fixture(scope="module")
def ppgn_h():
    return nv.load_prior("glyphs-ppgn-h")


@pytest.fixture(scope="module")
def ppgn_x():
    return nv.load_prior("glyphs-ppgn-x")


@pytest.fixture(scope="module")
def fresh():
    return GlyphWorld().sample(256, seed=FRESH_SEED).images


def test_registered():
    names = nv.zoo.registered_priors()
    assert "glyphs-ppgn-h" in names and "glyphs-ppgn-x" in names


@pytest.mark.parametrize("filename,kind", [(HDAE_FILE, "hdae"), (XDAE_FILE, "xdae")])
def test_payloads_are_fp16_and_weights_only(filename, kind):
    raw = torch.load(glyphs.WEIGHTS_DIR / filename, map_location="cpu", weights_only=True)
    assert raw["format"] == "neurovis.glyphs/1" and raw["kind"] == kind
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values())
    assert {"arch", "metrics", "config"} <= set(raw)
    assert raw["metrics"]["denoise_ratio"] < 0.5
    state, _ = load_payload(glyphs.WEIGHTS_DIR / filename)
    assert all(v.dtype == torch.float32 for v in state.values())


def test_ppgn_h_shapes(ppgn_h):
    assert isinstance(ppgn_h, nv.HDAEPrior) and ppgn_h.space == "h"
    assert ppgn_h.code_shape == (512,) and ppgn_h.code_clip == (0.0, 30.0)
    assert ppgn_h.default_eps == (1e-5, 1.0, 1e-5)
    h = torch.rand(2, 512) * 3
    with torch.no_grad():
        x = ppgn_h.decode(h)
        term = ppgn_h.prior_term(h, x)
    assert x.shape == (2, 3, 64, 64) and term.shape == (2, 512) and torch.isfinite(term).all()
    # the generator is the shipped glyph prior's
    assert ppgn_h.weights_paths[0] == nv.load_prior("glyphs-noiseless").weights_paths[0]


def test_ppgn_x_shapes(ppgn_x):
    assert isinstance(ppgn_x, nv.PixelPrior) and ppgn_x.space == "x" and ppgn_x.denoiser is not None
    assert ppgn_x.code_shape == (3, 64, 64) and ppgn_x.default_eps == PPGN_X_EPS
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ppgn_x.decode(x), x)
        term = ppgn_x.prior_term(x, x)
    assert term.shape == (2, 3, 64, 64) and torch.isfinite(term).all()
    assert ppgn_x.describe()["treatment"] == "PPGN-x (image DAE)"


def test_h_dae_denoises_fresh_codes(ppgn_h, fresh):
    codes = glyph_codes(glyphs.load_glyph_encoder(), fresh)
    m = denoising_metrics(ppgn_h.dae, codes, HDAE_CONFIG.sigma, seed=7)
    assert abs(m["noisy_mse"] - HDAE_CONFIG.sigma**2) < 0.05 * HDAE_CONFIG.sigma**2
    assert m["denoised_mse"] < 0.4 * m["noisy_mse"], m


def test_x_dae_denoises_fresh_images(ppgn_x, fresh):
    m = denoising_metrics(ppgn_x.denoiser, fresh, XDAE_CONFIG.sigma, seed=7)
    assert m["denoised_mse"] < 0.5 * m["noisy_mse"], m


@pytest.mark.parametrize("name", ["glyphs-ppgn-h", "glyphs-ppgn-x"])
def test_sampling_runs(name, ppgn_h, ppgn_x):
    prior = ppgn_h if name.endswith("-h") else ppgn_x
    lr = 0.05 if prior.space == "x" else 1.0
    chains = nv.sample(prior, nv.ClassCondition(nv.load_model("glyphs"), 3), chains=2, steps=5,
                       eps=prior.default_eps, lr=lr, seed=0, progress=False)
    assert chains.probs.shape == (2, 6) and torch.isfinite(chains.probs).all()
    assert ((chains.probs >= 0) & (chains.probs <= 1)).all()


@pytest.mark.parametrize("loader,kind", [(load_glyph_ppgn_h, "hdae"), (load_glyph_ppgn_x, "xdae")])
def test_missing_weights_name_the_retrain_script(loader, kind, tmp_path, monkeypatch):
    with pytest.raises(nv.NeurovisError) as err:
        loader(path=tmp_path / "nothing.pt")
    msg = str(err.value)
    assert "\n" not in msg and RETRAIN_DAES_COMMAND in msg and "nothing.pt" in msg
    monkeypatch.setattr(glyphs, "WEIGHTS_DIR", tmp_path)  # the default path, resolved at call time
    with pytest.raises(nv.NeurovisError, match="train_glyph_daes.py"):
        load_glyph_dae(kind)


def test_wrong_kind_is_refused():
    with pytest.raises(nv.NeurovisError, match="not a glyph xdae payload"):
        load_glyph_dae("xdae", path=glyphs.WEIGHTS_DIR / HDAE_FILE)


def test_joint_ppgn_h_loads_and_differs_from_the_noiseless_generator():
    joint, base = nv.load_prior("glyphs-joint"), nv.load_prior("glyphs-noiseless")
    assert joint.name == "glyphs-joint" and joint.code_shape == base.code_shape == (512,)
    x = GlyphWorld().sample(16, seed=11).images
    with torch.no_grad():
        h = base.encode(x)
        xj, xb = joint.decode(h), base.decode(h)
    assert xj.shape == xb.shape == (16, 3, 64, 64)
    gap, err_j = float((xj - xb).abs().mean()), float((xj - x).abs().mean())
    assert 1e-4 < gap < err_j  # fine-tuned from it: differs, yet less than either is from the photos
    chains = nv.sample(joint, nv.ClassCondition(nv.load_model("glyphs"), 3), chains=2, steps=3, progress=False)
    assert torch.isfinite(chains.probs).all()


def test_shipped_joint_generator_was_trained_with_the_documented_noise():
    import json

    from neurovis.glyphs.treatments import JOINT_FILE, JOINT_NOISE, joint_override, joint_total_steps
    from neurovis.glyphs.nets import WEIGHTS_DIR
    from neurovis.glyphs.checkpoints import load_payload

    _, meta = load_payload(WEIGHTS_DIR / JOINT_FILE)
    assert tuple(json.loads(meta["config"])["noise"]) == JOINT_NOISE
    script = (WEIGHTS_DIR.parents[2] / "scripts" / "retrain_glyphs.sh").read_text()
    assert f"--override '{joint_override()}'" in script
    assert f"--steps {joint_total_steps()}" in script and joint_total_steps() == json.loads(meta["config"])["steps"]


def test_joint_unit_clip_is_the_joint_generator_with_the_unit_ranges():
    combined, joint, unit = (nv.load_prior(n) for n in ("glyphs-joint-unit-clip", "glyphs-joint", "glyphs-unit-clip"))
    assert combined.generator is not unit.generator and combined.weights_paths == joint.weights_paths
    torch.testing.assert_close(combined.code_clip[1], unit.code_clip[1])  # same encoder, same images, same ranges
    h = torch.full((1, 512), 29.0)
    with torch.no_grad():
        torch.testing.assert_close(combined.decode(combined.clip(h)), joint.decode(torch.minimum(h, unit.code_clip[1])))
