"""The GELU unit's numbers: its pipeline and its cycle function (``rtl/gelu.py``).

``GeluUnit`` is one element-wise pipeline, ``lanes`` elements per beat, one beat per
cycle: the i-GELU stages, then the dyadic requantizer of ``rtl/requant.py``
(``REQUANT_LATENCY`` stages; in the int32-output mode it is fed the identity ``m = 2**30,
s = 30``, so the latency does not depend on the mode). ``gelu_cycles`` counts from the
first input handshake to the last output handshake, both included, with the input valid on
every cycle and the output always ready.
"""

from __future__ import annotations

from numba import njit

from .arith import beats
from .gemm import REQUANT_LATENCY

__all__ = ["GELU_LATENCY", "GELU_STAGES", "gelu_cycles"]

#: i-GELU stages, one cycle each (golden/gelu.py steps): ``|q|`` plus the rescale's rounding
#: constant (1, 2); the rescale to the internal scale (one shift; 2); the clip, as
#: ``d = clip - min(u, clip)`` (2-3); ``w = d**2`` (3); ``r = q_one + sgn(q) (q_one - w)``
#: (4); its truncation ``r >> erf_shift`` (5); ``q * rt`` (6); the final rounding shift (7).
GELU_STAGES = ("mag", "rescale", "clip", "square", "erf", "trunc", "mul", "round")
#: Cycles from a beat accepted to the same beat valid at the output.
GELU_LATENCY = len(GELU_STAGES) + REQUANT_LATENCY


@njit(cache=True)
def gelu_cycles(lanes, elements):
    """Cycles of ``GeluUnit`` for ``elements >= 1`` values:
    ``ceil(elements / lanes) + GELU_LATENCY``."""
    return beats(elements, lanes) + GELU_LATENCY
