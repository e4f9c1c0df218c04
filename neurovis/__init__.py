"""neurovis: what does this neuron respond to? Every facet of it.

Plug & Play Generative Networks (Nguyen et al., CVPR 2017) for any PyTorch model: a
generator prior draws images, any differentiable condition (a class, a hidden unit, several
at once, a masked photo) says what to draw, and a MALA-approx chain samples many diverse
images. Data flows one way: model + layer -> condition; prior; sampler -> chains (HDF5)
-> facets -> report.
"""

__version__ = "0.1.0"

from .adapters import CAFFE_IMAGENET, RGB01, TORCHVISION_IMAGENET, Crop, PixelAdapter, PixelSpace
from .caption import CaptionCondition
from .chains import Chains, load_chains
from .conditions import (
    CallableCondition,
    ClassCondition,
    CombinedCondition,
    Condition,
    ConditionResult,
    InpaintCondition,
    UnitCondition,
    combine,
)
from .errors import ChainDivergedError, NeurovisError
from .hooks import ChannelAt, ChannelMean, FlatIndex, LayerInfo, Selector, TokenUnit, list_layers
from .priors import (
    CodeDAE,
    DeePSiMGenerator,
    GaussianPrior,
    GeneratorPrior,
    HDAEPrior,
    LayerEncoder,
    PixelPrior,
    Prior,
    deepsim_fc6,
)
from .sampler import sample
from .reports import FacetReport, facets
from .zoo import load_model, load_oracle, load_prior
from . import evaluation, mcmc  # noqa: E402  (nv.mcmc.code_bounds, nv.evaluation.facet_recall)
from .conditions import UnitsCondition  # noqa: E402

__all__ = [
    "CAFFE_IMAGENET", "CallableCondition", "CaptionCondition", "ChainDivergedError", "Chains", "ChannelAt", "ChannelMean",
    "ClassCondition", "CodeDAE", "CombinedCondition", "Condition", "ConditionResult", "Crop",
    "DeePSiMGenerator", "FacetReport", "FlatIndex", "GaussianPrior", "GeneratorPrior", "HDAEPrior", "InpaintCondition",
    "LayerEncoder", "LayerInfo", "NeurovisError", "PixelAdapter", "PixelPrior", "PixelSpace", "Prior",
    "RGB01", "Selector", "TORCHVISION_IMAGENET", "TokenUnit", "UnitCondition", "UnitsCondition", "combine", "deepsim_fc6", "facets",
    "evaluation", "list_layers", "load_chains", "load_model", "load_oracle", "load_prior", "mcmc", "sample",
]
