"""PyTorch modules for the Caffe layers that have no exact ``torch.nn`` twin.

Each reproduces Caffe's forward pass for NCHW float tensors; shapes follow Caffe's
conventions (``axis`` arguments count from the batch axis, negative from the end).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class InnerProduct(nn.Linear):
    """Caffe's InnerProduct: flatten axes ``axis..`` then ``y = x W^T + b``.

    Input ``(B, ...)`` -> ``(B, num_output)`` for ``axis=1``; weight ``(out, in)`` as in
    Caffe (``transpose: true`` files are transposed when loaded).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, axis: int = 1) -> None:
        super().__init__(in_features, out_features, bias)
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(self.axis), self.weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", axis={self.axis}"


class Pooling(nn.Module):
    """Caffe pooling (MAX, or AVE dividing by the window clipped to the padded image).

    ``ceil=True`` is Caffe's default rounding of the output size; PyTorch's ``ceil_mode``
    also drops a last window that would start in the right/bottom padding, which is the
    rule Caffe applies when padded (the builder checks the sizes agree). ``global_pool``
    pools each channel to ``1×1``.
    """

    def __init__(self, method: str, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
                 ceil: bool = True, global_pool: bool = False) -> None:
        super().__init__()
        self.method, self.kernel, self.stride, self.pad = method, kernel, stride, pad
        self.ceil, self.global_pool = ceil, global_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool:
            return F.adaptive_max_pool2d(x, 1) if self.method == "MAX" else F.adaptive_avg_pool2d(x, 1)
        if self.method == "MAX":
            return F.max_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil)
        return F.avg_pool2d(x, self.kernel, self.stride, self.pad, ceil_mode=self.ceil, count_include_pad=True)

    def extra_repr(self) -> str:
        if self.global_pool:
            return f"{self.method}, global"
        return f"{self.method}, kernel={self.kernel}, stride={self.stride}, pad={self.pad}, ceil={self.ceil}"


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True) -> int:
    """Caffe's pooling output size along one axis (``PoolingLayer::Reshape``): rounded up
    (or down), minus a last window that would start in the padding, checked only if padded."""
    span = (size + 2 * pad - kernel) / stride
    pooled = (math.ceil(span) if ceil else math.floor(span)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def torch_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True) -> int:
    """PyTorch's pooling output size along one axis: the same, but with ``ceil_mode`` the
    last-window check applies padded or not (the two differ only when kernel < stride)."""
    span = (size + 2 * pad - kernel) / stride
    pooled = (math.ceil(span) if ceil else math.floor(span)) + 1
    if ceil and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


class WithinChannelLRN(nn.Module):
    """Caffe's LRN with ``norm_region: WITHIN_CHANNEL``:
    ``y = x (1 + alpha/size² Σ_{size×size window} x²)^-beta`` (``k`` is not used)."""

    def __init__(self, size: int, alpha: float, beta: float) -> None:
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.size - 1) // 2
        mean = F.avg_pool2d(x * x, self.size, 1, pad, count_include_pad=True)
        return x * (1 + self.alpha * mean).pow(-self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}"


class Reshape(nn.Module):
    """Caffe's Reshape: replace axes ``[axis, axis+num_axes)`` by ``dims`` (``0`` copies the
    input's size, ``-1`` is inferred). When the reshape starts at the batch axis the first
    dim always copies the input's batch size: deploy files fix the batch (usually 1) and
    the converted module accepts any."""

    def __init__(self, dims: Sequence[int], axis: int = 0, num_axes: int = -1) -> None:
        super().__init__()
        self.dims, self.axis, self.num_axes = tuple(int(d) for d in dims), axis, num_axes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(x.shape)
        start = self.axis if self.axis >= 0 else len(shape) + 1 + self.axis
        end = len(shape) if self.num_axes == -1 else start + self.num_axes
        new = [shape[start + i] if d == 0 else d for i, d in enumerate(self.dims)]
        if start == 0 and new and self.dims[0] > 0:
            new[0] = shape[0]
        return x.reshape(shape[:start] + new + shape[end:])

    def extra_repr(self) -> str:
        return f"dims={self.dims}, axis={self.axis}, num_axes={self.num_axes}"


class Crop(nn.Module):
    """Caffe's Crop: crop the first input to the second input's size on axes ``axis..``,
    starting at ``offsets`` (none: 0; one: the same for every axis; else one per axis)."""

    def __init__(self, axis: int = 2, offsets: Sequence[int] = ()) -> None:
        super().__init__()
        self.axis, self.offsets = axis, tuple(int(o) for o in offsets)

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        axis = self.axis if self.axis >= 0 else x.dim() + self.axis
        for i in range(axis, x.dim()):
            offset = self.offsets[0] if len(self.offsets) == 1 else (self.offsets[i - axis] if self.offsets else 0)
            x = x.narrow(i, offset, reference.shape[i])
        return x

    def extra_repr(self) -> str:
        return f"axis={self.axis}, offsets={self.offsets}"


class Concat(nn.Module):
    """Caffe's Concat along ``axis``."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


class Eltwise(nn.Module):
    """Caffe's Eltwise: ``PROD``, ``SUM`` (with optional per-input ``coeff``) or ``MAX``."""

    def __init__(self, operation: str = "SUM", coeff: Sequence[float] = ()) -> None:
        super().__init__()
        self.operation, self.coeff = operation, tuple(float(c) for c in coeff)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.operation == "PROD":
            return math.prod(xs[1:], start=xs[0])  # type: ignore[arg-type]
        if self.operation == "MAX":
            out = xs[0]
            for x in xs[1:]:
                out = torch.maximum(out, x)
            return out
        coeff = self.coeff or (1.0,) * len(xs)
        out = coeff[0] * xs[0]
        for c, x in zip(coeff[1:], xs[1:]):
            out = out + c * x
        return out

    def extra_repr(self) -> str:
        return f"{self.operation}, coeff={self.coeff}" if self.coeff else self.operation


class Power(nn.Module):
    """Caffe's Power: ``(shift + scale x) ^ power``."""

    def __init__(self, power: float = 1.0, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.power, self.scale, self.shift = power, scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shift + self.scale * x
        return y if self.power == 1.0 else y.pow(self.power)


class Log(nn.Module):
    """Caffe's Log: ``log_base(shift + scale x)`` (``base = -1``: natural log)."""

    def __init__(self, base: float = -1.0, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.base, self.scale, self.shift = base, scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.log(self.shift + self.scale * x)
        return y if self.base == -1.0 else y / math.log(self.base)


class Split(nn.Identity):
    """Caffe's Split: the input, once per top."""


class AbsVal(nn.Module):
    """Caffe's AbsVal: ``|x|``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()
