"""The result of a sampling run and its HDF5 form.

Layout of a chains file (``format = "neurovis.chains"``, ``format_version = 1``):

==============  ======================  ===========================================
dataset         shape                   meaning
==============  ======================  ===========================================
``codes``       (C, T+1, *code_shape)   code (or image, for pixel priors) of sample t
``probs``       (C, T+1)                probability used for filtering
``activations`` (C, T+1)                the unit's raw activation / class logit
``eps1``        (C, T+1)                ε1 in force at step t (resets change it)
``failed``      (C,)                    chain stopped by NaN/Inf (``on_nan="mark"``)
``chain_ids``   (C,)                    the chain's index: its randomness is (seed, id)
==============  ======================  ===========================================

Sample ``t`` is the image *before* step ``t``'s update, so ``T`` steps give ``T + 1``
samples. The run's full configuration is the JSON attribute ``config``.

:func:`decode_samples` is the one way from codes to images: :meth:`Chains.images`, the
report, the glyph evaluation and the command line all decode through it, so each shows the
same pixels (for inpainting, the photo outside the hole and ``G(h)`` inside).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from neurovis.errors import NeurovisError
from neurovis.conditions import Condition
from neurovis.priors.base import Prior
from neurovis._utils.image import to_bytes
from neurovis._utils.torch_utils import eval_mode

FORMAT = "neurovis.chains"
FORMAT_VERSION = 1


def atomic_path(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(final, temporary)`` paths in the same folder, for write-then-rename."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return final, Path(tmp)


@dataclass
class Chains:
    """Samples of ``C`` chains of ``T`` steps (``T + 1`` samples each).

    Attributes:
        codes: ``(C, T+1, *code_shape)`` float32, CPU.
        probs: ``(C, T+1)`` probability of the condition at each sample.
        activations: ``(C, T+1)`` raw activation (unit value or class logit).
        eps1: ``(C, T+1)`` ε1 in force at each sample.
        failed: ``(C,)`` bool, chains stopped by NaN/Inf.
        chain_ids: ``(C,)`` int, each chain's index in the seeded family.
        config: the run's configuration (JSON-serialisable).
        prior: the prior that decodes codes to images (not saved; pass one after loading).
        condition: the condition the chains sampled for (not saved; reports use it for
            attributions and natural-image neighbours).
    """

    codes: torch.Tensor
    probs: torch.Tensor
    activations: torch.Tensor
    eps1: torch.Tensor
    failed: torch.Tensor
    chain_ids: torch.Tensor
    config: dict[str, Any]
    prior: Prior | None = field(default=None, repr=False)
    condition: Condition | None = field(default=None, repr=False)

    @property
    def n_chains(self) -> int:
        return self.codes.shape[0]

    @property
    def n_steps(self) -> int:
        """Steps taken per chain (samples per chain minus one)."""
        return self.codes.shape[1] - 1

    @property
    def is_start(self) -> torch.Tensor:
        """``(C, T+1)`` bool: samples that are a chain's start or restart (step 0, and every
        ``reset_every``-th step of a run with restarts), states no step has moved yet.
        Reports, acceptance and recall never count them as samples."""
        mask = torch.zeros(self.probs.shape, dtype=torch.bool)
        mask[:, 0] = True
        every = int(self.config.get("reset_every") or 0)
        if every > 0:
            mask[:, every:self.n_steps:every] = True
        return mask

    def accepted(self, threshold: float = 0.97) -> torch.Tensor:
        """``(C, T+1)`` bool: sampled states (not starts, :attr:`is_start`) whose probability
        is at least ``threshold``."""
        return (torch.nan_to_num(self.probs, nan=-1.0) >= threshold) & ~self.is_start

    def decode(self, codes: torch.Tensor, prior: Prior | None = None, batch_size: int = 64) -> torch.Tensor:
        """Decode codes ``(N, *code_shape)`` to images ``(N, C, H, W)`` in the prior's pixel
        space, composited with the attached condition (inpainting: the photo outside the
        hole); see :func:`decode_samples`."""
        return decode_samples(codes, prior or self._decoder(), self.condition, batch_size=batch_size, space="model")

    def images(
        self,
        chain: int | slice | None = None,
        step: int | slice | None = None,
        prior: Prior | None = None,
        rgb: bool = False,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Decoded images of the selected samples, as the report shows them (for an
        inpainting condition, the photo outside the hole and ``G(h)`` inside).

        Args:
            chain, step: an index or slice each (``None``: all). Integer selections drop
                their axis, as in tensor indexing.
            prior: decoder to use when none is attached (after :func:`load_chains`).
            rgb: return RGB intensities clipped to [0, 1] instead of the prior's space.

        Returns:
            ``(*selected axes, C, H, W)`` on the CPU (float32 RGB with ``rgb=True``); see
            :func:`decode_samples`.
        """
        which = (slice(None) if chain is None else chain, slice(None) if step is None else step)
        selected = self.codes[which]
        lead = selected.shape[: selected.dim() - (self.codes.dim() - 2)]
        imgs = decode_samples(self, prior, which=which, batch_size=batch_size, space="rgb01" if rgb else "model")
        return imgs.reshape(*lead, *imgs.shape[1:])

    def _decoder(self) -> Prior:
        """The attached prior, or a one-line error saying how to attach one."""
        if self.prior is None:
            raise NeurovisError("these chains have no prior attached; pass prior=... or load them with "
                                "load_chains(path, prior=...)")
        return self.prior

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the chains to HDF5 atomically (temp file, then rename). Returns the path."""
        final, tmp = atomic_path(path)
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["config"] = json.dumps(self.config)
                f.create_dataset("codes", data=self.codes.numpy(), compression="gzip", compression_opts=1)
                for name in ("probs", "activations", "eps1", "failed", "chain_ids"):
                    f.create_dataset(name, data=getattr(self, name).numpy())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        return final


SPACES = ("rgb01", "uint8", "model")
"""What :func:`decode_samples` returns: displayable RGB in [0, 1] (float32) or 0–255
(uint8), or the prior's own pixel space."""


def decode_samples(
    samples: Chains | torch.Tensor,
    prior: Prior | None = None,
    condition: Condition | None = None,
    *,
    which: Any = None,
    batch_size: int = 64,
    space: Literal["rgb01", "uint8", "model"] = "rgb01",
    progress: bool = False,
) -> torch.Tensor:
    """Codes -> the images a report shows: ``G(h)`` in the prior's pixel space, composited
    by the condition (:meth:`~neurovis.conditions.Condition.composite`: for inpainting, the
    photo outside the hole; identity otherwise), then converted to RGB unless
    ``space="model"``.

    Args:
        samples: a :class:`Chains` (its codes ``(C, T+1, *code_shape)``, in that order) or
            codes ``(N, *code_shape)``.
        prior: the decoder; ``None`` uses the chains' attached prior (required for codes).
        condition: whose composite to apply; ``None`` uses the chains' attached condition
            (for codes: none).
        which: an index into the codes' leading axes (``(C, T+1)`` for chains, ``(N,)``
            for codes) as in tensor indexing: an int, slice, tuple, index list or bool
            mask. ``None``: every sample.
        batch_size: codes decoded per call of ``prior.decode``.
        space: ``"rgb01"``: RGB intensities clipped to [0, 1], float32 (the displayable
            view); ``"uint8"``: the same rounded to 0–255 uint8 (the report's PNGs, a
            quarter of the memory); ``"model"``: the prior's pixel space as decoded and
            composited, in the prior's dtype (e.g. Caffe's BGR 0–255 minus the ImageNet
            mean, the space conditions evaluate in).
        progress: show a progress bar (stderr).

    Returns:
        ``(N, 3, H, W)`` on the CPU (``(N, C, H, W)`` for ``space="model"``), ``N`` the
        selected samples flattened in order (chain-major for chains). Decoding runs on the
        prior's device (``prior.device``) under ``torch.no_grad`` with the prior's networks
        in eval mode (their modes restored after).
    """
    if space not in SPACES:
        raise NeurovisError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if batch_size < 1:
        raise NeurovisError(f"batch_size must be ≥ 1, got {batch_size}")
    if isinstance(samples, Chains):
        prior = prior or samples._decoder()
        condition = condition if condition is not None else samples.condition
        codes, code_shape = samples.codes, samples.codes.shape[2:]
    else:
        if prior is None:
            raise NeurovisError("decoding codes needs a prior; pass prior=...")
        codes, code_shape = samples, samples.shape[1:]
    if which is not None:
        codes = codes[which]
    flat = codes.reshape(-1, *code_shape)
    out = []
    with tqdm(total=flat.shape[0], disable=not progress, file=sys.stderr, desc="decoding", unit="img", leave=False) as bar:
        with torch.no_grad(), eval_mode(prior.modules()):
            for start in range(0, flat.shape[0], batch_size):
                x = prior.decode(flat[start : start + batch_size].to(prior.device))
                if condition is not None:
                    x = condition.composite(x)
                if space == "rgb01":
                    x = prior.pixel_space.to_rgb01(x).clamp(0, 1).float()
                elif space == "uint8":
                    x = to_bytes(prior.pixel_space.to_rgb01(x))
                out.append(x.cpu())
                bar.update(x.shape[0])
    return torch.cat(out) if out else torch.empty(0)


def load_chains(
    path: str | os.PathLike[str], prior: Prior | None = None, condition: Condition | None = None
) -> Chains:
    """Read chains written by :meth:`Chains.save`; attach ``prior`` to decode images."""
    path = Path(path)
    if not path.exists():
        raise NeurovisError(f"no chains file at {path}; run neurovis.sample(...).save(path) first")
    advice = "the file is incomplete or damaged; sample again (neurovis.sample(...).save(path))"
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise NeurovisError(f"{path} is not a neurovis chains file (format={f.attrs.get('format')!r})")
            missing = [name for name in DATASETS if not isinstance(f.get(name), h5py.Dataset)]
            if missing:
                raise NeurovisError(f"{path} lacks the dataset(s) {', '.join(missing)}; {advice}")
            if "config" not in f.attrs:
                raise NeurovisError(f"{path} lacks its 'config' attribute; {advice}")
            data = {name: torch.from_numpy(np.asarray(f[name])) for name in DATASETS}
            raw = f.attrs["config"]
    except OSError as err:
        raise NeurovisError(f"cannot read {path} as HDF5 ({' '.join(str(err).split())}); the file may be truncated") from None
    try:
        config = json.loads(raw)
    except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
        detail = " ".join(str(err).split())[:120]
        raise NeurovisError(f"{path}: its 'config' attribute is not valid JSON ({detail}); {advice}") from None
    if not isinstance(config, dict):
        raise NeurovisError(f"{path}: its 'config' attribute is a JSON {type(config).__name__}, not an object; {advice}")
    _check_shapes(path, data, advice)
    return Chains(config=config, prior=prior, condition=condition, **data)


DATASETS = ("codes", "probs", "activations", "eps1", "failed", "chain_ids")
"""The datasets of a chains file (see the module docstring)."""


def _check_shapes(path: Path, data: dict[str, torch.Tensor], advice: str) -> None:
    """One line naming the first dataset whose shape does not fit ``codes`` ``(C, T+1, ...)``."""
    codes = data["codes"]
    if codes.dim() < 2:
        raise NeurovisError(f"{path}: codes has shape {tuple(codes.shape)}, not (chains, steps + 1, ...); {advice}")
    c, n = codes.shape[:2]
    expected = {"probs": (c, n), "activations": (c, n), "eps1": (c, n), "failed": (c,), "chain_ids": (c,)}
    for name, shape in expected.items():
        if tuple(data[name].shape) != shape:
            raise NeurovisError(f"{path}: {name} has shape {tuple(data[name].shape)}, expected {shape} for codes of "
                                f"shape {tuple(codes.shape)}; {advice}")
