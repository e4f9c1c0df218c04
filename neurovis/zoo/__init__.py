"""Models, priors and oracles by name.

``load_model`` and ``load_prior`` accept a registered name (``glyphs``, ``glyphs-encoder``)
, a torchvision classifier name with weights from torchvision's cache, or
``package.module:factory`` (a user's own code: the factory is called with no arguments).

Every name is an entry of :mod:`neurovis.zoo.registry` that carries its metadata
(``get_model_entry("glyphs").pixel_space``, ``.class_names``, ``.default_prior``...);
``list_models()`` and ``list_priors()`` list them. The entry modules register them:
:mod:`.glyphs` (the glyph world), :mod:`.torchvision_models`, :mod:`.caffe_models`.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from neurovis._utils.weights import why_unreadable
from neurovis.errors import NeurovisError
from neurovis.priors import Prior
from neurovis.zoo import caffe_models, glyphs, torchvision_models  # noqa: F401  (they register the entries)
from neurovis.zoo.registry import (
    ModelEntry,
    PriorEntry,
    find_model_entry,
    get_model_entry,
    get_prior_entry,
    image_source,
    import_factory,
    list_models,
    list_priors,
    register_image_source,
    register_model,
    register_model_source,
    register_prior,
    registered_models,
    registered_priors,
)
from neurovis.zoo.torchvision_models import load_state_into, read_state_dict


def load_oracle(name: str = "glyphs") -> nn.Module:
    """The mode oracle of a world: ``oracle.predict(images) -> (modes, confidence)``."""
    entry = find_model_entry(name) if ":" not in name else None
    if entry is None or entry.oracle is None:
        raise NeurovisError(f"no oracle named {name!r}; only the glyph world has one ('glyphs')")
    return entry.oracle()


def check_weights_file(path: Path, what: str) -> None:
    """Raise a one-line :class:`NeurovisError` naming ``path`` unless it could be a
    ``torch.save`` file (a zip archive or a pickle), before any model is built: text,
    images, empty files are refused with the words :func:`neurovis._utils.weights.load_weights_file`
    uses for them."""
    if not path.is_file():
        raise NeurovisError(f"weights file {path} for {what} does not exist; check the path")
    why = why_unreadable(path, None, False)
    if why is not None:
        raise NeurovisError(f"cannot read weights for {what}: {why}; pass a state dict saved with torch.save (.pt/.pth)")


_HOOKS = ("natural_images", "ground_truth")
"""Entry hooks a loaded model carries as attributes, for code that has the model but not
its name (:func:`neurovis.facets` reads ``model.ground_truth``)."""


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

    Returns:
        the model, carrying its entry's report hooks (``natural_images``, ``ground_truth``)
        as attributes where the entry has them.

    Raises:
        NeurovisError: unknown name, missing or unfitting weights (one line, saying what to do).
    """
    if random_weights and weights is not None:
        raise NeurovisError("pass either --weights FILE or --random-weights, not both")
    if weights is not None:
        check_weights_file(Path(weights), name)
    entry = find_model_entry(name)
    if entry is not None:
        if random_weights:
            if entry.untrained is None:
                raise NeurovisError(f"--random-weights is for torchvision models; {name!r} loads its own weights")
            model = entry.untrained()
        elif weights is not None and entry.from_file is not None:  # the file is the whole model (converted Caffe)
            model, weights = entry.from_file(Path(weights)), None
        else:
            model = entry.build()
    elif ":" in name:
        model = import_factory(name, "model")()
    else:
        known = ", ".join(registered_models()) or "none yet"
        raise NeurovisError(
            f"unknown model {name!r}; use a known name ({known}), a torchvision model name (alexnet, vgg16, "
            "resnet50, ...) or package.module:factory"
        )
    if not isinstance(model, nn.Module):
        raise NeurovisError(f"model {name!r} is a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_state_into(model, read_state_dict(Path(weights), name), name, Path(weights))
    if entry is not None:
        for hook in _HOOKS:
            if getattr(entry, hook) is not None and getattr(model, hook, None) is None:
                setattr(model, hook, getattr(entry, hook))
    return model.eval()


def load_prior(name: str) -> Prior:
    """A prior by registered name (``glyphs``) or ``package.module:factory``."""
    if name in registered_priors():
        return get_prior_entry(name).build()
    if ":" in name:
        prior = import_factory(name, "prior")()
        if not isinstance(prior, Prior):
            raise NeurovisError(f"{name} returned a {type(prior).__name__}, not a neurovis Prior")
        return prior
    raise NeurovisError(f"unknown prior {name!r}; use one of {', '.join(registered_priors())} or package.module:factory")


__all__ = [
    "ModelEntry", "PriorEntry", "check_weights_file", "find_model_entry", "get_model_entry", "get_prior_entry",
    "image_source", "import_factory", "list_models", "list_priors", "load_model", "load_oracle", "load_prior",
    "register_image_source", "register_model", "register_model_source", "register_prior", "registered_models",
    "registered_priors",
]
