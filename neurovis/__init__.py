"""neurovis: what does this neuron respond to? Every facet of it.

Plug & Play Generative Networks (Nguyen et al., CVPR 2017) for any PyTorch model: a
generator prior draws images, any differentiable condition (a class, a hidden unit, several
at once, a caption, a masked photo) says what to draw, and a chain in code space samples
many diverse images. Data flows one way, and the subpackages are named after it:

    conditions, priors  ->  sampling  ->  chains (HDF5)  ->  analysis (facets: numbers)  ->  report (files)

with ``zoo`` (named models and priors), ``caffe``, ``training`` and ``glyphs`` (the offline
world) as sources, ``runs`` (whole-layer audits) and ``cli`` on top.

The top level holds the names most programs need (:data:`__all__`); everything else lives
in its namespace (``nv.sampling.MALA``, ``nv.pixels.RGB01``, ``nv.hooks.ChannelAt``,
``nv.glyphs.evaluation``, ``nv.zoo.list_priors()``). Names load on first use, so
``import neurovis`` (and ``neurovis --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from neurovis._version import __version__

# public name -> module that defines it (loaded on first attribute access)
_NAMES = {
    "sample": "neurovis.sampling",
    "facets": "neurovis.analysis",
    "FacetReport": "neurovis.analysis",
    "write_report": "neurovis.report",
    "Chains": "neurovis.chains",
    "load_chains": "neurovis.chains",
    "decode_samples": "neurovis.chains",
    "UnitCondition": "neurovis.conditions",
    "ClassCondition": "neurovis.conditions",
    "InpaintCondition": "neurovis.conditions",
    "CallableCondition": "neurovis.conditions",
    "combine": "neurovis.conditions",
    "CaptionCondition": "neurovis.caption",
    "GeneratorPrior": "neurovis.priors",
    "GaussianPrior": "neurovis.priors",
    "HDAEPrior": "neurovis.priors",
    "PixelPrior": "neurovis.priors",
    "load_model": "neurovis.zoo",
    "load_prior": "neurovis.zoo",
    "list_layers": "neurovis.hooks",
    "NeurovisError": "neurovis.errors",
}

# namespaces reachable as attributes (``nv.sampling.MALA``)
_NAMESPACES = (
    "analysis", "caffe", "caption", "chains", "cli", "conditions", "errors", "glyphs", "hooks", "method",
    "pixels", "priors", "report", "runs", "sampling", "training", "zoo",
)

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _NAMESPACES:
        return importlib.import_module(f"neurovis.{name}")
    raise AttributeError(f"module 'neurovis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_NAMES, *_NAMESPACES})


if TYPE_CHECKING:  # for type checkers and API docs; at run time the names load lazily
    from neurovis.caption import CaptionCondition
    from neurovis.chains import Chains, decode_samples, load_chains
    from neurovis.conditions import CallableCondition, ClassCondition, InpaintCondition, UnitCondition, combine
    from neurovis.errors import NeurovisError
    from neurovis.analysis import FacetReport, facets
    from neurovis.hooks import list_layers
    from neurovis.priors import GaussianPrior, GeneratorPrior, HDAEPrior, PixelPrior
    from neurovis.report import write_report
    from neurovis.sampling import sample
    from neurovis.zoo import load_model, load_prior
