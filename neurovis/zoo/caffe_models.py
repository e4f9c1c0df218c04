"""The paper's own networks, converted from Caffe files: ``caffenet`` and ``caffenet-fc6``.

Convert once (no Caffe needed), into neurovis's home folder (``$NEUROVIS_HOME``, default
``~/.cache/neurovis``)::

    neurovis convert-caffe --prototxt deploy.prototxt --caffemodel bvlc_reference_caffenet.caffemodel \\
        --out ~/.cache/neurovis/caffenet.pt
    neurovis convert-caffe --prototxt generator.prototxt --caffemodel generator.caffemodel \\
        --out ~/.cache/neurovis/caffenet-fc6-generator.pt

``load_model("caffenet")`` then reads ``caffenet.pt`` (BGR 0-255 minus the ImageNet mean,
227×227, layers conv1..conv5, pool5, fc6, fc7, fc8) and ``load_prior("caffenet-fc6")``
pairs the generator (fc6 code ``(B, 4096)`` -> 256×256 BGR, cropped [14:241] to 227) with
CaffeNet's post-ReLU fc6 as E: Noiseless Joint PPGN-h, the paper's prior.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from neurovis.pixels import CAFFE_IMAGENET, Crop
from neurovis.errors import NeurovisError

CAFFENET_FILE = "caffenet.pt"
GENERATOR_FILE = "caffenet-fc6-generator.pt"
# Crop rows/cols [14:241] of the 256×256 generator output (SPEC §2).
CROP = (14, 14, 227, 227)


def neurovis_home() -> Path:
    """``$NEUROVIS_HOME`` or ``~/.cache/neurovis``: where converted networks live."""
    return Path(os.environ.get("NEUROVIS_HOME") or Path.home() / ".cache" / "neurovis")


def _missing(what: str, path: Path, files: str) -> NeurovisError:
    return NeurovisError(
        f"no converted {what}: looked for {path}; convert the paper's Caffe files once with "
        f"`neurovis convert-caffe --prototxt ... --caffemodel ... --out {path}` ({files}; see the README)"
    )


def load_caffenet(path: str | Path | None = None) -> nn.Module:
    """BVLC CaffeNet converted by ``neurovis convert-caffe`` (default ``$NEUROVIS_HOME/caffenet.pt``).

    Input ``(B, 3, 227, 227)`` BGR, 0-255, minus the mean (104, 117, 123); output the fc8
    logits ``(B, 1000)``.
    """
    from neurovis.caffe import load_converted

    path = Path(path) if path is not None else neurovis_home() / CAFFENET_FILE
    if not path.is_file():
        raise _missing("CaffeNet", path, "deploy.prototxt and bvlc_reference_caffenet.caffemodel")
    net = load_converted(path)
    net.pixel_space = CAFFE_IMAGENET
    net.input_size = (3, 227, 227)
    return net.eval()


def load_caffenet_fc6_generator(path: str | Path | None = None) -> nn.Module:
    """The DeePSiM/PPGN fc6 generator, converted: ``(B, 4096)`` -> ``(B, 3, 227, 227)``
    (its 256×256 BGR mean-subtracted output cropped [14:241])."""
    from neurovis.caffe import load_converted

    path = Path(path) if path is not None else neurovis_home() / GENERATOR_FILE
    if not path.is_file():
        raise _missing("fc6 generator", path, "the PPGN generator's generator.prototxt and generator.caffemodel")
    gen = load_converted(path)
    cropped = nn.Sequential()
    cropped.add_module("generator", gen)
    cropped.add_module("crop", Crop(*CROP))
    cropped.pixel_space = CAFFE_IMAGENET
    cropped.code_shape = (4096,)
    cropped.weights_path = str(path)
    return cropped.eval()


def caffenet_fc6_prior():
    """The paper's prior: converted generator + CaffeNet post-ReLU fc6, codes clipped to [0, 30]."""
    from neurovis.priors import GeneratorPrior, LayerEncoder

    generator = load_caffenet_fc6_generator()
    encoder = LayerEncoder(load_caffenet(), "fc6")
    prior = GeneratorPrior(generator, encoder, code_clip=(0.0, 30.0), pixel_space=CAFFE_IMAGENET, code_shape=(4096,))
    prior.name = "caffenet-fc6"
    # the start bank: made once from --images (E(x) of the user's photos), kept beside the generator
    prior.start_bank_path = str(Path(generator.weights_path).with_suffix(".start_bank.pt"))
    if Path(prior.start_bank_path).is_file():
        from neurovis.priors import load_start_bank

        prior = prior.with_start_codes(load_start_bank(prior.start_bank_path))
    return prior
