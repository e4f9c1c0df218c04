"""Hardening: any PyTorch model through a report, duplicate samples, NaN/Inf named, the
combination of classes, chains-file and weights-file errors. CPU, offline, seconds each."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import neurovis as nv
from neurovis.errors import ChainDivergedError, NeurovisError
from neurovis.analysis import clustering as cl
from neurovis.analysis.provenance import sha256_state

from conftest import TinyNet
from test_reports import tiny_prior


# ----------------------------------------------------------------------------- 1. any model's report


def _tiny_vit() -> nn.Module:
    """torchvision's VisionTransformer at 16×16: 16 patches of 4×4, 2 layers of width 16."""
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16,
                                                mlp_dim=32, num_classes=5)


def _zoo(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = nv.load_model(name, random_weights=True)
    model.pixel_space = model.pixel_space.with_size((32, 32))  # tiny inputs: seconds, not minutes
    return model


MODELS = {
    # family: (model factory, layer, unit)
    "batchnorm (resnet18)": (lambda: _zoo("resnet18"), "layer4", 5),
    "depthwise (mobilenet_v3_small)": (lambda: _zoo("mobilenet_v3_small"), "features.4", 7),
    "transformer (VisionTransformer)": (_tiny_vit, "encoder.layers.encoder_layer_0",
                                        nv.hooks.units.TokenUnit(5, token=0)),
}


@pytest.mark.parametrize("family", list(MODELS))
def test_a_report_runs_to_the_end_on_each_model_family(family, tmp_path):
    make, layer, unit = MODELS[family]
    model = make()
    chains = nv.sample(tiny_prior(), nv.UnitCondition(model, layer, unit), chains=2, steps=5, progress=False)
    assert torch.isfinite(chains.probs).all()
    report = nv.facets(chains, threshold=0.0, bootstrap=2, progress=False)  # keep all: cluster, grid, attribution
    out = nv.write_report(report, tmp_path / "r")
    doc = json.loads((out / "facets.json").read_text())
    # 2 chains × 6 samples, their starts never kept
    assert doc["counts"]["kept"] == 10 and sum(f["size"] for f in doc["facets"]) == 10
    net = doc["reproducibility"]["weights"][0]
    assert net["role"] == "condition network" and net["class"] == type(model).__name__
    assert net["state_sha256"] == sha256_state(model) and len(net["state_sha256"]) == 64
    assert (out / "index.html").exists()


def test_state_hash_covers_zero_dim_buffers_and_keeps_the_old_bytes():
    bn = nn.BatchNorm2d(3)
    assert bn.num_batches_tracked.dim() == 0
    before = sha256_state(bn)
    bn.num_batches_tracked += 1  # only the 0-dim buffer changes
    assert sha256_state(bn) != before
    # a module without 0-dim tensors hashes as before: name|dtype|shape| then the raw bytes
    import hashlib

    lin = nn.Linear(2, 3)
    h = hashlib.sha256()
    for name, t in lin.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    assert sha256_state(lin) == h.hexdigest()


# ----------------------------------------------------------------------------- 2. duplicates


def _collapsed_chains() -> nv.Chains:
    """6 chains whose kept codes are all one of two states from step 2 on (8 distinct points
    among the 180 kept samples, steps 1…30, the starts never kept: k-means over k = 2…10
    used to leave clusters empty)."""
    torch.manual_seed(0)
    chains = nv.sample(tiny_prior(), nv.ClassCondition(TinyNet(), 3), chains=6, steps=30, preset="paper",
                       progress=False)
    chains.codes[:3, 2:] = chains.codes[0, 5].clone()
    chains.codes[3:, 2:] = chains.codes[3, 5].clone()
    chains.probs[:] = 0.99
    return chains


def test_report_over_collapsed_chains_clusters_distinct_points_and_says_so(tmp_path):
    chains = _collapsed_chains()
    report = nv.facets(chains, bootstrap=3, progress=False)
    assert report.clustering.n_distinct == 8 and report.clustering.k <= 8
    sizes = [f.size for f in report.facets]
    assert sum(sizes) == 180 and min(sizes) >= 1 and sizes[:2] == [87, 87]  # the two collapsed states
    assert (report.labels[report.selection.kept] >= 0).all() and (report.labels.reshape(6, 31)[:, 0] == -1).all()
    assert report.figures["collapsed_chains"] == [{"chain": c, "from_step": 2} for c in range(6)]
    assert "6 of 6 chains collapsed onto one state" in report.status_reason
    doc = json.loads((nv.write_report(report, tmp_path / "r") / "facets.json").read_text())
    assert doc["figures"]["collapsed_chains"][0] == {"chain": 0, "from_step": 2}
    assert doc["clustering"]["n_distinct"] == 8
    # more facets asked for than distinct points: capped, none empty
    nine = nv.facets(chains, n_facets=9, bootstrap=0, attribution=False, progress=False)
    assert len(nine.facets) == 8 and all(f.size for f in nine.facets)


def test_identical_samples_are_one_facet_and_moving_chains_are_not_collapsed():
    x = np.ones((50, 6))
    one = cl.cluster(x)
    assert (one.k, one.chosen_by, one.n_distinct) == (1, "identical", 1) and (one.labels == 0).all()
    # two distinct points, 30 and 12 copies: k capped at 2, sizes from the weights
    two = cl.cluster(np.concatenate([np.zeros((30, 4)), np.ones((12, 4)) * 5]))
    assert (two.k, two.chosen_by, two.n_distinct) == (2, "silhouette", 2)
    assert np.bincount(two.labels).tolist() == [30, 12]
    # three distinct points, two facets asked for: the weighted k-means groups 5 with 5.01
    x = np.concatenate([np.zeros((30, 4)), np.ones((10, 4)) * 5, np.ones((2, 4)) * 5 + 0.01])
    given = cl.cluster(x, n_facets=2)
    assert given.k == 2 and np.bincount(given.labels).tolist() == [30, 12]
    # a run whose chains keep moving: no chain counts as collapsed
    torch.manual_seed(0)
    chains = nv.sample(tiny_prior(), nv.ClassCondition(TinyNet(), 3), chains=3, steps=8, progress=False)
    from neurovis.analysis.pipeline import collapsed_chains

    assert collapsed_chains(chains) == []
    chains.codes[1, 4:] = chains.codes[1, 4]  # held for 5 of 9 samples: collapsed from step 4
    chains.codes[2, 6:] = chains.codes[2, 6]  # held for 3 of 9: not (yet) collapsed
    assert collapsed_chains(chains) == [{"chain": 1, "from_step": 4}]


# ----------------------------------------------------------------------------- 3. NaN and Inf


class _NaNProb:
    """``log p = −|x|²``; for chain 1, from evaluation ``start`` on (to ``stop``), NaN through
    ``torch.where``: the probability is NaN while the gradient stays finite (0 for that row)."""

    def __init__(self, start: int, stop: int | None = None) -> None:
        self.start, self.stop, self.calls = start, stop, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = -(x**2).flatten(1).sum(1)
        on = self.calls >= self.start and (self.stop is None or self.calls < self.stop)
        self.calls += 1
        if not on:
            return out
        row = torch.tensor([False, True, False])
        return torch.where(row, torch.full_like(out, math.nan), out)


class _InfLogit(nn.Module):
    """TinyNet whose class-3 logit is +Inf for batch row 1 (via ``torch.where``: finite gradient)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = TinyNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        hit = torch.zeros_like(logits, dtype=torch.bool)
        hit[1, 3] = True
        return torch.where(hit, torch.full_like(logits, math.inf), logits)


def _gauss_prior():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Unflatten(1, (3, 2, 2)))
    return nv.GaussianPrior(gen, code_shape=(4,))


def test_nan_probability_with_finite_gradient_is_named(prior):
    cond = nv.CallableCondition(_NaNProb(start=3))
    with pytest.raises(ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 3 \(probability NaN") as err:
        nv.sample(prior, cond, chains=3, steps=6, progress=False)
    assert (err.value.chain, err.value.step) == (1, 3) and "activation NaN" in str(err.value)
    ch = nv.sample(prior, nv.CallableCondition(_NaNProb(start=3)), chains=3, steps=6, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False]
    assert torch.isnan(ch.probs[1, 3:]).all() and torch.isfinite(ch.probs[1, :3]).all()
    assert torch.isfinite(ch.probs[[0, 2]]).all() and torch.equal(ch.codes[1, 3], ch.codes[1, -1])
    assert ch.config["failures"] == [{"chain": 1, "step": 3, "what": "probability NaN, activation NaN, objective NaN"}]


def test_nan_only_at_the_last_sample_is_caught(prior):
    # 6 steps: evaluation 6 is the last sample, taken without a gradient and never stepped from
    with pytest.raises(ChainDivergedError, match="chain 1 produced NaN/Inf at step 6"):
        nv.sample(prior, nv.CallableCondition(_NaNProb(start=6)), chains=3, steps=6, progress=False)
    ch = nv.sample(prior, nv.CallableCondition(_NaNProb(start=6)), chains=3, steps=6, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False] and torch.isnan(ch.probs[1, 6])
    # the exact samplers: the last step's state (MAP) or accepted/rejected proposal (MALA)
    for rule in ("map", "mala"):
        with pytest.raises(ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 5 \(log density NaN"):
            nv.sample(_gauss_prior(), nv.CallableCondition(_NaNProb(start=6)), chains=3, steps=6, rule=rule,
                      step_size=0.01, progress=False)
        ch = nv.sample(_gauss_prior(), nv.CallableCondition(_NaNProb(start=6)), chains=3, steps=6, rule=rule,
                       step_size=0.01, on_nan="mark", progress=False)
        assert ch.failed.tolist() == [False, True, False]
        assert torch.isnan(ch.probs[1, 6]) and torch.isfinite(ch.probs[1, :6]).all()


def test_exact_samplers_do_not_freeze_chains_silently():
    # chain 1's log density is NaN at evaluations 3 and 4 only: before, every such MALA/HMC
    # proposal was rejected and the chain sat on its last state with a stale finite p
    for rule, calls in (("mala", 3), ("hmc", 3)):
        cond = nv.CallableCondition(_NaNProb(start=calls, stop=calls + 2))
        with pytest.raises(ChainDivergedError, match="chain 1 produced NaN/Inf at step") as err:
            nv.sample(_gauss_prior(), cond, chains=3, steps=6, rule=rule, step_size=0.05, leapfrog_steps=2,
                      progress=False)
        assert err.value.chain == 1 and "log density NaN" in str(err.value)
        ch = nv.sample(_gauss_prior(), nv.CallableCondition(_NaNProb(start=calls, stop=calls + 2)), chains=3, steps=6,
                       rule=rule, step_size=0.05, leapfrog_steps=2, on_nan="mark", progress=False)
        step = ch.config["failures"][0]["step"]
        assert ch.failed.tolist() == [False, True, False] and ch.config["failures"][0]["chain"] == 1
        assert torch.isnan(ch.probs[1, step + 1:]).all() and torch.isfinite(ch.probs[1, : step + 1]).all()


def test_an_infinite_logit_is_named_in_every_sampler(prior):
    model = _InfLogit()
    cond = nv.ClassCondition(model, 3, gradient="logit")  # ∂a_3 through where: 0, finite
    with pytest.raises(ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 0 \(probability NaN, "
                                                 r"activation \+Inf, objective \+Inf\)"):
        nv.sample(prior, cond, chains=3, steps=4, progress=False)
    ch = nv.sample(prior, cond, chains=3, steps=4, on_nan="mark", progress=False)
    assert ch.failed.tolist() == [False, True, False] and torch.isnan(ch.probs[1]).all()
    assert torch.isfinite(ch.probs[[0, 2]]).all()
    exact_prior = nv.GaussianPrior(nn.Sequential(nn.Linear(4, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16))),
                                   code_shape=(4,))
    with pytest.raises(ChainDivergedError, match=r"chain 1 produced NaN/Inf at step 0 \(log density \+Inf"):
        nv.sample(exact_prior, cond, chains=3, steps=4, rule="mala", step_size=0.01, progress=False)


def test_a_report_of_chains_that_all_failed_is_an_error_with_the_cause(prior):
    class AllNaN:
        calls = 0

        def __call__(self, x):
            AllNaN.calls += 1
            out = -(x**2).flatten(1).sum(1)
            return out * math.nan if AllNaN.calls >= 3 else out

    ch = nv.sample(prior, nv.CallableCondition(AllNaN()), chains=2, steps=5, on_nan="mark", progress=False)
    assert ch.failed.all()
    with pytest.raises(NeurovisError) as err:
        nv.facets(ch, progress=False)
    msg = str(err.value)
    assert "every chain failed" in msg and "\n" not in msg
    assert "chain 0 at step 2 (probability NaN" in msg and "chain 1 at step 2 (probability NaN" in msg
    # a run with a surviving chain still makes a report
    ch.failed[0] = False
    ch.probs[0] = 0.99
    report = nv.facets(ch, bootstrap=0, attribution=False, progress=False)
    assert report.selection.kept.tolist() == list(range(1, 6))  # chain 0's samples, its start never kept


# ----------------------------------------------------------------------------- 4. combination of classes


def test_combination_probability_is_the_joint_share_with_a_floor():
    torch.manual_seed(0)
    net, other = TinyNet(), TinyNet()
    both = nv.combine(nv.ClassCondition(net, 1), nv.ClassCondition(net, 3))
    pa, pb = torch.tensor([0.50, 0.90, 0.95, 0.2]), torch.tensor([0.48, 0.08, 0.01, 0.2])
    torch.testing.assert_close(both.probability([pa, pb]), torch.tensor([0.98, 0.8, 0.1, 0.4]))
    # a class repeated counts once; a part from another model's softmax must pass on its own
    mixed = nv.combine(nv.ClassCondition(net, 1), nv.ClassCondition(net, 3), nv.ClassCondition(net, 3),
                       nv.ClassCondition(other, 2))
    torch.testing.assert_close(mixed.probability([pa, pb, pb, torch.full((4,), 0.9)]), torch.tensor([0.9, 0.8, 0.1, 0.4]))
    assert mixed.prob_meaning.startswith("smallest of: joint share of parts 1, 2 in one softmax over classes")
    with pytest.raises(NeurovisError, match="floor"):
        nv.conditions.CombinedCondition((nv.ClassCondition(net, 1),), floor=0.0)


def test_a_combination_of_two_glyph_classes_keeps_samples_of_both():
    from neurovis.glyphs.world import DEFAULT_CLASS_MODES

    prior, model, oracle = nv.load_prior("glyphs"), nv.load_model("glyphs"), nv.zoo.load_oracle("glyphs")
    a, b = 3, 5
    cond = nv.combine(nv.ClassCondition(model, a), nv.ClassCondition(model, b))
    chains = nv.sample(prior, cond, chains=2, steps=50, eps=(1e-5, 1.0, 1e-17), lr=1.0, seed=0, preset="paper",
                       progress=False)
    kept = chains.accepted(0.97)
    assert kept.sum() >= 3 and kept.any(1).all()  # the smallest part (the old rule) never passes 0.5
    images = nv.decode_samples(chains, which=kept)  # RGB [0, 1], as the report shows them
    with torch.no_grad():
        p = torch.softmax(model(images), 1)
    assert (p[:, a] + p[:, b] >= 0.97).all() and (torch.minimum(p[:, a], p[:, b]) >= 0.097).all()
    # the oracle: a kept glyph has a shape of one class's modes and a colour of the other's
    shapes, _, colours, _ = oracle.predict_parts(images)
    sa, ca = {m // 8 for m in DEFAULT_CLASS_MODES[a]}, {m % 8 for m in DEFAULT_CLASS_MODES[a]}
    sb, cb = {m // 8 for m in DEFAULT_CLASS_MODES[b]}, {m % 8 for m in DEFAULT_CLASS_MODES[b]}
    mixes = [(s in sa and c in cb) or (s in sb and c in ca) for s, c in zip(shapes.tolist(), colours.tolist())]
    assert sum(mixes) >= 0.75 * len(mixes)


# ----------------------------------------------------------------------------- 5. chains files


def _saved_chains(tmp_path, prior):
    torch.manual_seed(0)
    return nv.sample(prior, nv.ClassCondition(TinyNet(), 3), chains=2, steps=3, progress=False).save(tmp_path / "c.h5")


@pytest.mark.parametrize("damage, expected", [
    (lambda f: f.__delitem__("probs"), r"lacks the dataset\(s\) probs"),
    (lambda f: (f.__delitem__("eps1"), f.__delitem__("chain_ids")), r"lacks the dataset\(s\) eps1, chain_ids"),
    (lambda f: f.attrs.__setitem__("config", '{"chains": 2,'), "its 'config' attribute is not valid JSON"),
    (lambda f: f.attrs.__delitem__("config"), "lacks its 'config' attribute"),
    (lambda f: f.attrs.__setitem__("config", "[1, 2]"), "is a JSON list, not an object"),
    (lambda f: (f.__delitem__("failed"), f.create_dataset("failed", data=np.zeros(5, bool))),
     r"failed has shape \(5,\), expected \(2,\)"),
])
def test_damaged_chains_files_are_named_in_one_line(tmp_path, prior, damage, expected):
    import h5py

    path = _saved_chains(tmp_path, prior)
    with h5py.File(path, "a") as f:
        damage(f)
    with pytest.raises(NeurovisError, match=expected) as err:
        nv.load_chains(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert type(err.value) is NeurovisError


def test_an_intact_chains_file_still_loads(tmp_path, prior):
    path = _saved_chains(tmp_path, prior)
    back = nv.load_chains(path)
    assert back.codes.shape == (2, 4, 16) and back.config["chains"] == 2 and back.config["failures"] == []


# ----------------------------------------------------------------------------- 6. weights files


class _Code:
    """Any class: pickled by reference, i.e. code torch's weights_only loader refuses."""


def _bad_files(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hook": _Code()}, tmp_path / "code.pt")
    (tmp_path / "notes.pt").write_text("these are not weights\n")
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    return tmp_path / "code.pt", tmp_path / "notes.pt", tmp_path / "cut.pt"


def _loaders():
    from neurovis.caffe import load_converted
    from neurovis.glyphs.nets import load_glyph_classifier
    from neurovis.glyphs.checkpoints import load_payload
    from neurovis.zoo.torchvision_models import read_state_dict

    return {
        "torchvision --weights": lambda p: nv.load_model("alexnet", weights=p),
        "user factory --weights": lambda p: read_state_dict(p, "my_models:net"),
        "glyph network": lambda p: load_glyph_classifier(p),
        "shipped prior payload": load_payload,
        "converted Caffe net": load_converted,
    }


@pytest.mark.parametrize("loader", ["torchvision --weights", "user factory --weights", "glyph network",
                                    "shipped prior payload", "converted Caffe net"])
def test_every_weights_loader_names_the_file_and_the_problem(tmp_path, loader):
    code, notes, cut = _bad_files(tmp_path)
    load = _loaders()[loader]
    with pytest.raises(NeurovisError) as err:
        load(code)
    msg = str(err.value)
    assert f"{code} is not a plain weights file (it holds pickled code) and was not loaded, for safety" in msg
    assert "weights_only" not in msg and "\n" not in msg
    with pytest.raises(NeurovisError) as err:
        load(notes)
    assert f"{notes} is not a readable torch weights file (it is a text file)" in str(err.value) and "(101)" not in str(err.value)
    with pytest.raises(NeurovisError) as err:
        load(cut)
    assert f"{cut} is a damaged or truncated torch weights file" in str(err.value) and "\n" not in str(err.value)


def test_a_training_checkpoint_goes_through_the_same_helper(tmp_path):
    from neurovis._utils.weights import load_weights_file

    code, _, _ = _bad_files(tmp_path)
    with pytest.raises(NeurovisError, match="cannot read checkpoint: .* was not loaded, for safety; delete it"):
        load_weights_file(code, "checkpoint", "delete it to start over")
    assert load_weights_file(tmp_path / "whole.pt", "checkpoint")["state_dict"]["w"].shape == (1000,)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(NeurovisError, match="empty.pt is empty, not a torch weights file"):
        load_weights_file(tmp_path / "empty.pt", "weights")


def test_chains_that_are_copies_of_each_other_are_reported(prior):
    from neurovis.analysis.pipeline import identical_chains

    torch.manual_seed(0)
    # inpainting starts every chain from the photo's code; with no noise they are one chain
    start = prior.encode(torch.rand(1, 3, 16, 16)).expand(4, -1)
    chains = nv.sample(prior, nv.ClassCondition(TinyNet(), 3), chains=4, steps=8, init=start, progress=False)
    assert identical_chains(chains) == [{"chains": [0, 1, 2, 3], "from_step": 0}]
    chains.codes[1, 4] += 1e-9 * chains.codes[1, 4]  # ε3 = 1e-17 copies differ in the last bits: still copies
    assert identical_chains(chains) == [{"chains": [0, 1, 2, 3], "from_step": 0}]
    noisy = nv.sample(prior, nv.ClassCondition(TinyNet(), 3), chains=4, steps=8, init=start, eps=(1e-5, 1.0, 0.1),
                      progress=False)
    assert identical_chains(noisy) == []
    noisy.codes[2, 3:] = noisy.codes[0, 3:]  # chain 2 merges into chain 0 at step 3
    assert identical_chains(noisy) == [{"chains": [0, 2], "from_step": 3}]
    chains.probs[:] = 0.99
    report = nv.facets(chains, bootstrap=0, attribution=False, progress=False)
    assert report.figures["identical_chains"] == [{"chains": [0, 1, 2, 3], "from_step": 0}]
    assert "Chains 0, 1, 2, 3 follow one and the same trajectory from step 0 on" in report.status_reason
