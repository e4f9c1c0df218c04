"""Caffe's Embed and LSTM layers, InnerProduct / Softmax over ``axis: 2``, and an
LRCN-shaped captioner (the paper release's ``nets/lrcn/lrcn_word_to_preds.deploy.prototxt``).

The numpy references are written from Caffe's definitions: ``embed_layer.cpp`` (row
``index`` of the ``(input_dim, num_output)`` weight, plus bias), ``lstm_layer.cpp`` (the
unrolled net: ``W_xc x_t + b_c`` for every step, ``W_xc_static x_static`` added to every
step, ``W_hc`` applied to ``cont_t h_{t-1}``) and ``lstm_unit_layer.cpp`` (gates
``[i, f, o, g]``, ``f`` zero where ``cont_t = 0`` and scaled by ``cont_t`` elsewhere).
Files are written (text and binary) by neurovis's own writer; LSTM and Embed have no V1
or V0 form, so they exist only as V2 files, as in Caffe.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
from neurovis.errors import NeurovisError

TOL = 1e-5


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def max_err(got: torch.Tensor, want: np.ndarray) -> float:
    got = got.detach().double().numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max())


# ----------------------------------------------------------------------------- numpy references
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_embed(indices, weight, bias=None):
    out = weight[indices.astype(np.int64)]  # static_cast<int>: truncation
    return out if bias is None else out + bias


def np_lstm(x, cont, W_xc, b_c, W_hc, x_static=None, W_xc_static=None):
    """h (T, N, H) of Caffe's LSTM; x (T, N, ...), cont (T, N), x_static (N, ...)."""
    steps, n = cont.shape
    hidden = W_hc.shape[1]
    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    static = 0.0 if x_static is None else x_static.reshape(n, -1) @ W_xc_static.T
    outs = []
    for t in range(steps):
        ct = cont[t][:, None]
        a = x[t].reshape(n, -1) @ W_xc.T + b_c + static + (ct * h) @ W_hc.T
        i, f = sigmoid(a[:, :hidden]), sigmoid(a[:, hidden:2 * hidden])
        o, g = sigmoid(a[:, 2 * hidden:3 * hidden]), np.tanh(a[:, 3 * hidden:])
        f = np.where(ct == 0, 0.0, ct * f)
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs)


def np_log_softmax(x, axis):
    shifted = x - x.max(axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))


# ----------------------------------------------------------------------------- single layers
def test_embed_matches_numpy_with_bias_and_float_indices(tmp_path):
    rng = np.random.default_rng(0)
    weight, bias = rand(rng, 7, 4), rand(rng, 4)
    layers = [{"name": "embed", "type": "Embed", "bottom": "words", "top": "e",
               "embed_param": {"input_dim": 7, "num_output": 4}, "blobs": [weight, bias]}]
    text, binary = prototxt_text(layers, inputs={"words": (2, 3)}), caffemodel_bytes(layers)
    model = build_net(parse_net_text(text), parse_caffemodel(binary))
    words = np.array([[0, 6, 3], [2.0, 2.0, 5.0]], np.float32)  # Caffe feeds indices as floats
    assert max_err(model(torch.from_numpy(words)), np_embed(words, weight.astype(np.float64), bias)) < TOL
    assert tuple(model.embed.weight.shape) == (7, 4)  # Caffe's (input_dim, num_output) layout
    with pytest.raises(IndexError):
        model(torch.tensor([[7.0, 0.0, 0.0]]))


@pytest.mark.parametrize("static", [False, True])
def test_lstm_matches_numpy_with_cont_resets_and_static_input(tmp_path, static):
    rng = np.random.default_rng(1 + static)
    steps, n, hidden = 5, 3, 4
    x = rand(rng, steps, n, 2, 3)  # axes from 2 on are flattened: input size 6
    x_static = rand(rng, n, 2, 2)  # axes from 1 on: static size 4
    cont = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0.5], [1, 1, 1], [0, 1, 1]], np.float32)
    W_xc, b_c, W_hc = rand(rng, 4 * hidden, 6), rand(rng, 4 * hidden), rand(rng, 4 * hidden, hidden)
    W_s = rand(rng, 4 * hidden, 4)
    blobs = [W_xc, b_c, W_s, W_hc] if static else [W_xc, b_c, W_hc]
    layer = {"name": "lstm", "type": "LSTM", "bottom": ["x", "cont"] + (["s"] if static else []), "top": "h",
             "recurrent_param": {"num_output": hidden, "weight_filler": {"type": "uniform", "min": -0.08, "max": 0.08}},
             "blobs": blobs}
    inputs = {"x": (1, n, 2, 3), "cont": (1, n)} | ({"s": (n, 2, 2)} if static else {})
    proto = write_prototxt(tmp_path / "lstm.prototxt", [layer], inputs=inputs)
    weights = write_caffemodel(tmp_path / "lstm.caffemodel", [layer])
    model = build_net(read_prototxt(proto), read_caffemodel(weights))
    assert [n for n, _ in model.lstm.named_parameters()] == (
        ["W_xc", "b_c", "W_xc_static", "W_hc"] if static else ["W_xc", "b_c", "W_hc"])
    args = [torch.from_numpy(x), torch.from_numpy(cont)] + ([torch.from_numpy(x_static)] if static else [])
    got = model(*args)  # 5 steps although the file declares 1: any T, any N
    f64 = [b.astype(np.float64) for b in (W_xc, b_c, W_hc)]
    want = np_lstm(x.astype(np.float64), cont.astype(np.float64), *f64,
                   x_static.astype(np.float64) if static else None, W_s.astype(np.float64) if static else None)
    assert got.shape == (steps, n, hidden) and max_err(got, want) < TOL
    # cont = 0 forgets everything before: stream 0 restarts at t = 4, its output there is
    # that of a fresh run on the last step; streams 1 and 2 continue and differ from it
    tail = model(*[a[4:] for a in args[:2]] + args[2:])
    assert max_err(tail[0, :1], want[4, :1]) < TOL and max_err(tail[0, 1:], want[4, 1:]) > 1e-3
    if static:  # the static input changes every step's output
        assert max_err(model(args[0], args[1], torch.zeros_like(args[2])), want) > 1e-2


# ----------------------------------------------------------------------------- LRCN-shaped captioner
VOCAB, EMBED, HIDDEN, FEATURES, STREAMS = 11, 6, 5, 7, 3


def lrcn_layers(rng):
    """The layers of lrcn_word_to_preds.deploy.prototxt with tiny widths and random blobs."""
    return [
        {"name": "embedding", "type": "Embed", "bottom": "input_sentence", "top": "embedded_input_sentence",
         "embed_param": {"input_dim": VOCAB, "num_output": EMBED, "bias_term": False},
         "blobs": [rand(rng, VOCAB, EMBED)]},
        {"name": "lstm1", "type": "LSTM", "bottom": ["embedded_input_sentence", "cont_sentence"], "top": "lstm1",
         "recurrent_param": {"num_output": HIDDEN},
         "blobs": [rand(rng, 4 * HIDDEN, EMBED, scale=0.5), rand(rng, 4 * HIDDEN, scale=0.5),
                   rand(rng, 4 * HIDDEN, HIDDEN, scale=0.5)]},
        {"name": "lstm2", "type": "LSTM", "propagate_down": [False, False, True],
         "bottom": ["lstm1", "cont_sentence", "image_features"], "top": "lstm2", "recurrent_param": {"num_output": HIDDEN},
         "blobs": [rand(rng, 4 * HIDDEN, HIDDEN, scale=0.5), rand(rng, 4 * HIDDEN, scale=0.5),
                   rand(rng, 4 * HIDDEN, FEATURES, scale=0.5), rand(rng, 4 * HIDDEN, HIDDEN, scale=0.5)]},
        {"name": "predict", "type": "InnerProduct", "bottom": "lstm2", "top": "predict",
         "inner_product_param": {"axis": 2, "num_output": VOCAB}, "blobs": [rand(rng, VOCAB, HIDDEN), rand(rng, VOCAB)]},
        {"name": "probs", "type": "Softmax", "bottom": "predict", "top": "probs", "softmax_param": {"axis": 2}},
        {"name": "log_prob", "type": "Log", "bottom": "probs", "top": "log_prob"},
    ]


LRCN_INPUTS = {"cont_sentence": (1, STREAMS), "input_sentence": (1, STREAMS), "image_features": (STREAMS, FEATURES)}


def np_lrcn(layers, cont, words, features):
    """log p(word | previous words, image) (T, N, VOCAB) of the LRCN-shaped net."""
    b = {lay["name"]: [x.astype(np.float64) for x in lay["blobs"]] for lay in layers if "blobs" in lay}
    e = np_embed(words, b["embedding"][0])
    h1 = np_lstm(e, cont, *b["lstm1"])
    W_xc, b_c, W_s, W_hc = b["lstm2"]
    h2 = np_lstm(h1, cont, W_xc, b_c, W_hc, features, W_s)
    logits = h2 @ b["predict"][0].T + b["predict"][1]
    return logits, np_log_softmax(logits, axis=2)


@pytest.mark.parametrize("binary_prototxt", [False, True])
def test_lrcn_shaped_net_matches_numpy(tmp_path, binary_prototxt):
    rng = np.random.default_rng(3)
    layers = lrcn_layers(rng)
    weights = write_caffemodel(tmp_path / "lrcn.caffemodel", layers, inputs=LRCN_INPUTS)
    if binary_prototxt:  # the caffemodel itself describes the net too
        spec = read_caffemodel(weights)
    else:
        spec = read_prototxt(write_prototxt(tmp_path / "lrcn.prototxt", layers, inputs=LRCN_INPUTS))
    words = rng.integers(0, VOCAB, (4, STREAMS)).astype(np.float32)
    cont = np.array([[0, 0, 0], [1, 1, 1], [1, 1, 0], [1, 1, 1]], np.float32)  # stream 2 restarts at t=2
    features = rand(rng, STREAMS, FEATURES)
    logits, log_probs = np_lrcn(layers, cont.astype(np.float64), words, features.astype(np.float64))
    args = [torch.from_numpy(a) for a in (cont, words, features)]
    logit_net = build_net(spec, read_caffemodel(weights))
    assert logit_net.input_names == ("cont_sentence", "input_sentence", "image_features")
    assert logit_net.output_names == ("predict",)  # Softmax + Log stripped: logits
    assert max_err(logit_net(*args), logits) < TOL
    full = build_net(spec, read_caffemodel(weights), strip_softmax=False)
    assert full.output_names == ("log_prob",) and max_err(full(*args), log_probs) < TOL
    assert np.allclose(np.exp(log_probs).sum(2), 1.0)


def test_lrcn_convert_round_trip_and_image_gradient(tmp_path):
    rng = np.random.default_rng(4)
    layers = lrcn_layers(rng)
    proto = write_prototxt(tmp_path / "lrcn.prototxt", layers, inputs=LRCN_INPUTS)
    weights = write_caffemodel(tmp_path / "lrcn.caffemodel", layers)
    model = load_converted(convert_caffe(proto, weights, tmp_path / "lrcn.pt", strip_softmax=False))
    cont = torch.tensor([[0.0], [1.0], [1.0]])
    words = torch.tensor([[2.0], [5.0], [1.0]])
    features = torch.from_numpy(rand(rng, 1, FEATURES)).requires_grad_(True)
    log_probs = model(cont, words, features)
    _, want = np_lrcn(layers, cont.double().numpy(), words.numpy(), features.detach().double().numpy())
    assert max_err(log_probs, want) < TOL
    log_probs[:, 0, 3].sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0  # the static input gets gradients


# ----------------------------------------------------------------------------- the paper's file
LRCN_DEPLOY = """
name: "caffenet_to_lstm"
force_backward: true
input: "cont_sentence"   input_shape { dim: 1 dim: 20 }
input: "input_sentence"  input_shape { dim: 1 dim: 20 }
input: "image_features"  input_shape { dim: 20 dim: 1000 }
layer { name: "embedding" type: "Embed" bottom: "input_sentence" top: "embedded_input_sentence"
        embed_param { input_dim: 8801 num_output: 1000 bias_term: false } }
layer { name: "lstm1" type: "LSTM" bottom: "embedded_input_sentence" bottom: "cont_sentence" top: "lstm1"
        recurrent_param { num_output: 1000 } }
layer { name: "lstm2" type: "LSTM" propagate_down: false propagate_down: false propagate_down: true
        bottom: "lstm1" bottom: "cont_sentence" bottom: "image_features" top: "lstm2"
        recurrent_param { num_output: 1000 } }
layer { name: "predict" type: "InnerProduct" bottom: "lstm2" top: "predict"
        inner_product_param { axis: 2 num_output: 8801 } }
layer { name: "probs" type: "Softmax" bottom: "predict" top: "probs" softmax_param { axis: 2 } }
layer { name: "log_prob" type: "Log" bottom: "probs" top: "log_prob" }
"""


def test_paper_lrcn_prototxt_builds_with_caffes_parameter_shapes():
    model, _, shapes = assemble(parse_net_text(LRCN_DEPLOY), strip_softmax=False)
    assert tuple(shapes["embedded_input_sentence"]) == (1, 20, 1000) and tuple(shapes["lstm2"]) == (1, 20, 1000)
    assert tuple(shapes["log_prob"]) == (1, 20, 8801) and model.output_names == ("log_prob",)
    params = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert params["embedding.weight"] == (8801, 1000) and "embedding.bias" not in params
    assert params["lstm2.W_xc_static"] == (4000, 1000) and params["lstm1.W_hc"] == (4000, 1000)
    # 8801·1000 + (4000·1000·2 + 4000) + (4000·1000·3 + 4000) + 8801·1000 + 8801
    assert sum(p.numel() for p in model.parameters()) == 37_618_801


def test_recurrent_errors_name_the_layer(tmp_path):
    rng = np.random.default_rng(5)
    layers = lrcn_layers(rng)
    spec = parse_net_text(prototxt_text(layers, inputs=LRCN_INPUTS))
    short = [dict(lay, blobs=lay["blobs"][:3]) if lay["name"] == "lstm2" else lay for lay in layers]
    with pytest.raises(NeurovisError, match="'lstm2'.*3 blob.*W_xc, b_c, W_xc_static, W_hc") as err:
        build_net(spec, parse_caffemodel(caffemodel_bytes(short)))
    assert "\n" not in str(err.value)
    with pytest.raises(NeurovisError, match="'lstm1'.*expose_hidden"):
        exposed = [dict(lay, recurrent_param={"num_output": HIDDEN, "expose_hidden": True}) if lay["name"] == "lstm1"
                   else lay for lay in layers]
        assemble(parse_net_text(prototxt_text(exposed, inputs=LRCN_INPUTS)))
    with pytest.raises(NeurovisError, match="'lstm1'.*\\(T, N\\)"):
        assemble(parse_net_text(prototxt_text(layers, inputs=dict(LRCN_INPUTS, cont_sentence=(2, STREAMS)))))
    with pytest.raises(NeurovisError, match="'embedding'.*no V1 form"):
        prototxt_text(layers, version=1)
