"""A whole-layer audit: one facet report per unit plus a sortable index page.

:func:`run_layer` samples the units ``units_per_batch`` at a time (one batch of
``units × chains`` chains, one generator pass per step; halved, with one warning, when a
batch runs out of memory), reports each unit in ``out/unit_NNNN/`` and writes ``out/index.html``
and ``out/layer.json`` (a table sortable by acceptance rate, number of facets, diversity).

Under ``torchrun`` the groups of units are shared out over the processes (one device each);
rank 0 writes the index. Work happens in ``<out>.partial/`` (finished units, the chains of a
group not yet reported), so a killed run is continued by the same call with ``resume=True``;
the folder becomes ``out`` when every unit is done. Each unit's chains depend only on the
settings and the unit, so the results equal an uninterrupted run's, in any batch size.

Example (the glyph world, tiny settings)::

    import neurovis as nv
    from neurovis.runs.layer import run_layer

    run = run_layer(nv.load_model("glyphs"), nv.load_prior("glyphs"), "conv5", range(2), "audit",
                    chains=2, steps=4, report={"bootstrap": 0, "attribution": False}, progress=False)
    run.index, run.done, run.skipped          # audit/index.html, (0, 1), ()
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from torch import nn
from tqdm.auto import tqdm

from neurovis._utils import dist as distributed
from neurovis.conditions import UnitCondition
from neurovis.errors import NeurovisError
from neurovis.report import write as render
from neurovis.report.layer_index import unit_folder, unit_row, write_layer_index
from neurovis.runs.facets import compute_info, facet_report
from neurovis.runs.options import RunOptions
from neurovis.runs.output import OutputLock, check_output, discard_on_bad_input
from neurovis.runs.setup import check_unit
from neurovis.runs.workfolder import WorkFolder, run_settings
from neurovis.sampling.batched import Backoff, plan_groups, sample_units

UNITS_PER_BATCH = 8
"""Units sampled together in one batch (halved on out-of-memory)."""

NO_FACETS = ("dead_unit", "nothing_passed_threshold")
"""Report statuses of a unit whose report found no facets (:attr:`LayerRun.failed`)."""


@dataclass(frozen=True)
class LayerRun:
    """What :func:`run_layer` made.

    Attributes:
        out: the layer folder.
        index: ``out/index.html``; ``None`` on a torchrun process other than rank 0 (rank 0
            writes the index and moves the folder into place).
        reports: unit -> its report folder ``out/unit_NNNN``, for every unit asked for.
        done: the units this call (this process) sampled and reported.
        skipped: the units already reported by an earlier, unfinished run (``resume``).
        failed: the units whose report found no facets (status ``dead_unit`` or
            ``nothing_passed_threshold``); known on rank 0 only.
        statuses: unit -> its report's status (rank 0 only).
    """

    out: Path
    index: Path | None
    reports: dict[int, Path]
    done: tuple[int, ...]
    skipped: tuple[int, ...]
    failed: tuple[int, ...] = ()
    statuses: dict[int, str] = field(default_factory=dict)

    def summary(self) -> str:
        """The command line's summary: how many unit reports, by status."""
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        return (f"{self.out}/index.html: {len(self.reports)} unit reports ("
                + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")


def _unit_list(units: Iterable[int]) -> list[int]:
    try:
        chosen = list(dict.fromkeys(int(u) for u in units))
    except (TypeError, ValueError):
        raise NeurovisError(f"units {units!r}: give unit indices (ints), e.g. range(16)") from None
    if not chosen or min(chosen) < 0:
        raise NeurovisError(f"units {units!r} selects no units (or a negative one)")
    return chosen


def run_layer(
    model: nn.Module,
    prior: Any,
    layer: str,
    units: Iterable[int],
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    position: Any = None,
    gradient: str = "reference",
    units_per_batch: int = UNITS_PER_BATCH,
    resume: bool = True,
    settings: Mapping[str, Any] | None = None,
    name: str | None = None,
    title: str | None = None,
    **given: Any,
) -> LayerRun:
    """One facet report per unit of ``layer`` plus a sortable index, in the folder ``out``.

    Each unit gets ``chains`` chains of ``steps`` steps (``chains × (steps + 1)`` samples),
    exactly as :func:`~neurovis.runs.facets.run_facets` would give it alone.

    Args:
        model, prior, layer, position, gradient: as for :class:`~neurovis.UnitCondition`.
        units: unit indices (``range(16)``, ``[3, 7, 9]``); duplicates are dropped.
        out: the layer folder; refused if it exists, unless ``force`` (and only if it is a
            neurovis report).
        units_per_batch: units sampled in one batch (memory, not results: halved on
            out-of-memory, and a resumed run may use another value).
        options, given: the run's :class:`~neurovis.runs.options.RunOptions` (``chains``,
            ``steps``, ``seed``, ``preset``, ``sampling``, ``report``, ``natural_images``,
            ``force``, ``progress``, ``command``, ``timings``), as an object and/or keywords;
            ``timings`` are also recorded in the index.
        resume: continue an unfinished run with the same settings (its finished units are
            kept, its sampled chains reused); ``force`` without ``resume`` starts it over.
        settings: more of what decides the results (e.g. the model's name), compared when
            resuming; the arguments above are recorded anyway.
        name, title: the model's name and the page title of the index (defaults: the model's
            class name, ``"<class> · layer <layer> · units <units>"``).

    Returns:
        A :class:`LayerRun`: the paths, and which units were done, skipped, found no facets.

    Raises:
        NeurovisError: bad units, ``out`` exists (without ``force``) or is locked by another
            run, an unfinished run is there (without ``resume`` or ``force``) or has other
            settings, or a unit does not exist in the layer.
    """
    opts = RunOptions.of(options, **given)
    force, progress = opts.force, opts.progress
    units = _unit_list(units)
    if units_per_batch < 1:
        raise NeurovisError(f"units_per_batch must be ≥ 1, got {units_per_batch}")
    out = check_output(out, force)
    groups = plan_groups(units, units_per_batch)
    recorded = run_settings({"layer": layer, "units": units, "position": position, "gradient": gradient,
                             **opts.recorded()}, **dict(settings or {}))
    work = WorkFolder(out, recorded)
    timings = dict(opts.timings or {})
    started = time.perf_counter()
    reports = {u: out / unit_folder(u) for u in units}
    done: list[int] = []
    with OutputLock(out, opts.command):
        mode = work.check(resume=resume, force=force)  # read-only: every process checks
        check_unit(model, prior, layer, max(units), position=position, gradient=gradient)  # fail now, not later
        with discard_on_bad_input(work, mode), distributed.context(prior.device) as dist:
            dist.barrier()
            if dist.is_main:
                work.prepare(mode=mode)
            dist.barrier()
            show = progress and dist.is_main
            mine, finished = distributed.shard(groups, dist.rank, dist.world), work.done(units)
            backoff = Backoff(units_per_batch)
            with tqdm(total=sum(u not in finished for g in mine for u in g), disable=not show, file=sys.stderr,
                      desc="units", unit="unit") as bar:
                for group in mine:
                    if all(u in finished for u in group):
                        work.drop_group(group)
                        continue
                    conditions = [UnitCondition(model, layer, u, position=position, gradient=gradient) for u in group]
                    ran = work.load_group(group, prior, conditions)
                    if ran is None:
                        ran = sample_units(prior, model, layer, group, chains=opts.chains, backoff=backoff,
                                           position=position, gradient=gradient, progress=show, **opts.sample_kwargs())
                        work.save_group(group, ran)
                    for unit, unit_chains in zip(group, ran):
                        if unit not in finished:
                            result = facet_report(unit_chains, opts)
                            work.write_unit(unit, lambda folder: render.write_files(result, folder))
                            done.append(unit)
                            bar.update(1)
                            del result
                    work.drop_group(group)
                    del ran
            dist.barrier()  # every unit is written
            skipped = tuple(u for u in units if u in finished)
            if not dist.is_main:
                return LayerRun(out, None, reports, tuple(done), skipped)
            rows, statuses = [], {}
            for unit in units:
                doc = work.unit_doc(unit)
                rows.append(unit_row(unit, doc))
                statuses[unit] = doc["status"]
            heading = title or f"{type(model).__name__} · layer {layer} · units {_units_text(units)}"
            timings["total"] = round(sum(timings.values()) + time.perf_counter() - started, 4)
            write_layer_index(work.path, heading, name or type(model).__name__, layer, rows, opts.command, timings,
                              compute=compute_info())
            work.finish(force)
    failed = tuple(u for u in units if statuses[u] in NO_FACETS)
    return LayerRun(out, out / "index.html", reports, tuple(done), skipped, failed, statuses)


def _units_text(units: list[int]) -> str:
    """``0:16`` for a run of consecutive units, else ``3,7,9``."""
    if len(units) > 1 and units == list(range(units[0], units[-1] + 1)):
        return f"{units[0]}:{units[-1] + 1}"
    return ",".join(map(str, units))
