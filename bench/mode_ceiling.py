"""Can the prior draw every facet? The ceiling a sampler's facet recall can reach.

Facet recall (``bench/facet_recall.py``) counts a class's modes among the samples the
classifier accepts (p ≥ 0.97) and the oracle names. A mode no code of the prior can draw
that way is out of any sampler's reach. For every mode of the glyph world this takes
``--images`` fresh world images x of it and reconstructs them through the prior,
``G(E(x))`` clipped to RGB [0, 1] as the chains' samples are, and prints:

* real p ≥ 0.97: share of the real images x the classifier accepts for their class;
* p ≥ 0.97: share of reconstructions the classifier accepts for the mode's class;
* oracle: share the oracle names as the mode with confidence ≥ 0.9 (the realism level);
* both: share meeting both, i.e. samples that facet recall would credit to the mode.

A mode is *drawable* when at least ``--min-share`` (default 10%) of its reconstructions
meet both; the ceiling of a class is its drawable modes over its 4 modes, and the mean
over classes bounds the facet recall of a sampler that only visits codes E gives real
images. Priors: the shipped Noiseless Joint prior (``glyphs``) and Joint PPGN-h
(``glyphs-joint``) by default.

    python bench/mode_ceiling.py [--priors glyphs,glyphs-joint] [--images 64] [--min-share 0.1]
                                 [--seed 555] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

import neurovis as nv
from neurovis.glyphs.evaluation import DEFAULT_REALISM_LEVEL, DEFAULT_THRESHOLD
from neurovis.glyphs import GlyphWorld


def mode_rates(prior: nv.GeneratorPrior, model: torch.nn.Module, oracle, images: torch.Tensor, mode: int,
               cls: int) -> dict[str, float]:
    """Shares of ``images`` (RGB [0, 1], ``(N, 3, 64, 64)``, all of ``mode``) whose
    reconstructions the classifier accepts for ``cls`` / the oracle names / both."""
    with torch.no_grad():
        x = prior.pixel_space.clamp(prior.generator(prior.encode(images)))
        p = torch.softmax(model(x), 1)[:, cls]
        named, conf = oracle.predict(x)
    accepted = p >= DEFAULT_THRESHOLD
    oracle_ok = (named == mode) & (conf >= DEFAULT_REALISM_LEVEL)
    return {"accept": float(accepted.float().mean()), "oracle": float(oracle_ok.float().mean()),
            "both": float((accepted & oracle_ok).float().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--priors", default="glyphs,glyphs-joint", help="registered glyph priors, comma-separated")
    ap.add_argument("--images", type=int, default=64, help="fresh world images per mode")
    ap.add_argument("--min-share", type=float, default=0.1, help="share of reconstructions that makes a mode drawable")
    ap.add_argument("--seed", type=int, default=555, help="mode m's images come from world seed SEED + m")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    world, model, oracle = GlyphWorld(), nv.load_model("glyphs"), nv.zoo.load_oracle("glyphs")
    names = args.priors.split(",")
    priors = {name: nv.load_prior(name) for name in names}
    rows = []
    for m in range(world.n_modes):
        batch = world.sample(args.images, seed=args.seed + m, modes=m)
        cls = int(batch.classes[0])
        with torch.no_grad():
            real = float((torch.softmax(model(batch.images), 1)[:, cls] >= DEFAULT_THRESHOLD).float().mean())
        rows.append({"mode": m, "class": cls, "real": real,
                     **{n: mode_rates(p, model, oracle, batch.images, m, cls) for n, p in priors.items()}})

    print(f"glyph world, {args.images} fresh images per mode (seed {args.seed} + mode), reconstructions "
          f"G(E(x)) clipped to [0, 1], p ≥ {DEFAULT_THRESHOLD}, oracle confidence ≥ {DEFAULT_REALISM_LEVEL}\n")
    head = "| mode | class | real p ≥ 0.97 | " + " | ".join(f"{n}: p ≥ 0.97 | {n}: oracle | {n}: both" for n in names)
    print(head + " |")
    print("|---" * (3 + 3 * len(names)) + "|")
    for r in rows:
        cells = [world.mode_name(r["mode"]), str(r["class"]), f"{r['real']:.2f}"]
        for n in names:
            cells += [f"{r[n]['accept']:.2f}", f"{r[n]['oracle']:.2f}", f"{r[n]['both']:.2f}"]
        print("| " + " | ".join(cells) + " |")

    print(f"\n| prior | drawable modes (both ≥ {args.min_share:.0%}) | recall ceiling (mean over classes) | "
          "least drawable mode (both) | mean both |")
    print("|---|---|---|---|---|")
    for n in names:
        drawable = [r for r in rows if r[n]["both"] >= args.min_share]
        ceiling = sum(
            sum(1 for r in drawable if r["class"] == c) / len(world.class_modes(c)) for c in range(world.n_classes)
        ) / world.n_classes
        worst = min(rows, key=lambda r: r[n]["both"])
        mean_both = sum(r[n]["both"] for r in rows) / len(rows)
        print(f"| {n} | {len(drawable)} of {len(rows)} | {ceiling:.2f} | {world.mode_name(worst['mode'])} "
              f"{worst[n]['both']:.2f} | {mean_both:.2f} |")
    print(f"\n{time.perf_counter() - started:.0f} s, {args.threads} threads")


if __name__ == "__main__":
    main()
