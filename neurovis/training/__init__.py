"""Training: the glyph-world networks (classifier, fine-label encoder, oracle).

Prior (G + D) training lives in its own module next to this one.
"""

from .classifier import (
    DEFAULT_STEPS,
    KINDS,
    evaluate_glyph_net,
    gaussian_blur,
    train_glyph_net,
)

__all__ = ["DEFAULT_STEPS", "KINDS", "evaluate_glyph_net", "gaussian_blur", "train_glyph_net"]
