"""Priors: the ε1 term and the space the chain walks (SPEC §1.1)."""

from .base import Prior
from .deepsim import DEEPSIM_PIXELS, DeePSiMGenerator, deepsim_fc6, deepsim_glyph
from .generator import CodeDAE, GaussianPrior, GeneratorPrior, HDAEPrior, LayerEncoder
from .pixel import PixelPrior, total_variation

__all__ = [
    "CodeDAE", "DEEPSIM_PIXELS", "DeePSiMGenerator", "GaussianPrior", "GeneratorPrior", "HDAEPrior",
    "LayerEncoder", "PixelPrior", "Prior", "deepsim_fc6", "deepsim_glyph", "total_variation",
]
