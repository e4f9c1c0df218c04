"""Conditions: the ε2 term, ``∂ log p(y | x) / ∂x`` for any differentiable ``p(y | x)``.

A condition looks at a batch of images ``x`` ``(B, C, H, W)`` in the prior's pixel space and
returns a :class:`ConditionResult`: a per-sample *objective* whose gradient is the condition
direction (the sampler multiplies it by ε2 and backpropagates through G to the code), plus
the probability used for filtering and the raw activation, both detached.

Gradient variants (SPEC §1.3, Table S2c), with ``a`` the layer's vector, ``k`` the unit and
``p_k = softmax(a)_k``:

==============  =============================  ==========================================
name            objective                      gradient
==============  =============================  ==========================================
``reference``   ``(1 - p_k).detach() * a_k``   ``(1 - p_k) ∂a_k`` (the paper's code; default)
``log_softmax`` ``log softmax(a)_k``           exact ``∂ log p_k``
``logit``       ``a_k``                        ``∂a_k``
``softmax``     ``p_k``                        ``∂p_k``
==============  =============================  ==========================================

Samples must be independent within a batch: models run in eval mode while sampling.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neurovis.errors import NeurovisError
from neurovis.hooks.addressing import resolve_layer
from neurovis.hooks.capture import _first_tensor, run_to
from neurovis.hooks.units import UnitSelector, as_selector
from neurovis.method import GRADIENTS
from neurovis.pixels import PixelAdapter, PixelSpace


@dataclass(frozen=True)
class ConditionResult:
    """What a condition says about a batch of ``B`` images.

    Attributes:
        objective: ``(B,)``, differentiable; its gradient is the condition direction.
        prob: ``(B,)``, detached; the probability compared with the 0.97 threshold.
        activation: ``(B,)``, detached; the unit's (or class logit's) raw value.
        extra: ``(B,)`` or ``None``; a term already weighted by its own ε (the inpainting
            context term, ε4), added to the gradient without the ε2 factor.
    """

    objective: torch.Tensor
    prob: torch.Tensor
    activation: torch.Tensor
    extra: torch.Tensor | None = None


def unit_objective(vector: torch.Tensor, index: int, gradient: str) -> ConditionResult:
    """Objective, probability and activation of unit ``index`` of ``vector`` ``(B, N)``."""
    indices = torch.full((vector.shape[0],), int(index), dtype=torch.long)
    return units_objective(vector, indices, gradient)


def _check_gradient(gradient: str) -> None:
    if gradient not in GRADIENTS:
        raise NeurovisError(f"unknown gradient {gradient!r}; use one of {', '.join(GRADIENTS)}")


def _model_input(model: nn.Module, x: torch.Tensor, space: PixelSpace, own: PixelSpace | None) -> torch.Tensor:
    """Images ``x`` in ``space`` converted to the model's own convention, if it has one."""
    target = own or getattr(model, "pixel_space", None)
    if target is None or not isinstance(target, PixelSpace):
        return x
    return PixelAdapter(space, target)(x)


class Condition(ABC):
    """A differentiable condition ``p(y | x)`` on images in a prior's pixel space."""

    @abstractmethod
    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        """Evaluate on images ``x`` ``(B, C, H, W)`` given in pixel ``space``."""

    def composite(self, x: torch.Tensor) -> torch.Tensor:
        """The image both passes see (identity; inpainting pastes the known pixels)."""
        return x

    def modules(self) -> list[nn.Module]:
        """Networks to hold in eval mode while sampling."""
        return []

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description for configs and reports."""
        return {"type": type(self).__name__}

    @property
    def prob_meaning(self) -> str:
        """Which softmax the probability is (for reports)."""
        return "probability"


@dataclass(frozen=True, eq=False)
class UnitCondition(Condition):
    """Hidden unit ``unit`` of ``layer`` in ``model`` (SPEC §1.3).

    Args:
        model: any ``nn.Module``; it is not modified (hooks are removed after each pass).
        layer: dotted module path (``features.10``) or an alias the model declares
            (``conv5``). The layer's *output* is read (conv5, not relu5: pre-ReLU).
        unit: channel index (int) or a selector from :mod:`neurovis.hooks.units`.
        position: for an int unit on a spatial layer: ``None`` (centre), an int, ``(y, x)``,
            or ``"mean"`` (the channel's spatial mean).
        gradient: ``reference`` | ``log_softmax`` | ``logit`` | ``softmax``.
        input_space: the model's pixel convention; ``None`` uses ``model.pixel_space`` if the
            model declares one, else the prior's (no conversion).
    """

    model: nn.Module
    layer: str
    unit: int | UnitSelector
    position: tuple[int, ...] | int | str | None = None
    gradient: str = "reference"
    input_space: PixelSpace | None = None
    selector: UnitSelector = field(init=False, repr=False)
    layer_path: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_gradient(self.gradient)
        path, _ = resolve_layer(self.model, self.layer)
        object.__setattr__(self, "layer_path", path)
        object.__setattr__(self, "selector", as_selector(self.unit, self.position))

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        out = run_to(self.model, _model_input(self.model, x, space, self.input_space), [self.layer])
        try:
            vector = self.selector.vector(out[self.layer])
        except NeurovisError as err:
            raise NeurovisError(f"layer {self.layer!r}: {err}") from None
        return unit_objective(vector, self.selector.index, self.gradient)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def describe(self) -> dict[str, Any]:
        return {
            "type": "unit",
            "model": type(self.model).__name__,
            "layer": self.layer,
            "layer_path": self.layer_path,
            "unit": self.selector.index,
            "selector": self.selector.describe(),
            "gradient": self.gradient,
        }

    @property
    def prob_meaning(self) -> str:
        return f"softmax over the layer's units ({self.selector.describe()})"


def units_objective(vector: torch.Tensor, indices: torch.Tensor, gradient: str) -> ConditionResult:
    """:func:`unit_objective` with one unit per row: row ``b`` of ``vector`` ``(B, N)`` is
    scored for unit ``indices[b]`` (``indices`` ``(B,)`` int64). Row ``b``'s values equal
    ``unit_objective(vector[b:b+1], indices[b], gradient)``'s: every operation is per row."""
    idx = indices.to(vector.device).view(-1, 1)
    log_p = F.log_softmax(vector, dim=1).gather(1, idx).squeeze(1)
    act = vector.gather(1, idx).squeeze(1)
    p = log_p.exp()
    if gradient == "reference":
        objective = (1.0 - p).detach() * act
    elif gradient == "log_softmax":
        objective = log_p
    elif gradient == "logit":
        objective = act
    elif gradient == "softmax":
        objective = p
    else:
        raise NeurovisError(f"unknown gradient {gradient!r}; use one of {', '.join(GRADIENTS)}")
    return ConditionResult(objective, p.detach(), act.detach())


@dataclass(frozen=True, eq=False)
class UnitsCondition(Condition):
    """Several units of one layer sampled in one batch: chain ``k`` conditions on
    ``units[k // chains]`` (the batch is ``len(units) × chains`` images, unit-major).

    One forward of the model serves every unit; row ``k``'s objective, probability and
    activation equal those of ``UnitCondition(model, layer, units[k // chains], ...)`` on
    that image. :meth:`unit` gives that single-unit condition (for reports).

    Args:
        model, layer, position, gradient, input_space: as :class:`UnitCondition`.
        units: channel indices (ints), each with ``chains`` consecutive rows of the batch.
        chains: chains per unit.
    """

    model: nn.Module
    layer: str
    units: tuple[int, ...]
    chains: int
    position: tuple[int, ...] | int | str | None = None
    gradient: str = "reference"
    input_space: PixelSpace | None = None
    layer_path: str = field(init=False, repr=False)
    selectors: tuple[UnitSelector, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_gradient(self.gradient)
        units = tuple(self.units)
        if not units or any(isinstance(u, bool) or not isinstance(u, int) for u in units):
            raise NeurovisError(f"UnitsCondition needs a non-empty list of int units, got {list(units)!r}")
        if self.chains < 1:
            raise NeurovisError(f"UnitsCondition needs chains ≥ 1, got {self.chains}")
        path, _ = resolve_layer(self.model, self.layer)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "layer_path", path)
        object.__setattr__(self, "selectors", tuple(as_selector(u, self.position) for u in units))

    @property
    def batch_size(self) -> int:
        """Rows the condition expects: ``len(units) * chains``."""
        return len(self.units) * self.chains

    def unit(self, i: int) -> UnitCondition:
        """The single-unit condition of ``units[i]`` (same layer, position, gradient)."""
        return UnitCondition(self.model, self.layer, self.units[i], position=self.position, gradient=self.gradient,
                             input_space=self.input_space)

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        if x.shape[0] != self.batch_size:
            raise NeurovisError(
                f"UnitsCondition of {len(self.units)} units × {self.chains} chains needs a batch of "
                f"{self.batch_size}, got {x.shape[0]}; pass chains={self.batch_size} to sample()"
            )
        out = run_to(self.model, _model_input(self.model, x, space, self.input_space), [self.layer])
        widest = max(range(len(self.units)), key=lambda i: self.units[i])  # its selector range-checks them all
        try:
            vector = self.selectors[widest].vector(out[self.layer])
        except NeurovisError as err:
            raise NeurovisError(f"layer {self.layer!r}: {err}") from None
        indices = torch.tensor([s.index for s in self.selectors], dtype=torch.int64).repeat_interleave(self.chains)
        return units_objective(vector, indices, self.gradient)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def describe(self) -> dict[str, Any]:
        return {
            "type": "units",
            "model": type(self.model).__name__,
            "layer": self.layer,
            "layer_path": self.layer_path,
            "units": list(self.units),
            "chains_per_unit": self.chains,
            "selectors": [s.describe() for s in self.selectors],
            "gradient": self.gradient,
        }

    @property
    def prob_meaning(self) -> str:
        return "softmax over the layer's units (each chain's own unit)"


@dataclass(frozen=True, eq=False)
class ClassCondition(Condition):
    """Class ``index`` of a classifier whose output is logits ``(B, n_classes)``.

    ``index`` may be an int or a class name found in ``model.class_names``.
    """

    model: nn.Module
    index: int | str
    gradient: str = "reference"
    input_space: PixelSpace | None = None
    class_index: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_gradient(self.gradient)
        object.__setattr__(self, "class_index", class_index(self.model, self.index))

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        logits = _first_tensor(self.model(_model_input(self.model, x, space, self.input_space)))
        if logits.dim() != 2:
            raise NeurovisError(
                f"{type(self.model).__name__} outputs shape {tuple(logits.shape)}, not (batch, "
                "classes); use UnitCondition on a layer instead"
            )
        n = logits.shape[1]
        if not 0 <= self.class_index < n:
            raise NeurovisError(f"class {self.class_index} is out of range: the model has {n} classes (0..{n - 1})")
        return unit_objective(logits, self.class_index, self.gradient)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def describe(self) -> dict[str, Any]:
        names = getattr(self.model, "class_names", None)
        name = names[self.class_index] if names and self.class_index < len(names) else None
        return {
            "type": "class",
            "model": type(self.model).__name__,
            "class": self.class_index,
            "class_name": name,
            "gradient": self.gradient,
        }

    @property
    def prob_meaning(self) -> str:
        return "softmax over classes"


def class_index(model: nn.Module, index: int | str) -> int:
    """Resolve a class given by index or by name (``model.class_names``)."""
    if isinstance(index, str) and not index.lstrip("-").isdigit():
        names = list(getattr(model, "class_names", None) or [])
        if not names:
            raise NeurovisError(
                f"class {index!r} given by name, but {type(model).__name__} has no class_names; "
                "give the class index instead"
            )
        lowered = [n.lower() for n in names]
        if index.lower() in lowered:
            return lowered.index(index.lower())
        matches = [i for i, n in enumerate(lowered) if index.lower() in n]
        if len(matches) == 1:
            return matches[0]

        close = difflib.get_close_matches(index, names, n=3)
        hint = f"closest: {', '.join(close)}" if close else f"{len(names)} classes known"
        raise NeurovisError(f"no class named {index!r} ({hint}); give the class index or an exact name")
    value = int(index)
    if value < 0:
        raise NeurovisError(f"class index must be ≥ 0, got {value}")
    return value


@dataclass(frozen=True, eq=False)
class CallableCondition(Condition):
    """Any user function ``x -> log p(y | x)`` of shape ``(B,)`` (captions, CLIP text...).

    ``fn`` receives images in ``input_space`` (``None``: the prior's space). Its output is
    the objective; the probability is ``exp`` of it.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    name: str = "callable"
    input_space: PixelSpace | None = None
    networks: tuple[nn.Module, ...] = ()

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        xin = PixelAdapter(space, self.input_space)(x) if self.input_space else x
        logp = self.fn(xin)
        if not isinstance(logp, torch.Tensor) or logp.shape != (x.shape[0],):
            got = tuple(logp.shape) if isinstance(logp, torch.Tensor) else type(logp).__name__
            raise NeurovisError(f"condition {self.name!r} must return log-probabilities of shape ({x.shape[0]},), got {got}")
        return ConditionResult(logp, logp.detach().exp(), logp.detach())

    def modules(self) -> list[nn.Module]:
        return list(self.networks)

    def describe(self) -> dict[str, Any]:
        return {"type": "callable", "name": self.name}


def _shared_softmax(condition: Condition) -> tuple[tuple[Any, ...], int] | None:
    """``(key, index)`` when ``condition``'s probability is entry ``index`` of a softmax that
    other conditions with the same ``key`` read too (one model's classes; units of one
    layer read at the same position), else ``None`` (a softmax of its own)."""
    if isinstance(condition, ClassCondition):
        return ("class", id(condition.model), id(condition.input_space)), condition.class_index
    if isinstance(condition, UnitCondition):
        sel = condition.selector
        try:
            vector = replace(sel, index=0)  # type: ignore[type-var]
        except TypeError:
            return None
        return ("unit", id(condition.model), condition.layer_path, vector, id(condition.input_space)), sel.index
    return None


@dataclass(frozen=True, eq=False)
class CombinedCondition(Condition):
    """Weighted sum of several conditions' log-probabilities ("piano and candle").

    The objective is ``Σ w_i objective_i`` and the activation the weighted sum. The
    probability means "all parts present", ``p ≥ threshold`` when each is:

    * parts that read one softmax (classes of one model; units of one layer at one
      position) are *shares* of one distribution, so two of them can never both reach
      0.97. Their probability is their joint share with a floor on each:
      ``min(Σ p_i, min_i p_i / floor)``, i.e. it passes a threshold ``τ`` when
      ``Σ p_i ≥ τ`` (the image is the parts, nothing else) and every ``p_i ≥ floor·τ``
      (each part holds at least ``floor`` of what passes: by default 0.097 of 0.97, so a
      sample that is all one class and a trace of the other does not count). A part
      given twice counts once. One part alone: ``min(p, p / floor) = p``.
    * parts from different softmaxes (a class and a unit, two models) are separate
      judgements: the probability is the smallest of their groups' (each must pass).

    The floor keeps the rule one number, with no threshold inside the condition; the
    log-likelihood the samplers follow (``Σ w_i log p_i``) already peaks at equal shares.
    Weights do not enter the probability.
    """

    conditions: tuple[Condition, ...]
    weights: tuple[float, ...] = ()
    floor: float = 0.1

    def __post_init__(self) -> None:
        if not self.conditions:
            raise NeurovisError("combine() needs at least one condition")
        weights = self.weights or (1.0,) * len(self.conditions)
        if len(weights) != len(self.conditions):
            raise NeurovisError(f"{len(self.conditions)} conditions but {len(weights)} weights")
        if not 0 < float(self.floor) <= 1:
            raise NeurovisError(f"floor must be in (0, 1], got {self.floor}")
        object.__setattr__(self, "weights", tuple(float(w) for w in weights))

    def groups(self) -> list[dict[int, int]]:
        """The parts grouped by the softmax they read: per group, ``{index in it: part}``
        (a part repeating an index already in its group is dropped)."""
        groups: dict[Any, dict[int, int]] = {}
        for i, c in enumerate(self.conditions):
            shared = _shared_softmax(c)
            key, index = shared if shared is not None else (("own", i), 0)
            groups.setdefault(key, {}).setdefault(index, i)
        return list(groups.values())

    def probability(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The combination's probability ``(B,)`` from its parts' ``(B,)`` (class docstring)."""
        per_group = []
        for group in self.groups():
            shares = {index: probs[part] for index, part in group.items()}
            stack = torch.stack(list(shares.values()))
            per_group.append(torch.minimum(stack.sum(0), stack.min(0).values / self.floor))
        return torch.stack(per_group).min(0).values

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        parts = [c.evaluate(x, space) for c in self.conditions]
        objective = sum(w * r.objective for w, r in zip(self.weights, parts))
        prob = self.probability([r.prob for r in parts])
        act = sum(w * r.activation for w, r in zip(self.weights, parts))
        extras = [r.extra for r in parts if r.extra is not None]
        return ConditionResult(objective, prob, act, sum(extras) if extras else None)

    def modules(self) -> list[nn.Module]:
        return [m for c in self.conditions for m in c.modules()]

    def describe(self) -> dict[str, Any]:
        return {
            "type": "combined",
            "weights": list(self.weights),
            "floor": self.floor,
            "parts": [c.describe() for c in self.conditions],
        }

    @property
    def prob_meaning(self) -> str:
        out = []
        for group in self.groups():
            parts = list(group.values())
            meaning = self.conditions[parts[0]].prob_meaning
            if len(parts) > 1:
                meaning = (f"joint share of parts {', '.join(str(i + 1) for i in parts)} in one {meaning}, "
                           f"each part at least {self.floor:g} of what passes: min(Σ p, min p / {self.floor:g})")
            out.append(meaning)
        return "smallest of: " + "; ".join(out)


def combine(*conditions: Condition, weights: Sequence[float] | None = None) -> CombinedCondition:
    """Several conditions at once: weighted sum of their log-probabilities."""
    return CombinedCondition(tuple(conditions), tuple(weights or ()))


@dataclass(frozen=True, eq=False)
class InpaintCondition(Condition):
    """PPGN-context inpainting (§4.2): draw into the hole of a photo.

    Each step composites ``x = M ⊙ G(h) + (1 − M) ⊙ x_real`` before both passes (so the
    condition's gradient is multiplied by the mask) and adds
    ``ε4 · ∂/∂h of −‖(1 − M) ⊙ (x_real − G(h))‖²`` so the generated image also matches the
    known pixels.

    Args:
        condition: what to draw in the hole (e.g. a :class:`ClassCondition`).
        image: ``(1, C, H, W)`` photo in the prior's pixel space and size.
        mask: ``(1, 1, H, W)``, 1 inside the hole (generated), 0 where the photo is kept.
        eps4: weight of the context term (reference 1e-9).
    """

    condition: Condition
    image: torch.Tensor
    mask: torch.Tensor
    eps4: float = 1e-9

    def __post_init__(self) -> None:
        if self.image.dim() != 4 or self.image.shape[0] != 1:
            raise NeurovisError(f"inpainting image must be (1, C, H, W), got {tuple(self.image.shape)}")
        if self.mask.shape != (1, 1, *self.image.shape[2:]):
            raise NeurovisError(
                f"mask must be (1, 1, {self.image.shape[2]}, {self.image.shape[3]}) like the image, got {tuple(self.mask.shape)}"
            )

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[1:] != self.image.shape[1:]:
            raise NeurovisError(
                f"the photo is {'×'.join(map(str, self.image.shape[1:]))} but the prior draws "
                f"{'×'.join(map(str, x.shape[1:]))}; resize the photo to the prior's size"
            )

    def composite(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        m = self.mask.to(x)
        return m * x + (1 - m) * self.image.to(x)

    def evaluate(self, x: torch.Tensor, space: PixelSpace) -> ConditionResult:
        inner = self.condition.evaluate(self.composite(x), space)
        keep = 1 - self.mask.to(x)
        context = -((keep * (self.image.to(x) - x)) ** 2).flatten(1).sum(1)
        extra = self.eps4 * context if inner.extra is None else inner.extra + self.eps4 * context
        return ConditionResult(inner.objective, inner.prob, inner.activation, extra)

    def modules(self) -> list[nn.Module]:
        return self.condition.modules()

    def describe(self) -> dict[str, Any]:
        return {
            "type": "inpaint",
            "eps4": self.eps4,
            "hole_fraction": float(self.mask.float().mean()),
            "inner": self.condition.describe(),
        }

    @property
    def prob_meaning(self) -> str:
        return self.condition.prob_meaning
