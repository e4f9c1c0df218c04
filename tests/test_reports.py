"""Facet reports on tiny models: files exist and agree, grid is a bijection, statuses,
escaping, atomic folders. Short chains (3 × 20), CPU, seconds."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import neurovis as nv
from conftest import TinyEncoder, TinyGenerator, TinyNet
from neurovis.analysis import NaturalImages, facets, load_image_folder
from neurovis.analysis import clustering as cl
from neurovis.analysis.grid import grid_layout
from neurovis.report.schema import validate

SCRIPT = "<script>alert(1)</script>"


# ---------------------------------------------------------------- factories (also used by the CLI tests)
def strong_net() -> TinyNet:
    """TinyNet with sharpened weights: its units and classes reach p ≥ 0.97 in a few steps."""
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        net.classifier[1].weight.mul_(30)
        net.features[2].weight.mul_(10)
    net.input_size = (3, 16, 16)
    return net


def script_net() -> TinyNet:
    """strong_net whose layer alias and class names hold markup."""
    net = strong_net()
    net.layer_aliases = {**net.layer_aliases, SCRIPT: "features.2"}
    net.class_names = [SCRIPT, "dog", "volcano", "piano", "candle"]
    return net


def dead_net() -> TinyNet:
    """features.1 (ReLU after a conv with bias −1000) is always 0: every unit there is dead."""
    net = strong_net()
    with torch.no_grad():
        net.features[0].bias.fill_(-1000.0)
    return net


def tiny_prior() -> nv.GeneratorPrior:
    torch.manual_seed(1)
    return nv.GeneratorPrior(TinyGenerator(), TinyEncoder(), code_clip=None)


def natural_images(n: int = 60) -> NaturalImages:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    labels = np.arange(n) % 5
    return NaturalImages(images, labels, ["cat", "dog", "volcano", "piano", "candle"], [f"n{i}" for i in range(n)], "noise")


def run(condition, chains=3, steps=20, **kw):
    ch = nv.sample(tiny_prior(), condition, chains=chains, steps=steps, progress=False)
    kw.setdefault("progress", False)
    kw.setdefault("bootstrap", 5)
    return facets(ch, **kw)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        for key in ("href", "src"):
            if key in a and tag != "img":
                self.hrefs.append(a[key] or "")


def html_refs(path: Path) -> _Images:
    p = _Images()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def unit_report(tmp_path_factory):
    report = run(nv.UnitCondition(strong_net(), "conv2", 2), pick=40, natural_images=natural_images())
    out = tmp_path_factory.mktemp("reports") / "unit"
    nv.write_report(report, out)
    return report, out


# ---------------------------------------------------------------- files exist and agree
def test_report_files_exist_and_agree(unit_report):
    report, out = unit_report
    assert report.status == "ok" and report.figures["n_facets"] >= 2
    for name in ("index.html", "facets.json", "samples.h5"):
        assert (out / name).is_file()
    doc = json.loads((out / "facets.json").read_text(), parse_constant=lambda c: pytest.fail(f"JSON holds {c}"))
    validate(doc)
    assert doc["schema_version"] == 1 and doc["status"] == "ok"
    assert "softmax over the layer's units" in doc["probability"]
    with h5py.File(out / "samples.h5", "r") as f:
        assert f.attrs["format"] == "neurovis.samples"
        n = doc["counts"]["samples"]
        for name in ("codes", "images", "probs", "activations", "chain", "step", "facet", "kept", "picked", "grid_cell"):
            assert f[name].shape[0] == n, name
        facet = f["facet"][:]
        probs = f["probs"][:]
        acts = f["activations"][:]
        step = f["step"][:]
        kept = f["kept"][:]
        picked = f["picked"][:]
        cells = f["grid_cell"][:]
        assert f["images"].dtype == np.uint8 and f["images"].shape[-1] == 3
    # kept by the rule the report names (a hidden unit with natural images: by activation), never a start
    every = doc["reproducibility"]["reset_every"]
    start = (step == 0) | (((step % every == 0) & (step < step.max())) if every else False)  # none after the last step
    rule = doc["keep"]
    assert rule["rule"] == "activation"
    np.testing.assert_array_equal(kept, (acts >= rule["activation_threshold"]) & ~start)
    assert kept.sum() == doc["counts"]["kept"] and picked.sum() == doc["counts"]["picked"]
    for fdoc in doc["facets"]:  # the JSON's facets are the HDF5's labels
        assert sorted(fdoc["members"]) == np.flatnonzero(facet == fdoc["id"]).tolist()
        assert facet[fdoc["medoid"]["sample"]] == fdoc["id"]
    assert (facet >= 0).sum() == doc["counts"]["kept"] and np.all(facet[~kept] == -1)
    assert sorted(doc["grid"]["samples"]) == np.flatnonzero(picked).tolist()
    np.testing.assert_array_equal(cells[doc["grid"]["samples"]], np.array(doc["grid"]["cells"]))
    # every image the HTML names exists; nothing points outside the folder
    refs = html_refs(out / "index.html")
    assert len(refs.srcs) > 20
    for src in refs.srcs:
        assert not re.match(r"^[a-z]+:", src) and not src.startswith("/"), src
        assert (out / src).is_file(), src
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html and "XMLHttpRequest" not in html and "fetch(" not in html
    assert doc["clustering"]["chosen_by"] == "silhouette"  # and the page says how k was chosen
    assert doc["clustering"]["k"] == cl.choose_k({int(k): v for k, v in doc["clustering"]["silhouette_by_k"].items()})
    assert "chosen by silhouette (the largest k within 0.03 of the best)" in html


def test_report_figures_and_reproducibility(unit_report):
    report, out = unit_report
    doc = json.loads((out / "facets.json").read_text())
    fig = doc["figures"]
    assert 0 < fig["acceptance_rate"] <= 1
    assert 1 <= fig["effective_n_facets"] <= fig["n_facets"]
    assert fig["vendi_score"] >= 1 and fig["mean_pairwise_distance"] > 0
    assert -1 <= fig["stability_ari"]["mean"] <= 1
    sizes = [f["size"] for f in doc["facets"]]
    assert sizes == sorted(sizes, reverse=True)
    for f in doc["facets"]:
        assert f["activation"]["min"] >= doc["keep"]["activation_threshold"]
        assert f["attribution"]["method"].startswith("Integrated Gradients")
        assert (out / f["attribution"]["image"]).is_file()
        assert len(f["natural_neighbours"]) == 5 and isinstance(f["no_natural_neighbour"], bool)
    assert len(doc["natural"]["top"]) == 9 and len(doc["natural"]["random"]) == 9
    acts = [n["activation"] for n in doc["natural"]["top"]]
    assert acts == sorted(acts, reverse=True)
    rep = doc["reproducibility"]
    assert rep["eps"] == [1e-5, 1.0, 1e-17] and rep["rule"] == "faithful" and rep["seeds"] == {"sampling": 0, "report": 0}
    assert {w["role"] for w in rep["weights"]} >= {"condition network", "prior generator", "prior encoder"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", w["state_sha256"]) for w in rep["weights"])
    assert rep["versions"]["torch"] and rep["versions"]["neurovis"]
    assert {"sampling", "decode", "cluster", "grid", "attribution", "figures"} <= set(rep["timings_s"])
    assert (out / doc["filmstrip"]["image"]).is_file() and doc["feature_space"]["name"] == "network"  # the default for a unit condition


def test_attribution_heatmap_shape(unit_report):
    report, _ = unit_report
    for f in report.facets:
        assert f.heat.shape == report.images.shape[1:3]
        assert 0 <= f.heat.min() and f.heat.max() <= 1


def test_same_seed_same_report():
    cond = nv.UnitCondition(strong_net(), "conv2", 2)
    a = run(cond, chains=2, steps=10, attribution=False, bootstrap=0)
    b = run(cond, chains=2, steps=10, attribution=False, bootstrap=0)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.selection.picked, b.selection.picked)
    np.testing.assert_array_equal(a.grid.cells, b.grid.cells)


# ---------------------------------------------------------------- grid
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 30])
def test_grid_is_a_bijection_onto_cells(n):
    x = np.random.default_rng(n).normal(size=(n, 5))
    g = grid_layout(x, seed=0)
    assert g.cells.shape == (n, 2) and g.side * g.side >= n > (g.side - 1) ** 2
    assert len({tuple(c) for c in g.cells}) == n
    assert g.cells.min() >= 0 and g.cells.max() < g.side


def test_grid_assigns_within_facets_above_the_limit():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (25, 4)), rng.normal(8, 1, (15, 4))])
    groups = np.repeat([0, 1], [25, 15])
    g = grid_layout(x, groups, seed=0, limit=12)
    assert g.assignment == "within groups"
    assert len({tuple(c) for c in g.cells}) == 40 and g.cells.max() < g.side == 7


# ---------------------------------------------------------------- statuses
def test_status_dead_unit(tmp_path):
    report = run(nv.UnitCondition(dead_net(), "features.1", 0), chains=2, steps=5)
    assert report.status == "dead_unit" and not report.facets
    assert "never activates" in report.status_reason
    nv.write_report(report, tmp_path / "dead")
    doc = json.loads((tmp_path / "dead" / "facets.json").read_text())
    assert doc["status"] == "dead_unit" and doc["facets"] == [] and doc["grid"] is None
    assert "never activates" in (tmp_path / "dead" / "index.html").read_text()


def test_dead_on_samples_but_alive_on_natural_images_is_not_dead():
    from neurovis.analysis.pipeline import _dead

    never = np.array([-1.0, -0.5, np.nan])
    assert _dead(never, True, None)[0] == "its activation stays ≤ 0 (max -0.5) over all 3 samples"
    dead, note = _dead(never, True, (np.array([-2.0, 3.0]), np.array([0.1, 0.2])))
    assert dead is None and "natural images do (activation up to 3)" in note
    dead, _ = _dead(never, True, (np.array([-2.0, -3.0]), np.array([0.1, 0.2])))
    assert dead.endswith("and all 2 natural images")
    assert _dead(np.full(4, 2.5), False, None)[0].startswith("its activation is constant")
    assert _dead(np.array([-1.0, 0.5]), True, None) == (None, "")


def test_status_nothing_passed_threshold(tmp_path):
    report = run(nv.ClassCondition(strong_net(), 1), chains=2, steps=5, threshold=1.01)
    assert report.status == "nothing_passed_threshold" and report.figures["acceptance_rate"] == 0
    nv.write_report(report, tmp_path / "none")
    doc = json.loads((tmp_path / "none" / "facets.json").read_text())
    validate(doc)
    assert doc["status"] == "nothing_passed_threshold" and doc["counts"]["kept"] == 0
    for src in html_refs(tmp_path / "none" / "index.html").srcs:
        assert (tmp_path / "none" / src).is_file()


def test_status_single_facet():
    report = run(nv.ClassCondition(strong_net(), 1), chains=2, steps=10, n_facets=1)
    assert report.status == "single_facet" and len(report.facets) == 1
    assert report.figures["stability_ari"] is None and report.figures["effective_n_facets"] == 1


def test_one_blob_is_one_facet_two_blobs_are_two():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(120, 6))
    one = cl.cluster(blob, seed=0)
    assert one.k == 1 and one.chosen_by == "null"
    two = cl.cluster(np.concatenate([blob[:60], blob[60:] + 12.0]), seed=0)
    assert two.k == 2 and two.chosen_by == "silhouette"
    assert sorted(np.bincount(two.labels)) == [60, 60]
    assert cl.stability(two.reduced, two.labels, 5, 0)["mean"] > 0.95
    assert cl.cluster(blob[:3]).chosen_by == "too_few_samples"


def test_k_is_the_largest_within_the_tolerance_of_the_best_silhouette():
    flat = {2: 0.31, 3: 0.30, 4: 0.285, 5: 0.27, 6: 0.20}
    assert cl.choose_k(flat) == 4  # 0.285 ≥ 0.31 − 0.03; 0.27 is not
    assert cl.choose_k(flat, tolerance=0.0) == 2  # the best silhouette alone
    assert cl.choose_k({2: 0.2, 3: 0.6, 4: 0.4}) == 3  # a clear best stays
    assert cl.cluster(np.random.default_rng(0).normal(size=(40, 3)), seed=0).describe()["k_tolerance"] == 0.03


def test_diversity_figures():
    assert cl.vendi_score(np.ones((5, 3))) == pytest.approx(1.0)
    assert cl.vendi_score(np.eye(4)) == pytest.approx(4.0)
    assert cl.effective_number([5, 5]) == pytest.approx(2.0)
    assert cl.effective_number([10]) == pytest.approx(1.0)
    assert cl.mean_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert cl.medoid(np.array([[0.0], [1.0], [2.0], [10.0]])) in (1, 2)


# ---------------------------------------------------------------- escaping, writing, natural images
def test_markup_in_names_is_text(tmp_path):
    net = script_net()
    report = run(nv.UnitCondition(net, SCRIPT, 1), chains=2, steps=8, attribution=False, bootstrap=0)
    nv.write_report(report, tmp_path / "u")
    klass = run(nv.ClassCondition(net, 0), chains=2, steps=8, attribution=False, bootstrap=0)
    nv.write_report(klass, tmp_path / "c")
    for folder in ("u", "c"):
        html = (tmp_path / folder / "index.html").read_text()
        assert SCRIPT not in html and "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        doc = json.loads((tmp_path / folder / "facets.json").read_text())
        assert SCRIPT in json.dumps(doc["condition"], ensure_ascii=False)


def test_existing_folder_needs_force(tmp_path, unit_report):
    report, _ = unit_report
    out = tmp_path / "r"
    nv.write_report(report, out)
    with pytest.raises(nv.NeurovisError, match="--force"):
        nv.write_report(report, out)
    (out / "stale.txt").write_text("old")
    nv.write_report(report, out, force=True)
    assert not (out / "stale.txt").exists() and (out / "facets.json").is_file()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(nv.NeurovisError, match="not a neurovis report"):
        nv.write_report(report, other, force=True)
    assert (other / "thesis.tex").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for label in ("dog", "cat"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    nat = load_image_folder(tmp_path, (16, 16))
    assert nat.images.shape == (6, 3, 16, 16) and nat.images.dtype == torch.uint8
    assert nat.label_names == ["cat", "dog"] and sorted(nat.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert "1 unreadable skipped" in nat.source
    with pytest.raises(nv.NeurovisError, match="no such folder"):
        load_image_folder(tmp_path / "missing", (16, 16))
    (tmp_path / "empty").mkdir()
    with pytest.raises(nv.NeurovisError, match="no image files"):
        load_image_folder(tmp_path / "empty", (16, 16))


def test_class_condition_random_nine_come_from_the_class():
    report = run(nv.ClassCondition(strong_net(), "piano"), chains=2, steps=10, natural_images=natural_images(),
                 attribution=False, bootstrap=0)
    nat = report.natural
    assert "'piano'" in nat.random_rule
    assert set(report.natural_images.labels[nat.random].tolist()) == {3}


def test_top_level_api():
    assert nv.facets is facets and nv.FacetReport.__name__ == "FacetReport"
