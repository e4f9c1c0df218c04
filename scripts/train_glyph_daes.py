#!/usr/bin/env python
"""Train and ship the glyph world's two DAEs: R_h (PPGN-h) and R_x (PPGN-x), seeded.

    python scripts/train_glyph_daes.py [--daes hdae xdae] [--threads 1] [--steps N] [--no-ship]

Needs the glyph encoder (``python scripts/train_glyphs.py``). Recipes:
``neurovis.glyphs.recipes.daes.HDAE_CONFIG`` and ``XDAE_CONFIG``. Writes
``neurovis/glyphs/weights/glyph_hdae.pt`` / ``glyph_xdae.pt`` atomically (temp file, then
``os.replace``) as float16 payloads and appends a line per DAE (time, metrics on held-out
data) to ``neurovis/glyphs/weights/TRAINING_LOG.md``. Loaded by ``neurovis.load_prior("glyphs-ppgn-h")``
and ``("glyphs-ppgn-x")`` (:mod:`neurovis.glyphs.treatments`). Exit status 1 if a DAE
does not remove at least half of the noise energy on held-out data (``denoise_ratio`` ≥ 0.5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time

import torch

from neurovis.glyphs.recipes.daes import (
    HDAE_CONFIG,
    HDAE_KIND,
    XDAE_CONFIG,
    XDAE_KIND,
    dae_payload,
    replace_config,
    train_hdae,
    train_xdae,
)
from neurovis.glyphs.treatments import HDAE_FILE, XDAE_FILE
from neurovis.glyphs.nets import WEIGHTS_DIR

GATE_RATIO = 0.5
FILES = {HDAE_KIND: HDAE_FILE, XDAE_KIND: XDAE_FILE}
LABELS = {HDAE_KIND: "R_h (PPGN-h code DAE)", XDAE_KIND: "R_x (PPGN-x image DAE)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--daes", nargs="+", choices=[HDAE_KIND, XDAE_KIND], default=[HDAE_KIND, XDAE_KIND])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--steps", type=int, default=None, help="override the steps of every DAE (smoke runs)")
    ap.add_argument("--seed", type=int, default=None, help="override the seed (default the recipes' 0)")
    ap.add_argument("--no-ship", action="store_true", help="do not write the weights or the log")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    log = print if args.no_progress else None
    failed = []
    for kind in args.daes:
        base = HDAE_CONFIG if kind == HDAE_KIND else XDAE_CONFIG
        config = replace_config(base, steps=args.steps, seed=args.seed)
        if args.steps is not None:  # keep the decay points inside a shortened run
            config = replace_config(config, lr_decay_at=[s for s in base.lr_decay_at if s < args.steps])
        t0 = time.perf_counter()
        if kind == HDAE_KIND:
            dae, metrics = train_hdae(config, progress=progress, log=log)
            extra = {"train_relu_out": False, "code": "glyph encoder relu6 (post-ReLU fc6, 512-d)"}
        else:
            dae, metrics = train_xdae(config, progress=progress, log=log)
            extra = {"pixels": "RGB [0, 1], 64x64"}
        wall = time.perf_counter() - t0
        ok = metrics["denoise_ratio"] < GATE_RATIO
        if not ok:
            failed.append(kind)
        n_params = sum(p.numel() for p in dae.parameters())
        print(f"[{kind}] {LABELS[kind]}: {n_params} parameters, wall {wall:.0f}s, "
              + json.dumps({k: round(v, 5) for k, v in metrics.items()})
              + f" | gate denoise_ratio < {GATE_RATIO}: {'PASS' if ok else 'FAIL'}", flush=True)
        if args.no_ship:
            continue
        path = WEIGHTS_DIR / FILES[kind]
        tmp = path.with_name(path.name + ".tmp")
        torch.save(dae_payload(dae, kind, metrics, config, extra), tmp)
        os.replace(tmp, path)
        print(f"[{kind}] wrote {path} ({path.stat().st_size / 2**20:.2f} MB)", flush=True)
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        figures = ", ".join(f"{k}={v:.5g}" for k, v in metrics.items())
        with open(WEIGHTS_DIR / "TRAINING_LOG.md", "a") as fh:
            fh.write(f"- {stamp} **{kind}** ({LABELS[kind]}, `scripts/train_glyph_daes.py`) seed={config.seed} "
                     f"device=cpu threads={torch.get_num_threads()} torch={torch.__version__} "
                     f"host={platform.machine()} wall={wall:.0f}s steps={config.steps} batch={config.batch_size} "
                     f"params={n_params}: {figures}, gate denoise_ratio<{GATE_RATIO} {'PASS' if ok else 'FAIL'}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
