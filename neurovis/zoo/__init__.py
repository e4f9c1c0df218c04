"""Models, priors and oracles by name.

``load_model`` and ``load_prior`` accept a registered name (``glyphs``, ``glyphs-encoder``)
or ``package.module:factory`` (a user's own code: the factory is called with no arguments).
Torchvision and Caffe models are added by the zoo modules as they land.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from torch import nn

from ..errors import NeurovisError

_MODELS: dict[str, Callable[[], nn.Module]] = {}


def register_model(name: str, factory: Callable[[], nn.Module]) -> None:
    """Make ``load_model(name)`` call ``factory()``."""
    _MODELS[name] = factory


def import_factory(spec: str, what: str) -> Callable[[], Any]:
    """The callable named by ``package.module:factory`` (``what`` names it in errors)."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise NeurovisError(f"cannot import {module_name!r} for {what} {spec!r} ({err}); check PYTHONPATH") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise NeurovisError(f"{module_name} has no callable {attr!r}; name a function returning a {what}")
    return factory


def _glyph_net(kind: str) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        from ..adapters import RGB01
        from . import glyphs

        try:
            model = getattr(glyphs, f"load_glyph_{kind}")()
        except FileNotFoundError as err:
            raise NeurovisError(str(err)) from None
        model.pixel_space = RGB01.with_size((64, 64))
        return model

    return load


def load_oracle(name: str = "glyphs") -> nn.Module:
    """The mode oracle of a world: ``oracle.predict(images) -> (modes, confidence)``."""
    if name != "glyphs":
        raise NeurovisError(f"no oracle named {name!r}; only the glyph world has one ('glyphs')")
    return _glyph_net("oracle")()


register_model("glyphs", _glyph_net("classifier"))
register_model("glyphs-encoder", _glyph_net("encoder"))


def load_model(name: str) -> nn.Module:
    """A model by registered name or ``package.module:factory``, in eval mode."""
    if name in _MODELS:
        model = _MODELS[name]()
    elif ":" in name:
        model = import_factory(name, "model")()
    else:
        known = ", ".join(sorted(_MODELS)) or "none yet"
        raise NeurovisError(f"unknown model {name!r}; use a known name ({known}) or package.module:factory")
    if not isinstance(model, nn.Module):
        raise NeurovisError(f"model {name!r} is a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


from .priors import load_prior, register_prior  # noqa: E402  (re-exported)

__all__ = ["import_factory", "load_model", "load_oracle", "load_prior", "register_model", "register_prior"]
