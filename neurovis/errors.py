"""Errors neurovis raises for bad input.

Every error a user can cause by what they pass in is a :class:`NeurovisError` whose message
is one line saying what was wrong and what to do. The command line prints that line and
exits with status 2; Python callers can catch it (it is also a ``ValueError``). Reading a
weights file with such errors is :func:`neurovis._utils.weights.load_weights_file`.
"""

from __future__ import annotations


class NeurovisError(ValueError):
    """Bad input: the message says what was wrong and what to do, in one line."""


class ChainDivergedError(NeurovisError, FloatingPointError):
    """A chain produced NaN or Inf; the message names the chain and the step."""

    def __init__(self, message: str, chain: int, step: int) -> None:
        super().__init__(message)
        self.chain = chain
        self.step = step
