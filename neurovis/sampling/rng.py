"""Each chain's randomness: one CPU generator per chain, seeded by ``(seed, chain)`` only.

Chain ``i`` draws its start, its noise, its restarts and its jitter from its own generator,
so chain 2 of a 4-chain run equals chain 2 of a 3-chain run, and a run split across
processes (``chain_ids``) equals the whole run.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from neurovis.errors import NeurovisError
from neurovis.priors.base import Prior


def chain_generator(seed: int, chain: int) -> torch.Generator:
    """The CPU random generator of chain ``chain`` under ``seed`` (independent streams)."""
    state = np.random.SeedSequence([int(seed), int(chain)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def start_chains(
    prior: Prior, chains: int, seed: int, chain_ids: Sequence[int] | None, init: torch.Tensor | None
) -> tuple[list[int], list[torch.Generator], torch.Tensor]:
    """``(ids, rngs, h0)`` of a run: the chain ids (default ``0..chains-1``), each chain's
    generator and the start codes ``(chains, *code_shape)`` float32 on the prior's device
    (``init`` if given, else a random start per chain)."""
    ids = list(range(chains)) if chain_ids is None else [int(i) for i in chain_ids]
    if len(ids) != chains:
        raise NeurovisError(f"chain_ids has {len(ids)} entries for {chains} chains")
    rngs = [chain_generator(seed, i) for i in ids]
    if init is not None:
        if tuple(init.shape) != (chains, *prior.code_shape):
            raise NeurovisError(
                f"init has shape {tuple(init.shape)}; expected ({chains}, {', '.join(map(str, prior.code_shape))})"
            )
        h = init.detach().to(device=prior.device, dtype=torch.float32).clone()
    else:
        h = prior.initial_codes(rngs).to(device=prior.device, dtype=torch.float32)
    return ids, rngs, h
