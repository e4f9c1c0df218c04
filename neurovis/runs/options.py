"""What every run takes beyond its subject: :class:`RunOptions`, defined once.

:func:`~neurovis.runs.facets.run_facets`, :func:`~neurovis.runs.facets.run_sample`,
:func:`~neurovis.runs.layer.run_layer` and :func:`~neurovis.runs.inpaint.run_inpaint` each take
an ``options`` object, keyword arguments naming its fields, or both (the keywords win)::

    run_facets(model, prior, "conv5", 3, "out", chains=4, steps=20)
    run_facets(model, prior, "conv5", 3, "out", RunOptions(chains=4, steps=20), force=True)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from neurovis.errors import NeurovisError

SAMPLING_DEFAULTS: dict[str, Any] = {"on_nan": "mark"}
"""What a run passes to :func:`neurovis.sample` unless ``sampling`` says otherwise (one
diverged chain is reported instead of failing the run)."""


@dataclass(frozen=True)
class RunOptions:
    """The settings every run shares: how much to sample, and what to do with it.

    Attributes:
        chains, steps: ``chains`` chains of ``steps`` steps per condition (``chains × (steps + 1)``
            samples); the commands' defaults, 10 × 200.
        seed: chain ``i`` draws its randomness from ``(seed, i)``; also the report's seed.
        preset: ``None`` (the prior's recommended method) or ``"paper"``
            (:mod:`neurovis.method`).
        sampling: the other keyword arguments of :func:`neurovis.sample` (``eps``, ``lr``,
            ``rule``, ``reset_every``, ``starts``, ``precision``, ...; ``on_nan`` defaults to
            ``"mark"`` here).
        report: the other keyword arguments of :func:`neurovis.facets` (``threshold``, ``keep``,
            ``pick``, ``n_facets``, ``features``, ``attribution``, ``bootstrap``).
        natural_images: for the report (:func:`~neurovis.runs.setup.natural_images`).
        force: replace an existing report folder (only a neurovis report).
        progress: progress bars on stderr.
        command, timings: recorded in the report (what ran; seconds spent before the call,
            e.g. loading).
    """

    chains: int = 10
    steps: int = 200
    seed: int = 0
    preset: str | None = None
    sampling: Mapping[str, Any] | None = None
    report: Mapping[str, Any] | None = None
    natural_images: Any = None
    force: bool = False
    progress: bool = True
    command: str = ""
    timings: Mapping[str, float] | None = None

    @classmethod
    def of(cls, options: RunOptions | None = None, **given: Any) -> RunOptions:
        """``options`` (default all defaults) with the fields in ``given`` replaced.

        Raises:
            NeurovisError: ``options`` is not a :class:`RunOptions`, or ``given`` names no field.
        """
        if options is None:
            options = cls()
        elif not isinstance(options, cls):
            raise NeurovisError(f"options must be a RunOptions, got {type(options).__name__}; "
                                "or pass its fields as keywords (chains=..., steps=...)")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise NeurovisError(f"unknown run option {unknown[0]!r}; a run takes {', '.join(names)} "
                                "(the sampler's settings go in sampling={...}, the report's in report={...})")
        return replace(options, **given) if given else options

    def sample_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`neurovis.sample` a run uses (all but chains, init, progress)."""
        return {**SAMPLING_DEFAULTS, "steps": self.steps, "seed": self.seed, "preset": self.preset,
                **dict(self.sampling or {})}

    def recorded(self) -> dict[str, Any]:
        """What of these options decides the chains and the report (compared when resuming)."""
        return {"chains": self.chains, "sampling": self.sample_kwargs(), "report": dict(self.report or {})}
