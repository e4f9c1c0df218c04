"""Models and priors by name.

``load_model`` accepts ``package.module:factory`` (a user's own code: the factory is called
with no arguments and must return an ``nn.Module``); named models (``glyphs``, torchvision
names, ``caffenet``) are added by the zoo modules as they land.
"""

from __future__ import annotations

import importlib
from typing import Callable

from torch import nn

from ..errors import NeurovisError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``load_model(name)`` call ``factory()``."""
    _MODELS[name] = factory


def _load_glyphs() -> nn.Module:
    from ..adapters import RGB01
    from .glyphs import load_glyph_classifier

    try:
        model = load_glyph_classifier()
    except FileNotFoundError as err:
        raise NeurovisError(str(err)) from None
    model.pixel_space = RGB01.with_size((64, 64))
    return model


def _load_glyph_encoder() -> nn.Module:
    from ..adapters import RGB01
    from .glyphs import load_glyph_encoder

    try:
        model = load_glyph_encoder()
    except FileNotFoundError as err:
        raise NeurovisError(str(err)) from None
    model.pixel_space = RGB01.with_size((64, 64))
    return model


def load_oracle(name: str = "glyphs") -> nn.Module:
    """The mode oracle of a world: ``oracle.predict(images) -> (modes, confidence)``."""
    if name != "glyphs":
        raise NeurovisError(f"no oracle named {name!r}; only the glyph world has one ('glyphs')")
    from .glyphs import load_glyph_oracle

    try:
        return load_glyph_oracle()
    except FileNotFoundError as err:
        raise NeurovisError(str(err)) from None


register_model("glyphs", _load_glyphs)
register_model("glyphs-encoder", _load_glyph_encoder)


def load_model(name: str) -> nn.Module:
    """A model by registered name or ``package.module:factory``, in eval mode."""
    if name in _MODELS:
        model = _MODELS[name]()
    elif ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise NeurovisError(f"cannot import {module_name!r} for model {name!r} ({err}); check PYTHONPATH") from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise NeurovisError(f"{module_name} has no callable {attr!r}; name a function returning an nn.Module")
        model = factory()
    else:
        known = ", ".join(sorted(_MODELS)) or "none yet"
        raise NeurovisError(f"unknown model {name!r}; use a known name ({known}) or package.module:factory")
    if not isinstance(model, nn.Module):
        raise NeurovisError(f"model {name!r} is a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


from .priors import load_prior, register_prior  # noqa: E402  (re-exported)

__all__ = ["load_model", "load_oracle", "load_prior", "register_model", "register_prior"]
