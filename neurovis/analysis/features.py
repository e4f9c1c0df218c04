"""The feature space in which facets are found and diversity is measured.

=============  ==========================================================================
name           features of one sample
=============  ==========================================================================
``code``       the chain's code ``h``, flattened (default for code priors; for a
               :class:`~neurovis.GeneratorPrior` this is the code space of its encoder E,
               e.g. post-ReLU fc6)
``pixels``     the RGB image in [0, 1], area-downsampled to at most 16×16, flattened
               (default for pixel priors, whose "code" is the image itself)
``network``    the condition network's hidden feature maps (the default for code priors
               with a unit or class condition): the last :data:`NETWORK_LAYERS` activation
               layers with 4-D output ``(N, C, H, W)`` that run before the condition reads
               the network (for a unit: up to and including its layer), each averaged and
               max-pooled over positions (``2·C`` numbers, so a facet does not depend on
               where in the image it is drawn), standardised over the samples and weighted
               by ``1/√(2·C)`` so that every layer counts alike, side by side (see
               :func:`network_features`). Where the network has no such layers: ``layer``
``layer``      the condition network's own features: the condition layer's output for a
               unit, the input of the last linear layer for a class (see
               :func:`model_features`)
callable       ``fn(codes (N, *code), images (N, 3, H, W) float RGB [0, 1]) -> (N, D)``
=============  ==========================================================================
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurovis._utils.torch_utils import module_device
from neurovis.conditions import (
    ClassCondition,
    CombinedCondition,
    Condition,
    InpaintCondition,
    UnitCondition,
    _model_input,
)
from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer
from neurovis.hooks.capture import hooked, run_to
from neurovis.method import FEATURE_SPACES
from neurovis.pixels import PixelSpace
from neurovis.priors.base import Prior

FeatureFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PIXEL_SIDE = 16
NETWORK_LAYERS = 3
"""How many of the condition network's last activation layers ``network`` features read."""
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
               nn.Hardswish, nn.Tanh, nn.Sigmoid)
"""Module types that count as activation layers for ``network`` features."""


@dataclass
class Features:
    """Features of ``N`` samples: ``values (N, D)`` float32 plus what they are."""

    name: str
    description: str
    values: np.ndarray

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "dims": int(self.values.shape[1])}


def default_feature_name(prior: Prior | None, condition: Condition | None = None) -> str:
    """``"pixels"`` for pixel priors; for code priors ``"network"`` when the condition reads a
    unit or class of a network (:func:`_base_condition`), else ``"code"``.

    Why ``network``: on the glyph world (16 classes, the default sampler, chain seed 0) the
    facets' NMI against the oracle's modes is 0.59 in code space and 0.69 on the
    classifier's last three activation layers, pooled (``bench/facet_features.py``)."""
    if prior is not None and getattr(prior, "space", "h") == "x":
        return "pixels"
    return "network" if condition is not None and _base_condition(condition) is not None else "code"


def compute_features(
    spec: str | FeatureFn | None,
    codes: torch.Tensor,
    images: torch.Tensor,
    prior: Prior | None,
    condition: Condition | None,
    batch_size: int = 64,
) -> Features:
    """Features of samples given their codes ``(N, *code)`` and images ``(N, 3, H, W)``.

    Args:
        spec: ``None`` (the prior's default), ``"code"``, ``"pixels"``, ``"layer"`` or a
            callable (see the module docstring).
        codes: the samples' chain codes (pixel priors: the images in the prior's space).
        images: the same samples as RGB images ``(N, 3, H, W)``, uint8 (0–255) or float
            in [0, 1]; converted batch by batch.
        prior, condition: needed for ``"layer"`` (and to choose the default).
    """
    name = spec if isinstance(spec, str) or spec is None else "custom"
    name = default_feature_name(prior, condition) if name is None else name
    if callable(spec):
        values = spec(codes, _as_rgb01(images))
        if not isinstance(values, torch.Tensor) or values.dim() != 2 or values.shape[0] != codes.shape[0]:
            raise NeurovisError(f"the feature function must return a tensor (N, D) for N={codes.shape[0]} samples")
        desc = f"user feature function {getattr(spec, '__name__', type(spec).__name__)}"
        return Features("custom", desc, values.detach().float().cpu().numpy())
    if name == "code":
        kind = (prior.describe().get("treatment") if prior is not None else None) or "the prior"
        desc = (
            f"the chain code h ({'×'.join(map(str, codes.shape[1:]))}) of {kind}"
            + (", i.e. the encoder E's code space" if prior is not None and hasattr(prior, "encoder") else "")
        )
        return Features("code", desc, codes.reshape(codes.shape[0], -1).float().numpy())
    if name == "pixels":
        return Features("pixels", f"RGB image in [0, 1] area-downsampled to at most {PIXEL_SIDE}×{PIXEL_SIDE}",
                        pixel_features(images))
    if name == "network":
        if condition is None or prior is None:
            raise NeurovisError("features='network' needs chains with their prior and condition attached")
        values, desc = network_features(condition, images, prior.pixel_space, batch_size)
        if values is None:
            values, desc = model_features(condition, images, prior.pixel_space, batch_size)
            if values is None:
                raise NeurovisError(f"features='network' is not available for a {type(condition).__name__}; "
                                    "use 'code' or 'pixels'")
            return Features("layer", desc, values)
        return Features("network", desc, values)
    if name == "layer":
        if condition is None or prior is None:
            raise NeurovisError("features='layer' needs chains with their prior and condition attached")
        values, desc = model_features(condition, images, prior.pixel_space, batch_size)
        if values is None:
            raise NeurovisError(f"features='layer' is not available for a {type(condition).__name__}; use 'code' or 'pixels'")
        return Features("layer", desc, values)
    raise NeurovisError(f"unknown feature space {name!r}; use {', '.join(FEATURE_SPACES)} or a function")


def _as_rgb01(images: torch.Tensor) -> torch.Tensor:
    """uint8 0–255 -> float [0, 1]; float images pass through (as float32)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def pixel_features(images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """``(N, 3, H, W)`` RGB (uint8 or [0, 1]) -> ``(N, 3·s·s)``, area-downsampled to ``s ≤ 16``."""
    h, w = images.shape[-2:]
    size = (min(PIXEL_SIDE, h), min(PIXEL_SIDE, w))
    out = [F.adaptive_avg_pool2d(_as_rgb01(images[i : i + batch_size]), size).flatten(1)
           for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 3 * size[0] * size[1]), np.float32)


def _base_condition(condition: Condition) -> Condition | None:
    """The unit or class condition a report can read features from, if any."""
    if isinstance(condition, (UnitCondition, ClassCondition)):
        return condition
    if isinstance(condition, InpaintCondition):
        return _base_condition(condition.condition)
    if isinstance(condition, CombinedCondition):
        for part in condition.conditions:
            found = _base_condition(part)
            if found is not None:
                return found
    return None


class _Stop(Exception):
    pass


@contextmanager
def _linear_input(module: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, inputs: tuple) -> None:
        store["x"] = inputs[0].detach().flatten(1)
        raise _Stop

    handle = module.register_forward_pre_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def model_features(
    condition: Condition, images: torch.Tensor, space: PixelSpace, batch_size: int = 64
) -> tuple[np.ndarray | None, str]:
    """The condition network's own features of images ``(N, 3, H, W)`` RGB, uint8 or in [0, 1].

    The images are put into the prior's pixel ``space`` (what the network saw while
    sampling) and through the same conversion the condition applies. A unit condition
    reads its layer's output (all channels and positions, flattened); a class condition
    the input of the model's last ``nn.Linear`` (the penultimate features), or the logits
    if it has none. Returns ``(values (N, D) float32 or None, description)``.
    """
    base = _base_condition(condition)
    if base is None:
        return None, f"no network features for a {type(condition).__name__}"
    model = base.model  # type: ignore[attr-defined]
    device = module_device(model)
    last_linear = None
    if isinstance(base, ClassCondition):
        linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        last_linear = linears[-1] if linears else None
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x = space.from_rgb01(_as_rgb01(images[start : start + batch_size]).to(device))
                x = _model_input(model, x, space, base.input_space)  # type: ignore[attr-defined]
                if isinstance(base, UnitCondition):
                    feats = run_to(model, x, [base.layer])[base.layer].flatten(1)
                elif last_linear is not None:
                    with _linear_input(last_linear[1]) as store:
                        try:
                            model(x)
                        except _Stop:
                            pass
                    feats = store["x"]
                else:
                    feats = model(x).flatten(1)
                out.append(feats.float().cpu())
    finally:
        model.train(was_training)
    if isinstance(base, UnitCondition):
        desc = f"output of layer {base.layer!r} of {type(model).__name__} (all channels and positions)"
    elif last_linear is not None:
        desc = f"input of {type(model).__name__}'s last linear layer {last_linear[0]!r} (penultimate features)"
    else:
        desc = f"logits of {type(model).__name__}"
    values = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
    return values, desc


def network_layers(condition: Condition, x: torch.Tensor) -> list[str]:
    """The layers ``network`` features read for ``condition``, from one forward of ``x``
    (one image in the network's input space): the last :data:`NETWORK_LAYERS` activation
    modules (:data:`ACTIVATIONS`) with a 4-D output, in the order they first run, that run
    no later than the unit's layer (all of them for a class); a unit's own layer is one of
    them when its output is 4-D. Empty when there are none (e.g. a transformer)."""
    base = _base_condition(condition)
    model = base.model  # type: ignore[union-attr]
    names = [n for n, m in model.named_modules() if n and isinstance(m, ACTIVATIONS)]
    unit_layer = base.layer if isinstance(base, UnitCondition) else None
    if unit_layer is not None:
        unit_layer = resolve_layer(model, unit_layer)[0]
        names = [n for n in names if n != unit_layer] + [unit_layer]
    with torch.no_grad(), hooked(model, names) as store:
        model(x)
    order = list(store)  # first firing order
    if unit_layer is not None and unit_layer in order:
        order = order[: order.index(unit_layer) + 1]
        if store[unit_layer].dim() != 4:
            order = order[:-1]
    return [n for n in order if store[n].dim() == 4][-NETWORK_LAYERS:]


def network_features(
    condition: Condition, images: torch.Tensor, space: PixelSpace, batch_size: int = 64
) -> tuple[np.ndarray | None, str]:
    """``network`` features (see the module docstring) of images ``(N, 3, H, W)`` RGB, uint8
    or in [0, 1], put into the prior's pixel ``space`` and the condition's input as while
    sampling. Returns ``(values (N, D) float32, description)``, or ``(None, why)`` when the
    condition reads no network or the network has no 4-D activation layers."""
    base = _base_condition(condition)
    if base is None:
        return None, f"no network features for a {type(condition).__name__}"
    model = base.model  # type: ignore[attr-defined]
    device = module_device(model)
    was_training = model.training
    model.eval()
    blocks: list[list[torch.Tensor]] = []
    layers: list[str] = []
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                x = space.from_rgb01(_as_rgb01(images[start : start + batch_size]).to(device))
                x = _model_input(model, x, space, base.input_space)  # type: ignore[attr-defined]
                if not layers:
                    layers = network_layers(condition, x[:1])
                    if not layers:
                        return None, f"{type(model).__name__} has no activation layer with a 4-D output"
                    blocks = [[] for _ in layers]
                out = run_to(model, x, layers)
                for block, name in zip(blocks, layers):
                    a = out[name].float()
                    block.append(torch.cat([a.mean((2, 3)), a.amax((2, 3))], 1).cpu())
    finally:
        model.train(was_training)
    if not layers:
        return np.zeros((0, 0), np.float32), "no samples"
    parts = []
    for block in blocks:
        v = torch.cat(block).double()
        v = v - v.mean(0)
        sd = v.std(0, unbiased=False)
        v = v / torch.where(sd > 1e-8, sd, torch.ones_like(sd))
        parts.append(v / np.sqrt(v.shape[1]))
    values = torch.cat(parts, 1).float().numpy()
    desc = (f"feature maps of {type(model).__name__} at {', '.join(repr(n) for n in layers)}, each averaged and "
            "max-pooled over positions, standardised and weighted equally")
    return values, desc
