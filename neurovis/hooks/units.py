"""Unit selectors: which number of a layer's output is "the unit".

A selector turns a layer output into the vector ``a`` (shape ``(B, N)``) over which the
unit's probability is a softmax, and names the unit's index ``k`` in it (SPEC §1.3):

- :class:`ChannelAt` -- channel ``k`` at one spatial position (default the centre; conv5 of
  a 13×13 map uses position 6), the vector being all channels at that position (Fig. S19).
  On a flat ``(B, N)`` layer it is simply index ``k``.
- :class:`ChannelMean` -- channel ``k``'s spatial mean, the vector being all channel means.
- :class:`FlatIndex` -- index ``k`` of the flattened output.
- :class:`TokenUnit` -- feature ``k`` of one token of a ``(B, T, D)`` output.
- :class:`Selector` -- any user function ``output -> (B, N)`` plus an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch

from neurovis.errors import NeurovisError


@runtime_checkable
class UnitSelector(Protocol):
    """Maps a layer output to the ``(B, N)`` vector ``a``; ``index`` is the unit in it."""

    index: int

    def vector(self, output: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> str: ...


def _check_index(index: int, vec: torch.Tensor, what: str, shape: tuple[int, ...]) -> None:
    n = vec.shape[1]
    if not 0 <= index < n:
        dims = "×".join(str(s) for s in shape)
        raise NeurovisError(
            f"unit {index} is out of range: the layer has {n} {what} (output {dims}); "
            f"use a unit in 0..{n - 1}"
        )


@dataclass(frozen=True)
class ChannelAt:
    """Channel ``index`` at spatial ``position`` (``None``: the centre, ``size // 2``)."""

    index: int
    position: tuple[int, ...] | int | None = None

    def vector(self, output: torch.Tensor) -> torch.Tensor:
        shape = tuple(output.shape[1:])
        if output.dim() == 2:
            if self.position is not None:
                raise NeurovisError(
                    f"position {self.position} given for a flat layer of {shape[0]} units; "
                    "drop --position for fully connected layers"
                )
            vec = output
        else:
            spatial = output.shape[2:]
            pos = self.resolved_position(tuple(spatial))
            vec = output[(slice(None), slice(None), *pos)]
        _check_index(self.index, vec, "channels" if output.dim() > 2 else "units", shape)
        return vec

    def resolved_position(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """The position used on a map of size ``spatial`` (checked to be inside it)."""
        if self.position is None:
            return tuple(s // 2 for s in spatial)
        pos = (self.position,) * len(spatial) if isinstance(self.position, int) else tuple(self.position)
        if len(pos) != len(spatial) or any(not 0 <= p < s for p, s in zip(pos, spatial)):
            size = "×".join(str(s) for s in spatial)
            raise NeurovisError(
                f"position {self.position} is outside the layer's {size} map; "
                f"use 0..{min(spatial) - 1} per axis, or leave it out for the centre"
            )
        return pos

    def describe(self) -> str:
        where = "the centre" if self.position is None else f"position {self.position}"
        return f"unit {self.index} (channel at {where} on a spatial layer)"


@dataclass(frozen=True)
class ChannelMean:
    """Channel ``index``'s mean over all spatial positions."""

    index: int

    def vector(self, output: torch.Tensor) -> torch.Tensor:
        vec = output.flatten(2).mean(dim=2) if output.dim() > 2 else output
        _check_index(self.index, vec, "channels", tuple(output.shape[1:]))
        return vec

    def describe(self) -> str:
        return f"spatial mean of channel {self.index}"


@dataclass(frozen=True)
class FlatIndex:
    """Index ``index`` of the output flattened per sample."""

    index: int

    def vector(self, output: torch.Tensor) -> torch.Tensor:
        vec = output.flatten(1)
        _check_index(self.index, vec, "numbers", tuple(output.shape[1:]))
        return vec

    def describe(self) -> str:
        return f"flat index {self.index}"


@dataclass(frozen=True)
class TokenUnit:
    """Feature ``index`` of token ``token`` of a ``(B, T, D)`` output (transformers)."""

    index: int
    token: int = 0

    def vector(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 3:
            raise NeurovisError(
                f"TokenUnit needs a (batch, tokens, features) layer, got output shape "
                f"{tuple(output.shape)}; use ChannelAt or FlatIndex instead"
            )
        if not -output.shape[1] <= self.token < output.shape[1]:
            raise NeurovisError(f"token {self.token} is out of range for {output.shape[1]} tokens")
        vec = output[:, self.token, :]
        _check_index(self.index, vec, "features", tuple(output.shape[1:]))
        return vec

    def describe(self) -> str:
        return f"feature {self.index} of token {self.token}"


@dataclass(frozen=True)
class Selector:
    """A user function ``output -> (B, N)`` and the unit's ``index`` in that vector."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    index: int
    name: str = "custom selector"

    def vector(self, output: torch.Tensor) -> torch.Tensor:
        vec = self.fn(output)
        if not isinstance(vec, torch.Tensor) or vec.dim() != 2 or vec.shape[0] != output.shape[0]:
            got = tuple(vec.shape) if isinstance(vec, torch.Tensor) else type(vec).__name__
            raise NeurovisError(
                f"{self.name} must return a (batch, N) tensor, returned {got}"
            )
        _check_index(self.index, vec, "entries", tuple(output.shape[1:]))
        return vec

    def describe(self) -> str:
        return f"{self.name}, index {self.index}"


def as_selector(unit: int | UnitSelector, position: tuple[int, ...] | int | str | None = None) -> UnitSelector:
    """Turn the ``unit``/``position`` pair users pass into a selector.

    ``position="mean"`` selects the channel's spatial mean; ``None`` the centre.
    """
    if isinstance(unit, UnitSelector):
        if position is not None:
            raise NeurovisError("pass position inside the selector, not beside it")
        return unit
    if isinstance(unit, bool) or not isinstance(unit, int):
        raise NeurovisError(
            f"unit must be an int or a selector (ChannelAt, ChannelMean, FlatIndex, TokenUnit, "
            f"Selector), got {type(unit).__name__}"
        )
    if position == "mean":
        return ChannelMean(unit)
    if isinstance(position, str):
        raise NeurovisError(f"position {position!r} is not understood; use 'mean', an int or (y, x)")
    return ChannelAt(unit, position)
