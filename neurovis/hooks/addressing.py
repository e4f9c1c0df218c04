"""Addressing layers of any ``nn.Module`` by dotted path or by alias.

A layer is named as ``model.named_modules()`` spells it (``features.10``,
``layer4.2.conv3``). A model may declare aliases (``conv5`` -> ``features.10``) through a
``layer_aliases`` dict attribute; :func:`register_aliases` adds aliases for a model class
(used by the zoo for torchvision models, which cannot carry attributes of their own).
"""

from __future__ import annotations

import difflib
from typing import Mapping

from torch import nn

from neurovis.errors import NeurovisError

_CLASS_ALIASES: dict[type, dict[str, str]] = {}


def register_aliases(model_class: type, aliases: Mapping[str, str]) -> None:
    """Declare aliases (``{"conv5": "features.10"}``) for every instance of ``model_class``."""
    _CLASS_ALIASES.setdefault(model_class, {}).update(aliases)


def layer_aliases(model: nn.Module) -> dict[str, str]:
    """The aliases a model declares: its ``layer_aliases`` attribute, then its class's."""
    out: dict[str, str] = {}
    for cls in reversed(type(model).__mro__):
        out.update(_CLASS_ALIASES.get(cls, {}))
    out.update(getattr(model, "layer_aliases", None) or {})
    return out


def resolve_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """Return ``(dotted_path, module)`` for a layer named by path or alias.

    Raises:
        NeurovisError: the name is neither a module path nor an alias; the message lists
            the closest existing names.
    """
    modules = dict(model.named_modules())
    aliases = layer_aliases(model)
    path = aliases.get(name, name)
    if path in modules and path != "":
        return path, modules[path]
    candidates = [n for n in modules if n] + list(aliases)
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
    hint = f"closest: {', '.join(close)}" if close else "no similar name"
    raise NeurovisError(
        f"unknown layer {name!r} in {type(model).__name__} ({hint}); "
        f"list the layers with `neurovis layers` or neurovis.list_layers(model, input_size)"
    )
