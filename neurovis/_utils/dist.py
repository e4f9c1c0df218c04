"""Running a command as several processes under ``torchrun`` (one per device).

``torchrun --nproc_per_node N -m neurovis layer ...`` starts ``N`` copies with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` in the environment. :func:`context` joins them in a
``torch.distributed`` process group (NCCL on CUDA, gloo on the CPU); the work is shared out
with :func:`shard` and the processes meet at :meth:`Dist.barrier`. Without those variables
(a plain run) everything here is a no-op with one process of rank 0.

The processes share the output's file system (one machine, or a shared disk).
"""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence, TypeVar

import torch

from neurovis.errors import NeurovisError

T = TypeVar("T")
TIMEOUT_ENV = "NEUROVIS_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 24 * 3600  # ranks wait for the slowest one at the end of a long layer


@dataclass
class Dist:
    """This process's place among the processes of a run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every process gets here (no-op for one process)."""
        if self.world == 1 or self.backend is None:
            return
        import torch.distributed as dist

        if self.backend == "nccl" and self.device is not None and self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()


def env_world() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from torchrun's environment (``(0, 1, 0)`` if absent)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise NeurovisError("WORLD_SIZE, RANK and LOCAL_RANK must be integers; launch with torchrun") from None
    if world < 1 or not 0 <= rank < world:
        raise NeurovisError(f"RANK={rank} does not fit WORLD_SIZE={world}; launch with torchrun")
    return rank, world, local


def local_device_name(name: str) -> str:
    """The ``--device`` this process should use: under torchrun, ``auto``/``cuda`` become
    ``cuda:LOCAL_RANK`` when CUDA is available (one device per process)."""
    rank, world, local = env_world()
    if world > 1 and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local % torch.cuda.device_count()}"
    return name


@contextmanager
def context(device: torch.device) -> Iterator[Dist]:
    """Join the process group of a torchrun launch for the block (or stand alone)."""
    rank, world, local = env_world()
    if world == 1:
        yield Dist(device=device)
        return
    import torch.distributed as dist

    # NCCL needs one GPU per process; processes sharing a GPU (or on CPUs) meet over gloo
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    own_gpu = device.type == "cuda" and torch.cuda.device_count() >= local_world
    backend = "nccl" if own_gpu and dist.is_nccl_available() else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = _dt.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend, timeout=timeout)
    else:
        backend = dist.get_backend()
    try:
        yield Dist(dist.get_rank(), dist.get_world_size(), local, backend, device)
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """This rank's share of ``items``: every ``world``-th one from ``rank`` (round robin)."""
    return list(items[rank::world])
