"""Speed-ups of the sampler's networks: channels_last memory format and ``torch.compile``.

Both change the networks **in place** (as ``module.to(memory_format=...)`` and
``nn.Module.compile()`` do) and keep their weights and ``state_dict`` keys; results stay
within float tolerance of the plain run (measured in ``bench/throughput.py``). They pay
off on GPUs (tensor cores read NHWC; compiled graphs fuse the generator's deconv +
leaky-ReLU chain); on a CPU they are mostly neutral.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Sequence

import torch
from torch import nn

from neurovis.errors import NeurovisError


def to_channels_last(modules: Sequence[nn.Module]) -> None:
    """Store the 4-D weights of ``modules`` as channels_last (NHWC), in place.

    Convolutions then produce channels_last activations, the layout cuDNN's tensor-core
    kernels read without transposes. Values are unchanged; only strides differ.
    """
    for module in modules:
        module.to(memory_format=torch.channels_last)


def has_native_bf16(device: torch.device) -> bool:
    """True where bf16 matrix products run on hardware units, not emulated.

    CUDA devices that support bf16; CPUs where oneDNN reports bf16 support (AVX512-BF16 or
    AMX). On an AVX2-only CPU bf16 autocast is emulated: measured on a 2-core AMD EPYC, a
    glyph-prior training step took 14 s in bf16 against 0.46 s in fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision to run at: ``"auto"`` becomes ``"bf16"`` where :func:`has_native_bf16`,
    else ``"fp32"``; an explicit ``"bf16"`` on a device without bf16 units is kept, with a
    warning (emulated bf16 is about 30x slower than fp32 there)."""
    if precision == "auto":
        return "bf16" if has_native_bf16(device) else "fp32"
    if precision == "bf16" and not has_native_bf16(device):
        warnings.warn(f"precision='bf16' on {device}, which has no native bf16 units: emulated bf16 is "
                      "about 30x slower than fp32 here; use precision='auto' or 'fp32'", stacklevel=3)
    return precision


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """bfloat16 autocast on ``device`` for ``precision="bf16"``, else a no-op context."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def compile_generator(prior: Any, backend: str = "inductor") -> nn.Module:
    """``torch.compile`` the prior's generator in place (once); returns the generator.

    Only the generator is compiled: the condition network and the encoder run with scoped
    forward hooks that stop the forward early (``neurovis.hooks``), which would break a
    compiled graph. At paper size the generator is most of a step's work. ``backend`` is
    any ``torch.compile`` backend (``"inductor"``, the default, needs a C++ compiler on CPU;
    ``"aot_eager"`` checks the plumbing without one).
    """
    generator = getattr(prior, "generator", None)
    if not isinstance(generator, nn.Module):
        raise NeurovisError(f"compile needs a prior with a generator network; {type(prior).__name__} has none")
    if getattr(generator, "_compiled_call_impl", None) is None:
        try:
            generator.compile(backend=backend)
        except Exception as err:  # noqa: BLE001 - an unknown backend is a user error
            raise NeurovisError(f"torch.compile(backend={backend!r}) failed: {err}".splitlines()[0]) from None
    return generator
