"""bf16 autocast in the sampler: the step keeps its direction; codes stay float32."""

from __future__ import annotations

import pytest
import torch

import neurovis as nv
from neurovis.cli import main
from neurovis.errors import NeurovisError
from neurovis.sampling.rng import chain_generator


def test_bf16_step_keeps_the_direction_of_fp32():
    prior, model = nv.load_prior("glyphs"), nv.load_model("glyphs")
    cond = nv.ClassCondition(model, 3)
    h = prior.initial_codes([chain_generator(0, i) for i in range(16)]).abs() * 2
    steps = {}
    for precision in ("fp32", "bf16"):
        chains = nv.sample(prior, cond, chains=16, steps=1, init=h, rule="textbook", eps=(1e-5, 1, 0),
                           precision=precision, progress=False)
        assert chains.codes.dtype == torch.float32 and chains.config["precision"] == precision
        steps[precision] = (chains.codes[:, 1] - chains.codes[:, 0]).flatten(1)
    cos = torch.nn.functional.cosine_similarity(steps["fp32"], steps["bf16"], dim=1)
    assert float(cos.mean()) > 0.95, cos
    assert not torch.equal(steps["fp32"], steps["bf16"])  # bf16 really ran


def test_bad_precision_is_one_line(tmp_path, capsys):
    prior, model = nv.load_prior("glyphs"), nv.load_model("glyphs")
    with pytest.raises(NeurovisError, match="unknown precision"):
        nv.sample(prior, nv.ClassCondition(model, 3), chains=1, steps=1, precision="fp8", progress=False)
    rc = main(["sample", "--model", "glyphs", "--prior", "glyphs-dgn-am", "--class", "3", "--rule", "mala",
               "--precision", "bf16", "--out", str(tmp_path / "x")])
    assert rc == 2 and capsys.readouterr().err.count("\n") == 1
