"""Do a report's facets match the modes? Feature spaces and choices of k, on the glyph world.

The report (:func:`neurovis.analysis`) clusters the kept samples (p ≥ 0.97) with k-means
(:func:`neurovis.analysis.clustering.cluster`), k chosen by silhouette over 2…10 unless
given (the largest k within 0.03 of the best silhouette).
This bench samples one method of ``bench/facet_recall.py`` per class, keeps the accepted
samples, names each one's mode with the oracle, and measures the normalised mutual
information (NMI) between the facets and the oracle's modes for:

* each feature space of the report (``code``: the chain code h, the default; ``layer``:
  the classifier's penultimate features; ``pixels``: the image at 16×16), k by the
  report's rule (:func:`neurovis.analysis.clustering.cluster`);
* the default feature space with k fixed (``--facets 3,4,6,8``), as ``--facets K`` gives;
* the default feature space with k by other silhouette tolerances (``--k-tolerance
  0,0.02``): the largest k whose silhouette lies within the tolerance of the best one
  (the report's rule uses 0.03; 0 is the best silhouette alone); a class the report
  calls a single facet (the Gaussian null) stays one.

The clustering is the report's own (same PCA, k-means and seed); the NMI is
:func:`neurovis.glyphs.evaluation.facet_mode_nmi` over all kept samples, as in facet_recall's
NMI column, except that a class clustered into a single facet counts here as NMI 0 (the
facets tell its modes apart not at all) where facet_recall leaves it out. Also printed per
class: how many modes hold ≥ 2% of the kept samples (the class's own and the neighbouring
glyphs the chains pass through).

    python bench/facet_clustering.py [--method joint-real-starts-reset] [--classes 0,3]
                                     [--chains 10] [--steps 200] [--facets 3,4,6,8] [--k-tolerance 0.03]
                                     [--json PATH]

Progress goes to stderr, tables (Markdown) to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facet_recall import (  # noqa: E402
    QUICK,
    Glyphs,
    common_arguments,
    comparison_methods,
    load_glyphs,
    markdown_table,
    parse_list,
    resolve_device,
    settings,
    write_json,
)
from neurovis.glyphs.evaluation import DEFAULT_MIN_SHARE, facet_mode_nmi, mode_shares  # noqa: E402
from neurovis.analysis import clustering as cl  # noqa: E402
from neurovis.analysis.features import compute_features  # noqa: E402
from neurovis.chains import decode_samples  # noqa: E402

FEATURE_SPACES = ("code", "layer", "pixels")
DEFAULT_FIXED_K = (3, 4, 6, 8)


def class_rows(g: Glyphs, run: Any, c: int, chains: int, steps: int, seed: int, threshold: float,
               fixed_k: Sequence[int], tolerances: Sequence[float] = ()) -> dict[str, Any]:
    """Sample class ``c`` with ``run``; NMI and k of every clustering variant on its kept samples."""
    started = time.perf_counter()
    ch = run(g, c, chains, steps, seed)
    keep = np.flatnonzero(ch.probs.numpy().reshape(-1) >= threshold)
    row: dict[str, Any] = {"class": c, "kept": int(keep.size), "variants": {}}
    if keep.size < cl.MIN_SAMPLES:
        return row
    images = decode_samples(ch, space="uint8")[torch.from_numpy(keep)]  # (N, 3, H, W) uint8 RGB
    codes = ch.codes.reshape(-1, *ch.codes.shape[2:])[keep]
    with torch.no_grad():
        modes, _ = g.oracle.predict(images.float().div(255).to(g.prior.device))
    modes = modes.cpu().numpy()
    row["modes_at_2pct"] = sum(share >= DEFAULT_MIN_SHARE for share in mode_shares(modes).values())
    feats = {name: compute_features(name, codes, images, ch.prior, ch.condition).values for name in FEATURE_SPACES}
    with cl.few_threads():
        by_rule = {name: cl.cluster(x, None, seed) for name, x in feats.items()}
        for name, clus in by_rule.items():
            row["variants"][f"{name}, k by the report's rule"] = {"nmi": facet_mode_nmi(clus.labels, modes), "k": clus.k}
        for k in fixed_k:
            clus = cl.cluster(feats["code"], k, seed)
            row["variants"][f"code, k = {k}"] = {"nmi": facet_mode_nmi(clus.labels, modes), "k": clus.k}
        default = by_rule["code"]  # its silhouettes serve every tolerance
        for tol in tolerances:
            clus = default
            if default.chosen_by == "silhouette":  # the same seeded k-means fit as the silhouette's
                clus = cl.cluster(feats["code"], cl.choose_k(default.silhouette_by_k, tol), seed)
            row["variants"][f"code, largest k within {tol:g} of the best silhouette"] = {
                "nmi": facet_mode_nmi(clus.labels, modes), "k": clus.k}
    row["wall_time_s"] = round(time.perf_counter() - started, 3)
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Mean NMI and mean k per variant over ``rows`` (classes that kept enough samples)."""
    names = list(rows[0]["variants"]) if rows else []
    table = []
    for name in names:
        nmi = np.mean([r["variants"][name]["nmi"] for r in rows])
        k = np.mean([r["variants"][name]["k"] for r in rows])
        table.append([name, f"{nmi:.3f}", f"{k:.1f}"])
    return markdown_table(["features, k", "NMI facets–modes", "mean k"], table)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(ap)
    ap.add_argument("--steps", type=int, help="steps per chain (default 200)")
    ap.add_argument("--method", default="joint-real-starts-reset",
                    help="one method of bench/facet_recall.py (default joint-real-starts-reset)")
    ap.add_argument("--facets", default=",".join(map(str, DEFAULT_FIXED_K)),
                    help="comma-separated fixed k to compare on the code features (default 3,4,6,8)")
    ap.add_argument("--k-tolerance", default="",
                    help="comma-separated silhouette tolerances: also choose the largest k within each of the best "
                         "silhouette (default none)")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    g = load_glyphs(device)
    classes, chains = settings(args, g.world)
    steps = args.steps or (QUICK["steps"] if args.quick else 200)
    methods = {m.key: m for m in comparison_methods(steps)}
    if args.method not in methods:
        raise SystemExit(f"facet_clustering: unknown method {args.method!r}; use one of {sorted(methods)}")
    fixed_k = parse_list(args.facets, int) or []
    tolerances = parse_list(args.k_tolerance, float) or []
    print(f"glyph world: classes {classes}, {chains} chains × {steps} steps, seed {args.seed}, "
          f"threshold {args.threshold}, method {args.method} ({methods[args.method].note}), {device}", flush=True)
    rows = []
    for c in classes:
        row = class_rows(g, methods[args.method].run, c, chains, steps, args.seed, args.threshold, fixed_k, tolerances)
        rows.append(row)
        shown = ", ".join(f"{n} {v['nmi']:.2f}/{v['k']}" for n, v in row["variants"].items())
        print(f"class {c:2d}: {row['kept']} kept, {row.get('modes_at_2pct', 0)} modes at ≥ 2%: {shown}",
              file=sys.stderr, flush=True)
    kept = [r for r in rows if r["variants"]]
    print(f"\n### facets against oracle modes, means over {len(kept)} classes\n")
    print(summary_table(kept))
    if kept:
        print(f"\nmodes holding ≥ 2% of the kept samples: {np.mean([r['modes_at_2pct'] for r in kept]):.1f} "
              f"per class (range {min(r['modes_at_2pct'] for r in kept)}–{max(r['modes_at_2pct'] for r in kept)})")
    if args.json:
        write_json(args.json, {"config": {"classes": classes, "chains": chains, "steps": steps, "seed": args.seed,
                                          "threshold": args.threshold, "method": args.method, "device": str(device),
                                          "k_tolerances": tolerances},
                               "classes": rows})


if __name__ == "__main__":
    main()
