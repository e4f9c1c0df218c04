import pytest
import torch
from torchvision import transforms

import neurovis as nv
from neurovis.pixels import CAFFE_IMAGENET, RGB01, TORCHVISION_IMAGENET, PixelAdapter, PixelSpace


def test_caffe_convention_values():
    white = torch.ones(1, 3, 2, 2)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0  # RGB red
    caffe_white = CAFFE_IMAGENET.from_rgb01(white)
    assert caffe_white[0, :, 0, 0].tolist() == [255 - 104, 255 - 117, 255 - 123]
    caffe_red = CAFFE_IMAGENET.from_rgb01(red)
    assert caffe_red[0, :, 0, 0].tolist() == [-104, -117, 255 - 123]  # BGR: red is last


def test_round_trip_between_spaces():
    u = torch.rand(2, 3, 8, 8)
    for space in (RGB01, CAFFE_IMAGENET.with_size(None), TORCHVISION_IMAGENET.with_size(None)):
        torch.testing.assert_close(space.to_rgb01(space.from_rgb01(u)), u, atol=1e-5, rtol=1e-5)
    caffe = CAFFE_IMAGENET.with_size(None).from_rgb01(u)
    tv = PixelAdapter(CAFFE_IMAGENET.with_size(None), TORCHVISION_IMAGENET.with_size(None))(caffe)
    torch.testing.assert_close(tv, TORCHVISION_IMAGENET.from_rgb01(u), atol=1e-5, rtol=1e-5)


def test_adapter_matches_torchvision_transforms():
    u = torch.rand(1, 3, 256, 256)
    caffe = CAFFE_IMAGENET.with_size(None).from_rgb01(u)
    ours = PixelAdapter(CAFFE_IMAGENET.with_size(None), TORCHVISION_IMAGENET)(caffe)
    ref = transforms.Compose([
        transforms.Resize((224, 224), antialias=True),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])(u)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_adapter_is_differentiable():
    src = CAFFE_IMAGENET.with_size(None)
    adapter = PixelAdapter(src, TORCHVISION_IMAGENET.with_size((6, 6)))
    x = (torch.rand(1, 3, 9, 9, dtype=torch.float64) * 200 - 100).requires_grad_()
    assert torch.autograd.gradcheck(adapter, (x,))


def test_grey_space():
    grey = PixelSpace("L", 1.0, (0.5,), (0.5,), None, "grey")
    u = torch.rand(2, 3, 4, 4)
    v = grey.from_rgb01(u)
    assert v.shape == (2, 1, 4, 4)
    luma = 0.299 * u[:, 0] + 0.587 * u[:, 1] + 0.114 * u[:, 2]
    torch.testing.assert_close(v[:, 0], (luma - 0.5) / 0.5)


def test_bad_space_and_shape():
    with pytest.raises(nv.NeurovisError, match="channels must be"):
        PixelSpace("RGBA")
    with pytest.raises(nv.NeurovisError, match="expected images"):
        RGB01.to_rgb01(torch.zeros(1, 1, 4, 4))


def test_crop():
    x = torch.arange(256 * 256, dtype=torch.float32).view(1, 1, 256, 256)
    out = nv.pixels.Crop(14, 14, 227, 227)(x)
    assert out.shape == (1, 1, 227, 227)
    assert out[0, 0, 0, 0] == x[0, 0, 14, 14] and out[0, 0, -1, -1] == x[0, 0, 240, 240]


def test_clamp_keeps_displayable_values_and_clips_the_rest():
    caffe = CAFFE_IMAGENET.with_size(None)
    u = torch.rand(2, 3, 5, 5)
    inside = caffe.from_rgb01(u)
    torch.testing.assert_close(caffe.clamp(inside), inside)  # a real image is untouched
    wild = inside * 4 - 300  # far outside 0–255 minus the mean
    shown = caffe.to_rgb01(caffe.clamp(wild))
    torch.testing.assert_close(shown, caffe.to_rgb01(wild).clamp(0, 1))
    assert shown.min() == 0 and shown.max() <= 1
    grey = PixelSpace("L", 1.0, (0.5,), (0.25,), None, "grey")
    assert grey.clamp(torch.tensor([-9.0, 0.0, 9.0]).view(1, 1, 1, 3)).flatten().tolist() == [-2.0, 0.0, 2.0]
