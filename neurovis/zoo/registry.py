"""The zoo's registry: named models and priors, each entry carrying its metadata.

As torchvision's ``models/_api.py``: an entry is a frozen record of how to build the thing
and what is known about it without building it (pixel space, class names, layer aliases,
the prior that goes with a model, the files it reads and how to remake them), and one
test battery (``tests/test_zoo_entries.py``) runs over every entry. Entry modules
(:mod:`neurovis.zoo.glyphs`, :mod:`~neurovis.zoo.torchvision_models`,
:mod:`~neurovis.zoo.caffe_models`) import this module and register; ``neurovis.zoo``
imports the entry modules. This module imports nothing from neurovis but the errors.

Report hooks travel with a model's entry, so that general code (the report analysis,
the command line) never imports a world of its own: ``natural_images(n, seed, size)``
gives the natural images a report compares samples with, ``ground_truth(condition,
kept_rgb01, labels)`` the ground truth of what the kept samples show (the glyph world's
oracle), ``caption_condition(text, captioner_file, device)`` the condition of a caption.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from neurovis.errors import NeurovisError

if TYPE_CHECKING:  # typing only
    from torch import nn

    from neurovis.pixels import PixelSpace


class _Buildable:
    """What every entry answers: :meth:`missing`, from the entry's ``available``, ``files``
    and ``retrain`` (fields of the dataclasses below)."""

    files: tuple[str, ...]
    retrain: str | None
    available: Callable[[], str | None] | None

    def missing(self) -> str | None:
        """Why the entry cannot be built here (``None``: it can)."""
        return self.available() if self.available is not None else _missing_files(self.files, self.retrain)


@dataclass(frozen=True)
class ModelEntry(_Buildable):
    """A named model and what is known about it.

    Attributes:
        name: the name ``load_model`` takes.
        build: ``build() -> nn.Module`` with the entry's own weights (may raise
            :class:`NeurovisError` or ``FileNotFoundError`` when they are missing).
        from_file: ``from_file(path) -> nn.Module`` builds the whole model from a weights
            file itself (a converted Caffe network); ``None``: a file is a state dict
            loaded into ``build()``'s architecture.
        untrained: ``untrained() -> nn.Module`` with random weights (``--random-weights``,
            smoke runs); ``None`` refuses random weights.
        pixel_space: the input convention (``None``: known only once built).
        input_size: ``(C, H, W)`` the model reads.
        class_names: one name per output (``len == output size``), or ``None``.
        layer_aliases: alias -> module path (``fc6`` -> ``classifier.4``).
        default_prior: the registered prior that goes with the model (``None``: name one).
        natural_images: ``natural_images(n, seed, size) -> NaturalImages``, the natural
            images reports use when the user gives none (``None``: no default source).
        ground_truth: ``ground_truth(condition, kept_rgb01 (n, 3, H, W) float [0, 1],
            labels (n,)) -> dict | None``, the report's ground-truth check of the kept
            samples (``coverage.ground_truth`` of ``facets.json``).
        oracle: ``oracle() -> nn.Module`` naming what an image shows (``load_oracle``).
        caption_condition: ``caption_condition(text, captioner_file or None, device) ->
            Condition``, the condition of ``sample --caption`` with the entry's captioner.
        parse_caption: ``parse_caption(text)`` raises on a caption the captioner cannot
            score, before anything loads.
        default_method: the method settings the entry recommends (informational).
        files: the weights files the entry reads (paths as text).
        retrain: the command that remakes ``files``.
        available: ``available() -> str | None``: ``None`` when the entry can be built
            offline here, else why not (the test battery skips it with that reason).
        meta: anything else (``{"world": "glyphs"}``, ``{"source": "torchvision"}``).
    """

    name: str
    build: Callable[[], "nn.Module"]
    from_file: Callable[[Path], "nn.Module"] | None = None
    untrained: Callable[[], "nn.Module"] | None = None
    pixel_space: "PixelSpace | None" = None
    input_size: tuple[int, int, int] | None = None
    class_names: tuple[str, ...] | None = None
    layer_aliases: Mapping[str, str] = field(default_factory=dict)
    default_prior: str | None = None
    natural_images: Callable[..., Any] | None = None
    ground_truth: Callable[..., Any] | None = None
    oracle: Callable[[], "nn.Module"] | None = None
    caption_condition: Callable[..., Any] | None = None
    parse_caption: Callable[[str], Any] | None = None
    default_method: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    retrain: str | None = None
    available: Callable[[], str | None] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorEntry(_Buildable):
    """A named prior and what is known about it.

    Attributes:
        name: the name ``load_prior`` takes.
        build: ``build(device="cpu") -> Prior``.
        pixel_space: the images' convention (``None``: known only once built).
        code_shape: shape of one code (``None`` for pixel priors or unknown).
        default_eps: the prior's default (ε1, ε2, ε3), where it has its own.
        default_preset: the method preset the prior recommends.
        models: the registered models the prior is made for.
        files, retrain, available, meta: as :class:`ModelEntry`.
    """

    name: str
    build: Callable[..., Any]
    pixel_space: "PixelSpace | None" = None
    code_shape: tuple[int, ...] | None = None
    default_eps: tuple[float, float, float] | None = None
    default_preset: str | None = None
    models: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    retrain: str | None = None
    available: Callable[[], str | None] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


def _missing_files(files: Iterable[str], retrain: str | None) -> str | None:
    absent = [f for f in files if not Path(f).is_file()]
    if not absent:
        return None
    return f"missing {', '.join(absent)}" + (f"; remake with {retrain}" if retrain else "")


_MODELS: dict[str, ModelEntry] = {}
_PRIORS: dict[str, PriorEntry] = {}
# families of models listed and described on demand (torchvision's 80 classifiers):
# (names() -> iterable of names, entry(name) -> ModelEntry)
_MODEL_SOURCES: list[tuple[Callable[[], Iterable[str]], Callable[[str], ModelEntry]]] = []
_SOURCE_ENTRIES: dict[str, ModelEntry] = {}
# named streams of training images (``train-prior --data world``): factory(batch_size, seed) -> BatchSource
_IMAGE_SOURCES: dict[str, Callable[[int, int], Any]] = {}


def register_model(name: str | ModelEntry, factory: Callable[[], "nn.Module"] | None = None,
                   from_file: Callable[[Path], "nn.Module"] | None = None, **metadata: Any) -> ModelEntry:
    """Make ``load_model(name)`` call ``factory()``; ``from_file(path)``, if given, builds
    the model from a ``weights`` file itself (e.g. a converted Caffe network). ``metadata``:
    the other :class:`ModelEntry` fields. Pass a :class:`ModelEntry` instead to register it
    as it is. A name registered again replaces the earlier entry. Returns the entry."""
    if isinstance(name, ModelEntry):
        entry = name
    else:
        if factory is None:
            raise NeurovisError(f"register_model({name!r}) needs a factory (a function returning the model)")
        entry = ModelEntry(name, factory, from_file=from_file, **metadata)
    _MODELS[entry.name] = entry
    return entry


def register_prior(name: str | PriorEntry, factory: Callable[..., Any] | None = None, **metadata: Any) -> PriorEntry:
    """Make ``load_prior(name)`` call ``factory()``; ``metadata``: the other
    :class:`PriorEntry` fields (or pass a :class:`PriorEntry`). Returns the entry."""
    if isinstance(name, PriorEntry):
        entry = name
    else:
        if factory is None:
            raise NeurovisError(f"register_prior({name!r}) needs a factory (a function returning the prior)")
        entry = PriorEntry(name, factory, **metadata)
    _PRIORS[entry.name] = entry
    return entry


def register_model_source(names: Callable[[], Iterable[str]], entry: Callable[[str], ModelEntry]) -> None:
    """A family of models described on demand: ``names()`` lists them, ``entry(name)``
    makes the entry of one (torchvision's classifiers, whose metadata needs torchvision)."""
    _MODEL_SOURCES.append((names, entry))


def register_image_source(name: str, factory: Callable[[int, int], Any]) -> None:
    """A named stream of training images: ``factory(batch_size, seed)`` returns a
    :class:`~neurovis.training.data.BatchSource` (``train-prior --data NAME``)."""
    _IMAGE_SOURCES[name] = factory


def image_source(spec: str, batch_size: int, seed: int) -> Any:
    """The training images ``train-prior --data SPEC`` names: a registered stream
    (``world``) as a BatchSource, else ``spec`` itself (an image folder)."""
    factory = _IMAGE_SOURCES.get(spec)
    return factory(batch_size, seed) if factory is not None else spec


def find_model_entry(name: str) -> ModelEntry | None:
    """The entry of model ``name`` (registered or of a model source), or ``None``."""
    if name in _MODELS:
        return _MODELS[name]
    if name in _SOURCE_ENTRIES:
        return _SOURCE_ENTRIES[name]
    if ":" in name:
        return None
    for names, make in _MODEL_SOURCES:
        if name in set(names()):
            _SOURCE_ENTRIES[name] = make(name)
            return _SOURCE_ENTRIES[name]
    return None


def get_model_entry(name: str) -> ModelEntry:
    """The entry of model ``name``; raises a one-line :class:`NeurovisError` if unknown."""
    entry = find_model_entry(name)
    if entry is None:
        raise NeurovisError(f"no model entry {name!r}; see neurovis.zoo.list_models()")
    return entry


def get_prior_entry(name: str) -> PriorEntry:
    """The entry of prior ``name``; raises a one-line :class:`NeurovisError` if unknown."""
    if name not in _PRIORS:
        raise NeurovisError(f"unknown prior {name!r}; use one of {', '.join(sorted(_PRIORS))} or package.module:factory")
    return _PRIORS[name]


def registered_models() -> list[str]:
    """Names registered one by one (``glyphs``, ``caffenet``...), without model sources."""
    return sorted(_MODELS)


def list_models(sources: bool = True) -> list[str]:
    """Every model name ``load_model`` knows: registered ones and, with ``sources``, each
    model source's (torchvision's classifiers)."""
    names = set(_MODELS)
    if sources:
        for listed, _ in _MODEL_SOURCES:
            names.update(listed())
    return sorted(names)


def list_priors() -> list[str]:
    """Names ``load_prior`` knows (``glyphs``, ``caffenet-fc6``, ...)."""
    return sorted(_PRIORS)


registered_priors = list_priors


# ----------------------------------------------------------------------------- user factories
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
