"""Training and evaluation of the glyph-world networks (classifier, encoder, oracle).

Every batch is freshly rendered by the world (a fixed set overfits), so the only
augmentation is the world's own randomness, plus mild blur/noise for the classifier and
the oracle (both judge the generator's soft images; see :data:`AUGMENTED_KINDS`). Adam
with a linear warm-up and cosine decay. Seeded: the same arguments give the same
network on the same machine and thread count.

Kinds (targets):
    ``classifier``  16 classes of the default partition (``glyphs``, the condition net C)
    ``encoder``     64 fine modes, same architecture (``glyph_encoder``, the encoder E)
    ``oracle``      shape and colour heads (:class:`neurovis.zoo.glyphs.GlyphOracle`)
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..world import GlyphWorld
from ..zoo.glyphs import GlyphOracle, build_glyph_net

KINDS = ("classifier", "encoder", "oracle")

# Seeds per kind: network init, training stream, and the held-out evaluation set.
# Evaluation images come from ``world.sample(n, seed)``, training batches from
# ``world.stream`` (SeedSequence-derived seeds), so the two never coincide.
KIND_SEED_OFFSET = {"classifier": 0, "encoder": 1000, "oracle": 2000}
EVAL_SEED = 987_654_321

CODE_P99_TARGET = 8.0
"""The encoder's fc6 code is rescaled (function-preserving) to this 99th percentile, so its
post-ReLU codes sit well inside the paper's clip range [0, 30] (CaffeNet-like scale)."""

AUGMENTED_KINDS = ("classifier", "oracle")
"""Kinds trained with :func:`blur_noise_augment`. The classifier was first trained on sharp
glyphs only; it then kept 67.5% of the prior's reconstructed circles that the (blur-trained)
oracle named 100% right, so it judged the generator's softer edges, not its shapes."""

DEFAULT_STEPS = {"classifier": 3000, "encoder": 3000, "oracle": 1000}
DEFAULT_LR = {"classifier": 1e-3, "encoder": 1e-3, "oracle": 2e-3}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def blur_noise_augment(x: Tensor, g: torch.Generator, p_blur: float = 0.5, p_noise: float = 0.3) -> Tensor:
    """Mild degradations so the oracle can judge soft generator images.

    ``x``: (N, 3, H, W) RGB [0, 1]. A random ``p_blur`` share is Gaussian-blurred with
    sigma in {0.6, 1.0, 1.4} px, a ``p_noise`` share gets N(0, sigma<=0.05) noise.
    Returns a new tensor in [0, 1]. Random numbers come from ``g`` (CPU generator).
    """
    n = x.shape[0]
    out = x.clone()
    r = torch.rand(n, generator=g)
    which = torch.randint(0, 3, (n,), generator=g)
    for k, sigma in enumerate((0.6, 1.0, 1.4)):
        sel = ((r < p_blur) & (which == k)).nonzero(as_tuple=True)[0]
        if sel.numel():
            out[sel.to(x.device)] = gaussian_blur(x[sel.to(x.device)], sigma)
    rn = torch.rand(n, generator=g)
    sig = (torch.rand(n, generator=g) * 0.05) * (rn < p_noise).float()
    noise = torch.randn(x.shape, generator=g) * sig[:, None, None, None]
    return (out + noise.to(x.device)).clamp_(0.0, 1.0)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding; same shape back."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y


def _loss(net: nn.Module, kind: str, x: Tensor, batch) -> tuple[Tensor, Tensor]:
    """(loss, number correct) for one batch."""
    dev = x.device
    if kind == "oracle":
        s, c = net.heads(x)
        ts, tc = batch.shapes.to(dev), batch.colours.to(dev)
        loss = F.cross_entropy(s, ts) + F.cross_entropy(c, tc)
        correct = ((s.argmax(1) == ts) & (c.argmax(1) == tc)).sum()
        return loss, correct
    target = (batch.classes if kind == "classifier" else batch.modes).to(dev)
    logits = net(x)
    return F.cross_entropy(logits, target), (logits.argmax(1) == target).sum()


def train_glyph_net(
    kind: str,
    steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    eval_n: int = 4096,
    progress: bool = True,
    warmup: int = 150,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train one glyph network from scratch on fresh world images.

    Args:
        kind: "classifier", "encoder" or "oracle".
        steps: optimiser steps (default :data:`DEFAULT_STEPS`).
        batch_size: images per step.
        lr: Adam peak learning rate (default :data:`DEFAULT_LR`).
        seed: master seed (init, stream and augmentation derive from it).
        device: default CUDA if available, else CPU.
        eval_n: fresh held-out images for the final metrics.
        progress: show a tqdm bar.

    Returns:
        ``(net, metrics)``; ``net`` is in eval mode on CPU; ``metrics`` from
        :func:`evaluate_glyph_net` plus ``train_seconds``, ``steps``, ``batch_size``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    steps = int(steps or DEFAULT_STEPS[kind])
    lr = float(lr or DEFAULT_LR[kind])
    dev = pick_device(device)
    s = seed + KIND_SEED_OFFSET[kind]
    torch.manual_seed(s)
    world = GlyphWorld()
    net = build_glyph_net(kind).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def lr_at(i: int) -> float:
        if i < warmup:
            return lr * (i + 1) / warmup
        t = (i - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    aug_g = torch.Generator().manual_seed(s + 17)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=f"glyph {kind}", unit="step", dynamic_ncols=True)
    t0 = time.time()
    run_loss, run_acc = None, None
    net.train()
    for i, batch in enumerate(world.stream(batch_size, seed=s, n_batches=steps)):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        x = batch.images.to(dev, non_blocking=True)
        if kind in AUGMENTED_KINDS:
            x = blur_noise_augment(x, aug_g)
        loss, correct = _loss(net, kind, x, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        li, ai = loss.item(), correct.item() / batch_size
        run_loss = li if run_loss is None else 0.98 * run_loss + 0.02 * li
        run_acc = ai if run_acc is None else 0.98 * run_acc + 0.02 * ai
        if bar is not None:
            bar.update(1)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}")
        if log is not None and (i % 250 == 0 or i == steps - 1):
            log(f"{kind} step {i}/{steps} loss {run_loss:.4f} acc {run_acc:.4f} ({time.time() - t0:.0f}s)")
    if bar is not None:
        bar.close()
    train_seconds = time.time() - t0
    net = net.cpu().eval()
    extra: dict[str, Any] = {}
    if kind == "encoder":
        ref = world.sample(2048, seed=EVAL_SEED + 7).images
        extra["fc6_rescale"] = round(normalise_code_scale(net, ref, CODE_P99_TARGET), 6)
    metrics = evaluate_glyph_net(net, kind, n=eval_n, seed=EVAL_SEED + KIND_SEED_OFFSET[kind])
    metrics.update(train_seconds=round(train_seconds, 1), steps=steps, batch_size=batch_size,
                   lr=lr, images_seen=steps * batch_size, device=str(dev), **extra)
    return net, metrics


@torch.no_grad()
def normalise_code_scale(net: nn.Module, images: Tensor, target_p99: float = CODE_P99_TARGET) -> float:
    """Rescale an AlexNet-shaped net's fc6 code without changing its outputs.

    ReLU is positively homogeneous, so multiplying fc6 (weights and bias) by ``a > 0`` and
    dividing fc7's weights by ``a`` leaves the logits unchanged (up to rounding) while the
    post-ReLU fc6 code is scaled by ``a``. ``a`` is chosen so that the code's 99th
    percentile over ``images`` ((N, 3, 64, 64) RGB [0, 1]) equals ``target_p99``.
    Returns ``a``; ``net`` is modified in place.
    """
    h = torch.cat([net.encode(x) for x in images.split(512)])
    p99 = torch.quantile(h.flatten()[:1_000_000], 0.99).item()
    a = float(target_p99 / p99)
    net.fc6.weight.mul_(a)
    net.fc6.bias.mul_(a)
    net.fc7.weight.div_(a)
    return a


@torch.no_grad()
def evaluate_glyph_net(net: nn.Module, kind: str, n: int = 4096, seed: int = EVAL_SEED,
                       batch_size: int = 512) -> dict[str, Any]:
    """Accuracy of a glyph network on ``n`` fresh images of ``world.sample(n, seed)``.

    Returns a dict: for the classifier ``accuracy`` (class) and ``min_mode_accuracy``;
    for the encoder ``accuracy`` (mode), ``class_accuracy`` (mode mapped through the
    partition) and fc6 code statistics ``fc6_frac_nonzero``, ``fc6_p99``, ``fc6_max``,
    ``fc6_mean``; for the oracle ``accuracy`` (mode), ``shape_accuracy``,
    ``colour_accuracy``, ``blur_accuracy`` (sigma 1.0 blur), ``mean_confidence``.
    """
    world = GlyphWorld()
    batch = world.sample(n, seed=seed)
    net.eval()
    dev = next(net.parameters()).device
    preds, codes, extra = [], [], []
    for j in range(0, n, batch_size):
        x = batch.images[j:j + batch_size].to(dev)
        if kind == "oracle":
            assert isinstance(net, GlyphOracle)
            m, conf = net.predict(x)
            mb, _ = net.predict(gaussian_blur(x, 1.0))
            preds.append(m)
            extra.append(torch.stack([conf, mb.float()], 1))
        else:
            preds.append(net(x).argmax(1).cpu())
            if kind == "encoder":
                codes.append(net.encode(x).cpu())
    pred = torch.cat(preds)
    out: dict[str, Any] = {"eval_n": n, "eval_seed": seed}
    if kind == "classifier":
        ok = pred == batch.classes
        out["accuracy"] = ok.float().mean().item()
    elif kind == "encoder":
        ok = pred == batch.modes
        out["accuracy"] = ok.float().mean().item()
        out["class_accuracy"] = (world.classes_of(pred) == batch.classes).float().mean().item()
        h = torch.cat(codes)
        out["fc6_frac_nonzero"] = (h > 0).float().mean().item()
        out["fc6_p99"] = torch.quantile(h.flatten()[:1_000_000], 0.99).item()
        out["fc6_max"] = h.max().item()
        out["fc6_mean"] = h.mean().item()
        out["fc6_dim"] = int(h.shape[1])
    else:
        ex = torch.cat(extra)
        ok = pred == batch.modes
        out["accuracy"] = ok.float().mean().item()
        out["shape_accuracy"] = (pred // world.n_colours == batch.shapes).float().mean().item()
        out["colour_accuracy"] = (pred % world.n_colours == batch.colours).float().mean().item()
        out["blur_accuracy"] = (ex[:, 1].long() == batch.modes).float().mean().item()
        out["mean_confidence"] = ex[:, 0].mean().item()
    per_mode = torch.zeros(world.n_modes).index_add_(0, batch.modes, ok.float())
    counts = torch.bincount(batch.modes, minlength=world.n_modes).clamp(min=1).float()
    out["min_mode_accuracy"] = (per_mode / counts).min().item()
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in out.items()}
