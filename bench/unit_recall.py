"""Facet recall for hidden units, and for a classifier the project never shipped.

Three parts (``--parts units,share,other``; default all):

``units``
    Hidden units of the glyph classifier chosen by a seeded rule, not by hand: for each of
    conv3, conv4, conv5, fc6, fc7 a seeded permutation of the layer's units
    (``numpy.random.default_rng(seed + layer index)``), taking the first 7, 7, 6, 6, 6 units
    that are alive on natural images (activation above 0 on some of the 16,384 ground-truth
    images) and whose ground truth is not empty; the units skipped on the way are counted.
    Ground truth: :func:`neurovis.glyphs.evaluation.unit_modes` (modes holding ≥ 5% of the unit's
    top-1% images among 16,384 seeded world images, the activation read as ``UnitCondition``
    reads it: pre-ReLU, the centre of a conv map). Each unit is sampled with the
    recommended method (:func:`recommended_sample`), its samples kept by the hidden-unit
    keep-rule (activation ≥ the unit's 99th percentile on 4,096 *other* natural images,
    :func:`neurovis.glyphs.evaluation.unit_keep_threshold`; samples at start and reset indices never
    kept, :func:`neurovis.glyphs.evaluation.unit_kept`), then scored as classes are in
    ``bench/facet_recall.py`` (:func:`neurovis.glyphs.evaluation.evaluate_chains` with the keep
    mask as the probability and threshold 0.5): facet recall (ground-truth modes holding ≥
    2% of the kept samples), realism (share of kept samples the oracle names with confidence
    ≥ 0.9) and the NMI of the report's facets (``neurovis.facets`` on the same kept samples,
    attribution off, no bootstrap) against the oracle's modes.
``share``
    Every unit of conv3, conv5 and fc6: is the default report non-empty (at least one sample
    kept by the keep-rule)? Units dead on natural images are left out (and counted). Chains
    are shorter than the default (``--share-chains``/``--share-steps``, 1 × 20 by default,
    so at most 18 samples can be kept): a non-empty short run means a non-empty default
    run, so the share is a lower bound. With ``--share-full`` the units left empty are run
    again at ``--chains × --steps`` (the default budget), which gives the share at the
    default budget, and ``--share-check`` units per layer that the short run found
    non-empty are rerun at the full budget to confirm the bound's premise. Units are
    sampled as ``neurovis layer`` samples them (each unit's chains ``0..C-1``).
``other``
    A classifier of another architecture (:class:`SmallResNet`: residual blocks with
    BatchNorm, global average pooling; the shipped one is AlexNet-shaped without BatchNorm),
    trained here on the CPU on another seeded partition of the 64 modes into 16 classes of
    4 (:func:`other_partition`), with nothing tuned on it. Its class facet recall with the
    shipped prior and the same method, beside the shipped classifier's on the same number
    of classes; class samples are kept at ``p ≥ 0.97`` (start and reset indices excluded for
    both classifiers).

    PYTHONPATH=. python bench/unit_recall.py [--parts units,share,other] [--chains 10] [--steps 200]
        [--units-per-layer 7,7,6,6,6] [--share-chains 1] [--share-steps 20] [--classes 16]
        [--train-steps 800] [--json PATH] [--seed 0]

Progress goes to stderr, Markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import neurovis as nv  # noqa: E402
from facet_recall import _mean, fmt, load_glyphs, markdown_table, write_json  # noqa: E402
from neurovis.glyphs import evaluation as ev  # noqa: E402
from neurovis.chains import Chains  # noqa: E402
from neurovis.glyphs import GlyphWorld  # noqa: E402
from neurovis.sampling.batched import Backoff, sample_units  # noqa: E402

LAYERS = ("conv3", "conv4", "conv5", "fc6", "fc7")
UNITS_PER_LAYER = (7, 7, 6, 6, 6)
SHARE_LAYERS = ("conv3", "conv5", "fc6")
NATURAL_IMAGES = 4096
NATURAL_SEED = 31_337
"""The keep-rule's natural images: ``world_sample(4096, seed=31337)``, not the ground truth's."""
REAL_STARTS_IMAGES = 1024
REAL_STARTS_SEED = 4242
EPS = (1e-5, 1.0, 1e-17)
RESET_EVERY = 10
PRIOR = "glyphs-joint"


# ----------------------------------------------------------------------------- the method


_PRIOR: dict[str, nv.priors.Prior] = {}


def recommended_prior() -> nv.priors.Prior:
    """The glyph world's prior as users get it, ``nv.load_prior("glyphs")`` (Joint PPGN-h
    with the shipped start bank: the codes of the same 1,024 world images, seed 4242)."""
    if "p" not in _PRIOR:
        _PRIOR["p"] = nv.load_prior("glyphs")
    return _PRIOR["p"]


def recommended_sample(condition: Any, chains: int, steps: int, seed: int) -> Chains:
    """The default, nothing set: ``nv.sample(nv.load_prior("glyphs"), condition)`` (the
    recommended method: Joint PPGN-h, starts and restarts every 10 steps from the shipped
    start bank, ε = (1e-5, 1, 1e-17), faithful rule, lr 1)."""
    return nv.sample(recommended_prior(), condition, chains=chains, steps=steps, seed=seed, progress=False)


def sub_chains(chains: Chains, rows: slice, probs: torch.Tensor, condition: Any) -> Chains:
    """Chains ``rows`` of a run, with ``probs`` (their keep mask as 0/1) in place of the
    condition's probability, so that the report and ``evaluate_chains`` keep exactly them
    at threshold 0.5."""
    return Chains(chains.codes[rows], probs, chains.activations[rows], chains.eps1[rows], chains.failed[rows],
                  chains.chain_ids[rows], dict(chains.config), prior=chains.prior, condition=condition)


def score_kept(g: Any, chains: Chains, kept: np.ndarray, truth: Sequence[int], nmi: bool, seed: int,
               pick: int = 400) -> dict[str, Any]:
    """Recall, realism and NMI of the ``kept`` ``(C, T+1)`` samples of ``chains`` against
    ``truth`` (modes), as ``bench/facet_recall.py`` measures classes."""
    mask = torch.from_numpy(kept.astype(np.float32))
    sub = sub_chains(chains, slice(None), mask, chains.condition)
    report = None
    if nmi and int(kept.sum()) >= ev.MIN_KEPT_FOR_NMI:
        report = nv.facets(sub, threshold=0.5, pick=pick, seed=seed, attribution=False, bootstrap=0, progress=False)
    row = ev.evaluate_chains(sub, g.oracle, truth, 0.5, g.discriminator, report)
    if report is None:
        row["nmi_note"] = "NMI off" if not nmi else f"only {int(kept.sum())} kept (< {ev.MIN_KEPT_FOR_NMI})"
    else:
        row["report_status"] = report.status
    row["n_kept"] = int(kept.sum())
    return row


# ----------------------------------------------------------------------------- units


def choose_units(acts: dict[str, np.ndarray], modes: np.ndarray, counts: Sequence[int], seed: int
                 ) -> tuple[dict[str, list[int]], dict[str, dict[str, int]]]:
    """The seeded rule: per layer, a permutation of its units, the first ``count`` alive
    (not :func:`~neurovis.glyphs.evaluation.dead_on_natural`) with a non-empty ground truth."""
    chosen, skipped = {}, {}
    for i, (layer, count) in enumerate(zip(LAYERS, counts)):
        order = np.random.default_rng(seed + i).permutation(acts[layer].shape[1])
        picks, dead, empty = [], 0, 0
        for u in order:
            if len(picks) == count:
                break
            a = acts[layer][:, u]
            if ev.dead_on_natural(a):
                dead += 1
            elif not ev.modes_of_top_images(a, modes):
                empty += 1
            else:
                picks.append(int(u))
        chosen[layer], skipped[layer] = picks, {"dead": dead, "empty_truth": empty}
    return chosen, skipped


def run_units(g: Any, model: nn.Module, gt: dict[str, np.ndarray], gt_modes: np.ndarray, nat: dict[str, np.ndarray],
              chosen: dict[str, list[int]], chains: int, steps: int, seed: int, nmi: bool) -> list[dict[str, Any]]:
    """Sample every chosen unit (one batch per layer: ``UnitsCondition``), keep, score."""
    rows = []
    for layer, units in chosen.items():
        if not units:
            continue
        cond = nv.conditions.UnitsCondition(model, layer, tuple(units), chains)
        started = time.perf_counter()
        run = recommended_sample(cond, chains * len(units), steps, seed)
        wall = time.perf_counter() - started
        print(f"[units] {layer}: {len(units)} units × {chains} chains × {steps} steps in {wall:.0f} s",
              file=sys.stderr, flush=True)
        for j, u in enumerate(units):
            rows_j = slice(j * chains, (j + 1) * chains)
            truth = ev.modes_of_top_images(gt[layer][:, u], gt_modes)
            level = ev.unit_keep_threshold(nat[layer][:, u])
            kept = ev.unit_kept(run.activations[rows_j].numpy(), level, RESET_EVERY, run.failed[rows_j].numpy())
            one = sub_chains(run, rows_j, run.probs[rows_j], cond.unit(j))
            one.config["wall_time_s"] = wall / len(units)
            row = score_kept(g, one, kept, truth, nmi, seed)
            row.update(layer=layer, unit=u, truth=truth, keep_threshold=level,
                       natural_max=float(np.max(nat[layer][:, u])), sample_act_max=float(np.nanmax(one.activations)))
            rows.append(row)
            print(f"[units] {layer} {u:3d}: truth {truth} kept {row['n_kept']:4d} recall {row['facet_recall']:.2f} "
                  f"found {row['modes_found']} realism {fmt(row['realism'])} nmi {fmt(row['nmi'])}",
                  file=sys.stderr, flush=True)
    return rows


def _empty_units(model: nn.Module, nat: dict[str, np.ndarray], layer: str, units: Sequence[int], chains: int,
                 steps: int, seed: int, per_batch: int, label: str) -> list[int]:
    """The units of ``units`` whose run of ``chains × steps`` keeps no sample. Sampled as
    ``neurovis layer`` samples (:func:`neurovis.sampling.batched.sample_units`): each unit's
    chains are chains ``0..chains-1`` of the seeded family, as ``neurovis facets`` runs them."""
    empty, backoff = [], Backoff(per_batch)
    for k in range(0, len(units), per_batch):
        part = list(units[k : k + per_batch])
        runs = sample_units(recommended_prior(), model, layer, part, chains=chains, backoff=backoff, steps=steps,
                            seed=seed)
        for u, run in zip(part, runs):
            level = ev.unit_keep_threshold(nat[layer][:, u])
            if not ev.unit_kept(run.activations.numpy(), level, RESET_EVERY, run.failed.numpy()).any():
                empty.append(u)
        print(f"[share] {layer} {label}: {k + len(part)}/{len(units)} units, {len(empty)} empty so far",
              file=sys.stderr, flush=True)
    return empty


def run_share(model: nn.Module, nat: dict[str, np.ndarray], gt: dict[str, np.ndarray], chains: int, steps: int,
              seed: int, full_chains: int = 0, full_steps: int = 0, check: int = 0) -> dict[str, Any]:
    """Per layer of :data:`SHARE_LAYERS`: which alive units get a non-empty report.

    Stage 1: every alive unit, ``chains × steps`` (short). Stage 2 (``full_chains`` > 0): the
    units stage 1 left empty, again at ``full_chains × full_steps`` (the default budget). A
    unit non-empty in stage 1 is non-empty at the default budget: its stage-1 samples are the
    first ``steps`` samples of chains ``0..chains-1`` of the default run (the same seeded
    chains, up to float rounding of another batch); ``check`` such units per layer (seeded)
    are rerun at the full budget to confirm it."""
    out: dict[str, Any] = {}
    rng = np.random.default_rng(seed + 99)
    for layer in SHARE_LAYERS:
        n = nat[layer].shape[1]
        alive = [u for u in range(n) if not (ev.dead_on_natural(nat[layer][:, u]) and ev.dead_on_natural(gt[layer][:, u]))]
        started = time.perf_counter()
        empty = _empty_units(model, nat, layer, alive, chains, steps, seed, 64, f"{chains}x{steps}")
        row = {"units": n, "dead": n - len(alive), "alive": len(alive), "empty": empty,
               "non_empty_share": (len(alive) - len(empty)) / max(len(alive), 1)}
        if full_chains:
            full_empty = _empty_units(model, nat, layer, empty, full_chains, full_steps, seed, 8,
                                      f"{full_chains}x{full_steps}")
            non_empty = [u for u in alive if u not in empty]
            checked = sorted(rng.choice(non_empty, size=min(check, len(non_empty)), replace=False).tolist()) if check else []
            check_empty = _empty_units(model, nat, layer, checked, full_chains, full_steps, seed, 8, "check") if checked else []
            row.update(full_empty=full_empty, full_share=(len(alive) - len(full_empty)) / max(len(alive), 1),
                       checked=checked, checked_empty=check_empty)
        row["wall_s"] = round(time.perf_counter() - started, 1)
        out[layer] = row
        print(f"[share] {layer}: {len(alive) - len(empty)}/{len(alive)} alive units non-empty at {chains}x{steps}"
              + (f", {len(alive) - len(row['full_empty'])}/{len(alive)} at {full_chains}x{full_steps}" if full_chains else "")
              + f" ({n - len(alive)} dead) in {row['wall_s']:.0f} s", file=sys.stderr, flush=True)
    layers = list(out.values())
    alive = sum(v["alive"] for v in layers)
    out["all"] = {"alive": alive, "non_empty": alive - sum(len(v["empty"]) for v in layers),
                  "dead": sum(v["dead"] for v in layers)}
    out["all"]["non_empty_share"] = out["all"]["non_empty"] / max(alive, 1)
    if full_chains:
        out["all"]["full_non_empty"] = alive - sum(len(v["full_empty"]) for v in layers)
        out["all"]["full_share"] = out["all"]["full_non_empty"] / max(alive, 1)
        out["all"]["checked"] = sum(len(v["checked"]) for v in layers)
        out["all"]["checked_empty"] = sum(len(v["checked_empty"]) for v in layers)
    return out


# ----------------------------------------------------------------------------- another classifier


def other_partition(seed: int = 2026) -> list[list[int]]:
    """16 classes of 4 modes: a seeded permutation of the 64 modes cut into fours (no
    constraint on shapes or colours, unlike the shipped partition)."""
    perm = np.random.default_rng(seed).permutation(64)
    return [sorted(int(m) for m in perm[4 * c : 4 * c + 4]) for c in range(16)]


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class SmallResNet(nn.Module):
    """A small ResNet with BatchNorm on 64×64 RGB [0, 1]: stem 5×5/2 conv (24 ch) and 2×2 max
    pool (16×16), residual blocks 24 → 48 (8×8) → 96 (4×4), global average pooling, a
    linear layer ``head`` to 16 logits (166k parameters; sized to train in minutes on a
    shared CPU)."""

    def __init__(self, n_classes: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 24, 5, 2, 2, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.block1 = _Block(24, 48, 2)
        self.block2 = _Block(48, 96, 2)
        self.head = nn.Linear(96, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        return self.head(x.mean((2, 3)))


def train_other(world: GlyphWorld, steps: int, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                pool: int = 16_384) -> tuple[nn.Module, dict[str, Any]]:
    """Train :class:`SmallResNet` on world images with the shipped classifier's blur/noise
    augmentation, Adam, warm-up then cosine; accuracy on 2,048 held-out images. Settings
    fixed before any sampling, never tuned on the sampler.

    The images come from a pool of ``pool`` world images rendered once (seeded; 256 per
    mode on average), from which each step draws a seeded batch: rendering a fresh batch
    per step (``world.stream``) cost more than the training step itself on the 2-core CPU
    (5 ms an image). ``pool=0`` streams fresh batches instead."""
    from neurovis.glyphs.recipes.classifier import blur_noise_augment

    torch.manual_seed(seed)
    net = SmallResNet(world.n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    warm = max(1, steps // 20)
    aug = torch.Generator().manual_seed(seed + 17)
    started = time.perf_counter()
    if pool:
        data = world.sample(pool, seed=seed + 5000)
        print(f"[other] rendered a pool of {pool} images in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
        pick = torch.Generator().manual_seed(seed + 29)
        batches: Iterator[Any] = ((data.images[i], data.classes[i]) for i in
                                  (torch.randint(pool, (batch_size,), generator=pick) for _ in range(steps)))
    else:
        batches = ((b.images, b.classes) for b in world.stream(batch_size, seed=seed + 5000, n_batches=steps))
    net.train()
    for i, (images, classes) in enumerate(batches):
        t = (i - warm) / max(1, steps - warm)
        for group in opt.param_groups:
            group["lr"] = lr * (i + 1) / warm if i < warm else lr * 0.5 * (1 + math.cos(math.pi * t))
        loss = F.cross_entropy(net(blur_noise_augment(images, aug)), classes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i % 100 == 0 or i == steps - 1:
            print(f"[other] train step {i}/{steps} loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    net.eval()
    test = world.sample(2048, seed=987_000)
    with torch.no_grad():
        pred = torch.cat([net(x).argmax(1) for x in test.images.split(256)])
    ok = (pred == test.classes).float()
    per_mode = torch.zeros(64).index_add_(0, test.modes, ok) / torch.bincount(test.modes, minlength=64).clamp(min=1)
    return net, {"accuracy": float(ok.mean()), "min_mode_accuracy": float(per_mode.min()),
                 "train_s": round(time.perf_counter() - started, 1), "steps": steps, "batch_size": batch_size, "lr": lr,
                 "pool": pool}


def class_rows(g: Any, model: nn.Module, logits_layer: str, world: GlyphWorld, classes: Sequence[int], chains: int,
               steps: int, seed: int, nmi: bool, tag: str) -> list[dict[str, Any]]:
    """Class facet recall of ``model`` (its classes = ``world``'s partition) with the method.

    Every class runs in one batch: ``UnitsCondition`` on the logits layer, whose
    probability, activation and reference gradient per chain are exactly
    ``ClassCondition(model, c)``'s (softmax over the logits, the logit, ``(1 − p)·∂logit``)."""
    cond = nv.conditions.UnitsCondition(model, logits_layer, tuple(classes), chains)
    started = time.perf_counter()
    run = recommended_sample(cond, chains * len(classes), steps, seed)
    wall = time.perf_counter() - started
    print(f"[{tag}] {len(classes)} classes × {chains} chains × {steps} steps in {wall:.0f} s", file=sys.stderr, flush=True)
    rows = []
    for j, c in enumerate(classes):
        rows_j = slice(j * chains, (j + 1) * chains)
        one = sub_chains(run, rows_j, run.probs[rows_j], cond.unit(j))
        one.config["wall_time_s"] = wall / len(classes)
        kept = ev.unit_kept(one.probs.numpy(), ev.DEFAULT_THRESHOLD, RESET_EVERY, one.failed.numpy())
        row = score_kept(g, one, kept, world.class_modes(c), nmi, seed)
        row["class"] = c
        rows.append(row)
        print(f"[{tag}] class {c:2d} {world.class_modes(c)}: kept {row['n_kept']} recall {row['facet_recall']:.2f} "
              f"found {row['modes_found']} realism {fmt(row['realism'])} nmi {fmt(row['nmi'])}", file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------- output


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means (finite entries only, their count kept) of the scored rows."""
    out: dict[str, Any] = {"n": len(rows)}
    for key in ("facet_recall", "realism", "nmi", "acceptance", "disc_logprob"):
        out[key], out[f"{key}_n"] = _mean(rows, key)
    out["truth_modes_mean"] = float(np.mean([len(r.get("truth", r.get("class_modes", []))) for r in rows])) if rows else math.nan
    return out


def cell(s: dict[str, Any], key: str) -> str:
    text = fmt(s[key])
    return text if s[f"{key}_n"] == s["n"] or text == "n/a" else f"{text} ({s[f'{key}_n']}/{s['n']})"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="units,share,other")
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--units-per-layer", default=",".join(map(str, UNITS_PER_LAYER)))
    ap.add_argument("--share-chains", type=int, default=1)
    ap.add_argument("--share-steps", type=int, default=20)
    ap.add_argument("--share-full", action="store_true", help="rerun the units the short run left empty at "
                    "--chains × --steps (the default budget), and --share-check non-empty ones per layer to confirm")
    ap.add_argument("--share-check", type=int, default=8)
    ap.add_argument("--classes", type=int, default=16, help="classes 0..N-1 of each classifier")
    ap.add_argument("--train-steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--truth-images", type=int, default=ev.DEFAULT_UNIT_IMAGES,
                    help="world images of the ground truth (default 16,384; fewer only for smoke runs)")
    ap.add_argument("--no-nmi", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--other-weights", metavar="PT", help="the trained SmallResNet: loaded if present, else "
                    "trained and saved here")
    ap.add_argument("--cache", metavar="NPZ", help="keep the ground-truth and natural activations here (reused if "
                    "present; it must come from the same --truth-images)")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    counts = [int(x) for x in args.units_per_layer.split(",")]
    started = time.perf_counter()
    g = load_glyphs("cpu")
    model = g.model
    payload: dict[str, Any] = {"config": {k: v for k, v in vars(args).items()},
                               "method": {"prior": PRIOR, "real_starts": [REAL_STARTS_IMAGES, REAL_STARTS_SEED],
                                          "eps": EPS, "reset_every": RESET_EVERY, "rule": "faithful"},
                               "torch_threads": torch.get_num_threads()}
    nmi = not args.no_nmi

    if "units" in parts or "share" in parts:
        t = time.perf_counter()
        cache = Path(args.cache) if args.cache else None
        if cache is not None and cache.exists():
            data = np.load(cache)
            gt = {k: data[f"gt_{k}"] for k in LAYERS}
            nat = {k: data[f"nat_{k}"] for k in LAYERS}
            gt_modes = data["gt_modes"]
        else:
            gt, gt_modes = ev.layers_activations(model, LAYERS, n_images=args.truth_images)
            nat, _ = ev.layers_activations(model, LAYERS, n_images=NATURAL_IMAGES, seed=NATURAL_SEED)
            if cache is not None:
                np.savez(cache, gt_modes=gt_modes, **{f"gt_{k}": v for k, v in gt.items()},
                         **{f"nat_{k}": v for k, v in nat.items()})
        truth_counts = {}
        for layer in LAYERS:
            alive = [u for u in range(gt[layer].shape[1]) if not ev.dead_on_natural(gt[layer][:, u])]
            sizes = [len(ev.modes_of_top_images(gt[layer][:, u], gt_modes)) for u in alive]
            truth_counts[layer] = {"units": gt[layer].shape[1], "dead": gt[layer].shape[1] - len(alive),
                                   "modes_hist": np.bincount(sizes, minlength=1).tolist(),
                                   "modes_median": float(np.median(sizes)), "modes_mean": float(np.mean(sizes))}
        payload["ground_truth"] = {"images": args.truth_images, "seed": ev.DEFAULT_UNIT_SEED, "top": ev.DEFAULT_UNIT_TOP,
                                   "min_share": ev.DEFAULT_UNIT_MIN_SHARE, "per_layer": truth_counts,
                                   "natural_images": NATURAL_IMAGES, "natural_seed": NATURAL_SEED,
                                   "wall_s": round(time.perf_counter() - t, 1)}
        print(f"[truth] activations of {LAYERS} in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        print("\n### ground truth: modes per alive unit (top 1% of 16,384 images, modes ≥ 5%)\n")
        print(markdown_table(["layer", "units", "dead", "median modes", "mean modes", "histogram (0, 1, 2, …)"],
                             [[k, str(v["units"]), str(v["dead"]), fmt(v["modes_median"], 1), fmt(v["modes_mean"], 1),
                               str(v["modes_hist"])] for k, v in truth_counts.items()]), flush=True)

    if "units" in parts:
        chosen, skipped = choose_units(gt, gt_modes, counts, args.seed)
        t = time.perf_counter()
        rows = run_units(g, model, gt, gt_modes, nat, chosen, args.chains, args.steps, args.seed, nmi)
        by_layer = {layer: summary([r for r in rows if r["layer"] == layer]) for layer in chosen}
        payload["units"] = {"chosen": chosen, "skipped": skipped, "rows": rows, "by_layer": by_layer,
                            "mean": summary(rows), "wall_s": round(time.perf_counter() - t, 1)}
        print(f"\n### hidden units: {len(rows)} units, {args.chains} chains × {args.steps} steps each, "
              f"kept at activation ≥ the unit's natural 99th percentile\n")
        table = [[layer, ", ".join(map(str, chosen[layer])), f"{skipped[layer]['dead']}/{skipped[layer]['empty_truth']}",
                  fmt(s["truth_modes_mean"], 1), cell(s, "acceptance"), cell(s, "facet_recall"), cell(s, "realism"),
                  cell(s, "nmi")] for layer, s in by_layer.items()]
        s = payload["units"]["mean"]
        table.append(["all", str(len(rows)), f"{sum(v['dead'] for v in skipped.values())}/"
                      f"{sum(v['empty_truth'] for v in skipped.values())}", fmt(s["truth_modes_mean"], 1),
                      cell(s, "acceptance"), cell(s, "facet_recall"), cell(s, "realism"), cell(s, "nmi")])
        print(markdown_table(["layer", "units", "skipped dead/empty truth", "truth modes", "kept share",
                              "facet recall", "realism", "NMI"], table), flush=True)

    if "share" in parts:
        full = (args.chains, args.steps) if args.share_full else (0, 0)
        share = run_share(model, nat, gt, args.share_chains, args.share_steps, args.seed, *full,
                          check=args.share_check if args.share_full else 0)
        payload["share"] = {**share, "chains": args.share_chains, "steps": args.share_steps,
                            "full_chains": full[0], "full_steps": full[1]}
        head = ["layer", "units", "dead on natural", f"non-empty at {args.share_chains}×{args.share_steps}"]
        if args.share_full:
            head += [f"non-empty at {args.chains}×{args.steps}", "share", "empty units", "checked (empty)"]
            rows = [[k, str(share[k]["units"]), str(share[k]["dead"]),
                     f"{share[k]['alive'] - len(share[k]['empty'])}/{share[k]['alive']}",
                     f"{share[k]['alive'] - len(share[k]['full_empty'])}/{share[k]['alive']}",
                     fmt(share[k]["full_share"], 3), str(share[k]["full_empty"]),
                     f"{len(share[k]['checked'])} ({len(share[k]['checked_empty'])})"] for k in SHARE_LAYERS]
            a = share["all"]
            rows.append(["all", "", str(a["dead"]), f"{a['non_empty']}/{a['alive']}", f"{a['full_non_empty']}/{a['alive']}",
                         fmt(a["full_share"], 3), "", f"{a['checked']} ({a['checked_empty']})"])
        else:
            head += ["share", "empty units"]
            rows = [[k, str(share[k]["units"]), str(share[k]["dead"]),
                     f"{share[k]['alive'] - len(share[k]['empty'])}/{share[k]['alive']}",
                     fmt(share[k]["non_empty_share"], 3), str(share[k]["empty"][:12])] for k in SHARE_LAYERS]
            rows.append(["all", "", str(share["all"]["dead"]), f"{share['all']['non_empty']}/{share['all']['alive']}",
                         fmt(share["all"]["non_empty_share"], 3), ""])
        print(f"\n### non-empty reports, every unit of {', '.join(SHARE_LAYERS)}\n")
        print(markdown_table(head, rows), flush=True)

    if "other" in parts:
        partition = other_partition()
        other_world = GlyphWorld(partition)
        weights = Path(args.other_weights) if args.other_weights else None
        if weights is not None and weights.exists():
            saved = torch.load(weights, map_location="cpu", weights_only=True)
            net = SmallResNet(other_world.n_classes)
            net.load_state_dict(saved["state"])
            net.eval()
            metrics = saved["metrics"]
        else:
            net, metrics = train_other(other_world, args.train_steps, seed=args.seed)
            if weights is not None:
                weights.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"state": net.state_dict(), "metrics": metrics}, weights)
        print(f"[other] SmallResNet accuracy {metrics['accuracy']:.3f} (min mode {metrics['min_mode_accuracy']:.3f}) "
              f"in {metrics['train_s']} s", file=sys.stderr, flush=True)
        classes = list(range(args.classes))
        shipped = class_rows(g, model, "fc8", g.world, classes, args.chains, args.steps, args.seed, nmi, "shipped")
        other = class_rows(g, net, "head", other_world, classes, args.chains, args.steps, args.seed, nmi, "other")
        payload["other"] = {"partition": partition, "training": metrics, "classes": classes,
                            "shipped": {"rows": shipped, "mean": summary(shipped)},
                            "other": {"rows": other, "mean": summary(other)}}
        print(f"\n### plug and play: class facet recall with the shipped prior, classes 0..{len(classes) - 1}, "
              f"{args.chains} chains × {args.steps} steps, kept at p ≥ 0.97\n")
        print(markdown_table(["classifier", "partition", "held-out accuracy", "kept share", "facet recall", "realism",
                              "NMI"],
                             [["shipped GlyphAlexNet", "shipped", "(shipped)", *[cell(summary(shipped), k) for k in
                                                                                  ("acceptance", "facet_recall", "realism", "nmi")]],
                              ["SmallResNet (trained here)", "other_partition(2026)", fmt(metrics["accuracy"], 3),
                               *[cell(summary(other), k) for k in ("acceptance", "facet_recall", "realism", "nmi")]]]),
              flush=True)

    payload["total_s"] = round(time.perf_counter() - started, 1)
    print(f"\ntotal {payload['total_s']} s", file=sys.stderr)
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
