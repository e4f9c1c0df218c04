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

from neurovis.caffe import load_converted
from neurovis.errors import NeurovisError
from neurovis.pixels import CAFFE_IMAGENET, Crop
from neurovis.priors import GeneratorPrior, LayerEncoder, load_start_bank
from neurovis.zoo.registry import ModelEntry, PriorEntry, register_model, register_prior

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


def caffenet_fc6_prior() -> GeneratorPrior:
    """The paper's prior: converted generator + CaffeNet post-ReLU fc6, codes clipped to [0, 30]."""
    generator = load_caffenet_fc6_generator()
    encoder = LayerEncoder(load_caffenet(), "fc6")
    prior = GeneratorPrior(generator, encoder, code_clip=(0.0, 30.0), pixel_space=CAFFE_IMAGENET, code_shape=(4096,))
    prior.name = "caffenet-fc6"
    # the start bank: made once from --images (E(x) of the user's photos), kept beside the generator
    prior.start_bank_path = str(Path(generator.weights_path).with_suffix(".start_bank.pt"))
    if Path(prior.start_bank_path).is_file():
        prior = prior.with_start_codes(load_start_bank(prior.start_bank_path))
    return prior


# ----------------------------------------------------------------------------- zoo entries
def caffenet_from(path: Path) -> nn.Module:
    """A converted CaffeNet-like file; its input size is the file's own (a converted net
    may read other than 3×227×227, e.g. 1×28×28)."""
    net = load_caffenet(path)
    shape = getattr(net, "input_shape", None)
    if shape is not None and len(tuple(shape)) == 3:
        net.input_size = tuple(int(v) for v in shape)
    return net


def _missing_files(*names: str) -> str | None:
    absent = [str(neurovis_home() / n) for n in names if not (neurovis_home() / n).is_file()]
    return f"no converted file {', '.join(absent)} (convert the paper's Caffe files, see docs/caffe.md)" if absent else None


_CONVERT = "neurovis convert-caffe --prototxt ... --caffemodel ... --out $NEUROVIS_HOME/<file> (docs/caffe.md)"

register_model(ModelEntry(
    "caffenet", lambda: load_caffenet(), from_file=caffenet_from, pixel_space=CAFFE_IMAGENET, input_size=(3, 227, 227),
    default_prior="caffenet-fc6", retrain=_CONVERT, available=lambda: _missing_files(CAFFENET_FILE),
    meta={"source": "caffe", "file": CAFFENET_FILE},
))
register_prior(PriorEntry(
    "caffenet-fc6", lambda: caffenet_fc6_prior(), pixel_space=CAFFE_IMAGENET, code_shape=(4096,),
    default_eps=(1e-5, 1.0, 1e-17), models=("caffenet",), retrain=_CONVERT,
    available=lambda: _missing_files(CAFFENET_FILE, GENERATOR_FILE),
    meta={"source": "caffe", "files": [CAFFENET_FILE, GENERATOR_FILE], "treatment": "Noiseless Joint PPGN-h"},
))
