"""Caffe net description + blobs -> a PyTorch ``nn.Module`` (:class:`CaffeNet`).

Every Caffe layer becomes a submodule named after the layer (``conv1``, ``relu1``,
``pool1``, ``norm1``... ``fc8``; a ``.`` in a name becomes ``_``), so neurovis hooks
address layers by their Caffe names. Caffe's in-place layers (``relu6`` with
``bottom: "fc6" top: "fc6"``) become separate, non-inplace modules: a hook on ``fc6``
sees the pre-ReLU value, one on ``relu6`` the post-ReLU value. The forward pass runs the
layers in file order on a dict of named blobs, so branches (Concat, Eltwise, Crop) work.

Conventions kept from Caffe: NCHW float32; Convolution weight ``(out, in/group, kh, kw)``
and Deconvolution weight ``(in, out/group, kh, kw)`` (the layouts of ``nn.Conv2d`` and
``nn.ConvTranspose2d``); InnerProduct weight ``(out, in)`` applied to the input flattened
from ``axis`` on; pooling output sizes rounded up (CEIL); LRN across channels
``x / (k + alpha/n Σ x²)^beta`` (``nn.LocalResponseNorm``'s convention, odd ``n`` only);
Embed weight ``(input_dim, num_output)``; LSTM blobs ``W_xc, b_c[, W_xc_static], W_hc``
on time-major ``(T, N, ...)`` inputs with the ``cont`` indicators (:class:`~neurovis.
caffe.layers.LSTM`); InnerProduct and Softmax on any ``axis``.
Shapes are inferred from the declared input shapes on the ``meta`` device, so building
costs no compute and no memory before the weights are assigned.

Layers of the TRAIN phase, loss and accuracy layers are skipped; by default a trailing
Softmax (and a Log after it) is dropped so the module returns logits (``fc8``), which is
what neurovis conditions expect.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from neurovis.caffe import layers as L
from neurovis.caffe.netparam import LayerSpec, NetSpec
from neurovis.caffe.schema import MESSAGES, get
from neurovis.errors import NeurovisError
from neurovis.pixels import CAFFE_IMAGENET, PixelSpace
from neurovis.priors.deepsim import DEEPSIM_PIXELS

DATA_TYPES = frozenset({"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData", "AnnotatedData"})
SKIPPED_TYPES = frozenset({"Accuracy", "Silence", "HDF5Output"})
Builder = Callable[[LayerSpec, list[torch.Size]], nn.Module]


def _err(layer: LayerSpec, what: str) -> NeurovisError:
    return NeurovisError(f"layer {layer.name!r} ({layer.type}): {what}")


# ----------------------------------------------------------------------------- parameters
def _pair(layer: LayerSpec, p: Mapping[str, Any], ptype: str, name: str, default: int | None) -> tuple[int, int]:
    """Caffe's ``name`` / ``name_h``+``name_w`` (``kernel_size`` -> ``kernel_h``) as ``(h, w)``."""
    base = "kernel" if name == "kernel_size" else name
    if f"{base}_h" in p or f"{base}_w" in p:
        h, w = p.get(f"{base}_h"), p.get(f"{base}_w")
        if h is None or w is None:
            raise _err(layer, f"set both {base}_h and {base}_w")
        return int(h), int(w)
    values = get(p, ptype, name)
    values = [values] if isinstance(values, int) else list(values)
    if not values:
        if default is None:
            raise _err(layer, f"{ptype} has no {name}; the prototxt must set it")
        return default, default
    if len(values) == 1:
        return int(values[0]), int(values[0])
    if len(values) == 2:
        return int(values[0]), int(values[1])
    raise _err(layer, f"{len(values)} values of {name}: only 2-D layers are supported")


def _spatial_input(layer: LayerSpec, shapes: list[torch.Size]) -> torch.Size:
    if len(shapes[0]) != 4:
        raise _err(layer, f"expects a 4-D (N, C, H, W) input, got shape {tuple(shapes[0])}")
    return shapes[0]


def _convolution(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p = layer.params.get("convolution_param", {})
    t = "ConvolutionParameter"
    shape = _spatial_input(layer, shapes)
    if "num_output" not in p:
        raise _err(layer, "convolution_param has no num_output")
    if get(p, t, "axis") != 1:
        raise _err(layer, "only axis: 1 (channels) is supported")
    out, group, bias = int(p["num_output"]), int(get(p, t, "group")), bool(get(p, t, "bias_term"))
    kernel, stride = _pair(layer, p, t, "kernel_size", None), _pair(layer, p, t, "stride", 1)
    pad, dilation = _pair(layer, p, t, "pad", 0), _pair(layer, p, t, "dilation", 1)
    channels = int(shape[1])
    if group < 1 or channels % group or out % group:
        raise _err(layer, f"group {group} does not divide {channels} input and {out} output channels")
    if layer.type == "Deconvolution":
        return nn.ConvTranspose2d(channels, out, kernel, stride, pad, 0, group, bias, dilation)
    return nn.Conv2d(channels, out, kernel, stride, pad, dilation, group, bias)


def _inner_product(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p = layer.params.get("inner_product_param", {})
    t = "InnerProductParameter"
    if "num_output" not in p:
        raise _err(layer, "inner_product_param has no num_output")
    axis = int(get(p, t, "axis"))
    axis = axis if axis >= 0 else len(shapes[0]) + axis
    return L.InnerProduct(math.prod(shapes[0][axis:]), int(p["num_output"]), bool(get(p, t, "bias_term")), axis)


def _relu(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    slope = float(get(layer.params.get("relu_param", {}), "ReLUParameter", "negative_slope"))
    return nn.LeakyReLU(slope) if slope else nn.ReLU()


def _lrn(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("lrn_param", {}), "LRNParameter"
    size, alpha, beta = int(get(p, t, "local_size")), float(get(p, t, "alpha")), float(get(p, t, "beta"))
    if size % 2 != 1:
        raise _err(layer, f"local_size {size} is even; Caffe's LRN needs an odd size")
    if get(p, t, "norm_region") == "WITHIN_CHANNEL":
        return L.WithinChannelLRN(size, alpha, beta)
    return nn.LocalResponseNorm(size, alpha, beta, float(get(p, t, "k")))


def _pooling(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("pooling_param", {}), "PoolingParameter"
    shape = _spatial_input(layer, shapes)
    method = get(p, t, "pool")
    if method not in ("MAX", "AVE"):
        raise _err(layer, f"pool: {method} is not supported (MAX and AVE are)")
    if get(p, t, "global_pooling"):
        return L.Pooling(method, (1, 1), (1, 1), (0, 0), True, global_pool=True)
    kernel, stride, pad = _pair(layer, p, t, "kernel_size", None), _pair(layer, p, t, "stride", 1), _pair(layer, p, t, "pad", 0)
    ceil = get(p, t, "round_mode") != "FLOOR"
    if any(2 * pd > k for pd, k in zip(pad, kernel)):
        raise _err(layer, f"pad {pad} is more than half the kernel {kernel}, which PyTorch cannot pool")
    for axis, size in enumerate(shape[2:]):
        args = (int(size), kernel[axis], stride[axis], pad[axis], ceil)
        caffe, ours = L.caffe_pooled_size(*args), L.torch_pooled_size(*args)
        if caffe != ours:
            raise _err(layer, f"Caffe pools {int(size)} to {caffe} but PyTorch to {ours} (kernel < stride); unsupported")
    return L.Pooling(method, kernel, stride, pad, ceil)


def _reshape(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("reshape_param", {}), "ReshapeParameter"
    dims = p.get("shape", {}).get("dim", [])
    return L.Reshape(dims, int(get(p, t, "axis")), int(get(p, t, "num_axes")))


def _dropout(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    return nn.Dropout(float(get(layer.params.get("dropout_param", {}), "DropoutParameter", "dropout_ratio")))


def _softmax(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    return nn.Softmax(dim=int(get(layer.params.get("softmax_param", {}), "SoftmaxParameter", "axis")))


def _crop(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    if len(shapes) != 2:
        raise _err(layer, f"needs 2 bottoms (the blob and the reference), got {len(shapes)}")
    p, t = layer.params.get("crop_param", {}), "CropParameter"
    return L.Crop(int(get(p, t, "axis")), [int(o) for o in get(p, t, "offset")])


def _concat(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("concat_param", {}), "ConcatParameter"
    return L.Concat(int(p["axis"]) if "axis" in p else int(get(p, t, "concat_dim")))


def _eltwise(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("eltwise_param", {}), "EltwiseParameter"
    return L.Eltwise(get(p, t, "operation"), get(p, t, "coeff"))


def _flatten(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("flatten_param", {}), "FlattenParameter"
    return nn.Flatten(int(get(p, t, "axis")), int(get(p, t, "end_axis")))


def _three(ptype: str, pname: str, cls: Callable[..., nn.Module]) -> Builder:
    """A builder for Log and Power: three float parameters in schema order."""

    def build(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
        p = layer.params.get(pname, {})
        return cls(*(float(get(p, ptype, f.name)) for f in MESSAGES[ptype]))

    return build


def _simple(cls: Callable[[], nn.Module]) -> Builder:
    return lambda layer, shapes: cls()


def _elu(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    return nn.ELU(float(get(layer.params.get("elu_param", {}), "ELUParameter", "alpha")))


def _embed(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("embed_param", {}), "EmbedParameter"
    if not p.get("num_output") or not p.get("input_dim"):
        raise _err(layer, "embed_param needs a positive num_output and input_dim")
    return L.Embed(int(p["input_dim"]), int(p["num_output"]), bool(get(p, t, "bias_term")))


def _lstm(layer: LayerSpec, shapes: list[torch.Size]) -> nn.Module:
    p, t = layer.params.get("recurrent_param", {}), "RecurrentParameter"
    hidden = int(get(p, t, "num_output"))
    if hidden <= 0:
        raise _err(layer, "recurrent_param needs a positive num_output")
    if get(p, t, "expose_hidden"):
        raise _err(layer, "recurrent_param expose_hidden: true is not supported; remove it (the state starts at 0)")
    if len(shapes) not in (2, 3):
        raise _err(layer, f"needs 2 or 3 bottoms (x, cont[, x_static]), got {len(shapes)}")
    x, cont = shapes[0], shapes[1]
    if len(x) < 3 or tuple(cont) != tuple(x[:2]):
        raise _err(layer, f"needs x of shape (T, N, ...) and cont of shape (T, N), got {tuple(x)} and {tuple(cont)}")
    static = None
    if len(shapes) == 3:
        if len(shapes[2]) < 2 or shapes[2][0] != x[1]:
            raise _err(layer, f"the static input {tuple(shapes[2])} must be (N, ...) with N = {x[1]} streams")
        static = math.prod(shapes[2][1:])
    return L.LSTM(math.prod(x[2:]), hidden, static)


BUILDERS: dict[str, Builder] = {
    "Convolution": _convolution,
    "Deconvolution": _convolution,
    "InnerProduct": _inner_product,
    "ReLU": _relu,
    "LRN": _lrn,
    "Pooling": _pooling,
    "Reshape": _reshape,
    "Dropout": _dropout,
    "Softmax": _softmax,
    "Crop": _crop,
    "Concat": _concat,
    "Eltwise": _eltwise,
    "Flatten": _flatten,
    "Split": _simple(L.Split),
    "Log": _three("LogParameter", "log_param", L.Log),
    "Power": _three("PowerParameter", "power_param", L.Power),
    "TanH": _simple(nn.Tanh),
    "Sigmoid": _simple(nn.Sigmoid),
    "AbsVal": _simple(L.AbsVal),
    "BNLL": _simple(nn.Softplus),
    "ELU": _elu,
    "Embed": _embed,
    "LSTM": _lstm,
}


# ----------------------------------------------------------------------------- the module
class CaffeNet(nn.Module):
    """A converted Caffe net: submodules named after the Caffe layers, run in file order.

    ``forward(*inputs)`` takes one tensor per name in :attr:`input_names` (shape as the
    prototxt declares, any batch size) and returns the blob :attr:`output_names` names (a
    tuple if several). Attributes set by :func:`build_net`: ``input_shape`` and
    ``input_size`` (one input's shape without batch), ``pixel_space`` (``CAFFE_IMAGENET`` for a 3-channel image net,
    ``DEEPSIM_PIXELS`` for a code -> image generator), ``code_shape`` (generators),
    ``caffe_names`` (module name -> Caffe layer name where they differ),
    ``skipped_layers`` (training-only layers left out).
    """

    def __init__(self, name: str, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        super().__init__()
        self.net_name = name
        self.input_names = tuple(inputs)
        self.output_names = tuple(outputs)
        self.caffe_names: dict[str, str] = {}
        self.skipped_layers: list[str] = []
        self._plan: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []

    def add_layer(self, module_name: str, module: nn.Module, bottoms: Sequence[str], tops: Sequence[str]) -> None:
        """Register ``module`` and run it on ``bottoms`` -> ``tops`` after the earlier ones."""
        self.add_module(module_name, module)
        self._plan.append((module_name, tuple(bottoms), tuple(tops)))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise NeurovisError(
                f"{self.net_name or 'this Caffe net'} takes {len(self.input_names)} input(s) "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        blobs: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs))
        for name, bottoms, tops in self._plan:
            out = self._modules[name](*(blobs[b] for b in bottoms))  # type: ignore[misc]
            if isinstance(out, tuple):
                blobs.update(zip(tops, out))
            else:
                for top in tops:
                    blobs[top] = out
        outs = tuple(blobs[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def extra_repr(self) -> str:
        return f"name={self.net_name!r}, inputs={self.input_names}, outputs={self.output_names}"


def _in_test_phase(layer: LayerSpec) -> bool:
    """Caffe's NetStateRule check for the TEST phase (phase rules only; stages ignored)."""
    if layer.params.get("phase") == "TRAIN":
        return False
    include, exclude = layer.params.get("include", []), layer.params.get("exclude", [])
    if include:
        return any(rule.get("phase", "TEST") == "TEST" for rule in include)
    return not any(rule.get("phase") == "TEST" for rule in exclude)


def _module_name(layer_name: str, model: nn.Module, taken: set[str]) -> str:
    name = layer_name.replace(".", "_") or "layer"
    candidate, n = name, 1
    while candidate in taken or (hasattr(model, candidate) and candidate not in model._modules):
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _inputs(spec: NetSpec, overrides: Mapping[str, Sequence[int]] | None) -> tuple[dict[str, tuple[int, ...] | None], list[LayerSpec], list[str]]:
    """Declared inputs (fields, Input and data layers), the layers to convert, the skipped."""
    inputs: dict[str, tuple[int, ...] | None] = dict(spec.inputs)
    kept: list[LayerSpec] = []
    skipped: list[str] = []
    for layer in spec.layers:
        if not _in_test_phase(layer):
            skipped.append(layer.name)
        elif layer.type == "Input":
            shapes = [tuple(int(d) for d in s.get("dim", [])) for s in layer.params.get("input_param", {}).get("shape", [])]
            for i, top in enumerate(layer.tops):
                inputs[top] = shapes[i] if i < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
        elif layer.type in DATA_TYPES:
            crop = int(layer.params.get("transform_param", {}).get("crop_size", 0))
            for i, top in enumerate(layer.tops):
                inputs.setdefault(top, (1, 3, crop, crop) if i == 0 and crop else None)
        elif layer.type in SKIPPED_TYPES or layer.type.endswith("Loss"):
            skipped.append(layer.name)
        elif layer.type not in BUILDERS:
            raise NeurovisError(
                f"layer {layer.name!r} has type {layer.type!r}, which neurovis cannot convert "
                f"(supported: {', '.join(sorted(BUILDERS))})"
            )
        else:
            kept.append(layer)
    bottoms = {b for layer in kept for b in layer.bottoms}
    for name, shape in (overrides or {}).items():
        if name not in inputs and name not in bottoms:
            raise NeurovisError(f"the net has no input blob {name!r}; its inputs: {', '.join(inputs) or 'none declared'}")
        inputs[name] = tuple(int(d) for d in shape)
    return inputs, kept, skipped


def _choose_output(kept: list[LayerSpec], output: str | None, strip_softmax: bool) -> tuple[list[LayerSpec], str]:
    if not kept:
        raise NeurovisError("the prototxt has no layers neurovis can convert")
    if output is not None:
        writers = [i for i, lay in enumerate(kept) if output in lay.tops]
        if not writers:
            known = ", ".join(dict.fromkeys(t for lay in kept for t in lay.tops))
            raise NeurovisError(f"no layer produces blob {output!r}; choose one of {known}")
        return kept[: writers[-1] + 1], output
    if strip_softmax:
        last = kept[-1]
        if last.type == "Log" and len(kept) > 1 and kept[-2].type == "Softmax" and last.bottoms[:1] == kept[-2].tops[:1]:
            kept = kept[:-2]
        elif last.type == "Softmax":
            kept = kept[:-1]
        if not kept:
            raise NeurovisError("the prototxt holds only a Softmax; nothing to convert")
    if not kept[-1].tops:
        raise NeurovisError(f"layer {kept[-1].name!r} has no top blob; the prototxt is incomplete")
    return kept, kept[-1].tops[-1]


def assemble(
    spec: NetSpec,
    output: str | None = None,
    strip_softmax: bool = True,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    pixel_space: PixelSpace | None = None,
) -> tuple[CaffeNet, dict[str, LayerSpec], dict[str, torch.Size]]:
    """The module of ``spec`` on the ``meta`` device (no weights yet; arguments as in
    :func:`build_net`), its module name -> layer map, and the inferred shape of every blob
    (batch as declared). Cheap even for paper-size nets: use it to check a prototxt.

    Raises:
        NeurovisError: an unsupported layer type, a missing input shape or bottom blob, or
            a layer that cannot run on its input shape, each naming the layer.
    """
    inputs, kept, skipped = _inputs(spec, input_shapes)
    kept, out_name = _choose_output(kept, output, strip_softmax)
    produced: set[str] = set()
    needed: list[str] = []
    for layer in kept:
        for b in layer.bottoms:
            if b not in produced and b not in needed:
                if b not in inputs:
                    raise NeurovisError(f"layer {layer.name!r}: bottom blob {b!r} comes from no earlier layer or input")
                needed.append(b)
        produced.update(layer.tops)
    if not needed:
        raise NeurovisError("no layer reads a network input; declare one (input/input_shape or an Input layer)")
    order = [name for name in inputs if name in needed]
    model = CaffeNet(spec.name, order, [out_name])
    model.skipped_layers = skipped
    shapes: dict[str, torch.Size] = {}
    meta: dict[str, torch.Tensor] = {}
    for name in order:
        shape = inputs[name]
        if not shape:
            raise NeurovisError(f"input {name!r} has no shape in the prototxt; add input_shape {{ dim: ... }} or pass its shape")
        meta[name] = torch.empty(shape, device="meta")
        shapes[name] = meta[name].shape
    layer_of: dict[str, LayerSpec] = {}
    taken: set[str] = set()
    for layer in kept:
        bottom_shapes = [meta[b].shape for b in layer.bottoms]
        if not bottom_shapes:
            raise _err(layer, "has no bottom blob")
        with torch.device("meta"):
            module = BUILDERS[layer.type](layer, bottom_shapes)
        try:
            out = module(*(meta[b] for b in layer.bottoms))
        except (RuntimeError, ValueError, IndexError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise _err(layer, f"cannot run on input shape(s) {[tuple(s) for s in bottom_shapes]}: {first}") from None
        outs = out if isinstance(out, tuple) else (out,) * len(layer.tops)
        for top, value in zip(layer.tops, outs):
            meta[top] = value
            shapes[top] = value.shape
        module_name = _module_name(layer.name, model, taken)
        if module_name != layer.name:
            model.caffe_names[module_name] = layer.name
        model.add_layer(module_name, module, layer.bottoms, layer.tops)
        layer_of[module_name] = layer
    _annotate(model, shapes, pixel_space)
    return model, layer_of, shapes


# ----------------------------------------------------------------------------- weights
def _fit(layer: LayerSpec, index: int, blob: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    def core(shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(shape)
        while len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]
        return shape

    if core(blob.shape) != core(target):
        raise _err(layer, f"blob {index} has shape {tuple(blob.shape)} but the prototxt implies {target}; "
                          "are the prototxt and caffemodel of the same net?")
    return blob.reshape(target)


def layer_tensors(layer: LayerSpec, module: nn.Module, blobs: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """The parameters of ``module`` (``weight``, ``bias``) from a Caffe layer's blobs."""
    params = [(n, p) for n, p in module.named_parameters(recurse=False) if p is not None]
    if not params:
        return {}
    if len(blobs) != len(params):
        raise _err(layer, f"the caffemodel holds {len(blobs)} blob(s) for it, {len(params)} expected "
                          f"({', '.join(n for n, _ in params)}); are the prototxt and caffemodel of the same net?")
    out: dict[str, torch.Tensor] = {}
    for index, ((pname, param), blob) in enumerate(zip(params, blobs)):
        target = tuple(param.shape)
        if (pname == "weight" and isinstance(module, L.InnerProduct)
                and get(layer.params.get("inner_product_param", {}), "InnerProductParameter", "transpose")):
            blob = _fit(layer, index, blob, target[::-1]).T
        out[pname] = torch.from_numpy(np.ascontiguousarray(_fit(layer, index, blob, target), dtype=np.float32))
    return out


def caffe_state_dict(model: CaffeNet, layer_of: Mapping[str, LayerSpec],
                     weights: NetSpec | Mapping[str, Sequence[np.ndarray]]) -> dict[str, torch.Tensor]:
    """``model``'s state dict from the blobs of ``weights`` (a read caffemodel, or a dict
    layer name -> blobs), matched by Caffe layer name."""
    if isinstance(weights, NetSpec):
        by_name = {lay.name: lay.blobs for lay in weights.layers}
    else:
        by_name = {k: list(v) for k, v in weights.items()}
    state: dict[str, torch.Tensor] = {}
    for module_name, module in model.named_children():
        layer = layer_of[module_name]
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        if layer.name not in by_name or not by_name[layer.name]:
            raise _err(layer, "the caffemodel has no weights for this layer; is it the caffemodel of this prototxt?")
        for pname, tensor in layer_tensors(layer, module, by_name[layer.name]).items():
            state[f"{module_name}.{pname}"] = tensor
    return state


def _annotate(model: CaffeNet, shapes: Mapping[str, torch.Size], pixel_space: PixelSpace | None) -> None:
    if len(model.input_names) != 1:
        if pixel_space is not None:
            model.pixel_space = pixel_space
        return

    shape = tuple(int(d) for d in shapes[model.input_names[0]][1:])
    out = shapes[model.output_names[0]]
    model.input_shape = model.input_size = shape  # input_size: what `neurovis layers` reads
    is_image = len(out) == 4 and out[1] == 3
    readers = [model._modules[m] for m, bottoms, _ in model._plan if model.input_names[0] in bottoms]
    if len(shape) == 3 and shape[1:] == (1, 1) and readers and all(isinstance(r, L.InnerProduct) for r in readers):
        shape = shape[:1]  # legacy 4-D input_dim (1, D, 1, 1) read by InnerProduct: a (B, D) code works
    if len(shape) == 1 and is_image:
        model.code_shape = shape
        model.pixel_space = pixel_space or DEEPSIM_PIXELS
    elif pixel_space is not None:
        model.pixel_space = pixel_space
    elif len(shape) == 3 and shape[0] == 3:
        size = (shape[1], shape[2])
        model.pixel_space = CAFFE_IMAGENET if size == CAFFE_IMAGENET.size else CAFFE_IMAGENET.with_size(size)


def build_net(
    spec: NetSpec,
    weights: NetSpec | Mapping[str, Sequence[np.ndarray]] | None = None,
    *,
    output: str | None = None,
    strip_softmax: bool = True,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    pixel_space: PixelSpace | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> CaffeNet:
    """A :class:`CaffeNet` (CPU, float32, eval mode) from a parsed prototxt.

    Args:
        spec: the net, from :func:`~neurovis.caffe.netparam.read_prototxt`.
        weights: the read caffemodel (:func:`~neurovis.caffe.netparam.read_caffemodel`) or
            ``{layer name: [weight, bias]}``; ``None`` initialises randomly.
        output: the blob ``forward`` returns (its value after the last layer writing it,
            so ``fc6`` with an in-place ``relu6`` is post-ReLU); default the last layer's
            top after dropping a trailing Softmax (and Log) if ``strip_softmax``.
        input_shapes: ``{input blob: (N, C, H, W)}`` overriding or completing the prototxt.
        pixel_space: the input (or a generator's output) convention; default inferred:
            ``CAFFE_IMAGENET`` (sized to the input) for 3-channel image inputs,
            ``DEEPSIM_PIXELS`` for a vector -> 3-channel image generator.
        state_dict: the module's own state dict (from a converted ``.pt``), instead of
            ``weights``.

    Raises:
        NeurovisError: unsupported layers, inconsistent shapes, missing or mismatched weights.
    """
    model, layer_of, _ = assemble(spec, output, strip_softmax, input_shapes, pixel_space)
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict, strict=True, assign=True)
        except RuntimeError as err:
            detail = " ".join(str(err).split())[:300]
            raise NeurovisError(f"the weights do not fit the net ({detail}); the file is damaged or of another version") from None
    elif weights is None:
        model.to_empty(device="cpu")
        for module in model.modules():
            if module is not model and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    else:
        model.load_state_dict(caffe_state_dict(model, layer_of, weights), strict=True, assign=True)
    return model.eval()
