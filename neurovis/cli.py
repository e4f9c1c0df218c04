"""The ``neurovis`` command line.

Exit codes: 0 success; 1 an unexpected internal error (a bug: please report it with the
traceback that ``NEUROVIS_DEBUG=1`` shows); 2 bad input (a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import __version__
from .errors import NeurovisError


def _size(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 3,224,224, got {text!r}") from None


def _cmd_layers(args: argparse.Namespace) -> int:
    from .hooks import list_layers
    from .zoo import load_model

    model = load_model(args.model)
    size = args.input_size or getattr(model, "input_size", None)
    if size is None:
        raise NeurovisError(f"{args.model} does not declare its input size; pass --input-size C,H,W")
    for info in list_layers(model, size):
        print(info)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurovis", description="What does this neuron respond to? PPGN sampling for PyTorch models.")
    parser.add_argument("--version", action="version", version=f"neurovis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    layers = sub.add_parser("layers", help="list a model's hookable layers with output shapes and aliases")
    layers.add_argument("--model", required=True, help="model name or package.module:factory")
    layers.add_argument("--input-size", type=_size, help="C,H,W of one input (default: the model's own)")
    layers.set_defaults(func=_cmd_layers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurovis`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NeurovisError as err:
        print(f"neurovis: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurovis: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - last line of defence for users
        if os.environ.get("NEUROVIS_DEBUG"):
            raise
        print(f"neurovis: internal error: {type(err).__name__}: {err} (set NEUROVIS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
