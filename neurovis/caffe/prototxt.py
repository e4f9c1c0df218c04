"""A parser for the protobuf text format of Caffe's ``.prototxt`` files.

The parser knows no schema: it turns text into nested dicts in which every field name maps
to the *list* of its occurrences, in order::

    layer { name: "conv1" type: "Convolution" convolution_param { num_output: 96 } }
    ->  {"layer": [{"name": ["conv1"], "type": ["Convolution"],
                    "convolution_param": [{"num_output": [96]}]}]}

Values are ``str`` (quoted strings and identifiers such as enum names ``MAX``), ``int``,
``float``, ``bool`` (identifiers ``true``/``false``) or ``dict`` (messages). It accepts
``#`` comments, ``'`` and ``"`` strings with C escapes (adjacent strings concatenate),
``{}`` or ``<>`` message delimiters with an optional ``:`` before them, ``[a, b]`` list
shorthand, and ``,``/``;`` separators. :func:`neurovis.caffe.netparam.normalize_text`
applies ``caffe.proto``'s schema to the result.
"""

from __future__ import annotations

import re
from typing import Any

from neurovis.errors import NeurovisError

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![\w.]))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}
_SPECIAL_FLOATS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}


class PrototxtError(NeurovisError):
    """Text that is not valid protobuf text format."""


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            out.append(chr(int(digits.group(), 16)) if digits else nxt)
            i += 2 + (len(digits.group()) if digits else 0)
        elif nxt.isdigit():
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(chr(int(digits.group(), 8)))  # type: ignore[union-attr]
            i += 1 + len(digits.group())  # type: ignore[union-attr]
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    """``(kind, value, line)`` for each token; kinds: string, number, ident, punct."""
    tokens: list[tuple[str, Any, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PrototxtError(f"prototxt line {line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup
        raw = match.group()
        if kind == "string":
            tokens.append(("string", _unescape(raw[1:-1]), line))
        elif kind == "number":
            tokens.append(("number", _number(raw), line))
        elif kind == "ident":
            low = raw.lower().lstrip("-")
            if low in _SPECIAL_FLOATS:
                value = _SPECIAL_FLOATS[low]
                tokens.append(("number", -value if raw.startswith("-") else value, line))
            elif raw.startswith("-"):
                raise PrototxtError(f"prototxt line {line}: unexpected {raw!r}")
            else:
                tokens.append(("ident", raw, line))
        elif kind == "punct":
            tokens.append(("punct", raw, line))
        line += raw.count("\n")
        pos = match.end()
    return tokens


def _number(raw: str) -> int | float:
    text = raw[:-1] if raw[-1] in "fF" and not raw.lower().startswith(("0x", "-0x")) else raw
    if re.fullmatch(r"-?0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def _peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _line(self) -> int:
        tok = self._peek()
        return tok[2] if tok else (self.tokens[-1][2] if self.tokens else 1)

    def _take(self) -> tuple[str, Any, int]:
        tok = self._peek()
        if tok is None:
            raise PrototxtError(f"prototxt line {self._line()}: unexpected end of text (a '}}' missing?)")
        self.pos += 1
        return tok

    def _is(self, *puncts: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "punct" and tok[1] in puncts

    def message(self, close: str | None) -> dict[str, list[Any]]:
        fields: dict[str, list[Any]] = {}
        while True:
            tok = self._peek()
            if tok is None:
                if close is None:
                    return fields
                raise PrototxtError(f"prototxt line {self._line()}: unexpected end of text, expected {close!r}")
            if close is not None and self._is(close):
                self.pos += 1
                return fields
            kind, name, line = self._take()
            if kind != "ident":
                raise PrototxtError(f"prototxt line {line}: expected a field name, got {name!r}")
            if self._is(":"):
                self.pos += 1
                values = self._values(name)
            elif self._is("{", "<"):
                values = [self._submessage()]
            else:
                raise PrototxtError(f"prototxt line {self._line()}: expected ':' or '{{' after {name!r}")
            fields.setdefault(name, []).extend(values)
            if self._is(",", ";"):
                self.pos += 1

    def _submessage(self) -> dict[str, list[Any]]:
        _, opener, _ = self._take()
        return self.message("}" if opener == "{" else ">")

    def _values(self, name: str) -> list[Any]:
        if self._is("{", "<"):
            return [self._submessage()]
        if self._is("["):
            self.pos += 1
            values: list[Any] = []
            while not self._is("]"):
                values.append(self._submessage() if self._is("{", "<") else self._scalar(name))
                if self._is(","):
                    self.pos += 1
                elif not self._is("]"):
                    raise PrototxtError(f"prototxt line {self._line()}: expected ',' or ']' in the list of {name!r}")
            self.pos += 1
            return values
        return [self._scalar(name)]

    def _scalar(self, name: str) -> Any:
        kind, value, line = self._take()
        if kind == "string":
            while (nxt := self._peek()) is not None and nxt[0] == "string":
                value += nxt[1]
                self.pos += 1
            return value
        if kind == "number":
            return value
        if kind == "ident":
            return {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}.get(value, value)
        raise PrototxtError(f"prototxt line {line}: expected a value for {name!r}, got {value!r}")


def parse_prototxt(text: str) -> dict[str, list[Any]]:
    """Protobuf text format -> nested dicts of field name -> list of values (see module doc).

    Raises:
        PrototxtError: (a :class:`~neurovis.errors.NeurovisError`) naming the line.
    """
    return _Parser(text).message(None)
