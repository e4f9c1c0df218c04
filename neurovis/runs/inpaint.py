"""PPGN-context (inpainting): fill a hole in a photo with a class, as a report folder.

:func:`run_inpaint` loads the photo at the prior's size, turns the hole ``x, y, w, h`` (in
the photo's own pixels) into a mask, conditions on the class inside the hole and on the
photo outside it (:class:`~neurovis.InpaintCondition`), starts the chains from the code of
the masked photo (``init="encode"``) and writes the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from neurovis.conditions import ClassCondition, InpaintCondition
from neurovis.errors import NeurovisError
from neurovis.method import INPAINT_INITS
from neurovis.runs.facets import ReportRun, sample_report
from neurovis.runs.options import RunOptions
from neurovis.runs.output import OutputLock, check_output
from neurovis.runs.setup import image_size

INITS = INPAINT_INITS
"""Where inpainting chains start: the code of the masked photo, or the prior's own starts."""


def load_photo(path: str | os.PathLike[str], size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(photo (1, 3, H, W) RGB in [0, 1] resized to size = (H, W), original (W0, H0))``."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            original = im.size
            im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise NeurovisError(f"--image {path}: cannot read it as an image ({err})") from None
    return torch.from_numpy(arr).permute(2, 0, 1)[None], original


def hole_mask(rect: tuple[int, int, int, int], original: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The mask ``(1, 1, H, W)`` (1 in the hole) of ``rect = (x, y, w, h)`` given in pixels of a
    photo of ``original = (W0, H0)``, at ``size = (H, W)``; at least one pixel wide."""
    x, y, rw, rh = rect
    w0, h0 = original
    h, w = size
    if x + rw > w0 or y + rh > h0:
        raise NeurovisError(f"--mask {x},{y},{rw},{rh} reaches outside the {w0}×{h0} image")
    sx, sy = w / w0, h / h0
    top, left = int(round(y * sy)), int(round(x * sx))
    bottom, right = max(top + 1, int(round((y + rh) * sy))), max(left + 1, int(round((x + rw) * sx)))
    mask = torch.zeros(1, 1, h, w)
    mask[..., top:bottom, left:right] = 1.0
    return mask


def run_inpaint(
    model: nn.Module,
    prior: Any,
    image: str | os.PathLike[str],
    rect: tuple[int, int, int, int],
    klass: int | str,
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    eps4: float = 1e-9,
    init: str = "encode",
    gradient: str = "reference",
    **given: Any,
) -> ReportRun:
    """Fill the hole ``rect = (x, y, w, h)`` of the photo ``image`` with the class ``klass``;
    the report goes to ``out``.

    ``eps4`` weighs the context term (the photo outside the hole); ``init`` is ``"encode"``
    (chains start from ``E(masked photo)``) or ``"random"``. The other arguments are as for
    :func:`~neurovis.runs.facets.run_sample`.

    Raises:
        NeurovisError: the photo cannot be read, the hole reaches outside it, the prior cannot
            encode (``init="encode"``), or ``out`` exists (without ``force``) or is locked.
    """
    opts = RunOptions.of(options, **given)
    if init not in INITS:
        raise NeurovisError(f"init={init!r}: use one of {', '.join(INITS)}")
    out = check_output(out, opts.force)
    with OutputLock(out, opts.command):
        size = image_size(prior)
        rgb, original = load_photo(image, size)
        mask = hole_mask(tuple(rect), original, size).to(prior.device)  # type: ignore[arg-type]
        photo = prior.pixel_space.from_rgb01(rgb).to(prior.device)
        condition = InpaintCondition(ClassCondition(model, klass, gradient=gradient), photo, mask, eps4=eps4)
        start = None
        if init == "encode":
            try:
                with torch.no_grad():
                    code = prior.encode(photo * (1 - mask))
            except NotImplementedError:
                raise NeurovisError(f"{type(prior).__name__} cannot encode the photo; pass --init random") from None
            start = prior.clip(code).repeat(opts.chains, *([1] * (code.dim() - 1)))
        return sample_report(prior, condition, Path(out), opts, init=start)
