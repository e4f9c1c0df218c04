"""The GAN discriminator D of the prior trainer: a small AlexNet-like convnet.

Input: images ``(B, 3, H, W)`` in the generator's pixel space; output: one logit per image
("real" when positive). Also serves as a realism judge of samples.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

DISCRIMINATOR_CHANNELS = (32, 64, 128, 256)
"""The default widths of D's strided convolutions."""


class Discriminator(nn.Module):
    """Strided convs (leaky ReLU 0.2) -> global average pool -> two FC layers -> logit."""

    def __init__(self, channels: Sequence[int] = DISCRIMINATOR_CHANNELS, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for c in channels:
            layers += [nn.Conv2d(prev, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(prev, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean(dim=(2, 3), keepdim=True)
        return self.head(f).squeeze(1)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "Discriminator":
        """A discriminator with the widths and input channels of ``state``, its weights loaded."""
        convs = sorted((k for k in state if k.startswith("features.") and k.endswith(".weight")),
                       key=lambda k: int(k.split(".")[1]))
        disc = cls([state[k].shape[0] for k in convs], in_channels=state[convs[0]].shape[1])
        disc.load_state_dict(state)
        return disc
