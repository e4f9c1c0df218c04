"""Priors: the ε1 term and the space the chain walks."""

from .base import Prior
from .deepsim import DEEPSIM_PIXELS, DeePSiMGenerator, deepsim_fc6, deepsim_glyph
from .generator import CodeDAE, GaussianPrior, GeneratorPrior, HDAEPrior, LayerEncoder, load_start_bank
from .pixel import PixelPrior, total_variation

__all__ = [
    "CodeDAE", "DEEPSIM_PIXELS", "DeePSiMGenerator", "GaussianPrior", "GeneratorPrior", "HDAEPrior",
    "LayerEncoder", "PixelPrior", "Prior", "deepsim_fc6", "deepsim_glyph", "load_start_bank", "total_variation",
]
