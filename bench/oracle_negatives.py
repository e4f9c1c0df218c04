#!/usr/bin/env python
"""Realism of the old (two-head) and the new (no-glyph) oracle on world and off-world images.

    PYTHONPATH=. python bench/oracle_negatives.py --threads 1 --out bench/results/oracle_negatives.md

Realism = share of images the oracle names with confidence >= 0.9
(``neurovis.glyphs.evaluation.DEFAULT_REALISM_LEVEL``). Rows (all held out from the no-glyph
fine-tune: other seeds, and pixel-AM classes 12-15 never seen):

* world: ``GlyphWorld().sample(n, seed=12345)``; world blurred: the same, Gaussian blur
  sigma 1 px (soft images that are still glyphs);
* G(E(x)): the shipped glyph prior's reconstructions of those world images (generator
  images that are glyphs; the prior's gate counts the oracle's mode on them);
* texture / noise / blend (two glyph images, alpha 0.3-0.7): ``n`` each, seed 424242;
* pixel-AM: ``nv.sample(PixelPrior(blur 1 px, TV 0.002, jitter 2), ClassCondition(glyphs, c),
  eps=(1, 1, 0), lr=0.05)`` from noise (``bench/facet_recall.py``'s ``pixel-am``), all 16
  classes, at 60 steps and at 200 steps (the facet-recall benchmark's chain length).

A second table: facet recall of the pixel-AM chains (accepted = the classifier gives the
target class p >= 0.97 at the last step; a mode of the class is found when it holds >= 2% of
the accepted samples), counting the oracle's mode of every accepted sample (as
``evaluate_chains`` does today) or only of those it names with confidence >= 0.9.

The old oracle is read from git (``--old-rev``, the commit before the glyph head); the new
one is the shipped file. ``--also NAME=PATH`` adds columns for other oracle checkpoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neurovis as nv  # noqa: E402
from neurovis.glyphs.evaluation import DEFAULT_REALISM_LEVEL, DEFAULT_THRESHOLD, facet_recall  # noqa: E402
from neurovis.glyphs.recipes.classifier import (blend_images, gaussian_blur, noise_images, pixel_am_images,  # noqa: E402
                                         texture_images)
from neurovis.glyphs.recipes.prior import reconstruct  # noqa: E402
from neurovis.glyphs import GlyphWorld  # noqa: E402
from neurovis.glyphs.nets import load_glyph_oracle  # noqa: E402

OLD_REV = "add5be0"
WORLD_SEED, NEG_SEED, PAM_SEED = 12_345, 424_242, 8_675_309


def old_oracle(rev: str):
    blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:neurovis/glyphs/weights/glyph_oracle.pt"],
                          check=True, capture_output=True).stdout
    tmp = Path("/tmp") / f"glyph_oracle_{rev}.pt"
    tmp.write_bytes(blob)
    return load_glyph_oracle(tmp)


def rows(n: int, chains: int) -> dict[str, torch.Tensor]:
    world = GlyphWorld().sample(n, seed=WORLD_SEED)
    prior = nv.load_prior("glyphs")
    with torch.no_grad():
        recon = reconstruct(prior.generator, prior.encoder, world.images)
    out = {
        "world": world.images,
        "world, blur σ 1 px": gaussian_blur(world.images, 1.0),
        "G(E(x)) of the shipped prior": recon.clamp(0, 1),
        "texture": texture_images(n, NEG_SEED),
        "noise": noise_images(n, NEG_SEED),
        "blend of two glyphs": blend_images(n, NEG_SEED),
    }
    model = nv.load_model("glyphs")
    t = time.time()
    out["pixel-AM, 60 steps"] = pixel_am_images(range(16), chains, 60, seed=PAM_SEED, model=model)
    out["pixel-AM, 200 steps"] = pixel_am_images(range(16), chains, 200, seed=PAM_SEED + 100, model=model)
    print(f"pixel-AM images in {time.time() - t:.0f}s", file=sys.stderr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512, help="images per world/procedural row")
    ap.add_argument("--chains", type=int, default=8, help="pixel-AM chains per class (16 classes)")
    ap.add_argument("--old-rev", default=OLD_REV)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another oracle checkpoint to compare (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table as markdown here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.time()
    old, new = old_oracle(args.old_rev), load_glyph_oracle()
    others = [(a.split("=", 1)[0], load_glyph_oracle(a.split("=", 1)[1])) for a in args.also]
    data = rows(args.n, args.chains)
    lvl = DEFAULT_REALISM_LEVEL
    head = "| images | n | old oracle: realism | new oracle: realism | new: mean p(glyph) | new: mode = old's |"
    head += "".join(f" {name}: realism | {name}: mode = old's |" for name, _ in others)
    lines = [head, "|---|" + "---:|" * (5 + 2 * len(others))]
    for name, x in data.items():
        mo, co = old.predict(x)
        mn, cn = new.predict(x)
        pg = new.glyph_prob(x)
        row = (f"| {name} | {len(x)} | {(co >= lvl).float().mean():.3f} | {(cn >= lvl).float().mean():.3f} | "
               f"{pg.mean():.3f} | {(mo == mn).float().mean():.3f} |")
        for _, o in others:
            m2, c2 = o.predict(x)
            row += f" {(c2 >= lvl).float().mean():.3f} | {(mo == m2).float().mean():.3f} |"
        lines.append(row)
    model = nv.load_model("glyphs")
    world = GlyphWorld()
    lines += ["", "| pixel-AM chains | accepted (p ≥ 0.97) | facet recall, old oracle, every accepted | "
              "new oracle, every accepted | new oracle, confidence ≥ 0.9 only |", "|---|---:|---:|---:|---:|"]
    for name in ("pixel-AM, 60 steps", "pixel-AM, 200 steps"):
        x = data[name]
        cls = torch.arange(16).repeat_interleave(args.chains)
        with torch.no_grad():
            p = torch.softmax(model(x), 1)[torch.arange(len(x)), cls]
        acc = p >= DEFAULT_THRESHOLD
        mo, _ = old.predict(x)
        mn, cn = new.predict(x)
        rec = {"old": [], "new": [], "conf": []}
        for c in range(16):
            sel = acc & (cls == c)
            modes = world.class_modes(c)
            rec["old"].append(facet_recall(mo[sel], modes))
            rec["new"].append(facet_recall(mn[sel], modes))
            rec["conf"].append(facet_recall(mn[sel & (cn >= lvl)], modes))
        mean = {k: sum(v) / len(v) for k, v in rec.items()}
        lines.append(f"| {name}, 16 classes × {args.chains} | {acc.float().mean():.3f} | {mean['old']:.3f} | "
                     f"{mean['new']:.3f} | {mean['conf']:.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        cmd = "PYTHONPATH=. python bench/oracle_negatives.py " + " ".join(argv if argv is not None else sys.argv[1:])
        lscpu = subprocess.run("lscpu | head -15", shell=True, capture_output=True, text=True).stdout
        args.out.write_text(
            f"# Oracle realism on world and off-world images\n\n"
            f"Realism = share the oracle names with confidence ≥ {lvl}. Old oracle: two heads "
            f"(`{args.old_rev}`), confidence p(shape)·p(colour); new: with the no-glyph head, confidence "
            f"p(glyph)·p(shape)·p(colour). Every row is held out from the fine-tune (see the script's docstring).\n\n"
            f"{table}\n\n"
            f"Command: `{cmd}`  \nDate: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}, "
            f"wall {time.time() - t0:.0f}s (CPU shared with other jobs)\n\nMachine (`lscpu | head -15`):\n\n"
            f"```\n{lscpu}```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
