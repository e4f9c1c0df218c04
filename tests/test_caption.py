"""CaptionCondition: log p(caption | image) summed over words, from any captioner, and
from an LRCN-shaped converted Caffe net whose image features come from a condition net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurovis as nv
from neurovis.pixels import CAFFE_IMAGENET, RGB01
from neurovis.caffe import build_net, parse_caffemodel, parse_net_text, caffemodel_bytes, prototxt_text
from neurovis.caption import CaptionCondition, LRCNCaptioner, lrcn_tokens
from neurovis.errors import NeurovisError

def directional_check(fn, x: torch.Tensor, directions: int = 3, h: float = 1e-6) -> None:
    """``fn``'s autograd gradient (summed over the batch) against central differences
    along random directions, in float64."""
    x = x.detach().requires_grad_(True)
    grad, = torch.autograd.grad(fn(x).sum(), x)
    gen = torch.Generator().manual_seed(0)
    for _ in range(directions):
        d = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        with torch.no_grad():
            numeric = (fn(x + h * d).sum() - fn(x - h * d).sum()) / (2 * h)
        assert abs(float(numeric) - float((grad * d).sum())) < 1e-6 * max(1.0, abs(float(numeric)))


from test_caffe_lstm import FEATURES, LRCN_INPUTS, lrcn_layers, np_lrcn  # noqa: E402  (tests/ is on sys.path)


class TinyCaptioner(nn.Module):
    """Images (B, 3, 4, 4) -> features; an Elman RNN over tokens -> (B, T, V) log-probs."""

    def __init__(self, vocab: int = 6, hidden: int = 5) -> None:
        super().__init__()
        self.image = nn.Linear(3 * 4 * 4, hidden)
        self.embed = nn.Embedding(vocab, hidden)
        self.recur = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.image(images.flatten(1)))
        outs = []
        for t in range(tokens.shape[1]):
            h = torch.tanh(self.recur(h) + self.embed(tokens[:, t]))
            outs.append(F.log_softmax(self.out(h), -1))
        return torch.stack(outs, 1)


def manual_log_p(model: TinyCaptioner, images: torch.Tensor, caption: list[int], start: int) -> torch.Tensor:
    """Σ_t log p(w_t | w_<t, image), one word at a time, for each image separately."""
    totals = []
    for image in images:
        h = torch.tanh(model.image(image.flatten()))
        total, previous = image.new_zeros(()), start
        for word in caption:
            h = torch.tanh(model.recur(h) + model.embed.weight[previous])
            total = total + F.log_softmax(model.out(h), -1)[word]
            previous = word
        totals.append(total)
    return torch.stack(totals)


def test_caption_condition_sums_word_log_probs_and_its_gradient_is_exact():
    torch.manual_seed(0)
    model = TinyCaptioner().double().eval()
    caption = [3, 1, 4, 0]
    condition = CaptionCondition(model, caption, start_token=5)
    images = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    result = condition.evaluate(images, RGB01)
    want = manual_log_p(model, images, caption, 5)
    torch.testing.assert_close(result.objective, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(result.activation, want)
    per_word = [manual_log_p(model, images, caption[:k + 1], 5) - manual_log_p(model, images, caption[:k], 5)
                for k in range(len(caption))]
    torch.testing.assert_close(result.prob, torch.stack(per_word).exp().mean(0))  # the paper code's mean word prob
    assert bool((result.prob < 1).all()) and result.objective.requires_grad and not result.prob.requires_grad
    # the objective's gradient against central finite differences
    directional_check(lambda x: condition.evaluate(x, RGB01).objective, images)
    images.requires_grad_(True)
    # images are independent: the gradient of sample 0's objective does not touch sample 1
    grad, = torch.autograd.grad(condition.evaluate(images, RGB01).objective[0], images)
    assert grad[0].abs().sum() > 0 and grad[1].abs().sum() == 0
    assert condition.modules() == [model] and condition.describe()["caption"] == caption
    assert isinstance(condition, nv.conditions.Condition) and nv.CaptionCondition is CaptionCondition


def lrcn_and_features(seed: int):
    rng = np.random.default_rng(seed)
    layers = lrcn_layers(rng)
    lrcn = build_net(parse_net_text(prototxt_text(layers, inputs=LRCN_INPUTS)), parse_caffemodel(caffemodel_bytes(layers)),
                     strip_softmax=False)
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, FEATURES)).eval()
    features.pixel_space = CAFFE_IMAGENET.with_size((6, 6))
    return layers, lrcn, features


def test_lrcn_caption_condition_matches_numpy_through_the_feature_net():
    layers, lrcn, features = lrcn_and_features(1)
    caption = [4, 9, 2, 0]  # 0: LRCN's <EOS>, also its start token
    condition = CaptionCondition(LRCNCaptioner(lrcn), caption, features=features)
    images = torch.rand(3, 3, 6, 6)  # in [0, 1] RGB: converted to the feature net's BGR 0-255 minus mean
    result = condition.evaluate(images, RGB01)
    with torch.no_grad():
        from neurovis.pixels import PixelAdapter

        feats = features(PixelAdapter(RGB01, features.pixel_space)(images)).double().numpy()
    fed = np.array([0] + caption[:-1], np.float64)
    want = []
    for b in range(3):  # one stream per image, numpy reference of the whole LRCN
        _, log_probs = np_lrcn(layers, np.r_[0.0, np.ones(3)][:, None], fed[:, None], feats[b:b + 1])
        want.append(sum(log_probs[t, 0, w] for t, w in enumerate(caption)))
    assert np.abs(result.objective.detach().double().numpy() - np.array(want)).max() < 1e-5
    assert condition.modules()[1] is features and condition.describe()["features"] == "Sequential"


def test_lrcn_caption_gradient_matches_finite_differences():
    _, lrcn, features = lrcn_and_features(2)
    condition = CaptionCondition(LRCNCaptioner(lrcn.double()), [3, 0], features=features.double(),
                                 input_space=RGB01)  # no pixel conversion
    images = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    directional_check(lambda x: condition.evaluate(x, RGB01).objective, images)


def test_caption_condition_errors_are_one_line():
    model = TinyCaptioner().eval()
    for bad in ([], [[1, 2]], [1.5], [-1]):
        with pytest.raises(NeurovisError, match="token ids"):
            CaptionCondition(model, bad)
    with pytest.raises(NeurovisError, match="vocabulary has 6"):
        CaptionCondition(model, [2, 6]).evaluate(torch.rand(1, 3, 4, 4), RGB01)
    wrong = CaptionCondition(lambda images, tokens: tokens.float(), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(NeurovisError, match=r"shape \(1, 2, vocabulary\), got \(1, 2\)") as err:
        wrong.evaluate(torch.rand(1, 3, 4, 4), RGB01)
    assert "\n" not in str(err.value)
    with pytest.raises(NeurovisError, match="3 inputs"):
        LRCNCaptioner(model)


def test_lrcn_tokens_number_words_as_the_paper_code_does():
    vocabulary = ["<unk>", "a", "on", "pizza", "table", "a"]
    assert lrcn_tokens("a_pizza_on_a_table", vocabulary) == [2, 4, 3, 2, 5, 0]
    assert lrcn_tokens(["table"], vocabulary) == [5, 0]
    with pytest.raises(NeurovisError, match="no 'volcano'"):
        lrcn_tokens("a volcano", vocabulary)


def test_paper_caption_path_two_prototxts_one_caffemodel_through_the_command(tmp_path, capsys):
    """As in the paper's release: lrcn_caffenet_iter_110000.caffemodel holds both the
    CaffeNet layers (read with caffenet.prototxt, up to fc8) and the LSTM layers (read with
    lrcn_word_to_preds.deploy.prototxt); both conversions use that one file."""
    import argparse

    from neurovis.caffe import add_convert_caffe_parser, load_converted, write_caffemodel, write_prototxt
    from test_caffe import rand

    rng = np.random.default_rng(7)
    convnet = [
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 2, "kernel_size": 3}, "blobs": [rand(rng, 2, 3, 3, 3), rand(rng, 2)]},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "fc8", "type": "InnerProduct", "bottom": "conv1", "top": "fc8",
         "inner_product_param": {"num_output": FEATURES}, "blobs": [rand(rng, FEATURES, 32, scale=0.3), rand(rng, FEATURES)]},
        {"name": "prob", "type": "Softmax", "bottom": "fc8", "top": "prob"},
        {"name": "log", "type": "Log", "bottom": "prob", "top": "log"},
    ]
    lstm = lrcn_layers(rng)
    weights = write_caffemodel(tmp_path / "lrcn_caffenet.caffemodel", convnet + lstm)
    caffenet_proto = write_prototxt(tmp_path / "caffenet.prototxt", convnet, inputs={"data": (1, 3, 6, 6)})
    lrcn_proto = write_prototxt(tmp_path / "lrcn.prototxt", lstm, inputs=LRCN_INPUTS)
    parser = argparse.ArgumentParser(prog="neurovis")
    add_convert_caffe_parser(parser.add_subparsers(dest="command", required=True))
    for proto, out, extra in ((caffenet_proto, "features.pt", []), (lrcn_proto, "lrcn.pt", ["--keep-softmax"])):
        args = parser.parse_args(["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights),
                                  "--out", str(tmp_path / out), *extra])
        assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "output fc8" in printed and "output log_prob" in printed
    features, lrcn = load_converted(tmp_path / "features.pt"), load_converted(tmp_path / "lrcn.pt")
    caption = [5, 1, 0]
    condition = CaptionCondition(LRCNCaptioner(lrcn), caption, features=features)
    images = torch.rand(2, 3, 6, 6) * 255  # already in the feature net's BGR 0-255 space
    result = condition.evaluate(images, features.pixel_space)
    with torch.no_grad():
        feats = features(images).double().numpy()
    fed = np.array([0.0] + caption[:-1])[:, None]
    for b in range(2):
        _, log_probs = np_lrcn(lstm, np.array([[0.0], [1.0], [1.0]]), fed, feats[b:b + 1])
        want = sum(log_probs[t, 0, w] for t, w in enumerate(caption))
        assert abs(float(result.activation[b]) - want) < 1e-4


def test_sampling_with_a_caption_condition_raises_log_p_caption(prior):
    torch.manual_seed(0)
    captioner = TinyCaptioner().eval()
    condition = nv.CaptionCondition(captioner, [3, 1, 4, 0], features=nn.AdaptiveAvgPool2d(4))  # 16×16 -> 4×4
    chains = nv.sample(prior, condition, chains=3, steps=30, eps=(1e-5, 1.0, 0.0), preset="paper", progress=False)
    start, end = chains.activations[:, 0], chains.activations[:, -1]  # log p(caption | image) per chain
    assert bool((end > start + 0.05).all()), (start, end)
