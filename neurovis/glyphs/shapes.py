"""Signed distance functions of the glyph shapes, vectorised over a batch.

Every function takes the glyph-frame coordinates ``u, v`` (tensors of any common shape,
in *glyph units*: the glyph fits inside the unit disk) and returns the signed distance
to the shape's outline in the same units (negative inside). Several are exact SDFs
(after Inigo Quilez's 2D distance functions); unions/differences are bounds, which is
all the anti-aliased mask ``clamp(0.5 - sdf * pixels_per_unit, 0, 1)`` needs near the edge.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

SDF = Callable[[Tensor, Tensor], Tensor]


def _length(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def _box(u: Tensor, v: Tensor, bx: float, by: float) -> Tensor:
    dx = u.abs() - bx
    dy = v.abs() - by
    outside = _length(dx.clamp(min=0), dy.clamp(min=0))
    inside = torch.maximum(dx, dy).clamp(max=0)
    return outside + inside


def sd_circle(u: Tensor, v: Tensor) -> Tensor:
    """Filled disk of radius 0.82."""
    return _length(u, v) - 0.82


def sd_square(u: Tensor, v: Tensor) -> Tensor:
    """Filled square, half side 0.68 (corner at radius 0.96)."""
    return _box(u, v, 0.68, 0.68)


def sd_triangle(u: Tensor, v: Tensor) -> Tensor:
    """Equilateral triangle, centroid at the origin, circumradius 1.0."""
    k = math.sqrt(3.0)
    r = 0.5 * k  # half side for circumradius 1
    px = u.abs() - r
    py = v + r / k
    flip = (px + k * py) > 0
    qx = torch.where(flip, (px - k * py) / 2, px)
    qy = torch.where(flip, (-k * px - py) / 2, py)
    qx = qx - qx.clamp(min=-2 * r, max=0.0)
    return -_length(qx, qy) * torch.sign(qy)


def sd_star(u: Tensor, v: Tensor) -> Tensor:
    """Five-pointed star, outer radius 1.0, inner radius ~0.45."""
    r, rf = 1.0, 0.45
    k1x, k1y = 0.809016994375, -0.587785252292
    k2x, k2y = -k1x, k1y
    px = u.abs()
    py = v
    d = (k1x * px + k1y * py).clamp(min=0)
    px = px - 2 * d * k1x
    py = py - 2 * d * k1y
    d = (k2x * px + k2y * py).clamp(min=0)
    px = px - 2 * d * k2x
    py = py - 2 * d * k2y
    px = px.abs()
    py = py - r
    bax, bay = rf * (-k1y), rf * k1x - 1.0
    h = ((px * bax + py * bay) / (bax * bax + bay * bay)).clamp(0.0, r)
    return _length(px - bax * h, py - bay * h) * torch.sign(py * bax - px * bay)


def sd_cross(u: Tensor, v: Tensor) -> Tensor:
    """Plus sign: two bars of half length 0.92 and half width 0.30."""
    return torch.minimum(_box(u, v, 0.92, 0.30), _box(u, v, 0.30, 0.92))


def sd_ring(u: Tensor, v: Tensor) -> Tensor:
    """Annulus, outer radius 0.92, inner radius 0.50."""
    return (_length(u, v) - 0.71).abs() - 0.21


def sd_crescent(u: Tensor, v: Tensor) -> Tensor:
    """Disk of radius 0.9 minus a disk of radius 0.74 shifted by 0.42."""
    outer = _length(u, v) - 0.90
    inner = _length(u - 0.42, v) - 0.74
    return torch.maximum(outer, -inner)


def sd_heart(u: Tensor, v: Tensor) -> Tensor:
    """Heart (IQ's exact SDF), rescaled to fit the unit disk, centred."""
    s = 1.5
    px = (u / s).abs()
    py = -v / s + 0.58  # tip points to +v in image rows (downwards)
    lobe = _length(px - 0.25, py - 0.75) - math.sqrt(2.0) / 4.0
    m = (px + py).clamp(min=0) * 0.5
    d1 = (px - 0.0) ** 2 + (py - 1.0) ** 2
    d2 = (px - m) ** 2 + (py - m) ** 2
    body = torch.sqrt(torch.minimum(d1, d2)) * torch.sign(px - py)
    return torch.where(px + py > 1.0, lobe, body) * s


SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "crescent",
    "heart",
)
"""Shape names, index = shape id."""

SHAPE_SDFS: tuple[SDF, ...] = (
    sd_circle,
    sd_square,
    sd_triangle,
    sd_star,
    sd_cross,
    sd_ring,
    sd_crescent,
    sd_heart,
)
"""Signed distance functions, aligned with :data:`SHAPES`."""

SYMMETRY_ORDERS: tuple[int, ...] = (0, 4, 3, 5, 4, 0, 1, 1)
"""Rotational symmetry order per shape (index = shape id): the shape looks the same after a
turn of ``2π / k``; 0 = any turn (circle, ring). A glyph's pose is then ``k·angle`` mod 2π."""
