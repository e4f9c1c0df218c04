"""Exact samplers (MALA, HMC, MAP with clipping) on densities whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

import neurovis as nv
from neurovis.sampling import mcmc
from neurovis.sampling.exact import (
    likelihood_condition,
    log_posterior,
    sample_exact,
)
from neurovis.sampling.rng import chain_generator

# --------------------------------------------------------------------------- targets

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.5], [0.5, 0.8]], dtype=torch.float64)
PREC = torch.linalg.inv(COV)


def gauss(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log N(h; MU, COV) up to a constant, and its gradient: (B, 2) -> (B,), (B, 2)."""
    d = h - MU.to(h)
    pd = d @ PREC.to(h)
    return -0.5 * (pd * d).sum(1), -pd


MODES = torch.tensor([[-1.2, 0.0], [1.2, 0.0]], dtype=torch.float64)
WEIGHTS = torch.tensor([0.3, 0.7], dtype=torch.float64)
SIGMA = 0.6


def mixture(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """0.3 N((-1.2, 0), 0.36 I) + 0.7 N((1.2, 0), 0.36 I): (B, 2) -> (B,), (B, 2)."""
    d = h[:, None, :] - MODES.to(h)[None]
    lk = WEIGHTS.to(h).log() - 0.5 * (d**2).sum(-1) / SIGMA**2
    r = torch.softmax(lk, 1)
    return torch.logsumexp(lk, 1), -(r[..., None] * d).sum(1) / SIGMA**2


def rngs_for(n: int, seed: int = 0, ids=None) -> list[torch.Generator]:
    return [chain_generator(seed, i) for i in (range(n) if ids is None else ids)]


def run(rule, fn, h0, steps, step, rngs, leapfrog=5, **kw):
    """All states after each step (B, steps, *S) and the mean acceptance."""
    state = mcmc.evaluate(fn, h0)
    out, acc = [], []
    for _ in range(steps):
        if rule == "mala":
            s = mcmc.mala_step(state, fn, step, rngs, **kw)
        elif rule == "hmc":
            s = mcmc.hmc_step(state, fn, step, leapfrog, rngs, **kw)
        else:
            s = mcmc.map_step(state, fn, step, **kw)
        state = s.state
        out.append(state.h)
        acc.append(s.accepted.double().mean())
    return torch.stack(out, 1), float(torch.stack(acc).mean())


def exact_gauss_samples(n: int, seed: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MU + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(COV).T


# --------------------------------------------------------------------------- Gaussian and mixture


@pytest.mark.parametrize("rule,step", [("mala", 0.5), ("hmc", 0.5)])
def test_gaussian_mean_and_covariance(rule, step):
    rngs = rngs_for(100)
    h0 = torch.stack([torch.randn(2, generator=g, dtype=torch.float64) for g in rngs]) * 2
    xs, acc = run(rule, gauss, h0, 300, step, rngs)
    x = xs[:, 100:].reshape(-1, 2)
    assert 0 < acc < 1
    torch.testing.assert_close(x.mean(0), MU, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), COV, atol=0.08, rtol=0)


def test_mh_step_corrects_a_step_size_where_unadjusted_langevin_diverges():
    h0, alpha = exact_gauss_samples(2000), 1.0  # α·λ_max(Σ⁻¹) ≈ 2.5 > 2
    rngs = rngs_for(2000)
    xs, acc = run("mala", gauss, h0, 20, alpha, rngs)
    assert 0.2 < acc < 0.6
    torch.testing.assert_close(xs[:, -1].mean(0), MU, atol=0.08, rtol=0)
    torch.testing.assert_close(torch.cov(xs[:, -1].T), COV, atol=0.1, rtol=0)
    ula, g = h0.clone(), torch.Generator().manual_seed(0)
    for _ in range(20):  # the same proposal, always accepted
        ula = ula + alpha * gauss(ula)[1] + math.sqrt(2 * alpha) * torch.randn(ula.shape, generator=g, dtype=ula.dtype)
    assert torch.cov(ula.T).diagonal().max() > 100


def test_mixture_visits_both_modes_with_the_right_weights():
    # all chains start in the light mode; the right one holds P(x0 > 0) of the mass
    truth = float(WEIGHTS[0] * norm.cdf(-1.2 / SIGMA) + WEIGHTS[1] * norm.cdf(1.2 / SIGMA))
    for rule, step, L in (("mala", 0.3, 1), ("hmc", 0.4, 8)):
        rngs = rngs_for(100, seed=1)
        xs, _ = run(rule, mixture, MODES[0].expand(100, 2).clone(), 600 if rule == "mala" else 300, step, rngs, L)
        right = (xs[:, 100:, 0] > 0).double()
        per_chain = right.mean(1)
        assert ((per_chain > 0) & (per_chain < 1)).double().mean() > 0.9, rule  # chains cross
        assert abs(float(right.mean()) - truth) < 0.03, (rule, float(right.mean()), truth)


def test_acceptance_in_unit_interval_and_falls_with_step_size():
    h0 = exact_gauss_samples(50)
    for rule, steps in (("mala", (0.05, 0.2, 0.5, 1.0, 2.0)), ("hmc", (0.1, 0.3, 0.6, 0.9, 1.2))):
        rates = [run(rule, gauss, h0.clone(), 40, s, rngs_for(50))[1] for s in steps]
        assert all(0 < r < 1 for r in rates), (rule, rates)
        assert all(a > b for a, b in zip(rates, rates[1:])), (rule, rates)


def test_annealed_noise_and_decaying_steps_keep_the_target_invariant():
    # start exactly at the target; any MALA kernel with an MH step must leave it there
    h0 = exact_gauss_samples(4000)
    rngs = rngs_for(4000)
    state = mcmc.evaluate(gauss, h0)
    for t in range(15):
        step = mcmc.step_schedule(0.8, t, decay=0.55, offset=2.0)
        noise = mcmc.noise_schedule(1.0, t, anneal=0.55)
        state = mcmc.mala_step(state, gauss, step, rngs, noise=noise).state
    torch.testing.assert_close(state.h.mean(0), MU, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(state.h.T), COV, atol=0.08, rtol=0)
    assert mcmc.step_schedule(0.8, 0, 0.55, 2.0) == 0.8
    assert mcmc.step_schedule(0.8, 6, 0.55, 2.0) == pytest.approx(0.8 * (2 / 8) ** 0.55)
    assert mcmc.noise_schedule(1.0, 3, 0.55) == pytest.approx(4 ** -0.275)


# --------------------------------------------------------------------------- detailed balance


def _double_well(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A skewed 1-D double well, log π(x) = −2(x² − 1)² + 0.5x: (B, 1) -> (B,), (B, 1)."""
    x = h[:, 0]
    return -2 * (x**2 - 1) ** 2 + 0.5 * x, (-8 * x * (x**2 - 1) + 0.5)[:, None]


def test_mala_kernel_satisfies_detailed_balance_on_a_grid():
    """π_i T_ij = π_j T_ji on a 1-D grid, with q written out independently of the library."""
    alpha, noise = 0.05, 0.8
    grid = torch.linspace(-2, 2, 41, dtype=torch.float64)[:, None]
    xi, xj = (g.reshape(-1, 1) for g in torch.meshgrid(grid[:, 0], grid[:, 0], indexing="ij"))
    si, sj = mcmc.evaluate(_double_well, xi), mcmc.evaluate(_double_well, xj)
    var = 2 * alpha * noise**2

    def log_q(to, frm):  # density of the documented proposal N(x + α∇log π(x), 2α·noise²)
        return -((to.h - frm.h - alpha * frm.grad) ** 2).sum(1) / (2 * var) - 0.5 * math.log(2 * math.pi * var)

    a_ij = mcmc.mala_log_ratio(si, sj, alpha, noise).clamp(max=0)
    a_ji = mcmc.mala_log_ratio(sj, si, alpha, noise).clamp(max=0)
    flow_ij = si.logp + log_q(sj, si) + a_ij
    flow_ji = sj.logp + log_q(si, sj) + a_ji
    torch.testing.assert_close(flow_ij, flow_ji, rtol=0, atol=1e-9)
    # and without the proposal correction it would fail: the check has teeth
    naive = (sj.logp - si.logp).clamp(max=0)
    assert (si.logp + log_q(sj, si) + naive - (sj.logp + log_q(si, sj) + (si.logp - sj.logp).clamp(max=0))).abs().max() > 1e-2


def _symmetric_counts(pairs_from: torch.Tensor, pairs_to: torch.Tensor, k: int) -> np.ndarray:
    counts = np.zeros((k, k))
    np.add.at(counts, (pairs_from.numpy(), pairs_to.numpy()), 1)
    return counts


def _assert_detailed_balance(counts: np.ndarray, pi: np.ndarray) -> None:
    """Empirical N_ij ≈ N_ji (4σ) and both marginals ≈ π (stationarity)."""
    k = len(pi)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = counts[i, j], counts[j, i]
            assert a + b > 100, (i, j, a, b)
            assert abs(a - b) < 4 * math.sqrt(a + b) + 1, (i, j, a, b)
    total = counts.sum()
    np.testing.assert_allclose(counts.sum(1) / total, pi, atol=0.01)
    np.testing.assert_allclose(counts.sum(0) / total, pi, atol=0.01)


def test_mh_accept_gives_detailed_balance_on_three_states():
    pi = np.array([0.2, 0.5, 0.3])
    q = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.1, 0.8, 0.1]], dtype=torch.float64)  # not symmetric
    lpi = torch.tensor(np.log(pi))
    n, steps = 4000, 12
    rngs = rngs_for(n)
    g = torch.Generator().manual_seed(3)
    s = torch.multinomial(torch.tensor(pi), n, replacement=True, generator=g)
    froms, tos = [], []
    for _ in range(steps):
        prop = torch.multinomial(q[s], 1, generator=g)[:, 0]
        log_ratio = lpi[prop] + q[prop, s].log() - lpi[s] - q[s, prop].log()
        accepted, prob = mcmc.mh_accept(log_ratio, rngs)
        assert torch.all((prob >= 0) & (prob <= 1))
        new = torch.where(accepted, prop, s)
        froms.append(s)
        tos.append(new)
        s = new
    _assert_detailed_balance(_symmetric_counts(torch.cat(froms), torch.cat(tos), 3), pi)


@pytest.mark.parametrize("rule,step", [("mala", 0.6), ("hmc", 0.5)])
def test_mcmc_transitions_balance_between_bins_at_stationarity(rule, step):
    """A 1-D two-mode target binned in three; the chain starts exactly at stationarity."""
    w, m, s = torch.tensor([0.3, 0.7]), torch.tensor([-1.0, 1.2]), torch.tensor([0.5, 0.8])

    def target(h):
        d = (h - m.to(h)) / s.to(h)
        lk = w.to(h).log() - s.to(h).log() - 0.5 * d**2
        r = torch.softmax(lk, 1)
        return torch.logsumexp(lk, 1), (-(r * d / s.to(h)).sum(1))[:, None]

    n = 3000
    g = torch.Generator().manual_seed(11)
    k = torch.multinomial(w.double(), n, replacement=True, generator=g)
    h0 = (m.double()[k] + s.double()[k] * torch.randn(n, generator=g, dtype=torch.float64))[:, None]
    edges = torch.tensor([-0.5, 0.8], dtype=torch.float64)
    cdf = (w.double()[None] * torch.tensor(norm.cdf(((edges[:, None] - m.double()) / s.double()).numpy()))).sum(1)
    pi = np.diff(np.concatenate([[0.0], cdf.numpy(), [1.0]]))
    xs, acc = run(rule, target, h0, 6, step, rngs_for(n), 3)
    assert 0.3 < acc < 0.99
    path = torch.cat([h0[:, None, 0], xs[..., 0]], 1)
    bins = torch.bucketize(path, edges)
    _assert_detailed_balance(_symmetric_counts(bins[:, :-1].reshape(-1), bins[:, 1:].reshape(-1), 3), pi)


# --------------------------------------------------------------------------- MAP with clipping, bounds


def test_code_bounds_are_numpy_percentiles():
    codes = torch.relu(torch.randn(257, 4, 3, generator=torch.Generator().manual_seed(0)))
    lower, upper = mcmc.code_bounds(codes, lo=2.5, hi=97.5)
    assert lower.shape == upper.shape == (4, 3)
    np.testing.assert_allclose(lower.numpy(), np.percentile(codes.numpy(), 2.5, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upper.numpy(), np.percentile(codes.numpy(), 97.5, axis=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(nv.NeurovisError, match="percentiles"):
        mcmc.code_bounds(codes, lo=60, hi=40)


def test_map_with_clipping_never_leaves_the_bounds():
    g = torch.Generator().manual_seed(2)
    box = mcmc.code_bounds(torch.randn(500, 6, generator=g) * 2 + 1, lo=5, hi=95)
    w = torch.randn(6, generator=g)

    def pushy(h):  # a linear log-likelihood plus N(0, I): pulls codes out of the box
        return h @ (5 * w) - 0.5 * (h**2).sum(1), 5 * w - h

    h0 = torch.randn(8, 6, generator=g) * 3
    xs, acc = run("map", pushy, h0, 40, 0.3, None, bounds=box)
    assert acc == 1.0
    assert torch.all(xs >= box[0]) and torch.all(xs <= box[1])
    assert torch.all(xs[:, -1] == torch.where(5 * w > box[1], box[1], xs[:, -1]))  # pinned where pushed out
    # MALA with clipping after the MH step stays inside too
    ys, _ = run("mala", pushy, h0, 40, 0.3, rngs_for(8), bounds=box, clip_after_mh=True)
    assert torch.all(ys >= box[0]) and torch.all(ys <= box[1])


def test_bounds_without_clipping_sample_the_truncated_target():
    lo, hi = -0.5, 1.5
    rngs = rngs_for(100)
    box = (torch.tensor([lo]), torch.tensor([hi]))
    std = lambda h: (-0.5 * (h**2).sum(1), -h)  # noqa: E731
    xs, _ = run("mala", std, torch.zeros(100, 1), 300, 0.8, rngs, bounds=box)
    assert torch.all(xs >= lo) and torch.all(xs <= hi)
    truth = (norm.pdf(lo) - norm.pdf(hi)) / (norm.cdf(hi) - norm.cdf(lo))
    assert float(xs[:, 50:].mean()) == pytest.approx(truth, abs=0.03)


# --------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("rule", ["mala", "hmc"])
def test_chain_is_reproducible_whatever_the_batch(rule):
    ids = [0, 1, 2, 3, 4]
    full_rngs = rngs_for(5, seed=9, ids=ids)
    h_full = torch.stack([torch.randn(2, generator=g, dtype=torch.float64) for g in full_rngs])
    full, _ = run(rule, mixture, h_full, 25, 0.4, full_rngs, 3)
    part_rngs = rngs_for(2, seed=9, ids=[3, 1])
    h_part = torch.stack([torch.randn(2, generator=g, dtype=torch.float64) for g in part_rngs])
    part, _ = run(rule, mixture, h_part, 25, 0.4, part_rngs, 3)
    assert torch.equal(full[[3, 1]], part)


# --------------------------------------------------------------------------- sample_exact end to end


class _Pix(nn.Module):
    """Codes (B, 2) -> 1×1×2 "images" unchanged (an identity generator with a Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(2))

    def forward(self, h):
        return self.fc(h).view(-1, 1, 1, 2)


def _tiny():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Unflatten(1, (3, 2, 2)))
    clf = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    return nv.GaussianPrior(gen, code_shape=(4,)), clf


def test_sample_exact_recovers_a_known_posterior():
    # x = h, p(h) = N(0, I), log p(y|x) = −|x − m|² / (2·0.5): posterior N(m/3·2, I/3)
    m = torch.tensor([1.0, -2.0])
    cond = nv.CallableCondition(lambda x: -((x.flatten(1) - m) ** 2).sum(1), name="gauss")
    prior = nv.GaussianPrior(_Pix())
    for rule, step in (("mala", 0.3), ("hmc", 0.25)):
        ch = sample_exact(prior, cond, chains=100, steps=200, rule=rule, step_size=step, leapfrog_steps=4, progress=False)
        x = ch.codes[:, 50:].reshape(-1, 2).double()
        torch.testing.assert_close(x.mean(0), (2 * m / 3).double(), atol=0.05, rtol=0)
        torch.testing.assert_close(torch.cov(x.T), torch.eye(2, dtype=torch.float64) / 3, atol=0.04, rtol=0)


@pytest.mark.parametrize("rule", ["mala", "hmc", "map"])
def test_sample_exact_on_a_tiny_generator_and_classifier(rule, tmp_path):
    prior, clf = _tiny()
    cond = nv.ClassCondition(clf, 1)  # reference gradient: resolved to the exact log softmax
    box = mcmc.code_bounds(torch.randn(200, 4, generator=torch.Generator().manual_seed(1)), 1, 99)
    kw = {"bounds": box} if rule == "map" else {}
    ch = sample_exact(prior, cond, chains=3, steps=12, seed=4, rule=rule, step_size=0.05, leapfrog_steps=3,
                      step_decay=0.5, progress=False, **kw)
    assert isinstance(ch, nv.Chains)
    assert ch.codes.shape == (3, 13, 4) and ch.probs.shape == (3, 13) and ch.eps1.shape == (3, 13)
    cfg = ch.config
    assert cfg["rule"] == rule and cfg["step_size"] == 0.05 and cfg["chains"] == 3
    assert cfg["evaluations"] == 1 + 12 * (3 if rule == "hmc" else 1)
    assert cfg["leapfrog_steps"] == (3 if rule == "hmc" else None)
    if rule == "map":
        assert cfg["acceptance"] is None
        assert torch.all(ch.codes[:, 1:] >= box[0]) and torch.all(ch.codes[:, 1:] <= box[1])
        logp = [log_posterior(prior, cond)(ch.codes[:, t])[0] for t in range(1, 13)]
        assert all(torch.all(b >= a - 1e-6) for a, b in zip(logp, logp[1:]))  # ascent inside the box
    else:
        assert len(cfg["acceptance"]) == 3 and all(0 <= a <= 1 for a in cfg["acceptance"])
        assert all(0 <= a <= 1 for a in cfg["acceptance_prob"])
    assert "log softmax" in cfg["log_likelihood"] and cfg["log_prior"] == "N(0, I)"
    torch.testing.assert_close(ch.eps1[0], torch.tensor([0.05 * (1 / (1 + t)) ** 0.5 for t in range(13)]))
    with torch.no_grad():
        logits = clf(prior.decode(ch.codes[:, -1]))
    torch.testing.assert_close(ch.probs[:, -1], torch.softmax(logits, 1)[:, 1])
    torch.testing.assert_close(ch.activations[:, -1], logits[:, 1])
    back = nv.load_chains(ch.save(tmp_path / "c.h5"))
    assert back.config["acceptance"] == cfg["acceptance"]


def test_log_posterior_is_log_softmax_plus_gaussian():
    prior, clf = _tiny()
    fn = log_posterior(prior, nv.ClassCondition(clf, 2))
    h = torch.randn(5, 4)
    logp, grad, prob, act = fn(h)
    hg = h.clone().requires_grad_()
    ref = torch.log_softmax(clf(prior.decode(hg)), 1)[:, 2] - 0.5 * (hg**2).sum(1) - 2 * math.log(2 * math.pi)
    (ref_grad,) = torch.autograd.grad(ref.sum(), hg)
    torch.testing.assert_close(logp, ref.detach())
    torch.testing.assert_close(grad, ref_grad)
    torch.testing.assert_close(prob, ref.detach().add(0.5 * (h**2).sum(1) + 2 * math.log(2 * math.pi)).exp())
    torch.testing.assert_close(prior.log_density(h), torch.distributions.Normal(0, 1).log_prob(h).sum(1))
    # a logit condition is an energy: its objective is the raw activation
    energy, text = likelihood_condition(nv.ClassCondition(clf, 2, gradient="logit"))
    assert "energy" in text and energy.gradient == "logit"


def test_sample_exact_chain_ids_shard_a_run():
    prior, clf = _tiny()
    cond = nv.ClassCondition(clf, 0)
    full = sample_exact(prior, cond, chains=4, steps=10, seed=2, step_size=0.1, progress=False)
    part = sample_exact(prior, cond, chains=2, steps=10, seed=2, step_size=0.1, chain_ids=[3, 1], progress=False)
    torch.testing.assert_close(full.codes[[3, 1]], part.codes, rtol=1e-5, atol=1e-6)
    assert part.config["acceptance"] == [full.config["acceptance"][3], full.config["acceptance"][1]]


def test_nan_states_raise_or_are_marked():
    prior, _ = _tiny()
    calls = {"n": 0}

    def nan_later(x):  # chain 1 turns NaN from the 4th evaluation on
        calls["n"] += 1
        out = -(x**2).flatten(1).sum(1)
        return out * torch.tensor([1.0, float("nan"), 1.0]) if calls["n"] >= 4 else out

    cond = nv.CallableCondition(nan_later)
    with pytest.raises(nv.errors.ChainDivergedError, match="chain 1 produced NaN/Inf at step 2"):
        sample_exact(prior, cond, chains=3, steps=6, rule="map", step_size=0.01, progress=False)
    calls["n"] = 0
    ch = sample_exact(prior, cond, chains=3, steps=6, rule="map", step_size=0.01, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False]
    assert torch.isnan(ch.probs[1, 3:]).all() and torch.isfinite(ch.probs[[0, 2]]).all()
    assert torch.equal(ch.codes[1, 2], ch.codes[1, -1])
    # a NaN proposal is a failure too (rejecting it froze the chain with stale probabilities)
    calls["n"] = 0
    with pytest.raises(nv.errors.ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 2 \(log density NaN"):
        sample_exact(prior, cond, chains=3, steps=6, rule="mala", step_size=0.01, progress=False)
    calls["n"] = 0
    ch = sample_exact(prior, cond, chains=3, steps=6, rule="mala", step_size=0.01, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False]
    assert torch.isnan(ch.probs[1, 3:]).all() and torch.isfinite(ch.probs[[0, 2]]).all()
    assert ch.config["failures"] == [{"chain": 1, "step": 2, "what": "log density NaN"}]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rule": "nuts"}, "unknown rule 'nuts'"),
        ({"step_size": 0.0}, "step_size must be"),
        ({"step_size": float("nan")}, "step_size must be"),
        ({"rule": "hmc", "leapfrog_steps": 0}, "leapfrog_steps must be"),
        ({"noise": -1.0}, "noise must be"),
        ({"clip_after_mh": True}, "clip_after_mh=True needs bounds"),
        ({"rule": "map", "bounds": (0.0, 1.0), "clip_after_mh": True}, "clip_after_mh is for"),
        ({"rule": "map", "bounds": (torch.zeros(3), torch.ones(3))}, "do not fit codes"),
        ({"rule": "map", "bounds": (1.0, 0.0)}, "lower ≤ upper"),
        ({"init": torch.zeros(2, 5)}, "init has shape"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, match):
    prior, clf = _tiny()
    with pytest.raises(nv.NeurovisError, match=match) as err:
        sample_exact(prior, nv.ClassCondition(clf, 0), chains=2, steps=2, progress=False, **kwargs)
    assert "\n" not in str(err.value)


def test_priors_without_a_density_are_refused():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 12), nn.Unflatten(1, (3, 2, 2)))
    prior = nv.GeneratorPrior(gen, nn.Sequential(nn.Flatten(), nn.Linear(12, 4)))
    clf = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(nv.NeurovisError, match="no evaluable density.*faithful") as err:
        sample_exact(prior, nv.ClassCondition(clf, 0), chains=2, steps=2, progress=False)
    assert "\n" not in str(err.value)


def test_sample_exact_mala_with_clipping_after_mh_stays_in_bounds():
    prior, clf = _tiny()
    ch = sample_exact(prior, nv.ClassCondition(clf, 1), chains=3, steps=10, rule="mala", step_size=0.05,
                      bounds=(0.0, 0.5), clip_after_mh=True, progress=False)
    assert (ch.codes[:, 0] < 0).any()  # the random start is not clipped (Algorithm 1)
    assert torch.all(ch.codes[:, 1:] >= 0) and torch.all(ch.codes[:, 1:] <= 0.5)
    assert ch.config["bounds"] == [0.0, 0.5] and ch.config["clip_after_mh"] is True
    assert 1 + 10 <= ch.config["evaluations"] <= 1 + 2 * 10  # one more pass whenever a clip moved a chain
