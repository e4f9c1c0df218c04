"""``neurovis train-prior``: train a generator prior for any encoder and code layer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer
from neurovis.hooks.listing import list_layers
from neurovis.pixels import RGB01, Crop, PixelSpace
from neurovis.priors import DeePSiMGenerator, deepsim_fc6, deepsim_glyph
from neurovis.training.data import BatchSource, FolderSource
from neurovis.training.prior import PriorTrainer, PriorTrainingConfig

GENERATORS = ("auto", "glyph", "deepsim-fc6")


# the files a training run writes into its --out folder (and overwrites when it resumes)
OUTPUT_FILES = ("checkpoint.pt", "losses.csv", "config.json", "generator.pt", "discriminator.pt", "start_bank.pt")


def check_out_folder(out: Path, force: bool) -> None:
    """Raise :class:`NeurovisError` unless a training run may write into ``out``.

    A folder with ``checkpoint.pt`` is a run to resume (its files are neurovis's own). A
    non-empty folder without one is used only with ``force``, and even then never when it
    holds a file of the name a run writes (``losses.csv``, ``config.json``, ...): those are
    not neurovis's, and ``--force`` only ever lets neurovis overwrite what it wrote itself.
    """
    if out.exists() and not out.is_dir():
        raise NeurovisError(f"--out {out} exists and is not a folder; choose another --out")
    if not out.is_dir() or (out / "checkpoint.pt").exists() or not any(out.iterdir()):
        return
    if not force:
        raise NeurovisError(f"{out} exists and holds no checkpoint to resume; pass --force or another --out")
    taken = [name for name in OUTPUT_FILES if (out / name).exists()]
    if taken:
        raise NeurovisError(f"{out} holds {', '.join(taken)} but no checkpoint.pt, so not from a neurovis run; "
                            "refusing to overwrite even with --force: move them away or choose another --out")


def _code_dim(encoder: nn.Module, code_layer: str, input_size: Sequence[int]) -> int:
    shapes = {info.name: info.shape for info in list_layers(encoder, input_size)}

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
    data: str | Path | BatchSource,
    out: Path,
    config: PriorTrainingConfig,
    generator: str = "auto",
    batch_size: int = 64,
    image_size: tuple[int, int] | None = None,
    device: torch.device = torch.device("cpu"),
    force: bool = False,
    progress: bool = True,
    output_layer: str | None = "fc8",
) -> Path:
    """Train G to invert ``encoder`` at ``code_layer`` on ``data``: an image folder, or a
    :class:`~neurovis.training.data.BatchSource` (``train-prior --data world`` passes the
    glyph world's stream, :func:`neurovis.zoo.image_source`).

    ``generator``: ``auto`` (``glyph`` for encoders reading ≤ 64 px, else ``deepsim-fc6``),
    ``glyph`` (64×64) or ``deepsim-fc6`` (256×256). When G draws larger images than E
    reads (256 vs 227 or 224), E sees the centre crop, as in the paper. Resumes from
    ``out/checkpoint.pt`` when it is there; refuses an ``out`` folder that
    holds other files unless ``force``, and one holding files of the names it writes
    without a checkpoint always (see :func:`check_out_folder`). ``output_layer`` names E's logits, read only when
    ``config.w_out > 0``. Returns the path of the trained ``generator.pt``.
    """
    space: PixelSpace = getattr(encoder, "pixel_space", None) or RGB01
    enc_size = tuple(space.size) if space.size else tuple(getattr(encoder, "input_size", (3, 64, 64))[1:])
    enc_size = tuple(image_size) if image_size and not space.size else enc_size
    out = Path(out)
    check_out_folder(out, force)
    encoder = encoder.to(device).eval()
    code_dim = _code_dim(encoder, code_layer, (3, *enc_size))
    if generator == "auto":
        generator = "glyph" if max(enc_size) <= 64 else "deepsim-fc6"
    torch.manual_seed(config.seed)
    gen = build_generator(generator, code_dim, space.with_size(None)).to(device)
    with torch.no_grad():
        drawn = tuple(gen(torch.zeros(1, code_dim, device=device)).shape[-2:])
    crop = None
    if drawn != enc_size:
        if drawn[0] < enc_size[0] or drawn[1] < enc_size[1]:
            raise NeurovisError(
                f"the {generator} generator draws {drawn[0]}×{drawn[1]} images, smaller than the {enc_size[0]}×{enc_size[1]} "
                "the encoder reads; pick --generator to match"
            )
        top, left = (drawn[0] - enc_size[0]) // 2, (drawn[1] - enc_size[1]) // 2
        crop = Crop(top, left, enc_size[0], enc_size[1])  # the paper's 256 -> 227 centre crop
    size = tuple(image_size) if image_size else drawn
    if tuple(size) != drawn:
        raise NeurovisError(f"--image-size {size[0]},{size[1]} differs from the {drawn[0]}×{drawn[1]} the generator draws; drop it")
    if hasattr(data, "batch"):
        source: BatchSource = data  # type: ignore[assignment]
    else:
        source = FolderSource(data, tuple(size), batch_size, config.seed)  # type: ignore[arg-type]
    trainer = PriorTrainer(gen, encoder, code_layer, feature_layer, source, space.with_size(None), out, config,
                           encoder_input=crop, output_layer=output_layer)
    if trainer.resume() and progress:
        print(f"resuming from {out / 'checkpoint.pt'} at step {trainer.step}", file=sys.stderr)
    return trainer.train(progress=progress)
