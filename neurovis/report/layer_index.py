"""A layer's index: one facet report per unit plus a sortable table of them."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Sequence

from neurovis._utils.files import atomic_write_text
from neurovis.analysis.provenance import versions
from neurovis.report.html import render_layer
from neurovis.report.schema import LAYER_FORMAT, SCHEMA_VERSION, clean


def unit_folder(unit: int) -> str:
    """Sub-folder of a unit's report inside a layer report: ``unit_0007``."""
    return f"unit_{int(unit):04d}"


def unit_row(unit: int, doc: dict[str, Any]) -> dict[str, Any]:
    """The layer index's row for one unit, from its ``facets.json`` document."""
    folder = unit_folder(unit)
    fig = doc["figures"]
    return {
        "unit": int(unit), "folder": folder, "status": doc["status"],
        "acceptance_rate": fig["acceptance_rate"], "n_facets": fig["n_facets"],
        "effective_n_facets": fig["effective_n_facets"], "vendi_score": fig["vendi_score"],
        "mean_pairwise_distance": fig["mean_pairwise_distance"],
        "thumbnail": f"{folder}/{doc['files']['thumbnail']}",
    }


def write_layer_index(
    folder: Path, title: str, model: str, layer: str, rows: Sequence[dict[str, Any]],
    command: str, timings: dict[str, float], compute: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``layer.json`` and ``index.html`` into ``folder`` (next to the unit folders).

    ``compute``: threads, BLAS and CPU kernels of the run (recorded with the versions)."""
    doc = clean({
        "schema_version": SCHEMA_VERSION, "format": LAYER_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "title": title, "model": model, "layer": layer, "units": list(rows),
        "reproducibility": {"command": command, "versions": versions(), "timings_s": timings,
                            **({"compute": compute} if compute else {})},
    })
    atomic_write_text(folder / "layer.json", json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    atomic_write_text(folder / "index.html", render_layer(doc))
    return doc
