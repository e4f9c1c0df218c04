"""Reproducibility facts for a report: weight hashes, library versions, device, timings."""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from neurovis._version import __version__

LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "captum", "h5py", "jinja2", "matplotlib", "pillow", "tqdm")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_state(module: nn.Module) -> str:
    """Hex sha256 of a module's ``state_dict`` (names, dtypes, shapes and bytes, in order).

    Independent of where the weights came from: the same weights give the same hash.
    0-dim tensors (BatchNorm's ``num_batches_tracked``) are hashed as their one element;
    every other tensor's bytes are those of its flattened, contiguous copy.
    """
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # view() as bytes needs ≥ 1 dimension; reshape(-1) keeps the bytes of the others
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_identity(role: str, module: nn.Module) -> dict[str, Any]:
    """``{"role", "class", "state_sha256", "file", "file_sha256"}`` of one network.

    ``file`` is the module's ``weights_path`` attribute when it has one (zoo models), or
    that of the network it wraps (``module.model``, e.g. a :class:`~neurovis.LayerEncoder`).
    """
    path = getattr(module, "weights_path", None) or getattr(getattr(module, "model", None), "weights_path", None)
    file_hash = sha256_file(path) if path and Path(path).is_file() else None
    return {
        "role": role,
        "class": type(module).__name__,
        "parameters": int(sum(p.numel() for p in module.parameters())),
        "state_sha256": sha256_state(module),
        "file": str(path) if path else None,
        "file_sha256": file_hash,
    }


def versions() -> dict[str, str | None]:
    """Python, neurovis and library versions."""
    out: dict[str, str | None] = {"python": sys.version.split()[0], "neurovis": __version__}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def device_info(device: torch.device | str) -> dict[str, Any]:
    """The device in words: type, name, threads."""
    device = torch.device(device)
    info: dict[str, Any] = {"device": str(device), "platform": platform.platform(), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda" and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


class Timer:
    """Wall time per named stage, in seconds: ``with timer("cluster"): ...``."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] = round(self.stages.get(stage, 0.0) + time.perf_counter() - start, 4)
