"""The DeePSiM fc6 generator of the paper (SPEC §2, Sec. S9.4) and smaller variants.

Paper size: a code of 4096 -> three fully connected layers 4096-4096-4096 with leaky ReLU
0.3 -> reshape to 256×4×4 -> nine transposed convolutions (leaky ReLU 0.3 between, linear
output) -> a 256×256 image, BGR, mean-subtracted, 0–255 scale (crop [14:241] for 227
nets). Layer names follow the Caffe prototxt (``defc7``, ``deconv5``, ``conv5_1``...) so
converted weights load by name.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from neurovis.pixels import RGB01, PixelSpace

# (name, out_channels, kernel, stride, padding) of the paper's generator, after the reshape.
DEEPSIM_FC6_LAYERS: tuple[tuple[str, int, int, int, int], ...] = (
    ("deconv5", 256, 4, 2, 1),
    ("conv5_1", 512, 3, 1, 1),
    ("deconv4", 256, 4, 2, 1),
    ("conv4_1", 256, 3, 1, 1),
    ("deconv3", 128, 4, 2, 1),
    ("conv3_1", 128, 3, 1, 1),
    ("deconv2", 64, 4, 2, 1),
    ("deconv1", 32, 4, 2, 1),
    ("deconv0", 3, 4, 2, 1),
)

# The generator's raw output convention: BGR, 0-255, ImageNet mean subtracted, 256×256.
DEEPSIM_PIXELS = PixelSpace("BGR", 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), None, "DeePSiM BGR 0-255 minus mean")


class DeePSiMGenerator(nn.Module):
    """Code ``(B, code_dim)`` -> image ``(B, 3, H, W)``: FC stack, reshape, transposed convs.

    Args:
        code_dim: size of the code ``h`` (4096 for fc6).
        fc_dims: widths of the fully connected layers (``defc7``, ``defc6``, ``defc5``...).
        start_shape: ``(C, H, W)`` the last FC output is reshaped to.
        layers: ``(name, out_channels, kernel, stride, padding)`` per transposed conv.
        slope: leaky ReLU slope (0.3 in the paper).
        pixel_space: convention of the output images.
    """

    def __init__(
        self,
        code_dim: int = 4096,
        fc_dims: Sequence[int] = (4096, 4096, 4096),
        start_shape: Sequence[int] = (256, 4, 4),
        layers: Sequence[tuple[str, int, int, int, int]] = DEEPSIM_FC6_LAYERS,
        slope: float = 0.3,
        pixel_space: PixelSpace = DEEPSIM_PIXELS,
    ) -> None:
        super().__init__()
        self.code_shape = (code_dim,)
        self.start_shape = tuple(start_shape)
        self.pixel_space = pixel_space
        fc_names = [f"defc{7 - i}" for i in range(len(fc_dims))]
        dims = [code_dim, *fc_dims]
        for name, a, b in zip(fc_names, dims[:-1], dims[1:]):
            self.add_module(name, nn.Linear(a, b))
        if dims[-1] != start_shape[0] * start_shape[1] * start_shape[2]:
            raise ValueError(f"last FC width {dims[-1]} does not reshape to {tuple(start_shape)}")
        channels = start_shape[0]
        for name, out, k, s, p in layers:
            self.add_module(name, nn.ConvTranspose2d(channels, out, k, s, p))
            channels = out
        self._fc = fc_names
        self._conv = [spec[0] for spec in layers]
        self.act = nn.LeakyReLU(slope)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = h
        for name in self._fc:
            x = self.act(getattr(self, name)(x))
        x = x.view(x.shape[0], *self.start_shape)
        for i, name in enumerate(self._conv):
            x = getattr(self, name)(x)
            if i < len(self._conv) - 1:
                x = self.act(x)
        return x


def deepsim_fc6() -> DeePSiMGenerator:
    """The paper-size fc6 generator (56.1 M parameters), randomly initialised."""
    return DeePSiMGenerator()


# DeePSiM-shaped generators for the 64×64 glyph world (3 FC, reshape, transposed convs).
# "spatial" (the shipped one) reshapes to 16×16 so the glyph's silhouette, which the glyph
# encoder's code holds at 16×16, is one linear map away; "deep" follows the paper's 4×4
# start with four 2× upsamplings (it learned position and colour but not shape within
# the hour of CPU training this world allows).
GLYPH_ARCHS: dict[str, dict] = {
    "spatial": {
        "fc_dims": (512, 512, 4096),
        "start_shape": (16, 16, 16),
        "layers": (
            ("conv5_1", 64, 3, 1, 1),
            ("conv4_1", 64, 3, 1, 1),
            ("deconv3", 32, 4, 2, 1),
            ("conv3_1", 32, 3, 1, 1),
            ("deconv2", 3, 4, 2, 1),
        ),
    },
    "deep": {
        "fc_dims": (512, 512, 2048),
        "start_shape": (128, 4, 4),
        "layers": (
            ("deconv5", 128, 4, 2, 1),
            ("conv5_1", 128, 3, 1, 1),
            ("deconv4", 64, 4, 2, 1),
            ("conv4_1", 64, 3, 1, 1),
            ("deconv3", 32, 4, 2, 1),
            ("conv3_1", 32, 3, 1, 1),
            ("deconv2", 3, 4, 2, 1),
        ),
    },
}


def deepsim_glyph(code_dim: int = 512, pixel_space: PixelSpace | None = None, arch: str = "spatial") -> DeePSiMGenerator:
    """A glyph-world generator: code ``(B, code_dim)`` -> RGB [0, 1] image ``(B, 3, 64, 64)``."""
    spec = GLYPH_ARCHS[arch]
    return DeePSiMGenerator(code_dim, spec["fc_dims"], spec["start_shape"], spec["layers"], 0.3, pixel_space or RGB01)
