"""The procedural glyph world (SPEC §5): coloured glyphs whose classes are unions of modes.

>>> from neurovis.glyphs import GlyphWorld
>>> world = GlyphWorld()                 # default 16 classes x 4 modes
>>> batch = world.sample(256, seed=0)    # images (256, 3, 64, 64) RGB in [0, 1]
>>> world.mode_name(int(batch.modes[0])), world.class_names[int(batch.classes[0])]  # doctest: +SKIP

Everything of the world lives here, and only the zoo (:mod:`neurovis.zoo.glyphs`) registers
it for general code: :mod:`.nets` (classifier, encoder, oracle), :mod:`.checkpoints`
(shipped weights, the oracle as served), :mod:`.priors` and :mod:`.treatments` (the glyph
priors), :mod:`.natural` (natural images for reports, the training stream), :mod:`.coverage`
(the oracle's ground truth in a report), :mod:`.captioner`, :mod:`.evaluation` (oracle
measures) and :mod:`.recipes` (training the networks).
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
