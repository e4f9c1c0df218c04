"""The output folder of a run: checked before any work, locked while the run writes it.

* :func:`check_output`: the folder may be made (or, with ``force``, replaced: only a
  neurovis report) and its parent is writable; raises :class:`~neurovis.NeurovisError`.
* :class:`OutputLock`: ``with OutputLock(out, command):`` holds the run lock of ``out``
  (:class:`~neurovis.runs.workfolder.RunLock`) and removes the folders it had to create for
  the lock file when the run leaves them empty (a refused run leaves nothing behind).
* :func:`discard_on_bad_input`: a work folder made by a run that then fails on bad input is
  deleted (it could only block the corrected rerun).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from neurovis._utils.files import check_out_dir
from neurovis.errors import NeurovisError
from neurovis.runs.workfolder import RunLock, WorkFolder, is_main_rank


def check_writable(out: str | os.PathLike[str]) -> None:
    """Raise :class:`NeurovisError` unless ``out`` (a folder or file to be made) can be
    written: its nearest existing ancestor must be a folder in which a file can be made."""
    out = Path(out)
    folder = out.parent if not out.is_dir() else out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NeurovisError(f"cannot write {out}: {folder} is not a folder; choose another --out")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".neurovis-probe-", dir=folder))
    except OSError as err:
        raise NeurovisError(f"cannot write {out}: {folder} is not writable ({err.strerror}); choose another --out") from None


def check_output(out: str | os.PathLike[str], force: bool) -> Path:
    """``out`` as a :class:`Path`, checked before any work: a report folder that may be
    replaced (``force``, and only a neurovis report) or made, in a writable place."""
    out = Path(out)
    check_out_dir(out, force)
    check_writable(out)
    return out


class OutputLock:
    """``with OutputLock(out, command):`` holds the :class:`~neurovis.runs.workfolder.RunLock`
    of ``out`` for the body; folders it had to create for the lock file are removed again if
    the run leaves them empty (a run refused for bad input leaves nothing behind)."""

    def __init__(self, out: str | os.PathLike[str], command: str = "") -> None:
        self.lock = RunLock(out, command)
        self.created: list[Path] = []
        folder = self.lock.path.parent
        while not folder.exists() and folder != folder.parent:
            self.created.append(folder)
            folder = folder.parent

    def __enter__(self) -> "OutputLock":
        self.lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
        for folder in self.created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break


@contextmanager
def discard_on_bad_input(work: WorkFolder, mode: str) -> Iterator[None]:
    """Delete ``work`` when the body fails on bad input (:class:`NeurovisError`) in a run that
    made it (``mode`` not ``"resume"``): its settings cannot be resumed with the fix, so it
    would only block the corrected rerun. Interrupted or crashed runs keep it for resuming."""
    try:
        yield
    except NeurovisError:
        if mode != "resume" and is_main_rank():
            work.discard()
        raise
