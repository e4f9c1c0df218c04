import csv
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import neurovis as nv
from neurovis.training.data import FolderSource
from neurovis.training.prior import PriorTrainer, PriorTrainingConfig


class TinyE(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc6 = nn.Linear(4 * 4 * 4, 16)

    def forward(self, x):
        return self.fc6(self.pool(torch.relu(self.conv(x))).flatten(1))


def _folder(tmp_path, n=6):
    rng = np.random.default_rng(0)
    root = tmp_path / "images" / "sub"
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return tmp_path / "images"


def _trainer(tmp_path, out, steps):
    torch.manual_seed(0)
    enc = TinyE()
    torch.manual_seed(1)
    gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
    cfg = PriorTrainingConfig(steps=steps, w_feat=0.5, w_code=0.1, w_gan=0.01, noise=(0.1, 0.0, 0.0), checkpoint_every=2)
    source = FolderSource(_folder(tmp_path) if not (tmp_path / "images").exists() else tmp_path / "images", (16, 16), batch_size=4, seed=3)
    return PriorTrainer(gen, enc, "fc6", "pool", source, nv.pixels.RGB01, out, cfg, nv_disc())


def nv_disc():
    from neurovis.training.discriminator import Discriminator

    torch.manual_seed(2)
    return Discriminator((8, 8))


def _losses(path):
    with open(path) as f:
        return [[float(v) for v in row[:9]] for row in list(csv.reader(f))[1:]]


def test_folder_source_is_seeded_and_covers_every_image(tmp_path):
    src = FolderSource(_folder(tmp_path), (16, 16), batch_size=4, seed=0)
    a, b = src.batch(1), src.batch(1)
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    epoch = torch.cat([src.batch(0), src.batch(1)])[:6]  # first 6 images: one epoch
    assert len({tuple(img.flatten()[:20].tolist()) for img in epoch}) == 6


def test_trains_checkpoints_and_resumes_with_the_same_losses(tmp_path):
    full = _trainer(tmp_path, tmp_path / "full", 6)
    full.train(progress=False)
    ref = _losses(tmp_path / "full" / "losses.csv")
    assert len(ref) == 6 and ref[-1][0] == 5

    part = _trainer(tmp_path, tmp_path / "part", 4)
    part.train(progress=False)
    resumed = _trainer(tmp_path, tmp_path / "part", 6)
    assert resumed.resume() and resumed.step == 4
    resumed.train(progress=False)
    got = _losses(tmp_path / "part" / "losses.csv")
    np.testing.assert_allclose(np.array(got), np.array(ref), rtol=1e-4, atol=1e-6)
    state = torch.load(tmp_path / "part" / "generator.pt", weights_only=True)
    for k, v in full.generator.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-6)
    assert not list((tmp_path / "part").glob("*.tmp"))


def test_resume_with_other_settings_is_refused(tmp_path):
    _trainer(tmp_path, tmp_path / "run", 2).train(progress=False)
    other = _trainer(tmp_path, tmp_path / "run", 4)
    other.config = PriorTrainingConfig(steps=4, w_img=2.0)
    with pytest.raises(nv.NeurovisError, match="other settings \\(noise, w_code, w_feat, w_gan, w_img"):
        other.resume()
    wider = _trainer(tmp_path, tmp_path / "run", 4)
    wider.source.batch_size = 8  # the same settings, twice the images per step
    with pytest.raises(nv.NeurovisError, match="made with 4 images per step, this run takes 8; use the same --batch-size"):
        wider.resume()


def test_bad_inputs(tmp_path):
    with pytest.raises(nv.NeurovisError, match="does not exist"):
        FolderSource(tmp_path / "nope", (16, 16))
    (tmp_path / "empty").mkdir()
    with pytest.raises(nv.NeurovisError, match="no images"):
        FolderSource(tmp_path / "empty", (16, 16))
    with pytest.raises(nv.NeurovisError, match="unknown layer 'pool9'"):
        PriorTrainer(nn.Linear(16, 16), TinyE(), "fc6", "pool9", None, nv.pixels.RGB01, tmp_path)


class TinyEWithLogits(TinyE):
    def __init__(self):
        super().__init__()
        self.fc8 = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc8(torch.relu(super().forward(x)))


def test_output_loss_is_the_kl_of_the_encoders_predictions(tmp_path):
    torch.manual_seed(0)
    enc = TinyEWithLogits()
    gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
    source = FolderSource(_folder(tmp_path), (16, 16), batch_size=4, seed=3)
    cfg = PriorTrainingConfig(steps=1, w_out=0.5)
    with pytest.raises(nv.NeurovisError, match="output_layer"):
        PriorTrainer(gen, enc, "fc6", None, source, nv.pixels.RGB01, tmp_path / "a", cfg)
    trainer = PriorTrainer(gen, enc, "fc6", None, source, nv.pixels.RGB01, tmp_path / "b", cfg, output_layer="fc8")
    with torch.no_grad():
        x = source.batch(0)
        x_hat = gen(torch.relu(nn.Module.__call__(enc.fc6, enc.pool(torch.relu(enc.conv(x))).flatten(1))))
        # reference in float64: the fp32 loss then differs only by fp32 rounding of the
        # log-probabilities (~1e-7 each), a few 1e-4 of a KL this small
        p, q = torch.softmax(enc(x).double(), 1), torch.softmax(enc(x_hat).double(), 1)
        kl = float((p * (p.log() - q.log())).sum(1).mean())
        reverse = float((q * (q.log() - p.log())).sum(1).mean())
        img = float(((x_hat - x) ** 2).mean())
    losses = trainer.train_step()
    assert kl > 1e-4
    assert losses["out"] == pytest.approx(kl, rel=5e-4)
    assert losses["out"] != pytest.approx(reverse, rel=5e-4)  # the direction is KL(E(x) || E(G(h)))
    assert losses["loss_g"] == pytest.approx(img + 0.5 * kl, rel=1e-4)


def test_l1_image_loss_is_the_mean_absolute_error(tmp_path):
    torch.manual_seed(0)
    enc = TinyE()
    gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
    source = FolderSource(_folder(tmp_path), (16, 16), batch_size=4, seed=3)
    with pytest.raises(nv.NeurovisError, match="image loss must be one of mse, l1"):
        PriorTrainer(gen, enc, "fc6", None, source, nv.pixels.RGB01, tmp_path / "a", PriorTrainingConfig(image_loss="l2"))
    trainer = PriorTrainer(gen, enc, "fc6", None, source, nv.pixels.RGB01, tmp_path / "b",
                           PriorTrainingConfig(steps=1, w_img=3.0, image_loss="l1"))
    with torch.no_grad():
        x = source.batch(0)
        err = (gen(torch.relu(enc(x))) - x).double()
        l1, l2 = float(err.abs().mean()), float((err**2).mean())
    losses = trainer.train_step()
    assert l1 != pytest.approx(l2, rel=0.1)
    assert losses["img"] == pytest.approx(l1, rel=1e-5)
    assert losses["loss_g"] == pytest.approx(3.0 * l1, rel=1e-5)


def test_bf16_precision_trains_close_to_fp32_and_bad_precision_is_refused(tmp_path):
    def trainer(precision, out):
        torch.manual_seed(0)
        enc = TinyE()
        torch.manual_seed(1)
        gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
        cfg = PriorTrainingConfig(steps=2, w_feat=0.5, w_code=0.1, w_gan=0.01, precision=precision)
        source = FolderSource(tmp_path / "images", (16, 16), batch_size=4, seed=3)
        return PriorTrainer(gen, enc, "fc6", "pool", source, nv.pixels.RGB01, tmp_path / out, cfg, nv_disc())

    _folder(tmp_path)
    with pytest.raises(nv.NeurovisError, match="precision must be one of fp32, bf16, auto, got 'fp16'"):
        trainer("fp16", "bad")
    ref = trainer("fp32", "a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # emulated bf16 on CPUs without bf16 units: slow, still correct
        low = trainer("bf16", "b")
    for _ in range(2):
        a, b = ref.train_step(), low.train_step()
        ref.step += 1
        low.step += 1
        for k in ("img", "feat", "code", "gan_g", "loss_d"):
            assert a[k] > 0 and b[k] == pytest.approx(a[k], rel=0.05), k
    # the weights and the optimiser state stay fp32; bf16 only rounds the forward passes
    assert all(p.dtype == torch.float32 for p in low.generator.parameters())
    moved = [float((p - q).detach().abs().max()) for p, q in zip(low.generator.parameters(), ref.generator.parameters())]
    assert 0 < max(moved) < 1e-3


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_only_where_the_device_has_it(tmp_path, monkeypatch, native):
    import neurovis._utils.speed as acceleration

    monkeypatch.setattr(acceleration, "has_native_bf16", lambda device: native)
    _folder(tmp_path)

    def trainer(precision):
        source = FolderSource(tmp_path / "images", (16, 16), batch_size=4, seed=3)
        gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
        cfg = PriorTrainingConfig(steps=1, precision=precision)
        return PriorTrainer(gen, TinyE(), "fc6", "pool", source, nv.pixels.RGB01, tmp_path / precision, cfg, nv_disc())

    assert trainer("auto").precision == ("bf16" if native else "fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert trainer("bf16").precision == "bf16"  # asked for explicitly: honoured
        assert trainer("fp32").precision == "fp32"
    slow = [w for w in caught if "no native bf16" in str(w.message)]
    assert len(slow) == (0 if native else 1)


def test_one_gan_step_matches_separate_reference_passes(tmp_path):
    """D's loss reuses the fake logits of G's GAN loss; both updates equal a step computed
    the textbook way (D on x_hat.detach(), each loss backpropagated on its own)."""
    import copy

    import torch.nn.functional as F

    torch.manual_seed(0)
    enc = TinyE()
    gen = nn.Sequential(nn.Linear(16, 3 * 16 * 16), nn.Unflatten(1, (3, 16, 16)))
    source = FolderSource(_folder(tmp_path), (16, 16), batch_size=4, seed=3)
    cfg = PriorTrainingConfig(steps=1, w_feat=0.5, w_code=0.1, w_gan=0.3, discriminator_channels=(4, 6))
    trainer = PriorTrainer(gen, enc, "fc6", "pool", source, nv.pixels.RGB01, tmp_path / "run", cfg)
    assert [m.out_channels for m in trainer.discriminator.features if isinstance(m, nn.Conv2d)] == [4, 6]
    g_ref, d_ref = copy.deepcopy(gen), copy.deepcopy(trainer.discriminator)
    x = source.batch(0)
    feats = {}
    enc.pool.register_forward_hook(lambda m, i, o: feats.__setitem__("pool", o))
    with torch.no_grad():
        h = torch.relu(enc(x))
        h1 = feats["pool"]
    x_hat = g_ref(h)
    code_hat = torch.relu(enc(x_hat))
    ones, zeros = torch.ones(4), torch.zeros(4)
    loss_g = (F.mse_loss(x_hat, x) + 0.5 * F.mse_loss(feats["pool"], h1) + 0.1 * F.mse_loss(code_hat, h)
              + 0.3 * F.binary_cross_entropy_with_logits(d_ref(x_hat), ones))
    loss_d = (F.binary_cross_entropy_with_logits(d_ref(x), ones)
              + F.binary_cross_entropy_with_logits(d_ref(x_hat.detach()), zeros))
    grads_g = torch.autograd.grad(loss_g, list(g_ref.parameters()))
    grads_d = torch.autograd.grad(loss_d, list(d_ref.parameters()))
    for module, grads in ((g_ref, grads_g), (d_ref, grads_d)):
        for p, gr in zip(module.parameters(), grads):
            p.grad = gr
        torch.optim.Adam(module.parameters(), lr=cfg.lr, betas=cfg.betas).step()

    losses = trainer.train_step()
    assert losses["loss_d"] == pytest.approx(float(loss_d.detach()), rel=1e-5)
    assert losses["loss_g"] == pytest.approx(float(loss_g.detach()), rel=1e-5)
    for got, want in ((gen, g_ref), (trainer.discriminator, d_ref)):
        for (name, p), q in zip(got.named_parameters(), want.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)


def test_cosine_schedule_sets_every_steps_lr_and_survives_a_resume(tmp_path):
    import dataclasses
    import math

    def trainer(out, steps):
        t = _trainer(tmp_path, out, steps)
        t.config = dataclasses.replace(t.config, lr=1e-3, lr_schedule="cosine")
        for opt in (t.opt_g, t.opt_d):
            for group in opt.param_groups:
                group["lr"] = 1e-3
        return t

    t = trainer(tmp_path / "run", 5)
    seen = []
    for _ in range(5):
        t.train_step()
        seen.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"]))
        t.step += 1
    want = [1e-3 * (1 + math.cos(math.pi * k / 5)) / 2 for k in range(5)]  # 1e-3 at step 0, down towards 0
    assert [g for g, _ in seen] == pytest.approx(want, rel=1e-12)
    assert [d for _, d in seen] == pytest.approx(want, rel=1e-12)
    part = trainer(tmp_path / "part", 5)
    part.config = dataclasses.replace(part.config, steps=2)
    part.train(progress=False)  # a 2-step run (its curve reaches 0), then resumed as a 5-step one
    resumed = trainer(tmp_path / "part", 5)
    assert resumed.resume() and resumed.step == 2
    assert resumed.opt_g.param_groups[0]["lr"] == pytest.approx(0.5e-3)  # stored: the 2-step curve's step 1
    resumed.train_step()
    assert resumed.opt_g.param_groups[0]["lr"] == pytest.approx(want[2], rel=1e-12)  # the 5-step curve's step 2
    with pytest.raises(nv.NeurovisError, match="lr schedule must be one of step, cosine"):
        PriorTrainer(nn.Linear(16, 16), TinyE(), "fc6", None, None, nv.pixels.RGB01, tmp_path,
                     PriorTrainingConfig(lr_schedule="linear"))
