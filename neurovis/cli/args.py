"""The command line's arguments: the parser class, value types, the shared option groups
and the checks every value passes before any work.

Nothing here imports torch or numpy at import time: a command's options that need the
library's constants (its choices of rules, presets, gradients) are added when that command
is parsed or its help is shown (:meth:`Parser.defer`), so ``neurovis --help`` is instant.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from neurovis.errors import NeurovisError

DEFAULT_OUT = Path("out")
"""Default report folders go under ``out/<command>/``."""


# ----------------------------------------------------------------------------- the parser
class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line plus where to look (not the whole usage),
    and whose options may be added on first use (:meth:`defer`)."""

    commands: dict[str, argparse.ArgumentParser] = {}
    _pending: Callable[["Parser"], None] | None = None

    def defer(self, build: Callable[["Parser"], None]) -> None:
        """Add this parser's arguments with ``build(self)`` when it is first parsed or its
        help or usage is formatted (the top-level ``--help`` never needs them)."""
        self._pending = build

    def build(self) -> "Parser":
        """Add the deferred arguments now (once); returns the parser."""
        build, self._pending = self._pending, None
        if build is not None:
            build(self)
        return self

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None):  # type: ignore[override]
        self.build()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.build()
        return super().format_help()

    def format_usage(self) -> str:
        self.build()
        return super().format_usage()

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"neurovis: error: {' '.join(message.split())}; see `{self.prog} --help`\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the command's parser, so that the hint names `neurovis <command> --help`
            self.commands.get(getattr(parsed, "command", None) or "", self).error(
                f"unrecognized arguments: {' '.join(extras)}")
        return parsed


# ----------------------------------------------------------------------------- value types
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


def _bounds(text: str) -> Any:
    if text == "prior":
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'prior' or LOW,HIGH, got {text!r}") from None
    return (lo, hi)


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


# ----------------------------------------------------------------------------- option groups
def add_model_args(g: Any) -> None:
    """``--model``, ``--weights``, ``--random-weights``."""
    g.add_argument("--model", required=True,
                   help="glyphs, caffenet, a torchvision model (alexnet, vgg16, resnet50, ...; weights from "
                        "$TORCH_HOME's cache) or package.module:factory")
    g.add_argument("--weights", help="state dict file (weights_only) to load into --model instead of its default weights")
    g.add_argument("--random-weights", action="store_true",
                   help="torchvision models: run untrained (smoke tests; results mean nothing)")


def add_sampling(p: argparse.ArgumentParser) -> None:
    """The group "model, prior and sampling" of the sampling commands."""
    from neurovis.method import EXACT_RULES, GRADIENTS, PRESETS
    from neurovis.method import PPGN_RULES as RULES

    g = p.add_argument_group("model, prior and sampling")
    add_model_args(g)
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


def add_exact(p: argparse.ArgumentParser) -> None:
    """The group "exact samplers (--rule mala|hmc|map)"."""
    g = p.add_argument_group("exact samplers (--rule mala|hmc|map)")
    g.add_argument("--step-size", type=float, default=1e-2, help="Langevin/leapfrog/gradient step α (default 0.01)")
    g.add_argument("--leapfrog-steps", type=int, default=10, help="HMC leapfrog steps per iteration (default 10)")
    g.add_argument("--noise-anneal", type=float, default=0.0, help="noise variance ∝ (1+t)^-γ (default 0: none)")
    g.add_argument("--step-decay", type=float, default=0.0, help="step α·(1/(1+t))^γ (default 0: constant)")
    g.add_argument("--bounds", type=_bounds, help="box for the codes: 'prior' (its clip range) or LOW,HIGH")
    g.add_argument("--clip-after-mh", action="store_true", help="MALA/HMC with clipping after the MH step (Xu et al.)")


def add_report(p: argparse.ArgumentParser) -> None:
    """The group "report" of the commands that write a facet report."""
    g = p.add_argument_group("report")
    g.add_argument("--threshold", type=float, help="keep samples with p ≥ this (default 0.97)")
    g.add_argument("--keep", choices=("probability", "activation"),
                   help="hidden units: keep samples by probability (the paper's: softmax over the layer's channels "
                        "≥ --threshold) or activation (≥ the 99th percentile of the unit's activation on the "
                        "natural images; the recommended default)")
    g.add_argument("--pick", type=int, default=400, help="kept samples laid out on the t-SNE grid (default 400)")
    g.add_argument("--facets", type=int,
                   help="number of facets (default: chosen by silhouette over 2..10, the largest k within 0.03 of the best)")
    from neurovis.method import FEATURE_SPACES

    g.add_argument("--features", choices=FEATURE_SPACES,
                   help="feature space of the facets (default network: the model's last three activation layers up to "
                        "the unit, pooled; pixels for pixel priors; code: the chain code h; layer: the unit's own layer)")
    g.add_argument("--images", help="folder of natural images (class sub-folders give labels); "
                                    "default for glyph models: the glyph world")
    g.add_argument("--natural-count", type=int, default=1000, help="glyph-world images used as natural images (default 1000)")
    g.add_argument("--no-images", action="store_true", help="no natural images")
    g.add_argument("--no-attribution", action="store_true", help="skip the attribution heatmaps")
    g.add_argument("--bootstrap", type=int, default=20, help="bootstrap refits for facet stability (default 20; 0 skips)")
    g.add_argument("--out", help="report folder (default out/<command>/<model>_<layer>_<unit>)")
    g.add_argument("--force", action="store_true", help="replace an existing report folder")
    g.add_argument("--quiet", action="store_true", help="no progress bars, no summary line")


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads N``, the last option of every command."""
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads of torch (torch.set_num_threads) for this run; default: torch's own "
                        "choice (the same N is needed for a bit-identical rerun on CPU)")


# ----------------------------------------------------------------------------- checks
# (option, smallest value) of the integer options; each is checked where a command has it
_INT_MINIMA = {"chains": 1, "steps": 1, "pick": 1, "facets": 1, "bootstrap": 0, "natural_count": 1, "reset_every": 0,
               "units_per_batch": 1, "leapfrog_steps": 1, "batch_size": 1, "checkpoint_every": 1, "gan_start": 0,
               "threads": 1, "unit": 0}
# float options that must be finite and > 0 (step sizes) or ≥ 0 (weights, exponents)
_POSITIVE = ("lr", "step_size")
_NON_NEGATIVE = ("eps4", "noise_anneal", "step_decay", "w_img", "w_feat", "w_code", "w_gan", "w_out")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def validate(args: argparse.Namespace) -> None:
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
