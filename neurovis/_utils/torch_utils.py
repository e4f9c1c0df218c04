"""Small torch helpers: where tensors live (taken from the model, never from a global) and
holding modules in eval mode."""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a parameterless one)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Hold ``modules`` in eval mode inside the block, restoring each one's mode after."""
    modes = [(m, m.training) for m in modules]
    try:
        for m, _ in modes:
            m.eval()
        yield
    finally:
        for m, was in modes:
            m.train(was)
