"""Priors: the ε1 term and the space the chain walks."""

from neurovis.priors.base import Prior
from neurovis.priors.deepsim import DEEPSIM_PIXELS, DeePSiMGenerator, deepsim_fc6, deepsim_glyph
from neurovis.priors.generator import CodeDAE, GaussianPrior, GeneratorPrior, HDAEPrior, LayerEncoder, load_start_bank
from neurovis.priors.pixel import PixelPrior, total_variation

__all__ = [
    "CodeDAE", "DEEPSIM_PIXELS", "DeePSiMGenerator", "GaussianPrior", "GeneratorPrior", "HDAEPrior",
    "LayerEncoder", "PixelPrior", "Prior", "deepsim_fc6", "deepsim_glyph", "load_start_bank", "total_variation",
]
