"""Writing report folders atomically.

A report is written into a hidden staging folder next to the output folder and renamed
into place when complete, so a reader sees either the whole new report or the old one,
never a half-written mix. The staging folder's name carries the writer's host and pid
(``.<name>.<host>-<pid>.XXXX.tmp``); one left by a killed writer is removed by the next
write to the same folder. An existing non-empty output folder is replaced only with
``force``, and only when it is a previous neurovis report (it holds ``facets.json`` or
``layer.json``): ``--force`` never deletes a folder neurovis did not write.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from neurovis.errors import NeurovisError

MARKERS = ("facets.json", "layer.json")


def check_out_dir(out: str | os.PathLike[str], force: bool) -> Path:
    """Raise :class:`NeurovisError` unless a report may be written to ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NeurovisError(f"output {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise NeurovisError(f"output folder {out} exists and is not empty; pass --force to replace it, or choose another --out")
        if not any((out / m).is_file() for m in MARKERS):
            raise NeurovisError(
                f"output folder {out} is not a neurovis report (no {' or '.join(MARKERS)}); "
                "refusing to replace it even with --force: choose another --out"
            )
    return out


def _owner() -> str:
    """``host-pid`` of this process, as staging folder names carry it."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', socket.gethostname())}-{os.getpid()}"


def _staging_prefix(out: Path) -> str:
    return f".{out.name}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def remove_stale_staging(out: str | os.PathLike[str]) -> list[Path]:
    """Delete the staging folders ``.<name>.<host>-<pid>.*.tmp`` of ``out`` that a killed
    run left behind (their pid no longer runs on this host); return them. Staging folders
    of live processes, of other hosts, and anything else are left alone."""
    out = Path(out)
    prefix, me = _staging_prefix(out), _owner()
    host = me.rsplit("-", 1)[0]
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp") and entry.is_dir()):
            continue
        owner = name[len(prefix):-len(".tmp")].rsplit(".", 1)[0]
        owner_host, _, pid = owner.rpartition("-")
        if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_dir(out: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out`` in one rename.

    On error the staging folder is removed and ``out`` is left as it was.
    """
    out = check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(out)}{_owner()}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        check_out_dir(out, force)  # re-check: something may have appeared meanwhile
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
