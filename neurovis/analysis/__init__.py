"""Facets: numbers from chains (no files, no HTML).

One module per job: :mod:`.select` (keep rule, seeded pick, status), :mod:`.features`
(the feature space), :mod:`.clustering` (facets, medoids, diversity, stability),
:mod:`.grid` (t-SNE + optimal assignment), :mod:`.attribution` (captum heatmaps),
:mod:`.natural` (real images beside synthetic ones), :mod:`.coverage` (what the facets
found and missed), :mod:`.provenance` (weights, versions, device), :mod:`.pipeline`
(:func:`facets` and :class:`FacetReport`). Writing a report's files is
:func:`neurovis.report.write_report`.
"""

from neurovis.analysis.natural import NaturalImages, load_image_folder
from neurovis.analysis.pipeline import Facet, FacetReport, facets

__all__ = ["Facet", "FacetReport", "NaturalImages", "facets", "load_image_folder"]
