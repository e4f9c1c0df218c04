"""Pixel-space priors: activation maximisation with no prior, L2 decay, hand-designed
regularisers (blur, total variation, jitter) and an image DAE (PPGN-x), SPEC §1.1."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neurovis.pixels import RGB01, PixelSpace
from neurovis.errors import NeurovisError
from neurovis.priors.base import Prior


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per-sample anisotropic total variation of ``(B, C, H, W)``: ``(B,)``."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return dh + dw


class PixelPrior(Prior):
    """A prior on the image itself; the chain's state is the image ``(C, H, W)``.

    The ε1 direction is ``−l2·x + (blur(x) − x) − tv·∂TV/∂x + (DAE(x) − x)`` for the terms
    that are switched on. With none, it is activation maximisation with no prior
    (paper defaults ε = (0, 1, 0)); with ``l2`` the Gaussian prior (λ, 1, 0).

    Args:
        image_shape: ``(C, H, W)`` of the images.
        pixel_space: their convention; pixels are clipped to the space's [0, 1] range.
        l2: weight of L2 decay.
        blur_sigma: Gaussian blur (pixels) whose pull ``blur(x) − x`` is added.
        tv: weight of the total-variation term.
        jitter: random shift of up to this many pixels before each condition pass.
        denoiser: an image DAE ``R_x`` (PPGN-x): adds ``R_x(x) − x``.
    """

    space = "x"
    default_eps = (0.0, 1.0, 0.0)

    def __init__(
        self,
        image_shape: Sequence[int],
        pixel_space: PixelSpace = RGB01,
        l2: float = 0.0,
        blur_sigma: float = 0.0,
        tv: float = 0.0,
        jitter: int = 0,
        denoiser: nn.Module | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(image_shape) != 3:
            raise NeurovisError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        self.code_shape = tuple(int(s) for s in image_shape)
        self.pixel_space = pixel_space
        self.l2, self.blur_sigma, self.tv, self.jitter = float(l2), float(blur_sigma), float(tv), int(jitter)
        self.denoiser = denoiser
        self._device = torch.device(device) if device is not None else None

    @property
    def device(self) -> torch.device:
        if self._device is not None:
            return self._device
        return super().device

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def prior_term(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        term = torch.zeros_like(h)
        if self.l2:
            term -= self.l2 * h
        if self.blur_sigma:
            term += _gaussian_blur(h, self.blur_sigma) - h
        if self.tv:
            with torch.enable_grad():
                hv = h.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(total_variation(hv).sum(), hv)
            term -= self.tv * grad
        if self.denoiser is not None:
            term += self.denoiser(h) - h
        return term

    def clip(self, h: torch.Tensor) -> torch.Tensor:
        return self.pixel_space.clamp(h)

    def initial_codes(self, rngs: Sequence[torch.Generator]) -> torch.Tensor:
        """Mid-grey images with small noise (σ = 0.1 of full intensity), per chain."""
        _, hgt, wid = self.code_shape
        u = torch.stack([0.5 + 0.1 * torch.randn((3, hgt, wid), generator=g) for g in rngs]).clamp(0, 1)
        return self.pixel_space.from_rgb01(u.to(self.device))

    def augment(self, x: torch.Tensor, rngs: Sequence[torch.Generator]) -> torch.Tensor:
        if not self.jitter:
            return x
        shifts = [torch.randint(-self.jitter, self.jitter + 1, (2,), generator=g).tolist() for g in rngs]
        return torch.stack([torch.roll(xi, (dy, dx), dims=(1, 2)) for xi, (dy, dx) in zip(x, shifts)])

    def modules(self) -> list[nn.Module]:
        return [self.denoiser] if self.denoiser is not None else []

    def describe(self) -> dict[str, Any]:
        treatment = "PPGN-x (image DAE)" if self.denoiser is not None else (
            "hand-designed prior" if (self.blur_sigma or self.tv or self.jitter) else
            "L2 decay" if self.l2 else "no prior")
        return {
            **super().describe(), "treatment": treatment, "l2": self.l2, "blur_sigma": self.blur_sigma,
            "tv": self.tv, "jitter": self.jitter, "pixel_space": self.pixel_space.name,
        }
