"""Caffe files without Caffe: wire format, prototxt parser, builder, converter.

Synthetic Caffe files (tiny widths, random blobs) are written with neurovis's own writer in
both the V1 (``layers``, enum types, legacy 4-D blobs) and V2 (``layer``, string types,
``BlobShape``) forms, read back, converted, and checked against straightforward numpy
implementations of Caffe's layer definitions computed from the same blobs.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from neurovis.pixels import CAFFE_IMAGENET
from neurovis.caffe import (
    FORMAT,
    add_convert_caffe_parser,
    build_net,
    caffemodel_bytes,
    convert_caffe,
    load_converted,
    parse_caffemodel,
    parse_net_text,
    parse_prototxt,
    prototxt_text,
    read_caffemodel,
    read_prototxt,
    write_caffemodel,
    write_prototxt,
)
from neurovis.caffe import wire
from neurovis.caffe.build import assemble
from neurovis.caffe.netparam import decode_message, encode_message, normalize_text
from neurovis.errors import NeurovisError
from neurovis.hooks.capture import run_to
from neurovis.priors.deepsim import DEEPSIM_FC6_LAYERS, DEEPSIM_PIXELS, DeePSiMGenerator

RTOL = 1e-4


def rel_err(got: torch.Tensor | np.ndarray, want: np.ndarray) -> float:
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


# ----------------------------------------------------------------------------- numpy references
def np_conv(x, w, b, stride=(1, 1), pad=(0, 0), group=1, dilation=1):
    """Caffe Convolution: w (O, C/g, kh, kw), cross-correlation, zero padding."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ho = (h + 2 * pad[0] - dilation * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dilation * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // group
    for g in range(group):
        xs, ws = xp[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dilation: i * dilation + stride[0] * (ho - 1) + 1: stride[0],
                           j * dilation: j * dilation + stride[1] * (wo - 1) + 1: stride[1]]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    return out + b[None, :, None, None]


def np_deconv(x, w, b, stride, pad, group=1):
    """Caffe Deconvolution: w (C, O/g, kh, kw); input pixel (y, x) adds w * value at
    output (y*s - pad + i, x*s - pad + j)."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // group
    full = np.zeros((n, og * group, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                full[:, g * og:(g + 1) * og, i: i + stride * (h - 1) + 1: stride, j: j + stride * (wd - 1) + 1: stride] += \
                    np.einsum("nchw,co->nohw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
    out = full[:, :, pad: full.shape[2] - pad, pad: full.shape[3] - pad]
    return out + b[None, :, None, None]


def np_lrn(x, size, alpha, beta, k=1.0):
    """Caffe LRN ACROSS_CHANNELS: x / (k + alpha/size * sum of x² over `size` channels)^beta."""
    half = (size - 1) // 2
    scale = np.full_like(x, k)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - half), min(x.shape[1], c + half + 1)
        scale[:, c] += alpha / size * (x[:, lo:hi] ** 2).sum(1)
    return x * scale ** -beta


def np_lrn_within(x, size, alpha, beta):
    """Caffe LRN WITHIN_CHANNEL: x / (1 + alpha/size² * sum of x² over a size×size window)^beta."""
    half = (size - 1) // 2
    sq = np.pad(x ** 2, ((0, 0), (0, 0), (half, half), (half, half)))
    acc = np.zeros_like(x)
    for i in range(size):
        for j in range(size):
            acc += sq[:, :, i: i + x.shape[2], j: j + x.shape[3]]
    return x * (1 + alpha / size ** 2 * acc) ** -beta


def np_pool(x, k, s, p, method="MAX"):
    """Caffe pooling: output size rounded up, a last window starting in the padding
    dropped (when padded); AVE divides by the window clipped to the padded image."""
    n, c, h, w = x.shape

    def size(d):
        out = int(math.ceil((d + 2 * p - k) / s)) + 1
        if p and (out - 1) * s >= d + p:
            out -= 1
        return out

    ho, wo = size(h), size(w)
    out = np.zeros((n, c, ho, wo))
    for ph in range(ho):
        for pw in range(wo):
            hs, ws = ph * s - p, pw * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            area = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            out[:, :, ph, pw] = window.max((2, 3)) if method == "MAX" else window.sum((2, 3)) / area
    return out


def np_fc(x, w, b):
    return x.reshape(x.shape[0], -1) @ w.T + b


def relu(x, slope=0.0):
    return np.where(x > 0, x, slope * x)


# ----------------------------------------------------------------------------- file helpers
def write_net(tmp_path, layers, version, inputs, tag="net"):
    proto = write_prototxt(tmp_path / f"{tag}_v{version}.prototxt", layers, version=version, inputs=inputs)
    model = write_caffemodel(tmp_path / f"{tag}_v{version}.caffemodel", layers, version=version, inputs=inputs)
    return proto, model


def convert(tmp_path, layers, version, inputs, **kwargs):
    proto, model = write_net(tmp_path, layers, version, inputs)
    return build_net(read_prototxt(proto), read_caffemodel(model), **kwargs)


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ----------------------------------------------------------------------------- wire format
def test_wire_varints_fixed_and_packed_round_trip():
    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1):
        assert wire.decode_varint(wire.encode_varint(value), 0) == (value, len(wire.encode_varint(value)))
    for value in (-1, -2, -(2**63)):
        raw, _ = wire.decode_varint(wire.encode_varint(value), 0)
        assert len(wire.encode_varint(value)) == 10 and wire.to_signed(raw) == value
    floats = np.array([0.5, -1.25, 3e-30, 7.0], np.float32)
    message = (wire.field_varint(1, 300) + wire.field_string(2, "défc7") + wire.field_float(3, 0.3)
               + wire.field_double(4, 1e-300) + wire.field_packed_floats(5, floats)
               + wire.field_packed_varints(6, [1, 2, 1000]))
    fields = list(wire.iter_fields(message))
    assert [(n, t) for n, t, _ in fields] == [(1, 0), (2, 2), (3, 5), (4, 1), (5, 2), (6, 2)]
    assert fields[0][2] == 300 and bytes(fields[1][2]).decode() == "défc7"
    assert wire.fixed32_float(fields[2][2]) == pytest.approx(0.3) and wire.fixed64_double(fields[3][2]) == 1e-300
    np.testing.assert_array_equal(wire.packed_floats(fields[4][2]), floats)
    assert wire.packed_varints(fields[5][2]) == [1, 2, 1000]
    with pytest.raises(NeurovisError, match="claims"):
        list(wire.iter_fields(message[:-3]))
    with pytest.raises(NeurovisError, match="wire type"):
        list(wire.iter_fields(wire.key(7, 3)))


def test_schema_encode_decode_round_trip_both_layer_forms():
    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    v2 = {"name": "conv1", "type": "Convolution", "bottom": ["data"], "top": ["conv1"],
          "convolution_param": {"num_output": 2, "kernel_size": [2], "pad_h": 1, "pad_w": 0, "group": 1,
                                "bias_term": False, "engine": "CUDNN"},
          "include": [{"phase": "TEST"}],
          "blobs": [{"shape": {"dim": [2, 3, 2, 2]}, "data": weight.ravel()}]}
    back = decode_message("LayerParameter", encode_message("LayerParameter", v2))
    assert back["convolution_param"] == v2["convolution_param"]
    assert back["include"] == [{"phase": "TEST"}] and back["blobs"][0]["shape"] == {"dim": [2, 3, 2, 2]}
    np.testing.assert_array_equal(back["blobs"][0]["data"], weight.ravel())
    v1 = {"name": "fc", "type": "INNER_PRODUCT", "bottom": ["x"], "top": ["fc"], "blobs_lr": [1.0, 2.0],
          "inner_product_param": {"num_output": 3}, "relu_param": {"negative_slope": 0.25},
          "blobs": [{"num": 1, "channels": 1, "height": 3, "width": 4, "data": np.ones(12, np.float32)}]}
    back = decode_message("V1LayerParameter", encode_message("V1LayerParameter", v1))
    assert back["type"] == "INNER_PRODUCT" and back["blobs_lr"] == [1.0, 2.0]
    assert back["relu_param"]["negative_slope"] == 0.25 and back["blobs"][0]["height"] == 3
    # a reshape with -1 (10-byte negative varints, packed int64 dims)
    reshape = {"shape": {"dim": [0, -1, 4, 4]}, "axis": 0, "num_axes": -1}
    assert decode_message("ReshapeParameter", encode_message("ReshapeParameter", reshape)) == reshape


# ----------------------------------------------------------------------------- prototxt
CAFFENET_DEPLOY = """
name: "CaffeNet"   # BVLC reference CaffeNet, deploy form
input: "data"
input_shape { dim: 10 dim: 3 dim: 227 dim: 227 }
layer {
  name: "conv1"  type: "Convolution"  bottom: "data"  top: "conv1"
  param { lr_mult: 1 decay_mult: 1 }   # weights
  param { lr_mult: 2 decay_mult: 0 }   # biases
  convolution_param {
    num_output: 96
    kernel_size: 11
    stride: 4
    weight_filler { type: "gaussian" std: 0.01 }
    bias_filler { type: "constant" value: 0 }
  }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer {
  name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 }
}
layer {
  name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
  lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }
}
layer {
  name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
  convolution_param { num_output: 256 pad: 2 kernel_size: 5 group: 2 engine: CAFFE }
}
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm2" type: "LRN" bottom: "pool2" top: "norm2"
        lrn_param { local_size: 5 alpha: 1e-4 beta: 0.75 } }
layer { name: "conv3" type: "Convolution" bottom: "norm2" top: "conv3"
        convolution_param { num_output: 384 pad: 1 kernel_size: 3 } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "conv4" type: "Convolution" bottom: "conv3" top: "conv4"
        convolution_param { num_output: 384 pad: 1 kernel_size: 3 group: 2 } }
layer { name: "relu4" type: "ReLU" bottom: "conv4" top: "conv4" }
layer { name: "conv5" type: "Convolution" bottom: "conv4" top: "conv5"
        convolution_param { num_output: 256 pad: 1 kernel_size: 3 group: 2 } }
layer { name: "relu5" type: "ReLU" bottom: "conv5" top: "conv5" }
layer { name: "pool5" type: "Pooling" bottom: "conv5" top: "pool5"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc6" type: "InnerProduct" bottom: "pool5" top: "fc6"
        inner_product_param { num_output: 4096 } }
layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }
layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6"
        dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc7" type: "InnerProduct" bottom: "fc6" top: "fc7"
        inner_product_param { num_output: 4096 } }
layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }
layer { name: "drop7" type: "Dropout" bottom: "fc7" top: "fc7"
        dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc8" type: "InnerProduct" bottom: "fc7" top: "fc8"
        inner_product_param { num_output: 1000 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
layer { name: "log" type: "Log" bottom: "prob" top: "log" }   # as in the PPGN release
"""


def test_prototxt_parser_reads_a_caffenet_deploy_file():
    raw = parse_prototxt(CAFFENET_DEPLOY)
    assert raw["name"] == ["CaffeNet"] and raw["input_shape"] == [{"dim": [10, 3, 227, 227]}]
    conv1 = raw["layer"][0]
    assert conv1["param"] == [{"lr_mult": [1], "decay_mult": [1]}, {"lr_mult": [2], "decay_mult": [0]}]
    assert conv1["convolution_param"][0]["weight_filler"] == [{"type": ["gaussian"], "std": [0.01]}]
    assert raw["layer"][2]["pooling_param"] == [{"pool": ["MAX"], "kernel_size": [3], "stride": [2]}]
    spec = parse_net_text(CAFFENET_DEPLOY)
    assert spec.version == "V2" and spec.inputs == [("data", (10, 3, 227, 227))]
    assert [lay.name for lay in spec.layers][:4] == ["conv1", "relu1", "pool1", "norm1"]
    assert spec.layer("norm2").params["lrn_param"] == {"local_size": 5, "alpha": 1e-4, "beta": 0.75}
    assert spec.layer("conv2").params["convolution_param"]["kernel_size"] == [5]  # repeated field


def test_paper_size_caffenet_shapes_names_and_pixel_space():
    # Shape inference runs on the meta device: the paper-size net costs nothing to check.
    model, _, shapes = assemble(parse_net_text(CAFFENET_DEPLOY))
    assert tuple(shapes["conv1"]) == (10, 96, 55, 55) and tuple(shapes["pool1"]) == (10, 96, 27, 27)
    assert tuple(shapes["pool5"]) == (10, 256, 6, 6) and tuple(shapes["fc6"]) == (10, 4096)
    assert model.output_names == ("fc8",)  # the trailing Softmax + Log are dropped: logits
    names = [n for n, _ in model.named_children()]
    assert {"conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8", "relu6"} <= set(names)
    assert model.pixel_space == CAFFE_IMAGENET and model.input_shape == model.input_size == (3, 227, 227)
    assert isinstance(model.norm1, torch.nn.LocalResponseNorm) and model.conv2.groups == 2
    assert not model.relu6.inplace and model.fc6.in_features == 9216
    assert sum(p.numel() for p in model.parameters()) == 60_965_224  # BVLC reference CaffeNet's count
    kept, _, _ = assemble(parse_net_text(CAFFENET_DEPLOY), strip_softmax=False)
    assert kept.output_names == ("log",)


def test_prototxt_syntax_variants_and_errors():
    text = """
    # comment at the top
    a: 1 b: -2.5e-3, c: 'it\\'s' "concat" ; d: [1, 2, 3]
    m < x: true y: FALSE_ENUM > n: { z: .5 } big: 0x1F neg: -inf
    """
    raw = parse_prototxt(text)
    assert raw["a"] == [1] and raw["b"] == [-2.5e-3] and raw["c"] == ["it'sconcat"]
    assert raw["d"] == [1, 2, 3] and raw["m"] == [{"x": [True], "y": ["FALSE_ENUM"]}]
    assert raw["n"] == [{"z": [0.5]}] and raw["big"] == [31] and raw["neg"] == [-math.inf]
    with pytest.raises(NeurovisError, match="line 3") as err:
        parse_prototxt('layer {\n  name: "x"\n  type: @\n}')
    assert "\n" not in str(err.value)
    with pytest.raises(NeurovisError, match="end of text"):
        parse_prototxt('layer { name: "x" ')
    with pytest.raises(NeurovisError, match="num_output"):
        normalize_text("LayerParameter", parse_prototxt('convolution_param { num_output: "many" }'))
    with pytest.raises(NeurovisError, match="pool"):
        parse_net_text('layer { name: "p" type: "Pooling" pooling_param { pool: MEDIAN } }')


# ----------------------------------------------------------------------------- single layers
def _one_layer_case(kind, rng):
    """(layers, input shape, numpy reference output) for one layer kind."""
    if kind == "conv_grouped":
        x = rand(rng, 2, 4, 9, 8)
        w, b = rand(rng, 6, 2, 3, 2), rand(rng, 6)
        layer = {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
                 "convolution_param": {"num_output": 6, "kernel_h": 3, "kernel_w": 2, "stride": 2, "pad": 1, "group": 2},
                 "blobs": [w, b]}
        return [layer], x, np_conv(x, w, b, (2, 2), (1, 1), group=2)
    if kind == "deconv":
        x = rand(rng, 2, 4, 5, 5)
        w, b = rand(rng, 4, 3, 4, 4), rand(rng, 6)  # (in, out/group, kh, kw), group 2
        layer = {"name": "deconv", "type": "Deconvolution", "bottom": "data", "top": "deconv",
                 "convolution_param": {"num_output": 6, "kernel_size": 4, "stride": 2, "pad": 1, "group": 2},
                 "blobs": [w, b]}
        return [layer], x, np_deconv(x, w, b, 2, 1, group=2)
    if kind == "lrn":
        x = rand(rng, 2, 7, 4, 4, scale=2.0)
        layer = {"name": "norm", "type": "LRN", "bottom": "data", "top": "norm",
                 "lrn_param": {"local_size": 5, "alpha": 0.5, "beta": 0.75, "k": 2.0}}
        return [layer], x, np_lrn(x, 5, 0.5, 0.75, 2.0)
    if kind == "lrn_within":
        x = rand(rng, 2, 3, 6, 5, scale=2.0)
        layer = {"name": "norm", "type": "LRN", "bottom": "data", "top": "norm",
                 "lrn_param": {"local_size": 3, "alpha": 0.5, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"}}
        return [layer], x, np_lrn_within(x, 3, 0.5, 0.75)
    if kind == "maxpool_ceil":  # 16 -> ceil(6.5)+1 = 8 (floor would give 7)
        x = rand(rng, 2, 3, 16, 16)
        layer = {"name": "pool", "type": "Pooling", "bottom": "data", "top": "pool",
                 "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}}
        return [layer], x, np_pool(x, 3, 2, 0)
    if kind == "maxpool_pad":  # 5, k2 s2 p1: ceil gives 4, Caffe's pad rule drops the last: 3
        x = rand(rng, 2, 3, 5, 5)
        layer = {"name": "pool", "type": "Pooling", "bottom": "data", "top": "pool",
                 "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2, "pad": 1}}
        return [layer], x, np_pool(x, 2, 2, 1)
    if kind == "avepool":
        x = rand(rng, 2, 3, 10, 10)
        layer = {"name": "pool", "type": "Pooling", "bottom": "data", "top": "pool",
                 "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}}
        return [layer], x, np_pool(x, 3, 2, 1, "AVE")
    if kind == "fc":
        x = rand(rng, 3, 2, 3, 3)
        w, b = rand(rng, 5, 18), rand(rng, 5)
        layer = {"name": "fc", "type": "InnerProduct", "bottom": "data", "top": "fc",
                 "inner_product_param": {"num_output": 5}, "blobs": [w, b]}
        return [layer], x, np_fc(x, w, b)
    raise AssertionError(kind)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", ["conv_grouped", "deconv", "lrn", "lrn_within", "maxpool_ceil", "maxpool_pad", "avepool", "fc"])
def test_single_layer_matches_numpy(tmp_path, kind, version):
    rng = np.random.default_rng(sum(map(ord, kind)) + version)
    layers, x, want = _one_layer_case(kind, rng)
    model = convert(tmp_path, layers, version, {"data": x.shape})
    assert rel_err(model(torch.from_numpy(x)), want) < RTOL


def test_inner_product_transpose_and_leaky_relu(tmp_path):
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 6)
    w, b = rand(rng, 6, 4), rand(rng, 4)  # transpose: true stores (in, out)
    layers = [{"name": "fc", "type": "InnerProduct", "bottom": "data", "top": "fc",
               "inner_product_param": {"num_output": 4, "transpose": True}, "blobs": [w, b]},
              {"name": "lrelu", "type": "ReLU", "bottom": "fc", "top": "fc", "relu_param": {"negative_slope": 0.3}}]
    model = convert(tmp_path, layers, 2, {"data": x.shape})
    assert isinstance(model.lrelu, torch.nn.LeakyReLU) and model.lrelu.negative_slope == pytest.approx(0.3)
    assert rel_err(model(torch.from_numpy(x)), relu(x @ w + b, 0.3)) < RTOL


def test_crop_concat_eltwise_with_two_inputs(tmp_path):
    rng = np.random.default_rng(4)
    x, ref = rand(rng, 2, 3, 8, 9), rand(rng, 2, 3, 5, 6)
    layers = [{"name": "crop", "type": "Crop", "bottom": ["data", "ref"], "top": "crop",
               "crop_param": {"axis": 2, "offset": [1, 2]}},
              {"name": "sum", "type": "Eltwise", "bottom": ["crop", "ref"], "top": "sum",
               "eltwise_param": {"operation": "SUM", "coeff": [1.0, -2.0]}},
              {"name": "cat", "type": "Concat", "bottom": ["sum", "ref"], "top": "cat"}]
    model = convert(tmp_path, layers, 2, {"data": x.shape, "ref": ref.shape})
    assert model.input_names == ("data", "ref")
    cropped = x[:, :, 1:6, 2:8]
    want = np.concatenate([cropped - 2 * ref, ref], axis=1)
    assert rel_err(model(torch.from_numpy(x), torch.from_numpy(ref)), want) < RTOL


# ----------------------------------------------------------------------------- CaffeNet-shaped
def tiny_caffenet(rng, with_training_layers=False, fc6=16, pool5=2):
    """CaffeNet's layer types and order with tiny widths on 3×35×35 input; every pooling
    has ceil != floor (16 -> 8, 8 -> 4, 4 -> 2)."""
    def conv(name, bottom, out, cin, k, s=1, p=0, g=1):
        return {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
                "convolution_param": {"num_output": out, "kernel_size": k, "stride": s, "pad": p, "group": g},
                "blobs": [rand(rng, out, cin // g, k, k, scale=0.3), rand(rng, out, scale=0.1)]}

    def act(name, blob):
        return {"name": name, "type": "ReLU", "bottom": blob, "top": blob}

    def pool(name, bottom):
        return {"name": name, "type": "Pooling", "bottom": bottom, "top": name,
                "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}}

    def norm(name, bottom):
        return {"name": name, "type": "LRN", "bottom": bottom, "top": name,
                "lrn_param": {"local_size": 5, "alpha": 0.3, "beta": 0.75}}

    def fc(name, bottom, out, cin):
        return {"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
                "inner_product_param": {"num_output": out}, "blobs": [rand(rng, out, cin, scale=0.3), rand(rng, out, scale=0.1)]}

    def drop(name, blob):
        return {"name": name, "type": "Dropout", "bottom": blob, "top": blob, "dropout_param": {"dropout_ratio": 0.5}}

    layers = [
        conv("conv1", "data", 8, 3, 5, s=2), act("relu1", "conv1"), pool("pool1", "conv1"), norm("norm1", "pool1"),
        conv("conv2", "norm1", 8, 8, 3, p=1, g=2), act("relu2", "conv2"), pool("pool2", "conv2"), norm("norm2", "pool2"),
        conv("conv3", "norm2", 12, 8, 3, p=1), act("relu3", "conv3"),
        conv("conv4", "conv3", 12, 12, 3, p=1, g=2), act("relu4", "conv4"),
        conv("conv5", "conv4", 8, 12, 3, p=1, g=2), act("relu5", "conv5"), pool("pool5", "conv5"),
        fc("fc6", "pool5", fc6, 8 * pool5 * pool5), act("relu6", "fc6"), drop("drop6", "fc6"),
        fc("fc7", "fc6", 16, fc6), act("relu7", "fc7"), drop("drop7", "fc7"),
        fc("fc8", "fc7", 10, 16),
        {"name": "prob", "type": "Softmax", "bottom": "fc8", "top": "prob"},
    ]
    if with_training_layers:
        layers[-1:] = [
            {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["fc8", "label"], "top": "loss"},
            {"name": "accuracy", "type": "Accuracy", "bottom": ["fc8", "label"], "top": "accuracy",
             "include": [{"phase": "TEST"}]},
        ]
    return layers


def np_caffenet(x, blobs):
    """The reference forward of :func:`tiny_caffenet`; returns every named blob."""
    out = {}
    out["conv1"] = np_conv(x, *blobs["conv1"], (2, 2), (0, 0))  # before relu1
    h = np_lrn(np_pool(relu(out["conv1"]), 3, 2, 0), 5, 0.3, 0.75)
    h = relu(np_conv(h, *blobs["conv2"], (1, 1), (1, 1), group=2))
    h = np_lrn(np_pool(h, 3, 2, 0), 5, 0.3, 0.75)
    h = relu(np_conv(h, *blobs["conv3"], (1, 1), (1, 1)))
    h = relu(np_conv(h, *blobs["conv4"], (1, 1), (1, 1), group=2))
    h = np_pool(relu(np_conv(h, *blobs["conv5"], (1, 1), (1, 1), group=2)), 3, 2, 0)
    out["pool5"] = h
    out["fc6"] = np_fc(h, *blobs["fc6"])
    h = relu(np_fc(relu(out["fc6"]), *blobs["fc7"]))
    out["fc8"] = np_fc(h, *blobs["fc8"])
    e = np.exp(out["fc8"] - out["fc8"].max(1, keepdims=True))
    out["prob"] = e / e.sum(1, keepdims=True)
    return out


@pytest.mark.parametrize("version", [1, 2])
def test_caffenet_shaped_net_matches_numpy_and_hooks_see_caffe_names(tmp_path, version):
    rng = np.random.default_rng(10 + version)
    layers = tiny_caffenet(rng)
    blobs = {lay["name"]: [b.astype(np.float64) for b in lay["blobs"]] for lay in layers if "blobs" in lay}
    x = rand(rng, 2, 3, 35, 35, scale=2.0)
    model = convert(tmp_path, layers, version, {"data": (1, 3, 35, 35)})
    want = np_caffenet(x.astype(np.float64), blobs)
    assert want["pool5"].shape == (2, 8, 2, 2)  # ceil rounding at every pooling
    assert model.output_names == ("fc8",) and model.pixel_space == CAFFE_IMAGENET.with_size((35, 35))
    seen = run_to(model, torch.from_numpy(x), ["conv1", "pool5", "fc6", "relu6", "fc8"])
    assert rel_err(seen["conv1"], want["conv1"]) < RTOL  # the conv1 module, before relu1
    for name in ("pool5", "fc6", "fc8"):
        assert rel_err(seen[name], want[name]) < RTOL, name
    assert (seen["fc6"] < 0).any(), "fc6 must be hooked before its in-place ReLU"
    assert rel_err(seen["relu6"], relu(want["fc6"])) < RTOL
    assert rel_err(model(torch.from_numpy(x)), want["fc8"]) < RTOL
    probs = build_net(read_prototxt(tmp_path / f"net_v{version}.prototxt"),
                      read_caffemodel(tmp_path / f"net_v{version}.caffemodel"), strip_softmax=False)
    assert rel_err(probs(torch.from_numpy(x)), want["prob"]) < RTOL


def test_training_layers_are_skipped(tmp_path):
    rng = np.random.default_rng(5)
    layers = tiny_caffenet(rng, with_training_layers=True)
    data = [{"name": "train_data", "type": "Data", "top": ["data", "label"], "include": [{"phase": "TRAIN"}],
             "transform_param": {"crop_size": 35, "mirror": True}},
            {"name": "test_data", "type": "Data", "top": ["data", "label"], "include": [{"phase": "TEST"}],
             "transform_param": {"crop_size": 35}}]
    proto = write_prototxt(tmp_path / "train_val.prototxt", data + layers)
    weights = write_caffemodel(tmp_path / "w.caffemodel", layers, version=1)
    model = build_net(read_prototxt(proto), read_caffemodel(weights))
    assert model.input_names == ("data",) and model.input_shape == (3, 35, 35)
    assert {"train_data", "loss", "accuracy"} <= set(model.skipped_layers)
    assert model(torch.zeros(1, 3, 35, 35)).shape == (1, 10)


# ----------------------------------------------------------------------------- DeePSiM-shaped generator
def tiny_generator(rng, code=8, start=2):
    """The PPGN generator's layer names and types with tiny widths: 3 InnerProduct + leaky
    ReLU 0.3, Reshape (batch fixed at 1, as in the deploy file), then Deconvolution layers
    (the k3 s1 "conv*_1" ones too), linear deconv0: 2×2 -> 3×128×128 BGR."""
    widths = {"deconv5": 4, "conv5_1": 6, "deconv4": 4, "conv4_1": 4, "deconv3": 3,
              "conv3_1": 3, "deconv2": 2, "deconv1": 2, "deconv0": 3}
    layers = [{"name": "feat", "type": "Input", "top": "feat", "input_param": {"shape": [{"dim": [1, code]}]}}]
    specs, bottom, width = [], "feat", code
    for name in ("defc7", "defc6", "defc5"):
        layers.append({"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
                       "inner_product_param": {"num_output": 4 * start * start},
                       "blobs": [rand(rng, 4 * start * start, width, scale=0.4), rand(rng, 4 * start * start, scale=0.1)]})
        layers.append({"name": f"relu_{name}", "type": "ReLU", "bottom": name, "top": name,
                       "relu_param": {"negative_slope": 0.3}})
        bottom, width = name, 4 * start * start
    layers.append({"name": "reshape", "type": "Reshape", "bottom": "defc5", "top": "reshape_defc5",
                   "reshape_param": {"shape": {"dim": [1, 4, start, start]}}})
    bottom, channels = "reshape_defc5", 4
    for name, _, k, s, p in DEEPSIM_FC6_LAYERS:
        out = widths[name]
        layers.append({"name": name, "type": "Deconvolution", "bottom": bottom, "top": name,
                       "convolution_param": {"num_output": out, "kernel_size": k, "stride": s, "pad": p},
                       "blobs": [rand(rng, channels, out, k, k, scale=0.4), rand(rng, out, scale=0.1)]})
        specs.append((name, out, k, s, p))
        if name != "deconv0":
            layers.append({"name": f"relu_{name}", "type": "ReLU", "bottom": name, "top": name,
                           "relu_param": {"negative_slope": 0.3}})
        bottom, channels = name, out
    return layers, specs


def test_deepsim_shaped_generator_matches_numpy_and_the_project_generator(tmp_path):
    rng = np.random.default_rng(7)
    layers, specs = tiny_generator(rng)
    proto, weights = write_net(tmp_path, layers, 2, None, tag="gen")
    model = build_net(read_prototxt(proto), read_caffemodel(weights))
    assert model.code_shape == (8,) and model.pixel_space == DEEPSIM_PIXELS and model.input_names == ("feat",)
    code = rand(rng, 2, 8)  # batch 2 although the deploy file's Reshape says 1
    blobs = {lay["name"]: [b.astype(np.float64) for b in lay["blobs"]] for lay in layers if "blobs" in lay}
    h = code.astype(np.float64)
    for name in ("defc7", "defc6", "defc5"):
        h = relu(np_fc(h, *blobs[name]), 0.3)
    h = h.reshape(2, 4, 2, 2)
    for name, _, _, s, p in specs:
        h = np_deconv(h, *blobs[name], s, p)
        h = h if name == "deconv0" else relu(h, 0.3)
    image = model(torch.from_numpy(code))
    assert image.shape == (2, 3, 128, 128) and rel_err(image, h) < RTOL
    # the converted weights load by name into neurovis's own DeePSiM generator
    ours = DeePSiMGenerator(8, (16, 16, 16), (4, 2, 2), specs, 0.3)
    ours.load_state_dict(model.state_dict(), strict=True)
    assert rel_err(ours(torch.from_numpy(code)), h) < RTOL


def test_paper_size_generator_prototxt_matches_deepsim_fc6():
    def leaky(blob):
        return {"name": f"relu_{blob}", "type": "ReLU", "bottom": blob, "top": blob, "relu_param": {"negative_slope": 0.3}}

    layers, bottom = [], "feat"
    for name in ("defc7", "defc6", "defc5"):
        layers += [{"name": name, "type": "InnerProduct", "bottom": bottom, "top": name,
                    "param": [{"lr_mult": 1, "decay_mult": 0}] * 2, "inner_product_param": {"num_output": 4096}},
                   leaky(name)]
        bottom = name
    layers.append({"name": "reshape", "type": "Reshape", "bottom": "defc5", "top": "reshape_defc5",
                   "reshape_param": {"shape": {"dim": [1, 256, 4, 4]}}})
    bottom = "reshape_defc5"
    for name, out, k, s, p in DEEPSIM_FC6_LAYERS:
        layers.append({"name": name, "type": "Deconvolution", "bottom": bottom, "top": name,
                       "convolution_param": {"num_output": out, "pad": p, "kernel_size": k, "stride": s, "engine": "CUDNN"}})
        layers += [leaky(name)] if name != "deconv0" else []
        bottom = name
    for inputs in ({"feat": (1, 4096)}, None):
        text = prototxt_text(layers, inputs=inputs)
        if inputs is None:  # the legacy form: four input_dim per input
            text = 'input: "feat"\ninput_dim: 1\ninput_dim: 4096\ninput_dim: 1\ninput_dim: 1\n' + text
        model, _, shapes = assemble(parse_net_text(text))
        assert tuple(shapes["deconv0"]) == (1, 3, 256, 256) and model.output_names == ("deconv0",)
        assert model.code_shape == (4096,) and model.pixel_space == DEEPSIM_PIXELS
    with torch.device("meta"):
        reference = DeePSiMGenerator()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


# ----------------------------------------------------------------------------- convert_caffe / load_converted
def test_convert_round_trip_atomic_and_no_overwrite_without_force(tmp_path):
    rng = np.random.default_rng(8)
    layers, _ = tiny_generator(rng)
    proto, weights = write_net(tmp_path, layers, 2, None, tag="gen")
    out = tmp_path / "out" / "gen.pt"
    assert convert_caffe(proto, weights, out) == out
    payload = torch.load(out, weights_only=True)
    assert payload["format"] == FORMAT == "neurovis.caffe/1" and "defc7.weight" in payload["state_dict"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["gen.pt"]  # no temp file left
    model = load_converted(out)
    direct = build_net(read_prototxt(proto), read_caffemodel(weights))
    code = torch.randn(3, 8)
    torch.testing.assert_close(model(code), direct(code), rtol=0, atol=0)
    assert model.code_shape == (8,) and model.pixel_space == DEEPSIM_PIXELS and not model.training
    before = out.read_bytes()
    with pytest.raises(NeurovisError, match="exists") as err:
        convert_caffe(proto, weights, out)
    assert "\n" not in str(err.value) and out.read_bytes() == before
    assert convert_caffe(proto, weights, out, force=True) == out


def test_load_converted_rejects_other_files(tmp_path):
    with pytest.raises(NeurovisError, match="no such file"):
        load_converted(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(NeurovisError, match="not a converted Caffe net"):
        load_converted(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(NeurovisError, match="not a readable"):
        load_converted(tmp_path / "junk.pt")


def test_cli_command_converts_and_refuses_to_overwrite(tmp_path, capsys):
    rng = np.random.default_rng(9)
    proto, weights = write_net(tmp_path, tiny_caffenet(rng), 1, {"data": (1, 3, 35, 35)})
    parser = argparse.ArgumentParser(prog="neurovis")
    add_convert_caffe_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights), "--out", str(tmp_path / "c.pt")]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert "fc8" in capsys.readouterr().out
    assert load_converted(tmp_path / "c.pt")(torch.zeros(1, 3, 35, 35)).shape == (1, 10)
    args = parser.parse_args(argv)
    with pytest.raises(NeurovisError, match="--force"):
        args.func(args)
    args = parser.parse_args(argv + ["--force", "--quiet", "--output", "pool5", "--input-shape", "1,3,35,35"])
    assert args.func(args) == 0 and capsys.readouterr().out == ""
    assert load_converted(tmp_path / "c.pt")(torch.zeros(2, 3, 35, 35)).shape == (2, 8, 2, 2)
    args = parser.parse_args(argv + ["--force", "--input-shape", "image=1,3,35,35"])
    with pytest.raises(NeurovisError, match="no input blob 'image'"):
        args.func(args)


# ----------------------------------------------------------------------------- bad input
def test_corrupt_caffemodel_gives_one_line_error(tmp_path):
    rng = np.random.default_rng(11)
    good = caffemodel_bytes(tiny_caffenet(rng), version=2)
    assert len(parse_caffemodel(good).layers) == 23
    for name, data in [("truncated", good[: len(good) // 2]), ("text", b"layer { name: 'x' }\n" * 10),
                       ("empty", b""), ("noise", bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))]:
        path = tmp_path / f"{name}.caffemodel"
        path.write_bytes(data)
        with pytest.raises(NeurovisError) as err:
            read_caffemodel(path)
        message = str(err.value)
        assert "\n" not in message and str(path) in message and "caffemodel" in message, message


def test_unknown_layer_type_and_mismatched_weights(tmp_path):
    rng = np.random.default_rng(12)
    odd = [{"name": "bn1", "type": "Frobnicate", "bottom": "data", "top": "bn1"}]
    with pytest.raises(NeurovisError, match="'bn1'.*'Frobnicate'") as err:
        build_net(parse_net_text(prototxt_text(odd, inputs={"data": (1, 3, 4, 4)})))
    assert "\n" not in str(err.value)
    conv = {"name": "conv", "type": "Convolution", "bottom": "data", "top": "conv",
            "convolution_param": {"num_output": 4, "kernel_size": 3}, "blobs": [rand(rng, 4, 3, 3, 3), rand(rng, 4)]}
    spec = parse_net_text(prototxt_text([conv], inputs={"data": (1, 2, 6, 6)}))  # 2 channels, blob has 3
    with pytest.raises(NeurovisError, match="'conv'.*shape"):
        build_net(spec, parse_caffemodel(caffemodel_bytes([conv])))
    spec = parse_net_text(prototxt_text([conv], inputs={"data": (1, 3, 6, 6)}))
    with pytest.raises(NeurovisError, match="no weights"):
        build_net(spec, parse_caffemodel(caffemodel_bytes([dict(conv, name="other")])))
    with pytest.raises(NeurovisError, match="no shape"):
        build_net(parse_net_text(prototxt_text([conv]) + 'input: "data"\n'))
    pool = [{"name": "p", "type": "Pooling", "bottom": "data", "top": "p",
             "pooling_param": {"pool": "MAX", "kernel_size": 1, "stride": 3}}]
    with pytest.raises(NeurovisError, match="'p'.*PyTorch"):
        build_net(parse_net_text(prototxt_text(pool, inputs={"data": (1, 1, 5, 5)})))
