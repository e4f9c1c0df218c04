"""Work folders that let long runs survive being killed (``--resume``).

A run writing the report folder ``out`` works in ``<out>.partial/`` next to it::

    <out>.partial/
        run.json              the settings that decide the results (the marker of the folder)
        unit_0007/            a finished unit's report (appears in one rename)
        chains/*.h5           chains of a sampled group of units not yet all reported
        .*.tmp                half-written files and folders (removed when a run resumes)

Every file appears atomically (written under a hidden temporary name, then renamed), so a
run killed at any moment (even by SIGKILL) leaves only complete files plus temporaries.
A resumed run (same settings) skips the finished units, reloads sampled chains, and at the
end the work folder is renamed into place as ``out``. Results equal an uninterrupted run's:
each unit's chains depend only on the settings and the unit (see :mod:`neurovis.sampling.batched`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from neurovis._utils.files import atomic_write_text, check_out_dir
from neurovis.chains import Chains, load_chains
from neurovis.errors import NeurovisError
from neurovis.report.layer_index import unit_folder

MARKER = "run.json"
SUFFIX = ".partial"
WORK_FORMAT = "neurovis.work"
GROUP_FORMAT = "neurovis.unit_group"


# options that do not change the results (command-line names): a run may resume with other values
NOT_SETTINGS = frozenset({"func", "command", "command_line", "resume", "force", "quiet", "out", "units_per_batch", "device",
                          "progress"})


def _normal(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))


def run_settings(options: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """The options of a run that decide its results (everything but :data:`NOT_SETTINGS`
    and callables), JSON-normalised, with ``overrides`` (e.g. the parsed unit list) on top.

    ``options`` is a plain mapping of option name to value (the command line passes
    ``vars(args)``)."""
    settings = {k: v for k, v in dict(options).items() if k not in NOT_SETTINGS and not callable(v)}
    settings.update(overrides)
    return _normal(settings)


def _follow_umask(folder: Path) -> None:
    """Give a ``mkdtemp`` folder (mode 0700) the mode any new folder gets (0777 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


class WorkFolder:
    """The work folder ``<out>.partial`` of the report folder ``out``.

    ``settings`` (a plain, JSON-able dict: what decides the results, e.g. from
    :func:`run_settings`) is what :meth:`check` compares with a run to resume and what
    :meth:`prepare` records; either may also be given it directly.

    Use: :meth:`check` (read-only, on every process) says whether to start fresh, resume or
    start over, or raises; :meth:`prepare` (one process) makes the folder; workers then
    :meth:`write_unit` and :meth:`save_group`; :meth:`finish` renames it to ``out``.
    """

    def __init__(self, out: str | os.PathLike[str], settings: Mapping[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.path = self.out.with_name(self.out.name + SUFFIX)
        self.settings: dict[str, Any] = _normal(dict(settings or {}))

    # ------------------------------------------------------------------ lifecycle
    def check(self, settings: Mapping[str, Any] | None = None, resume: bool = False, force: bool = False) -> str:
        """``"fresh"`` (no work folder), ``"resume"`` or ``"restart"`` (``force``, discard it).
        ``settings``: default the folder's own (given to the constructor).

        Raises:
            NeurovisError: a work folder exists and neither ``resume`` nor ``force`` is given,
                it is not a neurovis work folder, or (``resume``) its settings differ.
        """
        if not self.path.exists():
            return "fresh"
        saved = self._read_marker()
        if resume:
            ours, theirs = _normal(dict(self.settings if settings is None else settings)), saved.get("settings", {})
            for key in sorted(set(ours) | set(theirs)):
                if ours.get(key) != theirs.get(key):
                    raise NeurovisError(
                        f"--resume: the unfinished run in {self.path} used {key}={theirs.get(key)!r}, not "
                        f"{ours.get(key)!r}; rerun with its settings, or pass --force without --resume to start over"
                    )
            return "resume"
        if force:
            return "restart"
        raise NeurovisError(f"an unfinished run is in {self.path}; pass --resume to continue it or --force to start over")

    def _read_marker(self) -> dict[str, Any]:
        marker = self.path / MARKER
        try:
            doc = json.loads(marker.read_text())
            if doc.get("format") != WORK_FORMAT:
                raise ValueError
            return doc
        except (OSError, ValueError):
            raise NeurovisError(
                f"{self.path} exists but is not a neurovis work folder (no valid {MARKER}); move it away or choose another --out"
            ) from None

    def prepare(self, settings: Mapping[str, Any] | None = None, mode: str = "fresh") -> None:
        """Create the work folder (``fresh``), empty it first (``restart``) or tidy it (``resume``);
        ``settings`` (default the folder's own) are recorded in its marker."""
        settings = dict(self.settings if settings is None else settings)

        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a killed prepare's leftovers
            shutil.rmtree(stale, ignore_errors=True)
        if mode == "restart":
            self._read_marker()  # only ever delete a folder neurovis made
            trash = self.path.with_name(f".{self.path.name}.old-{uuid.uuid4().hex[:8]}.tmp")
            os.replace(self.path, trash)  # gone in one step: never a half-deleted work folder
            shutil.rmtree(trash, ignore_errors=True)
        if mode in ("fresh", "restart"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
            _follow_umask(tmp)  # mkdtemp makes 0700 folders; the report folder is an ordinary one
            atomic_write_text(tmp / MARKER, json.dumps({"format": WORK_FORMAT, "settings": _normal(settings)}, indent=1) + "\n")
            os.replace(tmp, self.path)  # the folder appears with its marker, or not at all
        else:
            self.clean_temporaries()

    def clean_temporaries(self) -> None:
        """Remove the half-written leftovers of a killed run (hidden ``.*.tmp`` entries)."""
        for folder in (self.path, self.path / "chains"):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)

    def finish(self, force: bool) -> Path:
        """Rename the work folder to ``out`` (replacing an old report only with ``force``)."""
        shutil.rmtree(self.path / "chains", ignore_errors=True)
        check_out_dir(self.out, force)
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(self.out, old)
            os.replace(self.path, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.out)
        (self.out / MARKER).unlink(missing_ok=True)
        return self.out

    def discard(self) -> None:
        """Delete the work folder (its results are in place elsewhere)."""
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)

    # ------------------------------------------------------------------ units
    def unit_dir(self, unit: int) -> Path:
        return self.path / unit_folder(unit)

    def done(self, units: Sequence[int]) -> set[int]:
        """The units among ``units`` whose report is finished."""
        return {u for u in units if (self.unit_dir(u) / "facets.json").is_file()}

    def write_unit(self, unit: int, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Run ``write(folder)`` into a hidden staging folder, then rename it to ``unit_NNNN``."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{unit_folder(unit)}.", suffix=".tmp", dir=self.path))
        _follow_umask(tmp)
        try:
            doc = write(tmp)
            os.replace(tmp, self.unit_dir(unit))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return doc

    def unit_doc(self, unit: int) -> dict[str, Any]:
        """The ``facets.json`` document of a finished unit."""
        return json.loads((self.unit_dir(unit) / "facets.json").read_text())

    # ------------------------------------------------------------------ chain checkpoints
    def group_path(self, units: Sequence[int]) -> Path:
        return self.path / "chains" / f"units_{units[0]:04d}_{units[-1]:04d}_{len(units)}.h5"

    def save_group(self, units: Sequence[int], chains: Sequence[Chains]) -> Path:
        """Save the chains of a group of units (one :class:`Chains` per unit) in one HDF5 file."""
        group = Chains(
            torch.cat([c.codes for c in chains]), torch.cat([c.probs for c in chains]),
            torch.cat([c.activations for c in chains]), torch.cat([c.eps1 for c in chains]),
            torch.cat([c.failed for c in chains]), torch.cat([c.chain_ids for c in chains]),
            {"format": GROUP_FORMAT, "units": [int(u) for u in units], "chains_per_unit": [c.n_chains for c in chains],
             "unit_configs": [c.config for c in chains]},
        )
        return group.save(self.group_path(units))

    def load_group(self, units: Sequence[int], prior: Any, conditions: Sequence[Any]) -> list[Chains] | None:
        """The saved chains of ``units`` (one per unit, with ``prior`` and ``conditions``
        attached), or ``None`` when no complete checkpoint of exactly these units exists."""
        path = self.group_path(units)
        if not path.is_file():
            return None
        try:
            group = load_chains(path)
        except NeurovisError:
            return None
        cfg = group.config
        if cfg.get("format") != GROUP_FORMAT or cfg.get("units") != [int(u) for u in units]:
            return None
        out, start = [], 0
        for n, config, condition in zip(cfg["chains_per_unit"], cfg["unit_configs"], conditions):
            rows = slice(start, start + n)
            out.append(Chains(group.codes[rows], group.probs[rows], group.activations[rows], group.eps1[rows],
                              group.failed[rows], group.chain_ids[rows], config, prior, condition))
            start += n
        return out

    def drop_group(self, units: Sequence[int]) -> None:
        """Delete a group's checkpoint once all its units are reported."""
        self.group_path(units).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------- locking
LOCK_FORMAT = "neurovis.lock"


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of the output ``out``: ``.<name>.lock`` next to it. One lock covers
    ``out``, its work folder ``<out>.partial`` and its staging folders."""
    out = Path(os.path.abspath(out))  # "." and "runs/.." have a name once absolute
    return out.with_name(f".{out.name}.lock")


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs on this host (``kill(pid, 0)``)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True


def is_main_rank() -> bool:
    """Under torchrun only rank 0 takes locks (every rank works on the same folders)."""
    return os.environ.get("RANK", "0") in ("", "0")


class RunLock:
    """An exclusive lock on the output ``out`` of one run (the file ``.<name>.lock`` next to it).

    The lock file is created with ``O_EXCL`` and holds the owner's pid, host, start time and
    command; it is removed when the run ends (``release``, or leaving the ``with`` block,
    also on errors and Ctrl-C). A run killed outright (SIGKILL, power loss) leaves its lock
    file behind: a later run takes it over when its pid no longer runs on this host. A lock
    of another host is never taken over (its pid cannot be checked from here): the message
    says which file to delete once that run is known to be gone.
    """

    def __init__(self, out: str | os.PathLike[str], command: str = "") -> None:
        self.out = Path(out)
        self.path = lock_path(self.out)
        self.command = command
        self.held = False

    def acquire(self) -> "RunLock":
        """Take the lock or raise :class:`NeurovisError` naming the run that holds it."""
        if not is_main_rank():
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {"format": LOCK_FORMAT, "pid": os.getpid(), "host": socket.gethostname(),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": self.command, "nonce": uuid.uuid4().hex}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # vanished or half-written right now: look again
                    continue
                if holder.get("host") == mine["host"] and not pid_alive(int(holder.get("pid", -1))):
                    self.path.unlink(missing_ok=True)  # stale: its owner died without releasing it
                    continue
                raise NeurovisError(
                    f"{self.out} is in use by another neurovis run (pid {holder.get('pid')} on {holder.get('host')}, "
                    f"since {holder.get('since')}); wait for it to finish, or choose another --out"
                    + ("" if holder.get("host") == mine["host"] else f" (delete {self.path} if that run is gone)")
                ) from None
            except PermissionError:
                raise NeurovisError(f"cannot create the lock file {self.path}: the folder {self.path.parent} is not "
                                    "writable; choose another --out") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(mine) + "\n")
            self.held, self._nonce = True, mine["nonce"]
            return self
        raise NeurovisError(f"could not take the lock {self.path} (it keeps changing); try again")

    def _holder(self) -> dict[str, Any] | None:
        """The lock file's owner, or ``None`` if the file vanished meanwhile. A file that
        stays empty or unreadable is a leftover (the owner died between creating and
        writing it) and reads as a dead owner on this host."""
        for attempt in range(2):
            try:
                doc = json.loads(self.path.read_text())
                int(doc["pid"])
                return doc
            except FileNotFoundError:
                return None
            except (OSError, ValueError, KeyError, TypeError):
                if attempt == 0:
                    time.sleep(0.05)  # perhaps created a moment ago and not yet written
        return {"pid": -1, "host": socket.gethostname(), "since": "?"}

    def release(self) -> None:
        """Remove the lock file if this run holds it."""
        if not self.held:
            return
        self.held = False
        try:
            if json.loads(self.path.read_text()).get("nonce") == self._nonce:
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
