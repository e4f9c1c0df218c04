"""Scale: several units per batch, torchrun sharding, --resume after SIGKILL, OOM back-off.

Runs that share the batch layout (the same groups of ``--units-per-batch`` units: torchrun
shards, resumed runs) must equal an uninterrupted single-process run bit for bit on any
machine at a fixed thread count (the whole module runs on one thread, as its torchrun and
SIGKILL subprocesses do). Runs with another layout (several units per batch against one at
a time) are equal bit for bit where a matmul row does not depend on the batch size (MKL's
strict CNR mode on Intel CPUs, ``BATCH_INVARIANT``); elsewhere (MKL on an AMD EPYC: rows
differ in the last bit, 1e-7, and a chain can amplify that to 1e-3 in a few steps where a
clip or ReLU boundary is crossed) they must agree to ``LOOSE`` tolerance, which a wrong
unit, random stream or chain order (differences of order 0.1–1) would still fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import neurovis.sampling.batched as multiunit
from neurovis.cli import main
from neurovis.conditions import UnitCondition, UnitsCondition
from neurovis.errors import NeurovisError
from neurovis.sampling.batched import Backoff, plan_groups, sample_units
from neurovis.runs.workfolder import WorkFolder
from neurovis.sampling import sample
from test_reports import strong_net, tiny_prior

TESTS = Path(__file__).parent
ROOT = TESTS.parent
# noise (ε3 > 0) and resets make every chain draw from its random stream all along
BASE = ["--model", "test_reports:strong_net", "--prior", "test_reports:tiny_prior", "--chains", "2", "--steps", "10",
        "--eps", "1e-5,1,0.1", "--reset-every", "4", "--bootstrap", "2", "--pick", "20", "--no-attribution", "--quiet"]
TINY = [*BASE, "--layer", "conv2"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "layer.json").read_text())["units"]


def _batch_invariant() -> bool:
    """Whether a Linear layer gives a row the same bits in a batch of 18 as in one of 3."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        w, x = torch.randn(512, 512, generator=gen), torch.randn(18, 512, generator=gen)
        return torch.equal(x @ w.T, torch.cat([x[i : i + 3] @ w.T for i in range(0, 18, 3)]))
    finally:
        torch.set_num_threads(threads)


BATCH_INVARIANT = _batch_invariant()
LOOSE = dict(rtol=1e-3, atol=5e-3)


@pytest.fixture(scope="module", autouse=True)
def one_thread_module():
    """One thread for every run here, in-process and in subprocesses (``_env``): with
    several threads, oneDNN's convolution backward may sum in another order for another
    batch size, and MKL's rows change with the thread count where strict CNR is not
    honoured (AMD)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _assert_same_layer(a: Path, b: Path, exact: bool = True) -> None:
    """Equal unit rows and bit-identical samples (codes, p, activations) in every unit;
    ``exact=False``: the samples agree to float tolerance (another batch layout on a
    machine whose matmul rows depend on the batch size)."""
    rows = _rows(a)
    if exact:
        assert rows == _rows(b)
    else:
        assert [r["unit"] for r in rows] == [r["unit"] for r in _rows(b)]
    for row in rows:
        with h5py.File(a / row["folder"] / "samples.h5") as f, h5py.File(b / row["folder"] / "samples.h5") as g:
            for name in ("codes", "probs", "activations", "eps1", "kept", "facet"):
                if exact:
                    np.testing.assert_array_equal(f[name][:], g[name][:], err_msg=name)
                elif name in ("codes", "probs", "activations", "eps1"):
                    np.testing.assert_allclose(f[name][:], g[name][:], err_msg=name, **LOOSE)


def _no_leftovers(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".partial")]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """``references(n)``: units 0..3 of conv2, ``n`` units per batch, one process, no
    interruption (``n = 1``: the plain path). Made once per layout."""
    made: dict[int, Path] = {}

    def make(per_batch: int) -> Path:
        if per_batch not in made:
            out = tmp_path_factory.mktemp(f"ref{per_batch}") / "layer"
            assert main(["layer", *TINY, "--units", "0:4", "--units-per-batch", str(per_batch), "--out", str(out)]) == 0
            made[per_batch] = out
        return made[per_batch]

    return make


@pytest.fixture(scope="module")
def reference(references) -> Path:
    return references(1)


# ----------------------------------------------------------------------------- batching
@pytest.mark.parametrize("gradient, position", [("reference", None), ("log_softmax", "mean"), ("softmax", (1, 2))])
def test_units_condition_rows_equal_unit_conditions(gradient, position):
    net, units, chains = strong_net(), (4, 0, 2), 3
    cond = UnitsCondition(net, "conv2", units, chains, position=position, gradient=gradient)
    x = torch.rand(len(units) * chains, 3, 16, 16, requires_grad=True)
    res = cond.evaluate(x, tiny_prior().pixel_space)
    (grad,) = torch.autograd.grad(res.objective.sum(), x)
    for i, unit in enumerate(units):
        rows = slice(i * chains, (i + 1) * chains)
        xi = x.detach()[rows].clone().requires_grad_(True)
        single = UnitCondition(net, "conv2", unit, position=position, gradient=gradient).evaluate(xi, tiny_prior().pixel_space)
        (gi,) = torch.autograd.grad(single.objective.sum(), xi)
        assert torch.equal(res.objective[rows].detach(), single.objective.detach())
        assert torch.equal(res.prob[rows], single.prob) and torch.equal(res.activation[rows], single.activation)
        assert torch.equal(grad[rows], gi)
    same = UnitCondition(net, "conv2", 0, position=position, gradient=gradient)
    assert cond.describe()["units"] == [4, 0, 2] and cond.unit(1).describe() == same.describe()


def test_units_condition_errors():
    net = strong_net()
    with pytest.raises(NeurovisError, match="out of range"):
        UnitsCondition(net, "conv2", (0, 60), 1).evaluate(torch.rand(2, 3, 16, 16), tiny_prior().pixel_space)
    with pytest.raises(NeurovisError, match="batch of 4"):
        UnitsCondition(net, "conv2", (0, 1), 2).evaluate(torch.rand(3, 3, 16, 16), tiny_prior().pixel_space)
    with pytest.raises(NeurovisError, match="int units"):
        UnitsCondition(net, "conv2", (), 2)
    with pytest.raises(NeurovisError, match="units-per-batch"):
        plan_groups([1, 2], 0)
    assert plan_groups([5, 1, 2, 9, 3], 2) == [[5, 1], [2, 9], [3]]


def _assert_same(got: torch.Tensor, ref: torch.Tensor, what: object) -> None:
    """Bit for bit where matmul rows are batch-size invariant, else to float tolerance."""
    if BATCH_INVARIANT or not got.is_floating_point():
        assert torch.equal(got, ref), what
    else:
        torch.testing.assert_close(got, ref, equal_nan=True, msg=str(what), **LOOSE)


def test_batched_sampling_equals_single_unit_runs():
    prior, net = tiny_prior(), strong_net()
    kw = dict(steps=9, eps=(1e-5, 1.0, 0.1), seed=7, reset_every=4, on_nan="mark")
    batched = sample_units(prior, net, "conv2", [3, 0, 5], chains=3, **kw)
    for unit, got in zip([3, 0, 5], batched):
        ref = sample(prior, UnitCondition(net, "conv2", unit), chains=3, progress=False, **kw)
        for name in ("codes", "probs", "activations", "eps1", "failed", "chain_ids"):
            _assert_same(getattr(got, name), getattr(ref, name), name)
        assert got.config["condition"] == ref.config["condition"] and got.config["chain_ids"] == [0, 1, 2]
        assert got.config["batch"]["units"] == [3, 0, 5] and got.condition.describe()["unit"] == unit


def test_batched_glyph_units_equal_single_unit_runs():
    """The shipped glyph model (64×64, Linear layers: MKL's batch-size-dependent kernels)."""
    import neurovis as nv

    try:
        model, prior = nv.load_model("glyphs"), nv.load_prior("glyphs")
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"glyph weights not available ({type(err).__name__})")
    assert os.environ.get("MKL_CBWR")  # set by neurovis.sampling.loop at import
    kw = dict(steps=5, eps=(1e-5, 1.0, 0.5), seed=3, on_nan="mark")
    units = [7, 0, 63, 12, 5, 30]
    batched = sample_units(prior, model, "conv5", units, chains=3, **kw)  # one batch of 18
    for unit, got in zip(units, batched):
        ref = sample(prior, UnitCondition(model, "conv5", unit), chains=3, progress=False, **kw)
        _assert_same(got.codes, ref.codes, unit)
        _assert_same(got.probs, ref.probs, unit)


# ----------------------------------------------------------------------------- out of memory
def test_out_of_memory_halves_the_batch_with_one_warning(monkeypatch):
    prior, net = tiny_prior(), strong_net()
    kw = dict(steps=5, eps=(1e-5, 1.0, 0.1), on_nan="mark")
    ref = sample_units(prior, net, "conv2", [0, 1, 2, 3, 4], chains=2, **kw)
    real, sizes = multiunit.sample, []

    def flaky(prior, condition, chains, **kwargs):
        sizes.append(len(condition.units))
        if len(condition.units) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(prior, condition, chains=chains, **kwargs)

    monkeypatch.setattr(multiunit, "sample", flaky)
    backoff = Backoff(5)
    with pytest.warns(RuntimeWarning, match="out of memory with 5 units") as caught:
        got = sample_units(prior, net, "conv2", [0, 1, 2, 3, 4], chains=2, backoff=backoff, **kw)
    assert len(caught) == 1 and backoff.units_per_batch == 2 and sizes == [5, 2, 2, 1]
    for a, b in zip(got, ref):
        _assert_same(a.codes, b.codes, "codes")
        _assert_same(a.probs, b.probs, "probs")

    monkeypatch.setattr(multiunit, "sample", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))
    with pytest.warns(RuntimeWarning), pytest.raises(NeurovisError, match="out of memory sampling one unit with 2 chains"):
        sample_units(prior, net, "conv2", [0, 1], chains=2, **kw)
    monkeypatch.setattr(multiunit, "sample", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not retried
        sample_units(prior, net, "conv2", [0, 1], chains=2, **kw)


def test_layer_command_survives_out_of_memory(tmp_path, monkeypatch, references):
    real = multiunit.sample
    state = {"raised": False}

    def once(prior, condition, chains, **kwargs):
        if not state["raised"]:
            state["raised"] = True
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(prior, condition, chains=chains, **kwargs)

    monkeypatch.setattr(multiunit, "sample", once)
    out = tmp_path / "layer"
    with pytest.warns(RuntimeWarning, match="retrying with 2 units per batch"):
        assert main(["layer", *TINY, "--units", "0:4", "--units-per-batch", "4", "--out", str(out)]) == 0
    _assert_same_layer(out, references(2))  # the batch of 4 ran as two of 2


# ----------------------------------------------------------------------------- one batch == one unit at a time
def test_layer_units_per_batch_equals_one_at_a_time(tmp_path, reference):
    out = tmp_path / "layer"
    assert main(["layer", *TINY, "--units", "0:4", "--units-per-batch", "8", "--out", str(out)]) == 0
    _assert_same_layer(out, reference, exact=BATCH_INVARIANT)
    _no_leftovers(tmp_path)
    doc = json.loads((out / "unit_0003" / "facets.json").read_text())
    assert doc["reproducibility"]["sampling_config"]["batch"]["units"] == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- resume
class Interrupt(BaseException):
    """Stands for a kill: not an Exception, so nothing catches it on the way out."""


@pytest.mark.parametrize("after", [0, 1, 3])
def test_interrupted_layer_resumes_to_the_same_result(tmp_path, monkeypatch, references, after):
    """Interrupt after ``after`` unit reports (0: during the first group's reports), resume."""
    import neurovis.report.write as render

    real, count = render.write_files, {"n": 0}

    def dying(report, folder):
        if count["n"] == after:
            raise Interrupt
        count["n"] += 1
        return real(report, folder)

    out = tmp_path / "layer"
    args = ["layer", *TINY, "--units", "0:4", "--units-per-batch", "3", "--out", str(out)]
    monkeypatch.setattr(render, "write_files", dying)
    with pytest.raises(Interrupt):
        main(args)
    monkeypatch.setattr(render, "write_files", real)
    work = WorkFolder(out)
    assert not out.exists() and work.done(range(4)) == set(range(after))
    assert len(list((work.path / "chains").glob("*.h5"))) == 1  # the interrupted group's chains are kept
    assert main(args) == 2  # no silent restart
    assert main([*args, "--resume", "--steps", "11"]) == 2  # settings must match
    assert main([*args, "--resume"]) == 0
    _assert_same_layer(out, references(3))
    _no_leftovers(tmp_path)


def test_partial_folder_needs_resume_or_force(tmp_path, capsys, references):
    out = tmp_path / "layer"
    args = ["layer", *TINY, "--units", "0:4", "--out", str(out)]
    WorkFolder(out).prepare({"other": 1}, "fresh")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "--force" in err and "layer.partial" in err
    assert main([*args, "--resume"]) == 2
    assert "--resume: the unfinished run in" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0  # starts over
    _assert_same_layer(out, references(8))  # the default --units-per-batch
    (tmp_path / "stranger.partial").mkdir()
    (tmp_path / "stranger.partial" / "mine.txt").write_text("keep")
    assert main(["layer", *TINY, "--units", "0", "--out", str(tmp_path / "stranger"), "--force"]) == 2
    assert "not a neurovis work folder" in capsys.readouterr().err
    assert (tmp_path / "stranger.partial" / "mine.txt").read_text() == "keep"


def test_sigkilled_layer_resumes_to_the_same_result(tmp_path, references):
    """A real process killed with SIGKILL once its first unit report appears."""
    out = tmp_path / "layer"
    args = ["layer", *TINY, "--units", "0:4", "--units-per-batch", "3", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "neurovis", *args], env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = WorkFolder(out).unit_dir(0)
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert first.is_dir() and not out.exists(), "the run finished (or never started) before the kill"
    work = WorkFolder(out)
    for unit in work.done(range(4)):  # what is there is whole
        json.loads((work.unit_dir(unit) / "facets.json").read_text())
        with h5py.File(work.unit_dir(unit) / "samples.h5") as f:
            assert f["codes"].shape[0] == 2 * 11
    for path in (work.path / "chains").glob("*.h5"):
        with h5py.File(path) as f:
            assert f["codes"].shape[0] == 3 * 2
    assert main([*args, "--resume"]) == 0
    _assert_same_layer(out, references(3))
    _no_leftovers(tmp_path)


def test_facets_resume_reuses_the_chains(tmp_path, monkeypatch):
    import neurovis.report.write as render

    args = ["facets", *TINY, "--unit", "3"]
    ref = tmp_path / "ref"
    assert main([*args, "--out", str(ref)]) == 0
    real = render.write_files
    monkeypatch.setattr(render, "write_files", lambda *a: (_ for _ in ()).throw(Interrupt()))
    out = tmp_path / "f"
    with pytest.raises(Interrupt):
        main([*args, "--out", str(out)])
    monkeypatch.setattr(render, "write_files", real)
    assert WorkFolder(out).group_path([3]).is_file() and main([*args, "--out", str(out)]) == 2
    monkeypatch.setattr("neurovis.sampling.sample", lambda *a, **k: pytest.fail("resumed run sampled again"))
    assert main([*args, "--out", str(out), "--resume"]) == 0
    with h5py.File(ref / "samples.h5") as f, h5py.File(out / "samples.h5") as g:
        assert np.array_equal(f["codes"][:], g["codes"][:]) and np.array_equal(f["facet"][:], g["facet"][:])
    _no_leftovers(tmp_path)


# ----------------------------------------------------------------------------- torchrun
def test_torchrun_two_processes_equal_one(tmp_path, references):
    out = tmp_path / "layer"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "neurovis",
           "layer", *TINY, "--units", "0:4", "--units-per-batch", "2", "--out", str(out)]
    done = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_layer(out, references(2))
    _no_leftovers(tmp_path)
