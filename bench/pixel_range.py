"""Does a chain's recorded probability describe the image a report shows?

The glyph generator's last layer is linear, so ``G(h)`` can leave RGB [0, 1]. Reports,
the oracle and any saved PNG show the image clipped to [0, 1]; the classifier, unless the
prior clips first (``clamp_pixels``), scores the raw values. For each class this runs PPGN
(10 chains × ``--steps``, default ε) with the glyph prior as shipped (``clamp_pixels=True``)
and with the clip off, and prints:

* out of range: share of G's pixel values outside [0, 1] over all samples;
* excursion: median over samples of the largest |value − clip(value)|;
* accepted: share of samples with recorded ``p ≥ 0.97``;
* fail when shown: share of those accepted samples whose displayed (clipped) image the
  classifier gives ``p < 0.97``.

    python bench/pixel_range.py [--classes 0,3,6,9,12,15] [--steps 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch

import neurovis as nv


def measure(prior: nv.GeneratorPrior, model: torch.nn.Module, c: int, steps: int) -> dict[str, float]:
    """Sample class ``c`` and compare the recorded probabilities with the displayed images'."""
    ch = nv.sample(prior, nv.ClassCondition(model, c), chains=10, steps=steps, seed=0, preset="paper", progress=False)
    h = ch.codes.flatten(0, 1)
    with torch.no_grad():
        x = torch.cat([prior.generator(h[i:i + 256]) for i in range(0, len(h), 256)])  # G's raw output
        shown = prior.pixel_space.clamp(x)  # what a report displays
        p_shown = torch.cat([torch.softmax(model(shown[i:i + 256]), 1)[:, c] for i in range(0, len(h), 256)])
    ok = ch.probs.flatten() >= 0.97
    return {
        "out_of_range": float((shown != x).float().mean()),
        "excursion": float((x - shown).abs().amax(dim=(1, 2, 3)).median()),
        "accepted": float(ok.float().mean()),
        "fail_shown": float((p_shown[ok] < 0.97).float().mean()) if ok.any() else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", default="0,3,6,9,12,15")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shipped, model = nv.load_prior("glyphs"), nv.load_model("glyphs")
    raw = copy.copy(shipped)  # the same networks, G's raw output to the classifier
    raw.clamp_pixels = False
    print(f"glyph world, PPGN default ε, 10 chains × {args.steps} steps, seed 0, {args.threads} threads\n")
    print("| class | clip | out of range | excursion | p ≥ 0.97 | fail when shown |")
    print("|---|---|---|---|---|---|")
    for c in (int(v) for v in args.classes.split(",")):
        for name, prior in (("on (shipped)", shipped), ("off", raw)):
            r = measure(prior, model, c, args.steps)
            print(f"| {c} | {name} | {r['out_of_range']:.2f} | {r['excursion']:.2f} | {r['accepted']:.2f} | "
                  f"{r['fail_shown']:.2f} |", flush=True)
            print(f"class {c} clip {name}: {r}", file=sys.stderr)


if __name__ == "__main__":
    main()
