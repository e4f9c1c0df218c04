"""The paper's setup end to end on synthetic Caffe files: convert CaffeNet and the fc6
generator, find them by name, and run `neurovis facets --model caffenet --prior caffenet-fc6`
and the same prior on torchvision AlexNet (plug and play across pixel conventions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

import neurovis as nv
from neurovis.caffe import convert_caffe, write_caffemodel, write_prototxt
from neurovis.cli import main
from test_caffe import tiny_caffenet, tiny_generator


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """NEUROVIS_HOME with a 227-input CaffeNet-shaped net (fc6 of 4096) and a generator
    4096 -> 256×256, both written as Caffe files and converted by the project."""
    root = tmp_path_factory.mktemp("nv_home")
    rng = np.random.default_rng(0)
    net = tiny_caffenet(rng, fc6=4096, pool5=14)  # 227 -> conv1 112 -> 56 -> 28 -> pool5 14
    gen, _ = tiny_generator(rng, code=4096, start=4)  # 4×4 -> six 2× upsamplings -> 256
    for tag, layers, inputs in (("caffenet", net, {"data": (1, 3, 227, 227)}), ("gen", gen, None)):
        proto = write_prototxt(root / f"{tag}.prototxt", layers, version=2, inputs=inputs)
        weights = write_caffemodel(root / f"{tag}.caffemodel", layers, version=2, inputs=inputs)
        out = root / ("caffenet.pt" if tag == "caffenet" else "caffenet-fc6-generator.pt")
        convert_caffe(proto, weights, out)
    return root


def test_caffenet_fc6_prior_loads_by_name(home, monkeypatch):
    monkeypatch.setenv("NEUROVIS_HOME", str(home))
    prior = nv.load_prior("caffenet-fc6")
    assert prior.code_shape == (4096,) and prior.code_clip == (0.0, 30.0)
    assert prior.pixel_space == nv.pixels.CAFFE_IMAGENET
    h = torch.rand(2, 4096)
    with torch.no_grad():
        x = prior.decode(h)
        full = prior.generator.generator(h)
    assert full.shape == (2, 3, 256, 256) and x.shape == (2, 3, 227, 227)
    torch.testing.assert_close(x, full[:, :, 14:241, 14:241])  # the paper's crop
    with torch.no_grad():
        code = prior.encode(x)
    assert code.shape == (2, 4096) and (code >= 0).all()  # post-ReLU fc6
    model = nv.load_model("caffenet")
    assert model.pixel_space == nv.pixels.CAFFE_IMAGENET and model.input_size == (3, 227, 227)
    assert nv.load_model("caffenet", weights=home / "caffenet.pt").state_dict().keys() == model.state_dict().keys()


def test_facets_on_caffenet_with_the_paper_prior(home, monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROVIS_HOME", str(home))
    out = tmp_path / "face"
    rc = main(["facets", "--model", "caffenet", "--layer", "conv5", "--unit", "3", "--prior", "caffenet-fc6",
               "--chains", "2", "--steps", "2", "--bootstrap", "0", "--no-attribution", "--no-images",
               "--out", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads((out / "facets.json").read_text())
    assert doc["condition"]["layer"] == "conv5" and doc["counts"]["steps"] == 2


def test_the_paper_prior_drives_torchvision_alexnet(home, monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROVIS_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    (tmp_path / "th" / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(),
               tmp_path / "th" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth")
    out = tmp_path / "alex"
    rc = main(["facets", "--model", "alexnet", "--layer", "conv5", "--unit", "196", "--prior", "caffenet-fc6",
               "--chains", "2", "--steps", "2", "--bootstrap", "0", "--no-attribution", "--no-images",
               "--out", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads((out / "facets.json").read_text())
    assert doc["condition"]["unit"] == 196


def test_labels_give_caffenet_class_names(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    net = tiny_caffenet(rng)  # 10 outputs, 35×35 input
    inputs = {"data": (1, 3, 35, 35)}
    proto = write_prototxt(tmp_path / "n.prototxt", net, version=2, inputs=inputs)
    weights = write_caffemodel(tmp_path / "n.caffemodel", net, version=2, inputs=inputs)
    labels = tmp_path / "synset_words.txt"
    labels.write_text("".join(f"n{1440764 + i:08d} name{i}, other{i}\n" for i in range(9)) + "n09472597 volcano\n")
    out = tmp_path / "caffenet.pt"
    assert main(["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights), "--out", str(out),
                 "--labels", str(labels), "--quiet"]) == 0
    model = nv.load_model("caffenet", weights=out)
    assert model.class_names[0] == "name0" and model.class_names[-1] == "volcano"
    assert nv.ClassCondition(model, "volcano").class_index == 9
    labels.write_text("a\nb\n")  # wrong count: refused, nothing written
    assert main(["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights), "--out",
                 str(tmp_path / "x.pt"), "--labels", str(labels), "--quiet"]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_the_paper_prior_gets_its_start_bank_from_images_once(home, monkeypatch, tmp_path, capsys):
    """The converted generator ships no start bank: the first run with --images makes one
    (E(x) of the photos), keeps it beside the generator, and later runs start from it."""
    from PIL import Image

    monkeypatch.setenv("NEUROVIS_HOME", str(home))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    bank_file = home / "caffenet-fc6-generator.start_bank.pt"
    bank_file.unlink(missing_ok=True)
    base = ["facets", "--model", "caffenet", "--layer", "conv5", "--unit", "3", "--chains", "2", "--steps", "2",
            "--bootstrap", "0", "--no-attribution"]
    assert main([*base, "--images", str(photos), "--out", str(tmp_path / "a")]) == 0
    assert "start bank of 4 codes" in capsys.readouterr().err and bank_file.is_file()
    prior = nv.load_prior("caffenet-fc6")
    assert prior.start_codes.shape == (4, 4096)
    with torch.no_grad():
        x = prior.pixel_space.from_rgb01(nv.analysis.natural.load_image_folder(photos, (227, 227)).rgb01())
        torch.testing.assert_close(prior.start_codes, prior.encode(x), atol=1e-4, rtol=1e-4)
    assert main([*base, "--no-images", "--quiet", "--out", str(tmp_path / "b")]) == 0  # no images: the kept bank
    doc = json.loads((tmp_path / "b" / "facets.json").read_text())
    assert doc["reproducibility"]["sampling_config"]["init"] == "bank"
    bank_file.unlink()
