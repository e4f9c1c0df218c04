"""Sampling: chains in a prior's code space, driven by a condition.

:func:`sample` is the entry point (the recommended method by default, ``preset="paper"``
for the paper's settings); :mod:`.ppgn` holds the paper's update rule, :mod:`.mcmc` and
:mod:`.exact` the exact samplers (MALA, HMC, MAP), :mod:`.batched` many units per batch.
"""

from neurovis.sampling.ppgn import sample

__all__ = ["sample"]
