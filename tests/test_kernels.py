"""Kernel objects behind the one sampling loop: ``nv.sample(prior, cond, kernel=...)``.

The keyword form (``eps=``, ``rule="mala"``, ``step_size=`` ...) builds the same kernels, so
both forms give the same chains bit for bit; a kernel plus keywords that would set it too is
a one-line error; the loop runs any object that follows the protocol.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.errors import ChainDivergedError, NeurovisError
from neurovis.sampling.loop import Kernel, Run
from neurovis.sampling.mcmc import Step


def _same(a: nv.Chains, b: nv.Chains) -> None:
    for name in ("codes", "probs", "activations", "eps1", "failed", "chain_ids"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    strip = lambda c: {k: v for k, v in c.config.items() if k != "wall_time_s"}  # noqa: E731
    assert strip(a) == strip(b)


def _gauss():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Unflatten(1, (3, 2, 2)))
    clf = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    return nv.GaussianPrior(gen, code_shape=(4,)), nv.ClassCondition(clf, 1)


@pytest.mark.parametrize("settings", [
    {},
    {"eps": (1e-3, 1.0, 1e-3), "lr": 0.5, "rule": "faithful", "reset_every": 3},
    {"eps": (0.1, 2.0, 0.05), "rule": "textbook"},
    {"lr": 0.8, "lr_end": 0.1, "reset_every": 0},
])
def test_ppgn_kernel_equals_the_keyword_form(prior, net, settings):
    cond = nv.UnitCondition(net, "conv2", 2)
    words = nv.sample(prior, cond, chains=3, steps=7, seed=5, progress=False, **settings)
    kernel = nv.sample(prior, cond, chains=3, steps=7, seed=5, kernel=nv.sampling.PPGN(**settings), progress=False)
    _same(words, kernel)
    assert kernel.config["evaluations"] == 8  # one batched pass per sample, recorded by every kernel


def test_ppgn_kernel_takes_the_preset_and_records_the_method(prior, net):
    cond = nv.ClassCondition(net, 2)
    paper = nv.sample(prior, cond, chains=2, steps=4, preset="paper", kernel=nv.sampling.PPGN(), progress=False)
    _same(paper, nv.sample(prior, cond, chains=2, steps=4, preset="paper", progress=False))
    assert paper.config["method"]["name"] == "paper" and paper.config["reset_every"] == 0
    textbook = nv.sample(prior, cond, chains=2, steps=4, kernel=nv.sampling.PPGN(rule="textbook"), progress=False)
    assert textbook.config["rule"] == "textbook" and textbook.config["method"]["name"] == "custom"


@pytest.mark.parametrize("rule,kernel,options", [
    ("mala", nv.sampling.MALA, {"step_size": 0.05, "noise_anneal": 0.55, "step_decay": 0.5}),
    ("mala", nv.sampling.MALA, {"step_size": 0.05, "bounds": (-1.0, 1.0), "clip_after_mh": True}),
    ("hmc", nv.sampling.HMC, {"step_size": 0.05, "leapfrog_steps": 3}),
    ("map", nv.sampling.MAP, {"step_size": 0.1, "bounds": (-1.0, 1.0)}),
])
def test_exact_kernels_equal_the_rule_keywords(rule, kernel, options):
    prior, cond = _gauss()
    words = nv.sample(prior, cond, chains=3, steps=6, seed=2, rule=rule, progress=False, **options)
    obj = nv.sample(prior, cond, chains=3, steps=6, seed=2, kernel=kernel(**options), progress=False)
    _same(words, obj)
    assert obj.config["rule"] == rule and obj.config["log_prior"] == "N(0, I)"


def test_a_kernel_is_a_setting_not_a_run(prior, net):
    """The same kernel object twice gives the same chains (nothing of a run stays in it)."""
    cond = nv.ClassCondition(net, 1)
    ppgn = nv.sampling.PPGN(eps=(1e-3, 1.0, 1e-3), reset_every=2)
    _same(nv.sample(prior, cond, chains=2, steps=5, kernel=ppgn, progress=False),
          nv.sample(prior, cond, chains=2, steps=5, kernel=ppgn, progress=False))
    gauss, gcond = _gauss()
    mala = nv.sampling.MALA(step_size=0.05)
    _same(nv.sample(gauss, gcond, chains=2, steps=5, kernel=mala, progress=False),
          nv.sample(gauss, gcond, chains=2, steps=5, kernel=mala, progress=False))


@pytest.mark.parametrize("kwargs,match", [
    ({"eps": (1e-5, 1.0, 0.0)}, "eps and kernel= both set the sampler"),
    ({"rule": "textbook"}, "rule and kernel="),
    ({"lr": 2.0, "reset_every": 5}, "lr, reset_every and kernel="),
    ({"step_size": 0.1}, "step_size and kernel="),
])
def test_a_kernel_and_its_keywords_together_are_a_one_line_error(prior, net, kwargs, match):
    with pytest.raises(NeurovisError, match=match) as err:
        nv.sample(prior, nv.ClassCondition(net, 0), chains=1, steps=1, kernel=nv.sampling.PPGN(), progress=False,
                  **kwargs)
    assert "\n" not in str(err.value)


def test_bad_kernels_and_settings_are_one_line_errors(prior, net):
    cond = nv.ClassCondition(net, 0)
    cases = [
        (lambda: nv.sample(prior, cond, 1, 1, 0, "mala"), "kernel must be a sampling kernel"),
        (lambda: nv.sample(prior, cond, 1, 1, (1e-5, 1.0, 1e-17)), "seed must be an integer"),
        (lambda: nv.sampling.PPGN(rule="mala"), "unknown rule 'mala'"),
        (lambda: nv.sampling.PPGN(eps=(1.0, 2.0)), "eps must be three"),
        (lambda: nv.sampling.PPGN(lr=0), "lr must be a positive"),
        (lambda: nv.sampling.MALA(step_size=-1), "step_size must be"),
        (lambda: nv.sampling.HMC(leapfrog_steps=0), "leapfrog_steps must be"),
        (lambda: nv.sampling.MALA(clip_after_mh=True), "needs bounds"),
        (lambda: nv.sample(prior, cond, 1, 1, kernel=nv.sampling.MALA(), progress=False), "no evaluable density"),
        (lambda: nv.sample(*_gauss(), 1, 1, kernel=nv.sampling.MALA(), precision="bf16"), "precision='bf16'"),
        (lambda: nv.sample(*_gauss(), 1, 1, kernel=nv.sampling.HMC(), preset="paper"), "preset and starts"),
    ]
    for call, match in cases:
        with pytest.raises(NeurovisError, match=match) as err:
            call()
        assert "\n" not in str(err.value)


class _Drift(Kernel):
    """A kernel written outside neurovis: ``h ← h + δ`` (no model gradient), NaN at step ``bad``."""

    label = "drift"

    def __init__(self, delta: float, bad: int | None = None) -> None:
        self.delta, self.bad = delta, bad

    def _evaluate(self, run: Run, h: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            result = run.condition.evaluate(run.prior.decode(h), run.prior.pixel_space)
        prob = result.prob.clone()
        if t == self.bad:
            prob[1] = torch.nan
        run.fail(nv.sampling.loop.nonfinite({"probability": prob}), t)
        return h, prob, result.activation

    def start(self, run: Run, h0: torch.Tensor):
        return self._evaluate(run, h0, 0)

    def step(self, run: Run, state, t: int) -> Step:
        h = torch.where(run.failed.view(-1, 1), state[0], state[0] + self.delta)
        ones = torch.ones(run.chains, dtype=torch.bool)
        return Step(self._evaluate(run, h, t + 1), ones, ones.double(), 1)  # type: ignore[arg-type]

    def record(self, state, t: int):
        return state[0], state[1], state[2], self.delta

    def config(self, run: Run) -> dict:
        return {"rule": "drift", "delta": self.delta}


def test_the_loop_runs_any_kernel_with_its_nan_policy(prior, net):
    cond = nv.ClassCondition(net, 0)
    ch = nv.sample(prior, cond, chains=3, steps=4, kernel=_Drift(0.5), init=torch.zeros(3, 16), progress=False)
    torch.testing.assert_close(ch.codes[:, :, 0], torch.arange(5.0).mul(0.5).expand(3, 5))
    assert ch.config["rule"] == "drift" and ch.config["evaluations"] == 5 and ch.config["chains"] == 3
    assert torch.all(ch.eps1 == 0.5)
    with pytest.raises(ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 2 \(probability NaN\)"):
        nv.sample(prior, cond, chains=3, steps=4, kernel=_Drift(0.5, bad=2), progress=False)
    ch = nv.sample(prior, cond, chains=3, steps=4, kernel=_Drift(0.5, bad=2), init=torch.zeros(3, 16),
                   on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False] and ch.config["failures"][0]["step"] == 2
    assert torch.isnan(ch.probs[1, 2:]).all() and torch.equal(ch.codes[1, 2], ch.codes[1, -1])
