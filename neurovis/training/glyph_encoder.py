"""The glyph encoder E: an AlexNet-shaped net whose fc6 code a generator can invert.

Trained on *fine labels*: the 64 modes (cross-entropy at fc8) plus the image's geometry
and layout, regressed linearly from the post-ReLU fc6 code by an auxiliary head that is
discarded after training: the glyph's coverage mask at 16×16 (position, scale, rotation,
silhouette) and the image at 8×8 (background level, gradient). Measured here: an encoder
trained on modes alone keeps the mode but drops where the glyph is, so ``G(E(x))`` is a
colour blob in the centre that the classifier cannot read (25% class agreement after 500
prior steps); the fine labels keep that information in the code, as ImageNet's 1,000
classes shape the paper's fc6.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..world import GlyphWorld
from ..zoo.glyphs import build_glyph_net
from .classifier import CODE_P99_TARGET, EVAL_SEED, KIND_SEED_OFFSET, evaluate_glyph_net, normalise_code_scale

MASK_SIZE = 16
LAYOUT_SIZE = 8
AUX_DIM = MASK_SIZE * MASK_SIZE + 3 * LAYOUT_SIZE * LAYOUT_SIZE


def aux_targets(batch: Any) -> Tensor:
    """Fine-label regression targets ``(N, AUX_DIM)``: 16×16 mask, 8×8 RGB layout, in [0, 1]."""
    mask = F.adaptive_avg_pool2d(batch.masks, MASK_SIZE).flatten(1)
    layout = F.adaptive_avg_pool2d(batch.images, LAYOUT_SIZE).flatten(1)
    return torch.cat([mask, layout], 1)


def train_glyph_encoder(
    steps: int = 3000,
    batch_size: int = 128,
    lr: float = 1e-3,
    aux_weight: float = 20.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    warmup: int = 150,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the fine-label encoder on fresh world images; returns ``(net, metrics)``.

    ``metrics`` has the mode accuracy and fc6 statistics of :func:`evaluate_glyph_net`,
    ``aux_r2`` (share of the fine-label variance the code explains linearly) and timings.
    """
    s = seed + KIND_SEED_OFFSET["encoder"]
    torch.manual_seed(s)
    world = GlyphWorld()
    net = build_glyph_net("encoder").to(device)
    head = nn.Linear(net.fc6.out_features, AUX_DIM).to(device)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=lr)
    t0 = time.time()
    net.train()
    run = None
    for i, batch in enumerate(world.stream(batch_size, seed=s, n_batches=steps)):
        scale = (i + 1) / warmup if i < warmup else 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(1, steps - warmup)))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        x = batch.images.to(device)
        code = net.encode(x)
        logits = net.fc8(net.relu7(net.fc7(code)))
        ce = F.cross_entropy(logits, batch.modes.to(device))
        aux = F.mse_loss(head(code), aux_targets(batch).to(device))
        loss = ce + aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run = (ce.item(), aux.item()) if run is None else (0.98 * run[0] + 0.02 * ce.item(), 0.98 * run[1] + 0.02 * aux.item())
        if log is not None and (i % 250 == 0 or i == steps - 1):
            log(f"encoder step {i}/{steps} mode-ce {run[0]:.4f} aux-mse {run[1]:.5f} ({time.time() - t0:.0f}s)")
    train_seconds = time.time() - t0
    net = net.cpu().eval()
    head = head.cpu().eval()
    with torch.no_grad():
        held = world.sample(2048, seed=EVAL_SEED + 11)
        target = aux_targets(held)
        pred = head(net.encode(held.images))
        r2 = 1 - float(((pred - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())
    rescale = normalise_code_scale(net, world.sample(2048, seed=EVAL_SEED + 7).images, CODE_P99_TARGET)
    metrics = evaluate_glyph_net(net, "encoder", seed=EVAL_SEED + KIND_SEED_OFFSET["encoder"])
    metrics.update(aux_r2=round(r2, 4), fc6_rescale=round(rescale, 6), train_seconds=round(train_seconds, 1),
                   steps=steps, batch_size=batch_size, lr=lr, aux_weight=aux_weight, fine_labels="64 modes + 16x16 mask + 8x8 layout")
    return net, metrics
