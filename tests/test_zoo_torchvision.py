"""Torchvision models by name, offline: weights from a TORCH_HOME cache the tests write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.transforms._presets import ImageClassification

import neurovis as nv
from neurovis.pixels import PixelAdapter
from neurovis.cli import main
from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer
from neurovis.zoo.torchvision_models import cached_weights_path

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory) -> Path:
    """A TORCH_HOME whose hub cache holds AlexNet random weights under torchvision's name."""
    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, home / "hub" / "checkpoints" / ALEXNET_FILE)
    return home


@pytest.fixture
def cached(torch_home, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home


def test_alexnet_is_found_by_name_in_the_cache(cached):
    assert cached_weights_path("alexnet") == cached / "hub" / "checkpoints" / ALEXNET_FILE
    model = nv.load_model("alexnet")
    saved = torch.load(cached / "hub" / "checkpoints" / ALEXNET_FILE, weights_only=True)
    torch.testing.assert_close(model.features[0].weight, saved["features.0.weight"], rtol=0, atol=0)
    assert not model.training
    assert model.pixel_space.size == (224, 224) and model.pixel_space.channels == "RGB"
    assert model.input_size == (3, 224, 224)
    assert len(model.class_names) == 1000 and "volcano" in model.class_names
    cond = nv.ClassCondition(model, "volcano")
    assert cond.class_index == model.class_names.index("volcano") == 980


def test_missing_weights_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(NeurovisError) as err:
        nv.load_model("alexnet")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / ALEXNET_FILE) in msg
    assert "--weights" in msg and "--random-weights" in msg
    # the command line: exit 2 and one line on stderr, no silent fallback to random weights
    rc = main(["layers", "--model", "alexnet"])
    assert rc == 2


def test_random_weights_are_explicit_and_exclusive(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    model = nv.load_model("resnet18", random_weights=True)
    assert isinstance(model, torchvision.models.ResNet)
    with pytest.raises(NeurovisError, match="not both"):
        nv.load_model("resnet18", weights=tmp_path / "w.pt", random_weights=True)
    with pytest.raises(NeurovisError, match="torchvision models"):
        nv.load_model("glyphs", random_weights=True)


def test_weights_file_is_loaded_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    torch.manual_seed(3)
    ref = torchvision.models.resnet18(weights=None)
    torch.save({"state_dict": ref.state_dict()}, tmp_path / "r18.pt")
    model = nv.load_model("resnet18", weights=tmp_path / "r18.pt")
    torch.testing.assert_close(model.fc.weight, ref.fc.weight, rtol=0, atol=0)
    # weights of another architecture: one line naming a mismatching tensor
    with pytest.raises(NeurovisError) as err:
        nv.load_model("alexnet", weights=tmp_path / "r18.pt")
    assert "do not fit alexnet" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(NeurovisError, match="does not exist"):
        nv.load_model("alexnet", weights=tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(NeurovisError, match="cannot read weights"):
        nv.load_model("alexnet", weights=tmp_path / "bad.pt")


class _Pickled:
    pass


def test_weights_file_with_code_is_refused(tmp_path):
    torch.save({"state_dict": _Pickled()}, tmp_path / "evil.pt")
    with pytest.raises(NeurovisError, match="cannot read weights"):
        nv.load_model("alexnet", weights=tmp_path / "evil.pt")


def test_user_factory_with_weights(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import torch.nn as nn\n"
        "def net():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 3))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_models", None)
    import my_models

    torch.manual_seed(5)
    ref = my_models.net()
    torch.save(ref.state_dict(), tmp_path / "net.pt")
    model = nv.load_model("my_models:net", weights=tmp_path / "net.pt")
    torch.testing.assert_close(model[3].weight, ref[3].weight, rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, aliases",
    [
        ("alexnet", {"conv1": "features.0", "conv5": "features.10", "pool5": "features.12", "fc6": "classifier.1",
                     "fc7": "classifier.4", "fc8": "classifier.6"}),
        ("vgg16", {"conv1_1": "features.0", "conv5_3": "features.28", "pool5": "features.30", "fc6": "classifier.0",
                   "fc8": "classifier.6"}),
        ("resnet18", {"res5": "layer4", "pool5": "avgpool", "fc8": "fc"}),
        ("googlenet", {"inception_4c": "inception4c", "pool5": "avgpool", "loss3/classifier": "fc"}),
    ],
)
def test_caffe_style_aliases(name, aliases):
    model = nv.load_model(name, random_weights=True)
    for alias, path in aliases.items():
        assert resolve_layer(model, alias)[0] == path
    modules = dict(model.named_modules())
    if name == "alexnet":
        assert isinstance(modules["features.10"], nn.Conv2d) and modules["features.10"].out_channels == 256
    if name == "vgg16":
        assert isinstance(modules["features.28"], nn.Conv2d) and isinstance(modules["features.30"], nn.MaxPool2d)


def test_adapter_matches_torchvision_transforms(cached):
    """An image in the DeePSiM generator's pixels (BGR 0-255 minus mean, 227 crop) through
    the adapter gives the logits of the same image prepared by torchvision's own transform."""
    model = nv.load_model("alexnet")
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 227, 227, generator=g)
    source = nv.pixels.CAFFE_IMAGENET  # BGR, 0-255, mean subtracted, 227×227
    v = source.from_rgb01(rgb)
    with torch.no_grad():
        ours = model(PixelAdapter(source, model.pixel_space)(v))
        preset = ImageClassification(crop_size=224, resize_size=224)  # torchvision's ImageNet preset
        theirs = model(preset(rgb))
    assert ours.shape == (2, 1000)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    # and the adapter is not a no-op: skipping the BGR flip changes the logits
    with torch.no_grad():
        wrong = model(PixelAdapter(nv.pixels.RGB01.with_size((227, 227)), model.pixel_space)(v / 255))
    assert (wrong - theirs).abs().max() > 1e-3


def test_small_and_grey_inputs_are_adapted(tmp_path, monkeypatch):
    """A model reading 1-channel 32×32 images is conditioned on a 16×16 RGB prior."""
    (tmp_path / "grey_models.py").write_text(
        "import torch.nn as nn\n"
        "import neurovis as nv\n"
        "def net():\n"
        "    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                      nn.Linear(4, 3))\n"
        "    m.pixel_space = nv.pixels.PixelSpace('L', 1.0, (0.5,), (0.25,), (32, 32), 'grey32')\n"
        "    return m\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("grey_models", None)
    from test_reports import tiny_prior

    model = nv.load_model("grey_models:net")
    chains = nv.sample(tiny_prior(), nv.ClassCondition(model, 1), chains=2, steps=3, progress=False)
    assert torch.isfinite(chains.probs).all() and chains.probs.shape == (2, 4)


def test_facets_command_on_alexnet_by_name(cached, tmp_path):
    out = tmp_path / "alex"
    rc = main(["facets", "--model", "alexnet", "--layer", "conv5", "--unit", "196", "--prior", "test_reports:tiny_prior",
               "--chains", "2", "--steps", "3", "--bootstrap", "0", "--no-attribution", "--out", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads((out / "facets.json").read_text())
    assert doc["condition"]["layer"] == "conv5" and doc["condition"]["unit"] == 196
    assert (out / "index.html").exists()
    # a unit past conv5's 256 channels is a one-line error before any sampling
    rc = main(["facets", "--model", "alexnet", "--layer", "conv5", "--unit", "256", "--prior", "test_reports:tiny_prior",
               "--chains", "1", "--steps", "1", "--out", str(tmp_path / "bad"), "--quiet"])
    assert rc == 2 and not (tmp_path / "bad").exists()


def test_caffenet_files_missing_say_how_to_convert(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROVIS_HOME", str(tmp_path / "home"))
    with pytest.raises(NeurovisError) as err:
        nv.load_model("caffenet")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "home" / "caffenet.pt") in msg and "convert-caffe" in msg
    with pytest.raises(NeurovisError, match="caffenet-fc6-generator.pt"):
        nv.load_prior("caffenet-fc6")
    rc = main(["facets", "--model", "caffenet", "--layer", "conv5", "--unit", "196", "--out", str(tmp_path / "r")])
    assert rc == 2 and "convert-caffe" in capsys.readouterr().err


def test_a_model_without_its_own_prior_must_name_one(cached, tmp_path, capsys):
    rc = main(["facets", "--model", "alexnet", "--layer", "conv5", "--unit", "1", "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--prior caffenet-fc6" in err and err.count("\n") == 1


class _TupleBlock(nn.Module):
    """A layer that returns a tuple (like an RNN or an attention block with weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y, y.mean((2, 3))


class _TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = _TupleBlock()
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        y, pooled = self.block(x)
        return self.head(pooled)


class _TokenNet(nn.Module):
    """Patches -> tokens (B, T, D) -> mean -> logits: a ViT-shaped toy."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.tokens = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        t = self.tokens(self.patch(x).flatten(2).transpose(1, 2))  # (B, 16, 8)
        return self.head(t.mean(1))


def test_tuple_and_token_layers_work_or_fail_in_one_line():
    from test_reports import tiny_prior

    torch.manual_seed(0)
    prior = tiny_prior()
    tup = _TupleNet()
    chains = nv.sample(prior, nv.UnitCondition(tup, "block", 2), chains=2, steps=2, progress=False)
    assert torch.isfinite(chains.activations).all()
    tok = _TokenNet()
    chains = nv.sample(prior, nv.UnitCondition(tok, "tokens", nv.hooks.units.TokenUnit(5, token=0)), chains=2, steps=2,
                       progress=False)
    assert torch.isfinite(chains.activations).all()
    # a feature past the token width is a one-line error naming the layer's size
    with pytest.raises(NeurovisError) as err:
        nv.sample(prior, nv.UnitCondition(tok, "tokens", nv.hooks.units.TokenUnit(8, token=0)), chains=1, steps=1,
                  progress=False)
    assert "\n" not in str(err.value) and "8" in str(err.value)
