"""PPGN-h and PPGN-x on the glyph world: ``load_prior("glyphs-ppgn-h")``, ``("glyphs-ppgn-x")``.

Two of the paper's five prior treatments (SPEC §1.1; Sec. 3.1, 3.3, S9.2, S9.3), each with
a DAE trained by ``python scripts/train_glyph_daes.py`` (:mod:`neurovis.glyphs.recipes.daes`):

- ``glyphs-ppgn-h`` (:func:`load_glyph_ppgn_h`): the shipped glyph generator G (the one
  :func:`load_glyph_prior` loads, so a retrained G is picked up) with
  an MLP DAE ``R_h`` on the glyph encoder's post-ReLU fc6 code; ε1 term ``R_h(h) − h``.
  Default ε = (1e-5, 1, 1e-5), the paper's PPGN-h (``HDAEPrior.default_eps``).
- ``glyphs-ppgn-x`` (:func:`load_glyph_ppgn_x`): the chain walks the 64×64 RGB [0, 1]
  pixels; ε1 term ``R_x(x) − x`` of a convolutional image DAE
  (``PixelPrior(denoiser=R_x)``). Default ε = :data:`PPGN_X_EPS`.

Weights: ``neurovis/glyphs/weights/glyph_hdae.pt`` and ``glyph_xdae.pt`` (float16 payloads with
``format``, ``kind``, ``state_dict``, ``arch``, ``metrics``, ``config``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from neurovis.errors import NeurovisError
from neurovis.glyphs.checkpoints import GLYPH_PIXELS, load_glyph_generator, load_payload
from neurovis.glyphs import nets  # nets.WEIGHTS_DIR read at call time (tests point it elsewhere)
from neurovis.glyphs.priors import load_glyph_noiseless, load_noiseless_base, with_glyph_bank, with_glyph_unit_clip
from neurovis.glyphs.recipes.daes import HDAE_KIND, XDAE_KIND, build_hdae, build_xdae
from neurovis.glyphs.recipes.prior import GLYPH_PRIOR_CONFIG
from neurovis.priors import GeneratorPrior, HDAEPrior, PixelPrior

HDAE_FILE = "glyph_hdae.pt"
XDAE_FILE = "glyph_xdae.pt"
RETRAIN_DAES_COMMAND = "python scripts/train_glyph_daes.py"
PAYLOAD_FORMAT = "neurovis.glyphs/1"

PPGN_X_EPS: tuple[float, float, float] = (1.0, 1.5, 0.1)
"""Default (ε1, ε2, ε3) of ``glyphs-ppgn-x``: the paper's PPGN-x sampling ε = (1, 1e5, 25.6)
(Sec. 3.1 of the CVPR version, footnote 4: ε1 and ε3 match the DAE's training noise, ε2
chosen by hand) on mean-subtracted 0–255 pixels, converted to [0, 1] pixels
(x₀₁ = x₂₅₅ / 255) so that each step points the same way: ``R_x(x) − x`` and the noise
scale with 1/255 and the gradient ``∂ log p(y|x)/∂x`` with 255, so ε1 stays 1,
ε2 = 1e5 / 255² ≈ 1.5 and ε3 = 25.6 / 255 ≈ 0.1 (= the training noise σ_x)."""


def _weights_path(filename: str, path: str | os.PathLike | None) -> Path:
    p = Path(path) if path is not None else nets.WEIGHTS_DIR / filename
    if not p.is_file():
        raise NeurovisError(f"glyph DAE weights not found at {p}; retrain with {RETRAIN_DAES_COMMAND}")
    return p


def load_glyph_dae(kind: str, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The shipped DAE of ``kind`` (``"hdae"``: R_h, a CodeDAE on 512-d codes; ``"xdae"``:
    R_x, an ImageDAE on RGB [0, 1] images), float32, in eval mode, with ``metrics``,
    ``config`` and ``weights_path`` attributes.

    Raises:
        NeurovisError: the file is missing or is not a glyph DAE of that kind (one line
            naming the retrain script).
    """
    builders = {HDAE_KIND: build_hdae, XDAE_KIND: build_xdae}
    if kind not in builders:
        raise NeurovisError(f"unknown glyph DAE kind {kind!r}; use {' or '.join(builders)}")
    p = _weights_path(HDAE_FILE if kind == HDAE_KIND else XDAE_FILE, path)
    try:
        state, meta = load_payload(p)
    except Exception as err:  # not a torch file, or not weights_only-safe
        raise NeurovisError(f"cannot read glyph DAE weights {p} ({type(err).__name__}); "
                            f"retrain with {RETRAIN_DAES_COMMAND}") from None
    if meta.get("format") != PAYLOAD_FORMAT or meta.get("kind") != kind:
        raise NeurovisError(f"{p} is not a glyph {kind} payload (format {meta.get('format')!r}, kind "
                            f"{meta.get('kind')!r}); retrain with {RETRAIN_DAES_COMMAND}")
    dae = builders[kind](meta.get("arch"))
    dae.load_state_dict(state)
    dae.metrics = dict(meta.get("metrics", {}))
    dae.config = dict(meta.get("config", {}))
    dae.weights_path = str(p)
    return dae.to(device).eval()


def load_glyph_ppgn_h(device: str | torch.device = "cpu", path: str | os.PathLike | None = None) -> HDAEPrior:
    """PPGN-h on the glyph world: the shipped G + ``R_h`` (``path``: default the shipped
    ``glyph_hdae.pt``). Codes 512-d, clipped to [0, 30]; images RGB [0, 1], 64×64;
    default ε (1e-5, 1, 1e-5) as the paper's PPGN-h."""
    dae = load_glyph_dae("hdae", path, device)
    ppgn = load_noiseless_base(device)
    prior = HDAEPrior(ppgn.generator, dae, code_clip=ppgn.code_clip, pixel_space=ppgn.pixel_space,
                      clamp_pixels=ppgn.clamp_pixels)
    prior.weights_paths = [ppgn.weights_paths[0], dae.weights_path]
    prior.name = "glyphs-ppgn-h"
    return prior


def load_glyph_ppgn_x(device: str | torch.device = "cpu", path: str | os.PathLike | None = None) -> PixelPrior:
    """PPGN-x on the glyph world: the chain walks 64×64 RGB [0, 1] images, ε1 term
    ``R_x(x) − x`` (``path``: default the shipped ``glyph_xdae.pt``); pixels are clipped to
    [0, 1]; chains start from mid-grey with small noise. Default ε :data:`PPGN_X_EPS`."""
    dae = load_glyph_dae("xdae", path, device)
    # no device= here: the prior's device follows R_x's, so moving R_x (as bench/samplers.py
    # does) moves the chains too
    prior = PixelPrior((3, 64, 64), GLYPH_PIXELS, denoiser=dae)
    prior.default_eps = PPGN_X_EPS
    prior.weights_paths = [dae.weights_path]
    prior.name = "glyphs-ppgn-x"
    return prior


JOINT_FILE = "glyph_generator_joint.pt"
JOINT_NOISE = (1.0, 0.22, 0.004)
"""σ on (h, h1, x) of the Joint PPGN-h generator, h1 being the prior's feature layer (conv2,
:data:`~neurovis.glyphs.recipes.prior.GLYPH_FEATURE_LAYER`): the paper's {1, 4, 1} (fc6,
pool5, 0–255 pixels) at this world's scales: fc6 has the paper's scale (p99 ≈ 8), so
σ_h = 1; the paper's 4 is 0.4 of CaffeNet pool5's RMS (≈ 10), and conv2's RMS here is
0.60, so 0.22; x is in [0, 1], so 1/255 ≈ 0.004."""
JOINT_FINETUNE_STEPS = 1000
"""Steps of the Joint fine-tune from the Noiseless Joint checkpoint."""
JOINT_FINETUNE_LR = 1.25e-4
"""The Joint fine-tune's learning rate, constant (``lr_schedule="step"``, no decay): the
rate the 15,000-step step-decay recipe ended at, whatever schedule trained the prior."""


def joint_override() -> str:
    """The Joint fine-tune's ``--override`` JSON for ``scripts/train_glyph_prior.py``."""
    return json.dumps({"noise": list(JOINT_NOISE), "lr": JOINT_FINETUNE_LR, "lr_schedule": "step", "lr_decay_at": []})


def joint_total_steps() -> int:
    """The Joint fine-tune's ``--steps``: the prior's recipe steps + :data:`JOINT_FINETUNE_STEPS`
    (the step counter carries on from the Noiseless Joint checkpoint)."""
    return GLYPH_PRIOR_CONFIG.steps + JOINT_FINETUNE_STEPS


def load_glyph_joint(device: str | torch.device = "cpu", path: str | os.PathLike | None = None):
    """Joint PPGN-h on the glyph world (``load_prior("glyphs-joint")``): a generator trained
    with noise :data:`JOINT_NOISE` on h, h1 and x (the shipped Noiseless Joint G fine-tuned
    for 1,000 steps with it, see the model card), the same encoder E, ε1 term E(G(h)) − h.
    Default ε (1e-5, 1, 1e-17), as the shipped prior."""
    p = Path(path) if path is not None else nets.WEIGHTS_DIR / JOINT_FILE
    if not p.is_file():
        raise NeurovisError(
            f"Joint PPGN-h glyph generator not found at {p}; retrain with python scripts/train_glyph_prior.py "
            f"--init-from runs/glyph-prior/checkpoint.pt --out runs/glyph-joint --steps {joint_total_steps()} "
            f"--override '{joint_override()}' --ship-as {JOINT_FILE}"
        )
    generator = load_glyph_generator(p)
    base = load_noiseless_base(device)
    prior = GeneratorPrior(generator.to(device).eval(), base.encoder, code_clip=(0.0, 30.0), pixel_space=base.pixel_space,
                           clamp_pixels=base.clamp_pixels)
    prior.weights_paths = [str(p), base.weights_paths[-1]]
    prior.name = "glyphs-joint"
    prior.treatment = "Joint PPGN-h"
    return with_glyph_bank(prior)


def load_glyph_joint_unit_clip(device: str | torch.device = "cpu"):
    """Joint PPGN-h (``glyphs-joint``) with each code unit clipped to its range on real world
    images, as ``glyphs-unit-clip`` (``load_prior("glyphs-joint-unit-clip")``); with resets
    every 50 of 200 steps the best facet recall measured on the glyph world (README)."""
    return with_glyph_unit_clip(load_glyph_joint(device), "glyphs-joint-unit-clip")


def load_glyph_prior(device: str | torch.device = "cpu") -> GeneratorPrior:
    """The glyph world's prior as users get it (``load_prior("glyphs")``): its recommended
    treatment, Joint PPGN-h (:func:`load_glyph_joint`), with the start bank;
    ``preset="paper"`` samples the Noiseless Joint generator instead
    (:func:`~neurovis.glyphs.priors.load_glyph_noiseless`). Measured on the glyph world's 16
    classes, the Joint generator with real-code starts and restarts finds 0.97–0.98 of each
    class's modes against 0.81–0.84 for the Noiseless Joint one with the same method."""
    prior = load_glyph_joint(device)
    prior.name = "glyphs"
    prior.paper_treatment = load_glyph_noiseless
    return prior
