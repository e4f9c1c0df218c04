"""Listing the hookable layers of a model with their output shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from neurovis._utils.torch_utils import module_device
from neurovis.hooks.addressing import layer_aliases
from neurovis.hooks.capture import _first_tensor


@dataclass(frozen=True)
class LayerInfo:
    """One addressable layer: its path, module type, output shape (no batch) and aliases."""

    name: str
    kind: str
    shape: tuple[int, ...] | None
    aliases: tuple[str, ...]

    def __str__(self) -> str:
        shape = "×".join(map(str, self.shape)) if self.shape else "(not run)"
        alias = f"  [{', '.join(self.aliases)}]" if self.aliases else ""
        return f"{self.name:<28} {self.kind:<20} {shape}{alias}"


def list_layers(model: nn.Module, input_size: Sequence[int]) -> list[LayerInfo]:
    """Every named submodule of ``model`` with its output shape for one input.

    Args:
        model: any module; it is run once in eval mode on zeros (its mode is restored).
        input_size: ``(C, H, W)`` (or any per-sample shape) of one input, no batch dim.

    Returns:
        Layers in ``named_modules()`` order; ``shape`` is ``None`` for modules that did not
        run in the forward pass.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    was_training = model.training
    try:
        for name, module in model.named_modules():
            if not name:
                continue

            def hook(_m: nn.Module, _i: object, out: object, _name: str = name) -> None:
                try:
                    shapes.setdefault(_name, tuple(_first_tensor(out).shape[1:]))
                except TypeError:
                    pass

            handles.append(module.register_forward_hook(hook))
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=module_device(model)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    by_path: dict[str, list[str]] = {}
    for alias, path in layer_aliases(model).items():
        by_path.setdefault(path, []).append(alias)
    return [
        LayerInfo(name, type(module).__name__, shapes.get(name), tuple(by_path.get(name, ())))
        for name, module in model.named_modules()
        if name
    ]
