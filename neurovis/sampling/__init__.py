"""Sampling: chains in a prior's code space, driven by a condition, moved by a kernel.

:func:`sample` is the entry point: ``kernel=None`` runs the prior's recommended method
(:func:`neurovis.method.resolve_method`, the one place defaults are decided;
``preset="paper"`` for the paper's settings), or pass a kernel object::

    nv.sample(prior, cond, kernel=nv.sampling.PPGN(rule="textbook", reset_every=100))
    nv.sample(prior, cond, kernel=nv.sampling.MALA(step_size=1e-2, noise_anneal=0.55, bounds="prior"))

Modules, one job each:

* :mod:`.loop`: THE loop (:func:`~.loop.run_chains`): start codes, eval mode, the NaN
  policy, the recorded buffers, progress, the common config, the :class:`~neurovis.Chains`;
  and the :class:`~.loop.Kernel` protocol every kernel follows.
* :mod:`.ppgn`: the :class:`PPGN` kernel, the paper's step (MALA-approx, Eq. 11);
  **ε1 enters the step in** :meth:`neurovis.sampling.ppgn.PPGN.step`
  (``d = ε1·(R(h) − h) + ε2·∂log p(y|x)/∂h + N(0, ε3²)``).
* :mod:`.exact`: the :class:`MALA`, :class:`HMC` and :class:`MAP` kernels for priors with a
  density, over the kernel functions of :mod:`.mcmc` (``mala_step``, ``hmc_step``, ``map_step``).
* :mod:`.rng`: each chain's generator, seeded by ``(seed, chain)``, and the start codes.
* :mod:`.batched`: many units of a layer in one batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch

from neurovis.chains import Chains
from neurovis.conditions import Condition
from neurovis.errors import NeurovisError
from neurovis.priors.base import Prior
from neurovis.sampling.exact import HMC, MALA, MAP, exact_kernel
from neurovis.sampling.exact import RULES as EXACT_RULES
from neurovis.sampling.loop import Kernel, LoopOptions, run_chains
from neurovis.sampling.ppgn import PPGN
from neurovis.sampling.ppgn import RULES as PPGN_RULES

__all__ = ["sample", "Kernel", "PPGN", "MALA", "HMC", "MAP", "PPGN_RULES", "EXACT_RULES"]


def sample(
    prior: Prior,
    condition: Condition,
    chains: int = 10,
    steps: int = 200,
    seed: int = 0,
    kernel: Kernel | None = None,
    *,
    preset: str | None = None,
    starts: str | None = None,
    init: torch.Tensor | None = None,
    chain_ids: Sequence[int] | None = None,
    on_nan: str = "raise",
    progress: bool = True,
    precision: str = "fp32",
    eps: Sequence[float] | None = None,
    lr: float | None = None,
    rule: str | None = None,
    reset_every: int | None = None,
    lr_end: float | None = None,
    channels_last: bool = False,
    compile: bool | str = False,
    **exact: Any,
) -> Chains:
    """Run ``chains`` chains of ``steps`` steps of ``kernel`` in one batch.

    ``kernel=None`` is the prior's method (:mod:`neurovis.method`) with the PPGN kernel:
    ``preset=None`` the recommended one (for a generator prior with a start bank: chains
    start and restart every 10 steps from the codes of real images), ``preset="paper"`` the
    paper's settings (its ε, ``N(0, 1)`` starts, no restarts; for a world prior such as
    ``glyphs`` also the paper's treatment, Noiseless Joint PPGN-h). A :class:`PPGN` kernel
    takes every setting it leaves ``None`` from that method; the resolved method is
    ``chains.config["method"]``. :class:`MALA`, :class:`HMC` and :class:`MAP` are the exact
    samplers of Xu et al. for priors with a density (:class:`~neurovis.GaussianPrior`).

    The keyword form is kept and builds the kernel: ``eps``, ``lr``, ``rule``
    (``"faithful"``/``"textbook"``), ``reset_every``, ``lr_end`` make a :class:`PPGN`;
    ``rule="mala"|"hmc"|"map"`` with ``step_size``, ``leapfrog_steps``, ``noise``,
    ``noise_anneal``, ``step_decay``, ``step_decay_offset``, ``bounds`` and
    ``clip_after_mh`` an exact kernel (which ignores ``eps``, ``lr``, ``preset`` and
    ``starts``). With ``kernel=`` these keywords are an error: give them to the kernel.

    Args:
        prior: the prior (e.g. :class:`~neurovis.GeneratorPrior`); its networks' device is
            where the chains run.
        condition: what to sample for (unit, class, combination, callable, inpainting).
        chains: number of chains, run together as one batch.
        steps: steps per chain; each chain yields ``steps + 1`` samples.
        seed: chain ``i`` draws all its randomness from ``(seed, i)``.
        kernel: a :class:`PPGN`, :class:`MALA`, :class:`HMC` or :class:`MAP` (any
            :class:`~neurovis.sampling.loop.Kernel`); ``None``: see above.
        preset: ``None``/``"recommended"`` or ``"paper"`` (PPGN).
        starts: ``"random"`` or ``"bank"`` (real-image codes); default the method's (PPGN).
            Where ``bank`` is asked for and the prior has no bank, one warning says so and
            the chains start from the paper's random starts.
        init: start codes ``(chains, *code_shape)`` (e.g. ``prior.encode(photo)``);
            default a random start per chain (``prior.initial_codes``).
        chain_ids: the indices of these chains in the seeded family (default
            ``0..chains-1``); lets a run be split across processes with identical results.
        on_nan: what to do when a chain goes NaN/±Inf, in what is stored (the condition's
            probability, activation, objective or extra term, at every sample, the last
            included; for the exact kernels the log density and its gradient) or in the
            update step: ``"raise"`` stops with a :class:`~neurovis.ChainDivergedError`
            naming the chain, the step and what was non-finite; ``"mark"`` freezes the
            chain, marks it failed, sets its probabilities and activations from that sample
            on to NaN and records ``{"chain", "step", "what"}`` in ``config["failures"]``.
        progress: show a progress bar on stderr.
        precision: ``"fp32"`` (default) or ``"bf16"`` (PPGN only): the generator, condition
            and encoder passes run under ``torch.autocast`` in bfloat16 (codes, the update
            and the stored results stay float32). Measured on the glyph world (CPU): the
            step direction keeps a cosine of about 0.99 to fp32's; chains then drift apart
            as any perturbed chains do. Faster where the device has bf16 units (GPUs'
            tensor cores, CPUs with AMX/AVX-512 BF16: 2× at paper size on the dev machine).
        eps: ``(ε1, ε2, ε3)``: prior weight, condition weight, noise standard deviation
            (default: the method's; for generator priors (1e-5, 1, 1e-17)).
        lr: step size of the faithful rule (ignored by ``textbook``; default the method's, 1).
        rule: ``"faithful"`` (normalised step, the reference code; the default),
            ``"textbook"``, or an exact rule ``"mala"``, ``"hmc"``, ``"map"``.
        reset_every: (default the method's: 10 recommended, 0 paper) every N steps, restart
            each chain from a new random start (``prior.initial_codes``: ``N(0, 1)``, or a
            real image's code for a prior made with ``with_real_starts``) with a new
            ``ε1 ~ U(1e-6, 1e-2)`` (the reference hidden-unit scripts use 100); 0 = never.
            No restart follows the last step, so every chain's last sample is a sampled
            state; starts are marked (:attr:`Chains.is_start`) and never kept by a report.
        lr_end: if set, lr goes linearly from ``lr`` to ``lr_end`` over the run.
        channels_last: store the generator's, encoder's and condition network's 4-D
            weights as channels_last (NHWC), in place, so convolutions run in the layout
            GPUs' tensor cores read (:func:`neurovis._utils.speed.to_channels_last`).
        compile: ``True`` (inductor) or a backend name: ``torch.compile`` the prior's
            generator in place (:func:`neurovis._utils.speed.compile_generator`); the first
            steps pay the compile time.
        exact: the exact rules' settings (see above and :func:`neurovis.sampling.exact.sample_exact`).

    Returns:
        :class:`~neurovis.Chains` with codes, probabilities, activations, the kernel's trace
        (ε1 for PPGN, the step size α_t for the exact kernels) and the full config.
    """
    run = LoopOptions(preset=preset, starts=starts, init=init, chain_ids=chain_ids, on_nan=on_nan, progress=progress,
                      precision=precision, channels_last=channels_last, compile=compile)
    if kernel is not None:
        if not isinstance(kernel, Kernel):
            raise NeurovisError(f"kernel must be a sampling kernel (nv.sampling.PPGN, MALA, HMC or MAP), got "
                                f"{type(kernel).__name__} (eps, lr, rule and reset_every are keywords: eps=...)")
        given = [k for k, v in (("eps", eps), ("lr", lr), ("rule", rule), ("reset_every", reset_every),
                                ("lr_end", lr_end)) if v is not None] + sorted(exact)
        if given:
            raise NeurovisError(f"{', '.join(given)} and kernel= both set the sampler: give "
                                f"{'it' if len(given) == 1 else 'them'} to the kernel "
                                f"({type(kernel).__name__}(...)) or drop kernel=")
        return run_chains(prior, condition, kernel, chains, steps, seed, run)
    if rule in EXACT_RULES:
        if reset_every or lr_end is not None or precision != "fp32" or channels_last or compile:
            raise NeurovisError(f"reset_every, lr_end, precision, channels_last and compile are for the faithful/textbook "
                                f"rules; rule={rule!r} takes step_size and step_decay and runs in fp32")
        # eps, lr, preset and starts choose a PPGN method: the exact rules never read them
        return run_chains(prior, condition, exact_kernel(rule, **exact), chains, steps, seed,
                          replace(run, preset=None, starts=None))
    if exact:
        raise NeurovisError(f"{', '.join(sorted(exact))} apply only to rule='mala', 'hmc' or 'map'")
    if rule is not None and rule not in PPGN_RULES:
        raise NeurovisError(f"unknown rule {rule!r}; use one of {', '.join(PPGN_RULES + EXACT_RULES)}")
    kernel = PPGN(rule=rule, eps=None if eps is None else tuple(eps), lr=lr, lr_end=lr_end, reset_every=reset_every)
    return run_chains(prior, condition, kernel, chains, steps, seed, run)
