"""The shipped glyph captioner and `neurovis sample --caption` (paper §3.5 on the glyph world)."""

from __future__ import annotations

import json

import pytest
import torch

import neurovis as nv
from neurovis.pixels import RGB01
from neurovis.caption import CAPTION_SETTINGS, CAPTION_THRESHOLD, CaptionCondition
from neurovis.runs.captions import sample_caption
from neurovis.cli import main
from neurovis.errors import NeurovisError
from neurovis.glyphs.captioner import (
    VOCABULARY,
    GlyphCaptioner,
    glyph_caption,
    glyph_caption_condition,
    glyph_caption_tokens,
    load_glyph_captioner,
    parse_glyph_caption,
)
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.world import COLOURS


@pytest.fixture(scope="module")
def captioner() -> GlyphCaptioner:
    return load_glyph_captioner()


def test_shipped_captioner_scores_the_true_caption_above_wrong_ones(captioner):
    batch = GlyphWorld().sample(24, seed=31337)
    true, wrong_colour, wrong_shape, true_prefix = [], [], [], []
    for i in range(len(batch)):
        c, s, b = int(batch.colours[i]), int(batch.shapes[i]), int(batch.backgrounds[i])
        x = batch.images[i:i + 1]

        def score(text: str) -> float:
            with torch.no_grad():
                return float(glyph_caption_condition(text, captioner).evaluate(x, RGB01).objective)

        true.append(score(glyph_caption(c, s, b)))
        wrong_colour.append(score(glyph_caption((c + 3) % 8, s, b)))
        wrong_shape.append(score(glyph_caption(c, (s + 5) % 8, b)))
        true_prefix.append(score(" ".join(glyph_caption(c, s, b).split()[:3])))
    true_t, prefix_t = torch.tensor(true), torch.tensor(true_prefix)
    for wrong in (torch.tensor(wrong_colour), torch.tensor(wrong_shape)):
        assert bool((true_t > wrong).all()) and float((true_t - wrong).mean()) > 4.0  # nats
    # "a red ring": shape and colour are read almost surely; the background word is not
    # (the encoder's features keep little of it: log p ≈ log 1/5), see docs/captions.md
    assert float(prefix_t.mean()) > -0.1
    assert -2.5 < float((true_t - prefix_t).mean()) < -1.0
    assert captioner.metrics["mode_accuracy"] >= 0.98  # held-out figure recorded at training
    assert sum(p.numel() for p in captioner.parameters() if p.requires_grad) < 400_000


def test_greedy_captions_name_shape_and_colour(captioner):
    batch = GlyphWorld().sample(16, seed=4)
    said = captioner.caption(batch.images)
    right = [s.split()[1:3] == [COLOURS[int(c)], glyph_caption(int(c), int(sh), 0).split()[2]]
             for s, c, sh in zip(said, batch.colours, batch.shapes)]
    assert sum(right) >= 15, said


def test_caption_tokens_and_errors_are_one_line():
    assert glyph_caption_tokens("a blue ring") == [VOCABULARY.index(w) for w in ("a", "blue", "ring")]
    assert glyph_caption_tokens("a_blue_ring_on_stripes")[-1] == 0  # complete caption: <eos> scored
    assert parse_glyph_caption("A Blue Ring on checks") == (COLOURS.index("blue"), 5, 4)
    assert glyph_caption_tokens("an orange heart") == glyph_caption_tokens("a orange heart")
    for bad, match in (("a blue unicorn", "does not know 'unicorn'"), ("blue ring", "form"),
                       ("a ring blue", "form"), ("a blue ring on", "form")):
        with pytest.raises(NeurovisError, match=match) as err:
            glyph_caption_tokens(bad)
        assert "\n" not in str(err.value)


def test_sample_caption_uses_the_papers_caption_settings(captioner):
    prior = nv.load_prior("glyphs")
    condition = glyph_caption_condition("a blue ring", captioner)
    chains = sample_caption(prior, condition, chains=2, steps=3, progress=False)
    config = chains.config
    assert config["eps"] == list(CAPTION_SETTINGS["eps"]) == [1e-3, 1.0, 1e-17]
    assert config["lr"] == 1.0 and config["lr_end"] == 1e-10 and config["reset_every"] == 0
    assert config["init"] == "bank" and config["condition"]["text"] == "a blue ring"  # the prior's starts
    assert CaptionCondition.sampling_defaults() == CAPTION_SETTINGS and CAPTION_SETTINGS["steps"] == 200
    # explicit arguments override
    assert sample_caption(prior, condition, chains=1, steps=1, lr=0.5, progress=False).config["lr"] == 0.5


def test_cli_sample_caption_writes_a_report_that_records_the_caption(tmp_path):
    out = tmp_path / "cap"
    rc = main(["sample", "--model", "glyphs", "--caption", "a blue ring", "--chains", "2", "--steps", "5",
               "--bootstrap", "0", "--no-attribution", "--natural-count", "50", "--out", str(out), "--quiet"])
    assert rc == 0
    doc = json.loads((out / "facets.json").read_text())
    text = json.dumps(doc, ensure_ascii=False)
    assert "a blue ring" in text
    config = doc["reproducibility"]["sampling_config"]
    assert config["condition"]["type"] == "caption" and config["condition"]["text"] == "a blue ring"
    assert config["eps"] == [1e-3, 1.0, 1e-17] and config["lr_end"] == 1e-10 and config["reset_every"] == 0
    assert f"≥ {CAPTION_THRESHOLD:g}" in text
    assert doc["title"] == "caption: a blue ring"  # the page says what was asked, not just "caption"
    assert "<h1>caption: a blue ring</h1>" in (out / "index.html").read_text()


@pytest.mark.parametrize("argv, match", [
    (["--caption", "a blue unicorn"], "unicorn"),
    (["--caption", "blue ring"], "form"),
    ([], "--class C"),
    (["--caption", "a blue ring", "--class", "3"], "not both"),
    (["--caption", "a blue ring", "--captioner", "/nonexistent/dir"], "not a folder"),
])
def test_cli_bad_captions_are_one_line_exit_2(tmp_path, capsys, argv, match):
    rc = main(["sample", "--model", "glyphs", *argv, "--chains", "1", "--steps", "1", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and match in err, err
    assert not (tmp_path / "x").exists()


def test_captioner_folder_of_converted_lrcn_files(tmp_path):
    """``--captioner DIR``: lrcn.pt + vocabulary.txt (+ features.pt) give the same condition
    as building it by hand from the converted files."""
    import argparse

    import numpy as np

    from neurovis.caffe import add_convert_caffe_parser, load_converted, write_caffemodel, write_prototxt
    from neurovis.caption import LRCNCaptioner, lrcn_tokens
    from neurovis.zoo.captions import build_caption_condition
    from test_caffe import rand
    from test_caffe_lstm import FEATURES, LRCN_INPUTS, lrcn_layers

    rng = np.random.default_rng(3)
    convnet = [{"name": "fc8", "type": "InnerProduct", "bottom": "data", "top": "fc8",
                "inner_product_param": {"num_output": FEATURES}, "blobs": [rand(rng, FEATURES, 3 * 6 * 6, scale=0.1),
                                                                           rand(rng, FEATURES)]}]
    lstm = lrcn_layers(rng)
    weights = write_caffemodel(tmp_path / "lrcn.caffemodel", convnet + lstm)
    parser = argparse.ArgumentParser(prog="neurovis")
    add_convert_caffe_parser(parser.add_subparsers(dest="command", required=True))
    folder = tmp_path / "lrcn"
    folder.mkdir()
    for layers, inputs, out, extra in ((convnet, {"data": (1, 3, 6, 6)}, "features.pt", []),
                                       (lstm, LRCN_INPUTS, "lrcn.pt", ["--keep-softmax"])):
        proto = write_prototxt(tmp_path / f"{out}.prototxt", layers, inputs=inputs)
        args = parser.parse_args(["convert-caffe", "--prototxt", str(proto), "--caffemodel", str(weights),
                                  "--out", str(folder / out), *extra])
        assert args.func(args) == 0
    words = ["<unk>", "a", "pizza", "on", "table"]
    (folder / "vocabulary.txt").write_text("\n".join(words) + "\n")
    condition = build_caption_condition("a_pizza", "caffenet", captioner=folder)
    assert condition.text == "a pizza" and condition.tokens.tolist() == lrcn_tokens("a pizza", words)
    by_hand = CaptionCondition(LRCNCaptioner(load_converted(folder / "lrcn.pt")), lrcn_tokens("a pizza", words),
                               features=load_converted(folder / "features.pt"))
    images = torch.rand(2, 3, 6, 6)
    space = condition.features.pixel_space
    with torch.no_grad():
        torch.testing.assert_close(condition.evaluate(images, space).objective, by_hand.evaluate(images, space).objective)
    with pytest.raises(NeurovisError, match="no 'volcano'"):
        build_caption_condition("a volcano", "caffenet", captioner=folder)
    (folder / "vocabulary.txt").unlink()
    with pytest.raises(NeurovisError, match="--vocabulary FILE"):
        build_caption_condition("a pizza", "caffenet", captioner=folder)
    with pytest.raises(NeurovisError, match="needs --captioner DIR"):
        build_caption_condition("a pizza", "caffenet")


def test_captioner_is_the_normalised_geometric_mean_of_its_two_readers(captioner):
    """The shipped captioner reads each image twice (the frozen encoder's fc7 and its own conv
    trunk); its next-word distribution is the readers' geometric mean, renormalised (a
    product of experts, each to the power ½)."""
    assert captioner.readers == ["encoder", "trunk"]
    batch = GlyphWorld().sample(4, seed=5)
    tokens = torch.tensor([glyph_caption_tokens(glyph_caption(int(c), int(s), int(b)))
                           for c, s, b in zip(batch.colours, batch.shapes, batch.backgrounds)])
    with torch.no_grad():
        both = captioner(batch.images, tokens)
        parts = captioner.reader_log_probs(batch.images, tokens)
    assert set(parts) == {"encoder", "trunk"}
    mean = (parts["encoder"] + parts["trunk"]) / 2
    reference = mean - torch.logsumexp(mean, -1, keepdim=True)  # log of √(p1·p2) / Σ √(p1·p2)
    assert torch.allclose(both, reference, atol=1e-5)
    assert torch.allclose(both.exp().sum(-1), torch.ones(both.shape[:2]), atol=1e-5)


def test_a_single_reader_captioner_file_of_the_first_format_still_loads(tmp_path, captioner):
    """Files written before the readers (arch {"feature_layer": "relu7", ...}, weights at the
    top level) load as one encoder reader and give that reader's log-probabilities."""
    from neurovis.glyphs.captioner import CAPTIONER_KIND, PAYLOAD_FORMAT

    head = {k[len("heads.encoder."):]: v for k, v in captioner.state_dict().items() if k.startswith("heads.encoder.")}
    legacy = {"format": PAYLOAD_FORMAT, "kind": CAPTIONER_KIND, "state_dict": head, "vocabulary": list(VOCABULARY),
              "arch": {"feature_layer": "relu7", **captioner.arch["encoder"]}, "metrics": {"mode_accuracy": 0.99}}
    torch.save(legacy, tmp_path / "old.pt")
    old = load_glyph_captioner(tmp_path / "old.pt")
    assert old.readers == ["encoder"]
    x, tokens = GlyphWorld().sample(2, seed=9).images, torch.tensor([[0, 1, 2, 3]] * 2)
    with torch.no_grad():
        assert torch.allclose(old(x, tokens), captioner.reader_log_probs(x, tokens)["encoder"], atol=1e-6)
