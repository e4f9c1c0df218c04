"""The glyph world's zoo entries: models ``glyphs`` (the classifier) and ``glyphs-encoder``,
priors ``glyphs`` (Joint PPGN-h), ``glyphs-noiseless``, ``glyphs-joint``,
``glyphs-unit-clip``, ``glyphs-joint-unit-clip``, ``glyphs-dgn-am``, ``glyphs-ppgn-h``,
``glyphs-ppgn-x``, and the training image stream ``world``.

The one place general code meets the glyph world: each entry carries the world's hooks
(natural images, the oracle's ground truth, the captioner), which the command line and
:func:`neurovis.facets` take from the entry. Registering loads nothing: each factory
imports its glyph module when it is called, so ``import neurovis.zoo`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.nets import CLASSIFIER_FILE, ENCODER_FILE, ORACLE_FILE, RETRAIN_COMMAND, WEIGHTS_DIR
from neurovis.pixels import RGB01
from neurovis.zoo.registry import ModelEntry, PriorEntry, register_image_source, register_model, register_prior

PIXELS = RGB01.with_size((64, 64))
INPUT_SIZE = (3, 64, 64)
CODE_SHAPE = (512,)
RETRAIN_PRIOR = "python scripts/train_glyph_prior.py"
RETRAIN_DAES = "python scripts/train_glyph_daes.py"
RETRAIN_CAPTIONER = "python scripts/train_glyph_captioner.py"
_W = WEIGHTS_DIR


def _files(*names: str) -> tuple[str, ...]:
    return tuple(str(_W / n) for n in names)


# ----------------------------------------------------------------------------- hooks
def _classifier() -> nn.Module:
    from neurovis.glyphs.checkpoints import glyph_net

    return glyph_net("classifier")()


def _encoder() -> nn.Module:
    from neurovis.glyphs.checkpoints import glyph_net

    return glyph_net("encoder")()


def _oracle() -> nn.Module:
    from neurovis.glyphs.checkpoints import load_oracle

    return load_oracle()


def natural_images(n: int, seed: int, size: tuple[int, int] | None = None) -> Any:
    """``n`` glyph world images (seed ``seed``) as a report's natural images."""
    from neurovis.glyphs.natural import glyph_world_images

    return glyph_world_images(n, seed=seed, size=size)


def ground_truth(condition: Any, kept_rgb01: torch.Tensor, labels: np.ndarray) -> dict[str, Any] | None:
    """The oracle's ground truth of a report's kept samples
    (:func:`neurovis.glyphs.coverage.glyph_ground_truth`)."""
    from neurovis.glyphs.coverage import glyph_ground_truth

    return glyph_ground_truth(condition, kept_rgb01, labels)


def caption_condition(text: str, path: Path | None = None, device: Any = "cpu") -> Any:
    """The glyph captioner's condition for ``text`` (``path``: a captioner payload; default
    the shipped one)."""
    from neurovis.glyphs.captioner import glyph_caption_condition, load_glyph_captioner

    return glyph_caption_condition(text, load_glyph_captioner(path, device=device))


def parse_caption(text: str) -> Any:
    """Raise on a caption outside the glyph captioner's form (before anything loads)."""
    from neurovis.glyphs.captioner import parse_glyph_caption

    return parse_glyph_caption(text)


def world_stream(batch_size: int, seed: int) -> Any:
    """``train-prior --data world``: fresh glyph world images every step."""
    from neurovis.glyphs.natural import WorldSource

    return WorldSource(GlyphWorld(), batch_size, seed)


_WORLD = GlyphWorld()
_HOOKS: dict[str, Any] = dict(natural_images=natural_images, caption_condition=caption_condition,
                              parse_caption=parse_caption, meta={"world": "glyphs"})

register_model(ModelEntry(
    "glyphs", _classifier, pixel_space=PIXELS, input_size=INPUT_SIZE, class_names=tuple(_WORLD.class_names),
    default_prior="glyphs", ground_truth=ground_truth, oracle=_oracle,
    default_method={"preset": "recommended"},
    files=_files(CLASSIFIER_FILE, ORACLE_FILE), retrain=RETRAIN_COMMAND, **_HOOKS,
))
register_model(ModelEntry(
    "glyphs-encoder", _encoder, pixel_space=PIXELS, input_size=INPUT_SIZE, class_names=tuple(_WORLD.mode_names),
    default_prior="glyphs", files=_files(ENCODER_FILE), retrain=RETRAIN_COMMAND, **_HOOKS,
))
register_image_source("world", world_stream)


# ----------------------------------------------------------------------------- priors
def _treatments() -> ModuleType:
    from neurovis.glyphs import treatments

    return treatments


def _priors() -> ModuleType:
    from neurovis.glyphs import priors

    return priors


def _lazy_prior(module: Callable[[], ModuleType], loader: str) -> Callable[..., Any]:
    """A prior factory ``(device="cpu") -> Prior``: imports the glyph module (``module()``)
    only when called and returns its ``loader(device)``."""

    def build(device: str | torch.device = "cpu") -> Any:
        return getattr(module(), loader)(device)

    return build


_prior_glyphs = _lazy_prior(_treatments, "load_glyph_prior")
_prior_noiseless = _lazy_prior(_priors, "load_glyph_noiseless")
_prior_unit_clip = _lazy_prior(_priors, "load_glyph_unit_clip")
_prior_dgn_am = _lazy_prior(_priors, "load_glyph_dgn_am")
_prior_ppgn_h = _lazy_prior(_treatments, "load_glyph_ppgn_h")
_prior_ppgn_x = _lazy_prior(_treatments, "load_glyph_ppgn_x")
_prior_joint = _lazy_prior(_treatments, "load_glyph_joint")
_prior_joint_unit_clip = _lazy_prior(_treatments, "load_glyph_joint_unit_clip")

_MODELS = ("glyphs", "glyphs-encoder")
_NOISELESS = ("glyph_generator.pt", ENCODER_FILE, "glyph_start_bank.pt")
_JOINT = ("glyph_generator_joint.pt", "glyph_generator.pt", ENCODER_FILE, "glyph_start_bank.pt")
_GENERATOR = dict(pixel_space=PIXELS, code_shape=CODE_SHAPE, models=_MODELS, retrain=RETRAIN_PRIOR)

register_prior(PriorEntry("glyphs", _prior_glyphs, default_eps=(1e-5, 1.0, 1e-17), default_preset="recommended",
                          files=_files(*_JOINT), meta={"treatment": "Joint PPGN-h", "paper_preset": "glyphs-noiseless"},
                          **_GENERATOR))
register_prior(PriorEntry("glyphs-noiseless", _prior_noiseless, default_eps=(1e-5, 1.0, 1e-17),
                          files=_files(*_NOISELESS), meta={"treatment": "Noiseless Joint PPGN-h"}, **_GENERATOR))
register_prior(PriorEntry("glyphs-unit-clip", _prior_unit_clip, default_eps=(1e-5, 1.0, 1e-17),
                          files=_files(*_NOISELESS), meta={"treatment": "Noiseless Joint PPGN-h, per-unit code clip"},
                          **_GENERATOR))
register_prior(PriorEntry("glyphs-dgn-am", _prior_dgn_am, default_eps=(0.0, 1.0, 1e-17),
                          files=_files("glyph_generator.pt", ENCODER_FILE), meta={"treatment": "DGN-AM"},
                          **_GENERATOR))
register_prior(PriorEntry("glyphs-ppgn-h", _prior_ppgn_h, default_eps=(1e-5, 1.0, 1e-5),
                          files=_files("glyph_generator.pt", ENCODER_FILE, "glyph_hdae.pt"),
                          meta={"treatment": "PPGN-h"}, **{**_GENERATOR, "retrain": RETRAIN_DAES}))
register_prior(PriorEntry("glyphs-ppgn-x", _prior_ppgn_x, pixel_space=PIXELS, models=_MODELS,
                          default_eps=(1.0, 1.5, 0.1), files=_files("glyph_xdae.pt"), retrain=RETRAIN_DAES,
                          meta={"treatment": "PPGN-x"}))
register_prior(PriorEntry("glyphs-joint", _prior_joint, default_eps=(1e-5, 1.0, 1e-17), files=_files(*_JOINT),
                          meta={"treatment": "Joint PPGN-h"}, **_GENERATOR))
register_prior(PriorEntry("glyphs-joint-unit-clip", _prior_joint_unit_clip, default_eps=(1e-5, 1.0, 1e-17),
                          files=_files(*_JOINT), meta={"treatment": "Joint PPGN-h, per-unit code clip"},
                          **_GENERATOR))
