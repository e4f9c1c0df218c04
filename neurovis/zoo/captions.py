"""The condition of ``neurovis sample --caption TEXT``: the model's own captioner (from its
zoo entry: the glyph world ships one) or the paper's LRCN from converted Caffe files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from neurovis.caffe.lrcn import FEATURES_FILE, load_captioner_dir
from neurovis.caption import CaptionCondition, lrcn_tokens
from neurovis.conditions import Condition
from neurovis.errors import NeurovisError
from neurovis.zoo.registry import ModelEntry, find_model_entry

PAYLOAD_CAPTIONER = "glyphs"
"""The entry whose captioner reads a captioner payload file (``--captioner FILE.pt``): the
glyph world's, the only payload format neurovis trains (``scripts/train_glyph_captioner.py``)."""


def _own_captioner(model_name: str) -> ModelEntry | None:
    entry = find_model_entry(model_name)
    return entry if entry is not None and entry.caption_condition is not None else None


def has_captioner(model_name: str) -> bool:
    """Whether ``--model`` ships a captioner of its own (its zoo entry has one: glyph models)."""
    return _own_captioner(model_name) is not None


def check_caption(model_name: str, caption: str) -> None:
    """Raise a one-line :class:`NeurovisError` if the model's own captioner cannot score
    ``caption`` (unknown words, another form); nothing to check for other models."""
    entry = _own_captioner(model_name)
    if entry is not None and entry.parse_caption is not None:
        entry.parse_caption(caption)


def build_caption_condition(caption: str, model_name: str, model: nn.Module | None = None,
                            captioner: str | Path | None = None, vocabulary: str | Path | None = None,
                            device: Any = "cpu") -> Condition:
    """The condition of ``neurovis sample --caption TEXT``.

    ``captioner``: ``None`` = the model's own captioner (its zoo entry's: glyph models); a
    ``.pt`` file = a glyph captioner payload (``scripts/train_glyph_captioner.py``); a
    folder = converted LRCN files (:func:`~neurovis.caffe.lrcn.load_captioner_dir`), fed by
    ``features.pt`` or else by ``model``'s output (CaffeNet's fc8, as in the paper).

    Raises:
        NeurovisError: unknown words, a caption outside the captioner's form, a model
            without a captioner of its own and no ``captioner``, or missing files (one line each).
    """
    text = " ".join(caption.replace("_", " ").split())
    if not text:
        raise NeurovisError("--caption is empty; give words, e.g. --caption 'a blue ring'")
    path = Path(captioner).expanduser() if captioner is not None else None
    if path is None or path.is_file():
        entry = _own_captioner(model_name) if path is None else (_own_captioner(model_name)
                                                                   or _own_captioner(PAYLOAD_CAPTIONER))
        if entry is None:
            raise NeurovisError(f"--caption needs --captioner DIR for --model {model_name} (a folder with the converted "
                                "LRCN files, see docs/captions.md); only glyph models ship a captioner")
        if vocabulary is not None:
            raise NeurovisError("--vocabulary goes with --captioner DIR (LRCN files); the glyph captioner has its own")
        return entry.caption_condition(text, path, device)  # type: ignore[misc]
    lrcn, features, words = load_captioner_dir(path, vocabulary)
    tokens = lrcn_tokens(text, words)
    if features is None:
        if model is None:
            raise NeurovisError(f"--captioner {path} has no {FEATURES_FILE} and no model was given to feed the LSTM")
        features = model
    return CaptionCondition(lrcn.to(device), tokens, features=features.to(device), start_token=0, name=text, text=text)
