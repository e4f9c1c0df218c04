"""Bad input to the command line: exit 2, one line that says what was wrong, found before any
work, and nothing left behind that blocks the corrected rerun. Also the import path, the
output folder's lock and the files neurovis may remove or overwrite.

``BAD_INPUT`` is the whole table: (argv, exit code, words the one-line message holds).
In argv, ``{out}`` is the output folder, ``{text}`` a text file, ``{trunc}`` a truncated
torch.save file, ``{small}`` a converted Caffe net reading 1×28×28 and ``{photo}`` a photo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from neurovis.cli import main
from neurovis.errors import NeurovisError
from neurovis.runs.workfolder import RunLock, lock_path

TINY = ["--model", "test_reports:strong_net", "--prior", "test_reports:tiny_prior", "--chains", "2", "--steps", "3",
        "--bootstrap", "0", "--no-attribution", "--quiet"]
FACETS = ["facets", *TINY, "--layer", "conv2", "--unit", "1"]
GLYPH_TRAIN = ["train-prior", "--encoder", "test_cli_train_prior:encoder", "--code-layer", "fc6", "--data", "world",
               "--steps", "1", "--batch-size", "2", "--device", "cpu", "--quiet"]

BAD_INPUT = [
    # values found only after sampling today (leaving <out>.partial), now before any work
    (["facets", *TINY, "--layer", "conv2", "--unit", "60"], 2, ["out of range"]),
    ([*FACETS, "--eps", "nan,1,0"], 2, ["--eps", "finite"]),
    ([*FACETS, "--eps", "1e-5,-1,0"], 2, ["--eps", "≥ 0"]),
    ([*FACETS, "--lr", "nan"], 2, ["--lr", "finite"]),
    ([*FACETS, "--lr", "0"], 2, ["--lr", "> 0"]),
    ([*FACETS, "--rule", "mala", "--step-size", "nan"], 2, ["--step-size", "finite"]),
    ([*FACETS, "--rule", "mala", "--bounds", "1,0"], 2, ["--bounds"]),
    ([*FACETS, "--threshold", "nan"], 2, ["--threshold", "[0, 1]"]),
    ([*FACETS, "--threshold", "1.5"], 2, ["--threshold", "[0, 1]"]),
    ([*FACETS, "--steps", "0"], 2, ["--steps must be ≥ 1"]),
    ([*FACETS, "--threads", "0"], 2, ["--threads must be ≥ 1"]),
    (["layer", *TINY, "--layer", "conv2", "--units", "0:2", "--units-per-batch", "0"], 2, ["--units-per-batch"]),
    (["sample", *TINY, "--class", "0", "--class", "1", "--class-weights", "1,nan"], 2, ["--class-weights"]),
    (["inpaint", *TINY, "--image", "{photo}", "--mask", "1,1,4,4", "--class", "0", "--eps4", "nan"], 2, ["--eps4"]),
    ([*GLYPH_TRAIN, "--lr", "inf"], 2, ["--lr", "finite"]),
    ([*GLYPH_TRAIN, "--w-gan", "-1"], 2, ["--w-gan"]),
    # sizes and weights files
    (["layers", "--model", "glyphs", "--input-size", "3,0,0"], 2, ["--input-size", "≥ 1"]),
    (["layers", "--model", "glyphs", "--weights", "{text}"], 2, ["{text}", "not a readable torch weights file", "text"]),
    (["layers", "--model", "glyphs", "--weights", "{trunc}"], 2, ["{trunc}"]),
    (["facets", "--model", "glyphs", "--weights", "{text}", "--layer", "conv5", "--unit", "0"], 2, ["{text}"]),
    (["layers", "--model", "caffenet", "--weights", "{text}"], 2, ["{text}"]),
    (["layers", "--model", "caffenet", "--weights", "{small}", "--input-size", "3,227,227"], 2,
     ["does not run on a 3,227,227 input", "--input-size"]),
    # usage errors: one line and where to look, not the whole usage
    (["facets", *TINY, "--unit", "1"], 2, ["required: --layer", "neurovis facets --help"]),
    ([*FACETS, "--no-such-option"], 2, ["unrecognized arguments", "neurovis facets --help"]),
    ([*FACETS, "--chains", "many"], 2, ["--chains", "invalid int value"]),
    (["layers", "--model", "glyphs", "--input-size", "3,x"], 2, ["--input-size", "comma-separated ints"]),
    (["nosuchcommand"], 2, ["invalid choice", "neurovis --help"]),
]


def small_caffe_net(folder: Path) -> tuple[Path, Path]:
    """A tiny Caffe net (prototxt, caffemodel) reading 1×28×28: conv1 (4 maps), relu1, fc8 (10)."""
    from test_caffe import write_net

    rng = np.random.default_rng(0)
    layers = [
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 4, "kernel_size": 3},
         "blobs": [rng.standard_normal((4, 1, 3, 3)).astype(np.float32), np.zeros(4, np.float32)]},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "fc8", "type": "InnerProduct", "bottom": "conv1", "top": "fc8", "inner_product_param": {"num_output": 10},
         "blobs": [rng.standard_normal((10, 4 * 26 * 26)).astype(np.float32) * 0.01, np.zeros(10, np.float32)]},
    ]
    return write_net(folder, layers, 2, {"data": (1, 1, 28, 28)}, tag="small")


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    from PIL import Image

    from neurovis.caffe import convert_caffe

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "notes.pt").write_text("these are not weights\n")
    torch.save({"w": torch.zeros(100)}, inputs / "whole.pt")
    data = (inputs / "whole.pt").read_bytes()
    (inputs / "trunc.pt").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(inputs / "photo.png")
    proto, weights = small_caffe_net(inputs)
    convert_caffe(proto, weights, inputs / "small.pt")
    return {"text": str(inputs / "notes.pt"), "trunc": str(inputs / "trunc.pt"), "small": str(inputs / "small.pt"),
            "photo": str(inputs / "photo.png"), "out": str(tmp_path / "x")}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("neurovis: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, code, words", BAD_INPUT, ids=[" ".join(a[:1] + a[-2:]) for a, _, _ in BAD_INPUT])
def test_bad_input_table(tmp_path, files, capsys, argv, code, words):
    argv = [a.format(**files) for a in argv]
    if argv[0] in ("facets", "layer", "sample", "inpaint", "train-prior"):
        argv += ["--out", files["out"]]
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == code
    err = _one_line_error(capsys)
    for word in words:
        assert word.format(**files) in err, (word, err)
    assert sorted(os.listdir(tmp_path)) == before  # no output, work folder, lock or staging folder


def test_corrected_rerun_after_an_out_of_range_unit_just_works(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["facets", *TINY, "--layer", "conv2", "--unit", "60", "--out", str(out)]) == 2
    assert "out of range" in _one_line_error(capsys)
    assert main([*FACETS, "--out", str(out)]) == 0  # no --force, no --resume needed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into: a read-only one, or /sys when root ignores modes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").mkdir()
    except OSError:
        return folder
    (folder / "probe").rmdir()
    try:
        os.mkdir("/sys/neurovis-probe")
    except OSError:
        return Path("/sys")
    os.rmdir("/sys/neurovis-probe")
    pytest.skip("no unwritable folder here")


def test_unwritable_out_fails_up_front_with_exit_2(tmp_path, capsys, monkeypatch):
    folder = _unwritable_folder(tmp_path)
    sampled = []
    import neurovis.sampling

    real = neurovis.sampling.sample
    monkeypatch.setattr(neurovis.sampling, "sample", lambda *a, **k: sampled.append(1) or real(*a, **k))
    try:
        assert main([*FACETS, "--out", str(folder / "sub" / "r")]) == 2
        err = _one_line_error(capsys)
        assert "not writable" in err and str(folder) in err and not sampled
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o755)


# ------------------------------------------------------------------------------- import path
PLANTED = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
raise SystemExit("the planted {name} ran")
"""


@pytest.mark.parametrize("how", ["console-script", "python -m"])
def test_current_folder_cannot_shadow_libraries_but_factories_there_load(tmp_path, how):
    """A run from a folder holding jinja2.py, matplotlib.py, PIL.py and h5py.py, as the
    console script (sys.path[0] is the script's folder) and as ``python -m neurovis``
    (Python puts the folder first): a report is written with the real libraries, and
    --model mymod:factory from that folder still loads."""
    tests = Path(__file__).resolve().parent
    work = tmp_path / "cwd"
    work.mkdir()
    # under -m, what `import neurovis` loads (torch, numpy, h5py) is loaded before main() can act
    for name in ("jinja2", "matplotlib", "PIL") + (("h5py",) if how == "console-script" else ()):
        (work / f"{name}.py").write_text(PLANTED.format(marker=str(tmp_path / f"{name}.ran"), name=name))
    (work / "mymod.py").write_text(textwrap.dedent("""
        import helper_next_to_it  # a sibling module, imported at import time

        def factory():
            import test_reports  # the tests folder is on PYTHONPATH
            return test_reports.strong_net()
    """))
    (work / "helper_next_to_it.py").write_text("VALUE = 1\n")
    script = tmp_path / "bin" / "neurovis_entry.py"  # like the console script: its own folder is sys.path[0]
    script.parent.mkdir()
    script.write_text("import sys\nfrom neurovis.cli import main\nsys.exit(main())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests.parent), str(tests)]), OMP_NUM_THREADS="1")
    out = tmp_path / "report"
    entry = [str(script)] if how == "console-script" else ["-m", "neurovis"]
    done = subprocess.run([sys.executable, *entry, "facets", "--model", "mymod:factory", "--prior",
                           "test_reports:tiny_prior", "--layer", "conv2", "--unit", "1", "--chains", "2", "--steps", "2",
                           "--bootstrap", "0", "--no-attribution", "--quiet", "--out", str(out)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == []
    assert (out / "index.html").is_file() and (out / "img" / "thumbnail.png").is_file()


def test_factory_from_the_current_folder_leaves_sys_path_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "cwd_factory_mod.py").write_text("from test_cli import factory\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    assert main(["layers", "--model", "cwd_factory_mod:factory"]) == 0
    assert "features.2" in capsys.readouterr().out
    assert sys.path == before and str(tmp_path) not in sys.path


# ------------------------------------------------------------------------------- files
def test_stale_staging_folders_are_removed_live_ones_kept(tmp_path):
    from neurovis._utils.files import _owner

    host = _owner().rsplit("-", 1)[0]
    dead = _dead_pid()
    stale = tmp_path / f".s.{host}-{dead}.abcd1234.tmp"
    live = tmp_path / f".s.{host}-{os.getpid()}.efgh5678.tmp"
    other = tmp_path / ".s.otherhost-1.ijkl9012.tmp"
    for folder in (stale, live, other):
        (folder / "img").mkdir(parents=True)
    assert main(["sample", *TINY, "--class", "0", "--out", str(tmp_path / "s")]) == 0
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "s" / "facets.json").is_file()


def test_train_prior_force_never_overwrites_a_users_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "losses.csv").write_text("my,own,numbers\n")
    (out / "notes.txt").write_text("mine")
    assert main([*GLYPH_TRAIN, "--out", str(out), "--force"]) == 2
    err = _one_line_error(capsys)
    assert "losses.csv" in err and "--force" in err
    assert (out / "losses.csv").read_text() == "my,own,numbers\n" and sorted(os.listdir(out)) == ["losses.csv", "notes.txt"]
    (out / "losses.csv").unlink()  # other files only: --force may use the folder
    assert main([*GLYPH_TRAIN, "--out", str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "generator.pt").is_file()


# ------------------------------------------------------------------------------- locks
def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _plant_lock(out: Path, pid: int, host: str | None = None) -> Path:
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "neurovis.lock", "pid": pid, "host": host or socket.gethostname(),
                                "since": "2026-01-01T00:00:00+00:00", "command": "neurovis facets ...", "nonce": "x"}))
    return path


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_running_one(tmp_path, capsys, live_pid):
    out = tmp_path / "r"
    lock = _plant_lock(out, live_pid)
    assert main([*FACETS, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert f"pid {live_pid} on {socket.gethostname()}" in err and "since 2026-01-01" in err
    assert not out.exists() and lock.is_file()
    assert main(["sample", *TINY, "--class", "0", "--out", str(out)]) == 2  # every writer, not only facets
    assert f"pid {live_pid}" in _one_line_error(capsys)


def test_force_and_resume_never_touch_a_folder_a_live_run_holds(tmp_path, capsys, live_pid):
    out = tmp_path / "l"
    work = tmp_path / "l.partial"
    work.mkdir()
    (work / "run.json").write_text(json.dumps({"format": "neurovis.work", "settings": {}}))
    (work / "unit_0000").mkdir()
    _plant_lock(out, live_pid)
    for extra in (["--force"], ["--resume"]):
        assert main(["layer", *TINY, "--layer", "conv2", "--units", "0:2", "--out", str(out), *extra]) == 2
        assert f"pid {live_pid}" in _one_line_error(capsys)
        assert (work / "unit_0000").is_dir() and (work / "run.json").is_file()


def test_a_stale_lock_of_a_dead_run_is_taken_over_and_released(tmp_path):
    out = tmp_path / "r"
    lock = _plant_lock(out, _dead_pid())
    assert main([*FACETS, "--out", str(out)]) == 0
    assert (out / "facets.json").is_file() and not lock.exists()


def test_a_lock_of_another_host_is_not_taken_over(tmp_path, capsys):
    out = tmp_path / "r"
    lock = _plant_lock(out, 1, host="elsewhere.example")
    assert main([*FACETS, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "on elsewhere.example" in err and str(lock) in err


def test_run_lock_is_exclusive_and_released():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        with RunLock(out, "first") as first:
            assert first.held and json.loads(lock_path(out).read_text())["pid"] == os.getpid()
            with pytest.raises(NeurovisError, match=f"pid {os.getpid()}"):
                RunLock(out, "second").acquire()
        assert not lock_path(out).exists()
