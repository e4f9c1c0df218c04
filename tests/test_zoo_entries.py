"""One battery over every zoo entry (as torchvision's test_models.py over list_models()):
each registered model and prior builds, its metadata agrees with what it builds, and one
forward pass / one decode runs on a tiny batch. Entries whose files are not here offline
(torchvision weights not in the cache, unconverted Caffe files) are skipped with the reason."""

from __future__ import annotations

import pytest
import torch

import neurovis as nv
from neurovis.hooks.addressing import resolve_layer
from neurovis.zoo import get_model_entry, get_prior_entry, list_models, list_priors

MODELS = list_models()
PRIORS = list_priors()


def _skip_if_missing(entry) -> None:
    why = entry.missing()
    if why is not None:
        pytest.skip(f"{entry.name}: {why}")


def test_the_registry_lists_the_shipped_entries():
    assert {"glyphs", "glyphs-encoder", "caffenet", "alexnet", "resnet50"} <= set(MODELS)
    assert {"glyphs", "glyphs-noiseless", "glyphs-joint", "glyphs-ppgn-h", "glyphs-ppgn-x", "glyphs-dgn-am",
            "glyphs-unit-clip", "glyphs-joint-unit-clip", "caffenet-fc6"} <= set(PRIORS)
    assert nv.zoo.registered_priors() == PRIORS
    with pytest.raises(nv.NeurovisError, match="no model entry"):
        get_model_entry("no-such-model")


@pytest.mark.parametrize("name", MODELS)
def test_model_entry_metadata_is_consistent(name):
    entry = get_model_entry(name)
    assert entry.name == name
    if entry.default_prior is not None:
        assert entry.default_prior in PRIORS, f"{name}: default prior {entry.default_prior!r} is not registered"
    if entry.input_size is not None:
        assert len(entry.input_size) == 3
    if entry.pixel_space is not None and entry.pixel_space.size is not None and entry.input_size is not None:
        assert tuple(entry.pixel_space.size) == tuple(entry.input_size[1:])


@pytest.mark.parametrize("name", MODELS)
def test_model_entry_builds_and_runs(name):
    entry = get_model_entry(name)
    _skip_if_missing(entry)
    model = nv.load_model(name)
    assert isinstance(model, torch.nn.Module) and not model.training
    if entry.pixel_space is not None:
        assert model.pixel_space == entry.pixel_space
    size = entry.input_size or tuple(getattr(model, "input_size", (3, 64, 64)))
    with torch.no_grad():
        out = model(torch.rand(2, *size))
    out = out[0] if isinstance(out, (tuple, list)) else out
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    if entry.class_names is not None:
        assert len(entry.class_names) == out.shape[1]
        assert list(getattr(model, "class_names", entry.class_names)) == list(entry.class_names)
    for alias in entry.layer_aliases:
        resolve_layer(model, alias)
    for hook in ("natural_images", "ground_truth"):
        if getattr(entry, hook) is not None:
            assert getattr(model, hook) is getattr(entry, hook)


@pytest.mark.parametrize("name", PRIORS)
def test_prior_entry_builds_and_decodes(name):
    entry = get_prior_entry(name)
    assert entry.name == name and all(m in MODELS for m in entry.models)
    _skip_if_missing(entry)
    prior = nv.load_prior(name)
    assert isinstance(prior, nv.priors.Prior)
    if entry.pixel_space is not None:
        assert prior.pixel_space == entry.pixel_space
    if entry.code_shape is not None:
        assert tuple(prior.code_shape) == tuple(entry.code_shape)
    if entry.default_eps is not None:
        assert tuple(prior.default_eps) == tuple(entry.default_eps)
    codes = prior.initial_codes([torch.Generator().manual_seed(i) for i in range(2)])
    with torch.no_grad():
        images = prior.decode(codes)
    assert images.shape[0] == 2 and images.dim() == 4 and torch.isfinite(images).all()
    if entry.pixel_space is not None and entry.pixel_space.size is not None:
        assert tuple(images.shape[-2:]) == tuple(entry.pixel_space.size)


def test_glyph_entry_hooks_reach_the_report_without_general_code_importing_the_world():
    entry = get_model_entry("glyphs")
    natural = entry.natural_images(8, 0, (64, 64))
    assert natural.images.shape == (8, 3, 64, 64) and natural.images.dtype == torch.uint8
    assert entry.oracle is not None and get_model_entry("glyphs-encoder").oracle is None
    assert callable(entry.ground_truth) and callable(entry.caption_condition)
    with pytest.raises(nv.NeurovisError):
        entry.parse_caption("a purple volcano")
    assert nv.zoo.image_source("world", 4, 0).batch(0).shape == (4, 3, 64, 64)
    assert nv.zoo.image_source("some/folder", 4, 0) == "some/folder"
