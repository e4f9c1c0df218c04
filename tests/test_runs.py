"""The workflows of :mod:`neurovis.runs`, called from Python (no command line): a whole-layer
audit on the glyph world that resumes after an interruption and refuses to overwrite, and
one-unit and one-class reports."""

from __future__ import annotations

import json

import pytest

import neurovis as nv
from neurovis.errors import NeurovisError
from neurovis.runs.facets import ReportRun, run_facets, run_sample
from neurovis.runs.layer import LayerRun, run_layer
from neurovis.runs.workfolder import WorkFolder, lock_path

TINY = dict(chains=2, steps=3, report={"bootstrap": 0, "attribution": False, "pick": 20}, progress=False)


class Interrupt(BaseException):
    """Stands for a kill: not an Exception, so nothing catches it on the way out."""


@pytest.fixture(scope="module")
def glyphs():
    return nv.load_model("glyphs"), nv.load_prior("glyphs")


def _docs(out, units):
    return {u: json.loads((out / f"unit_{u:04d}" / "facets.json").read_text()) for u in units}


def test_run_layer_resumes_skips_done_units_and_refuses_to_overwrite(tmp_path, monkeypatch, glyphs):
    import neurovis.report.write as render

    model, prior = glyphs
    reference = run_layer(model, prior, "conv5", range(3), tmp_path / "ref", units_per_batch=2, **TINY)
    assert isinstance(reference, LayerRun) and reference.index == tmp_path / "ref" / "index.html"
    assert reference.index.is_file() and (tmp_path / "ref" / "layer.json").is_file()
    assert reference.done == (0, 1, 2) and reference.skipped == ()
    assert sorted(reference.reports) == [0, 1, 2] and all(p.is_dir() for p in reference.reports.values())
    assert set(reference.statuses) == {0, 1, 2} and set(reference.failed) <= {0, 1, 2}
    assert reference.summary().startswith(f"{tmp_path / 'ref'}/index.html: 3 unit reports (")

    out = tmp_path / "audit"
    real, count = render.write_files, {"n": 0}

    def dying(report, folder):
        if count["n"] == 1:
            raise Interrupt
        count["n"] += 1
        return real(report, folder)

    monkeypatch.setattr(render, "write_files", dying)
    with pytest.raises(Interrupt):
        run_layer(model, prior, "conv5", [0, 1, 2], out, units_per_batch=2, **TINY)
    monkeypatch.setattr(render, "write_files", real)
    assert not out.exists() and WorkFolder(out).done(range(3)) == {0} and not lock_path(out).exists()

    with pytest.raises(NeurovisError, match="used steps|used sampling"):  # other settings: no silent mix
        run_layer(model, prior, "conv5", [0, 1, 2], out, units_per_batch=2, **{**TINY, "steps": 4})
    with pytest.raises(NeurovisError, match="--resume"):  # resume=False: refused, as the command does
        run_layer(model, prior, "conv5", [0, 1, 2], out, units_per_batch=2, resume=False, **TINY)

    resumed = run_layer(model, prior, "conv5", [0, 1, 2], out, units_per_batch=2, **TINY)  # resume=True by default
    assert resumed.skipped == (0,) and resumed.done == (1, 2) and resumed.index.is_file()
    assert not WorkFolder(out).path.exists()
    mine, ref = _docs(out, range(3)), _docs(tmp_path / "ref", range(3))
    for unit in range(3):  # the interrupted, resumed run equals the uninterrupted one
        assert mine[unit]["status"] == ref[unit]["status"]
        assert mine[unit]["figures"]["acceptance_rate"] == ref[unit]["figures"]["acceptance_rate"]

    with pytest.raises(NeurovisError, match="exists and is not empty; pass --force"):
        run_layer(model, prior, "conv5", [0, 1, 2], out, **TINY)
    again = run_layer(model, prior, "conv5", [1], out, force=True, **TINY)
    assert again.done == (1,) and sorted(p.name for p in out.glob("unit_*")) == ["unit_0001"]


def test_run_layer_refuses_bad_units_before_any_work(tmp_path, glyphs):
    model, prior = glyphs
    for units in ([], [-1], ["x"]):
        with pytest.raises(NeurovisError, match="units"):
            run_layer(model, prior, "conv5", units, tmp_path / "a", **TINY)
    with pytest.raises(NeurovisError, match="out of range"):
        run_layer(model, prior, "conv5", [0, 100000], tmp_path / "a", **TINY)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_run_facets_and_run_sample_write_reports(tmp_path, glyphs):
    model, prior = glyphs
    unit = run_facets(model, prior, "conv5", 3, tmp_path / "unit", **TINY)
    assert isinstance(unit, ReportRun) and unit.index.is_file() and not unit.resumed
    assert json.loads((tmp_path / "unit" / "facets.json").read_text())["status"] == unit.report.status
    assert not WorkFolder(tmp_path / "unit").path.exists()
    with pytest.raises(NeurovisError, match="pass --force"):
        run_facets(model, prior, "conv5", 3, tmp_path / "unit", **TINY)
    klass = run_sample(prior, nv.ClassCondition(model, 2), tmp_path / "class", seed=1, **TINY)
    assert klass.index.is_file() and klass.report.status in klass.summary()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["class", "unit"]  # no lock files or work folders left


def test_run_options_object_and_keywords_give_the_same_run(tmp_path, glyphs):
    """RunOptions is the one definition of what runs share: an object, keywords, or both
    (keywords win) give the same chains; a misspelt option is one line naming the fields."""
    from neurovis.runs.options import RunOptions

    model, prior = glyphs
    by_keywords = run_sample(prior, nv.ClassCondition(model, 2), tmp_path / "kw", seed=1, **TINY)
    base = RunOptions(**{**TINY, "seed": 7, "chains": 5})
    by_object = run_sample(prior, nv.ClassCondition(model, 2), tmp_path / "obj", base, seed=1, chains=2)
    assert by_object.report.selection.n_samples == by_keywords.report.selection.n_samples == 2 * (3 + 1)
    a = json.loads((tmp_path / "kw" / "facets.json").read_text())
    b = json.loads((tmp_path / "obj" / "facets.json").read_text())
    assert (a["counts"], a["figures"], a["facets"]) == (b["counts"], b["figures"], b["facets"])
    sa, sb = a["reproducibility"]["sampling_config"], b["reproducibility"]["sampling_config"]
    assert (sa["seed"], sa["chains"], sa["steps"]) == (sb["seed"], sb["chains"], sb["steps"]) == (1, 2, 3)
    with pytest.raises(NeurovisError, match="unknown run option 'chain'.*chains, steps"):
        run_sample(prior, nv.ClassCondition(model, 2), tmp_path / "bad", chain=2)
    with pytest.raises(NeurovisError, match="options must be a RunOptions"):
        run_sample(prior, nv.ClassCondition(model, 2), tmp_path / "bad", {"chains": 2})
    assert not (tmp_path / "bad").exists()
    assert RunOptions(steps=5, sampling={"on_nan": "raise", "eps": (1e-5, 1, 0)}).sample_kwargs() == {
        "on_nan": "raise", "steps": 5, "seed": 0, "preset": None, "eps": (1e-5, 1, 0)}
