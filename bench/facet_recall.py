"""Facet recall on the glyph world: does each method find every facet (mode) of a class?

For every class of the glyph classifier (16 classes, each a union of 4 modes = shape ×
colour), sample with each method at one budget (``--chains 10 --steps 200``), then measure
with :mod:`neurovis.glyphs.evaluation` and the world's oracle:

* acceptance: share of samples with class probability ``p ≥ 0.97``;
* facet recall: share of the class's 4 modes holding ≥ 2% of the accepted samples (as the
  oracle names them), mean over classes;
* realism: share of accepted samples the oracle names with confidence ≥ 0.9 (mean over the
  classes where something was accepted);
* NMI: normalised mutual information between the facets of ``neurovis.facets(chains)``
  (attribution off, no bootstrap) and the oracle's modes on the report's kept samples
  (mean over the classes whose report has ≥ 2 facets and ≥ 10 kept samples);
* wall: sampling wall time, summed over classes.

Methods (all with the faithful rule, lr 1, random starts):

* ``ppgn``: Noiseless Joint PPGN-h, the shipped glyph prior, ε = ``prior.default_eps``
  (1e-5, 1, 1e-17);
* ``ppgn-reset``: the same with ``reset_every = steps // 4`` (50 at 200 steps): every 50
  steps each chain restarts from N(0, 1) with a new ε1 ~ U(1e-6, 1e-2) (the reference
  hidden-unit scripts reset every 100 of 1000 steps, i.e. every tenth of the run; a
  quarter gives each chain 4 starts in 200 steps);
* ``ppgn-unit-clip``: as ``ppgn`` with ``load_prior("glyphs-unit-clip")``: each code unit
  clipped to [0, its largest value over 4,096 world images] rather than the paper's [0, 30];
* ``joint-reset``: Joint PPGN-h (``glyphs-joint``, G trained with noise) with resets as
  ``ppgn-reset``; ``joint-unit-clip-reset``: the same with the per-unit code clip;
* ``ppgn-real-starts-reset``, ``ppgn-unit-clip-real-starts-reset`` and
  ``joint-real-starts-reset`` (priors ``glyphs``, ``glyphs-unit-clip``, ``glyphs-joint``):
  every start and reset draws the code ``E(x)`` of one of 1,024 world images
  (``prior.with_real_starts``, seed 4242) instead of ``N(0, 1)``, and chains reset every
  ``steps // 20`` steps (10 at 200; the reset sweeps below chose it);
  ``joint-short-reset``: Joint PPGN-h with the same short resets from ``N(0, 1)``;
* ``dgn-am``: DGN-AM, ``GaussianPrior(prior.generator)`` with ε = (0, 1, 1e-17): the same
  generator, no learned p(h);
* ``pixel-am``: activation maximisation in pixel space with a hand-designed prior
  (``PixelPrior``: Gaussian blur σ = 1 px, total variation 0.002, jitter ±2 px, Lucent
  style), ε = (1, 1, 0), lr 0.05 (the normalised step moves a pixel by 0.05 on average;
  lr 1 would saturate every pixel in one step). PixelPrior's ``default_eps`` (0, 1, 0)
  would switch the hand-designed terms off, hence ε1 = 1; settings from a short pilot on
  class 3.

Reset sweeps (``--sweep reset`` / ``--sweep reset-unit-clip`` / ``--sweep reset-joint``): the
reset interval over 0 (never), 100, 50, 25, 20 and 10 steps (and 5 with the per-unit clip),
chains starting and resetting from real codes as ``ppgn-real-starts-reset``, with the shipped
prior, the shipped prior with the per-unit code clip, or Joint PPGN-h.

Sweeps (``--sweep eps1`` / ``--sweep eps3``, instead of the comparison): PPGN with one ε
varied, the paper's values (Fig. S23: ε1 ∈ {1e-1, 1e-3, 1e-5, 1e-7, 1e-11, 0} at
(ε2, ε3) = (1, 1e-17); Fig. S15: ε3 ∈ {1e-1, 1e-5, 1e-9, 1e-13, 1e-17} at ε1 = 1e-5,
ε2 = 1, plus 0 here; S15's caption prints "(ε1, ε2) = (1, 1e-5)", read here as the
default (1e-5, 1) its text describes). Under the faithful rule ``h ← h + lr·d/mean|d|`` only the ratios
ε1 : ε2 : ε3 matter, so with ε2 = 1 the values are the ratios. In float32 a noise of 1e-17
is lost when added to gradient entries of ~1e-3; it survives only where the step is exactly
0 (codes clipped at 0), so such chains differ from ε3 = 0 by ~1e-11 in the codes (measured
on class 3, 100 steps): compare the row ε3 = 0. The paper starts its chains from the code of a
real image; ``--init real`` does that here (codes of random world images).

    python bench/facet_recall.py [--classes 0,3] [--chains 10] [--steps 200] [--methods ppgn,dgn-am]
                                 [--sweep eps1|eps3|reset|reset-unit-clip|reset-joint] [--values 1e-5,0] [--init random|real]
                                 [--json PATH] [--quick] [--no-nmi] [--device cpu|cuda|auto]

Hidden units (ground truth from real images, the activation keep-rule) and a classifier the
project never shipped are scored by ``bench/unit_recall.py`` with the same measures.

``--quick``: classes 0 and 3, 4 chains × 40 steps (a smoke run). Progress goes to stderr,
tables (Markdown) to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

import neurovis as nv
from neurovis.chains import Chains
from neurovis.glyphs.evaluation import MIN_KEPT_FOR_NMI, evaluate_chains
from neurovis.glyphs import GlyphWorld

PIXEL_PRIOR = {"blur_sigma": 1.0, "tv": 0.002, "jitter": 2}
"""The hand-designed pixel prior of ``pixel-am`` (PixelPrior keyword arguments)."""
PIXEL_EPS = (1.0, 1.0, 0.0)
PIXEL_LR = 0.05
DGN_EPS = (0.0, 1.0, 1e-17)
QUICK = {"classes": [0, 3], "chains": 4, "steps": 40}
REAL_STARTS_IMAGES = 1024
REAL_STARTS_SEED = 4242
"""``*-real-starts-*`` methods: chains start and reset from the codes of
``GlyphWorld().sample(1024, seed=4242)`` (other images than the unit clip's and the reports')."""

SWEEPS: dict[str, dict[str, Any]] = {
    "eps1": {
        "values": (1e-1, 1e-3, 1e-5, 1e-7, 1e-11, 0.0),
        "eps": lambda v: (v, 1.0, 1e-17),
        "text": "ε1 varied at (ε2, ε3) = (1, 1e-17), the paper's Fig. S23",
    },
    "eps3": {
        "values": (1e-1, 1e-5, 1e-9, 1e-13, 1e-17, 0.0),
        "eps": lambda v: (1e-5, 1.0, v),
        "text": "ε3 varied at (ε1, ε2) = (1e-5, 1), the paper's Fig. S15 (+ ε3 = 0)",
    },
    "reset": {
        "values": (0, 100, 50, 25, 20, 10),
        "prior": None,
        "text": "reset interval (0: never) of the shipped Noiseless Joint prior, real-code starts and resets, default ε",
    },
    "reset-unit-clip": {
        "values": (0, 100, 50, 25, 20, 10, 5),
        "prior": "glyphs-unit-clip",
        "text": "reset interval (0: never) of the shipped Noiseless Joint prior with the per-unit code clip "
                "(glyphs-unit-clip), real-code starts and resets, default ε",
    },
    "reset-joint": {
        "values": (0, 100, 50, 25, 20, 10),
        "prior": "glyphs-joint",
        "text": "reset interval (0: never) of Joint PPGN-h (glyphs-joint), real-code starts and resets, default ε",
    },
}


# ----------------------------------------------------------------------------- the glyph world


@dataclass
class Glyphs:
    """The glyph world's networks and the priors the benches compare.

    Attributes:
        prior: the shipped Noiseless Joint PPGN-h prior (codes (512,), images RGB [0, 1] 64×64).
        model: the classifier (16 classes) the conditions read.
        oracle: names the mode of RGB [0, 1] images.
        world: the class -> modes map.
        discriminator: the GAN discriminator trained with the prior (one logit per image).
        dgn: DGN-AM, ``GaussianPrior`` over the same generator (code clip (0, 30)).
        pixel: the hand-designed pixel prior (:data:`PIXEL_PRIOR`).
    """

    prior: nv.GeneratorPrior
    model: torch.nn.Module
    oracle: Any
    world: GlyphWorld
    discriminator: torch.nn.Module
    dgn: nv.GaussianPrior
    pixel: nv.PixelPrior

    def condition(self, c: int) -> nv.ClassCondition:
        """The condition of class ``c`` (reference gradient, softmax over classes)."""
        return nv.ClassCondition(self.model, c)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_glyphs(device: str | torch.device = "cpu") -> Glyphs:
    """Load the shipped glyph networks on ``device`` and build the compared priors."""
    from neurovis.glyphs.checkpoints import load_glyph_discriminator
    from neurovis.glyphs.priors import load_glyph_noiseless

    prior = load_glyph_noiseless(device=device)
    model = nv.load_model("glyphs").to(device)
    oracle = nv.zoo.load_oracle("glyphs").to(device)
    dgn = nv.GaussianPrior(prior.generator, code_clip=prior.code_clip, pixel_space=prior.pixel_space,
                           clamp_pixels=prior.clamp_pixels)
    pixel = nv.PixelPrior((3, 64, 64), prior.pixel_space, device=device, **PIXEL_PRIOR)
    return Glyphs(prior, model, oracle, GlyphWorld(), load_glyph_discriminator(device), dgn, pixel)


# ----------------------------------------------------------------------------- methods


RunFn = Callable[[Glyphs, int, int, int, int], Chains]
"""``run(glyphs, class, chains, steps, seed) -> Chains``; ``steps`` is the run's budget."""


@dataclass(frozen=True)
class Method:
    """One sampler configuration: ``key`` (command line), ``label`` (table), ``note``
    (its settings in one line) and ``run``."""

    key: str
    label: str
    note: str
    run: RunFn


def reset_interval(steps: int) -> int:
    """``reset_every`` of ``ppgn-reset``: a quarter of the run (50 at 200 steps), ≥ 1."""
    return max(1, steps // 4)


def short_reset_interval(steps: int) -> int:
    """``reset_every`` of the real-start methods: a twentieth of the run (10 at 200 steps), ≥ 1."""
    return max(1, steps // 20)


_NAMED_PRIORS: dict[tuple[str, str], nv.priors.Prior] = {}
_REAL_START_PRIORS: dict[int, nv.priors.Prior] = {}


def named_prior(name: str, device: torch.device) -> nv.priors.Prior:
    """``nv.load_prior(name)`` on ``device``, loaded once per run."""
    key = (name, str(device))
    if key not in _NAMED_PRIORS:
        prior = nv.load_prior(name)
        for module in prior.modules():
            module.to(device)
        _NAMED_PRIORS[key] = prior
    return _NAMED_PRIORS[key]


def with_real_starts(g: Glyphs, prior: nv.GeneratorPrior) -> nv.GeneratorPrior:
    """``prior`` starting and resetting its chains from the codes of the
    :data:`REAL_STARTS_IMAGES` world images (built once per prior)."""
    if id(prior) not in _REAL_START_PRIORS:
        images = g.world.sample(REAL_STARTS_IMAGES, seed=REAL_STARTS_SEED).images
        _REAL_START_PRIORS[id(prior)] = prior.with_real_starts(images.to(prior.device))
    return _REAL_START_PRIORS[id(prior)]


def ppgn_run(eps: Sequence[float] | None = None, reset_every: Callable[[int], int] | None = None,
             init: str = "random", prior_name: str | None = None, real_starts: bool = False) -> RunFn:
    """PPGN with the glyph prior (or the registered prior ``prior_name``), faithful rule,
    lr 1 (``eps`` None: ``prior.default_eps``); ``real_starts``: random starts and resets
    from real codes (:func:`with_real_starts`)."""

    def run(g: Glyphs, c: int, chains: int, steps: int, seed: int) -> Chains:
        prior = g.prior if prior_name is None else named_prior(prior_name, g.prior.device)
        if real_starts:
            prior = with_real_starts(g, prior)
        start = None
        if init == "real":
            with torch.no_grad():
                start = prior.encode(g.world.sample(chains, seed=10_000 + seed).images.to(prior.device))
        return nv.sample(prior, g.condition(c), chains=chains, steps=steps, eps=eps or prior.default_eps,
                         seed=seed, rule="faithful", reset_every=reset_every(steps) if reset_every else 0,
                         starts="bank" if real_starts else "random", init=start, progress=False)

    return run


def comparison_methods(steps: int) -> list[Method]:
    """The methods of the facet-recall table (their notes name ``steps``-dependent settings)."""

    def dgn(g: Glyphs, c: int, chains: int, steps: int, seed: int) -> Chains:
        return nv.sample(g.dgn, g.condition(c), chains=chains, steps=steps, eps=DGN_EPS, seed=seed, progress=False)

    def pixel(g: Glyphs, c: int, chains: int, steps: int, seed: int) -> Chains:
        return nv.sample(g.pixel, g.condition(c), chains=chains, steps=steps, eps=PIXEL_EPS, lr=PIXEL_LR,
                         seed=seed, progress=False)

    def default(g: Glyphs, c: int, chains: int, steps: int, seed: int) -> Chains:
        return nv.sample(named_prior("glyphs", g.prior.device), g.condition(c), chains=chains, steps=steps, seed=seed,
                         progress=False)

    blur = ", ".join(f"{k} {v}" for k, v in PIXEL_PRIOR.items())
    return [
        Method("default", "neurovis default", "nv.sample(nv.load_prior('glyphs'), condition): the recommended "
               "method, nothing set (Joint PPGN-h, starts and restarts every 10 steps from the shipped start bank)",
               default),
        Method("ppgn", "PPGN (Noiseless Joint)", "glyph prior, ε = prior.default_eps (1e-5, 1, 1e-17)", ppgn_run()),
        Method("ppgn-reset", f"PPGN, reset every {reset_interval(steps)}",
               f"as ppgn, reset_every = steps // 4 = {reset_interval(steps)}, new ε1 ~ U(1e-6, 1e-2)",
               ppgn_run(reset_every=reset_interval)),
        Method("ppgn-unit-clip", "PPGN, per-unit code clip",
               "as ppgn, prior glyphs-unit-clip: each code unit clipped to [0, its largest value on 4,096 world "
               "images] instead of [0, 30]", ppgn_run(prior_name="glyphs-unit-clip")),
        Method("joint-reset", f"Joint PPGN-h, reset every {reset_interval(steps)}",
               "prior glyphs-joint (G trained with noise), resets as ppgn-reset",
               ppgn_run(reset_every=reset_interval, prior_name="glyphs-joint")),
        Method("joint-unit-clip-reset", f"Joint PPGN-h, per-unit code clip, reset every {reset_interval(steps)}",
               "prior glyphs-joint-unit-clip (as glyphs-joint, codes clipped per unit as ppgn-unit-clip), "
               "resets as ppgn-reset", ppgn_run(reset_every=reset_interval, prior_name="glyphs-joint-unit-clip")),
        Method("ppgn-real-starts-reset", f"PPGN, real-code starts, reset every {short_reset_interval(steps)}",
               f"glyph prior, starts and resets from the codes of {REAL_STARTS_IMAGES:,} world images "
               f"(prior.with_real_starts) instead of N(0, 1), reset_every = steps // 20 = {short_reset_interval(steps)}",
               ppgn_run(reset_every=short_reset_interval, real_starts=True)),
        Method("ppgn-unit-clip-real-starts-reset",
               f"PPGN, per-unit code clip, real-code starts, reset every {short_reset_interval(steps)}",
               "as ppgn-real-starts-reset with prior glyphs-unit-clip",
               ppgn_run(reset_every=short_reset_interval, prior_name="glyphs-unit-clip", real_starts=True)),
        Method("joint-short-reset", f"Joint PPGN-h, reset every {short_reset_interval(steps)}",
               "prior glyphs-joint, N(0, 1) starts and resets as ppgn-reset, reset_every = steps // 20",
               ppgn_run(reset_every=short_reset_interval, prior_name="glyphs-joint")),
        Method("joint-real-starts-reset", f"Joint PPGN-h, real-code starts, reset every {short_reset_interval(steps)}",
               "prior glyphs-joint, starts and resets as ppgn-real-starts-reset",
               ppgn_run(reset_every=short_reset_interval, prior_name="glyphs-joint", real_starts=True)),
        Method("dgn-am", "DGN-AM (ε1 = 0)", "GaussianPrior(same G), ε = (0, 1, 1e-17)", dgn),
        Method("pixel-am", "pixel AM, hand-designed prior",
               f"PixelPrior({blur}), ε = {PIXEL_EPS}, lr {PIXEL_LR}", pixel),
    ]


# ----------------------------------------------------------------------------- measuring


def measure(g: Glyphs, chains: Chains, c: int, threshold: float = 0.97, nmi: bool = True, pick: int = 400,
            seed: int = 0) -> dict[str, Any]:
    """:func:`neurovis.glyphs.evaluation.evaluate_chains` on class ``c``'s chains, with the facet
    report's NMI when ``nmi`` (the report is skipped when fewer than 10 samples passed)."""
    started = time.perf_counter()
    report = None
    n_ok = int(chains.accepted(threshold).sum())
    if nmi and n_ok >= MIN_KEPT_FOR_NMI:
        report = nv.facets(chains, threshold=threshold, pick=pick, seed=seed, attribution=False, bootstrap=0,
                           progress=False)
    row = evaluate_chains(chains, g.oracle, g.world.class_modes(c), threshold, g.discriminator, report)
    if report is None:
        row["nmi_note"] = "NMI off" if not nmi else f"only {n_ok} accepted (< {MIN_KEPT_FOR_NMI})"
    row["class"] = c
    row["measure_s"] = round(time.perf_counter() - started, 3)
    return row


def _mean(rows: list[dict[str, Any]], key: str) -> tuple[float, int]:
    """Mean of ``key`` over the rows where it is a finite number, and how many those were."""
    vals = [float(r[key]) for r in rows if r.get(key) is not None and math.isfinite(float(r[key]))]
    return (float(np.mean(vals)) if vals else math.nan), len(vals)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over classes (NaN/None entries left out, with the count kept), summed wall time."""
    out: dict[str, Any] = {"n_classes": len(rows)}
    for key in ("acceptance", "facet_recall", "realism", "realism_all", "nmi", "disc_logprob", "disc_logprob_all",
                "mixing", "modes_per_chain", "mh_acceptance", "evaluations"):
        out[key], out[f"{key}_n"] = _mean(rows, key)
    out["wall_time_s"] = float(sum(r["wall_time_s"] or 0.0 for r in rows))
    return out


def run_method(g: Glyphs, method: Method, classes: Sequence[int], chains: int, steps: int, seed: int,
               threshold: float, nmi: bool, pick: int) -> dict[str, Any]:
    """Run ``method`` on every class, measure, log one line per class to stderr."""
    rows = []
    for c in classes:
        started = time.perf_counter()
        ch = method.run(g, c, chains, steps, seed)
        row = measure(g, ch, c, threshold, nmi, pick, seed)
        rows.append(row)
        print(f"[{method.key}] class {c:2d}: accept {row['acceptance']:.2f} recall {row['facet_recall']:.2f} "
              f"modes {row['modes_found']} realism {fmt(row['realism'])} nmi {fmt(row['nmi'])} "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    return {"label": method.label, "note": method.note, "per_class": rows, "mean": summarize(rows)}


# ----------------------------------------------------------------------------- output


def fmt(x: Any, digits: int = 2) -> str:
    """A number for a table: ``n/a`` for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{digits}f}"


def fmt_mean(summary: dict[str, Any], key: str, digits: int = 2) -> str:
    """A class-mean with ``(k/n)`` when it is defined for only ``k`` of ``n`` classes."""
    text = fmt(summary[key], digits)
    k, n = summary[f"{key}_n"], summary["n_classes"]
    return text if k == n or text == "n/a" else f"{text} ({k}/{n})"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/Inf -> None, tuples -> lists, NumPy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (cleaned) to ``path``, creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(payload), indent=1))
    print(f"wrote {path}", file=sys.stderr)


def comparison_table(results: dict[str, dict[str, Any]]) -> str:
    """The main table: one row per method, means over classes."""
    headers = ["method", "p ≥ 0.97", "facet recall", "realism (conf ≥ 0.9)", "NMI facets–modes", "wall s"]
    rows = []
    for res in results.values():
        s = res["mean"]
        rows.append([res["label"], fmt(s["acceptance"]), fmt(s["facet_recall"]), fmt_mean(s, "realism"),
                     fmt_mean(s, "nmi"), f"{s['wall_time_s']:.1f}"])
    return markdown_table(headers, rows)


def per_class_table(results: dict[str, dict[str, Any]], world: GlyphWorld) -> str:
    """Facet recall (modes found / 4) per class and method."""
    keys = list(results)
    classes = [r["class"] for r in next(iter(results.values()))["per_class"]]
    rows = []
    for i, c in enumerate(classes):
        names = ", ".join(world.mode_name(m) for m in world.class_modes(c))
        cells = [f"{len(results[k]['per_class'][i]['modes_found'])}/{len(world.class_modes(c))}" for k in keys]
        rows.append([str(c), names, *cells])
    return markdown_table(["class", "modes", *keys], rows)


# ----------------------------------------------------------------------------- command line


def parse_list(text: str | None, kind: Callable[[str], Any]) -> list[Any] | None:
    """``"0,3"`` -> ``[0, 3]`` (None stays None)."""
    if text is None:
        return None
    return [kind(t) for t in text.split(",") if t.strip()]


def common_arguments(ap: argparse.ArgumentParser) -> None:
    """Options both benches share."""
    ap.add_argument("--classes", help="comma-separated classes (default all 16)")
    ap.add_argument("--chains", type=int, help="chains per class (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.97)
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true", help=f"smoke run: classes 0,3, {QUICK['chains']} chains, short runs")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")


def settings(args: argparse.Namespace, world: GlyphWorld) -> tuple[list[int], int]:
    """``(classes, chains)`` from the options and ``--quick``."""
    classes = parse_list(args.classes, int) or (QUICK["classes"] if args.quick else list(range(world.n_classes)))
    bad = [c for c in classes if not 0 <= c < world.n_classes]
    if bad:
        raise SystemExit(f"bench: classes {bad} out of range 0..{world.n_classes - 1}")
    return classes, args.chains or (QUICK["chains"] if args.quick else 10)


def run_sweep(g: Glyphs, name: str, values: Sequence[float], classes: Sequence[int], chains: int, steps: int,
              seed: int, threshold: float, nmi: bool, pick: int, init: str) -> dict[str, Any]:
    """PPGN over ``values`` of one ε or of the reset interval (see :data:`SWEEPS`); returns
    per-value results. ``init`` applies to the ε sweeps; the reset sweeps start and reset
    from real codes (:func:`with_real_starts`)."""
    spec = SWEEPS[name]
    out: dict[str, Any] = {"text": spec["text"], "init": init if "eps" in spec else "real-code", "values": {}}
    for v in values:
        if "eps" in spec:
            eps = spec["eps"](v)
            m = Method(f"{name}={v:g}", f"{name} = {v:g}", f"ε = {eps}", ppgn_run(eps=eps, init=init))
        else:
            every, eps = int(v), None
            m = Method(f"{name}={every}", f"reset every {every}", f"reset_every = {every}, real-code starts",
                       ppgn_run(reset_every=(lambda _steps, e=every: e) if every else None, prior_name=spec["prior"],
                                real_starts=True))
        out["values"][f"{v:g}"] = {**run_method(g, m, classes, chains, steps, seed, threshold, nmi, pick), "eps": eps}
    return out


def sweep_table(sweep: dict[str, Any], name: str) -> str:
    """One row per swept value: recall and realism curves, plus acceptance and mixing."""
    headers = [name, "p ≥ 0.97", "facet recall", "realism (conf ≥ 0.9)", "NMI", "modes/100 steps", "modes/chain",
               "wall s"]
    rows = []
    for v, res in sweep["values"].items():
        s = res["mean"]
        rows.append([v, fmt(s["acceptance"]), fmt(s["facet_recall"]), fmt_mean(s, "realism"), fmt_mean(s, "nmi"),
                     fmt(s["mixing"]), fmt(s["modes_per_chain"]), f"{s['wall_time_s']:.1f}"])
    return markdown_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(ap)
    ap.add_argument("--steps", type=int, help="steps per chain (default 200)")
    ap.add_argument("--methods", help="comma-separated subset of "
                    + ",".join(m.key for m in comparison_methods(200)) + " (default all)")
    ap.add_argument("--sweep", choices=sorted(SWEEPS), action="append",
                    help="run the ε1, ε3 or reset-interval sweep instead of the comparison (repeatable)")
    ap.add_argument("--values", help="comma-separated values for --sweep (default the paper's)")
    ap.add_argument("--init", choices=("random", "real"), default="random",
                    help="sweeps: start chains from N(0,1) or from codes of real world images (as the paper)")
    ap.add_argument("--no-nmi", action="store_true", help="skip the facet reports (and the NMI column)")
    ap.add_argument("--pick", type=int, default=400, help="samples on each report's grid (default 400)")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    g = load_glyphs(device)
    classes, chains = settings(args, g.world)
    steps = args.steps or (QUICK["steps"] if args.quick else 200)
    nmi = not args.no_nmi
    config = {"classes": classes, "chains": chains, "steps": steps, "seed": args.seed, "threshold": args.threshold,
              "device": str(device), "torch_threads": torch.get_num_threads(), "pixel_prior": PIXEL_PRIOR,
              "pixel_eps": PIXEL_EPS, "pixel_lr": PIXEL_LR, "dgn_eps": DGN_EPS, "ppgn_eps": g.prior.default_eps,
              "reset_every": reset_interval(steps)}
    print(f"glyph world: classes {classes}, {chains} chains × {steps} steps, seed {args.seed}, "
          f"threshold {args.threshold}, {device}", flush=True)
    payload: dict[str, Any] = {"config": config}
    started = time.perf_counter()

    if args.sweep:
        values = parse_list(args.values, float)
        payload["sweeps"] = {}
        for name in args.sweep:
            sweep = run_sweep(g, name, values or SWEEPS[name]["values"], classes, chains, steps, args.seed,
                              args.threshold, nmi, args.pick, args.init)
            payload["sweeps"][name] = sweep
            print(f"\n### sweep {name}: {sweep['text']}; faithful rule (only ratios of ε matter), "
                  f"{sweep['init']} starts, means over {len(classes)} classes\n")
            print(sweep_table(sweep, name), flush=True)
    else:
        methods = comparison_methods(steps)
        wanted = parse_list(args.methods, str)
        if wanted:
            unknown = set(wanted) - {m.key for m in methods}
            if unknown:
                raise SystemExit(f"facet_recall: unknown methods {sorted(unknown)}; use {[m.key for m in methods]}")
            methods = [m for m in methods if m.key in wanted]
        results = {m.key: run_method(g, m, classes, chains, steps, args.seed, args.threshold, nmi, args.pick)
                   for m in methods}
        payload["methods"] = results
        print("\nmethods: " + "; ".join(f"{m.key}: {m.note}" for m in methods))
        print(f"\n### facet recall, means over {len(classes)} classes ({chains} chains × {steps} steps each)\n")
        print(comparison_table(results))
        print("\n### modes found per class (≥ 2% of accepted samples)\n")
        print(per_class_table(results, g.world), flush=True)
    payload["total_s"] = round(time.perf_counter() - started, 1)
    print(f"\ntotal {payload['total_s']} s", file=sys.stderr)
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
