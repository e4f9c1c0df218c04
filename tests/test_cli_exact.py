"""The exact samplers from the command line and through neurovis.sample(rule=...)."""

from __future__ import annotations

import json

import pytest

import neurovis as nv
from neurovis.cli import main
from neurovis.errors import NeurovisError


def test_sample_command_with_hmc_records_the_sampler(tmp_path):
    out = tmp_path / "hmc"
    rc = main(["sample", "--model", "glyphs", "--prior", "glyphs-dgn-am", "--class", "3", "--rule", "hmc",
               "--leapfrog-steps", "3", "--step-size", "0.02", "--chains", "2", "--steps", "4", "--no-attribution",
               "--bootstrap", "0", "--natural-count", "20", "--out", str(out), "--quiet"])
    assert rc == 0
    cfg = json.loads((out / "facets.json").read_text())["reproducibility"]["sampling_config"]
    assert cfg["rule"] == "hmc" and cfg["leapfrog_steps"] == 3 and cfg["step_size"] == 0.02
    assert len(cfg["acceptance"]) == 2 and all(0 <= a <= 1 for a in cfg["acceptance"])
    assert cfg["evaluations"] == 1 + 4 * 3
    assert "leapfrog steps" in (out / "index.html").read_text()


def test_exact_rules_need_a_prior_with_a_density(tmp_path, capsys):
    rc = main(["sample", "--model", "glyphs", "--class", "3", "--rule", "mala", "--chains", "1", "--steps", "1",
               "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "faithful" in err
    assert not (tmp_path / "x").exists()


def test_sample_dispatches_and_refuses_mixed_options():
    prior = nv.load_prior("glyphs-dgn-am")
    cond = nv.ClassCondition(nv.load_model("glyphs"), 3)
    chains = nv.sample(prior, cond, chains=2, steps=3, rule="map", step_size=0.05, bounds="prior", progress=False)
    assert chains.config["rule"] == "map" and chains.codes.shape[:2] == (2, 4)
    assert float(chains.codes[:, 1:].min()) >= 0.0 and float(chains.codes[:, 1:].max()) <= 30.0
    with pytest.raises(NeurovisError, match="apply only to rule"):
        nv.sample(prior, cond, chains=1, steps=1, step_size=0.1, progress=False)
    with pytest.raises(NeurovisError, match="reset_every"):
        nv.sample(prior, cond, chains=1, steps=1, rule="mala", reset_every=5, progress=False)
