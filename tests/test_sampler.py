import h5py
import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.sampling.rng import chain_generator


def _unit(net):
    return nv.UnitCondition(net, "conv2", 2)


def _by_hand_first_step(prior, net, seed, chains, eps, lr, rule):
    rngs = [chain_generator(seed, i) for i in range(chains)]
    h0 = torch.stack([torch.randn(16, generator=g) for g in rngs])
    hg = h0.clone().requires_grad_()
    x = prior.generator(hg)
    f = net.features
    a = f[2](torch.relu(f[0](x)))[:, :, 4, 4]
    p = torch.softmax(a, 1)[:, 2]
    (grad,) = torch.autograd.grad(((1 - p).detach() * a[:, 2]).sum(), hg)
    with torch.no_grad():
        noise = torch.stack([torch.randn(16, generator=g) for g in rngs])
        d = eps[0] * (prior.encoder(x) - h0) + eps[1] * grad + eps[2] * noise
        if rule == "faithful":
            h1 = h0 + lr * d / d.abs().mean(1, keepdim=True)
        else:
            h1 = h0 + d
    return h0, h1.clamp(0, 30)


@pytest.mark.parametrize("rule", ["faithful", "textbook"])
def test_one_step_equals_the_formula_by_hand(prior, net, rule):
    eps, lr = (0.1, 2.0, 0.05), 0.5
    ch = nv.sample(prior, _unit(net), chains=3, steps=1, eps=eps, lr=lr, seed=7, rule=rule, progress=False)
    h0, h1 = _by_hand_first_step(prior, net, 7, 3, eps, lr, rule)
    assert ch.codes.shape == (3, 2, 16)
    torch.testing.assert_close(ch.codes[:, 0], h0)
    torch.testing.assert_close(ch.codes[:, 1], h1)
    assert (ch.codes[:, 1] >= 0).all() and (ch.codes[:, 0] < 0).any()  # start not clipped


def test_steps_give_n_plus_one_samples_and_the_last_is_evaluated(prior, net):
    ch = nv.sample(prior, _unit(net), chains=2, steps=5, progress=False)
    assert ch.codes.shape == (2, 6, 16) and ch.probs.shape == (2, 6) and ch.activations.shape == (2, 6)
    with torch.no_grad():
        x = prior.generator(ch.codes[:, -1])
        a = net.features[2](torch.relu(net.features[0](x)))[:, :, 4, 4]
    torch.testing.assert_close(ch.activations[:, -1], a[:, 2])
    torch.testing.assert_close(ch.probs[:, -1], torch.softmax(a, 1)[:, 2])


def test_activation_rises_to_the_known_preferred_input():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    w = linear[1].weight[0].detach().view(3, 8, 8)
    prior = nv.PixelPrior((3, 8, 8))
    ch = nv.sample(prior, nv.ClassCondition(linear, 0, gradient="logit"), chains=4, steps=40,
                   eps=(0, 1, 0), lr=0.05, progress=False)
    assert (ch.activations[:, -1] > ch.activations[:, 0] + 1.0).all()
    assert torch.all(ch.activations[:, 1:] >= ch.activations[:, :-1] - 1e-5)
    final = ch.codes[:, -1]
    agree = ((final > 0.5) == (w > 0)).float().mean()
    assert agree > 0.97
    assert final.min() >= 0 and final.max() <= 1


def test_generator_chains_raise_the_unit(prior, net):
    ch = nv.sample(prior, _unit(net), chains=4, steps=30, progress=False)
    assert ch.activations[:, -5:].mean() > ch.activations[:, 0].mean() + 0.05


def test_same_seed_same_result_and_chain_invariance(prior, net):
    a = nv.sample(prior, _unit(net), chains=4, steps=8, seed=3, eps=(1e-3, 1, 1e-3), progress=False)
    b = nv.sample(prior, _unit(net), chains=4, steps=8, seed=3, eps=(1e-3, 1, 1e-3), progress=False)
    c = nv.sample(prior, _unit(net), chains=3, steps=8, seed=3, eps=(1e-3, 1, 1e-3), progress=False)
    d = nv.sample(prior, _unit(net), chains=4, steps=8, seed=4, eps=(1e-3, 1, 1e-3), progress=False)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.probs, b.probs)
    torch.testing.assert_close(a.codes[2], c.codes[2], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a.codes[:, 0], d.codes[:, 0])


def test_chain_ids_shard_a_run(prior, net):
    full = nv.sample(prior, _unit(net), chains=4, steps=5, seed=1, progress=False)
    part = nv.sample(prior, _unit(net), chains=2, steps=5, seed=1, chain_ids=[2, 3], progress=False)
    torch.testing.assert_close(full.codes[2:], part.codes, rtol=1e-5, atol=1e-5)
    assert part.chain_ids.tolist() == [2, 3]


class _NaNAfter:
    """A log-probability that turns NaN for chain 1 from the 4th evaluation on."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        out = -(x**2).flatten(1).sum(1)
        if self.calls >= 3:
            out = out * torch.tensor([1.0, float("nan"), 1.0])
        self.calls += 1
        return out


def test_nan_stops_with_chain_and_step(prior):
    with pytest.raises(nv.errors.ChainDivergedError, match="chain 1 produced NaN/Inf at step 3") as err:
        nv.sample(prior, nv.CallableCondition(_NaNAfter()), chains=3, steps=6, progress=False)
    assert (err.value.chain, err.value.step) == (1, 3)


def test_nan_marked_chain_is_frozen_and_dropped(prior):
    ch = nv.sample(prior, nv.CallableCondition(_NaNAfter()), chains=3, steps=6, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False]
    assert torch.isnan(ch.probs[1, 4:]).all() and torch.isfinite(ch.probs[[0, 2]]).all()
    assert torch.equal(ch.codes[1, 3], ch.codes[1, -1])
    assert not ch.accepted(0.0)[1, 4:].any()


def test_resets_restart_chains_with_new_eps1(prior, net):
    ch = nv.sample(prior, _unit(net), chains=3, steps=12, reset_every=5, progress=False)
    assert torch.all(ch.eps1[:, :5] == 1e-5)
    new = ch.eps1[:, 5]
    assert torch.all((new >= 1e-6) & (new <= 1e-2)) and torch.all(new != 1e-5)
    assert torch.all(ch.eps1[:, 5:10] == new[:, None])
    assert (ch.codes[:, 5] < 0).any()  # a fresh N(0,1) start, not clipped


def test_lr_schedule_changes_the_steps(prior, net):
    flat = nv.sample(prior, _unit(net), chains=2, steps=4, progress=False)
    sched = nv.sample(prior, _unit(net), chains=2, steps=4, lr_end=0.1, progress=False)
    torch.testing.assert_close(flat.codes[:, 1], sched.codes[:, 1])
    assert not torch.allclose(flat.codes[:, -1], sched.codes[:, -1])


def test_model_untouched_after_sampling(prior, net):
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    nv.sample(prior, _unit(net), chains=2, steps=3, progress=False)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_init_codes_and_encode(prior, net):
    photo = torch.rand(2, 3, 16, 16)
    h0 = prior.encode(photo)
    ch = nv.sample(prior, _unit(net), chains=2, steps=2, init=h0, progress=False)
    torch.testing.assert_close(ch.codes[:, 0], h0)


def test_save_and_load_round_trip(tmp_path, prior, net):
    ch = nv.sample(prior, _unit(net), chains=2, steps=4, reset_every=2, progress=False)
    path = ch.save(tmp_path / "run" / "chains.h5")
    back = nv.load_chains(path, prior=prior)
    for name in ("codes", "probs", "activations", "eps1", "failed", "chain_ids"):
        assert torch.equal(getattr(ch, name), getattr(back, name)), name
    assert back.config["eps"] == [1e-5, 1.0, 1e-17] and back.config["rule"] == "faithful"
    assert back.config["condition"]["layer"] == "conv2" and back.config["reset_every"] == 2
    with h5py.File(path) as f:
        assert f.attrs["format"] == "neurovis.chains"
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temp file left
    imgs = back.images(chain=1)
    assert imgs.shape == (5, 3, 16, 16)
    torch.testing.assert_close(imgs[2], prior.generator(ch.codes[1, 2:3]).detach()[0])
    assert back.images(rgb=True).shape == (2, 5, 3, 16, 16)


def test_load_errors(tmp_path):
    with pytest.raises(nv.NeurovisError, match="no chains file"):
        nv.load_chains(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1]
    with pytest.raises(nv.NeurovisError, match="not a neurovis chains file"):
        nv.load_chains(other)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    with pytest.raises(nv.NeurovisError, match="cannot read"):
        nv.load_chains(broken)


def test_decode_without_prior_is_a_clear_error(tmp_path, prior, net):
    path = nv.sample(prior, _unit(net), chains=1, steps=1, progress=False).save(tmp_path / "c.h5")
    with pytest.raises(nv.NeurovisError, match="pass prior="):
        nv.load_chains(path).images()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eps": (1, 1)}, "three finite numbers"),
        ({"eps": (1, float("nan"), 0)}, "three finite numbers"),
        ({"rule": "hmc2"}, "unknown rule"),
        ({"chains": 0}, "chains ≥ 1"),
        ({"lr": 0}, "positive number"),
        ({"reset_every": -1}, "reset_every"),
        ({"init": torch.zeros(3, 16)}, r"init has shape \(3, 16\); expected \(2, 16\)"),
        ({"chain_ids": [0]}, "chain_ids has 1 entries"),
        ({"on_nan": "ignore"}, "on_nan"),
    ],
)
def test_bad_sampler_arguments(prior, net, kwargs, match):
    args = {"chains": 2, "steps": 2, "progress": False, **kwargs}
    with pytest.raises(nv.NeurovisError, match=match):
        nv.sample(prior, _unit(net), **args)


def test_other_priors_run(net):
    from conftest import TinyGenerator

    torch.manual_seed(0)
    gen = TinyGenerator()
    dgn = nv.GaussianPrior(gen)
    ch = nv.sample(dgn, _unit(net), chains=2, steps=3, eps=dgn.default_eps, progress=False)
    assert torch.isfinite(ch.codes).all()
    dae = nv.priors.CodeDAE((16, 8, 16))
    ch = nv.sample(nv.HDAEPrior(gen, dae), _unit(net), chains=2, steps=3, eps=(1e-5, 1, 1e-5), progress=False)
    assert torch.isfinite(ch.codes).all()
    hand = nv.PixelPrior((3, 16, 16), l2=0.01, blur_sigma=0.5, tv=0.01, jitter=2)
    ch = nv.sample(hand, _unit(net), chains=2, steps=3, eps=(1, 1, 0), lr=0.02, progress=False)
    assert ch.codes.shape == (2, 4, 3, 16, 16) and ch.codes.min() >= 0 and ch.codes.max() <= 1


def test_clamp_pixels_records_the_probability_of_the_image_shown(net):
    """A generator that overshoots [0, 1]: with clamp_pixels the recorded probability is the
    condition's on the displayed (clipped) image; without it, on pixels no report can show."""
    class Loud(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(3)
            self.fc = nn.Linear(16, 3 * 16 * 16)

        def forward(self, h):
            return 4 * self.fc(h).view(-1, 3, 16, 16)

    cond = nv.ClassCondition(net, 1)
    probs_of_shown = {}
    for clamp in (True, False):
        prior = nv.GeneratorPrior(Loud(), nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 16), nn.ReLU()),
                                  clamp_pixels=clamp)
        ch = nv.sample(prior, cond, chains=3, steps=4, progress=False)
        shown = ch.images(rgb=True).flatten(0, 1)
        with torch.no_grad():
            raw = prior.generator(ch.codes.flatten(0, 1))
            probs_of_shown[clamp] = (torch.softmax(net(shown), 1)[:, 1], ch.probs.flatten())
        assert ((raw < 0) | (raw > 1)).float().mean() > 0.3  # the generator does overshoot
        assert prior.describe()["clamp_pixels"] is clamp
    torch.testing.assert_close(*probs_of_shown[True])
    assert (probs_of_shown[False][0] - probs_of_shown[False][1]).abs().max() > 1e-2


def test_per_unit_code_clip_bounds_every_unit(net):
    from conftest import TinyEncoder, TinyGenerator
    from neurovis.glyphs.priors import unit_code_range

    torch.manual_seed(4)
    encoder = TinyEncoder()
    images = torch.rand(40, 3, 16, 16)
    low, high = unit_code_range(encoder, images, batch_size=16)
    with torch.no_grad():
        ref = encoder(images).numpy().max(0)  # numpy reference: each unit's largest code
    assert low.shape == (16,) and (low == 0).all()
    torch.testing.assert_close(high, torch.from_numpy(ref))
    prior = nv.GeneratorPrior(TinyGenerator(), encoder, code_clip=(low, high))
    ch = nv.sample(prior, _unit(net), chains=3, steps=6, progress=False)
    later = ch.codes[:, 1:]  # the random start is not clipped
    assert (later >= 0).all() and (later <= high).all()
    assert (later == high).any()  # the bound is reached, so it does bind
    doc = prior.describe()["code_clip"]
    assert doc["per_unit"] == [16] and doc["high_max"] == pytest.approx(float(high.max()))
    with pytest.raises(nv.NeurovisError, match="low ≤ high"):
        nv.GeneratorPrior(TinyGenerator(), encoder, code_clip=(high + 1, high))
    with pytest.raises(nv.NeurovisError, match="code shape"):
        nv.GeneratorPrior(TinyGenerator(), encoder, code_clip=(0.0, torch.ones(5)))
    with pytest.raises(nv.NeurovisError, match="low < high"):
        nv.GeneratorPrior(TinyGenerator(), encoder, code_clip=(3.0, 1.0))


def _row_of(bank: torch.Tensor, code: torch.Tensor) -> int:
    """Index of the bank row equal to ``code`` (−1 if none)."""
    hits = (bank == code).all(1).nonzero()
    return int(hits[0]) if len(hits) else -1


def test_real_starts_draw_each_chain_and_reset_from_the_encoded_images(prior, net):
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    real = prior.with_real_starts(images, batch_size=4)
    with torch.no_grad():
        bank = prior.encoder(images)  # E(x), the reference codes
    torch.testing.assert_close(real.start_codes, bank)
    # the chains copy the bank's rows exactly; E in batches of 4 may differ from E on all 6
    # in the last bit (one thread: another GEMM blocking), so rows are looked up in the bank
    bank = real.start_codes
    assert prior.start_codes is None and real.generator is prior.generator  # a copy, same networks
    ch = nv.sample(real, _unit(net), chains=4, steps=7, reset_every=3, progress=False)
    for t in (0, 3, 6):  # the start, and each state right after a reset
        rows = [_row_of(bank, ch.codes[i, t]) for i in range(4)]
        assert all(r >= 0 for r in rows), (t, rows)
    assert _row_of(bank, ch.codes[0, 1]) == -1  # a step moves it off the bank
    again = nv.sample(real, _unit(net), chains=4, steps=7, reset_every=3, progress=False)
    assert torch.equal(ch.codes, again.codes)  # seeded per chain
    alone = nv.sample(real, _unit(net), chains=1, steps=7, reset_every=3, chain_ids=[2], progress=False)
    assert [_row_of(bank, alone.codes[0, t]) for t in (0, 3, 6)] == [_row_of(bank, ch.codes[2, t]) for t in (0, 3, 6)]
    # a chain's draws do not depend on the other chains (its steps may differ in the last bit when batched)
    picks = {_row_of(bank, ch.codes[i, t]) for i in range(4) for t in (0, 3, 6)}
    assert len(picks) >= 3  # uniform draws over 6 codes, not one code for all
    assert "one of 6 given codes" in ch.config["prior"]["starts"]
    assert nv.sample(prior, _unit(net), chains=1, steps=1, progress=False).config["prior"]["starts"] == "N(0, 1)"


def test_start_codes_are_checked(prior):
    with pytest.raises(nv.NeurovisError, match=r"expected \(N, 16\)"):
        prior.with_start_codes(torch.zeros(4, 8))
    with pytest.raises(nv.NeurovisError, match="NaN or Inf"):
        prior.with_start_codes(torch.full((2, 16), float("nan")))
    with pytest.raises(nv.NeurovisError, match=r"images \(N, 3, H, W\)"):
        prior.with_real_starts(torch.rand(3, 16, 16))
    with pytest.raises(nv.NeurovisError, match=r"images \(N, 3, H, W\)"):
        prior.with_real_starts(torch.rand(2, 1, 16, 16))
    with pytest.raises(nv.NeurovisError, match=r"could not read images of shape \(2, 3, 8, 8\)"):
        prior.with_real_starts(torch.rand(2, 3, 8, 8))
    with pytest.raises(nv.NeurovisError, match="has no encoder"):
        nv.GaussianPrior(prior.generator).with_real_starts(torch.rand(2, 3, 16, 16))
