import pytest
import torch

import neurovis as nv
from neurovis.pixels import RGB01


def _layer_vector(net, x):
    """conv2's channel vector at the centre of its 8×8 map, computed without hooks."""
    f = net.features
    return f[2](torch.relu(f[0](x)))[:, :, 4, 4]


def _grad(condition, x):
    x = x.clone().requires_grad_()
    res = condition.evaluate(x, RGB01)
    (g,) = torch.autograd.grad(res.objective.sum(), x)
    return g, res


@pytest.fixture
def dnet(net):
    return net.double()


@pytest.fixture
def x():
    torch.manual_seed(3)
    return torch.rand(3, 3, 16, 16, dtype=torch.float64)


def test_reference_gradient_is_one_minus_p_times_activation_gradient(dnet, x):
    g, res = _grad(nv.UnitCondition(dnet, "conv2", 4), x)
    xr = x.clone().requires_grad_()
    a = _layer_vector(dnet, xr)
    p = torch.softmax(a, 1)[:, 4]
    (ga,) = torch.autograd.grad(a[:, 4].sum(), xr)
    torch.testing.assert_close(g, (1 - p.detach()).view(-1, 1, 1, 1) * ga)
    torch.testing.assert_close(res.prob, p.detach())
    torch.testing.assert_close(res.activation, a[:, 4].detach())


@pytest.mark.parametrize(
    "gradient, fn",
    [
        ("log_softmax", lambda a: torch.log_softmax(a, 1)[:, 4]),
        ("logit", lambda a: a[:, 4]),
        ("softmax", lambda a: torch.softmax(a, 1)[:, 4]),
    ],
)
def test_gradient_variants_match_finite_differences(dnet, x, gradient, fn):
    g, _ = _grad(nv.UnitCondition(dnet, "conv2", 4, gradient=gradient), x)
    torch.manual_seed(4)
    v = torch.randn_like(x)
    delta = 1e-6
    with torch.no_grad():
        fd = (fn(_layer_vector(dnet, x + delta * v)) - fn(_layer_vector(dnet, x - delta * v))) / (2 * delta)
    torch.testing.assert_close((g * v).flatten(1).sum(1), fd, rtol=1e-5, atol=1e-8)


def test_class_condition_softmax_over_classes_and_by_name(dnet, x):
    cond = nv.ClassCondition(dnet, "volcano", gradient="log_softmax")
    assert cond.class_index == 2
    g, res = _grad(cond, x)
    logits = dnet(x)
    torch.testing.assert_close(res.prob, torch.softmax(logits, 1)[:, 2].detach())
    xr = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(torch.log_softmax(dnet(xr), 1)[:, 2].sum(), xr)
    torch.testing.assert_close(g, ref)


def test_unit_on_fully_connected_layer(dnet, x):
    _, res = _grad(nv.UnitCondition(dnet, "fc", 1), x)
    torch.testing.assert_close(res.activation, dnet(x)[:, 1].detach())


def test_channel_mean_position(dnet, x):
    _, res = _grad(nv.UnitCondition(dnet, "conv2", 2, position="mean"), x)
    f = dnet.features
    ref = f[2](torch.relu(f[0](x))).mean((2, 3))[:, 2]
    torch.testing.assert_close(res.activation, ref.detach())


def test_combined_condition_is_weighted_sum(dnet, x):
    a = nv.ClassCondition(dnet, 3, gradient="log_softmax")
    b = nv.ClassCondition(dnet, 4, gradient="log_softmax")
    g, res = _grad(nv.combine(a, b, weights=[0.3, 0.7]), x)
    ga, ra = _grad(a, x)
    gb, rb = _grad(b, x)
    torch.testing.assert_close(g, 0.3 * ga + 0.7 * gb)
    # two classes of one softmax: their joint share, each at least a tenth of it (CombinedCondition)
    torch.testing.assert_close(res.prob, torch.minimum(ra.prob + rb.prob, torch.minimum(ra.prob, rb.prob) / 0.1))


def test_callable_condition(x):
    target = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    cond = nv.CallableCondition(lambda img: -((img - target) ** 2).flatten(1).sum(1), name="near target")
    g, res = _grad(cond, x)
    torch.testing.assert_close(g, -2 * (x - target))
    torch.testing.assert_close(res.prob, torch.exp(res.activation))


def test_callable_condition_bad_shape(x):
    cond = nv.CallableCondition(lambda img: img.sum(), name="scalar")
    with pytest.raises(nv.NeurovisError, match=r"must return log-probabilities of shape \(3,\)"):
        cond.evaluate(x, RGB01)


def test_inpainting_masks_the_condition_and_adds_context(dnet, x):
    photo = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    mask[..., 4:12, 4:12] = 1
    inner = nv.ClassCondition(dnet, 1)
    cond = nv.InpaintCondition(inner, photo, mask, eps4=0.5)
    xr = x.clone().requires_grad_()
    res = cond.evaluate(xr, RGB01)
    (g_obj,) = torch.autograd.grad(res.objective.sum(), xr, retain_graph=True)
    assert torch.all(g_obj[..., :4, :] == 0) and g_obj[..., 4:12, 4:12].abs().sum() > 0
    (g_extra,) = torch.autograd.grad(res.extra.sum(), xr)
    torch.testing.assert_close(g_extra, 0.5 * 2 * (1 - mask) * (photo - x))
    composite = cond.composite(x)
    torch.testing.assert_close(composite[..., 0, 0], photo[..., 0, 0].expand(3, 3))
    torch.testing.assert_close(composite[..., 5, 5], x[..., 5, 5])


def test_inpainting_wrong_size(dnet):
    cond = nv.InpaintCondition(nv.ClassCondition(dnet, 1), torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(nv.NeurovisError, match="resize the photo"):
        cond.evaluate(torch.rand(1, 3, 16, 16), RGB01)


def test_model_pixel_space_is_adapted(net):
    class Caffeish(torch.nn.Module):
        pixel_space = nv.pixels.CAFFE_IMAGENET.with_size(None)

        def forward(self, v):
            return v.flatten(1)[:, :4]

    cond = nv.ClassCondition(Caffeish(), 0, gradient="logit")
    u = torch.ones(1, 3, 2, 2)
    res = cond.evaluate(u, RGB01)
    assert res.activation.item() == pytest.approx(255 - 104)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda n: nv.UnitCondition(n, "conv9", 0), "unknown layer 'conv9'"),
        (lambda n: nv.UnitCondition(n, "conv2", 0, gradient="grad"), "unknown gradient"),
        (lambda n: nv.ClassCondition(n, "zebra"), "no class named 'zebra'"),
        (lambda n: nv.combine(), "at least one condition"),
    ],
)
def test_bad_conditions(net, make, match):
    with pytest.raises(nv.NeurovisError, match=match):
        make(net)


def test_unit_out_of_range_names_layer_and_size(net):
    cond = nv.UnitCondition(net, "conv2", 6)
    with pytest.raises(nv.NeurovisError, match=r"layer 'conv2': unit 6 is out of range: the layer has 6 channels \(output 6×8×8\)"):
        cond.evaluate(torch.rand(1, 3, 16, 16), RGB01)
    with pytest.raises(nv.NeurovisError, match="the model has 5 classes"):
        nv.ClassCondition(net, 5).evaluate(torch.rand(1, 3, 16, 16), RGB01)
