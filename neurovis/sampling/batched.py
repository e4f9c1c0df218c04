"""Sampling several units of one layer together: one batch of ``units × chains`` chains.

The chains of unit ``u`` in a batch use chain ids ``0..chains-1`` (the ids repeat per
unit), so their random streams ``(seed, i)`` are exactly those of a single-unit run of
``u``; every operation of a step is per row, so unit ``u``'s chains equal those of
``sample(prior, UnitCondition(model, layer, u), chains, ...)`` bit for bit where the
kernels do not depend on the batch size (MKL's strict CNR mode on Intel CPUs, one thread),
and up to the kernels' batch-size dependence elsewhere (MKL on AMD CPUs, GPUs): last bits,
which a chain may amplify. :func:`split_units` turns the batch back into one :class:`Chains` per unit.

Units are planned in fixed groups (:func:`plan_groups`); a group is what a process samples
and checkpoints. If a batch does not fit in device memory it is split in half and retried
(:class:`Backoff`), with one warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from neurovis.chains import Chains
from neurovis.conditions import UnitsCondition
from neurovis.errors import NeurovisError
from neurovis.priors.base import Prior
from neurovis.sampling import sample


def plan_groups(units: Sequence[int], units_per_batch: int) -> list[list[int]]:
    """Split ``units`` (in order) into consecutive groups of at most ``units_per_batch``."""
    if units_per_batch < 1:
        raise NeurovisError(f"--units-per-batch must be ≥ 1, got {units_per_batch}")
    units = list(units)
    return [units[i : i + units_per_batch] for i in range(0, len(units), units_per_batch)]


def is_oom(err: BaseException) -> bool:
    """Whether ``err`` is a device out-of-memory error (CUDA, MPS or a backend's RuntimeError)."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def split_units(batch: Chains, condition: UnitsCondition) -> list[Chains]:
    """One :class:`Chains` per unit of ``condition`` from a batch sampled with it.

    Each unit's chains keep their ids ``0..chains-1``; its config is a single-unit run's
    (its own condition, ``chains``, ``chain_ids``) plus ``batch`` (the units sampled
    together, the batch's wall time); ``wall_time_s`` is the batch's share per unit.
    """
    c = condition.chains
    if batch.n_chains != condition.batch_size:
        raise NeurovisError(f"batch has {batch.n_chains} chains, expected {condition.batch_size} "
                            f"({len(condition.units)} units × {c} chains)")
    wall = float(batch.config.get("wall_time_s", 0.0))
    out = []
    for i, unit in enumerate(condition.units):
        rows = slice(i * c, (i + 1) * c)
        single = condition.unit(i)
        config = {
            **batch.config,
            "chains": c,
            "chain_ids": [int(v) for v in batch.chain_ids[rows]],
            "condition": single.describe(),
            "probability": single.prob_meaning,
            "wall_time_s": round(wall / len(condition.units), 3),
            "batch": {"units": list(condition.units), "chains": condition.batch_size, "wall_time_s": wall},
        }
        out.append(Chains(batch.codes[rows].clone(), batch.probs[rows].clone(), batch.activations[rows].clone(),
                          batch.eps1[rows].clone(), batch.failed[rows].clone(), batch.chain_ids[rows].clone(),
                          config, batch.prior, single))
    return out


@dataclass
class Backoff:
    """How many units one batch holds; halved (with one warning) on out-of-memory."""

    units_per_batch: int
    warned: bool = False

    def shrink(self, tried: int, chains: int) -> None:
        """Halve after a batch of ``tried`` units ran out of memory; raise if it was one unit."""
        if tried <= 1:
            raise NeurovisError(
                f"out of memory sampling one unit with {chains} chains; lower --chains, "
                "or use a device with more memory"
            ) from None
        self.units_per_batch = max(1, min(self.units_per_batch, tried) // 2)
        if not self.warned:
            warnings.warn(f"out of memory with {tried} units in one batch; retrying with "
                          f"{self.units_per_batch} units per batch (lower --units-per-batch to avoid this)",
                          RuntimeWarning, stacklevel=2)
            self.warned = True
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def sample_units(
    prior: Prior,
    model: torch.nn.Module,
    layer: str,
    units: Sequence[int],
    *,
    chains: int,
    backoff: Backoff | None = None,
    position: Any = None,
    gradient: str = "reference",
    progress: bool = False,
    **sample_kwargs: Any,
) -> list[Chains]:
    """Sample ``chains`` chains for each of ``units``, as few batches as memory allows.

    Args:
        prior, model, layer, position, gradient: as for :class:`~neurovis.UnitCondition`.
        units: unit indices; all of them are sampled, ``backoff.units_per_batch`` per batch
            (default: all in one batch).
        chains: chains per unit.
        backoff: the batch size, shared across calls so a halving after out-of-memory sticks.
        sample_kwargs: the rest of :func:`~neurovis.sample`'s arguments (steps, eps, lr,
            seed, rule, reset_every, on_nan); not ``chain_ids`` or ``init``.

    Returns:
        One :class:`Chains` per unit, in order, each ``(chains, steps + 1, ...)``.
    """
    units = list(units)
    backoff = backoff or Backoff(len(units))
    results: list[Chains] = []
    start = 0
    while start < len(units):
        part = units[start : start + max(1, backoff.units_per_batch)]
        condition = UnitsCondition(model, layer, tuple(part), chains, position=position, gradient=gradient)
        oom = False
        try:
            batch = sample(prior, condition, chains=condition.batch_size, chain_ids=list(range(chains)) * len(part),
                           progress=progress, **sample_kwargs)
        except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
            if not is_oom(err):
                raise
            oom = True
        if oom:  # outside the except block: the failed batch's tensors are freed by now
            backoff.shrink(len(part), chains)
            continue
        results.extend(split_units(batch, condition))
        del batch
        start += len(part)
    return results
