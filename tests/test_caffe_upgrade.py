"""Caffe's V0 and V1 net files, upgraded as Caffe's ``upgrade_proto.cpp`` does.

A small CaffeNet-like net is written by neurovis's own writer in the V0 form (with a
``padding`` layer before conv2, as the first Caffe nets had), the V1 form and the modern V2
form, as text and binary; every combination Caffe itself would load must convert to the
same module with the same outputs, which also match a numpy forward of the layer
definitions. The Places205 fixture reproduces the structure of the paper release's
``nets/placesCNN/places205CNN_deploy_updated.prototxt`` (V0, lower-case types, flat fields).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurovis.pixels import CAFFE_IMAGENET
from neurovis.caffe import (
    build_net,
    caffemodel_bytes,
    convert_caffe,
    load_converted,
    parse_caffemodel,
    parse_net_text,
    prototxt_text,
    read_caffemodel,
    read_prototxt,
    write_caffemodel,
    write_prototxt,
)
from neurovis.caffe.build import assemble
from neurovis.caffe.upgrade import upgrade_net
from neurovis.errors import NeurovisError

from test_caffe import np_conv, np_fc, np_lrn, np_pool, rand, rel_err, relu  # noqa: E402  (tests/ is on sys.path)


def small_net(rng: np.random.Generator, padding_layer: bool) -> list[dict]:
    """conv1 relu pool lrn [padding] conv2(g2) relu pool fc6 relu drop fc7 softmax on 3×17×17.

    With ``padding_layer`` conv2 reads a V0 ``padding`` layer (pad 1) instead of having
    ``pad: 1`` itself: the V0-only way of writing the same net."""
    conv2 = {"name": "conv2", "type": "Convolution", "bottom": "norm1", "top": "conv2",
             "convolution_param": {"num_output": 6, "kernel_size": 3, "pad": 1, "group": 2},
             "blobs": [rand(rng, 6, 2, 3, 3, scale=0.3), rand(rng, 6, scale=0.1)]}
    pad = []
    if padding_layer:
        conv2 = dict(conv2, bottom="pad2", convolution_param={"num_output": 6, "kernel_size": 3, "group": 2})
        pad = [{"name": "pad2", "type": "padding", "bottom": "norm1", "top": "pad2", "pad": 1}]
    return [
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "param": [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}],
         "convolution_param": {"num_output": 4, "kernel_size": 5, "stride": 2,
                               "weight_filler": {"type": "gaussian", "std": 0.01}},
         "blobs": [rand(rng, 4, 3, 5, 5, scale=0.3), rand(rng, 4, scale=0.1)]},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
        {"name": "norm1", "type": "LRN", "bottom": "pool1", "top": "norm1",
         "lrn_param": {"local_size": 3, "alpha": 0.3, "beta": 0.75}},
        *pad,
        conv2,
        {"name": "relu2", "type": "ReLU", "bottom": "conv2", "top": "conv2"},
        {"name": "pool2", "type": "Pooling", "bottom": "conv2", "top": "pool2",
         "pooling_param": {"pool": "AVE", "kernel_size": 2, "stride": 1}},
        {"name": "fc6", "type": "InnerProduct", "bottom": "pool2", "top": "fc6",
         "inner_product_param": {"num_output": 5}, "blobs": [rand(rng, 5, 6 * 2 * 2, scale=0.3), rand(rng, 5)]},
        {"name": "relu6", "type": "ReLU", "bottom": "fc6", "top": "fc6"},
        {"name": "drop6", "type": "Dropout", "bottom": "fc6", "top": "fc6", "dropout_param": {"dropout_ratio": 0.5}},
        {"name": "fc7", "type": "InnerProduct", "bottom": "fc6", "top": "fc7",
         "inner_product_param": {"num_output": 3}, "blobs": [rand(rng, 3, 5, scale=0.3), rand(rng, 3)]},
        {"name": "prob", "type": "Softmax", "bottom": "fc7", "top": "prob"},
    ]


def np_small_net(x: np.ndarray, layers: list[dict]) -> np.ndarray:
    blobs = {lay["name"]: [b.astype(np.float64) for b in lay["blobs"]] for lay in layers if "blobs" in lay}
    h = np_lrn(np_pool(relu(np_conv(x, *blobs["conv1"], (2, 2), (0, 0))), 3, 2, 0), 3, 0.3, 0.75)
    h = np_pool(relu(np_conv(h, *blobs["conv2"], (1, 1), (1, 1), group=2)), 2, 1, 0, "AVE")
    return np_fc(relu(np_fc(h, *blobs["fc6"])), *blobs["fc7"])


INPUTS = {"data": (1, 3, 17, 17)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{version: (prototxt path, caffemodel path)} of the same net, and its layers (V2)."""
    tmp = tmp_path_factory.mktemp("upgrade")
    rng = np.random.default_rng(0)
    modern = small_net(rng, padding_layer=False)
    old = small_net(np.random.default_rng(0), padding_layer=True)  # the same blobs
    out = {}
    for version, layers in ((0, old), (1, modern), (2, modern)):
        out[version] = (write_prototxt(tmp / f"v{version}.prototxt", layers, version=version, inputs=INPUTS),
                        write_caffemodel(tmp / f"v{version}.caffemodel", layers, version=version, inputs=INPUTS))
    return out, modern


def test_v0_text_is_caffes_first_format_and_upgrades_like_caffe(files):
    paths, _ = files
    text = paths[0][0].read_text()
    assert 'type: "conv"' in text and "kernelsize: 5" in text and 'type: "padding"' in text
    assert "blobs_lr: 2.0" in text and "convolution_param" not in text
    spec = read_prototxt(paths[0][0])
    assert spec.version == "V0" and spec.upgrade_notes == []
    assert [lay.name for lay in spec.layers][:5] == ["conv1", "relu1", "pool1", "norm1", "conv2"]  # pad2 folded
    conv1, conv2 = spec.layer("conv1"), spec.layer("conv2")
    assert conv1.type == "Convolution" and conv1.params["convolution_param"] == {
        "num_output": 4, "kernel_size": [5], "stride": [2], "weight_filler": {"type": "gaussian", "std": 0.01}}
    assert conv1.params["param"] == [{"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}]
    assert conv2.bottoms == ["norm1"] and conv2.params["convolution_param"]["pad"] == [1]
    assert spec.layer("pool2").params["pooling_param"] == {"pool": "AVE", "kernel_size": [2], "stride": [1]}
    assert spec.layer("drop6").params["dropout_param"] == {"dropout_ratio": 0.5}
    assert spec.layer("norm1").params["lrn_param"] == {"local_size": 3, "alpha": pytest.approx(0.3), "beta": 0.75}
    assert [lay.type for lay in spec.layers][-1] == "Softmax" and spec.inputs == [("data", (1, 3, 17, 17))]
    weights = read_caffemodel(paths[0][1])
    assert weights.version == "V0" and weights.layer("pad2") is None
    assert weights.layer("conv2").blobs[0].shape == (6, 2, 3, 3)  # legacy num/channels/height/width


@pytest.mark.parametrize("proto_version", [0, 1, 2])
@pytest.mark.parametrize("weights_version", [0, 1, 2])
def test_every_version_pair_converts_to_the_same_outputs(files, proto_version, weights_version):
    paths, modern = files
    x = rand(np.random.default_rng(1), 2, 3, 17, 17, scale=2.0)
    model = build_net(read_prototxt(paths[proto_version][0]), read_caffemodel(paths[weights_version][1]))
    reference = build_net(read_prototxt(paths[2][0]), read_caffemodel(paths[2][1]))
    assert [n for n, _ in model.named_children()] == [n for n, _ in reference.named_children()]
    got = model(torch.from_numpy(x))
    torch.testing.assert_close(got, reference(torch.from_numpy(x)), rtol=0, atol=0)
    assert rel_err(got, np_small_net(x.astype(np.float64), modern)) < 1e-5
    assert model.conv2.padding == (1, 1) and model.pixel_space == CAFFE_IMAGENET.with_size((17, 17))


def test_v0_files_convert_with_the_command_path(files, tmp_path):
    paths, modern = files
    out = convert_caffe(paths[0][0], paths[0][1], tmp_path / "v0.pt")
    payload = torch.load(out, weights_only=True)
    assert payload["source"]["caffemodel_version"] == "V0"
    x = rand(np.random.default_rng(2), 1, 3, 17, 17)
    assert rel_err(load_converted(out)(torch.from_numpy(x)), np_small_net(x.astype(np.float64), modern)) < 1e-5


def test_v1_binary_round_trip_keeps_blobs_lr_as_param_specs():
    rng = np.random.default_rng(3)
    layers = small_net(rng, padding_layer=False)
    spec = parse_caffemodel(caffemodel_bytes(layers, version=1, inputs=INPUTS))
    assert spec.version == "V1" and spec.layer("conv1").params["param"] == [
        {"lr_mult": 1.0, "decay_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}]
    np.testing.assert_array_equal(spec.layer("fc6").blobs[0].reshape(5, 24), next(lay for lay in layers if lay["name"] == "fc6")["blobs"][0])


def test_v1_data_layer_transformation_fields_move_to_transform_param():
    text = ('layers { name: "data" type: DATA top: "data" top: "label" '
            'data_param { source: "x" batch_size: 4 crop_size: 9 mirror: true scale: 0.5 } }\n'
            'layers { name: "fc" type: INNER_PRODUCT bottom: "data" top: "fc" inner_product_param { num_output: 2 } }')
    spec = parse_net_text(text)
    data = spec.layer("data")
    assert data.params["transform_param"] == {"crop_size": 9, "mirror": True, "scale": 0.5}
    assert data.params["data_param"] == {"source": ["x"], "batch_size": [4]}
    model, _, shapes = assemble(spec)
    assert tuple(shapes["data"]) == (1, 3, 9, 9) and tuple(shapes["fc"]) == (1, 2)


# ----------------------------------------------------------------------------- Places205 (V0)
def places205_v0_text() -> str:
    """The structure of the paper release's places205CNN_deploy_updated.prototxt: V0
    ``layers { layer { ... } bottom top }``, lower-case types, flat fields, fillers and
    blobs_lr / weight_decay as in that file."""

    def learned(name, kind, bottom, extra, std=0.01, bias=0.0):
        return (f'layers {{\n  layer {{\n    name: "{name}"\n    type: "{kind}"\n{extra}'
                f'    weight_filler {{\n      type: "gaussian"\n      std: {std}\n    }}\n'
                f'    bias_filler {{\n      type: "constant"\n      value: {bias}\n    }}\n'
                '    blobs_lr: 1.\n    blobs_lr: 2.\n    weight_decay: 1.\n    weight_decay: 0.\n  }\n'
                f'  bottom: "{bottom}"\n  top: "{name}"\n}}\n')

    def plain(name, kind, bottom, top, extra=""):
        return f'layers {{\n  layer {{\n    name: "{name}"\n    type: "{kind}"\n{extra}  }}\n  bottom: "{bottom}"\n  top: "{top}"\n}}\n'

    pool = "    pool: MAX\n    kernelsize: 3\n    stride: 2\n"
    lrn = "    local_size: 5\n    alpha: 0.0001\n    beta: 0.75\n"
    parts = ['name: "Places205-CNN"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 227\ninput_dim: 227\n'
             "force_backward: true\n",
             learned("conv1", "conv", "data", "    num_output: 96\n    kernelsize: 11\n    stride: 4\n", bias="0."),
             plain("relu1", "relu", "conv1", "conv1"), plain("pool1", "pool", "conv1", "pool1", pool),
             plain("norm1", "lrn", "pool1", "norm1", lrn),
             learned("conv2", "conv", "norm1", "    num_output: 256\n    group: 2\n    kernelsize: 5\n    pad: 2\n", bias="1."),
             plain("relu2", "relu", "conv2", "conv2"), plain("pool2", "pool", "conv2", "pool2", pool),
             plain("norm2", "lrn", "pool2", "norm2", lrn),
             learned("conv3", "conv", "norm2", "    num_output: 384\n    kernelsize: 3\n    pad: 1\n", bias="0."),
             plain("relu3", "relu", "conv3", "conv3"),
             learned("conv4", "conv", "conv3", "    num_output: 384\n    group: 2\n    kernelsize: 3\n    pad: 1\n", bias="1."),
             plain("relu4", "relu", "conv4", "conv4"),
             learned("conv5", "conv", "conv4", "    num_output: 256\n    group: 2\n    kernelsize: 3\n    pad: 1\n", bias="1."),
             plain("relu5", "relu", "conv5", "conv5"),
             plain("pool5", "pool", "conv5", "pool5", "    kernelsize: 3\n    pool: MAX\n    stride: 2\n"),
             learned("fc6", "innerproduct", "pool5", "    num_output: 4096\n", std=0.005, bias="1."),
             plain("relu6", "relu", "fc6", "fc6"), plain("drop6", "dropout", "fc6", "fc6", "    dropout_ratio: 0.5\n"),
             learned("fc7", "innerproduct", "fc6", "    num_output: 4096\n", std=0.005, bias="1."),
             plain("relu7", "relu", "fc7", "fc7"), plain("drop7", "dropout", "fc7", "fc7", "    dropout_ratio: 0.5\n"),
             learned("fc8", "innerproduct", "fc7", "    num_output: 205\n", bias="0"),
             plain("prob", "softmax", "fc8", "prob")]
    return "".join(parts)


def test_places205_v0_prototxt_builds_with_alexnet_shapes_and_parameter_count():
    spec = parse_net_text(places205_v0_text())
    assert spec.version == "V0" and spec.name == "Places205-CNN" and spec.upgrade_notes == []
    assert spec.layer("conv2").params["convolution_param"] == {
        "num_output": 256, "group": 2, "kernel_size": [5], "pad": [2],
        "weight_filler": {"type": "gaussian", "std": 0.01}, "bias_filler": {"type": "constant", "value": 1.0}}
    model, _, shapes = assemble(spec)
    assert tuple(shapes["conv1"]) == (1, 96, 55, 55) and tuple(shapes["pool5"]) == (1, 256, 6, 6)
    assert tuple(shapes["fc8"]) == (1, 205) and model.output_names == ("fc8",)
    # CaffeNet's 60,965,224 parameters with a 205-way fc8: 60,965,224 - 795 × 4,097
    assert sum(p.numel() for p in model.parameters()) == 57_708_109
    assert model.pixel_space == CAFFE_IMAGENET and model.input_shape == (3, 227, 227)
    assert model.conv2.groups == 2 and model.conv2.padding == (2, 2) and model.norm1.size == 5


# ----------------------------------------------------------------------------- errors
def one_line_error(text: str, match: str) -> str:
    with pytest.raises(NeurovisError, match=match) as err:
        assemble(parse_net_text(text))
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_unsupported_and_broken_old_files_give_one_line_errors_naming_the_layer():
    head = 'input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
    one_line_error(head + 'layers { layer { name: "odd" type: "fancy" } bottom: "data" top: "odd" }', "'odd'.*'fancy'")
    one_line_error(head + 'layers { layer { name: "p" type: "padding" pad: 1 } bottom: "data" top: "p" }\n'
                          'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }', "'r'.*'relu'.*padding")
    one_line_error(head + 'layers { layer { name: "c" type: "conv" num_output: 2 kernelsize: 3 } bottom: "nope" top: "c" }',
                   "'c'.*'nope'")
    one_line_error(head + 'layers { layer { name: "sig" type: "sigmoid" } bottom: "data" top: "s" }\n'
                          'layer { name: "x" type: "ReLU" bottom: "s" top: "x" }', "both")
    # A V1 type that upgrades but has no builder: the builder names it.
    one_line_error(head + 'layers { name: "mvn" type: MVN bottom: "data" top: "m" }', "'mvn'.*'MVN'")
    # A V0 field given to a type without it: Caffe drops it with an error and loads; so do we.
    spec = parse_net_text(head + 'layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "data" top: "r" }')
    assert spec.upgrade_notes == ["layer 'r': V0 field 'num_output' has no meaning for type 'relu'; dropped as Caffe drops it"]
    assert spec.layer("r").params == {"bottom": ["data"], "top": ["r"], "name": "r", "type": "ReLU"}


def test_writer_refuses_what_v0_cannot_express():
    lstm = [{"name": "lstm", "type": "LSTM", "bottom": ["x", "c"], "top": "h", "recurrent_param": {"num_output": 2}}]
    with pytest.raises(NeurovisError, match="'lstm'.*no V0 form"):
        prototxt_text(lstm, version=0)
    conv = [{"name": "c", "type": "Convolution", "bottom": "x", "top": "c",
             "convolution_param": {"num_output": 2, "kernel_size": [3, 5]}}]
    with pytest.raises(NeurovisError, match="one value"):
        prototxt_text(conv, version=0)


def test_upgrade_does_not_modify_its_input():
    net = {"layers": [{"layer": {"name": "p", "type": "padding", "pad": 2}, "bottom": ["data"], "top": ["p"]},
                      {"layer": {"name": "c", "type": "conv", "num_output": 1, "kernelsize": 3}, "bottom": ["p"], "top": ["c"]}],
           "input": ["data"]}
    before = repr(net)
    upgraded, version, notes = upgrade_net(net)
    assert repr(net) == before and version == "V0" and notes == []
    assert upgraded["layer"] == [{"bottom": ["data"], "top": ["c"], "name": "c", "type": "Convolution",
                                  "convolution_param": {"num_output": 1, "kernel_size": [3], "pad": [2]}}]


def test_mean_file_sets_the_input_convention(files, tmp_path):
    """Places205 was trained with its own mean image (a .binaryproto):
    --mean-file makes the module subtract its per-channel mean."""
    import argparse

    from neurovis.pixels import PixelAdapter, RGB01
    from neurovis.caffe import add_convert_caffe_parser
    from neurovis.caffe.convert import read_mean_file
    from neurovis.caffe.netparam import encode_message

    paths, _ = files
    image = np.stack([np.full((5, 5), 100.0), np.full((5, 5), 110.0), np.full((5, 5), 120.0)])
    image[0, 0, 0] += 25.0  # mean of channel 0: 101
    blob = {"num": 1, "channels": 3, "height": 5, "width": 5, "data": image.astype(np.float32).ravel()}
    mean_file = tmp_path / "mean.binaryproto"
    mean_file.write_bytes(encode_message("BlobProto", blob))
    assert read_mean_file(mean_file) == pytest.approx((101.0, 110.0, 120.0))
    parser = argparse.ArgumentParser(prog="neurovis")
    add_convert_caffe_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["convert-caffe", "--prototxt", str(paths[0][0]), "--caffemodel", str(paths[0][1]),
                              "--out", str(tmp_path / "m.pt"), "--mean-file", str(mean_file), "--quiet"])
    assert args.func(args) == 0
    space = load_converted(tmp_path / "m.pt").pixel_space
    assert space.mean == pytest.approx((101.0, 110.0, 120.0)) and space.channels == "BGR" and space.size == (17, 17)
    white = PixelAdapter(RGB01, space)(torch.ones(1, 3, 17, 17))
    assert torch.allclose(white[0, :, 0, 0], torch.tensor([255 - 101.0, 255 - 110.0, 255 - 120.0]))
    (tmp_path / "bad.binaryproto").write_bytes(b"\x01\x02")
    with pytest.raises(NeurovisError, match="bad.binaryproto"):
        read_mean_file(tmp_path / "bad.binaryproto")
