"""HTML rendering with jinja2 (``autoescape=True``: every string from a model, a layer name
or a class name reaches the page as text, never as markup).

Pages are self-contained: styles inline, images by relative path, no external URL, no
XHR; the layer index's sorting is a few lines of inline script working on the table."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2

from neurovis.report.figures import facet_hex


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 10 ** -digits):
        return f"{v:.{digits}g}"
    text = f"{v:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@lru_cache(maxsize=1)
def environment():
    """The jinja2 environment over ``neurovis/report/templates`` (autoescaping on)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("neurovis.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["pretty"] = _pretty
    return env


STATUS_LABELS = {
    "ok": "ok",
    "nothing_passed_threshold": "nothing passed the threshold",
    "single_facet": "single facet",
    "dead_unit": "dead unit",
}


def render_report(doc: dict[str, Any]) -> str:
    """``index.html`` of one report from its ``facets.json`` document."""
    colours = [facet_hex(i) for i in range(max(1, len(doc["facets"])))]
    return environment().get_template("report.html.j2").render(doc=doc, colours=colours, status_labels=STATUS_LABELS)


def render_layer(doc: dict[str, Any]) -> str:
    """``index.html`` of a layer: one sortable row per unit, linking to its report."""
    return environment().get_template("layer.html.j2").render(doc=doc, status_labels=STATUS_LABELS)
