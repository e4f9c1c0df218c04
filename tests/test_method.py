"""The sampling method: one recommended default per prior, the paper's one word away, the
same configuration from Python and from the command line, starts never kept, and the
hidden units' keep rule."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
import torch

import neurovis as nv
from neurovis.cli import main
from neurovis.method import Method, resolve_method
from neurovis.sampling.ppgn import NoStartBankWarning
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.priors import START_BANK_IMAGES, START_BANK_SEED, load_glyph_start_bank
from neurovis.zoo import registered_priors


@pytest.fixture(scope="module")
def glyphs():
    return nv.load_model("glyphs")


def test_generator_priors_recommend_real_starts_and_restarts_and_the_paper_preset_is_the_papers():
    prior = nv.load_prior("glyphs")
    rec, paper = resolve_method(prior), resolve_method(prior, "paper")
    assert (rec.name, rec.starts, rec.reset_every, rec.keep, rec.eps) == ("recommended", "bank", 10, "activation",
                                                                          (1e-5, 1.0, 1e-17))
    assert (paper.name, paper.starts, paper.reset_every, paper.keep, paper.eps, paper.lr, paper.rule,
            paper.threshold) == ("paper", "random", 0, "probability", (1e-5, 1.0, 1e-17), 1.0, "faithful", 0.97)
    # a setting given explicitly is applied on top and names the method "custom"
    assert resolve_method(prior, reset_every=5).name == "custom" and resolve_method(prior, reset_every=10).name == "recommended"
    # priors without a recommendation fall back to their paper ε (PPGN-x's own, DGN-AM's ε1 = 0)
    assert resolve_method(nv.load_prior("glyphs-ppgn-x")).eps == nv.load_prior("glyphs-ppgn-x").default_eps
    assert resolve_method(nv.load_prior("glyphs-dgn-am")).eps == (0.0, 1.0, 1e-17)
    with pytest.raises(nv.NeurovisError, match="unknown preset"):
        resolve_method(prior, "fast")
    with pytest.raises(nv.NeurovisError, match="positive number"):
        Method("x", (1e-5, 1, 0), lr=float("nan"))


def test_paper_preset_reproduces_the_previous_defaults_bit_for_bit(glyphs):
    """``preset="paper"`` on ``glyphs`` = what ``nv.sample(load_prior("glyphs"), cond)`` ran
    before the recommended method: the Noiseless Joint generator, ε (1e-5, 1, 1e-17), lr 1,
    the faithful rule, N(0, 1) starts, no restarts."""
    cond = nv.ClassCondition(glyphs, 3)
    paper = nv.sample(nv.load_prior("glyphs"), cond, chains=2, steps=6, seed=4, preset="paper", progress=False)
    explicit = nv.sample(nv.load_prior("glyphs-noiseless").with_start_codes(None), cond, chains=2, steps=6, seed=4,
                         eps=(1e-5, 1.0, 1e-17), lr=1.0, rule="faithful", reset_every=0, starts="random",
                         progress=False)
    assert torch.equal(paper.codes, explicit.codes) and torch.equal(paper.probs, explicit.probs)
    assert paper.config["prior"]["starts"] == "N(0, 1)" and paper.config["init"] == "random"
    # h0 is the chain's own N(0, 1) draw, as before
    assert torch.equal(paper.codes[1, 0], torch.randn(512, generator=nv.sampling.rng.chain_generator(4, 1)))
    default = nv.sample(nv.load_prior("glyphs"), cond, chains=2, steps=6, seed=4, progress=False)
    assert default.config["method"]["name"] == "recommended" and default.config["init"] == "bank"
    assert not torch.equal(default.codes[:, 0], paper.codes[:, 0])


def test_shipped_start_bank_is_the_encoders_codes_of_its_world_images():
    bank = load_glyph_start_bank()
    assert bank.shape == (START_BANK_IMAGES, 512) and bank.dtype == torch.float32 and (bank >= 0).all()
    encoder = nv.priors.LayerEncoder(nv.load_model("glyphs-encoder"), "fc6", relu=True).eval()
    images = GlyphWorld().sample(START_BANK_IMAGES, seed=START_BANK_SEED).images[:64]
    with torch.no_grad():
        assert torch.allclose(encoder(images), bank[:64], atol=1e-4)
    # every glyph generator prior carries it; its starts are codes of the bank
    for name in ("glyphs", "glyphs-noiseless", "glyphs-joint", "glyphs-unit-clip"):
        assert torch.equal(nv.load_prior(name).start_codes, bank), name


def test_a_prior_without_a_bank_says_so_once_and_starts_as_the_paper(glyphs):
    prior = nv.load_prior("glyphs-noiseless").with_start_codes(None)
    cond = nv.ClassCondition(glyphs, 1)
    with pytest.warns(NoStartBankWarning, match="no start bank"):
        chains = nv.sample(prior, cond, chains=2, steps=3, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random = nv.sample(prior, cond, chains=2, steps=3, starts="random", reset_every=10, progress=False)
    assert torch.equal(chains.codes, random.codes)


def test_restarts_are_marked_never_last_and_never_kept(glyphs):
    always = nv.CallableCondition(lambda x: torch.zeros(x.shape[0]), name="always")  # log p = 0: p = 1 everywhere
    chains = nv.sample(nv.load_prior("glyphs"), always, chains=2, steps=10, reset_every=5, progress=False)
    starts = chains.is_start[0].nonzero().flatten().tolist()
    assert starts == [0, 5]  # no restart after the last step: sample 10 is a sampled state
    assert not torch.equal(chains.codes[:, 10], chains.codes[:, 9])
    assert int(chains.accepted(0.5).sum()) == 2 * (11 - 2)
    report = nv.facets(chains, pick=50, attribution=False, bootstrap=0, progress=False)
    _, step = report.selection.chain_step(report.selection.kept)
    assert report.selection.kept.size == 18 and not np.isin(step, [0, 5]).any()


def test_hidden_units_are_kept_by_activation_against_natural_images(glyphs):
    from neurovis.analysis.natural import score
    from neurovis.glyphs.natural import glyph_world_images

    natural = glyph_world_images(300, seed=11, size=(64, 64))
    cond = nv.UnitCondition(glyphs, "conv5", 10)
    chains = nv.sample(nv.load_prior("glyphs"), cond, chains=3, steps=30, progress=False)
    report = nv.facets(chains, natural_images=natural, attribution=False, bootstrap=0, progress=False)
    keep = report.selection.keep
    acts, _ = score(cond, natural, chains.prior.pixel_space)
    assert keep["rule"] == "activation" and keep["activation_threshold"] == pytest.approx(np.percentile(acts, 99))
    flat = chains.activations.numpy().reshape(-1)
    ok = (flat >= keep["activation_threshold"]) & ~chains.is_start.numpy().reshape(-1)
    assert np.array_equal(report.selection.kept, np.flatnonzero(ok)) and report.selection.kept.size > 0
    # the paper preset keeps by the softmax over the layer's channels (out of reach here)
    paper = nv.sample(nv.load_prior("glyphs"), cond, chains=3, steps=30, preset="paper", progress=False)
    report = nv.facets(paper, natural_images=natural, attribution=False, bootstrap=0, progress=False)
    assert report.selection.keep["rule"] == "probability"
    assert np.array_equal(report.selection.kept, np.flatnonzero(paper.accepted(0.97).numpy().reshape(-1)))
    # fc8 is the model's output: a class, kept by probability whatever the method
    fc8 = nv.sample(nv.load_prior("glyphs"), nv.UnitCondition(glyphs, "fc8", 3), chains=2, steps=10, progress=False)
    report = nv.facets(fc8, natural_images=natural, attribution=False, bootstrap=0, progress=False)
    assert report.selection.keep["rule"] == "probability" and "output" in report.selection.keep["note"]


@pytest.mark.parametrize("name", [n for n in registered_priors() if n != "caffenet-fc6"])
def test_api_and_cli_resolve_the_same_configuration(glyphs, name):
    """For every registered prior (caffenet-fc6 needs converted Caffe files, tested in
    test_caffenet_prior.py), the command line's sampling (its own loading and arguments)
    and ``nv.sample`` with nothing set run the same full configuration and the same chains;
    so do both with the paper preset."""
    from neurovis import cli

    for preset in ([], ["--preset", "paper"]):
        args = cli.build_parser().parse_args(["sample", "--model", "glyphs", "--prior", name, "--class", "2", "--chains",
                                              "2", "--steps", "3", "--natural-count", "16", "--device", "cpu",
                                              "--quiet", *preset])
        model, prior, _, _ = cli._setup(args)
        ran = cli._sample(args, prior, nv.ClassCondition(model, 2))
        api = nv.sample(nv.load_prior(name), nv.ClassCondition(glyphs, 2), chains=2, steps=3,
                        preset=preset[1] if preset else None, progress=False)
        assert ran.config["method"] == api.config["method"], (name, preset)
        for key in ("eps", "lr", "rule", "reset_every", "init", "preset", "prior"):
            assert ran.config[key] == api.config[key], (name, preset, key)
        assert torch.equal(ran.codes, api.codes), (name, preset)


def test_cli_report_records_the_method_and_keep_rule(tmp_path):
    out = tmp_path / "r"
    assert main(["facets", "--model", "glyphs", "--layer", "conv5", "--unit", "10", "--chains", "2", "--steps", "12",
                 "--bootstrap", "0", "--no-attribution", "--natural-count", "100", "--quiet", "--out", str(out)]) == 0
    doc = json.loads((out / "facets.json").read_text())
    assert doc["reproducibility"]["sampling_config"]["method"]["name"] == "recommended"
    assert doc["keep"]["rule"] == "activation" and doc["keep"]["natural_images"] == 100
    assert "kept by <b>activation</b>" in (out / "index.html").read_text()
    with h5py.File(out / "samples.h5") as f:
        kept, step = f["kept"][()], f["step"][()]
    assert not kept[np.isin(step, [0, 10])].any()


def test_summary_line_names_each_facet_and_what_was_missed():
    from neurovis.analysis.pipeline import summary_line

    truth = {"rule": "the class's modes", "n_modes": 4, "n_found": 3,
             "facets": [{"name": "cyan square"}, {"name": "cyan square"}, {"name": "blue circle"}],
             "modes": [{"name": n, "found": n != "red star"} for n in ("cyan square", "blue circle", "red star", "x")]}
    nat = {"n_found": 2, "n_clusters": 3, "missed": [1]}
    text = summary_line("ok", 3, {"ground_truth": truth, "natural": nat})
    assert text == ("3 facets found: cyan square (2 facets), blue circle. Modes of this class: 4, found: 3 "
                    "(missed: red star). Natural images: 2 of 3 clusters of its top images found, 1 missed (shown below).")
    assert summary_line("dead_unit", 0, {}) == "No facets found: the unit never activates."
