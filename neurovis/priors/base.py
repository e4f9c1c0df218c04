"""The prior interface: the ε1 term and the space the chain moves in.

A prior owns the space the Markov chain walks (a generator's code ``h``, or the pixels
``x`` themselves), turns a point of it into an image (:meth:`Prior.decode`), and gives the
direction of the ε1 term (:meth:`Prior.prior_term`, e.g. ``E(G(h)) − h``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import torch
from torch import nn

from neurovis.pixels import PixelSpace
from neurovis._utils.torch_utils import module_device


class Prior(ABC):
    """A learned or hand-designed ``p(x)`` for the sampler.

    Attributes:
        pixel_space: the convention of the images :meth:`decode` returns.
        code_shape: shape of one point of the chain's space, no batch dim.
        space: ``"h"`` (a generator's code) or ``"x"`` (pixels).
        default_eps: the paper's (ε1, ε2, ε3) for this treatment.
    """

    pixel_space: PixelSpace
    code_shape: tuple[int, ...]
    space: str = "h"
    default_eps: tuple[float, float, float] = (1e-5, 1.0, 1e-17)
    recommended: Any = None
    """The prior's recommended :class:`~neurovis.method.Method` (``None``: the paper's
    settings, with hidden units kept by activation)."""
    paper_treatment: Any = None
    """``None``, or ``device -> Prior``: the paper's treatment of the same world, which
    ``preset="paper"`` samples instead (e.g. ``glyphs`` -> Noiseless Joint PPGN-h)."""

    @abstractmethod
    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, *code_shape)`` -> images ``(B, C, H, W)`` in :attr:`pixel_space`."""

    @abstractmethod
    def prior_term(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Direction of the ε1 term at ``h`` (``x`` = the detached decoded image), no grad."""

    @abstractmethod
    def modules(self) -> list[nn.Module]:
        """The networks of the prior (held in eval mode while sampling)."""

    def clip(self, h: torch.Tensor) -> torch.Tensor:
        """Project codes back into their valid range after each step (identity here)."""
        return h

    def initial_codes(self, rngs: Sequence[torch.Generator]) -> torch.Tensor:
        """One random start per chain, ``(len(rngs), *code_shape)``: ``N(0, 1)`` each."""
        return torch.stack([torch.randn(self.code_shape, generator=g) for g in rngs]).to(self.device)

    def augment(self, x: torch.Tensor, rngs: Sequence[torch.Generator]) -> torch.Tensor:
        """Random transform applied before the condition pass only (jitter); identity here."""
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in :attr:`pixel_space` -> codes (to start chains from a photo)."""
        raise NotImplementedError(f"{type(self).__name__} cannot encode images")

    @property
    def device(self) -> torch.device:
        mods = self.modules()
        return module_device(mods[0]) if mods else torch.device("cpu")

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for configs and reports."""
        return {"type": type(self).__name__, "space": self.space, "code_shape": list(self.code_shape)}
