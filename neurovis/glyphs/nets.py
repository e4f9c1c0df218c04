"""Networks of the glyph world (SPEC §5): classifier, fine-label encoder and mode oracle.

All three take images as float tensors ``(N, 3, 64, 64)``, **RGB, values in [0, 1]**, no
mean/std normalisation (exactly what :class:`neurovis.glyphs.GlyphWorld` renders). Other
resolutions run too (the fully connected layers see an adaptive-pooled 3x3 grid), but
the weights were trained at 64x64.

- ``glyphs`` classifier (:func:`load_glyph_classifier`): AlexNet-shaped, 16 classes of
  the default partition; the condition network C.
- ``glyph_encoder`` (:func:`load_glyph_encoder`): same architecture trained on the 64
  fine modes; its post-ReLU fc6 code (``relu6``, 512-d) is the code layer h a generator
  prior learns to invert (the encoder E), pool5 (64x3x3) its spatial layer E1.
- oracle (:func:`load_glyph_oracle`): a different (BatchNorm, three-head) network that
  names the mode of an image, or says it shows no glyph, to judge samples independently
  of C and E.

Shipped weights live in ``neurovis/glyphs/weights/``; retrain with ``python scripts/train_glyphs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from neurovis._utils.weights import load_weights_file
from neurovis.errors import NeurovisError
from neurovis.glyphs import COLOURS, SHAPES, GlyphWorld

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CLASSIFIER_FILE = "glyph_classifier.pt"
ENCODER_FILE = "glyph_encoder.pt"
ORACLE_FILE = "glyph_oracle.pt"
RETRAIN_COMMAND = "python scripts/train_glyphs.py"
CHECKPOINT_FORMAT = "neurovis.glyphs/1"

INPUT_SIZE = (64, 64)
INPUT_RANGE = (0.0, 1.0)
CHANNEL_ORDER = "RGB"


class GlyphAlexNet(nn.Module):
    """AlexNet-shaped CNN for 64x64 glyph images.

    Layers (``named_modules()`` order, output shapes for a 64x64 input)::

        conv1 5x5 s2 p2, 3->c1      (c1, 32, 32)  relu1  pool1 3x3 s2 -> (c1, 15, 15)
        conv2 5x5 p2, c1->c2        (c2, 15, 15)  relu2  pool2 3x3 s2 -> (c2, 7, 7)
        conv3 3x3 p1, c2->c3        (c3, 7, 7)    relu3
        conv4 3x3 p1, c3->c4        (c4, 7, 7)    relu4
        conv5 3x3 p1, c4->c5        (c5, 7, 7)    relu5  pool5 3x3 s2 -> (c5, 3, 3)
        fc6 (c5*9 -> fc)  relu6   fc7 (fc -> fc)  relu7   fc8 (fc -> n_outputs, logits)

    Defaults c = 32-64-96-96-64, fc = 512. conv5 is 7x7, so its centre is position 3.
    The ReLUs are separate modules and **not in-place**, so a forward hook on ``conv5``
    or ``fc6`` sees the pre-ReLU values and one on ``relu6`` the post-ReLU code.

    Input: (N, 3, H, W) float, RGB in [0, 1] (trained at 64x64). Output: (N, n_outputs) logits.
    """

    def __init__(
        self,
        n_outputs: int = 16,
        channels: tuple[int, int, int, int, int] = (32, 64, 96, 96, 64),
        fc: int = 512,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.arch: dict[str, Any] = {"n_outputs": n_outputs, "channels": list(channels), "fc": fc}
        self.conv1 = nn.Conv2d(3, c1, 5, stride=2, padding=2)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(c5 * 9, fc)
        self.relu6 = nn.ReLU()
        self.fc7 = nn.Linear(fc, fc)
        self.relu7 = nn.ReLU()
        self.fc8 = nn.Linear(fc, n_outputs)
        # Names already are conv1..fc8; aliases for the paper's post-ReLU names.
        self.layer_aliases: dict[str, str] = {}
        self.class_names: list[str] = [str(i) for i in range(n_outputs)]
        self.input_size = (3, *INPUT_SIZE)  # (C, H, W), as list_layers takes it
        self.input_range = INPUT_RANGE
        self.channel_order = CHANNEL_ORDER
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)

    def pool5_features(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> pool5 output (N, c5, 3, 3) (post-ReLU, spatial)."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.conv3(x))
        x = self.relu4(self.conv4(x))
        x = self.pool5(self.relu5(self.conv5(x)))
        if x.shape[-2:] != (3, 3):
            x = F.adaptive_max_pool2d(x, (3, 3))
        return x

    def encode(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> post-ReLU fc6 code (N, fc), values >= 0."""
        return self.relu6(self.fc6(torch.flatten(self.pool5_features(x), 1)))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> logits (N, n_outputs)."""
        h = self.encode(x)
        return self.fc8(self.relu7(self.fc7(h)))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class GlyphOracle(nn.Module):
    """Names the mode (shape and colour) of a glyph image, or says it shows no glyph.

    A small VGG-style BatchNorm network (3x3 convs 24-48-96-128, global average and max
    pooling) with three heads on the same 256-d pooled features: ``shape_head`` (8 shapes),
    ``colour_head`` (8 colours) and ``glyph_head`` (one logit: a glyph of the world vs no
    glyph). Trained on world images with mild blur and noise augmentation (so that it can
    judge soft generator outputs too); the glyph head was then fine-tuned, with the rest,
    on off-world negatives: textures, noise, blends of two glyph images and pixel-space
    activation-maximisation images (:func:`neurovis.glyphs.recipes.classifier.oracle_negatives`).

    Input: (N, 3, H, W) float, RGB in [0, 1] (trained at 64x64).

    - ``forward`` returns (N, 64) mode log-probabilities ``log p(shape) + log p(colour)``
      (mode = shape * 8 + colour), **given that the image shows a glyph**: unchanged from
      the two-head oracle, each row sums to 1 in probability, also for non-glyph images.
    - :meth:`glyph_prob` returns p(glyph) (N,).
    - :meth:`predict` returns ``(modes, confidence)`` with confidence
      ``p(glyph) * p(shape) * p(colour)``: on world images p(glyph) is ~1 and the figures
      are as before; on textures, noise, blends and pixel-space feature visualisations the
      confidence is ~0 (the mode is still the best guess of the two mode heads). So
      "confidence >= 0.9" (realism) means "a glyph of this mode", not "closest mode".

    ``no_glyph=False`` builds the older two-head oracle (checkpoints without a glyph head
    load as such; their confidence is ``p(shape) * p(colour)``).
    """

    def __init__(self, n_shapes: int = len(SHAPES), n_colours: int = len(COLOURS), no_glyph: bool = True) -> None:
        super().__init__()
        self.arch: dict[str, Any] = {"n_shapes": n_shapes, "n_colours": n_colours, "no_glyph": bool(no_glyph)}
        self.n_shapes, self.n_colours = n_shapes, n_colours
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
            _block(24, 48), nn.MaxPool2d(2),   # 16x16
            _block(48, 96), nn.MaxPool2d(2),   # 8x8
            _block(96, 128),
        )
        self.shape_head = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, n_shapes))
        self.colour_head = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, n_colours))
        self.glyph_head = (nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))
                           if no_glyph else None)
        self.shape_names = list(SHAPES[:n_shapes])
        self.colour_names = list(COLOURS[:n_colours])
        self.class_names = [f"{c} {s}" for s in self.shape_names for c in self.colour_names]
        self.layer_aliases: dict[str, str] = {}
        self.input_size = (3, *INPUT_SIZE)  # (C, H, W), as list_layers takes it
        self.input_range = INPUT_RANGE
        self.channel_order = CHANNEL_ORDER

    @property
    def has_glyph_head(self) -> bool:
        """Whether this oracle has the explicit glyph / no-glyph answer."""
        return self.glyph_head is not None

    def pooled(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> pooled features (N, 256) (mean and max over positions)."""
        f = self.features(x)
        return torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1)

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) RGB [0, 1] -> (shape logits (N, 8), colour logits (N, 8))."""
        f = self.pooled(x)
        return self.shape_head(f), self.colour_head(f)

    def all_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, 3, H, W) -> (shape logits (N, 8), colour logits (N, 8), glyph logit (N,)).

        The glyph logit is ``+inf`` (p(glyph) = 1) for an oracle without a glyph head."""
        f = self.pooled(x)
        g = (self.glyph_head(f)[:, 0] if self.glyph_head is not None
             else torch.full((f.shape[0],), float("inf"), device=f.device, dtype=f.dtype))
        return self.shape_head(f), self.colour_head(f), g

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> (N, 64) mode log-probabilities (given a glyph)."""
        s, c = self.heads(x)
        ls, lc = F.log_softmax(s, 1), F.log_softmax(c, 1)
        return (ls[:, :, None] + lc[:, None, :]).flatten(1)

    def _eval_run(self, images: Tensor, batch_size: int, fn) -> list:
        was_training = self.training
        self.eval()
        out = []
        try:
            for chunk in images.split(batch_size):
                out.append(fn(chunk.to(next(self.parameters()).device, torch.float32)))
        finally:
            self.train(was_training)
        return out

    @torch.no_grad()
    def glyph_prob(self, images: Tensor, batch_size: int = 512) -> Tensor:
        """(N, 3, H, W) RGB [0, 1] -> (N,) p(the image shows a glyph of the world), on CPU.
        All ones for an oracle without a glyph head."""
        out = self._eval_run(images, batch_size, lambda x: torch.sigmoid(self.all_heads(x)[2]).cpu())
        return torch.cat(out) if out else torch.empty(0)

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
        """Name the mode of each image.

        Args:
            images: (N, 3, H, W) float RGB in [0, 1].
        Returns:
            ``(modes, confidence)``: (N,) int64 mode = shape * 8 + colour (the best guess,
            also for a non-glyph image) and (N,) float ``p(glyph) * p(shape) * p(colour)``
            of that mode, in [0, 1]: ~0 for images that show no glyph. Runs in eval mode
            (the module's training flag is restored afterwards).
        """
        def run(x: Tensor) -> tuple[Tensor, Tensor]:
            s, c, g = self.all_heads(x)
            ls, lc = F.log_softmax(s, 1), F.log_softmax(c, 1)
            best, m = (ls[:, :, None] + lc[:, None, :]).flatten(1).max(1)
            return m.cpu(), (best.exp() * torch.sigmoid(g)).cpu()

        out = self._eval_run(images, batch_size, run)
        if not out:
            return torch.empty(0, dtype=torch.int64), torch.empty(0)
        return torch.cat([m for m, _ in out]), torch.cat([c for _, c in out])

    @torch.no_grad()
    def predict_parts(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(N, 3, H, W) RGB [0, 1] -> (shapes, p_shape, colours, p_colour), each (N,)
        (given a glyph; see :meth:`glyph_prob` for p(glyph))."""
        was_training = self.training
        self.eval()
        try:
            s, c = self.heads(images.to(next(self.parameters()).device, torch.float32))
        finally:
            self.train(was_training)
        ps, shapes = F.softmax(s, 1).max(1)
        pc, colours = F.softmax(c, 1).max(1)
        return shapes.cpu(), ps.cpu(), colours.cpu(), pc.cpu()


# ---------------------------------------------------------------------------- checkpoints
def build_glyph_net(kind: str, arch: dict[str, Any] | None = None) -> nn.Module:
    """A fresh, untrained network of ``kind`` in {"classifier", "encoder", "oracle"}."""
    arch = dict(arch or {})
    if kind == "classifier":
        arch.setdefault("n_outputs", GlyphWorld().n_classes)
        net: nn.Module = GlyphAlexNet(**_alex_kwargs(arch))
    elif kind == "encoder":
        arch.setdefault("n_outputs", GlyphWorld().n_modes)
        net = GlyphAlexNet(**_alex_kwargs(arch))
    elif kind == "oracle":
        net = GlyphOracle(**arch)  # a checkpoint's arch without "no_glyph" is a two-head oracle
    else:
        raise ValueError(f"unknown glyph network kind {kind!r}")
    _set_names(net, kind)
    return net


def _alex_kwargs(arch: dict[str, Any]) -> dict[str, Any]:
    out = dict(arch)
    if "channels" in out:
        out["channels"] = tuple(out["channels"])
    return out


def _set_names(net: nn.Module, kind: str) -> None:
    world = GlyphWorld()
    if kind == "classifier":
        net.class_names = list(world.class_names)
    elif kind == "encoder":
        net.class_names = list(world.mode_names)
        net.code_layer = "relu6"  # post-ReLU fc6, the code h a generator inverts
        net.spatial_layer = "pool5"
    net.glyph_kind = kind


def save_glyph_checkpoint(
    path: str | os.PathLike, net: nn.Module, kind: str, metrics: dict[str, Any], seed: int, **extra: Any
) -> Path:
    """Write ``net`` to ``path`` atomically (temp file, then ``os.replace``).

    The file is a dict readable with ``torch.load(weights_only=True)``: ``format``,
    ``kind``, ``arch``, ``state_dict``, ``partition`` (mode -> class), ``metrics``, ``seed``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "arch": dict(net.arch),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "partition": list(GlyphWorld().partition),
        "metrics": {k: float(v) if isinstance(v, (int, float)) else v for k, v in metrics.items()},
        "seed": int(seed),
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _load(kind: str, filename: str, path: str | os.PathLike | None, device: str | torch.device) -> nn.Module:
    p = Path(path) if path is not None else WEIGHTS_DIR / filename
    if not p.is_file():
        raise FileNotFoundError(f"glyph {kind} weights not found: {p} (retrain with: {RETRAIN_COMMAND})")
    ckpt = load_weights_file(p, f"glyph {kind} weights", f"retrain with: {RETRAIN_COMMAND}")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("kind") != kind:
        raise ValueError(f"{p} is not a neurovis glyph {kind} checkpoint (retrain with: {RETRAIN_COMMAND})")
    if kind == "classifier" and tuple(ckpt.get("partition") or ()) != GlyphWorld().partition:
        raise ValueError(f"{p} was trained on another partition than the default world's")
    try:
        arch = dict(ckpt["arch"])
        if kind == "oracle":
            arch.setdefault("no_glyph", False)  # oracles shipped before the glyph head
        net = build_glyph_net(kind, arch)
        # float16 payloads (the oracle's) are cast back to the float32 parameters by copy_
        net.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as err:
        detail = " ".join(str(err).split())[:160]
        raise NeurovisError(f"{p} holds damaged glyph {kind} weights ({type(err).__name__}: {detail}); "
                            f"retrain with: {RETRAIN_COMMAND}") from None
    net.metrics = dict(ckpt.get("metrics", {}))
    net.weights_path = str(p)
    return net.to(device).eval()


def load_glyph_classifier(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GlyphAlexNet:
    """The ``glyphs`` classifier (16 classes of the default world), in eval mode.

    Input (N, 3, 64, 64) RGB in [0, 1]; output (N, 16) logits. Raises
    ``FileNotFoundError`` naming the file and the retrain command if the weights are missing.
    """
    return _load("classifier", CLASSIFIER_FILE, path, device)  # type: ignore[return-value]


def load_glyph_encoder(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GlyphAlexNet:
    """The ``glyph_encoder`` (64 fine modes), in eval mode. Its code layer is ``relu6``
    (``net.encode(x)``, (N, 512), post-ReLU fc6); its spatial layer ``pool5`` (N, 64, 3, 3)."""
    return _load("encoder", ENCODER_FILE, path, device)  # type: ignore[return-value]


def load_glyph_oracle(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GlyphOracle:
    """The mode oracle, in eval mode: ``oracle.predict(images) -> (modes, confidence)``,
    confidence ~0 for images that show no glyph (see :class:`GlyphOracle`). The shipped
    file stores its state dict as float16; it loads as float32."""
    return _load("oracle", ORACLE_FILE, path, device)  # type: ignore[return-value]
