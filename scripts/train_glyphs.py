#!/usr/bin/env python
"""Retrain the glyph-world networks from scratch (seeded) and ship their weights.

    python scripts/train_glyphs.py                       # classifier, encoder, oracle
    python scripts/train_glyphs.py --nets oracle --threads 1

Writes ``neurovis/weights/glyph_{classifier,encoder,oracle}.pt`` atomically (temp file
then ``os.replace``) and appends a line per network to ``neurovis/weights/TRAINING_LOG.md``.
Uses CUDA when available. Gates: classifier >= 0.97, oracle >= 0.98 on fresh images
(exit status 1 if a gate fails; the weights are written anyway, use --no-save to skip).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import torch

from neurovis.training.classifier import DEFAULT_STEPS, KINDS, pick_device, train_glyph_net
from neurovis.training.glyph_encoder import train_glyph_encoder
from neurovis.zoo.glyphs import CLASSIFIER_FILE, ENCODER_FILE, ORACLE_FILE, WEIGHTS_DIR, save_glyph_checkpoint

FILES = {"classifier": CLASSIFIER_FILE, "encoder": ENCODER_FILE, "oracle": ORACLE_FILE}
GATES = {"classifier": 0.97, "oracle": 0.98}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="override steps for every net "
                    f"(defaults {DEFAULT_STEPS})")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ap.add_argument("--eval-n", type=int, default=4096)
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    print(f"device {dev}, torch threads {torch.get_num_threads()}, seed {args.seed}", flush=True)
    failed = []
    for kind in args.nets:
        t0 = time.time()
        log = (lambda s: print(s, flush=True)) if args.no_progress else None
        if kind == "encoder":  # fine labels: modes + glyph mask + layout (see training/glyph_encoder.py)
            net, m = train_glyph_encoder(steps=args.steps or DEFAULT_STEPS[kind], batch_size=args.batch_size,
                                         seed=args.seed, device=dev, log=log or (lambda s: None))
        else:
            net, m = train_glyph_net(kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                     device=dev, eval_n=args.eval_n, progress=not args.no_progress, log=log)
        wall = time.time() - t0
        gate = GATES.get(kind)
        ok = gate is None or m["accuracy"] >= gate
        if not ok:
            failed.append(kind)
        print(f"[{kind}] " + ", ".join(f"{k}={v}" for k, v in m.items())
              + (f" | gate {gate}: {'PASS' if ok else 'FAIL'}" if gate else ""), flush=True)
        if not args.no_save:
            path = save_glyph_checkpoint(args.out_dir / FILES[kind], net, kind, m, seed=args.seed)
            size_mb = path.stat().st_size / 2**20
            print(f"[{kind}] wrote {path} ({size_mb:.2f} MB)", flush=True)
            _append_log(args.out_dir / "TRAINING_LOG.md", kind, m, wall, args, dev, ok, gate)
    return 1 if failed else 0


def _append_log(path: Path, kind: str, m: dict, wall: float, args, dev, ok: bool, gate) -> None:
    new = not path.exists()
    with open(path, "a") as fh:
        if new:
            fh.write("# Glyph network training log\n\nAppended by `scripts/train_glyphs.py`; metrics on "
                     "fresh world images (`world.sample(eval_n, eval_seed)`).\n\n")
        stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        keys = [k for k in m if k not in ("device",)]
        metrics = ", ".join(f"{k}={m[k]}" for k in keys)
        gate_s = f", gate {gate} {'PASS' if ok else 'FAIL'}" if gate else ""
        fh.write(f"- {stamp} **{kind}** seed={args.seed} device={dev} threads={torch.get_num_threads()} "
                 f"torch={torch.__version__} host={platform.machine()} wall={wall:.0f}s: {metrics}{gate_s}\n")


if __name__ == "__main__":
    sys.exit(main())
