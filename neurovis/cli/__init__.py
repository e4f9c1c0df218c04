"""The ``neurovis`` command line.

Commands::

    neurovis facets  --model M --layer L --unit K      one unit: chains -> facets -> report
    neurovis layer   --model M --layer L --units 0:16  one report per unit + a sortable index
    neurovis sample  --model M --class C [--class C2]  a class (several: all at once) -> report
    neurovis inpaint --model M --image P --mask x,y,w,h --class C   PPGN-context -> report
    neurovis layers  --model M                          hookable layers, shapes, aliases
    neurovis train-prior --encoder E --code-layer fc6 --data DIR --out DIR   train a prior
    neurovis convert-caffe --prototxt P --caffemodel W --out F.pt   Caffe files -> .pt (no Caffe)

``--model`` takes a registered name (``glyphs`` runs offline out of the box; ``caffenet``
once converted), a torchvision model name (weights from torchvision's cache, never
downloaded; ``--weights FILE`` loads a state dict instead) or ``package.module:factory``
(a function returning an ``nn.Module``). The prior comes from ``--prior`` (a registered
name such as ``glyphs`` or ``caffenet-fc6``, or ``package.module:factory`` returning a
:class:`~neurovis.Prior`), by default the model's own (glyphs, caffenet).

A report folder (``--out``) holds ``index.html`` (opens from disk, offline),
``facets.json``, ``samples.h5`` and ``img/*.png``; it is written atomically, and an existing
folder is replaced only with ``--force`` (and only if it is a neurovis report). Progress
bars go to stderr (``--quiet`` silences them and the summary line). Every option, the unit
range and the output folder are checked before any sampling; a run refused for bad input
leaves nothing behind. One run at a time writes an output: a second one is refused while
the lock file ``.<out>.lock`` names a live run. ``--threads N`` fixes torch's CPU threads.
See docs/errors.md.

The package is a thin front end: :mod:`neurovis.cli.args` (the parser, value types, option
groups, checks), :mod:`neurovis.cli.commands` (``layers``, ``facets``, ``layer``, ``sample``,
``inpaint``: each calls one workflow of :mod:`neurovis.runs`), :mod:`neurovis.cli.train_prior`
and :mod:`neurovis.cli.convert_caffe`. Importing it and building the parser imports neither
torch nor numpy; a command's options are added when it runs or shows its help.

Exit codes: 0 success (the report was written, whatever its status: read ``status`` in
``facets.json``); 1 an unexpected internal error (a bug: please report it with the
traceback that ``NEUROVIS_DEBUG=1`` shows); 2 bad input (a one-line message on stderr);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from neurovis._version import __version__
from neurovis.cli import commands, convert_caffe, train_prior
from neurovis.cli.args import DEFAULT_OUT, Parser, add_threads, parse_units, slug, validate
from neurovis.cli.commands import load_prior, run_method
from neurovis.cli.commands import sample_chains as _sample
from neurovis.cli.commands import setup as _setup
from neurovis.errors import NeurovisError

__all__ = ["DEFAULT_OUT", "build_parser", "load_prior", "main", "parse_units", "run_method", "slug"]

_COMMANDS: list[tuple[str, str, Any]] = [
    *((name, commands.HELP[name], add) for name, add in commands.COMMANDS.items()),
    ("train-prior", train_prior.HELP, train_prior.add_train_prior),
    ("convert-caffe", convert_caffe.HELP, convert_caffe.add_convert_caffe),
]
"""``(name, one-line help, the function adding its options)`` in the order of ``--help``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``neurovis`` parser; each command's options are added when it is first parsed or
    its help is formatted (``parser.commands[name].build()`` adds them now)."""
    parser = Parser(
        prog="neurovis", description="What does this neuron respond to? PPGN sampling and facet reports for PyTorch models.",
        epilog="Exit codes: 0 success, 1 internal error (NEUROVIS_DEBUG=1 shows the traceback), 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"neurovis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help, add in _COMMANDS:
        sub.add_parser(name, help=help).defer(lambda p, add=add: (add(p), add_threads(p)))
    parser.commands = dict(sub.choices)
    return parser


def __getattr__(name: str) -> Any:
    if name == "compute_info":  # its home is the runs (it imports torch)
        from neurovis.runs.facets import compute_info

        return compute_info
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _threads(args: argparse.Namespace) -> int | None:
    """``--threads N``: torch's CPU threads for the whole run (before any work); returns the
    previous count (``main`` puts it back afterwards, for callers in the same process)."""
    if not getattr(args, "threads", None):
        return None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    return previous


def _drop_cwd_of_dash_m() -> None:
    """``python -m neurovis`` puts the current folder first on ``sys.path`` (Python does, unless
    ``-P``); take it off again so that files there cannot shadow the libraries neurovis
    imports from here on. (Modules imported before ``main`` runs are already loaded; the
    ``neurovis`` console script never had the folder on the path.)"""
    main_file = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    package = Path(__file__).resolve().parent.parent
    if main_file is None or main_file.name != "__main__.py" or main_file.parent.resolve() != package:
        return
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurovis`` console script; returns the exit code.

    The import path is left as it is: ``--model package.module:factory`` finds a module in
    the current folder without putting that folder on ``sys.path`` for everything else
    (see :func:`neurovis.zoo.import_factory`).
    """
    if argv is None:
        _drop_cwd_of_dash_m()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help, --version (0) and usage errors (2, one line already printed)
        return exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 2
    args.command_line = "neurovis " + shlex.join(argv)
    threads = None
    try:
        validate(args)
        threads = _threads(args)
        return args.func(args)
    except NeurovisError as err:
        print(f"neurovis: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurovis: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - last line of defence for users
        if os.environ.get("NEUROVIS_DEBUG"):
            raise
        print(f"neurovis: internal error: {type(err).__name__}: {' '.join(str(err).split())} "
              "(set NEUROVIS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
