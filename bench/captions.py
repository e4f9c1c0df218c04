"""Caption sampling on the glyph world: does ``--caption "a blue ring"`` draw blue rings?

For ``--captions`` captions ``"a <colour> <shape>"`` (distinct modes drawn with a seeded
numpy generator), sample with two methods on the same shipped glyph captioner
(``neurovis/glyphs/weights/glyph_captioner.pt``) and judge every kept sample with the world's
oracle (``nv.zoo.load_oracle("glyphs")``, a separate network):

* ``ppgn-caption``: the default of ``neurovis sample --model glyphs --caption`` — the
  glyph prior (``load_prior("glyphs")``) with the paper's caption settings
  (``neurovis.caption.CAPTION_SETTINGS``: ε = (1e-3, 1, 1e-17), lr 1 decaying linearly to
  1e-10, no restarts), chains starting from the prior's start bank (real images' codes).
* ``ppgn-caption-random``: the same with the paper script's random starts.
* ``ppgn-caption-encoder-only``, ``ppgn-caption-trunk-only``: the default with one of the
  captioner's two readers alone (the same weights; the ablation of their product).
* ``pixel-ascent``: the same condition followed in pixel space with the hand-designed
  prior of ``bench/facet_recall.py``'s ``pixel-am`` (``PixelPrior``: blur σ = 1 px, TV
  0.002, jitter ±2 px; ε = (1, 1, 0), lr 0.05), same chains and steps.

A sample is *kept* as a report keeps it: not a start, and ``p ≥ CAPTION_THRESHOLD`` (0.97),
``p`` the mean over the caption's words of ``p(word | previous words, image)``. It
*matches* when the oracle's mode (shape × colour) is the caption's. Figures: kept samples
out of all, the share of kept samples that match (pooled over captions, and the worst
caption), and the share of chains whose last sample (the one image the paper's script
saves) matches.

    PYTHONPATH=. python bench/captions.py [--captions 8] [--chains 10] [--steps 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import neurovis as nv
from neurovis.caption import CAPTION_SETTINGS, CAPTION_THRESHOLD
from neurovis.runs.captions import sample_caption
from neurovis.glyphs.captioner import GlyphCaptioner, glyph_caption_condition, load_glyph_captioner
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.shapes import SHAPES
from neurovis.glyphs.world import COLOURS

PIXEL_PRIOR = {"blur_sigma": 1.0, "tv": 0.002, "jitter": 2}
PIXEL_EPS = (1.0, 1.0, 0.0)
PIXEL_LR = 0.05
"""``pixel-am`` of ``bench/facet_recall.py``, unchanged."""


def pick_captions(n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` distinct (shape, colour) pairs, seeded."""
    modes = np.random.default_rng(seed).choice(64, size=n, replace=False)
    return [(int(m) // 8, int(m) % 8) for m in modes]


def one_reader(captioner: GlyphCaptioner, name: str) -> GlyphCaptioner:
    """The captioner's reader ``name`` alone (its own language model, the same weights): the
    ablation of the product of readers."""
    alone = GlyphCaptioner(captioner.encoder, {"readers": [name], name: captioner.arch[name]})
    state = {k: v for k, v in captioner.state_dict().items()
             if k.startswith(f"heads.{name}.") or (name == "trunk" and k.startswith("trunk.")) or k.startswith("encoder.")}
    alone.load_state_dict(state)
    return alone.eval()


def judge(chains: nv.Chains, mode: int, oracle: torch.nn.Module, threshold: float) -> dict[str, float]:
    kept = chains.accepted(threshold)
    c_idx, s_idx = kept.nonzero(as_tuple=True)
    out: dict[str, float] = {"samples": int((~chains.is_start).sum()), "kept": int(kept.sum())}
    with torch.no_grad():
        if c_idx.numel():
            imgs = nv.decode_samples(chains, which=(c_idx, s_idx))
            modes, _ = oracle.predict(imgs)
            out["match"] = int((modes.cpu() == mode).sum())
        else:
            out["match"] = 0
        last = nv.decode_samples(chains, which=(slice(None), -1))
        last_modes, _ = oracle.predict(last)
    out["last_match"] = int((last_modes.cpu() == mode).sum())
    out["last_kept"] = int(kept[:, -1].sum())
    out["chains"] = chains.n_chains
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=8)
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--steps", type=int, default=CAPTION_SETTINGS["steps"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="+", default=["ppgn-caption", "ppgn-caption-random", "pixel-ascent"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 captions, 4 chains, 40 steps")
    ap.add_argument("--out", help="write the markdown table here (and a .json beside it)")
    ap.add_argument("--captioner", help="a glyph captioner file other than the shipped one")
    args = ap.parse_args(argv)
    if args.quick:
        args.captions, args.chains, args.steps = 2, 4, 40
    torch.set_num_threads(args.threads)
    captions = pick_captions(args.captions, args.seed)
    oracle = nv.zoo.load_oracle("glyphs").eval()
    captioner = load_glyph_captioner(args.captioner)
    readers = {name: one_reader(captioner, name) for name in captioner.readers if len(captioner.readers) > 1}
    ppgn = nv.load_prior("glyphs")
    pixel = nv.PixelPrior((3, 64, 64), nv.pixels.RGB01.with_size((64, 64)), **PIXEL_PRIOR)
    world = GlyphWorld()
    rows: dict[str, list[dict]] = {m: [] for m in args.methods}
    started = time.perf_counter()
    for shape, colour in captions:
        text = f"a {COLOURS[colour]} {SHAPES[shape]}"
        condition = glyph_caption_condition(text, captioner)
        mode = world.mode_of(shape, colour)
        for method in args.methods:
            t0 = time.perf_counter()
            if method == "ppgn-caption":
                chains = sample_caption(ppgn, condition, chains=args.chains, steps=args.steps, seed=args.seed,
                                        progress=False)
            elif method.removeprefix("ppgn-caption-").removesuffix("-only") in readers:
                alone = glyph_caption_condition(text, readers[method.removeprefix("ppgn-caption-").removesuffix("-only")])
                chains = sample_caption(ppgn, alone, chains=args.chains, steps=args.steps, seed=args.seed,
                                        progress=False)
            elif method == "ppgn-caption-random":
                chains = sample_caption(ppgn, condition, chains=args.chains, steps=args.steps, seed=args.seed,
                                        starts="random", progress=False)
            elif method == "pixel-ascent":
                chains = nv.sample(pixel, condition, chains=args.chains, steps=args.steps, seed=args.seed,
                                   eps=PIXEL_EPS, lr=PIXEL_LR, progress=False)
            else:
                raise SystemExit(f"unknown method {method}")
            row = judge(chains, mode, oracle, CAPTION_THRESHOLD)
            row.update(caption=text, seconds=round(time.perf_counter() - t0, 1),
                       mean_last_p=round(float(chains.probs[:, -1].mean()), 4))
            rows[method].append(row)
            print(method, json.dumps(row), flush=True)
    wall = time.perf_counter() - started
    lines = [
        "# Caption sampling on the glyph world",
        "",
        f"Command: `PYTHONPATH=. python bench/captions.py --captions {args.captions} --chains {args.chains} "
        f"--steps {args.steps} --seed {args.seed} --methods {' '.join(args.methods)}"
        f"{' --captioner ' + args.captioner if args.captioner else ''}{' --out ' + args.out if args.out else ''}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
        f"wall {wall:.0f} s for everything.",
        "",
        f"Captions (seed {args.seed}): " + ", ".join(f"\"a {COLOURS[c]} {SHAPES[s]}\"" for s, c in captions) + ".",
        f"Kept: not a start and p ≥ {CAPTION_THRESHOLD} (mean word probability). Match: the oracle's mode is "
        "the caption's shape and colour.",
        "",
        "| method | kept / samples | kept that match | worst caption | last sample matches | seconds |",
        "|---|---|---|---|---|---|",
    ]
    summary = {}
    for method, rs in rows.items():
        kept = sum(r["kept"] for r in rs)
        match = sum(r["match"] for r in rs)
        samples = sum(r["samples"] for r in rs)
        per = [r["match"] / r["kept"] for r in rs if r["kept"]]
        worst = min(per) if per else float("nan")
        last = sum(r["last_match"] for r in rs) / sum(r["chains"] for r in rs)
        secs = sum(r["seconds"] for r in rs)
        share = match / kept if kept else float("nan")
        summary[method] = {"kept": kept, "samples": samples, "match_share": share, "worst": worst,
                           "last_match_share": last, "seconds": secs,
                           "captions_with_kept": len(per), "rows": rs}
        lines.append(f"| {method} | {kept:,} / {samples:,} ({kept / samples:.1%}) | {share:.3f} | {worst:.3f} "
                     f"({len(per)}/{len(rs)} captions kept any) | {last:.3f} | {secs:.0f} |")
    lines += ["", "Per caption (kept, matching share of kept, last samples matching):", "",
              "| caption | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for i, (shape, colour) in enumerate(captions):
        cells = []
        for method in rows:
            r = rows[method][i]
            share = f"{r['match'] / r['kept']:.2f}" if r["kept"] else "–"
            cells.append(f"{r['kept']} kept, {share} match, last {r['last_match']}/{r['chains']}")
        lines.append(f"| a {COLOURS[colour]} {SHAPES[shape]} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps({"args": vars(args), "wall": wall,
                                                                   "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
