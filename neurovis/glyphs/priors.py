"""The glyph world's generator priors: the shipped Noiseless Joint PPGN-h, its start bank,
its per-unit code clip and DGN-AM. The other treatments (PPGN-h, PPGN-x, Joint PPGN-h and
``load_prior("glyphs")`` itself) are in :mod:`neurovis.glyphs.treatments`; the zoo
registers them all (:mod:`neurovis.zoo.glyphs`).
"""

from __future__ import annotations

import torch

from neurovis._utils.torch_utils import eval_mode
from neurovis.errors import NeurovisError
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.checkpoints import (
    GLYPH_GENERATOR_FILE,
    GLYPH_PIXELS,
    GLYPH_START_BANK_FILE,
    load_glyph_generator,
    weights_file,
)
from neurovis.glyphs.nets import load_glyph_encoder
from neurovis.priors import GaussianPrior, GeneratorPrior, LayerEncoder, Prior
from neurovis.priors.generator import encode_in_batches, load_start_bank

START_BANK_IMAGES = 1024
START_BANK_SEED = 4242
"""The shipped glyph start bank holds ``E(x)`` of ``GlyphWorld().sample(1024, seed=4242)``:
other images than the reports' natural images and the per-unit clip's."""
START_BANK_COMMAND = "python scripts/make_glyph_start_bank.py"


def make_glyph_start_bank(device: str | torch.device = "cpu") -> torch.Tensor:
    """``E(x)`` ``(1024, 512)`` float32 of the :data:`START_BANK_IMAGES` world images (seed
    :data:`START_BANK_SEED`) under the glyph encoder: the codes every glyph prior's chains
    start and restart from (``python scripts/make_glyph_start_bank.py`` writes them)."""
    encoder = LayerEncoder(load_glyph_encoder(device=device), "fc6", relu=True)
    images = GlyphWorld().sample(START_BANK_IMAGES, seed=START_BANK_SEED).images.to(device)
    with eval_mode([encoder]):
        return encode_in_batches(encoder, images).float().cpu()


_START_BANK: dict[str, torch.Tensor] = {}


def load_glyph_start_bank() -> torch.Tensor:
    """The shipped glyph start bank ``(1024, 512)`` float32 (read once, then cached)."""
    if "glyphs" not in _START_BANK:
        path = weights_file(GLYPH_START_BANK_FILE)
        try:
            _START_BANK["glyphs"] = load_start_bank(path)
        except NeurovisError as err:
            raise NeurovisError(f"{err}; rebuild it with {START_BANK_COMMAND}") from None
    return _START_BANK["glyphs"]


def with_glyph_bank(prior: GeneratorPrior) -> GeneratorPrior:
    """``prior`` with the shipped glyph start bank (every glyph generator prior carries it)."""
    return prior.with_start_codes(load_glyph_start_bank())


def load_noiseless_base(device: str | torch.device = "cpu") -> GeneratorPrior:
    """The shipped Noiseless Joint glyph prior, without its start bank: G inverts the glyph
    encoder's post-ReLU fc6 (512-d).

    Images are RGB in [0, 1], 64×64, clipped to that range (``clamp_pixels``) before the
    classifier, the ε1 term and the stored samples see them: unclipped, chains push most
    pixels far outside [0, 1] and the classifier's probability stops describing the image a
    report shows. Codes are clipped to [0, 30].
    """
    path = weights_file(GLYPH_GENERATOR_FILE)
    generator = load_glyph_generator(path)
    encoder = load_glyph_encoder(device=device)
    prior = GeneratorPrior(
        generator.to(device).eval(),
        LayerEncoder(encoder, "fc6", relu=True),
        code_clip=(0.0, 30.0),
        pixel_space=GLYPH_PIXELS,
        clamp_pixels=True,
    )
    prior.weights_paths = [str(path), str(encoder.weights_path)]
    prior.name = "glyphs-noiseless"
    return prior


def load_glyph_noiseless(device: str | torch.device = "cpu") -> GeneratorPrior:
    """Noiseless Joint PPGN-h on the glyph world (``load_prior("glyphs-noiseless")``): the
    paper's default treatment and the glyph prior's ``paper`` preset; with the start bank."""
    return with_glyph_bank(load_noiseless_base(device))


UNIT_CLIP_IMAGES = 4096
UNIT_CLIP_SEED = 20_260_077
"""The world images (``GlyphWorld().sample(4096, seed)``) whose codes give ``glyphs-unit-clip``
its per-unit code range."""


def unit_code_range(encoder: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-unit code range from real images: ``(zeros, each unit's largest code)``, each
    shaped like one code. ``encoder`` maps images ``(B, C, H, W)`` in its prior's pixel
    space to codes; use the result as a prior's ``code_clip``."""
    high = encode_in_batches(encoder, images, batch_size).amax(0).float().cpu()
    return torch.zeros_like(high), high


_UNIT_CLIP_BOUNDS: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def with_glyph_unit_clip(prior: GeneratorPrior, name: str) -> GeneratorPrior:
    """A glyph prior's generator and encoder with each code unit clipped to
    :func:`unit_code_range` over the :data:`UNIT_CLIP_IMAGES` world images (deterministic)."""
    key = (str(prior.weights_paths[-1]), str(prior.device))  # the bounds depend on the encoder only
    if key not in _UNIT_CLIP_BOUNDS:
        images = GlyphWorld().sample(UNIT_CLIP_IMAGES, seed=UNIT_CLIP_SEED).images.to(prior.device)
        with eval_mode(prior.modules()):
            _UNIT_CLIP_BOUNDS[key] = unit_code_range(prior.encode, images)
    bounds = _UNIT_CLIP_BOUNDS[key]
    clipped = GeneratorPrior(prior.generator, prior.encoder, code_clip=bounds, pixel_space=prior.pixel_space,
                             clamp_pixels=prior.clamp_pixels)
    clipped.weights_paths = prior.weights_paths
    clipped.start_codes = prior.start_codes
    clipped.name = name
    return clipped


def load_glyph_unit_clip(device: str | torch.device = "cpu") -> GeneratorPrior:
    """The shipped glyph prior with each code unit clipped to its own range on real world
    images (0 to its largest value over :data:`UNIT_CLIP_IMAGES` images) instead of the
    paper's common [0, 30] (``load_prior("glyphs-unit-clip")``): the chains then stay among
    codes real images have. Not the default; see the README's facet-recall benchmark."""
    return with_glyph_unit_clip(load_glyph_noiseless(device), "glyphs-unit-clip")


def load_glyph_dgn_am(device: str | torch.device = "cpu") -> Prior:
    """DGN-AM on the glyph world: the shipped generator with a Gaussian ``p(h) = N(0, I)``
    (no encoder; ε1 = 0 by default), the prior the exact samplers (``rule="mala"``...) take."""
    ppgn = load_noiseless_base(device)
    prior = GaussianPrior(ppgn.generator, code_clip=(0.0, 30.0), pixel_space=ppgn.pixel_space,
                          clamp_pixels=ppgn.clamp_pixels)
    prior.weights_paths = ppgn.weights_paths[:1]
    prior.name = "glyphs-dgn-am"
    return prior
