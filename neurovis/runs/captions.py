"""Sampling a caption with the paper's caption settings (paper §3.5)."""

from __future__ import annotations

from typing import Any

from neurovis.caption import CAPTION_SETTINGS, CaptionCondition
from neurovis.chains import Chains
from neurovis.sampling import sample


def sample_caption(prior: Any, condition: CaptionCondition, **settings: Any) -> Chains:
    """:func:`neurovis.sample` with the paper's caption settings
    (:data:`~neurovis.caption.CAPTION_SETTINGS`) for every setting not given:
    ``sample_caption(prior, condition, chains=10)`` equals
    ``nv.sample(prior, condition, chains=10, **CAPTION_SETTINGS)``."""
    return sample(prior, condition, **{**CAPTION_SETTINGS, **settings})
