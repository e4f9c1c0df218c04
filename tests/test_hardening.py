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
from neurovis.reports import clustering as cl
from neurovis.reports.repro import sha256_state

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
    out = report.write(tmp_path / "r")
    doc = json.loads((out / "facets.json").read_text())
    assert doc["counts"]["kept"] == 12 and sum(f["size"] for f in doc["facets"]) == 12
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
    """6 chains whose kept codes are all one of two states from step 1 on (8 distinct points
    among 186 samples: k-means over k = 2…10 used to leave clusters empty)."""
    torch.manual_seed(0)
    chains = nv.sample(tiny_prior(), nv.ClassCondition(TinyNet(), 3), chains=6, steps=30, progress=False)
    chains.codes[:3, 1:] = chains.codes[0, 5].clone()
    chains.codes[3:, 1:] = chains.codes[3, 5].clone()
    chains.probs[:] = 0.99
    return chains


def test_report_over_collapsed_chains_clusters_distinct_points_and_says_so(tmp_path):
    chains = _collapsed_chains()
    report = nv.facets(chains, bootstrap=3, progress=False)
    assert report.clustering.n_distinct == 8 and report.clustering.k <= 8
    sizes = [f.size for f in report.facets]
    assert sum(sizes) == 186 and min(sizes) >= 1 and sizes[:2] == [90, 90]  # the two collapsed states
    assert all(label >= 0 for label in report.labels)
    assert report.figures["collapsed_chains"] == [{"chain": c, "from_step": 1} for c in range(6)]
    assert "6 of 6 chains collapsed onto one state" in report.status_reason
    doc = json.loads((report.write(tmp_path / "r") / "facets.json").read_text())
    assert doc["figures"]["collapsed_chains"][0] == {"chain": 0, "from_step": 1}
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
    from neurovis.reports.pipeline import collapsed_chains

    assert collapsed_chains(chains) == []
    chains.codes[1, 4:] = chains.codes[1, 4]  # held for 5 of 9 samples: collapsed from step 4
    chains.codes[2, 6:] = chains.codes[2, 6]  # held for 3 of 9: not (yet) collapsed
    assert collapsed_chains(chains) == [{"chain": 1, "from_step": 4}]
