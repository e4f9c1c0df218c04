"""Chain-steps per second of the sampler at paper size (issue 2; extended by issue 6).

Paper-size DeePSiM fc6 generator (56.1 M parameters, 256×256 output cropped to 227) as G,
torchvision AlexNet (random weights) as both the condition net (conv5 unit 196, through
the Caffe->torchvision pixel adapter, resized to 224) and the encoder E (post-ReLU fc6).
Compares the reference code's way (one chain at a time, batch 1) with one batched call,
and reports the FLOP-based fraction of this machine's fp32 matmul peak. ``--variants``
then times one batch (``--variant-batch``) with each speed-up of the sampler (bf16
autocast, channels_last, torch.compile of G) and reports how far each stays from fp32:
the cosine between the first step's update and fp32's, and the largest change of the
condition's probability at the (shared) start codes.

``--unit`` then samples one whole unit the way a report does (10 chains × 200 steps, 2,000
samples) with each variant and prints its wall time: the issue's GPU target is under 2 s
at paper size.

    python bench/throughput.py [--setup paper|glyphs|both] [--batches 10,20,40,80] [--steps 5] [--device cpu]
                               [--variants fp32,bf16,channels_last,compile] [--variant-batch 10] [--unit]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import alexnet

import neurovis as nv
from neurovis.pixels import CAFFE_IMAGENET, TORCHVISION_IMAGENET


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """Measured fp32 matmul GFLOP/s on ``device`` (n×n by n×n)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def build(device: torch.device) -> tuple[nv.priors.Prior, nv.conditions.Condition]:
    torch.manual_seed(0)
    generator = nn.Sequential(nv.priors.deepsim_fc6(), nv.pixels.Crop(14, 14, 227, 227)).to(device)
    net = alexnet(weights=None).to(device).eval()
    space = CAFFE_IMAGENET  # G's cropped output: BGR 0-255 minus mean, 227×227
    encoder = nv.priors.LayerEncoder(net, "classifier.1", source_space=space, input_space=TORCHVISION_IMAGENET)
    prior = nv.GeneratorPrior(generator, encoder, pixel_space=space, code_shape=(4096,))
    condition = nv.UnitCondition(net, "features.10", 196, input_space=TORCHVISION_IMAGENET)
    return prior, condition


def step_flops(prior: nv.priors.Prior, condition: nv.conditions.Condition, chains: int) -> float:
    """FLOPs of one sampler step for ``chains`` chains (torch's FlopCounterMode).

    The step is replayed by hand (decode, condition forward/backward to h, encoder
    forward) because the counter cannot watch ``autograd.grad``; weights are frozen so the
    backward, like the sampler's, computes input gradients only.
    """
    for module in prior.modules() + condition.modules():
        module.requires_grad_(False)
    h = torch.rand(chains, *prior.code_shape, device=prior.device, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        x = prior.decode(h)
        condition.evaluate(x, prior.pixel_space).objective.sum().backward()
        with torch.no_grad():
            prior.prior_term(h.detach(), x.detach())
    return float(counter.get_total_flops()) / chains


def build_glyphs(device: torch.device) -> tuple[nv.priors.Prior, nv.conditions.Condition]:
    """The embedded glyph world: shipped prior (64×64) and classifier, conv5 unit 7."""
    prior = nv.load_prior("glyphs")
    for module in prior.modules():
        module.to(device)
    model = nv.load_model("glyphs").to(device)
    return prior, nv.UnitCondition(model, "conv5", 7)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak, or the process's max RSS on CPU (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(prior: nv.priors.Prior, condition: nv.conditions.Condition, device: torch.device, batches: list[int], steps: int,
            total_chains: int) -> list[tuple[str, float]]:
    """chain-steps/s for the batch-1 loop (``total_chains`` chains one at a time) and for
    each batch size in ``batches`` (``steps`` steps, chains run together)."""

    def run(chains: int, calls: int) -> float:
        nv.sample(prior, condition, chains=chains, steps=1, preset="paper", progress=False)  # warm-up
        sync(device)
        start = time.perf_counter()
        for i in range(calls):
            nv.sample(prior, condition, chains=chains, steps=steps, seed=i, preset="paper", progress=False)
        sync(device)
        return chains * calls * steps / (time.perf_counter() - start)

    rows = [("batch 1 (one chain at a time, the reference code's way)", run(1, total_chains))]
    for b in batches:
        rows.append((f"batch {b}", run(b, 1)))
    return rows


VARIANTS: dict[str, dict] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "bf16+channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
}


def measure_variants(builder, device: torch.device, names: list[str], batch: int, steps: int) -> list[str]:
    """One line per variant: chain-steps/s at ``batch`` and its distance from fp32.

    Each variant gets freshly built networks (channels_last and compile change them in
    place). The first call also pays compilation and is not timed.
    """
    lines, ref = [], None
    for name in names:
        prior, condition = builder(device)
        kwargs = VARIANTS[name]
        start = time.perf_counter()
        nv.sample(prior, condition, chains=batch, steps=1, preset="paper", progress=False, **kwargs)  # warm-up (and compile)
        warm = time.perf_counter() - start
        sync(device)
        start = time.perf_counter()
        chains = nv.sample(prior, condition, chains=batch, steps=steps, seed=0, preset="paper", progress=False, **kwargs)
        sync(device)
        rate = batch * steps / (time.perf_counter() - start)
        step = (chains.codes[:, 1] - chains.codes[:, 0]).flatten(1)
        if ref is None:
            ref = (step, chains.probs[:, 0])
        cos = float(torch.nn.functional.cosine_similarity(step, ref[0], dim=1).mean())
        dp = float((chains.probs[:, 0] - ref[1]).abs().max())
        lines.append(f"  {name:20s} {rate:8.2f} chain-steps/s  first-step cosine to fp32 {cos:.4f}  "
                     f"max |Δp| at start {dp:.2e}  (warm-up {warm:.1f} s)")
        del prior, condition
    return lines


def time_unit(builder, device: torch.device, names: list[str], chains: int = 10, steps: int = 200) -> list[str]:
    """One line per variant: the wall time of a whole unit, ``chains`` × ``steps`` (a
    report's default run), after a 2-step warm-up (and compilation) that is not timed."""
    lines = []
    for name in names:
        prior, condition = builder(device)
        kwargs = VARIANTS[name]
        nv.sample(prior, condition, chains=chains, steps=2, preset="paper", progress=False, **kwargs)
        sync(device)
        start = time.perf_counter()
        nv.sample(prior, condition, chains=chains, steps=steps, seed=0, preset="paper", progress=False, **kwargs)
        sync(device)
        wall = time.perf_counter() - start
        lines.append(f"  {name:20s} {wall:8.2f} s for {chains * steps:,} samples ({chains} chains × {steps} steps)")
        del prior, condition
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=("paper", "glyphs", "both"), default="both")
    parser.add_argument("--chains", type=int, default=10, help="chains of the batch-1 loop (default 10)")
    parser.add_argument("--batches", default="10,20,40,80", help="batch sizes to time (default 10,20,40,80)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", default="", help=f"comma list of {', '.join(VARIANTS)} (default none)")
    parser.add_argument("--variant-batch", type=int, default=10, help="batch of the variant timings (default 10)")
    parser.add_argument("--unit", action="store_true",
                        help="also time a whole 2,000-sample unit (10 chains × 200 steps) with each variant "
                             "(fp32 alone without --variants)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    peak = matmul_peak(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"machine: {name}, {torch.get_num_threads()} threads, device {device}, torch {torch.__version__}")
    print(f"matmul peak (fp32 2048²): {peak:.0f} GFLOP/s")
    setups = ("paper", "glyphs") if args.setup == "both" else (args.setup,)
    for setup in setups:
        prior, condition = (build if setup == "paper" else build_glyphs)(device)
        flops = step_flops(prior, condition, 1)
        rows = measure(prior, condition, device, batches if setup == "paper" else [b * 4 for b in batches], args.steps,
                       args.chains)
        base = rows[0][1]
        best = max(rows[1:], key=lambda r: r[1])
        print(f"\n[{setup}] one chain-step: {flops / 1e9:.3f} GFLOP "
              f"({'G 56.1 M + AlexNet fwd/bwd + E fwd' if setup == 'paper' else 'glyph G + classifier fwd/bwd + E fwd'})")
        for label, rate in rows:
            print(f"  {label:58s} {rate:8.2f} chain-steps/s = samples/s  {flops * rate / 1e9 / peak:5.0%} of peak  "
                  f"{rate / base:5.2f}x")
        print(f"  best: {best[0]} ({best[1] / base:.2f}x the batch-1 loop); peak memory {peak_memory_mb(device):.0f} MiB")
        if device.type == "cuda":
            per_unit = 2000 / best[1]
            print(f"  a 2,000-sample unit (10 chains x 200 steps) at the best rate: {per_unit:.2f} s")
        del prior, condition
        if variants:
            batch = args.variant_batch if setup == "paper" else args.variant_batch * 4
            print(f"  speed-ups at batch {batch}, {args.steps} steps:")
            for line in measure_variants(build if setup == "paper" else build_glyphs, device, variants, batch, args.steps):
                print(line)
        if args.unit:
            print("  a whole unit:")
            for line in time_unit(build if setup == "paper" else build_glyphs, device, variants or ["fp32"]):
                print(line)


if __name__ == "__main__":
    main()
