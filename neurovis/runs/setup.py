"""The inputs of a run, made ready: device, natural images, chain starts, the unit check.

Small steps that every workflow (and the command line) takes before sampling:

* :func:`resolve_device`: ``"auto"`` / ``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` -> a device.
* :func:`image_size`: the prior's ``(H, W)``.
* :func:`natural_images`: an image folder, else the glyph world for glyph models, else none.
* :func:`with_natural_starts`, :func:`keep_start_bank`: chains that start from ``E(x)`` of real
  images, and keeping those codes for the next run.
* :func:`set_clamp_pixels`: override a generator prior's pixel clamp.
* :func:`check_unit`: a unit that does not exist fails now, with the condition's own message.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurovis._utils.torch_utils import eval_mode
from neurovis.analysis.natural import NaturalImages, load_image_folder
from neurovis.chains import decode_samples
from neurovis.conditions import UnitCondition
from neurovis.errors import NeurovisError
from neurovis.priors.generator import save_start_bank
from neurovis.sampling.rng import chain_generator

GLYPH_NATURAL_SEED = 20170101
"""Seed of the glyph-world natural images is this plus the run's seed."""


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NeurovisError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeurovisError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def image_size(prior: Any) -> tuple[int, int]:
    """``(H, W)`` of the prior's images (decodes one start code)."""
    x = decode_samples(prior.initial_codes([chain_generator(0, 0)]), prior, space="model")
    return int(x.shape[-2]), int(x.shape[-1])


def natural_images(
    model: nn.Module, prior: Any, *, folder: str | os.PathLike[str] | None = None, glyph_count: int = 1000,
    seed: int = 0,
) -> NaturalImages | None:
    """The natural images of a run, at the prior's image size: ``folder`` (searched
    recursively; class sub-folders give labels), else ``glyph_count`` images of the model's
    own source (the ``natural_images(n, seed, size)`` hook its zoo entry attaches: the glyph
    world for glyph models), else ``None``."""
    if folder:
        return load_image_folder(folder, image_size(prior), seed=seed)
    own = getattr(model, "natural_images", None)
    if callable(own):
        return own(glyph_count, GLYPH_NATURAL_SEED + seed, image_size(prior))
    return None


def with_natural_starts(prior: Any, natural: NaturalImages | None, device: torch.device) -> Any:
    """The prior with its chain starts and restarts drawn from ``E(x)`` of the natural images."""
    if natural is None:
        raise NeurovisError("--starts natural needs natural images: pass --images DIR (or drop --no-images)")
    if not hasattr(prior, "with_real_starts"):
        raise NeurovisError(f"--starts natural needs a generator prior with an encoder; {type(prior).__name__} "
                            "starts from its own random images")
    return prior.with_real_starts(prior.pixel_space.from_rgb01(natural.rgb01()).to(device))


def keep_start_bank(prior: Any, images: str | os.PathLike[str]) -> Path | None:
    """A prior that names a place for its start bank (``start_bank_path``, the converted
    paper generator's) keeps the bank made from the images of ``images`` there, once, for
    later runs. Returns the path written, or ``None`` (nothing to keep, or it could not)."""
    path = getattr(prior, "start_bank_path", None)
    if not path or Path(path).exists():
        return None

    try:
        save_start_bank(path, prior.start_codes, images=str(images))
    except OSError as err:
        warnings.warn(f"could not keep the start bank at {path} ({err.strerror}); it is made again next run")
        return None
    return Path(path)


def set_clamp_pixels(prior: Any, choice: str | None) -> None:
    """``"on"`` / ``"off"`` overrides a generator prior's own pixel clamp (``None``: keep it)."""
    if choice is None:
        return
    if not hasattr(prior, "clamp_pixels"):
        raise NeurovisError(f"--clamp-pixels applies to generator priors; {type(prior).__name__} has no such "
                            "setting (a PixelPrior always keeps its pixels in range)")
    prior.clamp_pixels = choice == "on"


def check_unit(model: nn.Module, prior: Any, layer: str, unit: int, *, position: Any = None,
               gradient: str = "reference") -> None:
    """Raise the condition's own error if ``unit`` does not exist in ``layer`` (one decode
    and one forward pass of a single image)."""
    condition = UnitCondition(model, layer, unit, position=position, gradient=gradient)
    x = decode_samples(prior.initial_codes([chain_generator(0, 0)]), prior, space="model").to(prior.device)
    with torch.no_grad(), eval_mode(condition.modules()):
        condition.evaluate(x, prior.pixel_space)
