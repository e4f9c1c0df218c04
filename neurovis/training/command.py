"""``neurovis train-prior``: train a generator prior for any encoder and code layer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..adapters import RGB01, PixelSpace
from ..errors import NeurovisError
from ..hooks.listing import list_layers
from ..priors import DeePSiMGenerator, deepsim_fc6, deepsim_glyph
from .data import BatchSource, FolderSource, WorldSource
from .prior import PriorTrainer, PriorTrainingConfig

GENERATORS = ("glyph", "deepsim-fc6")


def _code_dim(encoder: nn.Module, code_layer: str, input_size: Sequence[int]) -> int:
    shapes = {info.name: info.shape for info in list_layers(encoder, input_size)}
    from ..hooks.addressing import resolve_layer

    path, _ = resolve_layer(encoder, code_layer)
    shape = shapes.get(path)
    if not shape:
        raise NeurovisError(f"code layer {code_layer!r} did not run for input {tuple(input_size)}")
    return int(torch.tensor(shape).prod())


def build_generator(kind: str, code_dim: int, space: PixelSpace) -> DeePSiMGenerator:
    """``glyph``: 64×64 output; ``deepsim-fc6``: the paper's 256×256 generator."""
    if kind == "glyph":
        return deepsim_glyph(code_dim, space)
    if kind == "deepsim-fc6":
        gen = deepsim_fc6() if code_dim == 4096 else DeePSiMGenerator(code_dim=code_dim)
        gen.pixel_space = space
        return gen
    raise NeurovisError(f"unknown generator {kind!r}; use one of {', '.join(GENERATORS)}")


def train_prior(
    encoder: nn.Module,
    code_layer: str,
    feature_layer: str | None,
    data: str,
    out: Path,
    config: PriorTrainingConfig,
    generator: str = "glyph",
    batch_size: int = 64,
    image_size: tuple[int, int] | None = None,
    device: torch.device = torch.device("cpu"),
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Train G to invert ``encoder`` at ``code_layer`` on ``data`` (a folder or ``world``).

    Resumes from ``out/checkpoint.pt`` when it is there; refuses an ``out`` folder that
    holds other files unless ``force``. Returns the path of the trained ``generator.pt``.
    """
    space: PixelSpace = getattr(encoder, "pixel_space", None) or RGB01
    size = image_size or (space.size if space.size else None) or tuple(getattr(encoder, "input_size", (3, 64, 64))[1:])
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "checkpoint.pt").exists() and not force:
        raise NeurovisError(f"{out} exists and holds no checkpoint to resume; pass --force or another --out")
    source: BatchSource
    if data == "world":
        from ..world import GlyphWorld

        source = WorldSource(GlyphWorld(), batch_size, config.seed)
    else:
        source = FolderSource(data, tuple(size), batch_size, config.seed)
    encoder = encoder.to(device).eval()
    code_dim = _code_dim(encoder, code_layer, (3, *size))
    torch.manual_seed(config.seed)
    gen = build_generator(generator, code_dim, space).to(device)
    with torch.no_grad():
        drawn = tuple(gen(torch.zeros(1, code_dim, device=device)).shape[-2:])
    if drawn != tuple(size):
        raise NeurovisError(
            f"the {generator} generator draws {drawn[0]}×{drawn[1]} images but the encoder reads {size[0]}×{size[1]}; "
            "pick --generator to match or --image-size"
        )
    trainer = PriorTrainer(gen, encoder, code_layer, feature_layer, source, space, out, config)
    if trainer.resume() and progress:
        print(f"resuming from {out / 'checkpoint.pt'} at step {trainer.step}", file=sys.stderr)
    return trainer.train(progress=progress)
