import subprocess
import sys

import pytest

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


def test_import_and_parser_load_neither_torch_nor_numpy():
    """``neurovis --help`` stays instant: importing the CLI, building its parser and printing
    the top-level help import no heavy library (each command's options come when it runs)."""
    code = (
        "import sys, contextlib, io\n"
        "import neurovis.cli\n"
        "parser = neurovis.cli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = neurovis.cli.main(['--help'])\n"
        "assert code == 0 and 'convert-caffe' in out.getvalue(), out.getvalue()\n"
        "heavy = ('torch', 'numpy', 'scipy', 'sklearn', 'captum', 'jinja2', 'h5py', 'PIL', 'matplotlib')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("command", ["facets", "layer", "sample", "inpaint", "layers"])
def test_each_sampling_commands_help_loads_no_torch(command):
    """``neurovis facets --help`` is as quick as ``neurovis --help``: the options' choices
    (rules, presets, gradients, feature spaces) come from :mod:`neurovis.method`, not from
    the modules that use them; the report's default feature space, ``network``, is a choice."""
    code = (
        "import sys, contextlib, io\n"
        "import neurovis.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        f"    neurovis.cli.main([{command!r}, '--help'])\n"
        "print(repr(out.getvalue()))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    text, loaded = done.stdout.strip().splitlines()
    assert loaded == "[]" and "--threads" in text
    if command in ("facets", "layer", "sample", "inpaint"):
        assert "{network,code,pixels,layer}" in text and "faithful" in text


def test_every_command_builds_its_options_on_first_use():
    from neurovis.cli import build_parser
    from neurovis.cli.convert_caffe import HELP

    parser = build_parser()
    for name, command in parser.commands.items():
        assert "--threads" in command.format_help(), name
    assert parser.commands["convert-caffe"].converter_help == HELP  # the converter's own line, listed lazily
    args = parser.parse_args(["layer", "--model", "glyphs", "--layer", "conv5"])
    assert args.units == "0:16" and args.units_per_batch == 8 and callable(args.func)
