"""Image conversions shared by the analysis and the report."""

from __future__ import annotations

import numpy as np
import torch


def to_bytes(rgb01: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] (clipped here) -> ``(N, 3, H, W)`` uint8 0–255, same device."""
    return (rgb01.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)


def to_uint8(rgb01: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` RGB in [0, 1] (clipped here) -> ``(N, H, W, 3)`` uint8."""
    return to_bytes(rgb01).permute(0, 2, 3, 1).contiguous().cpu().numpy()
