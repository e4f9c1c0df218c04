"""Training a generator prior: Noiseless Joint PPGN-h (SPEC §3, paper Sec. S9.1, S9.4).

The encoder ``E`` (any network, read at a code layer, post-ReLU) is frozen. ``G`` learns
to invert it, ``h = E(x) -> x̂ = G(h)``, with

    L_G = w_img ‖x̂ − x‖² + w_feat ‖E₁(x̂) − E₁(x)‖² + w_code ‖E(x̂) − h‖² + w_gan (−log D(x̂))
          + w_out KL(softmax E_out(x) ‖ softmax E_out(x̂))

(``E₁`` a spatial layer, pool5 in the paper; ``‖x̂ − x‖²`` becomes ``|x̂ − x|`` with
``image_loss="l1"``; the mean over elements is used so weights do
not depend on image size; ``E_out`` the encoder's logits, an optional term outside the
paper's recipe, 0 by default: ``x̂`` must keep ``E``'s own reading of ``x``, no labels
needed) and ``D`` is trained with the usual GAN loss. Adam (lr 2e-4,
β 0.9/0.999), batch 64. GAN heuristics of Sec. S9.1: with ``r = loss_D / loss_G_gan``,
D pauses while ``r < 0.1`` and G while ``r > 10``. Optional noise on h, h1, x (σ) gives
Joint PPGN-h. Training is deterministic per step (the batch and the noise of step ``k``
depend only on the seed and ``k``), so a run resumed from a checkpoint continues with the
same losses as an uninterrupted one. Under ``torchrun`` (``WORLD_SIZE > 1``) G and D are
wrapped in DistributedDataParallel and each rank trains on its own batches.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from neurovis._utils.speed import autocast, resolve_precision, to_channels_last
from neurovis._utils.torch_utils import module_device
from neurovis._utils.weights import load_weights_file
from neurovis.chains import atomic_path
from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer
from neurovis.hooks.capture import run_to
from neurovis.pixels import PixelSpace
from neurovis.priors.generator import START_BANK_FILE, START_BANK_SIZE, save_start_bank
from neurovis.training.data import BatchSource
from neurovis.training.discriminator import DISCRIMINATOR_CHANNELS, Discriminator

PRECISIONS = ("fp32", "bf16", "auto")
LR_SCHEDULES = ("step", "cosine")
IMAGE_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}  # config.image_loss -> the pixel term
LOSS_COLUMNS = ("step", "loss_g", "img", "feat", "code", "gan_g", "out", "loss_d", "d_paused", "g_paused", "seconds")


@dataclass(frozen=True)
class PriorTrainingConfig:
    """Hyper-parameters of prior training (defaults: the paper's, Sec. S9.1/S9.4).

    ``precision``: ``"fp32"``, or ``"bf16"`` to run the forward passes of E, G and D under
    bf16 autocast (weights, optimiser state and losses stay fp32; no loss scaling is needed
    with bf16). Faster on CPUs with bf16 matrix units (AMX, AVX512-BF16) and on GPUs, 30x
    *slower* where bf16 is emulated (AVX2-only CPUs). ``"auto"``: bf16 where the device has
    native bf16 (``acceleration.resolve_precision``), else fp32.
    ``channels_last``: store E, G and D's 4-D weights as NHWC (values unchanged). Measured
    on a 2-core Xeon with AMX, glyph prior step: fp32 0.29 s, bf16 0.17 s, bf16 +
    channels_last 0.13 s; on a 2-core AMD EPYC (AVX2): fp32 0.52 s, fp32 + channels_last
    0.46 s, bf16 14 s.
    ``discriminator_channels``: widths of D's strided convolutions (used when the trainer
    builds D itself); ``(16, 32, 64, 128)`` costs about a third of the default's FLOPs.
    ``image_loss``: the pixel term ``‖x̂ − x‖``: ``"mse"`` (squared, the paper's) or ``"l1"``
    (mean absolute error, which pulls small colour errors harder than squared error does).
    ``lr_schedule``: ``"step"`` (``lr`` halved after each step in ``lr_decay_at``) or
    ``"cosine"`` (step ``k`` trains at ``lr · (1 + cos(π k / steps)) / 2``, down to 0 at
    ``steps``; ``lr_decay_at`` must be empty; a run resumed with more ``steps`` follows the
    new, longer curve from where it stopped).
    """

    steps: int = 5000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    w_img: float = 1.0
    w_feat: float = 1.0
    w_code: float = 0.0
    w_gan: float = 0.0
    w_out: float = 0.0
    gan_start: int = 0
    noise: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pause_low: float = 0.1
    pause_high: float = 10.0
    seed: int = 0
    checkpoint_every: int = 250
    lr_decay_at: tuple[int, ...] = field(default=())
    precision: str = "fp32"
    channels_last: bool = False
    discriminator_channels: tuple[int, ...] = DISCRIMINATOR_CHANNELS
    lr_schedule: str = "step"
    image_loss: str = "mse"


def _atomic_save(obj: Any, path: Path) -> None:
    final, tmp = atomic_path(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_csv(rows: list[list[float]], path: Path) -> None:
    final, tmp = atomic_path(path)
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOSS_COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, final)


class PriorTrainer:
    """Trains ``generator`` to invert ``encoder`` at ``code_layer``.

    Args:
        generator: ``G``, codes ``(B, D)`` -> images ``(B, 3, H, W)`` in ``pixel_space``.
        encoder: the frozen network ``E``; it is never updated.
        code_layer: layer of ``E`` whose post-ReLU output is the code (``fc6``).
        feature_layer: spatial layer of ``E`` for the feature loss (``pool5``), or ``None``.
        source: training images, batch per step (RGB [0, 1]).
        pixel_space: the convention ``E`` reads and ``G`` draws in.
        out_dir: where ``checkpoint.pt``, ``losses.csv``, ``config.json`` and the final
            ``generator.pt``/``discriminator.pt`` go.
        discriminator: ``D`` (default a small convnet); used only when ``w_gan > 0``.
        encoder_input: applied to images before ``E`` reads them, e.g. a centre
            :class:`~neurovis.Crop` when ``G`` draws 256×256 and ``E`` reads 227 or 224
            (the paper's generator and CaffeNet); ``None`` = as drawn.
        output_layer: layer of ``E`` giving its logits (``fc8``) for the ``w_out`` term;
            required when ``config.w_out > 0``.
    """

    def __init__(
        self,
        generator: nn.Module,
        encoder: nn.Module,
        code_layer: str,
        feature_layer: str | None,
        source: BatchSource,
        pixel_space: PixelSpace,
        out_dir: str | Path,
        config: PriorTrainingConfig = PriorTrainingConfig(),
        discriminator: nn.Module | None = None,
        encoder_input: nn.Module | None = None,
        output_layer: str | None = None,
    ) -> None:
        resolve_layer(encoder, code_layer)
        if config.precision not in PRECISIONS:
            raise NeurovisError(f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
        if config.lr_schedule not in LR_SCHEDULES:
            raise NeurovisError(f"lr schedule must be one of {', '.join(LR_SCHEDULES)}, got {config.lr_schedule!r}")
        if config.image_loss not in IMAGE_LOSSES:
            raise NeurovisError(f"image loss must be one of {', '.join(IMAGE_LOSSES)}, got {config.image_loss!r}")
        if config.lr_schedule == "cosine" and config.lr_decay_at:
            raise NeurovisError("the cosine lr schedule sets every step's lr itself; drop the lr decay steps")
        if discriminator is None and (not config.discriminator_channels or min(config.discriminator_channels) < 1):
            raise NeurovisError(f"discriminator channels must be one or more positive widths like 32,64,128,256, "
                                f"got {','.join(map(str, config.discriminator_channels)) or 'none'}")
        if feature_layer is not None:
            resolve_layer(encoder, feature_layer)
        if config.w_out > 0:
            if output_layer is None:
                raise NeurovisError("w_out > 0 needs the encoder's logits layer: pass output_layer (e.g. 'fc8')")
            resolve_layer(encoder, output_layer)
        self.config = config
        self.encoder = encoder.eval()
        self.encoder_input = encoder_input
        self.code_layer, self.feature_layer = code_layer, feature_layer
        self.output_layer = output_layer if config.w_out > 0 else None
        self.source, self.pixel_space = source, pixel_space
        self.out_dir = Path(out_dir)
        self.device = module_device(generator)
        self.generator = generator
        self.discriminator = (discriminator or Discriminator(config.discriminator_channels)).to(self.device)
        if config.channels_last:
            to_channels_last([self.generator, self.encoder, self.discriminator])
        self.precision = resolve_precision(config.precision, self.device)  # "auto" -> "fp32" or "bf16"
        self.rank, self.world = 0, 1
        self._g, self._d = self.generator, self.discriminator
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            self._init_distributed()
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr, config.betas, weight_decay=config.weight_decay)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr, config.betas, weight_decay=config.weight_decay)
        self.step = 0
        self.paused = [False, False]  # D paused, G paused
        self.rows: list[list[float]] = []
        self.elapsed = 0.0  # training seconds before this process (resumed runs add up)

    def _init_distributed(self) -> None:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        ids = [self.device.index] if self.device.type == "cuda" else None
        self._g = DDP(self.generator, device_ids=ids)
        self._d = DDP(self.discriminator, device_ids=ids)

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "paused": list(self.paused),
            "rows": self.rows,
            "elapsed": self.rows[-1][-1] if self.rows else 0.0,
            "config": json.dumps(asdict(self.config)),
            "batch_size": self.source.batch_size * self.world,  # images per step over all ranks
        }

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` if present (``weights_only=True``); True if resumed."""
        if not self.checkpoint_path.exists():
            return False
        state = load_weights_file(self.checkpoint_path, "checkpoint", "delete it to start over", self.device)
        saved = json.loads(state["config"])
        current = json.loads(json.dumps(asdict(self.config)))
        changed = sorted(k for k in saved if saved[k] != current.get(k) and k not in ("steps", "checkpoint_every"))
        if changed:
            raise NeurovisError(
                f"checkpoint {self.checkpoint_path} was made with other settings ({', '.join(changed)}); "
                "use the same settings or another --out"
            )
        batch = self.source.batch_size * self.world
        if int(state.get("batch_size", batch)) != batch:  # checkpoints before 2026-12-02 do not say
            raise NeurovisError(
                f"checkpoint {self.checkpoint_path} was made with {int(state['batch_size'])} images per step, this run "
                f"takes {batch}; use the same --batch-size (and number of ranks) or another --out"
            )
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.paused = [bool(p) for p in state["paused"]]
        self.rows = [list(r) for r in state["rows"]]
        self.elapsed = float(state.get("elapsed", 0.0))
        return True

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _atomic_save(self.state(), self.checkpoint_path)
        _write_csv(self.rows, self.out_dir / "losses.csv")

    # ------------------------------------------------------------------ losses
    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(code, feature, logits)``: the post-ReLU code, the feature layer, the output layer."""
        layers = [self.code_layer] + [name for name in (self.feature_layer, self.output_layer) if name]
        if self.encoder_input is not None:
            x = self.encoder_input(x)
        out = run_to(self.encoder, x, layers)
        code = torch.relu(out[self.code_layer].flatten(1))
        feature = out[self.feature_layer] if self.feature_layer else None
        logits = out[self.output_layer].flatten(1) if self.output_layer else None
        return code, feature, logits

    def _noise(self, like: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
        if not sigma:
            return like
        return like + sigma * torch.randn(like.shape, generator=g).to(like.device)

    def train_step(self) -> dict[str, float]:
        """One step of G (and D); returns the losses of the step."""
        cfg = self.config
        if cfg.lr_schedule == "cosine":  # this step's lr, from the step alone (so resumes need no stored lr)
            lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(self.step, cfg.steps) / max(cfg.steps, 1)))
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step * self.world + self.rank)
        x = self.pixel_space.from_rgb01(self.source.batch(self.step * self.world + self.rank).to(self.device))
        sigma_h, sigma_h1, sigma_x = cfg.noise
        with autocast(self.device, self.precision):
            with torch.no_grad():
                h, h1, logits = self._encode(self._noise(x, sigma_x, g))
            x_hat = self._g(self._noise(h.float(), sigma_h, g))
            code_hat, h1_hat, logits_hat = self._encode(x_hat)
            d_fake = self._d(x_hat) if cfg.w_gan > 0 and self.step >= cfg.gan_start else None
            # D's loss reuses d_fake (same values as D(x_hat.detach()); its backward is
            # restricted to D's parameters below), saving a third D forward per step.
            d_real_fake = ((self._d(x), d_fake if d_fake is not None else self._d(x_hat.detach()))
                           if cfg.w_gan > 0 else None)
        # losses in fp32 whatever the forward precision
        x_hat, h = x_hat.float(), h.float()
        img = IMAGE_LOSSES[cfg.image_loss](x_hat, x)
        feat = F.mse_loss(h1_hat.float(), self._noise(h1.float(), sigma_h1, g)) if h1 is not None else x.new_zeros(())
        code = F.mse_loss(code_hat.float(), h) if cfg.w_code else x.new_zeros(())
        out = (F.kl_div(F.log_softmax(logits_hat.float(), 1), F.log_softmax(logits.float(), 1), reduction="batchmean",
                        log_target=True) if logits is not None else x.new_zeros(()))
        use_gan = d_fake is not None
        gan_g = (F.binary_cross_entropy_with_logits(d_fake.float(), torch.ones(x.shape[0], device=self.device))
                 if use_gan else x.new_zeros(()))
        loss_g = cfg.w_img * img + cfg.w_feat * feat + cfg.w_code * code + cfg.w_out * out + cfg.w_gan * gan_g
        loss_d = x.new_zeros(())
        if d_real_fake is not None:
            real, fake = (d.float() for d in d_real_fake)
            loss_d = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
                fake, torch.zeros_like(fake)
            )
        # Both backward passes run before either optimiser step: they share D's graph on
        # x_hat, whose saved weights an earlier step would have changed in place.
        train_g, train_d = not self.paused[1], cfg.w_gan > 0 and not self.paused[0]
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        if train_g:
            loss_g.backward(inputs=list(self.generator.parameters()), retain_graph=train_d)
        if train_d:
            loss_d.backward(inputs=list(self.discriminator.parameters()))
        if train_g:
            self.opt_g.step()
        if train_d:
            self.opt_d.step()
        if use_gan:
            pair = torch.stack([loss_d.detach(), gan_g.detach()])
            if self.world > 1:  # every rank must take the same pause decision (DDP)
                import torch.distributed as dist

                dist.all_reduce(pair)
            ratio = float(pair[0]) / max(float(pair[1]), 1e-12)
            self.paused = [ratio < cfg.pause_low, ratio > cfg.pause_high]
        for lr_step in cfg.lr_decay_at:
            if self.step + 1 == lr_step:
                for opt in (self.opt_g, self.opt_d):
                    for group in opt.param_groups:
                        group["lr"] *= 0.5
        losses = {k: float(v.detach()) for k, v in {"loss_g": loss_g, "img": img, "feat": feat, "code": code,
                  "gan_g": gan_g, "out": out, "loss_d": loss_d}.items()}
        if not all(map(lambda v: v == v and abs(v) != float("inf"), losses.values())):
            raise NeurovisError(f"training diverged at step {self.step} (losses {losses}); lower --lr or the loss weights")
        return losses

    def train(self, progress: bool = True) -> Path:
        """Run to ``config.steps`` (resuming if a checkpoint exists); returns the generator file."""
        self.resume()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2))
        bar = tqdm(total=self.config.steps, initial=self.step, disable=not progress or self.rank != 0,
                   file=sys.stderr, desc="training prior", unit="step")
        started = time.perf_counter()
        self.generator.train()
        self.discriminator.train()
        while self.step < self.config.steps:
            losses = self.train_step()
            self.rows.append([self.step, *(round(losses[k], 6) for k in LOSS_COLUMNS[1:8]),
                              int(self.paused[0]), int(self.paused[1]), round(self.elapsed + time.perf_counter() - started, 2)])
            self.step += 1
            bar.update(1)
            bar.set_postfix(img=f"{losses['img']:.4f}", feat=f"{losses['feat']:.4f}", gan=f"{losses['gan_g']:.3f}")
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.steps:
                self.save_checkpoint()
        bar.close()
        self.generator.eval()
        out = self.out_dir / "generator.pt"
        if self.rank == 0:
            _atomic_save(self.generator.state_dict(), out)
            _atomic_save(self.discriminator.state_dict(), self.out_dir / "discriminator.pt")
            save_start_bank(self.out_dir / START_BANK_FILE, self.start_bank())
        return out

    @torch.no_grad()
    def start_bank(self, n: int = START_BANK_SIZE) -> torch.Tensor:
        """The codes ``E(x)`` ``(n, D)`` float32 (CPU) of ``n`` training images (batches drawn
        past the training steps, so the draw is seeded and repeatable): the prior's start
        bank, from which the recommended method starts and restarts chains. Written as
        ``start_bank.pt`` beside ``generator.pt``; load it with
        :func:`neurovis.priors.load_start_bank`."""
        codes: list[torch.Tensor] = []
        step = self.config.steps
        while sum(c.shape[0] for c in codes) < n:
            x = self.pixel_space.from_rgb01(self.source.batch(step).to(self.device))
            codes.append(self._encode(x)[0].float().cpu())
            step += 1
        return torch.cat(codes)[:n].contiguous()
