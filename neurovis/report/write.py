"""Turning a :class:`~neurovis.analysis.pipeline.FacetReport` into files in a folder:
``img/*.png``, ``samples.h5``, ``facets.json`` (the document) and ``index.html`` (rendered
from that same document, so the page and the JSON cannot disagree)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from neurovis._utils.files import atomic_write_text, staged_dir
from neurovis.analysis.natural import FLAG_PERCENTILE
from neurovis.analysis.select import STATUSES
from neurovis.report import figures as fig
from neurovis.report.html import render_report
from neurovis.report.schema import FORMAT, SAMPLES_FORMAT, SAMPLES_FORMAT_VERSION, SCHEMA_VERSION, clean

if TYPE_CHECKING:
    from neurovis.analysis.pipeline import FacetReport

IMG = "img"
TILE = 64


def _png(folder: Path, name: str, image: np.ndarray) -> str:
    fig.save_png(image, folder / IMG / name)
    return f"{IMG}/{name}"


def write_images(report: "FacetReport", folder: Path) -> dict[str, Any]:
    """Save every picture the page shows; return the relative paths by role."""
    (folder / IMG).mkdir(parents=True, exist_ok=True)
    images = report.images
    paths: dict[str, Any] = {"facets": [], "natural_top": [], "natural_random": []}
    paths["thumbnail"] = _png(folder, "thumbnail.png", report.thumbnail)
    sel = report.selection
    if report.grid is not None and sel.picked.size:
        grid_img = fig.mosaic(images[sel.picked], report.grid.cells, report.grid.side, report.labels[sel.picked], TILE)
        paths["grid"] = _png(folder, "grid.png", grid_img)
    chain = report.filmstrip_chain()
    steps = fig.pick_frames(report.chains.n_steps + 1)
    start = chain * (report.chains.n_steps + 1)
    probs = np.nan_to_num(report.chains.probs.numpy(), nan=0.0)
    fig.filmstrip(images[[start + s for s in steps]], steps, probs, chain, sel.threshold,
                  folder / IMG / "filmstrip.png", prob_label="p")
    paths["filmstrip"] = {"chain": chain, "steps": steps, "image": f"{IMG}/filmstrip.png"}
    nat = report.natural
    for f in report.facets:
        entry: dict[str, Any] = {
            "medoid": _png(folder, f"facet_{f.id:02d}_medoid.png", images[f.medoid]),
            "thumbnails": [_png(folder, f"facet_{f.id:02d}_member_{i:02d}.png", images[s]) for i, s in enumerate(f.thumbnails)],
            "attribution": None, "neighbours": [],
        }
        if f.heat is not None:
            entry["attribution"] = _png(folder, f"facet_{f.id:02d}_attribution.png", fig.overlay(images[f.medoid], f.heat))
        if nat is not None and nat.neighbours is not None and report.natural_images is not None:
            for j, (idx, _) in enumerate(nat.neighbours[f.id]):
                entry["neighbours"].append(
                    _png(folder, f"facet_{f.id:02d}_natural_{j}.png", _nat(report, idx)))
        paths["facets"].append(entry)
    if nat is not None:
        paths["natural_top"] = [_png(folder, f"natural_top_{i}.png", _nat(report, i_)) for i, i_ in enumerate(nat.top)]
        paths["natural_random"] = [_png(folder, f"natural_random_{i}.png", _nat(report, i_)) for i, i_ in enumerate(nat.random)]
    cov = (report.coverage or {}).get("natural")
    if cov and report.natural_images is not None:
        paths["coverage"] = {c["cluster"]: [_png(folder, f"natural_cluster_{c['cluster']:02d}_{j}.png", _nat(report, i))
                                            for j, i in enumerate(c["images"])] for c in cov["clusters"]}
    return paths


def _nat(report: "FacetReport", index: int) -> np.ndarray:
    return report.natural_images.images[int(index)].permute(1, 2, 0).numpy()  # type: ignore[union-attr]


def _coverage_doc(report: "FacetReport", paths: dict[str, Any]) -> dict[str, Any]:
    """``coverage`` of ``facets.json``: the ground truth (glyph world) and the natural
    clusters, each cluster's example images with their files."""
    cov = {k: v for k, v in (report.coverage or {}).items() if k != "summary"}
    nat = cov.get("natural")
    if nat and report.natural_images is not None:
        names = report.natural_images.names
        files = paths.get("coverage", {})
        nat = {**nat, "clusters": [{**c, "images": [{"index": i, "name": names[i], "image": img}
                                                    for i, img in zip(c["images"], files.get(c["cluster"], []))]}
                                   for c in nat["clusters"]]}
        cov["natural"] = nat
    return cov


def document(report: "FacetReport", paths: dict[str, Any]) -> dict[str, Any]:
    """The ``facets.json`` document (schema in :mod:`neurovis.report.schema`)."""
    sel = report.selection
    chains = report.chains
    cfg = chains.config
    chain_row, step = sel.chain_step(np.arange(sel.n_samples))
    chain_ids = chains.chain_ids.numpy()
    nat = report.natural
    nat_imgs = report.natural_images
    facets = []
    for f, p in zip(report.facets, paths["facets"]):
        neighbours = None
        flagged = None
        if nat is not None and nat.neighbours is not None and nat_imgs is not None:
            neighbours = [{"index": i, "name": nat_imgs.names[i], "distance": d, "image": img}
                          for (i, d), img in zip(nat.neighbours[f.id], p["neighbours"])]
            flagged = nat.flagged[f.id]  # type: ignore[index]
        attribution = None
        if f.attribution is not None:
            attribution = {**f.attribution, "image": p["attribution"]}
        facets.append({
            "id": f.id, "size": f.size, "fraction": f.size / max(sel.kept.size, 1),
            "members": f.members,
            "medoid": {"sample": f.medoid, "chain": int(chain_ids[chain_row[f.medoid]]), "step": int(step[f.medoid]),
                       "image": p["medoid"]},
            "prob": {"mean": f.prob_mean, "min": f.prob_min},
            "activation": {"mean": f.act_mean, "min": f.act_min},
            "diversity": {"mean_pairwise_distance": f.mean_pairwise_distance, "vendi_score": f.vendi_score},
            "thumbnails": [{"sample": s, "image": img} for s, img in zip(f.thumbnails, p["thumbnails"])],
            "attribution": attribution,
            "natural_neighbours": neighbours,
            "no_natural_neighbour": flagged,
        })
    grid = None
    if report.grid is not None and "grid" in paths:
        grid = {**report.grid.describe(), "image": paths["grid"], "samples": sel.picked,
                "cells": report.grid.cells, "facets": report.labels[sel.picked]}
    natural = None
    if nat is not None and nat_imgs is not None:
        def row(i: int, img: str) -> dict[str, Any]:
            return {"index": int(i), "name": nat_imgs.names[int(i)], "activation": float(nat.activations[i]),
                    "prob": float(nat.probs[i]), "image": img}

        natural = {
            "source": nat.source,
            "top": [row(i, img) for i, img in zip(nat.top, paths["natural_top"])],
            "random": [row(i, img) for i, img in zip(nat.random, paths["natural_random"])],
            "random_rule": nat.random_rule,
            "feature_space": nat.feature_space,
            "flag_distance": nat.flag_distance,
            "flag_rule": (f"a facet is flagged when its medoid's nearest natural image is farther than the "
                          f"{FLAG_PERCENTILE:g}th percentile of the natural images' own nearest-neighbour distances"),
        }
    cond = cfg.get("condition", {})
    doc = {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT,
        "created": report.provenance["created"],
        "title": report.title,
        "status": report.status,
        "status_reason": report.status_reason,
        "condition": cond,
        "probability": cfg.get("probability", "probability"),
        "threshold": sel.threshold,
        "keep": sel.keep,
        "summary": report.coverage.get("summary"),
        "coverage": _coverage_doc(report, paths),
        "counts": {"chains": chains.n_chains, "steps": chains.n_steps, "samples": sel.n_samples,
                   "failed_chains": int(chains.failed.sum()), "kept": int(sel.kept.size), "picked": int(sel.picked.size)},
        "figures": report.figures,
        "feature_space": report.features.describe() if report.features is not None else None,
        "clustering": report.clustering.describe() if report.clustering is not None else None,
        "facets": facets,
        "grid": grid,
        "filmstrip": paths.get("filmstrip"),
        "natural": natural,
        "files": {"html": "index.html", "json": "facets.json", "samples": "samples.h5", "images": f"{IMG}/",
                  "thumbnail": paths["thumbnail"]},
        "reproducibility": {
            "command": report.provenance["command"],
            "report_config": report.config,
            "sampling_config": cfg,
            "seeds": {"sampling": cfg.get("seed"), "report": report.config["seed"]},
            "eps": cfg.get("eps"), "rule": cfg.get("rule"), "reset_every": cfg.get("reset_every"),
            "weights": report.provenance["weights"],
            "versions": report.provenance["versions"],
            "device": report.provenance["device"],
            "timings_s": dict(report.timings),
        },
    }
    assert doc["status"] in STATUSES
    return clean(doc)


def write_samples(report: "FacetReport", path: Path, doc_json: str) -> None:
    """``samples.h5``: every sample with its code, image, p, activation, chain, step, facet."""
    sel = report.selection
    chains = report.chains
    n = sel.n_samples
    chain_row, step = sel.chain_step(np.arange(n))
    kept = np.zeros(n, bool)
    kept[sel.kept] = True
    picked = np.zeros(n, bool)
    picked[sel.picked] = True
    cells = np.full((n, 2), -1, np.int64)
    if report.grid is not None and sel.picked.size:
        cells[sel.picked] = report.grid.cells
    with h5py.File(path, "w") as f:
        f.attrs["format"] = SAMPLES_FORMAT
        f.attrs["format_version"] = SAMPLES_FORMAT_VERSION
        f.attrs["facets_json"] = doc_json
        f.create_dataset("codes", data=chains.codes.reshape(n, *chains.codes.shape[2:]).numpy(),
                         compression="gzip", compression_opts=1)
        f.create_dataset("images", data=report.images, compression="gzip", compression_opts=1)
        f.create_dataset("probs", data=chains.probs.numpy().reshape(-1))
        f.create_dataset("activations", data=chains.activations.numpy().reshape(-1))
        f.create_dataset("chain", data=chains.chain_ids.numpy().astype(np.int64)[chain_row])
        f.create_dataset("step", data=step.astype(np.int64))
        f.create_dataset("eps1", data=chains.eps1.numpy().reshape(-1))
        f.create_dataset("failed", data=chains.failed.numpy().astype(bool)[chain_row])
        f.create_dataset("kept", data=kept)
        f.create_dataset("picked", data=picked)
        f.create_dataset("facet", data=report.labels.astype(np.int64))
        f.create_dataset("grid_cell", data=cells)


def write_report(report: "FacetReport", out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``index.html``, ``facets.json``, ``samples.h5`` and ``img/*.png`` to ``out_dir``.

    The folder appears complete or not at all (staged, then renamed). An existing
    non-empty folder is replaced only with ``force`` and only if it is a report.
    Returns the folder.
    """
    with staged_dir(out_dir, force) as tmp:
        write_files(report, tmp)
    return Path(out_dir)


def write_files(report: "FacetReport", folder: Path) -> dict[str, Any]:
    """Write the whole report into ``folder`` (a fresh staging folder); return the document."""
    start = time.perf_counter()
    paths = write_images(report, folder)
    report.timings["figures"] = round(time.perf_counter() - start, 4)
    doc = document(report, paths)
    start = time.perf_counter()
    write_samples(report, folder / "samples.h5", json.dumps(doc, allow_nan=False))
    doc["reproducibility"]["timings_s"]["write"] = round(time.perf_counter() - start, 4)
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
    atomic_write_text(folder / "facets.json", text + "\n")
    atomic_write_text(folder / "index.html", render_report(doc))
    return doc
