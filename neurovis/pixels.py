"""Pixel conventions and differentiable adapters between them.

A :class:`PixelSpace` says how a network reads an image tensor ``(B, C, H, W)``: channel
order, the value of white before normalisation (``scale``: 1 or 255), a per-channel mean
and std in that order and scale, and the size the network expects. A value ``v`` in a space
relates to the RGB intensity ``u`` in [0, 1] by ``v = (u * scale - mean) / std`` (channels
in the space's order). :class:`PixelAdapter` converts between two spaces, resizing if the
target has a fixed size; every operation is differentiable so gradients flow back to a
generator. Getting the scale wrong silently breaks the balance of the ε terms, hence the
explicit objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neurovis.errors import NeurovisError

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class PixelSpace:
    """How a network reads images: ``v = (u * scale - mean) / std``, ``u`` RGB in [0, 1].

    Attributes:
        channels: ``"RGB"``, ``"BGR"`` or ``"L"`` (one grey channel).
        scale: value of full intensity before mean/std (1.0 or 255.0).
        mean: per-channel mean in this space's channel order and scale.
        std: per-channel std, likewise.
        size: ``(H, W)`` the network expects, or ``None`` for any size.
        name: a short label for reports.
    """

    channels: str = "RGB"
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    size: tuple[int, int] | None = None
    name: str = "rgb01"

    def __post_init__(self) -> None:
        if self.channels not in ("RGB", "BGR", "L"):
            raise NeurovisError(f"channels must be RGB, BGR or L, got {self.channels!r}")
        n = 1 if self.channels == "L" else 3
        if len(self.mean) != n or len(self.std) != n:
            raise NeurovisError(f"{self.channels} needs {n} mean/std values, got {self.mean}/{self.std}")

    @property
    def n_channels(self) -> int:
        return 1 if self.channels == "L" else 3

    def with_size(self, size: tuple[int, int] | None) -> "PixelSpace":
        """The same convention at another input size."""
        return PixelSpace(self.channels, self.scale, self.mean, self.std, size, self.name)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.n_channels, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
        return mean, std

    def to_rgb01(self, v: torch.Tensor) -> torch.Tensor:
        """Values in this space -> RGB intensities ``u`` (nominally [0, 1], not clipped)."""
        if v.dim() != 4 or v.shape[1] != self.n_channels:
            raise NeurovisError(
                f"expected images (B, {self.n_channels}, H, W) in {self.name}, got {tuple(v.shape)}"
            )
        mean, std = self._stats(v)
        u = (v * std + mean) / self.scale
        if self.channels == "BGR":
            u = u.flip(1)
        elif self.channels == "L":
            u = u.expand(-1, 3, -1, -1)
        return u

    def bounds(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The displayable range in this space, ``(low, high)`` each ``(1, C, 1, 1)`` with
        ``like``'s dtype and device: RGB intensities 0 and 1 (e.g. 0–255 minus the mean
        for Caffe's BGR space)."""
        mean, std = self._stats(like)
        a, b = (0.0 - mean) / std, (self.scale - mean) / std
        return torch.minimum(a, b), torch.maximum(a, b)

    def clamp(self, v: torch.Tensor) -> torch.Tensor:
        """Clip images in this space to what can be displayed (:meth:`bounds`). Same shape;
        the gradient is 0 where a value was clipped."""
        low, high = self.bounds(v)
        return torch.minimum(torch.maximum(v, low), high)

    def from_rgb01(self, u: torch.Tensor) -> torch.Tensor:
        """RGB intensities in [0, 1] ``(B, 3, H, W)`` -> values in this space."""
        if self.channels == "BGR":
            u = u.flip(1)
        elif self.channels == "L":
            luma = torch.tensor(_LUMA, dtype=u.dtype, device=u.device).view(1, 3, 1, 1)
            u = (u * luma).sum(1, keepdim=True)
        mean, std = self._stats(u)
        return (u * self.scale - mean) / std


RGB01 = PixelSpace(name="RGB in [0,1]")
TORCHVISION_IMAGENET = PixelSpace(
    "RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (224, 224), "torchvision ImageNet"
)
CAFFE_IMAGENET = PixelSpace(
    "BGR", 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), (227, 227), "Caffe BGR 0-255 minus mean"
)


class PixelAdapter(nn.Module):
    """Differentiable conversion of images from ``source`` to ``target`` convention.

    Input ``(B, C_src, H, W)`` in ``source``; output ``(B, C_dst, H', W')`` in ``target``,
    resized (bilinear, antialiased) to ``target.size`` when it is set and differs.
    """

    def __init__(self, source: PixelSpace, target: PixelSpace) -> None:
        super().__init__()
        self.source = source
        self.target = target

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.source == self.target.with_size(self.source.size) and (
            self.target.size is None or tuple(v.shape[-2:]) == self.target.size
        ):
            return v
        u = self.source.to_rgb01(v)
        if self.target.size is not None and tuple(u.shape[-2:]) != tuple(self.target.size):
            u = F.interpolate(u, size=self.target.size, mode="bilinear", align_corners=False, antialias=True)
        return self.target.from_rgb01(u)

    def extra_repr(self) -> str:
        return f"{self.source.name} -> {self.target.name}"


class Crop(nn.Module):
    """Crop ``(B, C, H, W)`` to rows ``[top, top+height)`` and cols ``[left, left+width)``.

    The reference generator's 256×256 output is cropped at [14:241] to 227×227.
    """

    def __init__(self, top: int, left: int, height: int, width: int) -> None:
        super().__init__()
        self.top, self.left, self.height, self.width = top, left, height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def extra_repr(self) -> str:
        return f"top={self.top}, left={self.left}, size={self.height}×{self.width}"
