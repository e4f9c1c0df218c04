import pytest
import torch
from torch import nn

import neurovis as nv
from neurovis.hooks import hooked, register_aliases, resolve_layer, run_to
from neurovis.hooks.units import ChannelAt, ChannelMean, FlatIndex, Selector, TokenUnit, as_selector


def _all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_resolve_by_path_and_alias(net):
    assert resolve_layer(net, "features.2")[1] is net.features[2]
    assert resolve_layer(net, "conv2") == ("features.2", net.features[2])


def test_class_aliases_registered_for_a_model_class(net):
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(2, 2))

    register_aliases(Other, {"fc6": "body.0"})
    other = Other()
    assert resolve_layer(other, "fc6")[1] is other.body[0]


def test_unknown_layer_names_closest(net):
    with pytest.raises(nv.NeurovisError) as err:
        resolve_layer(net, "features.20")
    msg = str(err.value)
    assert "features.2" in msg and "\n" not in msg


def test_nested_modules_are_addressable():
    model = nn.Sequential(nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), nn.Linear(3, 2)))
    out = run_to(model, torch.randn(2, 4), ["0.0.0"])
    assert out["0.0.0"].shape == (2, 3)


def test_run_to_stops_after_the_last_requested_layer(net):
    calls = []
    net.classifier[1].register_forward_hook(lambda *a: calls.append(1))
    out = run_to(net, torch.rand(2, 3, 16, 16), ["features.2"])
    assert out["features.2"].shape == (2, 6, 8, 8)
    assert calls == []


def test_capture_is_pre_relu_despite_inplace_relu(net):
    x = torch.rand(4, 3, 16, 16)
    out = run_to(net, x, ["features.2"])["features.2"]
    ref = net.features[2](net.features[1](net.features[0](x).clone()))
    torch.testing.assert_close(out, ref)
    assert (out < 0).any()


def test_hooks_removed_after_1000_runs_and_on_exceptions(net):
    before = _all_hooks(net)
    for _ in range(1000):
        run_to(net, torch.rand(1, 3, 16, 16), ["conv2"])
    assert _all_hooks(net) == before
    with pytest.raises(RuntimeError):
        with hooked(net, ["conv2", "fc"]):
            net(torch.rand(1, 5))  # wrong input: the forward raises inside the block
    assert _all_hooks(net) == before


def test_layer_that_never_runs_is_reported():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(3, 3)
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(nv.NeurovisError, match="did not run"):
        run_to(Branchy(), torch.randn(1, 3), ["unused"])


def test_list_layers_shapes_aliases_and_mode_restored(net):
    net.train()
    layers = {info.name: info for info in nv.list_layers(net, (3, 16, 16))}
    assert layers["features.2"].shape == (6, 8, 8)
    assert layers["features.2"].aliases == ("conv2",)
    assert layers["classifier.1"].shape == (5,)
    assert net.training
    assert _all_hooks(net) == 0


def test_list_layers_of_another_resolution(net):
    layers = {info.name: info for info in nv.list_layers(net.features, (3, 32, 24))}
    assert layers["2"].shape == (6, 16, 12)


def test_channel_at_centre_and_position():
    out = torch.arange(2 * 4 * 13 * 13, dtype=torch.float32).view(2, 4, 13, 13)
    torch.testing.assert_close(ChannelAt(1).vector(out), out[:, :, 6, 6])
    torch.testing.assert_close(ChannelAt(1, (2, 3)).vector(out), out[:, :, 2, 3])
    assert ChannelAt(1).resolved_position((13, 13)) == (6, 6)


def test_channel_mean_flat_token_selector():
    out = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(ChannelMean(2).vector(out), out.mean((2, 3)))
    assert FlatIndex(99).vector(out).shape == (2, 100)
    tokens = torch.randn(2, 7, 10)
    torch.testing.assert_close(TokenUnit(3, token=0).vector(tokens), tokens[:, 0])
    sel = Selector(lambda o: o[:, -1, :], 4)
    torch.testing.assert_close(sel.vector(tokens), tokens[:, -1])
    assert as_selector(2, "mean") == ChannelMean(2)


@pytest.mark.parametrize(
    "selector, shape, match",
    [
        (ChannelAt(256), (1, 256, 13, 13), r"unit 256 is out of range: the layer has 256 channels \(output 256×13×13\); use a unit in 0..255"),
        (ChannelAt(0, (13, 0)), (1, 256, 13, 13), "outside the layer's 13×13 map"),
        (ChannelAt(10), (1, 10), "0..9"),
        (TokenUnit(0), (1, 4, 4, 4), "TokenUnit needs"),
        (Selector(lambda o: o.sum((1, 2)), 0), (1, 4, 4), "must return a \\(batch, N\\) tensor"),
    ],
)
def test_selector_errors(selector, shape, match):
    with pytest.raises(nv.NeurovisError, match=match):
        selector.vector(torch.zeros(shape))


def test_unit_must_be_int_or_selector():
    with pytest.raises(nv.NeurovisError, match="unit must be an int"):
        as_selector("3")
