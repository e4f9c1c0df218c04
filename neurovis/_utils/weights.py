"""Reading a weights file: ``torch.load(..., weights_only=True)`` with one-line errors.

Every weights file neurovis reads goes through :func:`load_weights_file`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from neurovis.errors import NeurovisError


def load_weights_file(path: "str | os.PathLike[str]", what: str, advice: str = "", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors that name the file.

    Every weights file neurovis reads goes through here. A file torch refuses because it
    holds pickled code (or objects ``weights_only`` will not build) is reported as such,
    never with torch's hint to re-run with ``weights_only=False``; a file that is not a
    torch file at all (text, an empty file) says so; a damaged archive is named with
    torch's first line.

    Args:
        path: the file (its existence is the caller's to check, with its own advice).
        what: what the file is for, in words (``"weights for alexnet"``, ``"checkpoint"``);
            messages start ``cannot read {what}: ``.
        advice: what to do, appended after ``; `` (optional).
        map_location: as in ``torch.load``.

    Raises:
        NeurovisError: the file could not be read (one line).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one named line
        why = why_unreadable(path, err, zipfile.is_zipfile(path) if path.is_file() else False)
        if why is None:
            text = " ".join(str(err).split()).lower()
            if isinstance(err, pickle.UnpicklingError) and "weights only load failed" in text:
                why = f"{path} is not a plain weights file (it holds pickled code) and was not loaded, for safety"
            else:
                first = " ".join(str(err).split()).split(". ")[0][:160] or type(err).__name__
                why = f"{path} is a damaged or truncated torch weights file ({type(err).__name__}: {first})"
    tail = f"; {advice}" if advice else ""
    raise NeurovisError(f"cannot read {what}: {why}{tail}") from None


def why_unreadable(path: "os.PathLike[str]", err: Exception, is_zip: bool) -> str | None:
    """Why a file that ``torch.load`` failed on is not a torch file at all, in words, or
    ``None`` when it looks like one (a zip archive, or a pickle as old torch wrote)."""
    path = Path(path)
    try:
        head = path.read_bytes()[:512]
    except OSError as io:
        return f"{path} cannot be opened ({io.strerror or io})"
    if not head:
        return f"{path} is empty, not a torch weights file"
    if not (is_zip or head[:4] == b"PK\x03\x04") and head[:1] != b"\x80":  # torch.save writes a zip archive (or, long ago, a pickle)
        kind = "a text file" if _looks_like_text(head) else "neither a zip archive nor a pickle"
        return f"{path} is not a readable torch weights file (it is {kind})"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
