"""Recipes that train the glyph world's shipped networks (classifier, encoder, oracle, DAEs,
prior). Run through ``scripts/train_glyphs.py`` and friends."""

from neurovis.glyphs.recipes.classifier import DEFAULT_STEPS, KINDS, evaluate_glyph_net, gaussian_blur, train_glyph_net

__all__ = ["DEFAULT_STEPS", "KINDS", "evaluate_glyph_net", "gaussian_blur", "train_glyph_net"]
