"""``neurovis convert-caffe``: Caffe files -> a ``.pt`` (no Caffe needed).

The options and the handler are :mod:`neurovis.caffe.convert`'s own
(:func:`~neurovis.caffe.convert.add_convert_caffe_parser`,
:func:`~neurovis.caffe.convert.run_convert_caffe`); they are added to the command's parser
when it is first used, so ``neurovis --help`` does not import the converter.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "convert a Caffe .prototxt + .caffemodel to a PyTorch .pt (no Caffe needed)"
"""The command's line in ``neurovis --help`` (the converter's own; tests/test_cli.py checks they agree)."""


class _Into:
    """Stands for a sub-parser collection whose ``add_parser`` hands back an existing parser
    (taking the description it is given), so that the converter adds its options there."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.help: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        self.help = kwargs.get("help")
        if kwargs.get("description") is not None:
            self.parser.description = kwargs["description"]
        return self.parser


def add_convert_caffe(p: argparse.ArgumentParser) -> None:
    """The options of ``convert-caffe`` (and its handler), from :mod:`neurovis.caffe.convert`."""
    from neurovis.caffe.convert import add_convert_caffe_parser

    into = _Into(p)
    add_convert_caffe_parser(into)
    p.converter_help = into.help  # type: ignore[attr-defined]  # compared with HELP by the tests
