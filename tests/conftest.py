"""Tiny networks shared by the tests: CPU, seconds, no downloads."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """A small AlexNet-shaped classifier on 3×16×16 RGB [0,1] images, with aliases."""

    layer_aliases = {"conv2": "features.2", "fc": "classifier.1"}
    class_names = ["cat", "dog", "volcano", "piano", "candle"]

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6 * 8 * 8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TinyGenerator(nn.Module):
    """Code (B, 16) -> image (B, 3, 16, 16)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3 * 16 * 16)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(h)).view(-1, 3, 16, 16)


class TinyEncoder(nn.Module):
    """Image (B, 3, 16, 16) -> post-ReLU code (B, 16)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x.flatten(1)))


@pytest.fixture
def net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def prior():
    import neurovis as nv

    torch.manual_seed(1)
    return nv.GeneratorPrior(TinyGenerator(), TinyEncoder())
