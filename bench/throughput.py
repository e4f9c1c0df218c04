"""Chain-steps per second of the sampler at paper size (issue 2; extended by issue 6).

Paper-size DeePSiM fc6 generator (56.1 M parameters, 256×256 output cropped to 227) as G,
torchvision AlexNet (random weights) as both the condition net (conv5 unit 196, through
the Caffe->torchvision pixel adapter, resized to 224) and the encoder E (post-ReLU fc6).
Compares the reference code's way (one chain at a time, batch 1) with one batched call,
and reports the FLOP-based fraction of this machine's fp32 matmul peak.

    python bench/throughput.py [--chains 10] [--steps 5] [--device cpu]
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
from neurovis.adapters import CAFFE_IMAGENET, TORCHVISION_IMAGENET


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """Measured fp32 matmul GFLOP/s on ``device`` (n×n by n×n)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def build(device: torch.device) -> tuple[nv.Prior, nv.Condition]:
    torch.manual_seed(0)
    generator = nn.Sequential(nv.deepsim_fc6(), nv.Crop(14, 14, 227, 227)).to(device)
    net = alexnet(weights=None).to(device).eval()
    space = CAFFE_IMAGENET  # G's cropped output: BGR 0-255 minus mean, 227×227
    encoder = nv.LayerEncoder(net, "classifier.1", source_space=space, input_space=TORCHVISION_IMAGENET)
    prior = nv.GeneratorPrior(generator, encoder, pixel_space=space, code_shape=(4096,))
    condition = nv.UnitCondition(net, "features.10", 196, input_space=TORCHVISION_IMAGENET)
    return prior, condition


def step_flops(prior: nv.Prior, condition: nv.Condition, chains: int) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    prior, condition = build(device)
    peak = matmul_peak(device)
    flops = step_flops(prior, condition, 1)

    def timed(chains: int, calls: int) -> float:
        nv.sample(prior, condition, chains=chains, steps=1, progress=False)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(calls):
            nv.sample(prior, condition, chains=chains, steps=args.steps, seed=i, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    sequential = timed(1, args.chains)
    batched = timed(args.chains, 1)
    n = args.chains * args.steps
    seq_rate, bat_rate = n / sequential, n / batched
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"device {device}, torch {torch.__version__}")
    print(f"matmul peak (fp32 2048²): {peak:.0f} GFLOP/s")
    print(f"one chain-step (G + AlexNet fwd/bwd + E fwd): {flops / 1e9:.2f} GFLOP")
    print(f"sequential, batch 1 x {args.chains} chains: {seq_rate:.2f} chain-steps/s "
          f"({flops * seq_rate / 1e9 / peak:.0%} of peak)")
    print(f"batched, {args.chains} chains in one call: {bat_rate:.2f} chain-steps/s "
          f"({flops * bat_rate / 1e9 / peak:.0%} of peak)")
    print(f"ratio batched / sequential: {bat_rate / seq_rate:.2f}x")


if __name__ == "__main__":
    main()
