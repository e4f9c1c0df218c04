"""A caption condition: ``log p(caption | image)`` from an image captioner (paper §3.5).

The paper conditions PPGN on a sentence with LRCN (Donahue et al.): a CaffeNet sees the
image, its ``fc8`` output feeds an LSTM language model as a static input, and
``log p(caption | image) = Σ_t log p(w_t | w_<t, image)`` is the condition's objective.
:class:`CaptionCondition` computes exactly that sum (teacher forcing: the captioner reads
the start token and the caption's words, and scores each next word) for any captioner
that returns per-word log-probabilities; :class:`LRCNCaptioner` adapts a converted
``lrcn_word_to_preds.deploy.prototxt`` (:func:`neurovis.caffe.load_converted`) to it::

    features = load_converted("caffenet.pt")          # images -> fc8 (B, 1000)
    lrcn = LRCNCaptioner(load_converted("lrcn.pt"))    # (fc8, tokens) -> log-probs
    words = Path("misc/vocabulary.txt").read_text().splitlines()
    condition = CaptionCondition(lrcn, lrcn_tokens("a_pizza_on_a_table", words), features=features)

Without LRCN files, any ``nn.Module`` ``captioner(images_or_features, tokens)`` returning
``(B, T, V)`` log-probabilities (log-softmax over the vocabulary) works the same way.

The paper's caption settings (its ``sample_conditioned_on_caption.sh``: ε = (1e-3, 1,
1e-17), 200 steps, lr 1 decaying linearly to 1e-10, no restarts) live in
:data:`CAPTION_SETTINGS`; :func:`neurovis.runs.captions.sample_caption` and ``neurovis
sample --caption`` use them for every setting not given, and reports keep samples whose
mean word probability reaches :data:`CAPTION_THRESHOLD`. On the glyph world,
:mod:`neurovis.glyphs.captioner` ships a small captioner (``neurovis sample --model glyphs
--caption "a blue ring"``); :func:`neurovis.zoo.captions.build_caption_condition` is what
the command builds, and :func:`neurovis.caffe.lrcn.load_captioner_dir` reads converted
LRCN files. See docs/captions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neurovis.pixels import PixelAdapter, PixelSpace
from neurovis.conditions import Condition, ConditionResult
from neurovis.errors import NeurovisError


def lrcn_tokens(sentence: str | Sequence[str], vocabulary: Sequence[str]) -> list[int]:
    """LRCN token ids of a sentence, as the paper's code numbers them: word ``w`` is
    ``vocabulary.index(w) + 1`` (``vocabulary``: the lines of ``misc/vocabulary.txt``) and
    ``0`` (<EOS>) ends the caption. ``sentence``: words, or one string with spaces or
    underscores between them (``"a_pizza_on_a_table"``).

    Raises:
        NeurovisError: a word the vocabulary lacks, named.
    """
    words = sentence.replace("_", " ").split() if isinstance(sentence, str) else list(sentence)
    index = {w: i + 1 for i, w in reversed(list(enumerate(vocabulary)))}
    missing = [w for w in words if w not in index]
    if missing or not words:
        raise NeurovisError(f"the captioner's vocabulary has no {', '.join(map(repr, missing))}; use its words"
                            if missing else "the sentence has no words")
    return [index[w] for w in words] + [0]


CAPTION_SETTINGS: dict[str, Any] = {
    "steps": 200,
    "eps": (1e-3, 1.0, 1e-17),
    "lr": 1.0,
    "lr_end": 1e-10,
    "reset_every": 0,
}
"""The paper's settings for sampling a caption, from its caption script
(``sample_conditioned_on_caption.sh`` of the PPGN release: ``n_iters=200``,
``epsilon1=1e-3`` (prior), ``epsilon2=1`` (condition), ``epsilon3=1e-17`` (noise),
``lr=1`` decaying linearly to ``lr_end=1e-10``, ``reset_every=0``). The one place these
defaults live: :func:`~neurovis.runs.captions.sample_caption` and ``neurovis sample --caption`` fill every setting
the user leaves unset from here; explicit arguments override. Its ε1 is 100× the class
scripts' 1e-5: a caption's gradient is a sum over words, and the stronger prior keeps the
image realistic while it is followed.

Where chains start is left to the prior's method, as for every other condition: the
paper's script starts from random codes (``init_file=None``), which is what a prior without
a start bank does (``caffenet-fc6``); a prior with one (``glyphs``) starts from real
images' codes. Measured on the glyph world (a pilot of 6 chains × 200 steps, "a red star"):
kept samples matching the caption 0.84 from random starts, 0.95 from the bank; pass
``starts="random"`` for the paper's."""

CAPTION_THRESHOLD = 0.97
"""Keep threshold of caption reports: the paper's acceptance threshold (0.97), applied to
the caption condition's probability, the mean over the caption's words of
``p(word | previous words, image)`` (the number the paper's ``sampling_caption.py``
prints). The paper's caption script itself keeps everything (``threshold=0``) because it
saves one image per chain, the last; a report keeps every step, and steps where the words
are less certain are where the captioner is most often wrong (``bench/captions.py``)."""


class LRCNCaptioner(nn.Module):
    """A converted LRCN word-to-predictions net as a ``(features, tokens)`` captioner.

    ``net`` takes Caffe's time-major inputs ``(cont_sentence (T, N), input_sentence (T, N),
    image_features (N, F))`` and returns ``(T, N, V)`` logits (``predict``) or
    log-probabilities (``log_prob``). ``forward(features (N, F), tokens (N, T))`` returns
    ``(N, T, V)`` log-probabilities: ``cont`` is 0 at the first step and 1 after, the
    tokens are fed as Caffe's float indices, and a log-softmax over the vocabulary turns
    logits into log-probabilities (it leaves log-probabilities unchanged).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        names = tuple(getattr(net, "input_names", ()))
        if len(names) != 3:
            raise NeurovisError(f"LRCNCaptioner needs a converted net with 3 inputs (cont_sentence, input_sentence, "
                                f"image_features), this one has {names or 'unknown inputs'}")
        self.net = net
        self.order = tuple(self._role(n) for n in names)

    @staticmethod
    def _role(name: str) -> str:
        for role in ("cont", "image", "sentence"):
            if role in name:
                return role
        raise NeurovisError(f"LRCNCaptioner cannot tell what input {name!r} is; expected names with "
                            "'cont', 'sentence' and 'image' as in lrcn_word_to_preds.deploy.prototxt")

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        n, steps = tokens.shape
        cont = torch.ones(steps, n, dtype=features.dtype, device=features.device)
        cont[0] = 0
        words = tokens.t().to(features.dtype)
        given = {"cont": cont, "sentence": words, "image": features}
        out = self.net(*(given[role] for role in self.order))
        return F.log_softmax(out, dim=-1).transpose(0, 1)


@dataclass(frozen=True, eq=False)
class CaptionCondition(Condition):
    """``log p(caption | image)``, summed over the caption's words.

    Args:
        captioner: ``captioner(inputs (B, ...), tokens (B, T)) -> (B, T, V)`` log-probabilities,
            entry ``[b, t]`` the distribution of word ``t`` given ``tokens[b, :t+1]`` (the
            start token and the words before it) and the image.
        caption: the caption's token ids ``(T,)``, the end token included if the captioner
            has one (LRCN: 0).
        features: the condition network that turns images into the captioner's image
            input (LRCN: CaffeNet's fc8); ``None``: the captioner reads images itself.
        start_token: the token fed before the first word (LRCN: 0).
        input_space: pixel convention of the network that reads images; ``None`` uses its
            ``pixel_space`` attribute if it has one, else the prior's (no conversion).
        name: a label for reports.
        text: the caption as words, recorded in reports (``describe()["text"]``).

    ``evaluate`` returns ``objective = activation = Σ_t log p(caption_t | caption_<t,
    image)`` ``(B,)`` (the gradient the paper's ``sampling_caption.py`` backpropagates) and
    ``prob`` the mean of the words' probabilities (the number that code reports and
    thresholds).
    """

    captioner: nn.Module
    caption: Sequence[int] | torch.Tensor
    features: nn.Module | None = None
    start_token: int = 0
    input_space: PixelSpace | None = None
    name: str = "caption"
    text: str | None = None
    tokens: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ids = torch.as_tensor(self.caption)
        if ids.dim() != 1 or ids.numel() == 0 or ids.is_floating_point() or bool((ids < 0).any()):
            raise NeurovisError(f"caption {self.name!r} must be a non-empty list of token ids ≥ 0, "
                                f"got {list(ids.reshape(-1).tolist())[:8]}")
        if self.start_token < 0:
            raise NeurovisError(f"start_token must be ≥ 0, got {self.start_token}")
        object.__setattr__(self, "tokens", ids.long())

    def word_log_probs(self, x: torch.Tensor, space: PixelSpace) -> torch.Tensor:
        """``log p(caption_t | caption_<t, image)`` ``(B, T)`` for images ``x`` in ``space``."""
        reader = self.features if self.features is not None else self.captioner
        target = self.input_space or getattr(reader, "pixel_space", None)
        xin = PixelAdapter(space, target)(x) if isinstance(target, PixelSpace) else x
        inputs = self.features(xin) if self.features is not None else xin
        if isinstance(inputs, (tuple, list)):
            inputs = inputs[0]
        batch, words = x.shape[0], self.tokens.to(x.device)
        fed = torch.cat([words.new_tensor([self.start_token]), words[:-1]]).expand(batch, -1)
        logp = self.captioner(inputs, fed)
        steps = words.numel()
        if not isinstance(logp, torch.Tensor) or logp.dim() != 3 or tuple(logp.shape[:2]) != (batch, steps):
            got = tuple(logp.shape) if isinstance(logp, torch.Tensor) else type(logp).__name__
            raise NeurovisError(f"captioner {type(self.captioner).__name__} must return log-probabilities of shape "
                                f"({batch}, {steps}, vocabulary), got {got}")
        if int(words.max()) >= logp.shape[2]:
            raise NeurovisError(f"caption {self.name!r} has token {int(words.max())}, but the captioner's vocabulary "
                                f"has {logp.shape[2]} words")
        return logp.gather(2, words.expand(batch, -1).unsqueeze(2)).squeeze(2)

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        words = self.word_log_probs(x, space)
        total = words.sum(1)
        return ConditionResult(total, words.detach().exp().mean(1), total.detach())

    def modules(self) -> list[nn.Module]:
        return [self.captioner] + ([self.features] if self.features is not None else [])

    def describe(self) -> dict[str, Any]:
        return {
            "type": "caption",
            "name": self.name,
            "text": self.text,
            "caption": [int(t) for t in self.tokens],
            "start_token": self.start_token,
            "captioner": type(self.captioner).__name__,
            "features": type(self.features).__name__ if self.features is not None else None,
        }

    @property
    def prob_meaning(self) -> str:
        return "mean over the caption's words of p(word | previous words, image)"

    @staticmethod
    def sampling_defaults() -> dict[str, Any]:
        """The paper's caption settings (:data:`CAPTION_SETTINGS`), a fresh copy."""
        return dict(CAPTION_SETTINGS)
