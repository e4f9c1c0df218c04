"""The commands that look at a model: ``layers``, ``facets``, ``layer``, ``sample``, ``inpaint``.

Each command is a parser (``add_<command>``, its options) and a handler (``cmd_<command>``)
that turns the options into objects (the zoo's model and prior, the natural images:
:func:`setup`), calls one workflow of :mod:`neurovis.runs` and prints its summary line.
Every library import happens inside the handler that needs it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from neurovis.cli.args import (
    DEFAULT_OUT,
    _position,
    _rect,
    _size,
    add_exact,
    add_model_args,
    add_report,
    add_sampling,
    parse_units,
    slug,
)
from neurovis.errors import NeurovisError

HELP = {
    "layers": "list a model's hookable layers with output shapes and aliases",
    "facets": "the facets of one unit: run chains, keep p ≥ 0.97, cluster, write a report",
    "layer": "one facet report per unit of a layer, plus a sortable index",
    "sample": "sample a class (by index or name); several --class at once are combined",
    "inpaint": "PPGN-context: fill a hole in a photo with a class",
}
"""One line per command, as ``neurovis --help`` lists them."""


# ----------------------------------------------------------------------------- loading
def load_prior(spec: str) -> Any:
    """A prior by registered name or ``package.module:factory`` (``neurovis.zoo.load_prior``)."""
    from neurovis.zoo import load_prior as zoo_load_prior

    try:
        return zoo_load_prior(spec)
    except FileNotFoundError as err:  # zoo weights missing: say which file and how to make it
        raise NeurovisError(str(err).splitlines()[0]) from None


def load_model(spec: str, weights: str | None = None, random_weights: bool = False) -> Any:
    """A model by registered name, torchvision name or ``package.module:factory``."""
    from neurovis.zoo import load_model as zoo_load_model

    try:
        return zoo_load_model(spec, weights=weights, random_weights=random_weights)
    except FileNotFoundError as err:  # zoo weights missing: say which file and how to make it
        raise NeurovisError(str(err).splitlines()[0]) from None


def prior_spec(args: argparse.Namespace) -> str:
    """``--prior``, else the prior that goes with ``--model`` (glyphs -> glyphs, caffenet ->
    caffenet-fc6); other models must name one."""
    from neurovis.zoo import find_model_entry, registered_priors

    if args.prior:
        return args.prior
    entry = find_model_entry(args.model)
    spec = entry.default_prior if entry is not None and entry.default_prior else args.model
    if spec not in registered_priors():
        raise NeurovisError(
            f"--model {args.model} has no prior of its own; pass --prior caffenet-fc6 (the paper's, after "
            "`neurovis convert-caffe`), --prior glyphs, or --prior package.module:factory"
        )
    return spec


def run_method(args: argparse.Namespace, prior: Any) -> Any:
    """The full :class:`~neurovis.method.Method` a sampling command runs: ``--preset`` and
    any setting given on the command line, resolved by the same function as
    :func:`neurovis.sample` (:func:`neurovis.method.resolve_method`)."""
    from neurovis.method import resolve_method
    from neurovis.sampling import EXACT_RULES

    starts = {"natural": "bank"}.get(args.starts, args.starts)
    rule = None if args.rule in EXACT_RULES else args.rule
    return resolve_method(prior, args.preset, eps=args.eps, lr=args.lr, rule=rule, reset_every=args.reset_every,
                          starts=starts, threshold=getattr(args, "threshold", None))


def setup(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, float]]:
    """Load the model and prior on the device and the natural images; return
    ``(model, prior, natural images or None, timings)``. Sets ``args.starts`` to ``random``
    when the method starts from a bank the prior does not have."""
    from neurovis.runs import setup as prepare

    start = time.perf_counter()
    device = prepare.resolve_device(args.device)
    model = load_model(args.model, args.weights, args.random_weights).to(device)
    prior = load_prior(prior_spec(args))
    if args.preset == "paper" and prior.paper_treatment is not None:  # e.g. glyphs -> Noiseless Joint PPGN-h
        prior = prior.paper_treatment(device)
    prepare.set_clamp_pixels(prior, args.clamp_pixels)
    for module in prior.modules():
        module.to(device)
    timings = {"load": round(time.perf_counter() - start, 4)}
    start = time.perf_counter()
    natural = None if args.no_images else prepare.natural_images(
        model, prior, folder=args.images, glyph_count=args.natural_count, seed=args.seed)
    if natural is not None:
        timings["load_natural_images"] = round(time.perf_counter() - start, 4)
    method = run_method(args, prior)
    no_bank = method.starts == "bank" and getattr(prior, "start_codes", "n/a") is None
    if args.starts == "natural" or (no_bank and natural is not None and args.images):
        start = time.perf_counter()  # the prior has no bank of its own: the natural images' codes are one
        prior = prepare.with_natural_starts(prior, natural, device)
        timings["encode_starts"] = round(time.perf_counter() - start, 4)
        kept = None if args.starts == "natural" else prepare.keep_start_bank(prior, args.images)
        if kept is not None and not args.quiet:
            print(f"neurovis: note: start bank of {prior.start_codes.shape[0]} codes from {args.images} kept at {kept}",
                  file=sys.stderr)
    elif no_bank:
        if not args.quiet:
            print(f"neurovis: note: {getattr(prior, 'name', type(prior).__name__)} has no start bank (codes of real "
                  "images), so chains start from N(0, 1) as in the paper; pass --images DIR to start from your "
                  "images' codes", file=sys.stderr)
        args.starts = "random"
    return model, prior, natural, timings


# ----------------------------------------------------------------------------- options -> keyword arguments
def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sampler's keyword arguments from the command line, but chains, steps, seed and
    preset (the runs' own arguments) and init/progress."""
    from neurovis.sampling import EXACT_RULES

    starts = {"natural": "bank"}.get(args.starts, args.starts)
    kwargs: dict[str, Any] = dict(eps=args.eps, lr=args.lr, rule=args.rule, reset_every=args.reset_every, starts=starts,
                                  on_nan="mark", precision=args.precision, channels_last=args.channels_last,
                                  compile=args.compile)
    if args.rule in EXACT_RULES:
        kwargs.update(step_size=args.step_size, leapfrog_steps=args.leapfrog_steps, noise_anneal=args.noise_anneal,
                      step_decay=args.step_decay, bounds=args.bounds, clip_after_mh=args.clip_after_mh)
    return kwargs


def report_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`neurovis.facets`' keyword arguments from the command line (but natural images,
    seed, command, timings, progress)."""
    return dict(threshold=args.threshold, keep=args.keep, pick=args.pick, n_facets=args.facets, features=args.features,
                attribution=not args.no_attribution, bootstrap=args.bootstrap)


def _common(args: argparse.Namespace, natural: Any, timings: dict[str, float]) -> dict[str, Any]:
    """The keyword arguments every run takes from the command line."""
    return dict(chains=args.chains, steps=args.steps, seed=args.seed, preset=args.preset,
                sampling=sampling_options(args), report=report_options(args), natural_images=natural,
                force=args.force, progress=not args.quiet, command=args.command_line, timings=timings)


def sample_chains(args: argparse.Namespace, prior: Any, condition: Any, init: Any = None) -> Any:
    """The chains the sampling commands run for ``condition`` (``sample``, ``facets``)."""
    from neurovis.runs.options import RunOptions
    from neurovis.sampling import sample

    options = RunOptions(steps=args.steps, seed=args.seed, preset=args.preset, sampling=sampling_options(args))
    return sample(prior, condition, chains=args.chains, init=init, progress=not args.quiet, **options.sample_kwargs())


def _out(args: argparse.Namespace, default: Path) -> Path:
    """``--out`` or ``default``, checked before anything loads (replaceable, writable)."""
    from neurovis.runs.output import check_output

    return check_output(Path(args.out) if args.out else default, args.force)


def _say(args: argparse.Namespace, text: str) -> int:
    if not args.quiet:
        print(text)
    return 0


# ----------------------------------------------------------------------------- layers
def add_layers(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("--input-size", type=_size, help="C,H,W of one input (default: the model's own)")
    p.set_defaults(func=cmd_layers)


def cmd_layers(args: argparse.Namespace) -> int:
    import neurovis.hooks

    model = load_model(args.model, args.weights, args.random_weights)
    size = args.input_size or getattr(model, "input_size", None)
    if size is None:
        raise NeurovisError(f"{args.model} does not declare its input size; pass --input-size C,H,W")
    if len(size) == 2:  # models may declare (H, W)
        size = (3, *size)
    try:
        layers = neurovis.hooks.list_layers(model, size)
    except RuntimeError as err:  # the input does not fit the network (channels, too small)
        first = " ".join(str(err).split())[:160]
        raise NeurovisError(f"{args.model} does not run on a {','.join(map(str, size))} input ({first}); pass the "
                            "--input-size C,H,W it was built for") from None
    for info in layers:
        print(info)
    return 0


# ----------------------------------------------------------------------------- facets
def add_facets(p: argparse.ArgumentParser) -> None:
    add_sampling(p)
    add_exact(p)
    p.add_argument("--layer", required=True, help="layer path (features.10) or alias (conv5)")
    p.add_argument("--unit", type=int, required=True, help="channel index")
    p.add_argument("--position", type=_position, help="spatial position: int, y,x or 'mean' (default the centre)")
    p.add_argument("--resume", action="store_true",
                   help="continue an unfinished run kept in <out>.partial (same settings): reuse its chains")
    add_report(p)
    p.set_defaults(func=cmd_facets)


def cmd_facets(args: argparse.Namespace) -> int:
    from neurovis.runs.facets import run_facets
    from neurovis.runs.workfolder import run_settings

    out = _out(args, DEFAULT_OUT / "facets" / slug(args.model, args.layer, args.unit))
    settings = run_settings(vars(args))
    model, prior, natural, timings = setup(args)
    run = run_facets(model, prior, args.layer, args.unit, out, position=args.position, gradient=args.gradient,
                     resume=args.resume, settings=settings, **_common(args, natural, timings))
    return _say(args, run.summary())


# ----------------------------------------------------------------------------- layer
def add_layer(p: argparse.ArgumentParser) -> None:
    add_sampling(p)
    add_exact(p)
    p.add_argument("--layer", required=True, help="layer path or alias")
    p.add_argument("--units", default="0:16", help="units: 0:16 (end excluded), 3,7,9 or 5 (default 0:16)")
    p.add_argument("--position", type=_position, help="spatial position: int, y,x or 'mean' (default the centre)")
    p.add_argument("--units-per-batch", type=int, default=8,
                   help="units sampled together in one batch of units×chains (default 8; halved on out-of-memory)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run kept in <out>.partial (same settings); finished units are kept")
    add_report(p)
    p.set_defaults(func=cmd_layer)


def cmd_layer(args: argparse.Namespace) -> int:
    """One report per unit and an index (:func:`neurovis.runs.layer.run_layer`); under
    torchrun each process takes its own device and its share of the units."""
    from neurovis._utils.dist import local_device_name
    from neurovis.runs.layer import run_layer
    from neurovis.runs.workfolder import run_settings

    units = parse_units(args.units)
    out = _out(args, DEFAULT_OUT / "layer" / slug(args.model, args.layer))
    settings = run_settings(vars(args), units=units)
    args.device = local_device_name(args.device)  # torchrun: one GPU per process
    model, prior, natural, timings = setup(args)
    run = run_layer(model, prior, args.layer, units, out, position=args.position, gradient=args.gradient,
                    units_per_batch=args.units_per_batch, resume=args.resume, settings=settings, name=args.model,
                    title=f"{type(model).__name__} · layer {args.layer} · units {args.units}",
                    **_common(args, natural, timings))
    return 0 if run.index is None else _say(args, run.summary())


# ----------------------------------------------------------------------------- sample
def add_sample(p: argparse.ArgumentParser) -> None:
    add_sampling(p)
    add_exact(p)
    p.add_argument("--class", dest="classes", action="append",
                   help="class index or name; repeat for several at once (piano and candle)")
    p.add_argument("--caption", help="sample a sentence instead of a class (paper §3.5), e.g. 'a blue ring' "
                                     "for --model glyphs; the paper's caption settings are the defaults "
                                     "(ε 1e-3,1,1e-17, lr 1 decaying to 1e-10, no restarts, keep mean word "
                                     "probability ≥ 0.97: see docs/captions.md)")
    p.add_argument("--captioner", metavar="DIR",
                   help="captioner for --caption: a folder of converted LRCN files (lrcn.pt, vocabulary.txt, "
                        "optional features.pt) or a glyph captioner .pt (default for glyph models: the shipped one)")
    p.add_argument("--vocabulary", metavar="FILE", help="the LRCN vocabulary file (default DIR/vocabulary.txt)")
    p.add_argument("--class-weights", type=lambda t: [float(v) for v in t.split(",")],
                   help="weights of the classes' log-probabilities, w1,w2,... (default all 1)")
    add_report(p)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from neurovis.conditions import ClassCondition, combine
    from neurovis.runs.facets import run_sample

    if (args.caption is None) == (not args.classes):
        raise NeurovisError("sample needs --class C or --caption TEXT, not both" if args.classes else
                            "sample needs --class C (a class) or --caption TEXT (a sentence)")
    if args.caption is not None:
        return cmd_sample_caption(args)
    if args.class_weights is not None and len(args.class_weights) != len(args.classes):
        raise NeurovisError(f"{len(args.classes)} classes but {len(args.class_weights)} --class-weights; give one per --class")
    out = _out(args, DEFAULT_OUT / "sample" / slug(args.model, "class", "+".join(args.classes)))
    model, prior, natural, timings = setup(args)
    conds = [ClassCondition(model, c, gradient=args.gradient) for c in args.classes]
    condition = conds[0] if len(conds) == 1 else combine(*conds, weights=args.class_weights)
    return _say(args, run_sample(prior, condition, out, **_common(args, natural, timings)).summary())


def cmd_sample_caption(args: argparse.Namespace) -> int:
    """``sample --caption``: the paper's caption settings (:data:`neurovis.caption.CAPTION_SETTINGS`)
    for every sampling setting left unset, the caption threshold for the report."""
    from neurovis.caption import CAPTION_SETTINGS, CAPTION_THRESHOLD
    from neurovis.runs.facets import run_sample
    from neurovis.sampling import EXACT_RULES
    from neurovis.zoo.captions import build_caption_condition, check_caption

    if args.class_weights is not None:
        raise NeurovisError("--class-weights goes with --class, not --caption")
    if args.captioner is None:  # bad words fail before anything loads
        check_caption(args.model, args.caption)
    out = _out(args, DEFAULT_OUT / "sample" / slug(args.model, "caption", args.caption))
    for key in ("eps", "lr", "reset_every"):
        if getattr(args, key) is None:
            setattr(args, key, CAPTION_SETTINGS[key])
    args.threshold = CAPTION_THRESHOLD if args.threshold is None else args.threshold
    model, prior, natural, timings = setup(args)
    condition = build_caption_condition(args.caption, args.model, model, args.captioner, args.vocabulary, prior.device)
    options = _common(args, natural, timings)
    if args.rule not in EXACT_RULES:
        options["sampling"]["lr_end"] = CAPTION_SETTINGS["lr_end"]
    return _say(args, run_sample(prior, condition, out, **options).summary())


# ----------------------------------------------------------------------------- inpaint
def add_inpaint(p: argparse.ArgumentParser) -> None:
    from neurovis.method import INPAINT_INITS as INITS

    add_sampling(p)
    add_exact(p)
    p.add_argument("--image", required=True, help="the photo (any format PIL reads); resized to the prior's size")
    p.add_argument("--mask", type=_rect, required=True, help="the hole x,y,w,h in the photo's pixels")
    p.add_argument("--class", dest="klass", required=True, help="class index or name to draw in the hole")
    p.add_argument("--eps4", type=float, default=1e-9, help="weight of the context term (default 1e-9)")
    p.add_argument("--init", choices=INITS, default="encode",
                   help="start from E(masked photo) (default) or random codes")
    add_report(p)
    p.set_defaults(func=cmd_inpaint)


def cmd_inpaint(args: argparse.Namespace) -> int:
    from neurovis.runs.inpaint import run_inpaint

    out = _out(args, DEFAULT_OUT / "inpaint" / slug(Path(args.image).stem, "class", args.klass))
    model, prior, natural, timings = setup(args)
    run = run_inpaint(model, prior, args.image, args.mask, args.klass, out, eps4=args.eps4, init=args.init,
                      gradient=args.gradient, **_common(args, natural, timings))
    return _say(args, run.summary())


COMMANDS = {"layers": add_layers, "facets": add_facets, "layer": add_layer, "sample": add_sample, "inpaint": add_inpaint}
"""Command name -> the function that adds its options (and its handler)."""
