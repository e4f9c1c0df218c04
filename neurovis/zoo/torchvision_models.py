"""Torchvision classifiers by name, with their weights from torchvision's own cache.

``load_torchvision("alexnet")`` builds torchvision's architecture and loads the weights
file torchvision itself would download, from ``$TORCH_HOME/hub/checkpoints/`` (default
``~/.cache/torch/hub/checkpoints/``), with ``torch.load(..., weights_only=True)``. Nothing
is downloaded: without the file the error says where it looked and how to get it. The
model carries ``class_names`` (the weights' categories, so ``--class volcano`` works),
``pixel_space`` (RGB, [0, 1] then ImageNet mean/std, at the weights' crop size, 224 for
most) and ``input_size`` ``(3, H, W)``; AlexNet, VGG, ResNet and GoogLeNet get Caffe-style
layer aliases (``conv5``, ``pool5``, ``fc6``...).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurovis._utils.weights import load_weights_file
from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import register_aliases
from neurovis.pixels import TORCHVISION_IMAGENET
from neurovis.zoo.registry import ModelEntry, register_model_source

# Builder keyword arguments torchvision itself passes when it loads pretrained weights.
_PRETRAINED_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}


def torchvision_names() -> list[str]:
    """Names of torchvision's image classification models (``alexnet``, ``vgg16``...)."""
    import torchvision

    _register_all_aliases()
    return sorted(torchvision.models.list_models(module=torchvision.models))


def cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``torch.hub.get_dir()/checkpoints``
    (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def default_weights(name: str) -> Any:
    """Torchvision's ``DEFAULT`` weights enum entry for model ``name``."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def cached_weights_path(name: str) -> Path:
    """The file torchvision would download for ``name``'s default weights (may not exist)."""
    return cache_dir() / os.path.basename(default_weights(name).url)


def _missing_weights_message(name: str, path: Path) -> str:
    return (
        f"no weights for {name}: looked for {path} (TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}); "
        f"pass --weights FILE (a state dict), or on a machine with internet run "
        f"`python -c \"import torchvision; torchvision.models.get_model('{name}', weights='DEFAULT')\"` "
        f"and copy {path.name} into {path.parent}; --random-weights runs untrained (smoke tests only)"
    )


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (``weights_only=True``); unwraps ``{"state_dict": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise NeurovisError(f"weights file {path} for {what} does not exist; check the path")
    state = load_weights_file(path, f"weights for {what}", "pass a plain state dict file")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NeurovisError(f"{path} is not a state dict (name -> tensor) for {what}")
    return state


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], what: str, source: Path) -> None:
    """``model.load_state_dict(state)`` (strict) with a one-line error on a mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise NeurovisError(f"weights {source} do not fit {what}: " + "; ".join(parts) + "; pass weights for this architecture")
    model.load_state_dict(state)


def load_torchvision(name: str, weights: str | Path | None = None, random_weights: bool = False) -> nn.Module:
    """Torchvision model ``name`` with weights, in eval mode.

    Args:
        name: a torchvision classification model name (``alexnet``, ``vgg16``, ``resnet50``...).
        weights: a state dict file for the architecture; default torchvision's cached file.
        random_weights: build untrained (explicit, for smoke runs); ``weights`` must be None.

    Raises:
        NeurovisError: unknown name, missing cached weights (the message names the file
            and how to get it), or weights that do not fit.
    """
    import torchvision

    if name not in torchvision_names():
        raise NeurovisError(f"{name!r} is not a torchvision classification model; see torchvision.models.list_models()")
    meta = default_weights(name)
    categories = list(meta.meta.get("categories") or [])
    kwargs = dict(_PRETRAINED_KWARGS.get(name, {}))
    model = torchvision.models.get_model(name, weights=None, num_classes=len(categories) or 1000, **kwargs)
    if not random_weights:
        path = Path(weights) if weights is not None else cached_weights_path(name)
        if weights is None and not path.is_file():
            raise NeurovisError(_missing_weights_message(name, path))
        load_state_into(model, read_state_dict(path, name), name, path)
    _drop_aux(model)
    crop = _crop_size(meta)
    model.class_names = categories
    model.pixel_space = TORCHVISION_IMAGENET.with_size((crop, crop))
    model.input_size = (3, crop, crop)
    model.zoo_name = name
    if name.startswith("vgg"):
        model.layer_aliases = vgg_aliases(model)
    return model.eval()


def _drop_aux(model: nn.Module) -> None:
    """GoogLeNet/Inception: keep only the main classifier (as torchvision does after loading)."""
    if hasattr(model, "aux_logits") and getattr(model, "aux_logits"):
        model.aux_logits = False
        for attr in ("aux1", "aux2", "AuxLogits"):
            if hasattr(model, attr):
                setattr(model, attr, None)


def _crop_size(weights: Any) -> int:
    transform = weights.transforms()
    crop = getattr(transform, "crop_size", [224])
    return int(crop[0] if isinstance(crop, (list, tuple)) else crop)


# ----------------------------------------------------------------------------- aliases
def _features_aliases(features: nn.Sequential, vgg: bool) -> dict[str, str]:
    """Caffe-style names for a ``features`` stack: conv1..conv5 (AlexNet) or conv1_1..
    conv5_3 (VGG), relu likewise, pool1..pool5."""
    out: dict[str, str] = {}
    block, conv_in_block, last_conv = 1, 0, None
    for i, module in enumerate(features):
        path = f"features.{i}"
        if isinstance(module, nn.Conv2d):
            conv_in_block += 1
            last_conv = f"conv{block}_{conv_in_block}" if vgg else f"conv{block}"
            out[last_conv] = path
            if not vgg:
                block += 1
        elif isinstance(module, nn.ReLU) and last_conv is not None:
            out["relu" + last_conv[4:]] = path
        elif isinstance(module, nn.MaxPool2d):
            # AlexNet pools after conv1, conv2 and conv5: name each after its conv.
            out[f"pool{block if vgg else int(last_conv[4:])}" if last_conv else f"pool{i}"] = path
            if vgg:
                block += 1
                conv_in_block = 0
    return out


def _classifier_aliases(classifier: nn.Sequential) -> dict[str, str]:
    out: dict[str, str] = {}
    linear = [i for i, m in enumerate(classifier) if isinstance(m, nn.Linear)]
    for n, i in enumerate(linear):
        out[f"fc{6 + n}"] = f"classifier.{i}"
        if i + 1 < len(classifier) and isinstance(classifier[i + 1], nn.ReLU):
            out[f"relu{6 + n}"] = f"classifier.{i + 1}"
    return out


_ALIASES_DONE: list[bool] = []


def _register_all_aliases() -> None:
    """Caffe-style aliases of AlexNet, ResNet and GoogLeNet (once; torchvision is imported
    on first use, not when the zoo is)."""
    if _ALIASES_DONE:
        return
    _ALIASES_DONE.append(True)
    import torchvision.models as tvm

    alexnet = tvm.AlexNet()
    register_aliases(tvm.AlexNet, {**_features_aliases(alexnet.features, vgg=False),
                                   **_classifier_aliases(alexnet.classifier)})
    # VGG's aliases depend on its depth: load_torchvision sets them per instance.
    resnet = {"pool1": "maxpool", "res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4",
              "pool5": "avgpool", "logits": "fc", "fc8": "fc"}
    register_aliases(tvm.ResNet, resnet)
    googlenet = {
        "conv1": "conv1", "pool1": "maxpool1", "conv2": "conv2", "conv3": "conv3", "pool2": "maxpool2",
        "inception_3a": "inception3a", "inception_3b": "inception3b", "pool3": "maxpool3",
        "inception_4a": "inception4a", "inception_4b": "inception4b", "inception_4c": "inception4c",
        "inception_4d": "inception4d", "inception_4e": "inception4e", "pool4": "maxpool4",
        "inception_5a": "inception5a", "inception_5b": "inception5b", "pool5": "avgpool",
        "loss3/classifier": "fc", "logits": "fc",
    }
    register_aliases(tvm.GoogLeNet, googlenet)


def vgg_aliases(model: nn.Module) -> dict[str, str]:
    """Caffe-style aliases of a torchvision VGG instance (depends on its depth)."""
    return {**_features_aliases(model.features, vgg=True), **_classifier_aliases(model.classifier)}


# ----------------------------------------------------------------------------- zoo entries
def torchvision_entry(name: str) -> ModelEntry:
    """The zoo entry of torchvision classifier ``name``: its weights' pixel space, crop size
    and categories, built from torchvision's cache (``available`` says when the file is absent)."""
    meta = default_weights(name)
    crop = _crop_size(meta)
    categories = tuple(meta.meta.get("categories") or ())
    return ModelEntry(
        name,
        functools.partial(load_torchvision, name),
        from_file=functools.partial(load_torchvision, name),
        untrained=functools.partial(load_torchvision, name, None, True),
        pixel_space=TORCHVISION_IMAGENET.with_size((crop, crop)),
        input_size=(3, crop, crop),
        class_names=categories or None,
        retrain=f"python -c \"import torchvision; torchvision.models.get_model('{name}', weights='DEFAULT')\" (online)",
        available=lambda: None if cached_weights_path(name).is_file() else _missing_weights_message(name, cached_weights_path(name)),
        meta={"source": "torchvision", "weights": str(meta)},
    )


register_model_source(torchvision_names, torchvision_entry)
