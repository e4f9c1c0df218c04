"""The ``neurovis`` command line.

Commands::

    neurovis facets  --model M --layer L --unit K      one unit: chains -> facets -> report
    neurovis layer   --model M --layer L --units 0:16  one report per unit + a sortable index
    neurovis sample  --model M --class C [--class C2]  a class (several: all at once) -> report
    neurovis inpaint --model M --image P --mask x,y,w,h --class C   PPGN-context -> report
    neurovis layers  --model M                          hookable layers, shapes, aliases
    neurovis train-prior --encoder E --code-layer fc6 --data DIR --out DIR   train a prior
    neurovis convert-caffe --prototxt P --caffemodel W --out F.pt   Caffe files -> .pt (no Caffe)

``--model`` takes a registered name (``glyphs`` runs offline out of the box; ``caffenet``
once converted), a torchvision model name (weights from torchvision's cache, never
downloaded; ``--weights FILE`` loads a state dict instead) or ``package.module:factory``
(a function returning an ``nn.Module``). The prior comes from ``--prior`` (a registered
name such as ``glyphs`` or ``caffenet-fc6``, or ``package.module:factory`` returning a
:class:`~neurovis.Prior`), by default the model's own (glyphs, caffenet).

A report folder (``--out``) holds ``index.html`` (opens from disk, offline),
``facets.json``, ``samples.h5`` and ``img/*.png``; it is written atomically, and an existing
folder is replaced only with ``--force`` (and only if it is a neurovis report). Progress
bars go to stderr (``--quiet`` silences them and the summary line). Every option, the unit
range and the output folder are checked before any sampling; a run refused for bad input
leaves nothing behind. One run at a time writes an output: a second one is refused while
the lock file ``.<out>.lock`` names a live run. ``--threads N`` fixes torch's CPU threads.
See docs/errors.md.

Exit codes: 0 success (the report was written, whatever its status: read ``status`` in
``facets.json``); 1 an unexpected internal error (a bug: please report it with the
traceback that ``NEUROVIS_DEBUG=1`` shows); 2 bad input (a one-line message on stderr);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn, Sequence

from neurovis._version import __version__
from neurovis.errors import NeurovisError

DEFAULT_OUT = Path("out")


# ----------------------------------------------------------------------------- parsing
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line plus where to look (not the whole usage)."""

    commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"neurovis: error: {' '.join(message.split())}; see `{self.prog} --help`\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the command's parser, so that the hint names `neurovis <command> --help`
            self.commands.get(getattr(parsed, "command", None) or "", self).error(
                f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _size(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints like 3,224,224, got {text!r}") from None


def _eps(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers ε1,ε2,ε3 like 1e-5,1,1e-17, got {text!r}")
    return values  # type: ignore[return-value]


def _rect(text: str) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0 or values[0] < 0 or values[1] < 0:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h (ints, w and h > 0) like 60,60,100,100, got {text!r}")
    return values  # type: ignore[return-value]


def _position(text: str) -> Any:
    if text == "mean":
        return "mean"
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, y,x or 'mean', got {text!r}") from None
    return values[0] if len(values) == 1 else values


def parse_units(text: str) -> list[int]:
    """``"0:16"`` (a range, end excluded), ``"0:16:2"``, ``"3,7,9"`` or ``"5"`` -> unit list."""
    units: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if ":" in part:
                bits = [int(b) if b else None for b in part.split(":")]
                if len(bits) > 3 or bits[1] is None:
                    raise ValueError
                start, stop = bits[0] or 0, bits[1]
                step = bits[2] if len(bits) == 3 and bits[2] else 1
                units.extend(range(start, stop, step))
            else:
                units.append(int(part))
    except (ValueError, TypeError):
        raise NeurovisError(f"--units {text!r}: use a range like 0:16, a list like 3,7,9, or one unit") from None
    if not units or min(units) < 0:
        raise NeurovisError(f"--units {text!r} selects no units (or a negative one)")
    return list(dict.fromkeys(units))


def slug(*parts: Any) -> str:
    """A safe folder name from arbitrary text (layer names may hold anything)."""
    text = "_".join(str(p) for p in parts if p is not None and str(p) != "")
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("._-")
    return text[:80] or "report"


# ----------------------------------------------------------------------------- loading
def load_prior(spec: str):
    """A prior by registered name or ``package.module:factory`` (``neurovis.zoo.load_prior``)."""
    from neurovis.zoo import load_prior as zoo_load_prior

    try:
        return zoo_load_prior(spec)
    except FileNotFoundError as err:  # zoo weights missing: say which file and how to make it
        raise NeurovisError(str(err).splitlines()[0]) from None


def _load_model(spec: str, weights: str | None = None, random_weights: bool = False):
    from neurovis.zoo import load_model

    try:
        return load_model(spec, weights=weights, random_weights=random_weights)
    except FileNotFoundError as err:  # zoo weights missing: say which file and how to make it
        raise NeurovisError(str(err).splitlines()[0]) from None


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NeurovisError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeurovisError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def _prior_spec(args: argparse.Namespace) -> str:
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


def _setup(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, float]]:
    """Load the model and prior on the device and the natural images; return
    ``(model, prior, natural images or None, timings)``."""
    start = time.perf_counter()
    device = _device(args.device)
    model = _load_model(args.model, args.weights, args.random_weights).to(device)
    prior = load_prior(_prior_spec(args))
    if args.preset == "paper" and prior.paper_treatment is not None:  # e.g. glyphs -> Noiseless Joint PPGN-h
        prior = prior.paper_treatment(device)
    _set_clamp_pixels(prior, args.clamp_pixels)
    for module in prior.modules():
        module.to(device)
    timings = {"load": round(time.perf_counter() - start, 4)}
    start = time.perf_counter()
    natural = _natural(args, model, prior)
    if natural is not None:
        timings["load_natural_images"] = round(time.perf_counter() - start, 4)
    method = run_method(args, prior)
    if args.starts == "natural" or (method.starts == "bank" and getattr(prior, "start_codes", "n/a") is None
                                    and natural is not None and args.images):
        start = time.perf_counter()  # the prior has no bank of its own: the natural images' codes are one
        prior = _natural_starts(prior, natural, device)
        timings["encode_starts"] = round(time.perf_counter() - start, 4)
        _keep_bank(prior, args)
    elif method.starts == "bank" and getattr(prior, "start_codes", "n/a") is None:
        if not args.quiet:
            print(f"neurovis: note: {getattr(prior, 'name', type(prior).__name__)} has no start bank (codes of real "
                  "images), so chains start from N(0, 1) as in the paper; pass --images DIR to start from your "
                  "images' codes", file=sys.stderr)
        args.starts = "random"
    return model, prior, natural, timings


def run_method(args: argparse.Namespace, prior: Any):
    """The full :class:`~neurovis.method.Method` a sampling command runs: ``--preset`` and
    any setting given on the command line, resolved by the same function as
    :func:`neurovis.sample` (:func:`neurovis.method.resolve_method`)."""
    from neurovis.method import resolve_method
    from neurovis.sampling.ppgn import EXACT_RULES

    starts = {"natural": "bank"}.get(args.starts, args.starts)
    rule = None if args.rule in EXACT_RULES else args.rule
    return resolve_method(prior, args.preset, eps=args.eps, lr=args.lr, rule=rule, reset_every=args.reset_every,
                          starts=starts, threshold=getattr(args, "threshold", None))


def _keep_bank(prior: Any, args: argparse.Namespace) -> None:
    """A prior that names a place for its start bank (``start_bank_path``, the converted
    paper generator's) keeps the bank made from ``--images`` there, once, for later runs."""
    path = getattr(prior, "start_bank_path", None)
    if not path or Path(path).exists() or args.starts == "natural":
        return
    from neurovis.priors.generator import save_start_bank

    try:
        save_start_bank(path, prior.start_codes, images=str(args.images))
    except OSError as err:
        warnings.warn(f"could not keep the start bank at {path} ({err.strerror}); it is made again next run")
        return
    if not args.quiet:
        print(f"neurovis: note: start bank of {prior.start_codes.shape[0]} codes from {args.images} kept at {path}",
              file=sys.stderr)


def _natural_starts(prior: Any, natural: Any, device: Any) -> Any:
    """``--starts natural``: the prior with its starts and resets drawn from ``E(x)`` of
    the natural images."""
    if natural is None:
        raise NeurovisError("--starts natural needs natural images: pass --images DIR (or drop --no-images)")
    if not hasattr(prior, "with_real_starts"):
        raise NeurovisError(f"--starts natural needs a generator prior with an encoder; {type(prior).__name__} "
                            "starts from its own random images")
    return prior.with_real_starts(prior.pixel_space.from_rgb01(natural.rgb01()).to(device))


def _set_clamp_pixels(prior: Any, choice: str | None) -> None:
    """``--clamp-pixels on|off`` overrides the prior's own setting (generator priors only)."""
    if choice is None:
        return
    if not hasattr(prior, "clamp_pixels"):
        raise NeurovisError(f"--clamp-pixels applies to generator priors; {type(prior).__name__} has no such "
                            "setting (a PixelPrior always keeps its pixels in range)")
    prior.clamp_pixels = choice == "on"


def _natural(args: argparse.Namespace, model: Any, prior: Any):
    """The natural images, loaded at the prior's image size: ``--images DIR``, else the
    model's own source (its zoo entry's ``natural_images`` hook: the glyph world for glyph
    models), else none."""
    if args.no_images:
        return None
    if args.images:
        from neurovis.analysis.natural import load_image_folder

        return load_image_folder(args.images, _image_size(prior), seed=args.seed)
    own = getattr(model, "natural_images", None)
    if callable(own):
        return own(args.natural_count, 20170101 + args.seed, _image_size(prior))
    return None


def _sampling_kwargs(args: argparse.Namespace, prior: Any) -> dict[str, Any]:
    """The sampler's keyword arguments from the command line (all but chains/init/progress)."""
    from neurovis.sampling.ppgn import EXACT_RULES

    starts = {"natural": "bank"}.get(args.starts, args.starts)
    kwargs: dict[str, Any] = dict(steps=args.steps, eps=args.eps, lr=args.lr, seed=args.seed, rule=args.rule,
                                  reset_every=args.reset_every, preset=args.preset, starts=starts, on_nan="mark",
                                  precision=args.precision, channels_last=args.channels_last, compile=args.compile)
    if args.rule in EXACT_RULES:
        kwargs.update(step_size=args.step_size, leapfrog_steps=args.leapfrog_steps, noise_anneal=args.noise_anneal,
                      step_decay=args.step_decay, bounds=args.bounds, clip_after_mh=args.clip_after_mh)
    return kwargs


def _sample(args: argparse.Namespace, prior: Any, condition: Any, init: Any = None):
    from neurovis.sampling.ppgn import sample

    return sample(prior, condition, chains=args.chains, init=init, progress=not args.quiet,
                  **_sampling_kwargs(args, prior))


def _report(args: argparse.Namespace, chains: Any, natural: Any, timings: dict[str, float]):
    from neurovis.analysis import facets

    report = facets(chains, threshold=args.threshold, keep=args.keep, pick=args.pick, n_facets=args.facets,
                    seed=args.seed, features=args.features, natural_images=natural,
                    attribution=not args.no_attribution, bootstrap=args.bootstrap, command=args.command_line,
                    timings=timings, progress=not args.quiet)
    device = report.provenance.get("device")
    if isinstance(device, dict):  # threads, BLAS and CPU kernels: what a bit-identical rerun must match
        device.update(compute_info())
    return report


def _summary(args: argparse.Namespace, out: Path, report: Any) -> None:
    if args.quiet:
        return
    sel = report.selection
    rule = (f"activation ≥ {sel.keep['activation_threshold']:.4g}" if sel.keep and sel.keep.get("rule") == "activation"
            else f"p ≥ {sel.threshold:g}")
    print(f"{out}/index.html: {report.status}, {report.figures['n_facets']} facet(s), "
          f"{sel.kept.size}/{sel.n_samples} samples kept ({rule})")
    summary = report.coverage.get("summary")
    if summary:
        print(summary)


def _write(args: argparse.Namespace, report: Any, default: Path) -> Path:
    from neurovis.report import write_report

    out = Path(args.out) if args.out else default
    write_report(report, out, force=args.force)
    _summary(args, out, report)
    return out


# ----------------------------------------------------------------------------- commands
def _cmd_layers(args: argparse.Namespace) -> int:
    from neurovis.hooks import list_layers

    model = _load_model(args.model, args.weights, args.random_weights)
    size = args.input_size or getattr(model, "input_size", None)
    if size is None:
        raise NeurovisError(f"{args.model} does not declare its input size; pass --input-size C,H,W")
    if len(size) == 2:  # models may declare (H, W)
        size = (3, *size)
    try:
        layers = list_layers(model, size)
    except RuntimeError as err:  # the input does not fit the network (channels, too small)
        first = " ".join(str(err).split())[:160]
        raise NeurovisError(f"{args.model} does not run on a {','.join(map(str, size))} input ({first}); pass the "
                            "--input-size C,H,W it was built for") from None
    for info in layers:
        print(info)
    return 0


def _check_out_early(args: argparse.Namespace, default: Path) -> Path:
    """The output folder, checked before any work: replaceable (``--force``) and writable."""
    from neurovis._utils.files import check_out_dir

    out = Path(args.out) if args.out else default
    check_out_dir(out, args.force)
    _check_writable(out)
    return out


class _DiscardOnBadInput:
    """``with _DiscardOnBadInput(work, mode):`` deletes the work folder when the body fails on
    bad input (:class:`NeurovisError`) in a run that made it (not ``--resume``): its
    settings cannot be resumed with the fix, so it would only block the corrected rerun.
    Interrupted or crashed runs keep it for ``--resume``."""

    def __init__(self, work: Any, mode: str) -> None:
        self.work, self.mode = work, mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        from neurovis.runs.workfolder import is_main_rank

        if kind is not None and issubclass(kind, NeurovisError) and self.mode != "resume" and is_main_rank():
            self.work.discard()


def _cmd_facets(args: argparse.Namespace) -> int:
    from neurovis.conditions import UnitCondition
    from neurovis.runs.workfolder import WorkFolder, run_settings

    default = DEFAULT_OUT / "facets" / slug(args.model, args.layer, args.unit)
    out = _check_out_early(args, default)
    work, settings = WorkFolder(out), run_settings(args)
    with _Locked(out, args):
        mode = work.check(settings, args.resume, args.force)
        model, prior, natural, timings = _setup(args)
        condition = UnitCondition(model, args.layer, args.unit, position=args.position, gradient=args.gradient)
        _check_unit(model, prior, args, args.unit)  # an out-of-range unit fails now, before any folder is made
        work.prepare(settings, mode)  # <out>.partial keeps the chains until the report is in place
        with _DiscardOnBadInput(work, mode):
            saved = work.load_group([args.unit], prior, [condition])
            if saved is None:
                chains = _sample(args, prior, condition)
                work.save_group([args.unit], [chains])
            else:
                chains = saved[0]
            report = _report(args, chains, natural, timings)
            _write(args, report, default)
        work.discard()
    return 0


def _cmd_layer(args: argparse.Namespace) -> int:
    """One report per unit. Units are sampled ``--units-per-batch`` at a time (one batch,
    one G forward per step); under torchrun the groups are shared out over the processes.
    Work happens in ``<out>.partial/`` (finished units, group chain checkpoints) so that a
    killed run continues with ``--resume``; it becomes ``out`` when every unit is done."""
    from tqdm.auto import tqdm

    from neurovis._utils import dist as distributed
    from neurovis.conditions import UnitCondition
    from neurovis.sampling.batched import Backoff, plan_groups, sample_units
    from neurovis.report.layer_index import unit_row, write_layer_index
    from neurovis.report.write import write_files
    from neurovis.runs.workfolder import WorkFolder, run_settings

    units = parse_units(args.units)
    default = DEFAULT_OUT / "layer" / slug(args.model, args.layer)
    out = _check_out_early(args, default)
    groups = plan_groups(units, args.units_per_batch)
    work, settings = WorkFolder(out), run_settings(args, units=units)
    with _Locked(out, args):
        mode = work.check(settings, args.resume, args.force)  # read-only: every process checks
        started = time.perf_counter()
        args.device = distributed.local_device_name(args.device)  # torchrun: one GPU per process
        model, prior, natural, timings = _setup(args)
        _check_unit(model, prior, args, max(units))  # fail now, not after the first units' chains
        with _DiscardOnBadInput(work, mode):
            with distributed.context(prior.device) as dist:
                dist.barrier()
                if dist.is_main:
                    work.prepare(settings, mode)
                dist.barrier()
                show = not args.quiet and dist.is_main
                mine, done = distributed.shard(groups, dist.rank, dist.world), work.done(units)
                backoff = Backoff(args.units_per_batch)
                sampling = _sampling_kwargs(args, prior)  # as _sample: equal to single-unit runs
                with tqdm(total=sum(u not in done for g in mine for u in g), disable=not show, file=sys.stderr, desc="units",
                          unit="unit") as bar:
                    for group in mine:
                        if all(u in done for u in group):
                            work.drop_group(group)
                            continue
                        conditions = [UnitCondition(model, args.layer, u, position=args.position, gradient=args.gradient)
                                      for u in group]
                        chains = work.load_group(group, prior, conditions)
                        if chains is None:
                            chains = sample_units(prior, model, args.layer, group, chains=args.chains, backoff=backoff,
                                                  position=args.position, gradient=args.gradient, progress=show, **sampling)
                            work.save_group(group, chains)
                        for unit, unit_chains in zip(group, chains):
                            if unit not in done:
                                report = _report(args, unit_chains, natural, dict(timings))
                                work.write_unit(unit, lambda folder: write_files(report, folder))
                                bar.update(1)
                                del report
                        work.drop_group(group)
                        del chains
                dist.barrier()  # every unit is written
                if not dist.is_main:
                    return 0
                rows, statuses = [], {}
                for unit in units:
                    doc = work.unit_doc(unit)
                    rows.append(unit_row(unit, doc))
                    statuses[doc["status"]] = statuses.get(doc["status"], 0) + 1
                title = f"{type(model).__name__} · layer {args.layer} · units {args.units}"
                timings["total"] = round(time.perf_counter() - started, 4)
                write_layer_index(work.path, title, args.model, args.layer, rows, args.command_line, timings,
                                  compute=compute_info())
                work.finish(args.force)
    if not args.quiet:
        print(f"{out}/index.html: {len(units)} unit reports (" + ", ".join(f"{v} {k}" for k, v in statuses.items()) + ")")
    return 0


def _check_unit(model: Any, prior: Any, args: argparse.Namespace, unit: int) -> None:
    """Raise the condition's own error if ``unit`` does not exist in the layer."""
    import torch

    from neurovis.conditions import UnitCondition
    from neurovis._utils.torch_utils import eval_mode
    from neurovis.sampling.ppgn import chain_generator

    condition = UnitCondition(model, args.layer, unit, position=args.position, gradient=args.gradient)
    with torch.no_grad(), eval_mode(prior.modules() + condition.modules()):
        x = prior.decode(prior.initial_codes([chain_generator(0, 0)]).to(prior.device))
        condition.evaluate(x, prior.pixel_space)


def _image_size(prior: Any) -> tuple[int, int]:
    """``(H, W)`` of the prior's images (decodes one start code)."""
    import torch

    from neurovis._utils.torch_utils import eval_mode
    from neurovis.sampling.ppgn import chain_generator

    with torch.no_grad(), eval_mode(prior.modules()):
        x = prior.decode(prior.initial_codes([chain_generator(0, 0)]).to(prior.device))
    return int(x.shape[-2]), int(x.shape[-1])


def _cmd_sample(args: argparse.Namespace) -> int:
    from neurovis.conditions import ClassCondition, combine

    if (args.caption is None) == (not args.classes):
        raise NeurovisError("sample needs --class C or --caption TEXT, not both" if args.classes else
                            "sample needs --class C (a class) or --caption TEXT (a sentence)")
    if args.caption is not None:
        return _cmd_sample_caption(args)
    if args.class_weights is not None and len(args.class_weights) != len(args.classes):
        raise NeurovisError(f"{len(args.classes)} classes but {len(args.class_weights)} --class-weights; give one per --class")
    default = DEFAULT_OUT / "sample" / slug(args.model, "class", "+".join(args.classes))
    out = _check_out_early(args, default)
    with _Locked(out, args):
        model, prior, natural, timings = _setup(args)
        conds = [ClassCondition(model, c, gradient=args.gradient) for c in args.classes]
        condition = conds[0] if len(conds) == 1 else combine(*conds, weights=args.class_weights)
        chains = _sample(args, prior, condition)
        report = _report(args, chains, natural, timings)
        _write(args, report, default)
    return 0


def _cmd_sample_caption(args: argparse.Namespace) -> int:
    """``sample --caption``: the paper's caption settings (:data:`neurovis.caption.CAPTION_SETTINGS`)
    for every sampling setting left unset, the caption threshold for the report."""
    from neurovis.caption import CAPTION_SETTINGS, CAPTION_THRESHOLD
    from neurovis.sampling.ppgn import EXACT_RULES, sample
    from neurovis.zoo.captions import build_caption_condition, check_caption

    if args.class_weights is not None:
        raise NeurovisError("--class-weights goes with --class, not --caption")
    if args.captioner is None:  # bad words fail before anything loads
        check_caption(args.model, args.caption)
    default = DEFAULT_OUT / "sample" / slug(args.model, "caption", args.caption)
    _check_out_early(args, default)
    for key in ("eps", "lr", "reset_every"):
        if getattr(args, key) is None:
            setattr(args, key, CAPTION_SETTINGS[key])
    args.threshold = CAPTION_THRESHOLD if args.threshold is None else args.threshold
    model, prior, natural, timings = _setup(args)
    condition = build_caption_condition(args.caption, args.model, model, args.captioner, args.vocabulary, prior.device)
    kwargs = _sampling_kwargs(args, prior)
    if args.rule not in EXACT_RULES:
        kwargs["lr_end"] = CAPTION_SETTINGS["lr_end"]
    chains = sample(prior, condition, chains=args.chains, progress=not args.quiet, **kwargs)
    _write(args, _report(args, chains, natural, timings), default)
    return 0


def _load_photo(path: str, size: tuple[int, int]):
    """``(photo (1, 3, H, W) RGB [0, 1] at size, original (W0, H0))``."""
    import numpy as np
    import torch
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            original = im.size
            im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise NeurovisError(f"--image {path}: cannot read it as an image ({err})") from None
    return torch.from_numpy(arr).permute(2, 0, 1)[None], original


def _cmd_inpaint(args: argparse.Namespace) -> int:
    default = DEFAULT_OUT / "inpaint" / slug(Path(args.image).stem, "class", args.klass)
    with _Locked(_check_out_early(args, default), args):
        return _inpaint(args, default)


def _inpaint(args: argparse.Namespace, default: Path) -> int:
    """The body of ``inpaint`` (run under the output's lock)."""
    import torch

    from neurovis.conditions import ClassCondition, InpaintCondition

    model, prior, natural, timings = _setup(args)
    h, w = _image_size(prior)
    rgb, (w0, h0) = _load_photo(args.image, (h, w))
    x, y, rw, rh = args.mask
    if x + rw > w0 or y + rh > h0:
        raise NeurovisError(f"--mask {x},{y},{rw},{rh} reaches outside the {w0}×{h0} image")
    sx, sy = w / w0, h / h0
    top, left = int(round(y * sy)), int(round(x * sx))
    bottom, right = max(top + 1, int(round((y + rh) * sy))), max(left + 1, int(round((x + rw) * sx)))
    mask = torch.zeros(1, 1, h, w)
    mask[..., top:bottom, left:right] = 1.0
    photo = prior.pixel_space.from_rgb01(rgb).to(prior.device)
    condition = InpaintCondition(ClassCondition(model, args.klass, gradient=args.gradient), photo, mask.to(prior.device),
                                 eps4=args.eps4)
    init = None
    if args.init == "encode":
        try:
            with torch.no_grad():
                code = prior.encode(photo * (1 - mask.to(prior.device)))
        except NotImplementedError:
            raise NeurovisError(f"{type(prior).__name__} cannot encode the photo; pass --init random") from None
        init = prior.clip(code).repeat(args.chains, *([1] * (code.dim() - 1)))
    chains = _sample(args, prior, condition, init)
    report = _report(args, chains, natural, timings)
    _write(args, report, default)
    return 0


# ----------------------------------------------------------------------------- parser
def _add_model_args(g: Any) -> None:
    g.add_argument("--model", required=True,
                   help="glyphs, caffenet, a torchvision model (alexnet, vgg16, resnet50, ...; weights from "
                        "$TORCH_HOME's cache) or package.module:factory")
    g.add_argument("--weights", help="state dict file (weights_only) to load into --model instead of its default weights")
    g.add_argument("--random-weights", action="store_true",
                   help="torchvision models: run untrained (smoke tests; results mean nothing)")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    from neurovis.conditions import GRADIENTS
    from neurovis.method import PRESETS
    from neurovis.sampling.ppgn import EXACT_RULES, RULES

    g = p.add_argument_group("model, prior and sampling")
    _add_model_args(g)
    g.add_argument("--prior", help="prior name or package.module:factory returning a neurovis Prior "
                                   "(default: the prior registered under the model's name)")
    g.add_argument("--clamp-pixels", choices=("on", "off"),
                   help="clip G's images to the displayable range before the model sees them, so each sample's "
                        "probability is that of the image shown (default: the prior's own; on for the glyph "
                        "priors, off for caffenet-fc6 as in the reference code)")
    g.add_argument("--chains", type=int, default=10, help="chains, run as one batch (default 10)")
    g.add_argument("--steps", type=int, default=200, help="steps per chain; each chain gives steps+1 samples (default 200)")
    g.add_argument("--preset", choices=PRESETS,
                   help="recommended (default: the prior's best measured method; for generator priors, chains "
                        "start and restart every 10 steps from real images' codes, hidden units kept by "
                        "activation) or paper (the paper's exact settings and treatment: N(0,1) starts, no "
                        "restarts, keep p ≥ 0.97); the settings below override single parts of it")
    g.add_argument("--eps", type=_eps, help="ε1,ε2,ε3 (default: the method's, e.g. 1e-5,1,1e-17)")
    g.add_argument("--lr", type=float, help="step size of the faithful rule (default: the method's, 1)")
    g.add_argument("--rule", choices=RULES + EXACT_RULES,
                   help="update rule (default faithful: the reference code's); mala, hmc, map: exact samplers "
                        "for priors with a density (e.g. --prior glyphs-dgn-am)")
    g.add_argument("--reset-every", type=int,
                   help="restart each chain every N steps (0: never; default: the method's, 10 recommended, 0 paper)")
    g.add_argument("--starts", choices=("random", "bank", "natural"),
                   help="where chains start and restart: bank (recommended: the prior's codes of real images), "
                        "random (N(0,1), the paper's) or natural (the codes E(x) of --images DIR, or the glyph "
                        "world for glyph models)")
    g.add_argument("--gradient", choices=GRADIENTS, default="reference", help="condition gradient (default reference)")
    g.add_argument("--seed", type=int, default=0, help="seed of the chains and of the report (default 0)")
    g.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32 (default) or bf16 autocast for the network passes (for GPUs; codes stay fp32)")
    g.add_argument("--channels-last", action="store_true",
                   help="run the networks' convolutions in channels_last (NHWC) memory format (for GPUs)")
    g.add_argument("--compile", nargs="?", const=True, default=False, metavar="BACKEND",
                   help="torch.compile the generator (default backend inductor; the first steps pay the compile)")


def _bounds(text: str) -> Any:
    if text == "prior":
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'prior' or LOW,HIGH, got {text!r}") from None
    return (lo, hi)


def _add_exact(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("exact samplers (--rule mala|hmc|map)")
    g.add_argument("--step-size", type=float, default=1e-2, help="Langevin/leapfrog/gradient step α (default 0.01)")
    g.add_argument("--leapfrog-steps", type=int, default=10, help="HMC leapfrog steps per iteration (default 10)")
    g.add_argument("--noise-anneal", type=float, default=0.0, help="noise variance ∝ (1+t)^-γ (default 0: none)")
    g.add_argument("--step-decay", type=float, default=0.0, help="step α·(1/(1+t))^γ (default 0: constant)")
    g.add_argument("--bounds", type=_bounds, help="box for the codes: 'prior' (its clip range) or LOW,HIGH")
    g.add_argument("--clip-after-mh", action="store_true", help="MALA/HMC with clipping after the MH step (Xu et al.)")


def _add_report(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("report")
    g.add_argument("--threshold", type=float, help="keep samples with p ≥ this (default 0.97)")
    g.add_argument("--keep", choices=("probability", "activation"),
                   help="hidden units: keep samples by probability (the paper's: softmax over the layer's channels "
                        "≥ --threshold) or activation (≥ the 99th percentile of the unit's activation on the "
                        "natural images; the recommended default)")
    g.add_argument("--pick", type=int, default=400, help="kept samples laid out on the t-SNE grid (default 400)")
    g.add_argument("--facets", type=int,
                   help="number of facets (default: chosen by silhouette over 2..10, the largest k within 0.03 of the best)")
    g.add_argument("--features", choices=("code", "pixels", "layer"),
                   help="feature space of the facets (default: code h; pixels for pixel priors)")
    g.add_argument("--images", help="folder of natural images (class sub-folders give labels); "
                                    "default for glyph models: the glyph world")
    g.add_argument("--natural-count", type=int, default=1000, help="glyph-world images used as natural images (default 1000)")
    g.add_argument("--no-images", action="store_true", help="no natural images")
    g.add_argument("--no-attribution", action="store_true", help="skip the attribution heatmaps")
    g.add_argument("--bootstrap", type=int, default=20, help="bootstrap refits for facet stability (default 20; 0 skips)")
    g.add_argument("--out", help="report folder (default out/<command>/<model>_<layer>_<unit>)")
    g.add_argument("--force", action="store_true", help="replace an existing report folder")
    g.add_argument("--quiet", action="store_true", help="no progress bars, no summary line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="neurovis", description="What does this neuron respond to? PPGN sampling and facet reports for PyTorch models.",
        epilog="Exit codes: 0 success, 1 internal error (NEUROVIS_DEBUG=1 shows the traceback), 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"neurovis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    layers = sub.add_parser("layers", help="list a model's hookable layers with output shapes and aliases")
    _add_model_args(layers)
    layers.add_argument("--input-size", type=_size, help="C,H,W of one input (default: the model's own)")
    layers.set_defaults(func=_cmd_layers)

    facets = sub.add_parser("facets", help="the facets of one unit: run chains, keep p ≥ 0.97, cluster, write a report")
    _add_sampling(facets)
    _add_exact(facets)
    facets.add_argument("--layer", required=True, help="layer path (features.10) or alias (conv5)")
    facets.add_argument("--unit", type=int, required=True, help="channel index")
    facets.add_argument("--position", type=_position, help="spatial position: int, y,x or 'mean' (default the centre)")
    facets.add_argument("--resume", action="store_true",
                        help="continue an unfinished run kept in <out>.partial (same settings): reuse its chains")
    _add_report(facets)
    facets.set_defaults(func=_cmd_facets)

    layer = sub.add_parser("layer", help="one facet report per unit of a layer, plus a sortable index")
    _add_sampling(layer)
    _add_exact(layer)
    layer.add_argument("--layer", required=True, help="layer path or alias")
    layer.add_argument("--units", default="0:16", help="units: 0:16 (end excluded), 3,7,9 or 5 (default 0:16)")
    layer.add_argument("--position", type=_position, help="spatial position: int, y,x or 'mean' (default the centre)")
    layer.add_argument("--units-per-batch", type=int, default=8,
                       help="units sampled together in one batch of units×chains (default 8; halved on out-of-memory)")
    layer.add_argument("--resume", action="store_true",
                       help="continue the unfinished run kept in <out>.partial (same settings); finished units are kept")
    _add_report(layer)
    layer.set_defaults(func=_cmd_layer)

    sample = sub.add_parser("sample", help="sample a class (by index or name); several --class at once are combined")
    _add_sampling(sample)
    _add_exact(sample)
    sample.add_argument("--class", dest="classes", action="append",
                        help="class index or name; repeat for several at once (piano and candle)")
    sample.add_argument("--caption", help="sample a sentence instead of a class (paper §3.5), e.g. 'a blue ring' "
                                          "for --model glyphs; the paper's caption settings are the defaults "
                                          "(ε 1e-3,1,1e-17, lr 1 decaying to 1e-10, no restarts, keep mean word "
                                          "probability ≥ 0.97: see docs/captions.md)")
    sample.add_argument("--captioner", metavar="DIR",
                        help="captioner for --caption: a folder of converted LRCN files (lrcn.pt, vocabulary.txt, "
                             "optional features.pt) or a glyph captioner .pt (default for glyph models: the shipped one)")
    sample.add_argument("--vocabulary", metavar="FILE", help="the LRCN vocabulary file (default DIR/vocabulary.txt)")
    sample.add_argument("--class-weights", type=lambda t: [float(v) for v in t.split(",")],
                        help="weights of the classes' log-probabilities, w1,w2,... (default all 1)")
    _add_report(sample)
    sample.set_defaults(func=_cmd_sample)

    inpaint = sub.add_parser("inpaint", help="PPGN-context: fill a hole in a photo with a class")
    _add_sampling(inpaint)
    _add_exact(inpaint)
    inpaint.add_argument("--image", required=True, help="the photo (any format PIL reads); resized to the prior's size")
    inpaint.add_argument("--mask", type=_rect, required=True, help="the hole x,y,w,h in the photo's pixels")
    inpaint.add_argument("--class", dest="klass", required=True, help="class index or name to draw in the hole")
    inpaint.add_argument("--eps4", type=float, default=1e-9, help="weight of the context term (default 1e-9)")
    inpaint.add_argument("--init", choices=("encode", "random"), default="encode",
                         help="start from E(masked photo) (default) or random codes")
    _add_report(inpaint)
    inpaint.set_defaults(func=_cmd_inpaint)
    _add_train_prior(sub)
    from neurovis.caffe import add_convert_caffe_parser

    add_convert_caffe_parser(sub)
    parser.commands = dict(sub.choices)
    for command in sub.choices.values():
        command.add_argument("--threads", type=int, metavar="N",
                             help="CPU threads of torch (torch.set_num_threads) for this run; default: torch's own "
                                  "choice (the same N is needed for a bit-identical rerun on CPU)")
    return parser


def _cmd_train_prior(args: argparse.Namespace) -> int:
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
    _check_writable(out)
    encoder, device = _load_model(args.encoder, args.weights, args.random_weights), _device(args.device)
    with _Locked(out, args):
        path = train_prior(
            encoder, args.code_layer, args.feature_layer, image_source(args.data, args.batch_size, config.seed), out, config,
            generator=args.generator, batch_size=args.batch_size,
            image_size=tuple(args.image_size) if args.image_size else None, device=device,
            force=args.force, progress=not args.quiet, output_layer=args.output_layer,
        )
    if not args.quiet:
        print(f"generator: {path}")
    return 0


# (option, smallest value) of the integer options; each is checked where a command has it
_INT_MINIMA = {"chains": 1, "steps": 1, "pick": 1, "facets": 1, "bootstrap": 0, "natural_count": 1, "reset_every": 0,
               "units_per_batch": 1, "leapfrog_steps": 1, "batch_size": 1, "checkpoint_every": 1, "gan_start": 0,
               "threads": 1, "unit": 0}
# float options that must be finite and > 0 (step sizes) or ≥ 0 (weights, exponents)
_POSITIVE = ("lr", "step_size")
_NON_NEGATIVE = ("eps4", "noise_anneal", "step_decay", "w_img", "w_feat", "w_code", "w_gan", "w_out")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _validate(args: argparse.Namespace) -> None:
    """Check every option's value before any work (no model loaded, nothing written):
    integer minima, finite floats in their ranges, sizes. Raises :class:`NeurovisError`."""
    for name, least in _INT_MINIMA.items():
        value = getattr(args, name, None)
        if value is not None and value < least:
            raise NeurovisError(f"{_flag(name)} must be ≥ {least}, got {value}")
    for name in _POSITIVE + _NON_NEGATIVE:
        value = getattr(args, name, None)
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or (value == 0 and name in _POSITIVE):
            raise NeurovisError(f"{_flag(name)} must be a finite number {'> 0' if name in _POSITIVE else '≥ 0'}, got {value}")
    threshold = getattr(args, "threshold", None)
    if threshold is not None and not 0.0 <= threshold <= 1.0:  # also refuses nan
        raise NeurovisError(f"--threshold is a probability: a number in [0, 1], got {threshold}")
    for name in ("eps", "noise"):
        values = getattr(args, name, None)
        if values is not None and not all(math.isfinite(v) and v >= 0 for v in values):
            raise NeurovisError(f"{_flag(name)} must be three finite numbers ≥ 0, got {','.join(f'{v:g}' for v in values)}")
    weights = getattr(args, "class_weights", None)
    if weights is not None and not all(math.isfinite(w) for w in weights):
        raise NeurovisError(f"--class-weights must be finite numbers, got {','.join(f'{w:g}' for w in weights)}")
    bounds = getattr(args, "bounds", None)
    if isinstance(bounds, tuple) and not (all(math.isfinite(b) for b in bounds) and bounds[0] < bounds[1]):
        raise NeurovisError(f"--bounds must be finite LOW,HIGH with LOW < HIGH, got {bounds[0]:g},{bounds[1]:g}")
    for name, lengths in (("input_size", (2, 3)), ("image_size", (2,))):
        size = getattr(args, name, None)
        if size is not None and (len(size) not in lengths or min(size) < 1):
            shape = "C,H,W (or H,W)" if name == "input_size" else "H,W"
            raise NeurovisError(f"{_flag(name)} must be {shape} with every size ≥ 1, got {','.join(map(str, size))}")


def _check_writable(out: Path) -> None:
    """Raise :class:`NeurovisError` unless ``out`` (a folder or file to be made) can be
    written: its nearest existing ancestor must be a folder in which a file can be made."""
    import tempfile

    folder = out.parent if not out.is_dir() else out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NeurovisError(f"cannot write {out}: {folder} is not a folder; choose another --out")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".neurovis-probe-", dir=folder))
    except OSError as err:
        raise NeurovisError(f"cannot write {out}: {folder} is not writable ({err.strerror}); choose another --out") from None


class _Locked:
    """``with _Locked(out, args):`` holds the :class:`~neurovis.runs.workfolder.RunLock` of ``out``
    for the body; folders it had to create for the lock file are removed again if the run
    leaves them empty (a run refused for bad input leaves nothing behind)."""

    def __init__(self, out: Path, args: argparse.Namespace) -> None:
        from neurovis.runs.workfolder import RunLock

        self.lock = RunLock(out, getattr(args, "command_line", ""))
        self.created: list[Path] = []
        folder = self.lock.path.parent
        while not folder.exists() and folder != folder.parent:
            self.created.append(folder)
            folder = folder.parent

    def __enter__(self) -> "_Locked":
        self.lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
        for folder in self.created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break


def _threads(args: argparse.Namespace) -> int | None:
    """``--threads N``: torch's CPU threads for the whole run (before any work); returns the
    previous count (``main`` puts it back afterwards, for callers in the same process)."""
    if not getattr(args, "threads", None):
        return None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    return previous


def compute_info() -> dict[str, Any]:
    """What decides CPU results beyond the seeds: torch's threads, its BLAS and the CPU
    kernels it picked (recorded in the report's reproducibility block)."""
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    lapack = re.search(r"LAPACK_INFO=([^,\s]+)", config)
    info: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "blas": blas.group(1) if blas else None,
        "lapack": lapack.group(1) if lapack else None,
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
    }
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        info["cpu_capability"] = None
    return info


def _add_train_prior(sub: Any) -> None:
    from neurovis.training.discriminator import DISCRIMINATOR_CHANNELS
    from neurovis.training.prior import IMAGE_LOSSES, LR_SCHEDULES

    p = sub.add_parser("train-prior", help="train a generator prior (Noiseless Joint PPGN-h) for an encoder's code layer")
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
    p.set_defaults(func=_cmd_train_prior)


def _drop_cwd_of_dash_m() -> None:
    """``python -m neurovis`` puts the current folder first on ``sys.path`` (Python does, unless
    ``-P``); take it off again so that files there cannot shadow the libraries neurovis
    imports from here on. (Modules imported before ``main`` runs, such as torch, are
    already loaded; the ``neurovis`` console script never had the folder on the path.)"""
    main_file = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if main_file is None or main_file.name != "__main__.py" or main_file.parent.resolve() != Path(__file__).parent.resolve():
        return
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurovis`` console script; returns the exit code.

    The import path is left as it is: ``--model package.module:factory`` finds a module in
    the current folder without putting that folder on ``sys.path`` for everything else
    (see :func:`neurovis.zoo.import_factory`).
    """
    if argv is None:
        _drop_cwd_of_dash_m()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help, --version (0) and usage errors (2, one line already printed)
        return exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 2
    args.command_line = "neurovis " + shlex.join(argv)
    threads = None
    try:
        _validate(args)
        threads = _threads(args)
        return args.func(args)
    except NeurovisError as err:
        print(f"neurovis: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurovis: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - last line of defence for users
        if os.environ.get("NEUROVIS_DEBUG"):
            raise
        print(f"neurovis: internal error: {type(err).__name__}: {' '.join(str(err).split())} "
              "(set NEUROVIS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
