#!/usr/bin/env python
"""Retrain the glyph-world networks from scratch (seeded) and ship their weights.

    python scripts/train_glyphs.py                       # classifier, encoder, oracle
    python scripts/train_glyphs.py --nets oracle --threads 1
    python scripts/train_glyphs.py --nets oracle --oracle-finetune --threads 1   # no-glyph head only

The oracle is trained in two stages: network and shape/colour heads on world images, then
a "no glyph" head on the frozen network's features, world images against off-world
negatives (textures, noise, blends of two glyphs, pixel-space AM images;
``finetune_oracle_no_glyph``). ``--oracle-finetune`` runs the second stage only, on the
shipped oracle's network (its old glyph head, if any, is replaced by a fresh one).

Writes ``neurovis/glyphs/weights/glyph_{classifier,encoder,oracle}.pt`` atomically (temp file
then ``os.replace``) and appends a line per network to ``neurovis/glyphs/weights/TRAINING_LOG.md``.
Uses CUDA when available. Gates: classifier >= 0.97, oracle >= 0.98 on fresh images, and
the oracle's realism (confidence >= 0.9) >= 0.95 on held-out world images and <= 0.05 on
each held-out negative kind (exit status 1 if a gate fails; the weights are written
anyway, use --no-save to skip). The oracle's state dict is saved as float16.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import torch

from neurovis.glyphs.recipes.classifier import (DEFAULT_STEPS, KINDS, finetune_oracle_no_glyph, no_glyph_gates,
                                         pick_device, train_glyph_net)
from neurovis.glyphs.recipes.encoder import train_glyph_encoder
from neurovis.glyphs.nets import (CLASSIFIER_FILE, ENCODER_FILE, ORACLE_FILE, WEIGHTS_DIR, GlyphOracle,
                                 load_glyph_oracle, save_glyph_checkpoint)

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
    ap.add_argument("--oracle-finetune", action="store_true", help="oracle: only train the no-glyph "
                    "head on the shipped oracle's frozen network instead of training from scratch")
    ap.add_argument("--no-glyph-steps", type=int, default=3000, help="steps of the oracle's no-glyph head")
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
        elif kind == "oracle":
            if args.oracle_finetune:
                base = load_glyph_oracle(args.out_dir / FILES[kind])
                stage1 = {"stage1": "shipped oracle's shape/colour weights"}
            else:
                base, m1 = train_glyph_net(kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                           device=dev, eval_n=args.eval_n, progress=not args.no_progress, log=log)
                stage1 = {f"stage1_{k}": v for k, v in m1.items() if k in ("accuracy", "train_seconds", "steps")}
            net, m = finetune_oracle_no_glyph(base, steps=args.no_glyph_steps, seed=args.seed,
                                              log=log or (lambda s: print(s, flush=True)))
            m.update(stage1)
        else:
            net, m = train_glyph_net(kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                     device=dev, eval_n=args.eval_n, progress=not args.no_progress, log=log)
        wall = time.time() - t0
        gate = GATES.get(kind)
        ok = gate is None or m["accuracy"] >= gate
        if isinstance(net, GlyphOracle):
            gates = no_glyph_gates(m)
            print(f"[{kind}] no-glyph gates: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in gates.items()))
            ok = ok and all(gates.values())
        if not ok:
            failed.append(kind)
        print(f"[{kind}] " + ", ".join(f"{k}={v}" for k, v in m.items())
              + (f" | gate {gate}: {'PASS' if ok else 'FAIL'}" if gate else ""), flush=True)
        if not args.no_save:
            path = save_glyph_checkpoint(args.out_dir / FILES[kind], net, kind, m, seed=args.seed)
            if kind == "oracle":  # float16 payload (loads as float32)
                ck = torch.load(path, map_location="cpu", weights_only=True)
                ck["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
                torch.save(ck, path.with_name(path.name + ".tmp"))
                path.with_name(path.name + ".tmp").replace(path)
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
