"""Report: a :class:`~neurovis.analysis.FacetReport` written as files (PNGs, ``samples.h5``,
``facets.json``, ``index.html``) and the index page of a whole layer.

This package reads what :mod:`neurovis.analysis` computed; nothing below it imports it.
"""

from neurovis.report.layer_index import write_layer_index
from neurovis.report.schema import SCHEMA_VERSION
from neurovis.report.write import write_report

__all__ = ["SCHEMA_VERSION", "write_layer_index", "write_report"]
