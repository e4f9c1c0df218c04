#!/usr/bin/env python
"""Retrain the shipped glyph prior (G for the glyph encoder's fc6) from scratch, seeded.

    python scripts/train_glyph_prior.py [--steps N] [--threads 2] [--out runs/glyph-prior]

Needs the glyph encoder, classifier and oracle (``python scripts/train_glyphs.py``).
Trains with the recipe ``GLYPH_PRIOR_CONFIG``, resuming from ``--out`` if a checkpoint is
there, checks the gates, copies G and D into ``neurovis/glyphs/weights/`` and appends the run
(time, final metrics) to ``neurovis/glyphs/weights/TRAINING_LOG.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
from pathlib import Path

import torch

import neurovis as nv
from neurovis.priors import deepsim_glyph
from neurovis.glyphs.natural import WorldSource
from neurovis.glyphs.recipes.prior import GATES, GLYPH_FEATURE_LAYER, GLYPH_PRIOR_BATCH, GLYPH_PRIOR_CONFIG, prior_gates
from neurovis.training.prior import PriorTrainer
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.nets import WEIGHTS_DIR, load_glyph_classifier, load_glyph_encoder, load_glyph_oracle

GENERATOR_FILE = "glyph_generator.pt"
DISCRIMINATOR_FILE = "glyph_discriminator.pt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=GLYPH_PRIOR_CONFIG.steps)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=GLYPH_PRIOR_BATCH, help=f"images per step (default {GLYPH_PRIOR_BATCH})")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("runs/glyph-prior"))
    ap.add_argument("--override", default="{}", help="JSON of config fields to change (experiments)")
    ap.add_argument("--encoder", type=Path, default=None, help="encoder weights (default: the shipped one)")
    ap.add_argument("--arch", default="spatial", help="glyph generator architecture (see GLYPH_ARCHS)")
    ap.add_argument("--feature-layer", default=GLYPH_FEATURE_LAYER,
                    help=f"encoder layer of the feature-matching loss (default {GLYPH_FEATURE_LAYER})")
    ap.add_argument("--no-ship", action="store_true", help="do not copy the weights into the package")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start from this checkpoint (another run's checkpoint.pt: weights, Adam state, step) with "
                         "this run's settings, --lr included: a fine-tune, e.g. Joint PPGN-h from the Noiseless Joint G")
    ap.add_argument("--ship-as", default=GENERATOR_FILE,
                    help=f"weights file name in neurovis/glyphs/weights (default {GENERATOR_FILE}; the Joint PPGN-h "
                         "variant ships as glyph_generator_joint.pt, without a discriminator)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = dataclasses.replace(GLYPH_PRIOR_CONFIG, steps=args.steps, **json.loads(args.override))
    torch.manual_seed(config.seed)
    device = torch.device(args.device)
    generator = deepsim_glyph(arch=args.arch).to(device)
    encoder = load_glyph_encoder(args.encoder, device=device)
    trainer = PriorTrainer(generator, encoder, "fc6", args.feature_layer, WorldSource(GlyphWorld(), args.batch_size, config.seed),
                           nv.pixels.RGB01, args.out, config, output_layer="fc8")
    if args.init_from is not None and not trainer.checkpoint_path.exists():
        state = torch.load(args.init_from, map_location="cpu", weights_only=True)
        state["config"] = json.dumps(dataclasses.asdict(config))  # the fine-tune's own settings,
        for opt in ("opt_g", "opt_d"):  # its lr included (a cosine run ends at lr 0); Adam's moments carry over
            for group in state[opt]["param_groups"]:
                group["lr"] = config.lr
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(state, trainer.checkpoint_path)
    trainer.train()
    wall = trainer.rows[-1][-1] if trainer.rows else 0.0  # training seconds, resumed runs included
    generator.eval().cpu()
    code = nv.priors.LayerEncoder(load_glyph_encoder(args.encoder), "fc6")
    gates = prior_gates(generator, code, load_glyph_classifier(), load_glyph_oracle())
    passed = all(gates[k] >= v for k, v in GATES.items())
    print(json.dumps({"seconds": round(wall, 1), **gates, "gates_pass": passed}, indent=2))
    if not args.no_ship:
        ship = [(args.ship_as, generator)]
        if args.ship_as == GENERATOR_FILE:
            ship.append((DISCRIMINATOR_FILE, trainer.discriminator.cpu()))
        for name, module in ship:
            payload = {"format": "neurovis.glyphs/1", "kind": name.split("_")[1].split(".")[0],
                       "state_dict": {k: v.half() for k, v in module.state_dict().items()},
                       "arch": args.arch, "metrics": gates, "config": json.dumps(dataclasses.asdict(config))}
            tmp = WEIGHTS_DIR / (name + ".tmp")
            torch.save(payload, tmp)
            os.replace(tmp, WEIGHTS_DIR / name)
        with open(WEIGHTS_DIR / "TRAINING_LOG.md", "a") as fh:
            stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            figures = ", ".join(f"{k}={v:.4f}" for k, v in gates.items())
            kind = "prior" if args.ship_as == GENERATOR_FILE else f"prior {args.ship_as}"
            fh.write(f"- {stamp} **{kind}** steps={config.steps} device={device} threads={torch.get_num_threads()} "
                     f"wall={wall:.0f}s {figures}, gates {'PASS' if passed else 'FAIL'}\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
