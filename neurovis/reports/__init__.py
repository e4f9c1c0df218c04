"""Facet reports (SPEC §4): filter, pick, cluster into facets, lay out, explain, write.

One module per job: :mod:`.select` (threshold, seeded pick, status rules), :mod:`.features`
(the feature space), :mod:`.clustering` (facets, medoids, diversity, stability),
:mod:`.grid` (t-SNE + optimal assignment), :mod:`.attribution` (captum heatmaps),
:mod:`.natural` (real images beside synthetic ones), :mod:`.figures` (PNG pictures),
:mod:`.schema` (``facets.json`` / ``samples.h5``), :mod:`.render` + :mod:`.html` (files and
pages), :mod:`.write` (atomic folders), :mod:`.layer` (layer index), :mod:`.pipeline`
(:func:`facets` and :class:`FacetReport`).
"""

from .natural import NaturalImages, glyph_world_images, load_image_folder
from .pipeline import Facet, FacetReport, facets
from .schema import SCHEMA_VERSION

__all__ = ["Facet", "FacetReport", "NaturalImages", "SCHEMA_VERSION", "facets", "glyph_world_images", "load_image_folder"]
