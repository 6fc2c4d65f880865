"""The residual-add unit's numbers: its pipeline and its cycle function (``rtl/add.py``).

``AddUnit`` is one element-wise pipeline, ``lanes`` elements per beat, one beat per
cycle. ``add_cycles`` counts from the first input handshake to the last output handshake,
both included, with the input valid on every cycle and the output always ready.
"""

from __future__ import annotations

from numba import njit

from .arith import beats

__all__ = ["ADD_LATENCY", "ADD_STAGES", "add_cycles"]

#: Registered stages, one cycle each: the four partial products of ``a * m_a`` and
#: ``b * m_b`` (multipliers split at bit 17); the low and the high halves of their sum, each
#: with its part of the rounding bit ``2**(s-1)``; the high half's carry, which completes
#: ``u = a * m_a + b * m_b + 2**(s-1)``, and ``u`` shifted by whole bytes; the shift by the
#: remaining bits and the saturation, into the output register (``rtl/add.py``).
ADD_STAGES = ("mul", "sum", "top", "sat")
#: Cycles from a beat accepted to the same beat valid at the output.
ADD_LATENCY = len(ADD_STAGES)


@njit(cache=True)
def add_cycles(lanes, elements):
    """Cycles of ``AddUnit`` for ``elements >= 1`` outputs:
    ``ceil(elements / lanes) + ADD_LATENCY``."""
    return beats(elements, lanes) + ADD_LATENCY
