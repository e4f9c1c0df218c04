"""The glyph encoder E: an AlexNet-shaped net whose fc6 code a generator can invert.

Trained on *fine labels*: the 64 modes (cross-entropy at fc8) plus the image's geometry
and layout, regressed linearly from the post-ReLU fc6 code by an auxiliary head that is
discarded after training: the glyph's coverage mask at 16×16 (position, scale, rotation,
silhouette), the image at 8×8 (background level, gradient) and the glyph's pose
``(cos kθ, sin kθ)`` (θ its rotation, k its shape's symmetry order; 0 for circle and ring).
Measured here: without the pose labels the code holds the rotation of squares, stars and
crosses poorly (R² 0.35–0.39 from a ridge probe on fc6), so ``G`` averages those glyphs
over turns and draws blobs the oracle cannot name. An encoder
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
from sklearn.metrics import r2_score
from torch import Tensor, nn

from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.shapes import SYMMETRY_ORDERS
from neurovis.glyphs.nets import build_glyph_net
from neurovis.glyphs.recipes.classifier import CODE_P99_TARGET, EVAL_SEED, KIND_SEED_OFFSET, evaluate_glyph_net, normalise_code_scale

MASK_SIZE = 16
LAYOUT_SIZE = 8
AUX_DIM = MASK_SIZE * MASK_SIZE + 3 * LAYOUT_SIZE * LAYOUT_SIZE
POSE_DIM = 2


def aux_targets(batch: Any) -> Tensor:
    """Fine-label regression targets ``(N, AUX_DIM)``: 16×16 mask, 8×8 RGB layout, in [0, 1]."""
    mask = F.adaptive_avg_pool2d(batch.masks, MASK_SIZE).flatten(1)
    layout = F.adaptive_avg_pool2d(batch.images, LAYOUT_SIZE).flatten(1)
    return torch.cat([mask, layout], 1)


def pose_targets(batch: Any) -> Tensor:
    """Pose regression targets ``(N, 2)``: ``(cos kθ, sin kθ)`` with ``k`` the shape's
    symmetry order (:data:`~neurovis.glyphs.shapes.SYMMETRY_ORDERS`), zeros when ``k = 0``."""
    k = torch.tensor(SYMMETRY_ORDERS, dtype=torch.float32)[batch.shapes]
    turn = k * batch.angles
    return torch.stack([torch.cos(turn), torch.sin(turn)], 1) * (k > 0).float()[:, None]


def train_glyph_encoder(
    steps: int = 3000,
    batch_size: int = 128,
    lr: float = 1e-3,
    aux_weight: float = 20.0,
    pose_weight: float = 4.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    warmup: int = 150,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the fine-label encoder on fresh world images; returns ``(net, metrics)``.

    ``metrics`` has the mode accuracy and fc6 statistics of :func:`evaluate_glyph_net`,
    ``aux_r2`` (share of the mask/layout variance the code explains linearly),
    ``pose_r2`` (the same for the pose) and timings.
    """
    s = seed + KIND_SEED_OFFSET["encoder"]
    torch.manual_seed(s)
    world = GlyphWorld()
    net = build_glyph_net("encoder").to(device)
    head = nn.Linear(net.fc6.out_features, AUX_DIM + POSE_DIM).to(device)
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
        pred = head(code)
        aux = F.mse_loss(pred[:, :AUX_DIM], aux_targets(batch).to(device))
        pose = F.mse_loss(pred[:, AUX_DIM:], pose_targets(batch).to(device))
        loss = ce + aux_weight * aux + pose_weight * pose
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        now = (ce.item(), aux.item(), pose.item())
        run = now if run is None else tuple(0.98 * a + 0.02 * b for a, b in zip(run, now))
        if log is not None and (i % 250 == 0 or i == steps - 1):
            log(f"encoder step {i}/{steps} mode-ce {run[0]:.4f} aux-mse {run[1]:.5f} pose-mse {run[2]:.4f} "
                f"({time.time() - t0:.0f}s)")
    train_seconds = time.time() - t0
    net = net.cpu().eval()
    head = head.cpu().eval()
    with torch.no_grad():
        held = world.sample(2048, seed=EVAL_SEED + 11)
        pred = head(net.encode(held.images)).numpy()
        pose = pose_targets(held)
        turning = (pose.norm(dim=1) > 0).numpy()  # circles and rings have no pose
        aux_r2 = r2_score(aux_targets(held).numpy(), pred[:, :AUX_DIM], multioutput="variance_weighted")
        pose_r2 = r2_score(pose.numpy()[turning], pred[turning, AUX_DIM:], multioutput="variance_weighted")
    rescale = normalise_code_scale(net, world.sample(2048, seed=EVAL_SEED + 7).images, CODE_P99_TARGET)
    metrics = evaluate_glyph_net(net, "encoder", seed=EVAL_SEED + KIND_SEED_OFFSET["encoder"])
    metrics.update(aux_r2=round(aux_r2, 4), pose_r2=round(pose_r2, 4), fc6_rescale=round(rescale, 6), train_seconds=round(train_seconds, 1),
                   steps=steps, batch_size=batch_size, lr=lr, aux_weight=aux_weight, pose_weight=pose_weight,
                   fine_labels="64 modes + 16x16 mask + 8x8 layout + pose (cos, sin of symmetry order x angle)")
    return net, metrics
