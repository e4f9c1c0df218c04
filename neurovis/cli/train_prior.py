"""``neurovis train-prior``: train a generator prior for an encoder's code layer.

The options map one to one onto :class:`~neurovis.training.prior.PriorTrainingConfig` and
:func:`neurovis.training.command.train_prior`, which does the work (and resumes from the
checkpoint in ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neurovis.cli.args import _eps, _size

HELP = "train a generator prior (Noiseless Joint PPGN-h) for an encoder's code layer"
"""The command's line in ``neurovis --help``."""


def add_train_prior(p: argparse.ArgumentParser) -> None:
    """The options of ``train-prior`` (the library's choices and defaults)."""
    from neurovis.training.discriminator import DISCRIMINATOR_CHANNELS
    from neurovis.training.prior import IMAGE_LOSSES, LR_SCHEDULES

    p.add_argument("--encoder", required=True, help="encoder model name or package.module:factory (frozen)")
    p.add_argument("--weights", help="state dict file (weights_only) for the encoder instead of its default weights")
    p.add_argument("--random-weights", action="store_true", help="torchvision encoders: untrained (smoke tests only)")
    p.add_argument("--code-layer", required=True, help="layer whose post-ReLU output is the code h (fc6)")
    p.add_argument("--feature-layer", help="spatial layer for the feature-matching loss (pool5)")
    p.add_argument("--data", required=True, help="image folder (searched recursively), or 'world' for the glyph world")
    p.add_argument("--out", required=True, help="output folder: checkpoint.pt, losses.csv, generator.pt (resumes if a checkpoint is there)")
    p.add_argument("--generator", default="auto", choices=("auto", "glyph", "deepsim-fc6"),
                   help="auto (default: glyph for encoders reading ≤ 64 px, else deepsim-fc6), glyph (64×64) "
                        "or deepsim-fc6 (256×256, centre-cropped to the encoder's size)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--w-img", type=float, default=1.0, help="weight of the image loss")
    p.add_argument("--image-loss", choices=IMAGE_LOSSES, default="mse",
                   help="the image loss: mse (default, the paper's ‖x̂ − x‖²) or l1 (mean |x̂ − x|)")
    p.add_argument("--w-feat", type=float, default=1.0, help="weight of the feature-matching loss")
    p.add_argument("--w-code", type=float, default=0.0, help="weight of the code loss ‖E(G(h)) − h‖²")
    p.add_argument("--w-gan", type=float, default=0.0, help="weight of the GAN loss (0: no discriminator)")
    p.add_argument("--w-out", type=float, default=0.0,
                   help="weight of the output loss KL(softmax E_out(x) ‖ softmax E_out(G(h))) (not in the paper; 0: off)")
    p.add_argument("--output-layer", default="fc8", help="encoder layer holding its logits, for --w-out (default fc8)")
    p.add_argument("--gan-start", type=int, default=0, help="step from which G gets the GAN loss")
    p.add_argument("--noise", type=_eps, default=(0.0, 0.0, 0.0), help="σ on h,h1,x (Joint PPGN-h), e.g. 1,4,1")
    p.add_argument("--lr-decay-at", type=int, nargs="*", default=[], metavar="STEP",
                   help="halve the learning rate of G and D after these steps (e.g. 3000 11000)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="step",
                   help="step (default: --lr, halved at --lr-decay-at) or cosine (--lr down to 0 at --steps)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="bf16: forward passes under bf16 autocast, weights and losses fp32 (2x faster on CPUs "
                        "with AMX or AVX512-BF16, and on GPUs; 30x slower where bf16 is emulated); "
                        "auto: bf16 where the device has native bf16, else fp32")
    p.add_argument("--channels-last", action="store_true", help="store E, G and D's conv weights as NHWC (faster with bf16)")
    p.add_argument("--discriminator-channels", type=_size, default=DISCRIMINATOR_CHANNELS, metavar="C1,C2,...",
                   help="widths of D's strided convs (default 32,64,128,256; 16,32,64,128 costs a third as much)")
    p.add_argument("--image-size", type=_size, help="H,W of the training images (default: the encoder's)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="use an --out folder that holds other files")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_prior)


def cmd_train_prior(args: argparse.Namespace) -> int:
    """Train under the lock of ``--out``; prints the generator's path."""
    from neurovis.cli.commands import load_model
    from neurovis.runs.output import OutputLock, check_writable
    from neurovis.runs.setup import resolve_device
    from neurovis.training.command import train_prior
    from neurovis.training.prior import PriorTrainingConfig
    from neurovis.zoo import image_source

    config = PriorTrainingConfig(
        steps=args.steps, lr=args.lr, w_img=args.w_img, w_feat=args.w_feat, w_code=args.w_code, w_gan=args.w_gan,
        w_out=args.w_out, gan_start=args.gan_start, noise=args.noise, seed=args.seed, checkpoint_every=args.checkpoint_every,
        lr_decay_at=tuple(args.lr_decay_at), precision=args.precision, channels_last=args.channels_last,
        discriminator_channels=tuple(args.discriminator_channels), lr_schedule=args.lr_schedule,
        image_loss=args.image_loss,
    )
    out = Path(args.out)
    check_writable(out)
    encoder, device = load_model(args.encoder, args.weights, args.random_weights), resolve_device(args.device)
    with OutputLock(out, args.command_line):
        path = train_prior(
            encoder, args.code_layer, args.feature_layer, image_source(args.data, args.batch_size, config.seed), out,
            config,
            generator=args.generator, batch_size=args.batch_size,
            image_size=tuple(args.image_size) if args.image_size else None, device=device,
            force=args.force, progress=not args.quiet, output_layer=args.output_layer,
        )
    if not args.quiet:
        print(f"generator: {path}")
    return 0
