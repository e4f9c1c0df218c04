"""The paper's LRCN captioner from converted Caffe files (docs/caffe.md, docs/captions.md)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from neurovis.caffe.convert import load_converted
from neurovis.caption import LRCNCaptioner
from neurovis.errors import NeurovisError

LRCN_FILE = "lrcn.pt"
FEATURES_FILE = "features.pt"
VOCABULARY_FILE = "vocabulary.txt"


def load_captioner_dir(folder: str | Path, vocabulary: str | Path | None = None
                       ) -> tuple[nn.Module, nn.Module | None, list[str]]:
    """``(LRCNCaptioner, features net or None, vocabulary)`` from a folder of converted
    LRCN files (docs/caffe.md): ``lrcn.pt`` (``lrcn_word_to_preds.deploy.prototxt``
    converted with ``--keep-softmax``), optionally ``features.pt`` (the CaffeNet half of the
    LRCN caffemodel, up to fc8; without it the sampled model's output feeds the LSTM) and
    ``vocabulary.txt`` (the release's ``misc/vocabulary.txt``; ``vocabulary`` names
    another file).

    Raises:
        NeurovisError: a missing file, named, with what to put there.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NeurovisError(f"--captioner {folder}: not a folder; it must hold {LRCN_FILE} (and {VOCABULARY_FILE}, "
                            f"optionally {FEATURES_FILE}) made by `neurovis convert-caffe` as docs/caffe.md shows")
    if not (folder / LRCN_FILE).is_file():
        raise NeurovisError(f"--captioner {folder} has no {LRCN_FILE}; convert lrcn_word_to_preds.deploy.prototxt "
                            f"with `neurovis convert-caffe --keep-softmax --out {folder / LRCN_FILE}`")
    words_file = Path(vocabulary).expanduser() if vocabulary is not None else folder / VOCABULARY_FILE
    if not words_file.is_file():
        raise NeurovisError(f"no vocabulary at {words_file}; copy the release's misc/vocabulary.txt there or pass "
                            "--vocabulary FILE")
    words = [w.strip() for w in words_file.read_text().splitlines()]
    captioner = LRCNCaptioner(load_converted(folder / LRCN_FILE))
    features = load_converted(folder / FEATURES_FILE) if (folder / FEATURES_FILE).is_file() else None
    return captioner, features, words
