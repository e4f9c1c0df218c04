"""Where a sampler step's time goes, layer by layer, at batch 1 and at a batched size.

Replays one step of the throughput bench's setup (``bench/throughput.py``: paper-size
DeePSiM fc6 generator + torchvision AlexNet as condition and E, or the glyph world) to
find each convolution and linear layer, its input shape and how the step uses it (forward
and input-gradient for G and the condition's layers, forward only for E's no-grad pass).
Then times each layer alone on random inputs, weights frozen, at batch 1 and at
``--batch``, and prints GFLOP/s (torch's FlopCounterMode), the share of the measured fp32
matmul peak, and the step's layer time per chain at both sizes. The gap between that
layer time and a whole step (``bench/throughput.py``) is the memory-bound rest
(activations, resizes, pixel adapters).

    python bench/layer_rates.py [--setup paper|glyphs] [--batch 20] [--reps 3] [--channels-last]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from throughput import build, build_glyphs, matmul_peak

from neurovis._utils.speed import to_channels_last

LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def step_layers(prior, condition) -> list[tuple[str, nn.Module, tuple[int, ...], int, int]]:
    """``(name, module, input shape without batch, grad uses, no-grad uses)`` of each layer
    one sampler step runs, in first-use order (decode and condition with grad, E without)."""
    names = {m: n for part in prior.modules() + condition.modules() for n, m in part.named_modules()}
    seen: dict[nn.Module, list] = {}

    def hook(module, inputs, _output):
        entry = seen.setdefault(module, [tuple(inputs[0].shape[1:]), 0, 0])
        entry[1 if torch.is_grad_enabled() else 2] += 1

    handles = [m.register_forward_hook(hook) for m in names if isinstance(m, LAYERS)]
    try:
        h = prior.initial_codes([torch.Generator().manual_seed(0)]).to(prior.device).requires_grad_(True)
        x = prior.decode(h)
        condition.evaluate(x, prior.pixel_space)
        with torch.no_grad():
            prior.prior_term(h.detach(), x.detach())
    finally:
        for handle in handles:
            handle.remove()
    return [(names[m], m, shape, grad, nograd) for m, (shape, grad, nograd) in seen.items()]


def time_layer(module: nn.Module, shape: tuple[int, ...], batch: int, reps: int,
               channels_last: bool = False) -> tuple[float, float, float, float]:
    """``(forward s, forward+input-grad s, forward FLOPs, forward+input-grad FLOPs)`` of one
    call of ``module`` on a random ``(batch, *shape)`` input (NHWC if ``channels_last`` and
    the input is 4-D)."""
    x = torch.randn(batch, *shape, device=next(module.parameters()).device)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            module(x)

    def both() -> None:  # backward, not autograd.grad: FlopCounterMode cannot watch the latter
        x.grad = None
        out = module(x)
        out.backward(torch.ones_like(out))

    times, flops = [], []
    for fn in (forward, both):
        with FlopCounterMode(display=False) as counter:
            fn()
        flops.append(float(counter.get_total_flops()))
        fn()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - start) / reps)
    return times[0], times[1], flops[0], flops[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=("paper", "glyphs"), default="paper")
    parser.add_argument("--batch", type=int, default=20, help="the batched size to compare with batch 1 (default 20)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true", help="time convolutions with NHWC weights and inputs")
    args = parser.parse_args()
    device = torch.device(args.device)
    prior, condition = (build if args.setup == "paper" else build_glyphs)(device)
    for module in prior.modules() + condition.modules():
        module.requires_grad_(False)
    layers = step_layers(prior, condition)
    if args.channels_last:
        to_channels_last(prior.modules() + condition.modules())
    peak = matmul_peak(device)
    print(f"[{args.setup}{', channels_last' if args.channels_last else ''}] {torch.get_num_threads()} threads, device {device}, torch {torch.__version__}; "
          f"matmul peak (fp32 2048²) {peak:.0f} GFLOP/s")
    print(f"  {'layer':22s} {'input':16s} uses  {'batch 1 GFLOP/s (peak)':>24s}  "
          f"{f'batch {args.batch} GFLOP/s (peak)':>25s}  ms/chain/step at 1 → {args.batch}")
    totals = [0.0, 0.0]
    for name, module, shape, grad_uses, nograd_uses in layers:
        cells, per_chain = [], []
        for batch in (1, args.batch):
            t_fwd, t_both, f_fwd, f_both = time_layer(module, shape, batch, args.reps, args.channels_last)
            seconds = grad_uses * t_both + nograd_uses * t_fwd
            rate = (grad_uses * f_both + nograd_uses * f_fwd) / seconds / 1e9
            cells.append(f"{rate:8.1f} ({rate / peak:4.0%})")
            per_chain.append(seconds / batch * 1e3)
        totals[0] += per_chain[0]
        totals[1] += per_chain[1]
        uses = f"{grad_uses}g{nograd_uses}n"
        print(f"  {name:22s} {'×'.join(map(str, shape)):16s} {uses:5s} {cells[0]:>24s}  {cells[1]:>25s}  "
              f"{per_chain[0]:7.2f} → {per_chain[1]:6.2f}")
    print(f"  layers in all: {totals[0]:.1f} ms per chain-step at batch 1, {totals[1]:.1f} at batch {args.batch} "
          f"({totals[0] / totals[1]:.2f}×); uses: g = forward + input-gradient, n = no-grad forward")


if __name__ == "__main__":
    main()
