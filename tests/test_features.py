"""The report's default feature space, ``network``: which layers it reads and what it computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.analysis.features import compute_features, default_feature_name, network_features, network_layers


def test_network_layers_stop_at_the_unit(net):
    x = torch.rand(1, 3, 16, 16)
    # a class reads the whole network: both ReLUs (4-D), in the order they run
    assert network_layers(nv.ClassCondition(net, 1), x) == ["features.1", "features.3"]
    # a unit on the second conv: the ReLU before it and its own layer, not the ReLU after it
    assert network_layers(nv.UnitCondition(net, "conv2", 0), x) == ["features.1", "features.2"]


def _reference(net: nn.Module, images: torch.Tensor) -> np.ndarray:
    """numpy: relu maps -> [mean, max] over positions -> standardise (ddof 0) -> / sqrt(dims) -> side by side."""
    with torch.no_grad():
        a1 = torch.relu(net.features[0](images))
        a2 = torch.relu(net.features[2](a1))
    parts = []
    for a in (a1.numpy().astype(np.float64), a2.numpy().astype(np.float64)):
        v = np.concatenate([a.mean((2, 3)), a.max((2, 3))], 1)
        v = v - v.mean(0)
        sd = v.std(0)
        v = v / np.where(sd > 1e-8, sd, 1.0)
        parts.append(v / np.sqrt(v.shape[1]))
    return np.concatenate(parts, 1)


def test_network_features_match_a_numpy_reference(net, prior):
    torch.manual_seed(3)
    images = torch.rand(11, 3, 16, 16)
    values, desc = network_features(nv.ClassCondition(net, 2), images, prior.pixel_space, batch_size=4)
    assert values.shape == (11, 2 * 8 + 2 * 6)
    np.testing.assert_allclose(values, _reference(net, images), rtol=1e-5, atol=1e-5)
    assert "'features.1'" in desc and "'features.3'" in desc


def test_default_feature_space(net, prior):
    unit = nv.UnitCondition(net, "conv2", 0)
    assert default_feature_name(prior, unit) == "network"
    assert default_feature_name(prior, nv.CallableCondition(lambda x: -x.pow(2).flatten(1).mean(1))) == "code"
    assert default_feature_name(prior, None) == "code"
    pixel = nv.PixelPrior((3, 16, 16))
    assert default_feature_name(pixel, unit) == "pixels"
    codes, images = torch.randn(6, 16), torch.rand(6, 3, 16, 16)
    feats = compute_features(None, codes, images, prior, unit)
    assert feats.name == "network" and feats.values.shape == (6, 2 * 8 + 2 * 6)


def test_network_falls_back_to_layer_without_maps(prior):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 12), nn.ReLU(), nn.Linear(12, 4))
    cond = nv.ClassCondition(mlp, 1)
    feats = compute_features("network", torch.randn(5, 16), torch.rand(5, 3, 16, 16), prior, cond)
    assert feats.name == "layer" and feats.values.shape == (5, 12)  # the last linear layer's input


def test_network_needs_a_network(prior):
    cond = nv.CallableCondition(lambda x: -x.pow(2).flatten(1).mean(1))
    with pytest.raises(nv.NeurovisError, match="not available"):
        compute_features("network", torch.randn(3, 16), torch.rand(3, 3, 16, 16), prior, cond)
