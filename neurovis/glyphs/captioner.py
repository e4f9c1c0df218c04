"""A small image captioner for the glyph world: the offline stand-in for LRCN (paper §3.5).

Every world image has one true caption, ``"a <colour> <shape> on <background> <eos>"``
("a yellow crescent on stripes"), built from what the world knows about it
(:func:`glyph_caption`). :class:`GlyphCaptioner` is LRCN's design at glyph size, read
twice: a frozen image network's features (LRCN: CaffeNet's fc8; here the glyph encoder's
post-ReLU fc7, the network trained on the 64 modes whose fc6 is the generator's code) are a
*static input* to a GRU language model at every step; a second reader, a small conv net of
its own, feeds a second GRU; the captioner returns the readers' geometric mean,
renormalised: ``log p(word_t | words_<t, image)`` over :data:`VOCABULARY` (token 0 =
``<eos>``, also the start token, as in LRCN). It is a ``captioner(images, tokens) -> (B, T,
V)`` for :class:`~neurovis.CaptionCondition` and reads 64×64 RGB [0, 1] images itself (its
``pixel_space``).

It is trained (:func:`train_glyph_captioner`, ``python scripts/train_glyph_captioner.py``)
by teacher forcing on fresh world images each step, each reader with its own loss, with the
blur/noise degradations the glyph classifier and oracle were trained with, so that it reads
the generator's soft images too; about 8 minutes on two CPU cores (the encoder is frozen).
It is separate from the oracle that judges the samples (:func:`neurovis.load_oracle`): the
bench measures one network with another. Why two readers: the sampler searches for images
that the captioner calls "a cyan cross", and finds, for either reader alone, images that
are not (the encoder reader takes blurred cyan squares and hearts for crosses; the conv
reader, trained from scratch, even red squares); images that fool both are rarer
(``docs/captions.md``).

Because every training caption names the background, a caption that stops after the shape
(``"a blue ring"``) is scored as the *beginning* of a sentence, without ``<eos>``:
``log p(a, blue, ring | image)``, the probability that the image's caption starts that way
(:func:`glyph_caption_tokens`). A caption with its background gets ``<eos>``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurovis.caption import CaptionCondition
from neurovis.errors import NeurovisError
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.checkpoints import load_payload
from neurovis.glyphs.nets import WEIGHTS_DIR, load_glyph_encoder
from neurovis.glyphs.recipes.classifier import blur_noise_augment
from neurovis.glyphs.shapes import SHAPES
from neurovis.glyphs.world import BACKGROUNDS, COLOURS
from neurovis.pixels import RGB01

CAPTIONER_FILE = "glyph_captioner.pt"
CAPTIONER_KIND = "captioner"
PAYLOAD_FORMAT = "neurovis.glyphs/1"
RETRAIN_COMMAND = "python scripts/train_glyph_captioner.py"

BACKGROUND_WORDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checks")
"""The word for each background style, aligned with :data:`~neurovis.glyphs.world.BACKGROUNDS`."""
assert len(BACKGROUND_WORDS) == len(BACKGROUNDS)

EOS = 0
VOCABULARY: tuple[str, ...] = ("<eos>", "a", *COLOURS, *SHAPES, "on", *BACKGROUND_WORDS)
"""The captioner's words, index = token id; ``<eos>`` (0) ends a caption and starts one."""
_INDEX = {w: i for i, w in enumerate(VOCABULARY)}
CAPTION_FORM = "a <colour> <shape> [on <background>]"


def glyph_caption(colour: int, shape: int, background: int) -> str:
    """The true caption of a glyph, e.g. ``"a yellow crescent on stripes"``."""
    return f"a {COLOURS[colour]} {SHAPES[shape]} on {BACKGROUND_WORDS[background]}"


def _words(caption: str) -> list[str]:
    """Lower-case words; ``_`` separates words as in LRCN's sentences; "an" reads as "a"."""
    return ["a" if w == "an" else w for w in caption.replace("_", " ").lower().split()]


def parse_glyph_caption(caption: str) -> tuple[int, int, int | None]:
    """``(colour, shape, background or None)`` of a caption of the form :data:`CAPTION_FORM`
    ("an" may stand for "a": "an orange heart").

    Raises:
        NeurovisError: one line naming unknown words, or the form a caption must take.
    """
    words = _words(caption)
    unknown = [w for w in words if w not in _INDEX or w == "<eos>"]
    if unknown:
        raise NeurovisError(f"the glyph captioner does not know {', '.join(map(repr, unknown))}; its words: "
                            f"colours {'/'.join(COLOURS)}, shapes {'/'.join(SHAPES)}, backgrounds "
                            f"{'/'.join(BACKGROUND_WORDS)}, as in '{CAPTION_FORM}'")
    ok = (len(words) in (3, 5) and words[0] == "a" and words[1] in COLOURS and words[2] in SHAPES
          and (len(words) == 3 or (words[3] == "on" and words[4] in BACKGROUND_WORDS)))
    if not ok:
        raise NeurovisError(f"caption {caption!r} is not of the glyph captioner's form '{CAPTION_FORM}', "
                            "e.g. 'a blue ring' or 'a yellow crescent on stripes'")
    background = BACKGROUND_WORDS.index(words[4]) if len(words) == 5 else None
    return COLOURS.index(words[1]), SHAPES.index(words[2]), background


def glyph_caption_tokens(caption: str) -> list[int]:
    """Token ids of a glyph caption for :class:`~neurovis.CaptionCondition`: the words, then
    ``<eos>`` only when the caption is complete (names its background); ``"a blue ring"``
    is scored as a sentence's first three words (every training caption goes on to the
    background, so ``<eos>`` after the shape would be improbable for any image)."""
    parse_glyph_caption(caption)
    words = _words(caption)
    return [_INDEX[w] for w in words] + ([EOS] if len(words) == 5 else [])


def caption_batch_tokens(colours: Tensor, shapes: Tensor, backgrounds: Tensor) -> Tensor:
    """``(N, 6)`` token ids of the true captions ``a C S on B <eos>`` of a batch."""
    n = colours.shape[0]
    a = torch.full((n,), _INDEX["a"], dtype=torch.long)
    on = torch.full((n,), _INDEX["on"], dtype=torch.long)
    eos = torch.full((n,), EOS, dtype=torch.long)
    c = colours.long().cpu() + _INDEX[COLOURS[0]]
    s = shapes.long().cpu() + _INDEX[SHAPES[0]]
    b = backgrounds.long().cpu() + _INDEX[BACKGROUND_WORDS[0]]
    return torch.stack([a, c, s, on, b, eos], 1)


ARCH: dict[str, Any] = {
    "readers": ["encoder", "trunk"],
    "encoder": {"feature": 128, "embed": 32, "hidden": 128},
    "trunk": {"channels": [24, 48, 64, 96], "feature": 64, "embed": 16, "hidden": 96},
}
"""Default architecture: two readers, each an image feature into its own GRU language model.

* ``encoder``: the frozen glyph encoder's post-ReLU fc7 (512-d) projected to 128-d, 32-d
  word embeddings, a 128-unit GRU (LRCN's design; about 0.2 M trainable weights).
* ``trunk``: its own small BatchNorm conv net (3×3 convs 24-48-64-96, the first with
  stride 2, two max-pools; mean and max pooled), projected to 64-d, 16-d embeddings, a
  96-unit GRU (about 0.17 M weights), trained with the other reader.

The captioner's distribution of each next word is the readers' geometric mean, renormalised
(:meth:`GlyphCaptioner.forward`; a product of experts, each to the power ½): an image gets a
caption's probability only when both readers give it. The sampler looks for images the captioner calls "a cyan cross"; alone,
each reader is fooled by images that are not (on 20 chains of "a cyan cross": 0.47 of
the encoder reader's kept samples are cyan crosses, 0.27 of the trunk reader's), the
product 0.88 (``docs/captions.md``)."""

LEGACY_ARCH_KEYS = {"feature_layer", "feature", "embed", "hidden"}
"""An architecture written before the readers (``{"feature_layer": "relu7", ...}``): one
encoder reader, its weights at the top level of the state dict."""


def _is_legacy(arch: dict[str, Any] | None) -> bool:
    """Whether ``arch`` is a single-reader architecture of the first format."""
    return arch is not None and set(arch) <= LEGACY_ARCH_KEYS


class _LanguageHead(nn.Module):
    """An image feature ``(B, width)`` and tokens ``(B, T)`` -> ``(B, T, V)`` log-probabilities:
    the feature projected, then a GRU over the words with the feature as a static input at
    every step and, through ``init_state``, as its initial state."""

    def __init__(self, width: int, feature: int, embed: int, hidden: int) -> None:
        super().__init__()
        v = len(VOCABULARY)
        self.project = nn.Sequential(nn.Linear(width, feature), nn.ReLU())
        self.init_state = nn.Linear(feature, hidden)
        self.embed = nn.Embedding(v, embed)
        self.gru = nn.GRU(embed + feature, hidden, batch_first=True)
        self.out = nn.Linear(hidden, v)

    def forward(self, image_features: Tensor, tokens: Tensor) -> Tensor:
        feat = self.project(image_features)
        words = self.embed(tokens.long())
        static = feat.unsqueeze(1).expand(-1, tokens.shape[1], -1)
        h0 = torch.tanh(self.init_state(feat)).unsqueeze(0).contiguous()
        out, _ = self.gru(torch.cat([words, static], 2), h0)
        return F.log_softmax(self.out(out), -1)


def _trunk(channels: Sequence[int]) -> nn.Sequential:
    """(B, 3, 64, 64) -> (B, channels[-1], 8, 8): 3×3 conv-BN-ReLU blocks, the first with
    stride 2, max-pools after the second and third."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip([3, *channels[:-1]], channels)):
        layers += [nn.Conv2d(cin, cout, 3, stride=2 if i == 0 else 1, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU()]
        if i in (1, 2):
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class GlyphCaptioner(nn.Module):
    """``(images (B, 3, 64, 64) RGB [0, 1], tokens (B, T)) -> (B, T, V)`` log-probabilities.

    LRCN's design at glyph size, read twice: each *reader* turns the image into a feature
    that feeds its own recurrent language model as a static input at every step and as its
    initial state (:data:`ARCH`): ``encoder``, the frozen glyph encoder's post-ReLU fc7
    (:func:`~neurovis.glyphs.nets.load_glyph_encoder`, the network trained on the 64 modes
    whose fc6 is the generator's code; LRCN reads CaffeNet's fc8), and ``trunk``, a small
    conv net of its own. Entry ``[b, t]`` is the distribution of the next word after
    ``tokens[b, :t+1]`` (the start token ``<eos>`` and the words so far): the geometric
    mean of the readers' distributions, renormalised (their log-probabilities averaged,
    then normalised: a product of experts), so a caption is probable only where every
    reader finds it so.

    Args:
        encoder: the frozen glyph encoder (kept in eval mode, never trained here).
        arch: see :data:`ARCH` (an older single-reader architecture is read as one
            ``encoder`` reader).
    """

    def __init__(self, encoder: nn.Module, arch: dict[str, Any] | None = None) -> None:
        super().__init__()
        arch = dict(ARCH if arch is None else arch)
        if _is_legacy(arch):
            if arch.get("feature_layer", "relu7") != "relu7":
                raise NeurovisError(f"unknown glyph captioner feature layer {arch.get('feature_layer')!r}")
            arch = {"readers": ["encoder"], "encoder": {k: arch[k] for k in ("feature", "embed", "hidden")}}
        readers = list(arch.get("readers", []))
        if not readers or any(r not in ("encoder", "trunk") for r in readers):
            raise NeurovisError(f"glyph captioner readers must be 'encoder' and/or 'trunk', got {readers}")
        self.arch = arch
        self.readers = readers
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.heads = nn.ModuleDict()
        if "encoder" in readers:
            a = arch["encoder"]
            self.heads["encoder"] = _LanguageHead(self.encoder.fc7.out_features, a["feature"], a["embed"], a["hidden"])
        if "trunk" in readers:
            a = arch["trunk"]
            self.trunk = _trunk(a["channels"])
            self.heads["trunk"] = _LanguageHead(2 * a["channels"][-1], a["feature"], a["embed"], a["hidden"])
        self.pixel_space = RGB01.with_size((64, 64))
        self.vocabulary = VOCABULARY

    def train(self, mode: bool = True) -> "GlyphCaptioner":
        super().train(mode)
        self.encoder.eval()  # frozen, always as it was trained
        return self

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The captioner's own weights (the encoder's are shipped in their own file)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def reader_features(self, images: Tensor) -> dict[str, Tensor]:
        """Each reader's image feature ``(B, width)``, before its projection."""
        out = {}
        if "encoder" in self.heads:
            enc = self.encoder
            out["encoder"] = enc.relu7(enc.fc7(enc.encode(images)))
        if "trunk" in self.heads:
            t = self.trunk(images)
            out["trunk"] = torch.cat([t.mean((2, 3)), t.amax((2, 3))], 1)
        return out

    def reader_log_probs(self, images: Tensor, tokens: Tensor) -> dict[str, Tensor]:
        """Each reader's own ``(B, T, V)`` log-probabilities (trained each with its own loss)."""
        return {name: self.heads[name](feat, tokens) for name, feat in self.reader_features(images).items()}

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        per_reader = list(self.reader_log_probs(images, tokens).values())
        if len(per_reader) == 1:
            return per_reader[0]
        return F.log_softmax(torch.stack(per_reader).mean(0), -1)

    def caption(self, images: Tensor, max_words: int = 8) -> list[str]:
        """Greedy captions of ``images`` (for checks and reports)."""
        tokens = torch.full((images.shape[0], 1), EOS, dtype=torch.long, device=images.device)
        done = torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        with torch.no_grad():
            for _ in range(max_words):
                nxt = self(images, tokens)[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
                done |= nxt == EOS
                tokens = torch.cat([tokens, nxt[:, None]], 1)
                if bool(done.all()):
                    break
        return [" ".join(VOCABULARY[t] for t in row[1:] if t != EOS) for row in tokens.tolist()]


@dataclass(frozen=True)
class CaptionerConfig:
    """Training recipe: ``steps`` Adam steps of ``batch_size`` fresh world images (stream
    ``seed``), cosine lr from ``lr`` to 0, blur/noise degradations as the classifier's."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    eval_n: int = 1024
    eval_seed: int = 987657321


CAPTIONER_CONFIG = CaptionerConfig()


def _teacher_forcing(tokens: Tensor) -> Tensor:
    return torch.cat([torch.full_like(tokens[:, :1], EOS), tokens[:, :-1]], 1)


def train_glyph_captioner(config: CaptionerConfig = CAPTIONER_CONFIG, device: str | torch.device = "cpu",
                          log: Callable[[str], None] | None = None) -> tuple[GlyphCaptioner, dict[str, float]]:
    """Train a :class:`GlyphCaptioner` from scratch; return it (eval mode) and its metrics
    on held-out world images (:func:`evaluate_glyph_captioner`) plus ``train_seconds``."""
    torch.manual_seed(config.seed)
    model = GlyphCaptioner(load_glyph_encoder()).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    world, g = GlyphWorld(), torch.Generator().manual_seed(config.seed + 1)
    started = time.perf_counter()
    model.train()
    for step, batch in enumerate(world.stream(config.batch_size, seed=config.seed, n_batches=config.steps)):
        for group in opt.param_groups:
            group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        x = blur_noise_augment(batch.images, g).to(device)
        tokens = caption_batch_tokens(batch.colours, batch.shapes, batch.backgrounds).to(device)
        per_reader = model.reader_log_probs(x, _teacher_forcing(tokens))
        loss = sum(F.nll_loss(logp.flatten(0, 1), tokens.flatten()) for logp in per_reader.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None and (step % 100 == 0 or step == config.steps - 1):
            log(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - started:.0f}s")
    model.eval()
    metrics = evaluate_glyph_captioner(model, config.eval_n, config.eval_seed)
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    return model, metrics


def evaluate_glyph_captioner(model: GlyphCaptioner, n: int = 1024, seed: int = 987657321) -> dict[str, float]:
    """On ``n`` held-out world images: the share whose greedy caption is exactly true
    (``caption_accuracy``), whose colour and shape words are right (``mode_accuracy``),
    the mean ``log p(true caption)`` and the mean per-word probability of the true
    caption's words (``mean_word_prob``)."""
    batch = GlyphWorld().sample(n, seed=seed)
    device = next(model.parameters()).device
    x = batch.images.to(device)
    tokens = caption_batch_tokens(batch.colours, batch.shapes, batch.backgrounds).to(device)
    with torch.no_grad():
        logp = model(x, _teacher_forcing(tokens)).gather(2, tokens.unsqueeze(2)).squeeze(2)
    said = model.caption(x)
    truth = [glyph_caption(int(c), int(s), int(b)) for c, s, b in zip(batch.colours, batch.shapes, batch.backgrounds)]
    modes = [" ".join(a.split()[:3]) == " ".join(t.split()[:3]) for a, t in zip(said, truth)]
    return {
        "caption_accuracy": round(sum(a == t for a, t in zip(said, truth)) / n, 5),
        "mode_accuracy": round(sum(modes) / n, 5),
        "mean_log_p": round(float(logp.sum(1).mean()), 5),
        "mean_word_prob": round(float(logp.exp().mean()), 5),
        "eval_n": n,
    }


def captioner_payload(model: GlyphCaptioner, metrics: dict[str, Any], config: CaptionerConfig) -> dict[str, Any]:
    """The shipped fp16 payload (format as the other glyph weights)."""
    return {
        "format": PAYLOAD_FORMAT,
        "kind": CAPTIONER_KIND,
        "state_dict": {k: v.detach().cpu().half() for k, v in model.trainable_state_dict().items()},
        "encoder": "glyph_encoder.pt (neurovis.glyphs.nets.load_glyph_encoder), frozen",
        "arch": dict(model.arch),
        "vocabulary": list(VOCABULARY),
        "metrics": dict(metrics),
        "config": dataclasses.asdict(config),
    }


def default_captioner_path() -> Path:
    return WEIGHTS_DIR / CAPTIONER_FILE


def load_glyph_captioner(path: str | Path | None = None, device: str | torch.device = "cpu") -> GlyphCaptioner:
    """The shipped glyph captioner (``neurovis/glyphs/weights/glyph_captioner.pt``), float32, eval
    mode, with ``metrics`` and ``weights_path``.

    Raises:
        NeurovisError: the file is missing or is not a glyph captioner (one line naming the
            retrain script).
    """
    p = Path(path) if path is not None else default_captioner_path()
    if not p.is_file():
        raise NeurovisError(f"glyph captioner weights not found at {p}; retrain with {RETRAIN_COMMAND}")
    try:
        state, meta = load_payload(p)
    except Exception as err:  # noqa: BLE001 - not a torch file, or not weights_only-safe
        raise NeurovisError(f"cannot read glyph captioner weights {p} ({type(err).__name__}); "
                            f"retrain with {RETRAIN_COMMAND}") from None
    if meta.get("format") != PAYLOAD_FORMAT or meta.get("kind") != CAPTIONER_KIND \
            or list(meta.get("vocabulary", [])) != list(VOCABULARY):
        raise NeurovisError(f"{p} is not a glyph captioner payload of this version; retrain with {RETRAIN_COMMAND}")

    arch = meta.get("arch")
    model = GlyphCaptioner(load_glyph_encoder(), arch)
    if _is_legacy(arch):  # one reader, its weights at the top level
        state = {f"heads.encoder.{k}": v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("encoder.") for k in missing):
        raise NeurovisError(f"{p} does not fit the glyph captioner ({len(unexpected)} unexpected, "
                            f"{len(missing)} missing weights); retrain with {RETRAIN_COMMAND}")
    model.metrics = dict(meta.get("metrics", {}))
    model.weights_path = str(p)
    return model.to(device).eval()


def glyph_caption_condition(caption: str, captioner: GlyphCaptioner | None = None,
                            device: str | torch.device = "cpu") -> Any:
    """A :class:`~neurovis.CaptionCondition` for a glyph caption (``"a blue ring"``) with the
    shipped captioner (or ``captioner``)."""
    tokens = glyph_caption_tokens(caption)
    model = captioner if captioner is not None else load_glyph_captioner(device=device)
    text = " ".join(caption.replace("_", " ").lower().split())
    return CaptionCondition(model, tokens, start_token=EOS, name=text, text=text)


__all__: Sequence[str] = (
    "BACKGROUND_WORDS", "CAPTIONER_CONFIG", "CaptionerConfig", "GlyphCaptioner", "VOCABULARY", "caption_batch_tokens",
    "evaluate_glyph_captioner", "glyph_caption", "glyph_caption_condition", "glyph_caption_tokens",
    "load_glyph_captioner", "parse_glyph_caption", "train_glyph_captioner",
)
