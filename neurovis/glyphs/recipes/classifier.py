"""Training and evaluation of the glyph-world networks (classifier, encoder, oracle).

Every batch is freshly rendered by the world (a fixed set overfits), so the only
augmentation is the world's own randomness, plus mild blur/noise for the classifier and
the oracle (both judge the generator's soft images; see :data:`AUGMENTED_KINDS`). Adam
with a linear warm-up and cosine decay. Seeded: the same arguments give the same
network on the same machine and thread count.

Kinds (targets):
    ``classifier``  16 classes of the default partition (``glyphs``, the condition net C)
    ``encoder``     64 fine modes, same architecture (``glyph_encoder``, the encoder E)
    ``oracle``      shape and colour heads (:class:`neurovis.glyphs.nets.GlyphOracle`)
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from neurovis.conditions import ClassCondition
from neurovis.glyphs import GlyphWorld
from neurovis.glyphs.checkpoints import glyph_net
from neurovis.glyphs.nets import GlyphOracle, build_glyph_net
from neurovis.priors import PixelPrior
from neurovis.sampling import sample

KINDS = ("classifier", "encoder", "oracle")

# Seeds per kind: network init, training stream, and the held-out evaluation set.
# Evaluation images come from ``world.sample(n, seed)``, training batches from
# ``world.stream`` (SeedSequence-derived seeds), so the two never coincide.
KIND_SEED_OFFSET = {"classifier": 0, "encoder": 1000, "oracle": 2000}
EVAL_SEED = 987_654_321

CODE_P99_TARGET = 8.0
"""The encoder's fc6 code is rescaled (function-preserving) to this 99th percentile, so its
post-ReLU codes sit well inside the paper's clip range [0, 30] (CaffeNet-like scale)."""

AUGMENTED_KINDS = ("classifier", "oracle")
"""Kinds trained with :func:`blur_noise_augment`. The classifier was first trained on sharp
glyphs only; it then kept 67.5% of the prior's reconstructed circles that the (blur-trained)
oracle named 100% right, so it judged the generator's softer edges, not its shapes."""

DEFAULT_STEPS = {"classifier": 3000, "encoder": 3000, "oracle": 1000}
DEFAULT_LR = {"classifier": 1e-3, "encoder": 1e-3, "oracle": 2e-3}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def blur_noise_augment(x: Tensor, g: torch.Generator, p_blur: float = 0.5, p_noise: float = 0.3) -> Tensor:
    """Mild degradations so the oracle can judge soft generator images.

    ``x``: (N, 3, H, W) RGB [0, 1]. A random ``p_blur`` share is Gaussian-blurred with
    sigma in {0.6, 1.0, 1.4} px, a ``p_noise`` share gets N(0, sigma<=0.05) noise.
    Returns a new tensor in [0, 1]. Random numbers come from ``g`` (CPU generator).
    """
    n = x.shape[0]
    out = x.clone()
    r = torch.rand(n, generator=g)
    which = torch.randint(0, 3, (n,), generator=g)
    for k, sigma in enumerate((0.6, 1.0, 1.4)):
        sel = ((r < p_blur) & (which == k)).nonzero(as_tuple=True)[0]
        if sel.numel():
            out[sel.to(x.device)] = gaussian_blur(x[sel.to(x.device)], sigma)
    rn = torch.rand(n, generator=g)
    sig = (torch.rand(n, generator=g) * 0.05) * (rn < p_noise).float()
    noise = torch.randn(x.shape, generator=g) * sig[:, None, None, None]
    return (out + noise.to(x.device)).clamp_(0.0, 1.0)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding; same shape back."""
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return y


def _loss(net: nn.Module, kind: str, x: Tensor, batch) -> tuple[Tensor, Tensor]:
    """(loss, number correct) for one batch."""
    dev = x.device
    if kind == "oracle":
        s, c = net.heads(x)
        ts, tc = batch.shapes.to(dev), batch.colours.to(dev)
        loss = F.cross_entropy(s, ts) + F.cross_entropy(c, tc)
        correct = ((s.argmax(1) == ts) & (c.argmax(1) == tc)).sum()
        return loss, correct
    target = (batch.classes if kind == "classifier" else batch.modes).to(dev)
    logits = net(x)
    return F.cross_entropy(logits, target), (logits.argmax(1) == target).sum()


def train_glyph_net(
    kind: str,
    steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    eval_n: int = 4096,
    progress: bool = True,
    warmup: int = 150,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train one glyph network from scratch on fresh world images.

    Args:
        kind: "classifier", "encoder" or "oracle".
        steps: optimiser steps (default :data:`DEFAULT_STEPS`).
        batch_size: images per step.
        lr: Adam peak learning rate (default :data:`DEFAULT_LR`).
        seed: master seed (init, stream and augmentation derive from it).
        device: default CUDA if available, else CPU.
        eval_n: fresh held-out images for the final metrics.
        progress: show a tqdm bar.

    Returns:
        ``(net, metrics)``; ``net`` is in eval mode on CPU; ``metrics`` from
        :func:`evaluate_glyph_net` plus ``train_seconds``, ``steps``, ``batch_size``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    steps = int(steps or DEFAULT_STEPS[kind])
    lr = float(lr or DEFAULT_LR[kind])
    dev = pick_device(device)
    s = seed + KIND_SEED_OFFSET[kind]
    torch.manual_seed(s)
    world = GlyphWorld()
    net = build_glyph_net(kind).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def lr_at(i: int) -> float:
        if i < warmup:
            return lr * (i + 1) / warmup
        t = (i - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    aug_g = torch.Generator().manual_seed(s + 17)
    bar = None
    if progress:
        bar = tqdm(total=steps, desc=f"glyph {kind}", unit="step", dynamic_ncols=True)
    t0 = time.time()
    run_loss, run_acc = None, None
    net.train()
    for i, batch in enumerate(world.stream(batch_size, seed=s, n_batches=steps)):
        for group in opt.param_groups:
            group["lr"] = lr_at(i)
        x = batch.images.to(dev, non_blocking=True)
        if kind in AUGMENTED_KINDS:
            x = blur_noise_augment(x, aug_g)
        loss, correct = _loss(net, kind, x, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        li, ai = loss.item(), correct.item() / batch_size
        run_loss = li if run_loss is None else 0.98 * run_loss + 0.02 * li
        run_acc = ai if run_acc is None else 0.98 * run_acc + 0.02 * ai
        if bar is not None:
            bar.update(1)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{run_loss:.3f}", acc=f"{run_acc:.3f}")
        if log is not None and (i % 250 == 0 or i == steps - 1):
            log(f"{kind} step {i}/{steps} loss {run_loss:.4f} acc {run_acc:.4f} ({time.time() - t0:.0f}s)")
    if bar is not None:
        bar.close()
    train_seconds = time.time() - t0
    net = net.cpu().eval()
    extra: dict[str, Any] = {}
    if kind == "encoder":
        ref = world.sample(2048, seed=EVAL_SEED + 7).images
        extra["fc6_rescale"] = round(normalise_code_scale(net, ref, CODE_P99_TARGET), 6)
    metrics = evaluate_glyph_net(net, kind, n=eval_n, seed=EVAL_SEED + KIND_SEED_OFFSET[kind])
    metrics.update(train_seconds=round(train_seconds, 1), steps=steps, batch_size=batch_size,
                   lr=lr, images_seen=steps * batch_size, device=str(dev), **extra)
    return net, metrics


@torch.no_grad()
def normalise_code_scale(net: nn.Module, images: Tensor, target_p99: float = CODE_P99_TARGET) -> float:
    """Rescale an AlexNet-shaped net's fc6 code without changing its outputs.

    ReLU is positively homogeneous, so multiplying fc6 (weights and bias) by ``a > 0`` and
    dividing fc7's weights by ``a`` leaves the logits unchanged (up to rounding) while the
    post-ReLU fc6 code is scaled by ``a``. ``a`` is chosen so that the code's 99th
    percentile over ``images`` ((N, 3, 64, 64) RGB [0, 1]) equals ``target_p99``.
    Returns ``a``; ``net`` is modified in place.
    """
    h = torch.cat([net.encode(x) for x in images.split(512)])
    p99 = torch.quantile(h.flatten()[:1_000_000], 0.99).item()
    a = float(target_p99 / p99)
    net.fc6.weight.mul_(a)
    net.fc6.bias.mul_(a)
    net.fc7.weight.div_(a)
    return a


@torch.no_grad()
def evaluate_glyph_net(net: nn.Module, kind: str, n: int = 4096, seed: int = EVAL_SEED,
                       batch_size: int = 512) -> dict[str, Any]:
    """Accuracy of a glyph network on ``n`` fresh images of ``world.sample(n, seed)``.

    Returns a dict: for the classifier ``accuracy`` (class) and ``min_mode_accuracy``;
    for the encoder ``accuracy`` (mode), ``class_accuracy`` (mode mapped through the
    partition) and fc6 code statistics ``fc6_frac_nonzero``, ``fc6_p99``, ``fc6_max``,
    ``fc6_mean``; for the oracle ``accuracy`` (mode), ``shape_accuracy``,
    ``colour_accuracy``, ``blur_accuracy`` (sigma 1.0 blur), ``mean_confidence``.
    """
    world = GlyphWorld()
    batch = world.sample(n, seed=seed)
    net.eval()
    dev = next(net.parameters()).device
    preds, codes, extra = [], [], []
    for j in range(0, n, batch_size):
        x = batch.images[j:j + batch_size].to(dev)
        if kind == "oracle":
            assert isinstance(net, GlyphOracle)
            m, conf = net.predict(x)
            mb, _ = net.predict(gaussian_blur(x, 1.0))
            preds.append(m)
            extra.append(torch.stack([conf, mb.float()], 1))
        else:
            preds.append(net(x).argmax(1).cpu())
            if kind == "encoder":
                codes.append(net.encode(x).cpu())
    pred = torch.cat(preds)
    out: dict[str, Any] = {"eval_n": n, "eval_seed": seed}
    if kind == "classifier":
        ok = pred == batch.classes
        out["accuracy"] = ok.float().mean().item()
    elif kind == "encoder":
        ok = pred == batch.modes
        out["accuracy"] = ok.float().mean().item()
        out["class_accuracy"] = (world.classes_of(pred) == batch.classes).float().mean().item()
        h = torch.cat(codes)
        out["fc6_frac_nonzero"] = (h > 0).float().mean().item()
        out["fc6_p99"] = torch.quantile(h.flatten()[:1_000_000], 0.99).item()
        out["fc6_max"] = h.max().item()
        out["fc6_mean"] = h.mean().item()
        out["fc6_dim"] = int(h.shape[1])
    else:
        ex = torch.cat(extra)
        ok = pred == batch.modes
        out["accuracy"] = ok.float().mean().item()
        out["shape_accuracy"] = (pred // world.n_colours == batch.shapes).float().mean().item()
        out["colour_accuracy"] = (pred % world.n_colours == batch.colours).float().mean().item()
        out["blur_accuracy"] = (ex[:, 1].long() == batch.modes).float().mean().item()
        out["mean_confidence"] = ex[:, 0].mean().item()
    per_mode = torch.zeros(world.n_modes).index_add_(0, batch.modes, ok.float())
    counts = torch.bincount(batch.modes, minlength=world.n_modes).clamp(min=1).float()
    out["min_mode_accuracy"] = (per_mode / counts).min().item()
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in out.items()}


# ------------------------------------------------------------------ the oracle's "no glyph"
NEGATIVE_KINDS = ("texture", "noise", "blend", "pixel_am")
"""Off-world images the oracle must call "no glyph" (:func:`oracle_negatives`)."""

PIXEL_AM_PRIOR = {"blur_sigma": 1.0, "tv": 0.002, "jitter": 2}
PIXEL_AM_EPS = (1.0, 1.0, 0.0)
PIXEL_AM_LR = 0.05
"""Pixel-space activation maximisation as ``bench/facet_recall.py``'s ``pixel-am`` method."""

NEGATIVE_TRAIN_SEED = 31_337
NEGATIVE_EVAL_SEED = 271_828
PIXEL_AM_TRAIN_CLASSES = tuple(range(12))
"""Pixel-AM negatives for training come from classes 0-11 (seeds from NEGATIVE_TRAIN_SEED);
the held-out set adds classes 12-15 and other seeds of 0-11."""
NO_GLYPH_GATES = {"accuracy": 0.98, "realism_world": 0.95, "realism_negatives": 0.05}
REALISM_LEVEL = 0.9  # = neurovis.glyphs.evaluation.DEFAULT_REALISM_LEVEL


def _rand(g: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(shape, generator=g)


def texture_images(n: int, seed: int, size: int = 64) -> Tensor:
    """``n`` procedural textures (N, 3, size, size) RGB [0, 1], seeded.

    A third each: stripes (random angle, period 2-24 px, two random colours, hard or
    sinusoidal edges), checkerboards (cell 2-16 px, rotated, two colours) and smooth
    value noise (a 2-16 px random grid upsampled bilinearly, mapped between two colours
    or coloured per channel)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    out = torch.empty(n, 3, size, size)
    kinds = torch.randint(0, 3, (n,), generator=g)
    for i in range(n):
        c0, c1 = _rand(g, 3, 1, 1), _rand(g, 3, 1, 1)
        k = int(kinds[i])
        if k < 2:
            theta = float(_rand(g, 1)) * math.pi
            u = xx * math.cos(theta) + yy * math.sin(theta)
            v = -xx * math.sin(theta) + yy * math.cos(theta)
            if k == 0:
                period = 2 + float(_rand(g, 1)) * 22
                phase = float(_rand(g, 1)) * 2 * math.pi
                w = torch.sin(2 * math.pi * u / period + phase)
                w = (w > 0).float() if float(_rand(g, 1)) < 0.5 else 0.5 + 0.5 * w
            else:
                cell = 2 + float(_rand(g, 1)) * 14
                w = ((torch.floor(u / cell) + torch.floor(v / cell)) % 2).float()
        else:
            grid = int(torch.randint(2, 17, (1,), generator=g))
            if float(_rand(g, 1)) < 0.5:
                w = F.interpolate(_rand(g, 1, 1, grid, grid), size=(size, size), mode="bilinear",
                                  align_corners=False)[0, 0]
            else:  # each channel its own noise
                out[i] = F.interpolate(_rand(g, 1, 3, grid, grid), size=(size, size), mode="bilinear",
                                       align_corners=False)[0]
                continue
        out[i] = c0 + (c1 - c0) * w[None]
    return out.clamp_(0, 1)


def noise_images(n: int, seed: int, size: int = 64) -> Tensor:
    """``n`` noise images (N, 3, size, size) RGB [0, 1], seeded: half Gaussian (mean
    per channel in [0.2, 0.8], sigma 0.05-0.4), half uniform (in a random sub-range of
    [0, 1]); a third of each is grey (one value for the three channels)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        grey = float(_rand(g, 1)) < 1 / 3
        ch = 1 if grey else 3
        if float(_rand(g, 1)) < 0.5:
            mean = 0.2 + 0.6 * _rand(g, ch, 1, 1)
            sigma = 0.05 + 0.35 * float(_rand(g, 1))
            x = mean + sigma * torch.randn((ch, size, size), generator=g)
        else:
            lo = 0.5 * _rand(g, ch, 1, 1)
            hi = lo + (1 - lo) * (0.3 + 0.7 * _rand(g, ch, 1, 1))
            x = lo + (hi - lo) * _rand(g, ch, size, size)
        out[i] = x.expand(3, size, size)
    return out.clamp_(0, 1)


def blend_images(n: int, seed: int, world: GlyphWorld | None = None) -> Tensor:
    """``n`` blends ``a * x1 + (1 - a) * x2`` of two world images, ``a`` in [0.3, 0.7], seeded
    (pairs with the same mode and overlapping glyph are kept: ghosts of two glyphs)."""
    world = world or GlyphWorld()
    g = torch.Generator().manual_seed(seed)
    x1 = world.sample(n, seed=seed * 2 + 1).images
    x2 = world.sample(n, seed=seed * 2 + 2).images
    a = (0.3 + 0.4 * _rand(g, n))[:, None, None, None]
    return (a * x1 + (1 - a) * x2).clamp_(0, 1)


def pixel_am_images(classes, chains: int, steps: int, seed: int, keep_steps=None,
                    model: nn.Module | None = None) -> Tensor:
    """Pixel-space activation-maximisation images of the glyph classifier, RGB [0, 1].

    For each class in ``classes``: ``chains`` chains of ``nv.sample(PixelPrior((3, 64, 64),
    blur 1 px, TV 0.002, jitter 2 px), ClassCondition(model, c), eps=(1, 1, 0), lr=0.05)``
    from noise for ``steps`` steps (seed ``seed + c``), as ``bench/facet_recall.py``'s
    ``pixel-am``. Returns the images at ``keep_steps`` (default: the last), stacked
    (len(classes) * chains * len(keep_steps), 3, 64, 64)."""
    model = model if model is not None else glyph_net("classifier")()
    prior = PixelPrior((3, 64, 64), device="cpu", **PIXEL_AM_PRIOR)
    keep = list(keep_steps) if keep_steps is not None else [steps]
    out = []
    for c in classes:
        ch = sample(prior, ClassCondition(model, int(c)), chains=chains, steps=steps, eps=PIXEL_AM_EPS,
                       lr=PIXEL_AM_LR, seed=seed + int(c), progress=False)
        for t in keep:
            out.append(ch.images(step=t, rgb=True).float())
    return torch.cat(out)


def oracle_negatives(n: int, seed: int, kinds=("texture", "noise", "blend")) -> dict[str, Tensor]:
    """``n`` seeded images of each procedural negative kind: ``{kind: (n, 3, 64, 64)}``.
    Pixel-AM images are slower; see :func:`pixel_am_images`."""
    make = {"texture": texture_images, "noise": noise_images, "blend": blend_images}
    return {k: make[k](n, seed + 7919 * i) for i, k in enumerate(kinds)}


def heldout_negatives(n: int = 512, pixel_am_chains: int = 8, pixel_am_steps: int = 60) -> dict[str, Tensor]:
    """The held-out evaluation negatives: ``n`` of each procedural kind (seed
    :data:`NEGATIVE_EVAL_SEED`) and pixel-AM images of all 16 classes at ``pixel_am_steps``
    steps (other seeds than training's; classes 12-15 never seen in training)."""
    out = oracle_negatives(n, NEGATIVE_EVAL_SEED)
    out["pixel_am"] = pixel_am_images(range(16), pixel_am_chains, pixel_am_steps, seed=NEGATIVE_EVAL_SEED)
    return out


@torch.no_grad()
def realism_share(oracle: GlyphOracle, images: Tensor, level: float = REALISM_LEVEL) -> float:
    """Share of ``images`` the oracle names with confidence >= ``level`` (as ``realism``)."""
    return float((oracle.predict(images)[1] >= level).float().mean())


def finetune_oracle_no_glyph(
    base: GlyphOracle,
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 3e-3,
    seed: int = 0,
    n_world: int = 6144,
    n_negative: int = 1536,
    pixel_am_chains: int = 8,
    log: Callable[[str], None] | None = None,
) -> tuple[GlyphOracle, dict[str, Any]]:
    """Give a (two-head) oracle the explicit "no glyph" answer: a fresh ``glyph_head``
    (256 -> 64 -> 1) trained on the **frozen** pooled features of the base oracle.

    The trunk and the shape/colour heads are copied unchanged, so the modes, ``forward``
    and p(shape)·p(colour) are exactly the base oracle's; only the factor p(glyph) is new.
    (A full fine-tune of the network passed the same gates but changed the named mode of
    6.4% of the glyph prior's reconstructions G(E(x)) and cut realism on sigma-1.4-blurred
    world images from 1.00 to 0.91; see ``neurovis/glyphs/weights/TRAINING_LOG.md``.)

    Data, seeded: ``n_world`` world images (blur/noise augmented as in the oracle's
    training) as "glyph"; as "no glyph", ``n_negative`` each of textures, noise and blends
    of two glyph images (augmented the same way), and pixel-AM images of classes 0-11
    (``12 * pixel_am_chains`` chains at steps 10, 20, 30, 40, plain and augmented). The
    features are standardised (folded into the head's first layer afterwards); Adam,
    ``steps`` minibatches of ``batch_size`` drawn with both sides weighted equally.

    Returns ``(oracle, metrics)``: the oracle in eval mode on CPU; metrics from
    :func:`evaluate_glyph_net` plus ``realism_world`` and ``realism_<kind>`` on held-out
    images (:func:`no_glyph_metrics`).
    """
    t0 = time.time()
    s = seed + KIND_SEED_OFFSET["oracle"]
    torch.manual_seed(s)
    base = base.cpu().eval()
    net = GlyphOracle(base.n_shapes, base.n_colours, no_glyph=True)
    trunk = {k: v for k, v in base.state_dict().items() if not k.startswith("glyph_head.")}
    missing = net.load_state_dict(trunk, strict=False)  # a fresh glyph head, also for a three-head base
    assert all(k.startswith("glyph_head.") for k in missing.missing_keys) and not missing.unexpected_keys, missing
    for prm in net.parameters():
        prm.requires_grad_(False)
    for prm in net.glyph_head.parameters():
        prm.requires_grad_(True)
    net.eval()
    world = GlyphWorld()
    aug_g = torch.Generator().manual_seed(s + 23)
    chunk = 256
    pos, neg = [], []
    with torch.no_grad():
        for i in range(0, n_world, chunk):
            x = world.sample(min(chunk, n_world - i), seed=NEGATIVE_TRAIN_SEED + 1 + i).images
            pos.append(net.pooled(blur_noise_augment(x, aug_g)))
        for i in range(0, n_negative, chunk // 4):
            negs = oracle_negatives(min(chunk // 4, n_negative - i), NEGATIVE_TRAIN_SEED + 100_003 + i)
            neg.append(net.pooled(blur_noise_augment(torch.cat(list(negs.values())), aug_g)))
        pam = pixel_am_images(PIXEL_AM_TRAIN_CLASSES, pixel_am_chains, 40, seed=NEGATIVE_TRAIN_SEED,
                              keep_steps=(10, 20, 30, 40))
        neg += [net.pooled(pam), net.pooled(blur_noise_augment(pam, aug_g))]
    fp, fn = torch.cat(pos), torch.cat(neg)
    if log:
        log(f"features: {len(fp)} world, {len(fn)} negatives ({time.time() - t0:.0f}s)")
    x = torch.cat([fp, fn])
    y = torch.cat([torch.ones(len(fp)), torch.zeros(len(fn))])
    w = torch.cat([torch.full((len(fp),), 0.5 / len(fp)), torch.full((len(fn),), 0.5 / len(fn))])
    mu, sd = x.mean(0), x.std(0) + 1e-3
    head = net.glyph_head
    assert head is not None
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    pick_g = torch.Generator().manual_seed(s + 29)
    for i in range(steps):
        idx = torch.multinomial(w, batch_size, replacement=True, generator=pick_g)
        loss = F.binary_cross_entropy_with_logits(head((x[idx] - mu) / sd)[:, 0], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log and (i % 500 == 0 or i == steps - 1):
            log(f"no-glyph head step {i}/{steps} loss {loss.item():.5f} ({time.time() - t0:.0f}s)")
    with torch.no_grad():  # fold the standardisation into the first layer
        lin = head[0]
        wt = lin.weight / sd
        lin.bias.sub_((wt * mu).sum(1))
        lin.weight.copy_(wt)
    train_seconds = time.time() - t0
    net = net.cpu().eval()
    metrics = evaluate_glyph_net(net, "oracle", n=4096, seed=EVAL_SEED + KIND_SEED_OFFSET["oracle"])
    metrics.update(no_glyph_metrics(net))
    metrics.update(no_glyph_head="frozen trunk", no_glyph_steps=steps, no_glyph_batch=batch_size, no_glyph_lr=lr,
                   no_glyph_world=len(fp), no_glyph_negatives=len(fn), no_glyph_seconds=round(train_seconds, 1))
    return net, metrics


def no_glyph_metrics(net: GlyphOracle, n: int = 1024) -> dict[str, float]:
    """Realism (confidence >= 0.9) of ``net`` on held-out world images (the oracle's eval
    seed) and on each held-out negative kind (:func:`heldout_negatives`)."""
    world = GlyphWorld().sample(n, seed=EVAL_SEED + KIND_SEED_OFFSET["oracle"] + 1)
    out = {"realism_world": round(realism_share(net, world.images), 5)}
    for k, x in heldout_negatives(n).items():
        out[f"realism_{k}"] = round(realism_share(net, x), 5)
    return out


def no_glyph_gates(m: dict[str, Any]) -> dict[str, bool]:
    """The no-glyph gates on metrics from :func:`finetune_oracle_no_glyph`."""
    return {
        "accuracy": m["accuracy"] >= NO_GLYPH_GATES["accuracy"],
        "realism_world": m["realism_world"] >= NO_GLYPH_GATES["realism_world"],
        **{f"realism_{k}": m[f"realism_{k}"] <= NO_GLYPH_GATES["realism_negatives"] for k in NEGATIVE_KINDS},
    }
