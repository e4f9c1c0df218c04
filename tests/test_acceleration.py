"""channels_last and torch.compile in the sampler: same chains within float tolerance."""

from __future__ import annotations

import json

import pytest
import torch

import neurovis as nv
from neurovis.cli import main
from neurovis.errors import NeurovisError


def _glyph_run(steps: int = 3, clamp_pixels: bool = False, chains: int = 6, **kwargs):
    """Glyph chains of class 3. The shipped prior clips its images (``clamp_pixels``), and
    clipped chains amplify last-bit differences (measured: 7e-6 in the codes after one step,
    0.3 after three), so a layout's several-step equality is checked on G's raw output and
    the clipped prior's on one step."""
    prior, model = nv.load_prior("glyphs"), nv.load_model("glyphs")
    prior.clamp_pixels = clamp_pixels
    chains = nv.sample(prior, nv.ClassCondition(model, 3), chains=chains, steps=steps, seed=5, progress=False, **kwargs)
    return prior, model, chains


def test_channels_last_on_the_clipped_prior_takes_the_same_first_step():
    plain, fast = _glyph_run(1, True)[2], _glyph_run(1, True, channels_last=True)[2]
    torch.testing.assert_close(fast.codes, plain.codes, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.probs, plain.probs, rtol=1e-4, atol=1e-4)


def test_channels_last_gives_the_same_chains_and_converts_the_weights():
    """Over 3 unclipped steps nearly every chain is the same in both layouts; a chain whose
    code lies within float rounding of a ReLU or max-pool kink of G or the classifier takes
    the other subgradient in one layout (measured with the 2026-12-02 prior: 0.6% gradient
    difference, 3e-2 in the code after one step; about 1 chain in 12 over 3 steps, seeds
    0-7), so all but 2 of 12 chains must agree to 1e-4; a wrong layout would break all."""
    _, _, plain = _glyph_run(chains=12)
    prior, model, fast = _glyph_run(chains=12, channels_last=True)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not model.conv1.weight.is_contiguous()  # really NHWC now (a 5×5×3 kernel is not both)
    assert fast.config["channels_last"] is True and plain.config["channels_last"] is False
    same = (fast.codes - plain.codes).abs().amax(dim=(1, 2)) <= 1e-4 * (1 + plain.codes.abs().amax(dim=(1, 2)))
    assert int(same.sum()) >= 10, f"only {int(same.sum())} of 12 chains agree"
    torch.testing.assert_close(fast.codes[same], plain.codes[same], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.probs[same], plain.probs[same], rtol=1e-4, atol=1e-4)
    assert set(model.state_dict()) == set(nv.load_model("glyphs").state_dict())


def test_compiled_generator_gives_the_same_chains(prior, net):
    cond = nv.UnitCondition(net, "conv2", 2)
    plain = nv.sample(prior, cond, chains=3, steps=4, seed=2, progress=False)
    keys = set(prior.generator.state_dict())
    fast = nv.sample(prior, cond, chains=3, steps=4, seed=2, progress=False, compile="aot_eager")
    assert prior.generator._compiled_call_impl is not None and set(prior.generator.state_dict()) == keys
    assert fast.config["compile"] == "aot_eager"
    torch.testing.assert_close(fast.codes, plain.codes, rtol=1e-5, atol=1e-5)


def test_unknown_compile_backend_and_exact_rules_are_one_line_errors(prior, net, tmp_path, capsys):
    with pytest.raises(NeurovisError, match="torch.compile"):
        nv.sample(prior, nv.UnitCondition(net, "conv2", 2), chains=1, steps=1, compile="no-such-backend", progress=False)
    with pytest.raises(NeurovisError, match="channels_last"):
        nv.sample(nv.load_prior("glyphs-dgn-am"), nv.ClassCondition(nv.load_model("glyphs"), 3), chains=1, steps=1,
                  rule="mala", channels_last=True, progress=False)
    rc = main(["sample", "--model", "glyphs", "--prior", "glyphs-dgn-am", "--class", "3", "--rule", "mala",
               "--channels-last", "--out", str(tmp_path / "x")])
    assert rc == 2 and capsys.readouterr().err.count("\n") == 1


def test_cli_flags_reach_the_sampler(tmp_path):
    out = tmp_path / "s"
    rc = main(["sample", "--model", "glyphs", "--class", "3", "--chains", "2", "--steps", "2", "--channels-last",
               "--compile", "aot_eager", "--out", str(out), "--quiet"])
    assert rc == 0
    config = json.loads((out / "facets.json").read_text())["reproducibility"]["sampling_config"]
    assert config["channels_last"] is True and config["compile"] == "aot_eager"
