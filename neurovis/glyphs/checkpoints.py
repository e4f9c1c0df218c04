"""The glyph world's shipped weights as modules: payload files, the generator, the
discriminator and the three networks (classifier, encoder, oracle) as the zoo serves them.

Weights live in ``neurovis/glyphs/weights/`` (package data). Payloads store their state
dict as float16 beside ``arch``, ``metrics`` and ``config``; everything loads as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from neurovis._utils.weights import load_weights_file
from neurovis.errors import NeurovisError
from neurovis.glyphs import nets
from neurovis.glyphs.nets import RETRAIN_COMMAND
from neurovis.pixels import RGB01
from neurovis.priors import deepsim_glyph
from neurovis.training.discriminator import Discriminator

GLYPH_GENERATOR_FILE = "glyph_generator.pt"
GLYPH_DISCRIMINATOR_FILE = "glyph_discriminator.pt"
GLYPH_START_BANK_FILE = "glyph_start_bank.pt"
RETRAIN_PRIOR_COMMAND = "python scripts/train_glyph_prior.py"
GLYPH_PIXELS = RGB01.with_size((64, 64))
"""What every glyph network reads and every glyph prior draws: RGB in [0, 1], 64×64."""


def weights_file(name: str) -> Path:
    """``neurovis/glyphs/weights/<name>`` of a glyph prior's file; a one-line
    :class:`NeurovisError` naming the retrain commands when it is missing."""
    path = nets.WEIGHTS_DIR / name  # read at call time
    if not path.is_file():
        raise NeurovisError(
            f"glyph prior weights not found at {path}; retrain with {RETRAIN_COMMAND} "
            f"then {RETRAIN_PRIOR_COMMAND}"
        )
    return path


def load_payload(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A shipped weights file: its state dict (stored as float16, returned as float32) and
    the rest of the payload (``arch``, ``metrics``, ``config``)."""
    payload = load_weights_file(path, "shipped prior weights", "retrain or restore the file (git checkout)")
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise NeurovisError(f"{path} is not a neurovis weights payload (no state_dict); retrain or restore the file")
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload.pop("state_dict").items()}
    return state, payload


def load_glyph_generator(path: Path) -> nn.Module:
    """A shipped glyph generator file (fp16 payload naming its ``arch``) as a float32 module
    in eval mode with a ``weights_path``: code ``(B, 512)`` -> RGB [0, 1] ``(B, 3, 64, 64)``."""
    state, meta = load_payload(path)
    generator = deepsim_glyph(arch=meta.get("arch", "spatial"))
    generator.load_state_dict(state)
    generator.weights_path = str(path)
    return generator.eval()


def load_glyph_discriminator(device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator trained with the glyph prior (one logit per image: real if > 0)."""
    path = weights_file(GLYPH_DISCRIMINATOR_FILE)
    disc = Discriminator.from_state_dict(load_payload(path)[0])  # widths as trained
    return disc.to(device).eval()


def glyph_net(kind: str) -> Callable[[], nn.Module]:
    """A loader of the shipped glyph ``kind`` (``classifier``, ``encoder``, ``oracle``) as
    the zoo serves it: eval mode, ``pixel_space`` RGB [0, 1] 64×64, a missing file raised as
    a one-line :class:`NeurovisError`."""
    loader = getattr(nets, f"load_glyph_{kind}")

    def load() -> nn.Module:
        try:
            model = loader()
        except FileNotFoundError as err:
            raise NeurovisError(str(err)) from None
        model.pixel_space = GLYPH_PIXELS
        return model

    return load


def load_oracle() -> nn.Module:
    """The glyph world's mode oracle: ``oracle.predict(images) -> (modes, confidence)``."""
    return glyph_net("oracle")()
