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


class Embed(nn.Module):
    """Caffe's Embed: integer indices ``(...)`` (given as floats, truncated as Caffe's
    ``static_cast<int>`` does) -> rows of ``weight`` ``(input_dim, num_output)`` (Caffe's
    layout, the transpose of InnerProduct's), plus ``bias`` ``(num_output,)``; output
    ``(..., num_output)``. An index outside ``[0, input_dim)`` raises."""

    def __init__(self, input_dim: int, num_output: int, bias: bool = True) -> None:
        super().__init__()
        self.input_dim, self.num_output = input_dim, num_output
        self.weight = nn.Parameter(torch.empty(input_dim, num_output))
        self.bias = nn.Parameter(torch.empty(num_output)) if bias else None

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.embedding(x.long() if x.is_floating_point() else x, self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.input_dim}, {self.num_output}, bias={self.bias is not None}"


class LSTM(nn.Module):
    """Caffe's LSTM layer (``lstm_layer.cpp`` unrolled, ``lstm_unit_layer.cpp`` per step).

    ``forward(x, cont, x_static=None)``: ``x`` ``(T, N, ...)`` (axes from 2 on flattened to
    ``input_size``), ``cont`` ``(T, N)`` sequence-continuation indicators, ``x_static``
    ``(N, ...)`` (axes from 1 on flattened to ``static_size``) -> ``h`` ``(T, N, H)``.
    With gate pre-activations in Caffe's order ``[i, f, o, g]`` (each ``H`` wide)::

        gates_t = W_xc x_t + b_c + W_xc_static x_static + W_hc (cont_t h_{t-1})
        i, f, o = sigmoid(.);  g = tanh(.)
        c_t = (0 if cont_t == 0 else cont_t f) * c_{t-1} + i g;   h_t = o tanh(c_t)

    Parameters keep Caffe's blob order and shapes: ``W_xc`` ``(4H, input_size)``, ``b_c``
    ``(4H,)``, ``W_xc_static`` ``(4H, static_size)`` (only with a static input), ``W_hc``
    ``(4H, H)``. ``h_0 = c_0 = 0`` at every call: Caffe carries the last step's state into
    the next forward call, which matters only where the call's first ``cont`` is not 0
    (feed whole sequences starting with ``cont = 0``, as captioning does).
    """

    def __init__(self, input_size: int, hidden_size: int, static_size: int | None = None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.static_size = input_size, hidden_size, static_size
        four = 4 * hidden_size
        self.W_xc = nn.Parameter(torch.empty(four, input_size))
        self.b_c = nn.Parameter(torch.empty(four))
        self.W_xc_static = nn.Parameter(torch.empty(four, static_size)) if static_size else None
        self.W_hc = nn.Parameter(torch.empty(four, hidden_size))

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters(recurse=False):
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, cont: torch.Tensor, x_static: torch.Tensor | None = None) -> torch.Tensor:
        steps, n = x.shape[0], x.shape[1]
        if tuple(cont.shape) != (steps, n):
            raise ValueError(f"cont has shape {tuple(cont.shape)}, expected (T, N) = {(steps, n)}")
        if (x_static is None) != (self.W_xc_static is None):
            raise ValueError("a static input needs W_xc_static and vice versa")
        gates_x = F.linear(x.flatten(2), self.W_xc, self.b_c)  # (T, N, 4H)
        if x_static is not None:
            if x_static.shape[0] != n:
                raise ValueError(f"x_static has {x_static.shape[0]} streams, x has {n}")
            gates_x = gates_x + F.linear(x_static.flatten(1), self.W_xc_static)
        cont = cont.to(x.dtype if x.is_floating_point() else gates_x.dtype).unsqueeze(-1)  # (T, N, 1)
        h = gates_x.new_zeros(n, self.hidden_size)
        c = gates_x.new_zeros(n, self.hidden_size)
        outs = []
        for t in range(steps):
            gates = gates_x[t] + F.linear(cont[t] * h, self.W_hc)
            i, f, o, g = gates.chunk(4, dim=-1)
            f = torch.where(cont[t] == 0, torch.zeros_like(f), cont[t] * torch.sigmoid(f))
            c = f * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, 0)

    def extra_repr(self) -> str:
        static = f", static_size={self.static_size}" if self.static_size else ""
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}{static}"
