"""Models, priors and oracles by name.

``load_model`` and ``load_prior`` accept a registered name (``glyphs``, ``glyphs-encoder``)
, a torchvision classifier name with weights from torchvision's cache, or
``package.module:factory`` (a user's own code: the factory is called with no arguments).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable

from torch import nn

from neurovis.errors import NeurovisError

_MODELS: dict[str, Callable[[], nn.Module]] = {}


_WEIGHTED_MODELS: dict[str, Callable[[Path], nn.Module]] = {}


def register_model(name: str, factory: Callable[[], nn.Module],
                   from_file: Callable[[Path], nn.Module] | None = None) -> None:
    """Make ``load_model(name)`` call ``factory()``; ``from_file(path)``, if given, builds
    the model from a ``weights`` file itself (e.g. a converted Caffe network)."""
    _MODELS[name] = factory
    if from_file is not None:
        _WEIGHTED_MODELS[name] = from_file


def _in_folder(folder: str, name: str) -> bool:
    """Whether ``folder`` holds the top-level module or package ``name``."""
    base = Path(folder)
    return (base / f"{name}.py").is_file() or (base / name).is_dir()


class _FolderOnPath:
    """``with _FolderOnPath(folder):`` appends ``folder`` to the *end* of ``sys.path`` for the
    body only (installed modules keep precedence: a ``jinja2.py`` there shadows nothing)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.added = False

    def __enter__(self) -> None:
        if self.folder not in sys.path:
            sys.path.append(self.folder)
            self.added = True
            importlib.invalidate_caches()

    def __exit__(self, *exc: Any) -> None:
        if self.added:
            for i in range(len(sys.path) - 1, -1, -1):  # the entry we appended (the last such)
                if sys.path[i] == self.folder:
                    del sys.path[i]
                    break


def import_factory(spec: str, what: str) -> Callable[[], Any]:
    """The callable named by ``package.module:factory`` (``what`` names it in errors).

    The module is imported from the import path as it is; failing that, from the current
    folder, which is then on ``sys.path`` (at its end) only while the module is imported
    and while the factory runs. The current folder is never put first on the import path,
    so files there (a ``matplotlib.py``, ``jinja2.py``, ``PIL``) cannot shadow libraries.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise NeurovisError(f"{what} {spec!r}: use package.module:factory (a module and a function in it)")
    top, folder = module_name.split(".")[0], os.getcwd()
    try:
        try:
            module = importlib.import_module(module_name)
            in_cwd = False
        except ModuleNotFoundError as err:
            if err.name != top or not _in_folder(folder, top):
                raise
            with _FolderOnPath(folder):
                module = importlib.import_module(module_name)
            in_cwd = True
    except ImportError as err:
        raise NeurovisError(f"cannot import {module_name!r} for {what} {spec!r} ({err}); check PYTHONPATH") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise NeurovisError(f"{module_name} has no callable {attr!r}; name a function returning a {what}")
    if not in_cwd:
        return factory

    @functools.wraps(factory)
    def call(*args: Any, **kwargs: Any) -> Any:  # its own imports at call time still find the folder
        with _FolderOnPath(folder):
            return factory(*args, **kwargs)

    return call


def _glyph_net(kind: str) -> Callable[[], nn.Module]:
    def load() -> nn.Module:
        from neurovis.pixels import RGB01
        from neurovis.glyphs import nets as glyphs
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


def _caffenet() -> nn.Module:
    from neurovis.zoo.caffe_models import load_caffenet

    return load_caffenet()


def _caffenet_from(path: Path) -> nn.Module:
    """A converted CaffeNet-like file; its input size is the file's own (a converted net
    may read other than 3×227×227, e.g. 1×28×28)."""
    from neurovis.zoo.caffe_models import load_caffenet

    net = load_caffenet(path)
    shape = getattr(net, "input_shape", None)
    if shape is not None and len(tuple(shape)) == 3:
        net.input_size = tuple(int(v) for v in shape)
    return net


def check_weights_file(path: Path, what: str) -> None:
    """Raise a one-line :class:`NeurovisError` naming ``path`` unless it could be a
    ``torch.save`` file (a zip archive or a pickle), before any model is built: text,
    images, empty files are refused with the words :func:`neurovis.errors.load_weights_file`
    uses for them."""
    from neurovis.errors import _unreadable

    if not path.is_file():
        raise NeurovisError(f"weights file {path} for {what} does not exist; check the path")
    why = _unreadable(path, None, False)
    if why is not None:
        raise NeurovisError(f"cannot read weights for {what}: {why}; pass a state dict saved with torch.save (.pt/.pth)")


register_model("caffenet", _caffenet, from_file=_caffenet_from)


def load_model(name: str, weights: str | Path | None = None, random_weights: bool = False) -> nn.Module:
    """A model by name, in eval mode.

    Args:
        name: a registered name (``glyphs``, ``glyphs-encoder``, ``caffenet``), a torchvision
            classification model (``alexnet``, ``vgg16``, ``resnet50``...: weights from
            torchvision's cache under ``$TORCH_HOME``, never downloaded) or
            ``package.module:factory`` (a user's code, called with no arguments).
        weights: a state dict file (loaded with ``weights_only=True``) to load into the
            architecture instead of its default weights.
        random_weights: torchvision models only: skip the weights (smoke runs).

    Raises:
        NeurovisError: unknown name, missing or unfitting weights (one line, saying what to do).
    """
    from neurovis.zoo.torchvision_models import load_state_into, load_torchvision, read_state_dict, torchvision_names

    if random_weights and weights is not None:
        raise NeurovisError("pass either --weights FILE or --random-weights, not both")
    if weights is not None:
        check_weights_file(Path(weights), name)
    if name in _MODELS:
        if random_weights:
            raise NeurovisError(f"--random-weights is for torchvision models; {name!r} loads its own weights")
        if weights is not None and name in _WEIGHTED_MODELS:  # the file is the whole model (converted Caffe)
            model, weights = _WEIGHTED_MODELS[name](Path(weights)), None
        else:
            model = _MODELS[name]()
    elif ":" in name:
        model = import_factory(name, "model")()
    elif name in torchvision_names():
        return load_torchvision(name, weights, random_weights)
    else:
        known = ", ".join(sorted(_MODELS)) or "none yet"
        raise NeurovisError(
            f"unknown model {name!r}; use a known name ({known}), a torchvision model name (alexnet, vgg16, "
            "resnet50, ...) or package.module:factory"
        )
    if not isinstance(model, nn.Module):
        raise NeurovisError(f"model {name!r} is a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_state_into(model, read_state_dict(Path(weights), name), name, Path(weights))
    return model.eval()


from neurovis.zoo.priors import load_prior, register_prior  # noqa: E402  (re-exported)

__all__ = ["import_factory", "load_model", "load_oracle", "load_prior", "register_model", "register_prior"]
