"""Scoped forward hooks that capture layer outputs.

Hooks are registered only on the requested modules, inside a context manager, and removed
in ``finally`` even when the forward raises. When every requested layer has produced its
output the forward is stopped early (as Caffe's ``forward(end=...)`` does), so a conv5
condition does not pay for fc6..fc8.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer


class _StopForward(Exception):
    """Raised inside a hook once every requested layer has been captured."""


def _first_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict):
        for value in output.values():
            if isinstance(value, torch.Tensor):
                return value
    raise TypeError(f"layer output of type {type(output).__name__} holds no tensor")


@contextmanager
def hooked(
    model: nn.Module, layers: Sequence[str], stop_early: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Capture the outputs of ``layers`` (paths or aliases) during forwards in the block.

    Yields a dict filled during each forward: requested name -> output tensor (a clone, so
    a following in-place ReLU cannot overwrite it; the first tensor of a tuple output).
    With ``stop_early`` the forward raises an internal signal once every layer fired; use
    :func:`run_to`, which catches it, rather than setting this yourself.
    """
    wanted = list(dict.fromkeys(layers))
    store: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in wanted:
            _, module = resolve_layer(model, name)

            def hook(_mod: nn.Module, _inp: object, out: object, _name: str = name) -> None:
                store[_name] = _first_tensor(out).clone()
                if stop_early and len(store) == len(wanted):
                    raise _StopForward

            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def run_to(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Forward ``x`` until every layer in ``layers`` has produced its output; return them.

    The forward stops early after the last requested layer fires. A layer that never fires
    (not on the forward path) is reported as an error naming it.
    """
    with hooked(model, layers, stop_early=True) as store:
        try:
            model(x)
        except _StopForward:
            pass
    missing = [n for n in dict.fromkeys(layers) if n not in store]
    if missing:
        raise NeurovisError(
            f"layer(s) {', '.join(missing)} of {type(model).__name__} did not run in the forward "
            "pass; pick a layer on the path from input to output"
        )
    return dict(store)
