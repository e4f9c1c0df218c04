"""Old import path of the prior registry and the glyph prior loaders (kept for callers
written before the glyph world moved into :mod:`neurovis.glyphs`): the registry is
:mod:`neurovis.zoo.registry`, the loaders live in :mod:`neurovis.glyphs.checkpoints`,
:mod:`neurovis.glyphs.priors` and :mod:`neurovis.glyphs.treatments`."""

from __future__ import annotations

from neurovis.glyphs.checkpoints import (  # noqa: F401
    GLYPH_DISCRIMINATOR_FILE,
    GLYPH_GENERATOR_FILE,
    GLYPH_START_BANK_FILE,
    load_glyph_discriminator,
    load_glyph_generator,
    load_payload,
)
from neurovis.glyphs.priors import (  # noqa: F401
    START_BANK_IMAGES,
    START_BANK_SEED,
    UNIT_CLIP_IMAGES,
    UNIT_CLIP_SEED,
    load_glyph_dgn_am,
    load_glyph_noiseless,
    load_glyph_start_bank,
    load_glyph_unit_clip,
    make_glyph_start_bank,
    unit_code_range,
    with_glyph_bank,
    with_glyph_unit_clip,
)
from neurovis.glyphs.treatments import load_glyph_prior  # noqa: F401
from neurovis.zoo import load_prior  # noqa: F401
from neurovis.zoo.registry import register_prior, registered_priors  # noqa: F401
