"""Priors in a generator's code space: PPGN-h family and DGN-AM (SPEC §1.1)."""

from __future__ import annotations

import copy
import hashlib
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from neurovis._utils.torch_utils import eval_mode
from neurovis.errors import NeurovisError
from neurovis.hooks.capture import run_to
from neurovis.method import RECOMMENDED_RESET_EVERY, Method
from neurovis.pixels import RGB01, PixelAdapter, PixelSpace
from neurovis.priors.base import Prior


def _code_shape(generator: nn.Module, code_shape: Sequence[int] | None) -> tuple[int, ...]:
    if code_shape is not None:
        return tuple(code_shape)
    declared = getattr(generator, "code_shape", None)
    if declared is not None:
        return tuple(declared)
    for module in generator.modules():
        if isinstance(module, nn.Linear):
            return (module.in_features,)
    raise NeurovisError(
        f"cannot tell the code size of {type(generator).__name__}; pass code_shape=(D,) "
        "or give the generator a code_shape attribute"
    )


def _pixel_space(generator: nn.Module, pixel_space: PixelSpace | None) -> PixelSpace:
    return pixel_space or getattr(generator, "pixel_space", None) or RGB01


_LOG_2PI = math.log(2.0 * math.pi)

CodeClip = tuple[float, float] | tuple[torch.Tensor, torch.Tensor]
"""A code range: two numbers, or per-unit bounds (tensors broadcastable to the code shape)."""


def _check_code_clip(code_clip: Any, code_shape: tuple[int, ...]) -> CodeClip | None:
    """``(low, high)`` as two floats, or as two float32 tensors of the code's shape when
    either is a tensor; low ≤ high everywhere and low < high somewhere."""
    if code_clip is None:
        return None
    try:
        low, high = code_clip
    except (TypeError, ValueError):
        raise NeurovisError(f"code_clip must be (low, high), got {code_clip!r}") from None
    if not isinstance(low, torch.Tensor) and not isinstance(high, torch.Tensor):
        if not float(low) < float(high):
            raise NeurovisError(f"code_clip must be (low, high) with low < high, got {code_clip}")
        return float(low), float(high)
    try:
        lo, hi = (torch.as_tensor(v, dtype=torch.float32).detach().cpu().expand(code_shape).clone() for v in (low, high))
    except RuntimeError:
        raise NeurovisError(f"per-unit code_clip bounds must fit the code shape {code_shape}") from None
    if not bool((lo <= hi).all()) or not bool((lo < hi).any()):
        raise NeurovisError("code_clip must have low ≤ high for every unit (and low < high for some)")
    return lo, hi


def encode_in_batches(encode: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                      batch_size: int = 256) -> torch.Tensor:
    """``encode`` over ``images`` ``(N, C, H, W)`` in chunks of ``batch_size``, without
    gradients; the codes concatenated, ``(N, *code_shape)``. The caller holds the networks
    in eval mode."""
    with torch.no_grad():
        return torch.cat([encode(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)])


START_BANK_FILE = "start_bank.pt"
"""Name of the start bank ``train-prior`` writes beside ``generator.pt``."""
START_BANK_FORMAT = "neurovis.start_bank/1"
START_BANK_SIZE = 1024
"""Codes of real images a start bank holds (the glyph world's and ``train-prior``'s)."""


def save_start_bank(path: str | Path, codes: torch.Tensor, **meta: Any) -> Path:
    """Write a start bank (codes ``(N, D)`` of real images, plus JSON-able ``meta`` such as
    where the images came from) atomically: a temporary file beside ``path``, then a
    rename, so a reader never sees half a bank. Read it with :func:`load_start_bank`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"format": START_BANK_FORMAT, "codes": codes.detach().float().cpu().contiguous(), **meta}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_start_bank(path: str | Path) -> torch.Tensor:
    """A start bank file (``{"format": "neurovis.start_bank/1", "codes": (N, D)}``, read
    with ``weights_only=True``) as a float32 tensor ``(N, D)``; give it to a prior with
    ``prior.with_start_codes(codes)``.

    Raises:
        NeurovisError: the file is missing or not a start bank (one line naming it).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        codes = payload["codes"]
        if payload.get("format") != START_BANK_FORMAT or not isinstance(codes, torch.Tensor) or codes.dim() < 2:
            raise ValueError
    except FileNotFoundError:
        raise NeurovisError(f"no start bank at {path}") from None
    except Exception:  # noqa: BLE001 - any unreadable file gets the same one line
        raise NeurovisError(f"{path} is not a neurovis start bank (a file with the codes of real images)") from None
    return codes.float()


def _check_start_codes(codes: Any, code_shape: tuple[int, ...]) -> torch.Tensor:
    """``codes`` as a float32 CPU tensor ``(N, *code_shape)``, N ≥ 1, all finite."""
    if not isinstance(codes, torch.Tensor):
        raise NeurovisError(f"start codes must be a tensor (N, {', '.join(map(str, code_shape))}), "
                            f"got {type(codes).__name__}")
    if codes.dim() != len(code_shape) + 1 or tuple(codes.shape[1:]) != code_shape or codes.shape[0] < 1:
        raise NeurovisError(f"start codes have shape {tuple(codes.shape)}; expected (N, {', '.join(map(str, code_shape))}) "
                            "with N ≥ 1: one code per real image")
    codes = codes.detach().to(device="cpu", dtype=torch.float32).clone()
    if not bool(torch.isfinite(codes).all()):
        raise NeurovisError("start codes contain NaN or Inf; encode finite images")
    return codes


class _GeneratorBase(Prior):
    """Shared parts of priors that decode a code ``h`` with a generator ``G``.

    ``start_codes`` (``None`` unless set by :meth:`with_start_codes` or
    :meth:`with_real_starts`): a bank of codes ``(N, *code_shape)`` that random starts and
    resets draw from instead of ``N(0, 1)``.
    """

    start_codes: torch.Tensor | None = None

    def __init__(
        self,
        generator: nn.Module,
        code_clip: CodeClip | None,
        pixel_space: PixelSpace | None,
        code_shape: Sequence[int] | None,
        clamp_pixels: bool = False,
    ) -> None:
        self.generator = generator
        self.pixel_space = _pixel_space(generator, pixel_space)
        self.code_shape = _code_shape(generator, code_shape)
        self.code_clip = _check_code_clip(code_clip, self.code_shape)
        self.clamp_pixels = bool(clamp_pixels)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        x = self.generator(h)
        if not self.clamp_pixels:
            return x
        return x + (self.pixel_space.clamp(x) - x).detach()  # shows the clip, passes the gradient straight through

    def clip(self, h: torch.Tensor) -> torch.Tensor:
        if self.code_clip is None:
            return h
        low, high = self.code_clip
        if not isinstance(low, torch.Tensor):
            return h.clamp(low, high)
        if low.device != h.device:  # per-unit bounds follow the chains' device once, not every step
            self.code_clip = low, high = low.to(h.device), high.to(h.device)
        return torch.minimum(torch.maximum(h, low), high)

    def initial_codes(self, rngs: Sequence[torch.Generator]) -> torch.Tensor:
        """One random start per chain, ``(len(rngs), *code_shape)``: ``N(0, 1)`` each, or,
        with :attr:`start_codes`, one of those codes per chain, drawn uniformly with the
        chain's own generator (so a chain's starts and resets do not depend on the others)."""
        if self.start_codes is None:
            return super().initial_codes(rngs)
        n = self.start_codes.shape[0]
        picks = [int(torch.randint(n, (1,), generator=g)) for g in rngs]
        return self.start_codes[picks].to(self.device)

    def with_start_codes(self, codes: torch.Tensor | None) -> "_GeneratorBase":
        """A copy of this prior (the same networks) whose random starts and resets draw one
        of ``codes`` ``(N, *code_shape)`` per chain instead of ``N(0, 1)`` (``None``: a copy
        without a start bank, starting from ``N(0, 1)``)."""
        if codes is not None:
            codes = _check_start_codes(codes, self.code_shape)
        out = copy.copy(self)
        out.start_codes = codes
        return out

    def with_real_starts(self, images: torch.Tensor, batch_size: int = 256) -> "_GeneratorBase":
        """A copy of this prior whose chains start (and reset) from the codes ``E(x)`` of
        real ``images`` ``(N, C, H, W)`` in :attr:`pixel_space`, one drawn per chain, as the
        paper starts its chains from a real image's code. ``N(0, 1)`` codes all decode to
        much the same near-blank image, so random starts send every chain into the same
        few modes. Measured on the glyph world (16 classes, 10 chains × 200 steps, codes of
        1,024 world images, resets every 10 steps; ``bench/facet_recall.py``): facet recall
        0.98 with Joint PPGN-h (0.62 with the same resets from ``N(0, 1)``), 0.81 with the
        shipped Noiseless Joint prior (0.45 with its defaults).

        Raises:
            NeurovisError: the prior cannot encode images (no encoder), or ``images`` are
                not a batch of 4-D images.
        """
        channels = self.pixel_space.n_channels
        if (not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] < 1
                or images.shape[1] != channels):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise NeurovisError(f"real starts need images (N, {channels}, H, W) in the prior's pixel space "
                                f"({self.pixel_space.name}), got {shape}")

        try:
            with eval_mode(self.modules()):
                codes = encode_in_batches(lambda x: self.encode(x.to(self.device)), images, batch_size)
        except NotImplementedError:
            raise NeurovisError(f"{type(self).__name__} has no encoder, so it cannot start chains from real images; "
                                "use a GeneratorPrior, or with_start_codes(codes)") from None
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise NeurovisError(f"the encoder could not read images of shape {tuple(images.shape)} ({first}); "
                                "give images of the size the prior's generator draws") from None
        return self.with_start_codes(codes)

    def _describe_start_codes(self) -> str:
        """The bank of start codes in words, with a digest so a resumed run can tell it apart."""
        codes = self.start_codes.contiguous()
        digest = hashlib.sha256(codes.numpy().tobytes()).hexdigest()[:12]
        return f"one of {codes.shape[0]} given codes (sha256 {digest})"

    def describe(self) -> dict[str, Any]:
        clip: Any = None
        if self.code_clip is not None:
            low, high = self.code_clip
            clip = ([float(low), float(high)] if not isinstance(low, torch.Tensor) else
                    {"per_unit": list(self.code_shape), "low_min": float(low.min()), "high_mean": float(high.mean()),
                     "high_max": float(high.max())})
        return {
            **super().describe(),
            "generator": type(self.generator).__name__,
            "code_clip": clip,
            "pixel_space": self.pixel_space.name,
            "clamp_pixels": self.clamp_pixels,
            "starts": "N(0, 1)" if self.start_codes is None else self._describe_start_codes(),
        }


class GeneratorPrior(_GeneratorBase):
    """(Noiseless) Joint PPGN-h: ``R_h(h) = E(G(h))``, the ε1 term ``E(G(h)) − h``.

    Args:
        generator: ``G``, codes ``(B, *code_shape)`` -> images in ``pixel_space``.
        encoder: ``E``, images in the generator's pixel space -> codes ``(B, *code_shape)``
            (e.g. :class:`LayerEncoder` over a classifier's post-ReLU fc6).
        code_clip: codes are clipped to this range after each step; ``(0, 30)`` is the
            paper's post-ReLU fc6 range. Either bound may be a tensor of the code's shape
            (a range per unit, e.g. each unit's largest value on real images:
            :func:`neurovis.glyphs.priors.unit_code_range`). ``None`` disables clipping.
        pixel_space: convention of G's images; default ``generator.pixel_space`` or RGB [0,1].
        code_shape: shape of a code; default from ``generator.code_shape`` or its first Linear.
        clamp_pixels: clip ``G(h)`` to the displayable range (RGB [0, 1], see
            :meth:`~neurovis.PixelSpace.clamp`) before the condition, the ε1 term and the
            stored samples see it, so a sample's probability is that of the image a report
            shows. The gradient passes the clip straight through (as if unclipped), so a
            saturated image still gives the chain a direction (measured on 6 glyph classes:
            recall 0.46 and acceptance 0.20; passing only the gradient that brings a pixel
            back into range gave 0.38 and 0.09). Clipped chains are more sensitive to
            last-bit differences (a 7e-6 difference in the codes grew to 0.3 in 3 steps).
            ``False`` (default) feeds G's raw output, as the reference code does.
    """

    default_eps = (1e-5, 1.0, 1e-17)
    treatment = "Noiseless Joint PPGN-h"
    """The treatment's name in descriptions (a generator trained with noise on h: "Joint PPGN-h")."""
    recommended = Method("recommended", (1e-5, 1.0, 1e-17), reset_every=RECOMMENDED_RESET_EVERY, starts="bank",
                         keep="activation")
    """The method :func:`neurovis.sample` uses by default: the paper's ε, chains started
    and restarted every 10 steps from the codes of real images (the prior's start bank,
    :meth:`with_real_starts`), hidden units kept by activation. Measured on the glyph world
    (16 classes, 10 chains × 200 steps): facet recall 0.97–0.98 against 0.47 with the
    paper's settings (see the benchmarks in the docs)."""

    def __init__(
        self,
        generator: nn.Module,
        encoder: nn.Module,
        code_clip: CodeClip | None = (0.0, 30.0),
        pixel_space: PixelSpace | None = None,
        code_shape: Sequence[int] | None = None,
        clamp_pixels: bool = False,
    ) -> None:
        super().__init__(generator, code_clip, pixel_space, code_shape, clamp_pixels)
        self.encoder = encoder

    def prior_term(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).reshape(h.shape) - h

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).reshape(x.shape[0], *self.code_shape)

    def modules(self) -> list[nn.Module]:
        return [self.generator, self.encoder]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "treatment": self.treatment, "encoder": type(self.encoder).__name__}


class GaussianPrior(_GeneratorBase):
    """DGN-AM: a Gaussian ``p(h) = N(0, I)`` in code space; the ε1 term is ``−h``.

    The paper samples DGN-AM with ``(ε1, ε2, ε3) = (0, 1, 1e-17)`` (Sec. S9.4), which is
    the default here; a positive ε1 gives the L2 decay of the original DGN-AM. The
    arguments are :class:`GeneratorPrior`'s, without the encoder.
    """

    default_eps = (0.0, 1.0, 1e-17)

    def __init__(
        self,
        generator: nn.Module,
        code_clip: CodeClip | None = (0.0, 30.0),
        pixel_space: PixelSpace | None = None,
        code_shape: Sequence[int] | None = None,
        clamp_pixels: bool = False,
    ) -> None:
        super().__init__(generator, code_clip, pixel_space, code_shape, clamp_pixels)

    def prior_term(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -h

    density = "N(0, I)"
    """What :meth:`log_density` is, in words (``Chains.config["log_prior"]`` of the exact samplers)."""

    def log_density(self, h: torch.Tensor) -> torch.Tensor:
        """``log N(h; 0, I)`` per chain (normalised): codes ``(B, *S)`` -> ``(B,)``, differentiable."""
        flat = h.flatten(1)
        return -0.5 * (flat * flat).sum(1) - 0.5 * flat.shape[1] * _LOG_2PI

    def modules(self) -> list[nn.Module]:
        return [self.generator]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "treatment": "DGN-AM (Gaussian p(h))"}


class HDAEPrior(_GeneratorBase):
    """PPGN-h: a denoising autoencoder on codes, ``R_h = DAE(h)``; ε1 term ``DAE(h) − h``.

    The arguments are :class:`GeneratorPrior`'s, with the code DAE in place of the encoder.
    """

    default_eps = (1e-5, 1.0, 1e-5)

    def __init__(
        self,
        generator: nn.Module,
        dae: nn.Module,
        code_clip: CodeClip | None = (0.0, 30.0),
        pixel_space: PixelSpace | None = None,
        code_shape: Sequence[int] | None = None,
        clamp_pixels: bool = False,
    ) -> None:
        super().__init__(generator, code_clip, pixel_space, code_shape, clamp_pixels)
        self.dae = dae

    def prior_term(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.dae(h) - h

    def modules(self) -> list[nn.Module]:
        return [self.generator, self.dae]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "treatment": "PPGN-h (h-DAE)"}


class LayerEncoder(nn.Module):
    """``E``: a network read at a code layer, flattened, optionally through ReLU.

    Input: images ``(B, C, H, W)`` in ``input_space`` (if given, the images are converted
    from ``source_space`` first). Output: codes ``(B, D)``; the paper's fc6 is post-ReLU.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        relu: bool = True,
        source_space: PixelSpace | None = None,
        input_space: PixelSpace | None = None,
    ) -> None:
        super().__init__()

        self.model = model
        self.layer = layer
        self.relu = relu
        self.adapter = (
            PixelAdapter(source_space, input_space) if source_space and input_space else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = run_to(self.model, self.adapter(x), [self.layer])[self.layer].flatten(1)
        return torch.relu(code) if self.relu else code


class CodeDAE(nn.Module):
    """The PPGN-h MLP denoising autoencoder on codes (4096-2048-1024-500-1024-2048-4096).

    Input and output: codes ``(B, dims[0])``. Hidden layers use ReLU; the output is ReLU'd
    too when ``relu_out`` (codes are post-ReLU).
    """

    def __init__(self, dims: Sequence[int] = (4096, 2048, 1024, 500, 1024, 2048, 4096), relu_out: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2 or relu_out:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
