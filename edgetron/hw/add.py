"""The residual-add unit's numbers: its pipeline and its cycle function (``rtl/add.py``).

``AddUnit`` is one element-wise pipeline, ``lanes`` elements per beat, one beat per
cycle. ``add_cycles`` counts from the first input handshake to the last output handshake,
both included, with the input valid on every cycle and the output always ready.
"""

from __future__ import annotations

from numba import njit

from .arith import beats

__all__ = ["ADD_LATENCY", "ADD_STAGES", "add_cycles"]

#: Registered stages, one cycle each: both products ``a * m_a`` and ``b * m_b``; their sum;
#: ``(t >> (s - 1)) + 1`` (the rounding add one bit early); the last shift and saturation.
ADD_STAGES = ("mul", "sum", "shift", "sat")
#: Cycles from a beat accepted to the same beat valid at the output.
ADD_LATENCY = len(ADD_STAGES)


@njit(cache=True)
def add_cycles(lanes, elements):
    """Cycles of ``AddUnit`` for ``elements >= 1`` outputs:
    ``ceil(elements / lanes) + ADD_LATENCY``."""
    return beats(elements, lanes) + ADD_LATENCY
