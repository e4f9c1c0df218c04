"""One report folder from one condition: sample, find the facets, write, under the output's lock.

* :func:`run_facets`: one hidden unit (``UnitCondition``), resumable: its chains are kept in
  ``<out>.partial/`` until the report is in place, so a killed run reuses them.
* :func:`run_sample`: any condition (a class, several classes, a caption) -> a report.
* :func:`facet_report`: chains -> :class:`~neurovis.analysis.FacetReport` with the machine's
  compute settings (threads, BLAS, CPU kernels) in its reproducibility block.

Every run checks its output folder first (:func:`~neurovis.runs.output.check_output`), holds
its lock while it works, and writes the folder atomically. What runs share (chains, steps,
seed, preset, the sampler's and the report's other settings, ...) is one
:class:`~neurovis.runs.options.RunOptions`, given as an object or as keywords.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

import neurovis.sampling as _sampling
from neurovis.analysis import FacetReport, facets
from neurovis.chains import Chains
from neurovis.conditions import Condition, UnitCondition
from neurovis.report.write import write_report
from neurovis.runs.options import RunOptions
from neurovis.runs.output import OutputLock, check_output, discard_on_bad_input
from neurovis.runs.setup import check_unit
from neurovis.runs.workfolder import WorkFolder, run_settings


@dataclass(frozen=True)
class ReportRun:
    """What :func:`run_facets` and :func:`run_sample` made.

    Attributes:
        out: the report folder (``index.html``, ``facets.json``, ``samples.h5``, ``img/``).
        report: the facets, as computed (status, facets, figures, selection).
        resumed: whether the chains came from an unfinished run's work folder.
    """

    out: Path
    report: FacetReport
    resumed: bool = False

    @property
    def index(self) -> Path:
        """The report's page, ``out/index.html``."""
        return self.out / "index.html"

    def summary(self) -> str:
        """The command line's summary: status, facets and kept samples (plus the coverage line)."""
        report = self.report
        sel = report.selection
        rule = (f"activation ≥ {sel.keep['activation_threshold']:.4g}" if sel.keep and sel.keep.get("rule") == "activation"
                else f"p ≥ {sel.threshold:g}")
        line = (f"{self.out}/index.html: {report.status}, {report.figures['n_facets']} facet(s), "
                f"{sel.kept.size}/{sel.n_samples} samples kept ({rule})")
        coverage = report.coverage.get("summary")
        return f"{line}\n{coverage}" if coverage else line


def compute_info() -> dict[str, Any]:
    """What decides CPU results beyond the seeds: torch's threads, its BLAS and the CPU
    kernels it picked (recorded in the report's reproducibility block)."""
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


def facet_report(chains: Chains, opts: RunOptions) -> FacetReport:
    """:func:`neurovis.facets` of ``chains`` as the run's options ask (``opts.report``: its
    other keyword arguments), with :func:`compute_info` added to the report's device record."""
    result = facets(chains, seed=opts.seed, natural_images=opts.natural_images, command=opts.command,
                    timings=dict(opts.timings or {}), progress=opts.progress, **dict(opts.report or {}))
    device = result.provenance.get("device")
    if isinstance(device, dict):  # threads, BLAS and CPU kernels: what a bit-identical rerun must match
        device.update(compute_info())
    return result


def run_facets(
    model: nn.Module,
    prior: Any,
    layer: str,
    unit: int,
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    position: Any = None,
    gradient: str = "reference",
    resume: bool = True,
    settings: Mapping[str, Any] | None = None,
    **given: Any,
) -> ReportRun:
    """The facets of one unit of ``layer`` in a report folder ``out``.

    ``chains`` chains of ``steps`` steps (``chains × (steps + 1)`` samples), then
    :func:`neurovis.facets`. The chains are kept in ``<out>.partial/`` until the report is in
    place: a run killed meanwhile is continued by a call with the same settings and
    ``resume=True`` (its chains are reused, not sampled again); ``force`` starts such a
    run over and replaces an existing report ``out``.

    Args:
        model, prior, layer, unit, position, gradient: as for :class:`~neurovis.UnitCondition`
            and :func:`neurovis.sample`.
        options, given: the run's :class:`~neurovis.runs.options.RunOptions` (``chains``,
            ``steps``, ``seed``, ``preset``, ``sampling``, ``report``, ``natural_images``,
            ``force``, ``progress``, ``command``, ``timings``), as an object and/or keywords.
        resume: continue an unfinished run with the same settings.
        settings: more of what decides the results (e.g. the model's name), compared when
            resuming; the arguments above are recorded anyway.

    Raises:
        NeurovisError: ``out`` exists (without ``force``), is locked by another run, an
            unfinished run is there (without ``resume`` or ``force``) or has other settings,
            or the unit does not exist.
    """
    opts = RunOptions.of(options, **given)
    force = opts.force
    out = check_output(out, force)
    recorded = run_settings({"layer": layer, "unit": unit, "position": position, "gradient": gradient, **opts.recorded()},
                            **dict(settings or {}))
    work = WorkFolder(out, recorded)
    with OutputLock(out, opts.command):
        mode = work.check(resume=resume, force=force)
        condition = UnitCondition(model, layer, unit, position=position, gradient=gradient)
        check_unit(model, prior, layer, unit, position=position, gradient=gradient)  # before any folder is made
        work.prepare(mode=mode)  # <out>.partial keeps the chains until the report is in place
        with discard_on_bad_input(work, mode):
            saved = work.load_group([unit], prior, [condition])
            if saved is None:
                ran = _sampling.sample(prior, condition, chains=opts.chains, progress=opts.progress,
                                       **opts.sample_kwargs())
                work.save_group([unit], [ran])
            else:
                ran = saved[0]
            result = facet_report(ran, opts)
            write_report(result, out, force=force)
        work.discard()
    return ReportRun(out, result, resumed=saved is not None)


def run_sample(
    prior: Any,
    condition: Condition,
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    init: torch.Tensor | None = None,
    **given: Any,
) -> ReportRun:
    """Sample ``condition`` (a class, a combination, a caption, ...) and write its report to ``out``.

    ``init``: start codes ``(chains, *code_shape)`` (default the prior's starts). ``options``
    and ``given`` are as for :func:`run_facets`; the run is not resumable (no work folder).

    Raises:
        NeurovisError: ``out`` exists (without ``force``) or is locked by another run.
    """
    opts = RunOptions.of(options, **given)
    out = check_output(out, opts.force)
    with OutputLock(out, opts.command):
        return sample_report(prior, condition, out, opts, init=init)


def sample_report(prior: Any, condition: Condition, out: Path, opts: RunOptions, init: Any = None) -> ReportRun:
    """The body of :func:`run_sample` (the caller holds the output's lock)."""
    ran = _sampling.sample(prior, condition, chains=opts.chains, init=init, progress=opts.progress,
                           **opts.sample_kwargs())
    result = facet_report(ran, opts)
    write_report(result, out, force=opts.force)
    return ReportRun(out, result)
