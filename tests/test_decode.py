"""The one decoder from chains to images (neurovis.chains.decode_samples): the report,
Chains.images and the glyph evaluation show the same pixels; for inpainting, the photo
outside the hole. Tiny CPU models, seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurovis as nv
from neurovis._utils.image import to_uint8
from neurovis.chains import decode_samples
from neurovis.pixels import PixelSpace
from test_reports import strong_net, tiny_prior


def _inpaint_run() -> tuple[nv.Chains, nv.InpaintCondition]:
    prior = tiny_prior()
    photo = prior.pixel_space.from_rgb01(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4)))
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1.0
    cond = nv.InpaintCondition(nv.ClassCondition(strong_net(), 0), photo, mask, eps4=1e-3)
    return nv.sample(prior, cond, chains=2, steps=6, seed=0, progress=False), cond


def test_inpainting_images_are_the_reports_and_keep_the_photo_outside_the_hole():
    chains, cond = _inpaint_run()
    report = nv.facets(chains, threshold=0.0, attribution=False, bootstrap=0, progress=False)
    shown = chains.images(rgb=True)  # (C, T+1, 3, H, W)
    assert shown.shape == (2, 7, 3, 16, 16) and shown.dtype == torch.float32
    assert np.array_equal(to_uint8(shown.flatten(0, 1)), report.images)
    model = chains.images()
    outside = (cond.mask[0, 0] == 0)
    assert torch.equal(model[..., outside], cond.image[..., outside].expand_as(model[..., outside]))
    raw = chains.prior.generator(chains.codes.flatten(0, 1)).detach()
    assert not torch.equal(raw[..., outside], model.flatten(0, 1)[..., outside])  # the composite did something
    torch.testing.assert_close(model.flatten(0, 1)[..., ~outside], raw[..., ~outside], rtol=0, atol=0)
    assert torch.equal(chains.decode(chains.codes[1]), model[1])


def test_decode_samples_is_bit_identical_to_decoding_by_hand():
    prior = tiny_prior()
    prior.pixel_space = PixelSpace("BGR", 255.0, (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), None, "caffe-like")
    chains = nv.sample(prior, nv.ClassCondition(strong_net(), 1), chains=3, steps=4, seed=0, progress=False)
    flat = chains.codes.flatten(0, 1)
    with torch.no_grad():  # one batch, as decode_samples's default of 64 does here
        raw = prior.decode(flat)
        in_fours = torch.cat([prior.decode(flat[i : i + 4]) for i in range(0, 15, 4)])
    by_hand = prior.pixel_space.to_rgb01(raw).clamp(0, 1)
    rgb = decode_samples(chains)
    assert rgb.shape == (15, 3, 16, 16) and torch.equal(rgb, by_hand)
    assert torch.equal(decode_samples(chains, space="model", batch_size=4), in_fours)
    assert torch.equal(decode_samples(chains, space="model"), raw)
    assert torch.equal(decode_samples(chains, space="uint8").permute(0, 2, 3, 1), torch.from_numpy(to_uint8(by_hand)))
    ok = chains.probs > 0.5
    with torch.no_grad():
        picked = prior.pixel_space.to_rgb01(prior.decode(flat[ok.flatten()])).clamp(0, 1)
    assert torch.equal(decode_samples(chains, which=ok), picked)
    assert torch.equal(decode_samples(flat, prior), by_hand)
    assert torch.equal(decode_samples(chains, which=(slice(None), -1)), chains.images(step=-1, rgb=True))
    assert chains.images(chain=2, step=3).shape == (3, 16, 16) and chains.images(chain=slice(1, 3)).shape == (2, 5, 3, 16, 16)
    torch.testing.assert_close(chains.images(chain=2, step=3), raw[2 * 5 + 3])


def test_decode_samples_holds_the_prior_in_eval_mode_and_restores_it():
    prior = tiny_prior()
    prior.generator.train()
    codes = torch.randn(3, 16)
    decode_samples(codes, prior)
    assert prior.generator.training


def test_decode_samples_bad_input():
    prior = tiny_prior()
    with pytest.raises(nv.NeurovisError, match="space must be one of"):
        decode_samples(torch.zeros(1, 16), prior, space="bgr")
    with pytest.raises(nv.NeurovisError, match="needs a prior"):
        decode_samples(torch.zeros(1, 16))
    with pytest.raises(nv.NeurovisError, match="batch_size"):
        decode_samples(torch.zeros(1, 16), prior, batch_size=0)
