"""The report commands of the command line (facets, layer, sample, inpaint) on tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurovis.cli import main, parse_units, slug
from test_reports import SCRIPT, html_refs

TINY = ["--model", "test_reports:strong_net", "--prior", "test_reports:tiny_prior", "--chains", "2", "--steps", "12",
        "--bootstrap", "3"]


def pixel_prior():
    import neurovis as nv

    return nv.PixelPrior((3, 16, 16))


def _doc(folder: Path) -> dict:
    return json.loads((folder / "facets.json").read_text())


def test_facets_command_writes_a_report(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["facets", *TINY, "--layer", "conv2", "--unit", "2", "--pick", "20", "--seed", "3", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{out}/index.html: ") and "samples kept" in captured.out
    doc = _doc(out)
    assert doc["condition"]["layer"] == "conv2" and doc["condition"]["unit"] == 2
    assert doc["reproducibility"]["command"].startswith("neurovis facets --model test_reports:strong_net")
    assert doc["reproducibility"]["seeds"] == {"sampling": 3, "report": 3}
    assert doc["counts"]["chains"] == 2 and doc["counts"]["steps"] == 12 and doc["counts"]["picked"] <= 20
    assert "load" in doc["reproducibility"]["timings_s"]
    with h5py.File(out / "samples.h5") as f:
        assert f["codes"].shape[0] == 26
    # an existing report is not overwritten without --force (one line, exit 2) ...
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--force" in err and err.count("\n") == 1
    # ... and is with it; --quiet prints nothing at all
    assert main([*args, "--force", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_facets_command_options_reach_the_report(tmp_path):
    out = tmp_path / "r"
    assert main(["facets", *TINY, "--layer", "conv2", "--unit", "1", "--eps", "0,1,0", "--rule", "textbook",
                 "--threshold", "0.5", "--facets", "2", "--features", "pixels", "--no-attribution",
                 "--reset-every", "5", "--position", "mean", "--out", str(out), "--quiet"]) == 0
    doc = _doc(out)
    rep = doc["reproducibility"]
    assert rep["eps"] == [0.0, 1.0, 0.0] and rep["rule"] == "textbook" and rep["reset_every"] == 5
    assert doc["threshold"] == 0.5 and doc["feature_space"]["name"] == "pixels"
    assert doc["clustering"] is None or doc["clustering"]["chosen_by"] == "given"
    assert "mean" in doc["probability"]
    assert all(f["attribution"] is None for f in doc["facets"])


def test_layer_command_writes_one_report_per_unit_and_an_index(tmp_path, capsys):
    out = tmp_path / "layer"
    tiny = [a.replace("strong_net", "script_net") for a in TINY]
    assert main(["layer", *tiny, "--layer", SCRIPT, "--units", "0:3", "--no-attribution", "--out", str(out)]) == 0
    assert "3 unit reports" in capsys.readouterr().out
    index = json.loads((out / "layer.json").read_text())
    assert [u["unit"] for u in index["units"]] == [0, 1, 2]
    for u in index["units"]:
        assert (out / u["folder"] / "index.html").is_file()
        assert _doc(out / u["folder"])["condition"]["unit"] == u["unit"]
    html = (out / "index.html").read_text()
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    refs = html_refs(out / "index.html")
    assert len(refs.srcs) == 3 and all((out / s).is_file() for s in refs.srcs)
    assert all((out / h).is_file() for h in refs.hrefs if h.endswith(".html"))
    assert "http://" not in html and "https://" not in html


def test_sample_command_classes_by_name_and_index(tmp_path):
    out = tmp_path / "s"
    assert main(["sample", *TINY, "--class", "dog", "--class", "3", "--out", str(out), "--quiet"]) == 0
    doc = _doc(out)
    assert doc["condition"]["type"] == "combined"
    assert [p["class"] for p in doc["condition"]["parts"]] == [1, 3]
    assert doc["probability"].startswith("smallest of")
    one = tmp_path / "one"
    assert main(["sample", *TINY, "--class", "piano", "--out", str(one), "--quiet"]) == 0
    assert _doc(one)["condition"]["class_name"] == "piano" and _doc(one)["probability"] == "softmax over classes"


def test_inpaint_command(tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "i"
    assert main(["inpaint", *TINY, "--image", str(photo), "--mask", "8,8,16,16", "--class", "cat",
                 "--out", str(out), "--quiet"]) == 0
    doc = _doc(out)
    assert doc["condition"]["type"] == "inpaint" and doc["condition"]["hole_fraction"] == pytest.approx(0.25)
    assert doc["reproducibility"]["sampling_config"]["init"] == "given"
    with h5py.File(out / "samples.h5") as f:  # the known pixels are the photo's in every sample
        images = f["images"][:]
    ref = np.asarray(Image.open(photo).resize((16, 16), Image.BILINEAR), dtype=np.int16)
    assert np.abs(images[:, :4].astype(np.int16) - ref[None, :4]).max() <= 1


@pytest.mark.parametrize("argv, message", [
    (["layer", *TINY, "--layer", "conv2", "--units", "a:b"], "--units"),
    (["facets", *TINY, "--layer", "conv9", "--unit", "0"], "unknown layer 'conv9'"),
    (["facets", *TINY, "--layer", "conv2", "--unit", "60"], "out of range"),
    (["layer", *TINY, "--layer", "conv2", "--units", "0,60"], "out of range"),
    (["facets", *TINY, "--layer", "conv2", "--unit", "0", "--chains", "0"], "--chains must be"),
    (["sample", *TINY, "--class", "giraffe"], "no class named 'giraffe'"),
    (["facets", "--model", "test_reports:strong_net", "--layer", "conv2", "--unit", "0"], "--prior"),
    (["facets", *TINY, "--layer", "conv2", "--unit", "0", "--images", "/nonexistent/folder"], "no such folder"),
    (["facets", *TINY, "--layer", "conv2", "--unit", "0", "--device", "cuda:7"], "--device"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurovis: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_inpaint_mask_outside_the_image(tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(photo)
    assert main(["inpaint", *TINY, "--image", str(photo), "--mask", "5,5,10,10", "--class", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert "outside the 10×10 image" in capsys.readouterr().err


def test_unit_lists_and_slugs():
    assert parse_units("0:4") == [0, 1, 2, 3]
    assert parse_units("3,7,9") == [3, 7, 9] and parse_units("5") == [5] and parse_units("0:8:4,9") == [0, 4, 9]
    assert slug("glyphs", SCRIPT, 3) == "glyphs_script_alert_1_script_3"
    assert "/" not in slug("../../etc", "x") and not slug("../../etc").startswith(".")


def _glyphs_ready() -> str | None:
    try:
        import neurovis as nv

        nv.load_model("glyphs")
        nv.load_prior("glyphs")
    except Exception as err:  # noqa: BLE001 - any reason the shipped world is not there
        return f"the glyph world is not shipped yet ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


def test_glyphs_work_out_of_the_box(tmp_path):
    reason = _glyphs_ready()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "g"
    assert main(["facets", "--model", "glyphs", "--layer", "conv5", "--unit", "3", "--chains", "2", "--steps", "8",
                 "--threshold", "0", "--natural-count", "200", "--bootstrap", "2", "--out", str(out), "--quiet"]) == 0
    doc = _doc(out)
    assert doc["natural"]["source"].startswith("glyph world")
    assert all(w["file_sha256"] for w in doc["reproducibility"]["weights"])


def test_clamp_pixels_flag_overrides_the_prior(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["facets", *TINY, "--layer", "conv2", "--unit", "1", "--no-attribution", "--quiet"]
    assert main([*base, "--clamp-pixels", "on", "--out", str(out)]) == 0
    assert _doc(out)["reproducibility"]["sampling_config"]["prior"]["clamp_pixels"] is True  # the tiny prior's is off
    with h5py.File(out / "samples.h5") as f:
        clipped = f["codes"][:]
    assert main([*base, "--out", str(tmp_path / "raw")]) == 0
    assert _doc(tmp_path / "raw")["reproducibility"]["sampling_config"]["prior"]["clamp_pixels"] is False
    with h5py.File(tmp_path / "raw" / "samples.h5") as f:
        assert not np.allclose(f["codes"][:], clipped)  # the chains saw other images
    assert main(["sample", "--model", "test_reports:strong_net", "--prior", "test_cli_reports:pixel_prior", "--class", "0",
                 "--chains", "1", "--steps", "1", "--clamp-pixels", "off", "--out", str(tmp_path / "p")]) == 2
    assert "--clamp-pixels applies to generator priors" in capsys.readouterr().err


def test_starts_natural_starts_chains_from_the_images_codes(tmp_path, capsys):
    import torch
    from PIL import Image

    import neurovis as nv
    from test_reports import tiny_prior

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    out = tmp_path / "r"
    base = ["facets", *TINY, "--layer", "conv2", "--unit", "1", "--no-attribution", "--quiet", "--reset-every", "6"]
    assert main([*base, "--starts", "natural", "--images", str(folder), "--out", str(out)]) == 0
    assert "one of 5 given codes" in _doc(out)["reproducibility"]["sampling_config"]["prior"]["starts"]
    prior = tiny_prior()
    photos = nv.analysis.natural.load_image_folder(folder, (16, 16))
    with torch.no_grad():
        bank = prior.encode(photos.rgb01())
    with h5py.File(out / "samples.h5") as f:
        codes = torch.from_numpy(f["codes"][:]).reshape(2, 13, 16)
    for t in (0, 6):  # the starts and the states right after each reset are codes of the photos
        for chain in range(2):
            assert torch.isclose(bank, codes[chain, t]).all(1).any(), (chain, t)
    for chain in range(2):  # no restart after the last step: the last sample is a sampled state
        assert not torch.isclose(bank, codes[chain, 12]).all(1).any(), chain
    assert main([*base, "--out", str(tmp_path / "rand")]) == 0
    assert _doc(tmp_path / "rand")["reproducibility"]["sampling_config"]["prior"]["starts"] == "N(0, 1)"
    capsys.readouterr()
    assert main([*base, "--starts", "natural", "--out", str(tmp_path / "none")]) == 2
    assert "--starts natural needs natural images" in capsys.readouterr().err
    assert main(["sample", "--model", "test_reports:strong_net", "--prior", "test_cli_reports:pixel_prior", "--class", "0",
                 "--chains", "1", "--steps", "1", "--starts", "natural", "--images", str(folder),
                 "--out", str(tmp_path / "p")]) == 2
    assert "--starts natural needs a generator prior with an encoder" in capsys.readouterr().err
