import subprocess
import sys

from neurovis.cli import main


def factory():
    from conftest import TinyNet

    model = TinyNet()
    model.input_size = (3, 16, 16)
    return model


def test_layers_lists_shapes_and_aliases(capsys):
    assert main(["layers", "--model", "test_cli:factory"]) == 0
    out = capsys.readouterr().out
    assert "features.2" in out and "6×8×8" in out and "[conv2]" in out


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert main(["layers", "--model", "nosuchmodule:make"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurovis: error: cannot import 'nosuchmodule'") and err.count("\n") == 1
    assert main(["layers", "--model", "nothing"]) == 2
    assert "unknown model 'nothing'" in capsys.readouterr().err


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "neurovis", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("neurovis ")
