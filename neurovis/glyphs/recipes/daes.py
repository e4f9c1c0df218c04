"""Denoising autoencoders of the glyph world: the ε1 terms of PPGN-h and PPGN-x (SPEC §1.1).

Two of the paper's five prior treatments need a DAE of their own (Sec. 3.1, 3.3, S9.2, S9.3):

- **PPGN-h**, ``R_h``: an MLP DAE on the code ``h`` that the glyph generator inverts, the
  glyph encoder's post-ReLU fc6 (512-d). It is :class:`~neurovis.priors.CodeDAE` with the
  paper's shape scaled to the code (:data:`HDAE_DIMS`), trained on codes of fresh world
  images with Gaussian noise ``σ_h`` added (:data:`HDAE_CONFIG`).
- **PPGN-x**, ``R_x``: a small convolutional DAE on 64×64 RGB [0, 1] images
  (:class:`ImageDAE`), trained on fresh world images with Gaussian pixel noise ``σ_x``
  (:data:`XDAE_CONFIG`).

Both are trained seeded, on one CPU thread in a few minutes, and report their denoising on
held-out data (:func:`denoising_metrics`): the mean squared error to the clean input of the
noisy input (``noisy_mse`` ≈ σ²) and of the DAE's output (``denoised_mse``), their ratio,
and ``clean_mse`` (how far ``R`` moves a clean input; the ε1 term at a data point).
``python scripts/train_glyph_daes.py`` trains and ships both.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from neurovis.glyphs import GlyphWorld, stream_seed
from neurovis.glyphs.nets import load_glyph_encoder
from neurovis.priors import CodeDAE

HDAE_KIND = "hdae"
XDAE_KIND = "xdae"

HDAE_DIMS: tuple[int, ...] = (512, 256, 128, 64, 128, 256, 512)
"""The paper's R_h is 4096-2048-1024-500-1024-2048-4096 on CaffeNet's 4096-d fc6 (Sec. 3.3,
S9.3): every layer halves (the 500 bottleneck is ≈ 4096/8). The glyph code is 512-d, one
eighth of 4096, so every width is divided by 8 (500/8 ≈ 62, rounded to 64): the same depth,
the same halving and the same 8× bottleneck, at 1/64 of the weights (0.34 M parameters
instead of 22 M)."""


@dataclass(frozen=True)
class DAEConfig:
    """Recipe of one DAE.

    Attributes:
        sigma: standard deviation of the Gaussian training noise, in the units of the data
            (code units for ``R_h``, [0, 1] pixel units for ``R_x``).
        steps: optimiser steps; ``batch_size`` examples each, fresh noise every step.
        lr: Adam learning rate (β = 0.9, 0.999 as in Sec. S9.1), halved at ``lr_decay_at``.
        weight_decay: L2 regularisation (Sec. S9.2: 4e-4 for R_x; S9.3: 1e-3 for R_h).
        n_train: fresh world images whose codes form the training pool (``R_h`` only; the
            images of ``R_x`` are fresh every step).
        n_eval: held-out images for :func:`denoising_metrics` (world seed ``eval_seed``).
        seed: seeds the world stream, the initial weights and the noise.
    """

    sigma: float
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_decay_at: tuple[int, ...] = ()
    n_train: int = 0
    n_eval: int = 1024
    seed: int = 0
    eval_seed: int = 987_658_321

    def to_dict(self) -> dict[str, Any]:
        """JSON- and ``weights_only``-friendly copy (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


HDAE_CONFIG = DAEConfig(
    sigma=1.0, steps=12_000, batch_size=128, lr=1e-3, weight_decay=0.0, lr_decay_at=(6000, 9000),
    n_train=65_536, n_eval=2048,
)
"""R_h: σ_h = 1.0 in code units, the paper's σ = 1 on CaffeNet fc6 (Sec. S9.3). The glyph
encoder's fc6 was rescaled (function-preserving) so that its 99th percentile is 8, the
scale of CaffeNet's post-ReLU fc6, so the paper's σ carries over unchanged: σ_h = p99 / 8.
(The paper also calls σ = 1 "∼10% of the mean fc6 activation"; on the glyph codes, mean
1.35, mean of the active units 2.4, that reading would give σ ≈ 0.13–0.24, a DAE that barely
moves its input.) A pilot sweep (32k codes, 4,000 steps, held-out codes) gave denoised MSE
0.076 / 0.092 / 0.135 for σ = 0.5 / 1 / 2 against noisy MSE 0.25 / 1 / 4: σ = 1 removes
91% of the noise energy while R_h still moves clean codes little (MSE 0.07). No weight
decay: the paper's 1e-3 is for 100,000 Caffe iterations on 22 M weights; here the held-out
reconstruction is measured instead.

R_h is trained with a *linear* output layer and shipped with the output ReLU
(``CodeDAE(relu_out=True)``, the same state dict): a ReLU output trained from scratch loses
output units for good (pilot: held-out denoised MSE 0.37 with a ReLU output against 0.10
linear, same recipe), while a ReLU put on the trained linear output can only bring the
output closer to a post-ReLU code, every target being ≥ 0."""

XDAE_CONFIG = DAEConfig(
    sigma=0.1, steps=1800, batch_size=32, lr=1e-3, weight_decay=4e-4, lr_decay_at=(1200,), n_eval=512,
)
"""R_x: σ_x = 0.1 in [0, 1] pixel units: the paper trains its image DAE with σ = 25.6 on
0–255 pixels (Sec. 3.1, S9.2), i.e. 25.6 / 256 = 0.10 of the pixel range; the same fraction
on [0, 1] images is 0.1. Weight decay 4e-4 as Sec. S9.2."""


class ImageDAE(nn.Module):
    """``R_x``: a 4-layer convolutional DAE on images (the paper's PPGN-x shape, Sec. S9.2).

    The paper's DAE encodes an image to AlexNet's conv1 and decodes it with 3 upconvolutional
    layers. Here the encoder is one conv shaped like the glyph networks' conv1 (5×5, stride
    2, ``channels`` maps: 64×64 → 32×32), and the decoder three transposed convs
    (4×4 stride 2 back to 64×64, then two 3×3), ReLU between, linear output.

    Input and output: ``(B, 3, H, W)`` images (trained on RGB [0, 1], H = W = 64; any even
    size runs).
    """

    def __init__(self, channels: int = 32, hidden: int = 16) -> None:
        super().__init__()
        self.arch: dict[str, Any] = {"channels": channels, "hidden": hidden}
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2), nn.ReLU(),
            nn.ConvTranspose2d(channels, hidden, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, hidden, 3, stride=1, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 3, 3, stride=1, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_hdae(arch: dict[str, Any] | None = None) -> CodeDAE:
    """A fresh ``R_h``; ``arch`` = ``{"dims": [...], "relu_out": bool}`` (default :data:`HDAE_DIMS`)."""
    arch = dict(arch or {})
    dae = CodeDAE(tuple(arch.get("dims", HDAE_DIMS)), relu_out=bool(arch.get("relu_out", True)))
    dae.arch = {"dims": [int(d) for d in arch.get("dims", HDAE_DIMS)], "relu_out": bool(arch.get("relu_out", True))}
    return dae


def build_xdae(arch: dict[str, Any] | None = None) -> ImageDAE:
    """A fresh ``R_x``; ``arch`` = ``{"channels": int, "hidden": int}``."""
    return ImageDAE(**dict(arch or {}))


# ------------------------------------------------------------------------------ data
@torch.no_grad()
def glyph_codes(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Post-ReLU fc6 codes ``(N, 512)`` of RGB [0, 1] images ``(N, 3, 64, 64)``."""
    return torch.cat([encoder.encode(chunk) for chunk in images.split(batch_size)])


@torch.no_grad()
def code_pool(encoder: nn.Module, world: Any, n: int, seed: int, batch_size: int = 512,
              progress: bool = False) -> torch.Tensor:
    """Codes of ``n`` fresh world images, from ``world.stream(batch_size, seed)``."""
    n_batches = -(-n // batch_size)
    out = []
    for batch in tqdm(world.stream(batch_size, seed=seed, n_batches=n_batches), total=n_batches,
                      desc="R_h codes", unit="batch", disable=not progress, leave=False):
        out.append(encoder.encode(batch.images))
    return torch.cat(out)[:n]


@torch.no_grad()
def denoising_metrics(dae: nn.Module, clean: torch.Tensor, sigma: float, seed: int = 1,
                      batch_size: int = 256) -> dict[str, float]:
    """Denoising of ``dae`` on clean data with Gaussian noise of std ``sigma`` (seeded).

    Returns ``noisy_mse`` (mean over elements of ``(x̃ − x)²``, ≈ σ²), ``denoised_mse``
    (``(R(x̃) − x)²``), ``denoise_ratio`` = denoised / noisy (< 1: it removes noise) and
    ``clean_mse`` (``(R(x) − x)²``, how far R moves data).
    """
    was_training = dae.training
    dae.eval()
    g = torch.Generator().manual_seed(int(seed))
    noisy_se = denoised_se = clean_se = 0.0
    try:
        for chunk in clean.split(batch_size):
            noise = sigma * torch.randn(chunk.shape, generator=g)
            noisy = chunk + noise
            noisy_se += float((noise**2).sum())
            denoised_se += float(((dae(noisy) - chunk) ** 2).sum())
            clean_se += float(((dae(chunk) - chunk) ** 2).sum())
    finally:
        dae.train(was_training)
    n = clean.numel()
    return {"noisy_mse": noisy_se / n, "denoised_mse": denoised_se / n,
            "denoise_ratio": denoised_se / max(noisy_se, 1e-30), "clean_mse": clean_se / n}


# ------------------------------------------------------------------------------ training
def _fit(dae: nn.Module, config: DAEConfig, batches: Callable[[int], torch.Tensor], desc: str,
         progress: bool, log: Callable[[str], None] | None) -> tuple[float, list[float]]:
    """Adam on ``‖R(x + σ·n) − x‖²`` for ``config.steps`` batches; returns (seconds, losses)."""
    opt = torch.optim.Adam(dae.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.lr_decay_at), gamma=0.5)
    noise_gen = torch.Generator().manual_seed(config.seed + 1)
    losses: list[float] = []
    dae.train()
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc=desc, unit="step", disable=not progress, dynamic_ncols=True)
    for step in bar:
        clean = batches(step)
        noisy = clean + config.sigma * torch.randn(clean.shape, generator=noise_gen)
        loss = ((dae(noisy) - clean) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 250 == 0 or step + 1 == config.steps:
            recent = sum(losses[-250:]) / len(losses[-250:])
            bar.set_postfix(loss=f"{recent:.4f}", ratio=f"{recent / config.sigma**2:.3f}")
            if log is not None:
                log(f"[{desc}] step {step + 1}/{config.steps} loss {recent:.5f} (noisy {config.sigma**2:.5f})")
    dae.eval()
    return time.perf_counter() - started, losses


def train_hdae(
    config: DAEConfig = HDAE_CONFIG,
    encoder: nn.Module | None = None,
    world: Any = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[CodeDAE, dict[str, float]]:
    """Train ``R_h`` on the glyph encoder's post-ReLU fc6 codes of fresh world images.

    The training pool is the codes of ``config.n_train`` images of
    ``world.stream(512, config.seed)``; each step draws ``batch_size`` of them and fresh
    noise. Held-out figures use ``world.sample(n_eval, eval_seed)`` (never in the pool).

    Returns ``(dae, metrics)``; the DAE (with its output ReLU, as shipped: see
    :data:`HDAE_CONFIG`) is in eval mode on the CPU. ``metrics``: the
    :func:`denoising_metrics` on held-out codes, the final training loss, ``code_p99`` and
    ``code_mean`` of the held-out codes, and ``train_seconds`` (pool + fit) / ``fit_seconds``.
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    world = world or GlyphWorld()
    encoder = encoder if encoder is not None else load_glyph_encoder()
    dae = build_hdae({"dims": HDAE_DIMS, "relu_out": False})  # see HDAE_CONFIG: linear while training
    pool = code_pool(encoder, world, config.n_train, config.seed, progress=progress)
    held_out = glyph_codes(encoder, world.sample(config.n_eval, seed=config.eval_seed).images)
    order = torch.Generator().manual_seed(config.seed + 2)

    def batches(step: int) -> torch.Tensor:
        return pool[torch.randint(0, pool.shape[0], (config.batch_size,), generator=order)]

    fit_s, losses = _fit(dae, config, batches, "R_h", progress, log)
    shipped = build_hdae({"dims": HDAE_DIMS, "relu_out": True})
    shipped.load_state_dict(dae.state_dict())
    dae = shipped.eval()
    metrics = denoising_metrics(dae, held_out, config.sigma, seed=config.eval_seed)
    metrics.update(
        final_train_loss=sum(losses[-250:]) / len(losses[-250:]),
        code_mean=float(held_out.mean()), code_p99=float(held_out.flatten().quantile(0.99)),
        sigma=config.sigma, n_eval=float(config.n_eval),
        fit_seconds=fit_s, train_seconds=time.perf_counter() - started,
    )
    return dae, metrics


def train_xdae(
    config: DAEConfig = XDAE_CONFIG,
    world: Any = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[ImageDAE, dict[str, float]]:
    """Train ``R_x`` on fresh world images (``world.stream(batch_size, config.seed)``).

    Returns ``(dae, metrics)``; metrics are :func:`denoising_metrics` on
    ``world.sample(n_eval, eval_seed)`` in [0, 1] pixel units, the final training loss and
    ``train_seconds``.
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    world = world or GlyphWorld()
    dae = build_xdae()

    def batches(step: int) -> torch.Tensor:
        return world.sample(config.batch_size, seed=stream_seed(config.seed, step)).images

    fit_s, losses = _fit(dae, config, batches, "R_x", progress, log)
    held_out = world.sample(config.n_eval, seed=config.eval_seed).images
    metrics = denoising_metrics(dae, held_out, config.sigma, seed=config.eval_seed)
    metrics.update(final_train_loss=sum(losses[-250:]) / len(losses[-250:]), sigma=config.sigma,
                   n_eval=float(config.n_eval), fit_seconds=fit_s, train_seconds=time.perf_counter() - started)
    return dae, metrics


def dae_payload(dae: nn.Module, kind: str, metrics: dict[str, float], config: DAEConfig,
                extra_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped file's content: float16 state dict, ``arch``, ``metrics``, ``config``
    (``torch.load(weights_only=True)``-readable; see :func:`neurovis.glyphs.checkpoints.load_payload`)."""
    return {
        "format": "neurovis.glyphs/1",
        "kind": kind,
        "state_dict": {k: v.detach().cpu().half() for k, v in dae.state_dict().items()},
        "arch": dict(dae.arch),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "config": {**config.to_dict(), **(extra_config or {})},
    }


def replace_config(config: DAEConfig, **changes: Any) -> DAEConfig:
    """``config`` with fields changed (``None`` values ignored); tuples for sequence fields."""
    clean = {k: (tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v)
             for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **clean)
