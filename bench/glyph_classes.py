"""The first demo, measured (issue 3 §7): PPGN on the glyph world, every class.

For each class c of the glyph classifier: ``sample(load_prior("glyphs"),
ClassCondition(load_model("glyphs"), c))`` with the default ε and 10 chains × 200 steps;
print the fraction of samples with p ≥ 0.97 and how many of the class's modes the
accepted samples cover (named by the oracle; a mode counts when it holds ≥ 2% of them).

    python bench/glyph_classes.py [--chains 10] [--steps 200] [--classes 0 1 ...] [--lr 1.0]
"""

from __future__ import annotations

import argparse
import time

import torch

import neurovis as nv
from neurovis.glyphs import GlyphWorld


def class_row(prior, model, oracle, world, c: int, chains: int, steps: int, lr: float, seed: int) -> dict:
    started = time.perf_counter()
    ch = nv.sample(prior, nv.ClassCondition(model, c), chains=chains, steps=steps, lr=lr, seed=seed, preset="paper", progress=False)
    ok = ch.accepted(0.97)
    modes_found: set[int] = set()
    realistic = 0.0
    if ok.any():
        imgs = nv.decode_samples(ch, which=ok)
        modes, conf = oracle.predict(imgs)
        counts = torch.bincount(modes, minlength=world.n_modes).float() / len(modes)
        modes_found = {m for m in world.class_modes(c) if counts[m] >= 0.02}
        realistic = float((conf >= 0.9).float().mean())
    return {
        "class": c,
        "accept": float(ok.float().mean()),
        "covered": len(modes_found),
        "modes": len(world.class_modes(c)),
        "realistic": realistic,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, nargs="*")
    args = ap.parse_args()
    prior, model, oracle, world = nv.load_prior("glyphs"), nv.load_model("glyphs"), nv.zoo.load_oracle("glyphs"), GlyphWorld()
    classes = args.classes if args.classes else range(world.n_classes)
    print(f"glyph world, default eps {prior.default_eps}, lr {args.lr}, {args.chains} chains x {args.steps} steps")
    print("| class | modes | p ≥ 0.97 | modes covered | oracle-confident | seconds |")
    print("|---|---|---|---|---|---|")
    rows = []
    for c in classes:
        r = class_row(prior, model, oracle, world, c, args.chains, args.steps, args.lr, args.seed)
        rows.append(r)
        names = ", ".join(world.mode_name(m) for m in world.class_modes(c))
        print(f"| {c} | {names} | {r['accept']:.2f} | {r['covered']}/{r['modes']} | {r['realistic']:.2f} | {r['seconds']:.1f} |", flush=True)
    mean_acc = sum(r["accept"] for r in rows) / len(rows)
    recall = sum(r["covered"] / r["modes"] for r in rows) / len(rows)
    print(f"| mean | | {mean_acc:.2f} | {recall:.2f} of modes | {sum(r['realistic'] for r in rows) / len(rows):.2f} | {sum(r['seconds'] for r in rows):.0f} total |")


if __name__ == "__main__":
    main()
