"""The procedural glyph world (SPEC §5): coloured glyphs whose classes are unions of modes.

>>> from neurovis.glyphs import GlyphWorld
>>> world = GlyphWorld()                 # default 16 classes x 4 modes
>>> batch = world.sample(256, seed=0)    # images (256, 3, 64, 64) RGB in [0, 1]
>>> world.mode_name(int(batch.modes[0])), world.class_names[int(batch.classes[0])]  # doctest: +SKIP
"""

from neurovis.glyphs.export import write_image_folder
from neurovis.glyphs.shapes import SHAPE_SDFS, SHAPES
from neurovis.glyphs.world import (
    BACKGROUNDS,
    COLOUR_RGB,
    COLOURS,
    DEFAULT_CLASS_MODES,
    DEFAULT_PARTITION,
    GlyphBatch,
    GlyphWorld,
    stream_seed,
)

__all__ = [
    "BACKGROUNDS",
    "COLOUR_RGB",
    "COLOURS",
    "DEFAULT_CLASS_MODES",
    "DEFAULT_PARTITION",
    "GlyphBatch",
    "GlyphWorld",
    "SHAPES",
    "SHAPE_SDFS",
    "stream_seed",
    "write_image_folder",
]
