"""Priors by name: ``load_prior("glyphs")`` and user factories."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import torch

from neurovis.pixels import RGB01
from neurovis.errors import NeurovisError, load_weights_file
from neurovis.priors import GeneratorPrior, LayerEncoder, Prior, deepsim_glyph
from neurovis.priors.generator import encode_in_batches, load_start_bank

_PRIORS: dict[str, Callable[[], Prior]] = {}

GLYPH_GENERATOR_FILE = "glyph_generator.pt"
GLYPH_DISCRIMINATOR_FILE = "glyph_discriminator.pt"


def register_prior(name: str, factory: Callable[[], Prior]) -> None:
    """Make ``load_prior(name)`` call ``factory()``."""
    _PRIORS[name] = factory


def registered_priors() -> list[str]:
    """Names ``load_prior`` knows (``glyphs``, ``caffenet-fc6``, ...)."""
    return sorted(_PRIORS)


def _weights_file(name: str) -> Path:
    from neurovis.glyphs.nets import RETRAIN_COMMAND, WEIGHTS_DIR

    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise NeurovisError(
            f"glyph prior weights not found at {path}; retrain with {RETRAIN_COMMAND} "
            "then python scripts/train_glyph_prior.py"
        )
    return path


def load_payload(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A shipped weights file: its state dict (stored as float16, returned as float32) and
    the rest of the payload (``arch``, ``metrics``, ``config``)."""
    payload = load_weights_file(path, "shipped prior weights", "retrain or restore the file (git checkout)")
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise NeurovisError(f"{path} is not a neurovis weights payload (no state_dict); retrain or restore the file")
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload.pop("state_dict").items()}
    return state, payload


def load_glyph_generator(path: Path) -> torch.nn.Module:
    """A shipped glyph generator file (fp16 payload naming its ``arch``) as a float32 module
    in eval mode with a ``weights_path``: code ``(B, 512)`` -> RGB [0, 1] ``(B, 3, 64, 64)``."""
    state, meta = load_payload(path)
    generator = deepsim_glyph(arch=meta.get("arch", "spatial"))
    generator.load_state_dict(state)
    generator.weights_path = str(path)
    return generator.eval()


GLYPH_START_BANK_FILE = "glyph_start_bank.pt"
START_BANK_IMAGES = 1024
START_BANK_SEED = 4242
"""The shipped glyph start bank holds ``E(x)`` of ``GlyphWorld().sample(1024, seed=4242)``:
other images than the reports' natural images and the per-unit clip's."""


def make_glyph_start_bank(device: str | torch.device = "cpu") -> torch.Tensor:
    """``E(x)`` ``(1024, 512)`` float32 of the :data:`START_BANK_IMAGES` world images (seed
    :data:`START_BANK_SEED`) under the glyph encoder: the codes every glyph prior's chains
    start and restart from (``python scripts/make_glyph_start_bank.py`` writes them)."""
    from neurovis._utils.torch_utils import eval_mode
    from neurovis.glyphs import GlyphWorld
    from neurovis.glyphs.nets import load_glyph_encoder

    encoder = LayerEncoder(load_glyph_encoder(device=device), "fc6", relu=True)
    images = GlyphWorld().sample(START_BANK_IMAGES, seed=START_BANK_SEED).images.to(device)
    with eval_mode([encoder]):
        return encode_in_batches(encoder, images).float().cpu()


_START_BANK: dict[str, torch.Tensor] = {}


def load_glyph_start_bank() -> torch.Tensor:
    """The shipped glyph start bank ``(1024, 512)`` float32 (read once, then cached)."""
    if "glyphs" not in _START_BANK:
        path = _weights_file(GLYPH_START_BANK_FILE)
        try:
            _START_BANK["glyphs"] = load_start_bank(path)
        except NeurovisError as err:
            raise NeurovisError(f"{err}; rebuild it with python scripts/make_glyph_start_bank.py") from None
    return _START_BANK["glyphs"]


def with_glyph_bank(prior: GeneratorPrior) -> GeneratorPrior:
    """``prior`` with the shipped glyph start bank (every glyph generator prior carries it)."""
    return prior.with_start_codes(load_glyph_start_bank())


def load_glyph_noiseless(device: str | torch.device = "cpu") -> GeneratorPrior:
    """Noiseless Joint PPGN-h on the glyph world (``load_prior("glyphs-noiseless")``): the
    paper's default treatment and the glyph prior's ``paper`` preset; with the start bank."""
    prior = with_glyph_bank(_load_noiseless(device))
    return prior


def load_glyph_prior(device: str | torch.device = "cpu") -> GeneratorPrior:
    """The glyph world's prior as users get it (``load_prior("glyphs")``): its recommended
    treatment, Joint PPGN-h (:func:`~neurovis.glyphs.treatments.load_glyph_joint`),
    with the start bank; ``preset="paper"`` samples the Noiseless Joint generator instead
    (:func:`load_glyph_noiseless`). Measured on the glyph world's 16 classes, the Joint
    generator with real-code starts and restarts finds 0.97–0.98 of each class's modes
    against 0.81–0.84 for the Noiseless Joint one with the same method."""
    from neurovis.glyphs.treatments import load_glyph_joint

    prior = load_glyph_joint(device)
    prior.name = "glyphs"
    prior.paper_treatment = load_glyph_noiseless
    return prior


def _load_noiseless(device: str | torch.device = "cpu") -> GeneratorPrior:
    """The shipped Noiseless Joint glyph prior: G inverts the glyph encoder's post-ReLU fc6 (512-d).

    Images are RGB in [0, 1], 64×64, clipped to that range (``clamp_pixels``) before the
    classifier, the ε1 term and the stored samples see them: unclipped, chains push most
    pixels far outside [0, 1] and the classifier's probability stops describing the image a
    report shows. Codes are clipped to [0, 30].
    """
    from neurovis.glyphs.nets import load_glyph_encoder

    path = _weights_file(GLYPH_GENERATOR_FILE)
    generator = load_glyph_generator(path)
    encoder = load_glyph_encoder(device=device)
    prior = GeneratorPrior(
        generator.to(device).eval(),
        LayerEncoder(encoder, "fc6", relu=True),
        code_clip=(0.0, 30.0),
        pixel_space=RGB01.with_size((64, 64)),
        clamp_pixels=True,
    )
    prior.weights_paths = [str(path), str(encoder.weights_path)]
    prior.name = "glyphs-noiseless"
    return prior


def load_glyph_discriminator(device: str | torch.device = "cpu") -> torch.nn.Module:
    """The discriminator trained with the glyph prior (one logit per image: real if > 0)."""
    from neurovis.training.discriminator import Discriminator

    path = _weights_file(GLYPH_DISCRIMINATOR_FILE)
    disc = Discriminator.from_state_dict(load_payload(path)[0])  # widths as trained
    return disc.to(device).eval()


register_prior("glyphs", load_glyph_prior)
register_prior("glyphs-noiseless", load_glyph_noiseless)

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
    from neurovis._utils.torch_utils import eval_mode
    from neurovis.glyphs import GlyphWorld

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


register_prior("glyphs-unit-clip", load_glyph_unit_clip)


def load_glyph_dgn_am(device: str | torch.device = "cpu") -> Prior:
    """DGN-AM on the glyph world: the shipped generator with a Gaussian ``p(h) = N(0, I)``
    (no encoder; ε1 = 0 by default), the prior the exact samplers (``rule="mala"``...) take."""
    from neurovis.priors import GaussianPrior

    ppgn = _load_noiseless(device)
    prior = GaussianPrior(ppgn.generator, code_clip=(0.0, 30.0), pixel_space=ppgn.pixel_space,
                          clamp_pixels=ppgn.clamp_pixels)
    prior.weights_paths = ppgn.weights_paths[:1]
    prior.name = "glyphs-dgn-am"
    return prior


register_prior("glyphs-dgn-am", load_glyph_dgn_am)


def _caffenet_fc6() -> Prior:
    from neurovis.zoo.caffe_models import caffenet_fc6_prior

    return caffenet_fc6_prior()


register_prior("caffenet-fc6", _caffenet_fc6)


def load_prior(name: str) -> Prior:
    """A prior by registered name (``glyphs``) or ``package.module:factory``."""
    if name in _PRIORS:
        return _PRIORS[name]()
    if ":" in name:
        from neurovis.zoo import import_factory

        prior = import_factory(name, "prior")()
        if not isinstance(prior, Prior):
            raise NeurovisError(f"{name} returned a {type(prior).__name__}, not a neurovis Prior")
        return prior
    raise NeurovisError(f"unknown prior {name!r}; use one of {', '.join(sorted(_PRIORS))} or package.module:factory")


importlib.import_module("neurovis.glyphs.treatments")  # registers glyphs-ppgn-x/-h and glyphs-joint
