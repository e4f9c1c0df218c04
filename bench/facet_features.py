"""Which feature space lets the report's facets match the modes? Candidate spaces, glyph classes.

The report clusters the kept samples of a unit or class into facets (PCA, k-means, k by
silhouette: :func:`neurovis.analysis.clustering.cluster`). This bench samples the 16 glyph
classes with the default method (``nv.sample(nv.load_prior("glyphs"), condition)``; all
classes in one batch through ``UnitsCondition`` on ``fc8``), keeps the samples at p ≥ 0.97
(starts never kept), names each kept sample's mode with the oracle and measures the NMI
between the facets and the oracle's modes, for candidate feature spaces that any model
offers (no oracle, no glyph knowledge):

* ``code``: the chain code h (the report's default until now);
* ``layer``: the input of the classifier's last linear layer (its penultimate features);
* ``<layer>:pool``: a hidden layer's feature map, averaged and max-pooled over positions
  (``2·C`` numbers), e.g. ``relu5:pool``;
* ``<layer>:flat``: the layer's output flattened;
* ``multi``: several pooled layers, each standardised and weighted by 1/√dims, side by side.

``--burn-in 0,1,2,3`` also scores each keep rule "p ≥ 0.97 and at least b steps after the
chain's last (re)start" (b = 0 is today's rule: only the start itself is never kept): kept
share, facet recall, realism (oracle confidence ≥ 0.9) and the NMI of the report's own
clustering (code space) and of ``--burn-in-features``, with the project's own measures
(:func:`neurovis.glyphs.evaluation.evaluate_samples`).

Chains are cached (``--cache DIR``: one HDF5 file per seed), so spaces can be compared on the
same samples. The oracle only scores; it never enters a feature.

    PYTHONPATH=. python bench/facet_features.py [--seed 0] [--chains 10] [--steps 200] [--cache DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import neurovis as nv  # noqa: E402
from facet_recall import load_glyphs, markdown_table, write_json  # noqa: E402
from neurovis.analysis import clustering as cl  # noqa: E402
from neurovis.analysis.features import compute_features  # noqa: E402
from neurovis.glyphs import evaluation as ev  # noqa: E402
from neurovis.hooks.capture import run_to  # noqa: E402

THRESHOLD = 0.97
POOLED = ("relu1", "relu2", "relu3", "relu4", "relu5")


def pooled(model: torch.nn.Module, layer: str, images: torch.Tensor, flat: bool = False) -> np.ndarray:
    """Layer ``layer``'s output for RGB [0, 1] images ``(N, 3, H, W)``: mean and max over
    positions ``(N, 2C)``, or flattened."""
    out = []
    with torch.no_grad():
        for x in images.split(256):
            a = run_to(model, x, [layer])[layer]
            out.append(a.flatten(1) if flat or a.dim() == 2 else torch.cat([a.mean((2, 3)), a.amax((2, 3))], 1))
    return torch.cat(out).float().numpy()


def standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    s = x.std(0)
    x = x / np.where(s > 1e-8, s, 1.0)
    return x / np.sqrt(x.shape[1])


def spaces(model: torch.nn.Module, codes: torch.Tensor, images_u8: torch.Tensor, chains: Any,
           ) -> dict[str, np.ndarray]:
    rgb = images_u8.float() / 255.0
    out: dict[str, np.ndarray] = {
        "code": compute_features("code", codes, images_u8, chains.prior, chains.condition).values,
        "layer": compute_features("layer", codes, images_u8, chains.prior, chains.condition).values,
    }
    for layer in POOLED:
        out[f"{layer}:pool"] = pooled(model, layer, rgb)
    out["pool5:flat"] = pooled(model, "pool5", rgb, flat=True)
    out["multi(relu3-5)"] = np.concatenate([standardise(out[f"relu{i}:pool"]) for i in (3, 4, 5)], 1)
    out["multi(relu2-5)"] = np.concatenate([standardise(out[f"relu{i}:pool"]) for i in (2, 3, 4, 5)], 1)
    out["multi(relu3-5,layer)"] = np.concatenate([out["multi(relu3-5)"], standardise(out["layer"])], 1)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--classes", default="0-15")
    ap.add_argument("--cache", metavar="DIR")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--burn-in", default="", help="comma-separated b values to score (e.g. 0,1,2,3)")
    ap.add_argument("--burn-in-features", default="code,layer,relu5:pool,multi(relu3-5)")
    ap.add_argument("--no-spaces", action="store_true", help="skip the feature-space table")
    args = ap.parse_args(argv)
    lo, _, hi = args.classes.partition("-")
    classes = list(range(int(lo), int(hi or lo) + 1))
    g = load_glyphs("cpu")
    model = g.model
    prior = nv.load_prior("glyphs")
    cond = nv.conditions.UnitsCondition(model, "fc8", tuple(classes), args.chains)
    cache = Path(args.cache) / f"classes_seed{args.seed}_{args.chains}x{args.steps}.h5" if args.cache else None
    started = time.perf_counter()
    if cache is not None and cache.exists():
        run = nv.load_chains(cache, prior=prior)
    else:
        run = nv.sample(prior, cond, chains=args.chains * len(classes), steps=args.steps, seed=args.seed,
                        progress=False)
        if cache is not None:
            run.save(cache)
    print(f"[sample] {len(classes)} classes in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    burn = [int(b) for b in args.burn_in.split(",") if b]
    if burn:
        burn_in_table(g, model, prior, run, classes, args, burn)
    if args.no_spaces:
        return
    rows: list[dict[str, Any]] = []
    for j, c in enumerate(classes):
        r = slice(j * args.chains, (j + 1) * args.chains)
        probs = run.probs[r].clone()
        # probability of class c: UnitsCondition's per-chain probability is the softmax at its unit
        keep_mask = (probs >= THRESHOLD) & ~run.is_start[r]
        keep = np.flatnonzero(keep_mask.numpy().reshape(-1))
        if keep.size < cl.MIN_SAMPLES:
            rows.append({"class": c, "kept": int(keep.size)})
            continue
        sub = nv.Chains(run.codes[r], keep_mask.float(), run.activations[r], run.eps1[r], run.failed[r],
                        run.chain_ids[r], dict(run.config), prior=prior,
                        condition=nv.ClassCondition(model, c))
        images = nv.decode_samples(sub, space="uint8")[torch.from_numpy(keep)]  # (N, 3, H, W) uint8 RGB
        codes = sub.codes.reshape(-1, *sub.codes.shape[2:])[keep]
        with torch.no_grad():
            modes, conf = g.oracle.predict(images.float().div(255))
        modes = modes.numpy()
        feats = spaces(model, codes, images, sub)
        row: dict[str, Any] = {"class": c, "kept": int(keep.size), "variants": {}}
        with cl.few_threads():
            for name, x in feats.items():
                for k in (None, 4):
                    clus = cl.cluster(x, k, args.seed)
                    key = f"{name}, k {'by rule' if k is None else k}"
                    row["variants"][key] = {"nmi": ev.facet_mode_nmi(clus.labels, modes), "k": clus.k}
        rows.append(row)
        best = max(row["variants"].items(), key=lambda kv: kv[1]["nmi"])
        print(f"[class {c}] kept {keep.size}; code {row['variants']['code, k by rule']['nmi']:.2f}; "
              f"best {best[0]} {best[1]['nmi']:.2f}", file=sys.stderr, flush=True)
    scored = [r for r in rows if "variants" in r]
    names = list(scored[0]["variants"]) if scored else []
    table = [[n, f"{np.mean([r['variants'][n]['nmi'] for r in scored]):.3f}",
              f"{np.mean([r['variants'][n]['k'] for r in scored]):.1f}"] for n in names]
    print(f"\n### NMI facets–modes, {len(scored)} classes, seed {args.seed}, {args.chains} × {args.steps}\n")
    print(markdown_table(["features, k", "NMI", "mean k"], table))
    if args.json:
        write_json(args.json, {"config": vars(args), "rows": rows})


def since_start(chains: Any) -> torch.Tensor:
    """``(C, T+1)`` int: steps since each sample's chain last (re)started (0 at a start)."""
    starts = chains.is_start
    out = torch.zeros(starts.shape, dtype=torch.long)
    for t in range(1, starts.shape[1]):
        out[:, t] = torch.where(starts[:, t], 0, out[:, t - 1] + 1)
    return out


def burn_in_table(g: Any, model: torch.nn.Module, prior: Any, run: Any, classes: Sequence[int], args: Any,
                  burn: Sequence[int]) -> None:
    """Kept share, recall, realism and NMI per burn-in ``b``, means over ``classes``."""
    age = since_start(run)
    names = [n for n in args.burn_in_features.split(",") if n]
    results: dict[int, list[dict[str, Any]]] = {b: [] for b in burn}
    for j, c in enumerate(classes):
        r = slice(j * args.chains, (j + 1) * args.chains)
        sub = nv.Chains(run.codes[r], run.probs[r], run.activations[r], run.eps1[r], run.failed[r],
                        run.chain_ids[r], dict(run.config), prior=prior, condition=nv.ClassCondition(model, c))
        rgb_u8 = nv.decode_samples(sub, space="uint8")  # (C·(T+1), 3, H, W) uint8 RGB
        images = rgb_u8.float().div(255).reshape(args.chains, -1, *rgb_u8.shape[1:])
        flat_codes = sub.codes.reshape(-1, *sub.codes.shape[2:])
        with torch.no_grad():
            all_modes, _ = g.oracle.predict(images.reshape(-1, *images.shape[2:]))
        for b in burn:
            probs = run.probs[r].masked_fill(age[r] <= b if b > 0 else run.is_start[r], float("nan"))
            kept = np.flatnonzero((probs >= THRESHOLD).numpy().reshape(-1))
            row = ev.evaluate_samples(images, probs, g.oracle, g.world.class_modes(c), THRESHOLD,
                                      failed=sub.failed, mixing_window=None)
            row["nmi"] = {}
            if kept.size >= cl.MIN_SAMPLES:
                feats = spaces(model, flat_codes[kept], rgb_u8[torch.from_numpy(kept)], sub)
                with cl.few_threads():
                    for name in names:
                        clus = cl.cluster(feats[name], None, args.seed)
                        row["nmi"][name] = ev.facet_mode_nmi(clus.labels, all_modes.numpy()[kept])
            results[b].append(row)
            print(f"[burn {b}] class {c}: kept {kept.size} recall {row['facet_recall']:.2f} realism "
                  f"{row['realism']:.2f} nmi " + " ".join(f"{k}={v:.2f}" for k, v in row["nmi"].items()),
                  file=sys.stderr, flush=True)
    table = []
    for b, rows in results.items():
        nmi = {n: np.nanmean([r["nmi"].get(n, np.nan) for r in rows]) for n in names}
        table.append([str(b), f"{np.mean([r['acceptance'] for r in rows]):.3f}",
                      f"{np.mean([r['facet_recall'] for r in rows]):.3f}",
                      f"{np.nanmean([r['realism'] for r in rows]):.3f}", *[f"{nmi[n]:.3f}" for n in names]])
    print(f"\n### burn-in after each (re)start, {len(classes)} classes, seed {args.seed}, {args.chains} × {args.steps}\n")
    print(markdown_table(["burn-in b", "kept share", "facet recall", "realism", *[f"NMI {n}" for n in names]], table),
          flush=True)


if __name__ == "__main__":
    main()
