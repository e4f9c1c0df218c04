"""Samplers compared on one budget of model evaluations, on the glyph world.

Every method gets the same budget ``B`` (``--budget 200``) of model evaluations per chain,
one evaluation being one batched generator + classifier forward/backward pass (see
:mod:`neurovis.glyphs.evaluation`; leapfrog steps count):

==============  ====================================================  ==================
method          what                                                  steps for budget B
==============  ====================================================  ==================
``ppgn``        MALA-approx, Noiseless Joint PPGN-h, default ε          B
``ppgn-reset``  the same, ``reset_every = B // 4``                      B
``dgn-am``      MALA-approx with ``GaussianPrior``, ε = (0, 1, 1e-17)   B
``map-clip``    exact rule ``map`` (004 Alg. 1): gradient ascent on    B
                ``log p(y|G(h)) + log N(h; 0, I)``, clipped to the box
``mala``        exact MALA (004 Alg. 2), MH-corrected                    B
``mala-clip``   MALA clipped into the box after the MH step              B // 2
``hmc``         exact HMC, ``L`` leapfrog steps per step                 B // L
==============  ====================================================  ==================

Evaluations per chain: ``steps + 1`` for the MALA-approx runs, ``config["evaluations"]``
as the exact samplers record it (1 + one per MALA/MAP step, 1 + L per HMC step, + 1 per
clip that moved some chain: ``mala-clip`` gets B // 2 steps so that it stays within the
budget even when every step clips). The *evaluations* column shows what each run used.

The exact samplers need a prior with a density: DGN-AM's ``GaussianPrior`` (N(0, I)) over
the glyph generator; the likelihood is the classifier's exact ``log softmax`` of the class
(:func:`neurovis.sampling.exact.likelihood_condition`), and the code's box is the 1st–99th
percentile per dimension of the encoder's codes of 2,000 world images
(:func:`neurovis.sampling.mcmc.code_bounds`). Step sizes (from a short pilot on class 3: MH
acceptance about 0.75 for MALA, 0.8 for HMC): MALA and MALA-clip α = 0.05, HMC ε = 0.2
with L = 10, MAP α = 0.1 (``--mala-step`` etc. change them).

Optional priors (``--priors ppgn-x,ppgn-h,joint``): ``neurovis.load_prior("glyphs-NAME")``
when that name is registered (else skipped with a note), sampled like ``ppgn`` with the
prior's ``default_eps`` (lr 0.05 for a pixel-space prior).

Columns: acceptance (p ≥ 0.97), facet recall (modes holding ≥ 2% of the accepted samples,
mean over classes), realism (share of accepted samples the oracle names with confidence ≥
0.9; mean log D(x) of the glyph discriminator over the accepted samples and over all
samples, Xu et al. Table 2), mixing (distinct confidently named modes per window of 100
steps of one chain, or the whole chain when shorter; and distinct modes per whole chain,
the budget-fair figure when steps differ, as for HMC), MH acceptance, sampling wall time
(summed over classes) and evaluations per chain.

    python bench/samplers.py [--budget 200] [--chains 10] [--classes 0,3] [--methods mala,hmc]
                             [--priors ppgn-x,ppgn-h,joint] [--json PATH] [--quick]

``--quick``: classes 0 and 3, 4 chains, budget 40 (a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import neurovis as nv  # noqa: E402
from facet_recall import (  # noqa: E402
    PIXEL_LR,
    QUICK,
    Glyphs,
    Method,
    common_arguments,
    comparison_methods,
    fmt,
    fmt_mean,
    load_glyphs,
    markdown_table,
    named_prior,
    parse_list,
    resolve_device,
    run_method,
    settings,
    write_json,
)
from neurovis.chains import Chains  # noqa: E402
from neurovis.sampling.exact import sample_exact  # noqa: E402
from neurovis.sampling.mcmc import Bounds, code_bounds  # noqa: E402
from neurovis.zoo import registered_priors  # noqa: E402

N_BOUND_IMAGES = 2000
BOUND_PERCENTILES = (1.0, 99.0)


def world_code_bounds(g: Glyphs, n: int = N_BOUND_IMAGES, seed: int = 12345) -> Bounds:
    """Per-dimension 1st/99th percentiles of the encoder's codes of ``n`` world images."""
    images = g.world.sample(n, seed=seed).images
    with torch.no_grad():
        codes = torch.cat([g.prior.encode(x.to(g.prior.device)).cpu() for x in images.split(256)])
    lower, upper = code_bounds(codes, *BOUND_PERCENTILES)
    return lower.to(g.prior.device), upper.to(g.prior.device)


def exact_methods(box: Bounds, mala_step: float, map_step: float, hmc_step: float, leapfrog: int) -> list[Method]:
    """MAP with clipping, MALA, MALA with clipping and HMC on DGN-AM's Gaussian prior.

    The ``steps`` a method's ``run`` receives is the budget ``B``; each turns it into its
    own number of steps (see the module docstring).
    """

    def exact(rule: str, step_size: float, steps_of: Any, **kw: Any) -> Any:
        def run(g: Glyphs, c: int, chains: int, budget: int, seed: int) -> Chains:
            return sample_exact(g.dgn, g.condition(c), chains=chains, steps=steps_of(budget), seed=seed, rule=rule,
                                step_size=step_size, progress=False, **kw)

        return run

    return [
        Method("map-clip", "MAP with clipping", f"rule map, α = {map_step}, box = codes' 1–99th percentiles",
               exact("map", map_step, lambda b: b, bounds=box)),
        Method("mala", "MALA", f"rule mala, α = {mala_step}, no box", exact("mala", mala_step, lambda b: b)),
        Method("mala-clip", "MALA with clipping", f"rule mala, α = {mala_step}, clip_after_mh, steps = B // 2",
               exact("mala", mala_step, lambda b: max(1, b // 2), bounds=box, clip_after_mh=True)),
        Method("hmc", f"HMC (L = {leapfrog})", f"rule hmc, ε = {hmc_step}, L = {leapfrog}, steps = B // L",
               exact("hmc", hmc_step, lambda b: max(1, b // leapfrog), leapfrog_steps=leapfrog)),
    ]


def named_prior_methods(names: Sequence[str], device: torch.device) -> tuple[list[Method], list[str]]:
    """Methods for ``glyphs-NAME`` priors that are registered, and notes for those skipped."""
    methods, notes = [], []
    known = set(registered_priors())
    for name in names:
        full = name if name.startswith("glyphs-") else f"glyphs-{name}"
        if full not in known:
            notes.append(f"{full}: not registered (known: {', '.join(sorted(known))}); skipped")
            continue
        prior = named_prior(full, device)
        lr = PIXEL_LR if prior.space == "x" else 1.0

        def run(g: Glyphs, c: int, chains: int, budget: int, seed: int, prior: nv.priors.Prior = prior,
                lr: float = lr) -> Chains:
            return nv.sample(prior, g.condition(c), chains=chains, steps=budget, eps=prior.default_eps, lr=lr,
                             seed=seed, preset="paper", progress=False)

        methods.append(Method(full, f"prior {full}", f"{type(prior).__name__}, ε = {prior.default_eps}, lr {lr}", run))
    return methods, notes


def samplers_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per method, means over classes."""
    headers = ["method", "p ≥ 0.97", "facet recall", "realism (conf ≥ 0.9)", "log D (accepted)", "log D (all)",
               "modes/100 steps", "modes/chain", "MH acc.", "wall s", "evaluations"]
    rows = []
    for res in results.values():
        s = res["mean"]
        rows.append([res["label"], fmt(s["acceptance"]), fmt(s["facet_recall"]), fmt_mean(s, "realism"),
                     fmt_mean(s, "disc_logprob"), fmt(s["disc_logprob_all"]), fmt(s["mixing"]),
                     fmt(s["modes_per_chain"]), fmt(s["mh_acceptance"]), f"{s['wall_time_s']:.1f}",
                     fmt(s["evaluations"], 0)])
    return markdown_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(ap)
    ap.add_argument("--budget", type=int, help="model evaluations per chain (default 200; quick 40)")
    ap.add_argument("--methods", help="comma-separated subset of ppgn,ppgn-reset,dgn-am,map-clip,mala,mala-clip,hmc")
    ap.add_argument("--priors", help="comma-separated extra priors glyphs-NAME (ppgn-x,ppgn-h,joint), if registered")
    ap.add_argument("--mala-step", type=float, default=0.05, help="MALA / MALA-clip step size α (default 0.05)")
    ap.add_argument("--map-step", type=float, default=0.1, help="MAP step size α (default 0.1)")
    ap.add_argument("--hmc-step", type=float, default=0.2, help="HMC leapfrog step ε (default 0.2)")
    ap.add_argument("--leapfrog", type=int, default=10, help="HMC leapfrog steps L (default 10)")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    g = load_glyphs(device)
    classes, chains = settings(args, g.world)
    budget = args.budget or (QUICK["steps"] if args.quick else 200)
    if budget < 2:
        raise SystemExit("samplers: --budget must be ≥ 2")
    box = world_code_bounds(g)
    ppgn = [m for m in comparison_methods(budget) if m.key != "pixel-am"]
    methods = ppgn + exact_methods(box, args.mala_step, args.map_step, args.hmc_step, args.leapfrog)
    wanted = parse_list(args.methods, str)
    if wanted:
        unknown = set(wanted) - {m.key for m in methods}
        if unknown:
            raise SystemExit(f"samplers: unknown methods {sorted(unknown)}; use {[m.key for m in methods]}")
        methods = [m for m in methods if m.key in wanted]
    extra, notes = named_prior_methods(parse_list(args.priors, str) or [], device)
    methods += extra

    print(f"glyph world: classes {classes}, {chains} chains, budget {budget} evaluations per chain, seed {args.seed}, "
          f"threshold {args.threshold}, {device}", flush=True)
    for note in notes:
        print(f"note: {note}", flush=True)
    started = time.perf_counter()
    results = {m.key: run_method(g, m, classes, chains, budget, args.seed, args.threshold, False, 400)
               for m in methods}
    print("\nmethods: " + "; ".join(f"{m.key}: {m.note}" for m in methods))
    print(f"\n### samplers at {budget} evaluations per chain, means over {len(classes)} classes\n")
    print(samplers_table(results), flush=True)
    total = round(time.perf_counter() - started, 1)
    print(f"\ntotal {total} s", file=sys.stderr)
    if args.json:
        config = {"classes": classes, "chains": chains, "budget": budget, "seed": args.seed,
                  "threshold": args.threshold, "device": str(device), "mala_step": args.mala_step,
                  "map_step": args.map_step, "hmc_step": args.hmc_step, "leapfrog": args.leapfrog,
                  "bounds": {"percentiles": BOUND_PERCENTILES, "images": N_BOUND_IMAGES},
                  "torch_threads": torch.get_num_threads()}
        write_json(args.json, {"config": config, "notes": notes, "methods": results, "total_s": total})


if __name__ == "__main__":
    main()
