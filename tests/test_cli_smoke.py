"""Smoke tests: every command of the README's CLI table runs through ``main([...])`` on
ordinary input (the shipped glyph world, tiny chains) and exits 0 with its files in place.

They check little beyond "it ran and wrote what it says", so that a command that crashes on
ordinary input cannot land again; the detailed behaviour is in test_cli_*.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurovis.cli import main
from test_cli_reports import _glyphs_ready

TINY = ["--chains", "2", "--steps", "3", "--bootstrap", "0", "--no-attribution", "--natural-count", "40",
        "--pick", "8", "--threshold", "0", "--device", "cpu", "--quiet", "--threads", "1"]

pytestmark = pytest.mark.skipif(_glyphs_ready() is not None, reason=str(_glyphs_ready()))


def _doc(folder: Path) -> dict:
    return json.loads((folder / "facets.json").read_text())


def _clean(parent: Path, name: str) -> None:
    """Nothing but the output itself: no lock, no work folder, no staging folder."""
    left = sorted(p.name for p in parent.iterdir() if p.name != name and p.name.startswith(("." + name, name)))
    assert left == [], left


def test_facets(tmp_path):
    out = tmp_path / "f"
    assert main(["facets", "--model", "glyphs", "--layer", "conv5", "--unit", "3", *TINY, "--out", str(out)]) == 0
    doc = _doc(out)
    assert (doc["counts"]["chains"], doc["counts"]["steps"]) == (2, 3)
    compute = doc["reproducibility"]["device"]
    assert compute["torch_threads"] == 1 and "blas" in compute and "mkldnn" in compute
    _clean(tmp_path, "f")


def test_layer(tmp_path):
    out = tmp_path / "l"
    assert main(["layer", "--model", "glyphs", "--layer", "conv5", "--units", "0:2", *TINY, "--out", str(out)]) == 0
    index = json.loads((out / "layer.json").read_text())
    assert [u["unit"] for u in index["units"]] == [0, 1]
    assert index["reproducibility"]["compute"]["torch_threads"] == 1
    assert (out / "unit_0001" / "index.html").is_file()
    umask = os.umask(0)
    os.umask(umask)
    for folder in (out, out / "unit_0000"):  # ordinary folders, not mkdtemp's 0700
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    _clean(tmp_path, "l")


def test_sample(tmp_path):
    out = tmp_path / "s"
    assert main(["sample", "--model", "glyphs", "--class", "3", *TINY, "--out", str(out)]) == 0
    assert _doc(out)["condition"]["type"] == "class"
    _clean(tmp_path, "s")


def test_inpaint(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "i"
    assert main(["inpaint", "--model", "glyphs", "--image", str(photo), "--mask", "16,16,32,32", "--class", "2",
                 *TINY, "--out", str(out)]) == 0
    assert _doc(out)["condition"]["type"] == "inpaint"
    _clean(tmp_path, "i")


def test_layers(capsys):
    assert main(["layers", "--model", "glyphs", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "conv5" in out and "fc8" in out


def test_train_prior(tmp_path):
    out = tmp_path / "p"
    assert main(["train-prior", "--encoder", "glyphs-encoder", "--code-layer", "relu6", "--data", "world", "--steps", "1",
                 "--batch-size", "2", "--device", "cpu", "--quiet", "--threads", "1", "--out", str(out)]) == 0
    assert (out / "generator.pt").is_file() and (out / "losses.csv").is_file()
    _clean(tmp_path, "p")


def test_convert_caffe(tmp_path, capsys):
    from test_bad_input import small_caffe_net

    proto, weights = small_caffe_net(tmp_path)
    out = tmp_path / "c.pt"
    assert main(["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights), "--out", str(out),
                 "--threads", "1"]) == 0
    assert out.is_file() and "fc8" in capsys.readouterr().out
    assert main(["layers", "--model", "caffenet", "--weights", str(out)]) == 0  # its own 1×28×28 input
    assert "10" in capsys.readouterr().out


def test_threads_apply_during_the_run_and_are_put_back(monkeypatch, capsys):
    import torch

    import neurovis.hooks

    seen = []
    real = neurovis.hooks.list_layers
    monkeypatch.setattr(neurovis.hooks, "list_layers", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    before = torch.get_num_threads()
    want = 2 if before != 2 else 3
    assert main(["layers", "--model", "glyphs", "--threads", str(want)]) == 0
    assert seen == [want] and torch.get_num_threads() == before
