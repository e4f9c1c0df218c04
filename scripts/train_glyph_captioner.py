#!/usr/bin/env python
"""Train and ship the glyph world's captioner (the offline stand-in for LRCN), seeded.

    python scripts/train_glyph_captioner.py [--threads 1] [--steps N] [--no-ship | --out PATH]

Recipe: ``neurovis.glyphs.captioner.CAPTIONER_CONFIG`` (fresh world images every
step, captions "a <colour> <shape> on <background>"). Writes
``neurovis/glyphs/weights/glyph_captioner.pt`` atomically (temp file, then ``os.replace``) as a
float16 payload with its held-out metrics. Loaded by
``neurovis.glyphs.captioner.load_glyph_captioner()`` and used by
``neurovis sample --model glyphs --caption "a blue ring"``. Exit status 1 if fewer than 98%
of held-out images get their colour and shape right (``mode_accuracy``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

from neurovis.glyphs.captioner import (
    CAPTIONER_CONFIG,
    captioner_payload,
    default_captioner_path,
    train_glyph_captioner,
)

GATE = 0.98


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's steps (smoke runs)")
    ap.add_argument("--seed", type=int, default=None, help="override the recipe's seed (0)")
    ap.add_argument("--no-ship", action="store_true", help="do not write the weights")
    ap.add_argument("--out", help="write the weights here instead of the shipped file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    config = dataclasses.replace(CAPTIONER_CONFIG, **changes)
    t0 = time.perf_counter()
    model, metrics = train_glyph_captioner(config, log=lambda line: print(line, flush=True))
    wall = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ok = metrics["mode_accuracy"] >= GATE
    print(f"captioner: {n_params} parameters, wall {wall:.0f}s, threads {torch.get_num_threads()}, "
          + json.dumps(metrics) + f" | gate mode_accuracy ≥ {GATE}: {'PASS' if ok else 'FAIL'}", flush=True)
    if not args.no_ship:
        path = Path(args.out) if args.out else default_captioner_path()
        tmp = path.with_name(path.name + ".tmp")
        torch.save(captioner_payload(model, {**metrics, "wall_seconds": round(wall, 1), "params": n_params}, config), tmp)
        os.replace(tmp, path)
        print(f"wrote {path} ({path.stat().st_size / 2**10:.0f} KiB)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
