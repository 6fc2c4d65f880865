"""What every vector-unit pipeline shares: beats, trees, the per-row scalar work, integer steps.

Timing
------
Every vector unit (softmax, GELU, LayerNorm, add, pool, concat) takes ``lanes =
p.vector_lanes`` elements per cycle: a pass over ``n`` elements takes ``B(n) = ceil(n /
lanes)`` beats (:func:`beats`). The units with an RTL (``rtl/softmax.py``,
``rtl/gelu.py``, ``rtl/layernorm.py``, ``rtl/add.py``) are costed by *their* cycle
functions, defined once in ``edgetron.hw`` and measured equal to the RTL by the tests:
the unit modules call them with ``p.vector_lanes``. Softmax and LayerNorm overlap rows
(the next row streams in while the current one finishes), so ``R`` rows of ``n`` cost
``B(n) + (R - 1) * P(n) + row_latency(n)`` with ``P(n) = max(B(n), the slowest per-row
block)``.

The pool and concat units have no RTL: their latencies are design estimates, one register
stage (:data:`STAGE`) per multiplier, adder, shifter or saturation, and an adder /
comparator tree over the lanes of ``T = ceil(log2(lanes))`` stages (:func:`tree_depth`,
the RTL's). The dyadic requantization is ``rtl/requant.py``'s
(:data:`edgetron.hw.gemm.REQUANT_LATENCY`).

Events
------
The per-row scalar work of softmax and LayerNorm is done by the RTL's sequential blocks:
:func:`divider_adds` and :func:`sqrt_adds` count their compare-subtracts (energy events).

Functional kernels
------------------
The integer steps golden's kernels share, compiled for the unit kernels:
:func:`round_shift` (``golden.intops.round_shift``), :func:`pow2_rescale`
(``golden.intops.pow2_rescale``), :func:`requantize` (``golden.intops.requantize``
followed by the clamp of a fused activation) and :func:`in_int32` (the accumulator range
of ``golden.gemm.check_accumulator``). They work on int64 and never wrap for the ranges
golden accepts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.golden.intops import INT32_MAX, INT32_MIN
from edgetron.hw.arith import (
    SQRT_BITS_PER_CYCLE,
    beats,
    divider_latency,
    sqrt_latency,
    tree_depth,
)

__all__ = [
    "STAGE",
    "beats",
    "divider_adds",
    "in_int32",
    "pow2_rescale",
    "requantize",
    "round_shift",
    "sqrt_adds",
    "tree_depth",
]

#: One register stage.
STAGE = 1


@njit(cache=True)
def divider_adds(quo_bits):
    """Compare-subtracts of one division by the radix-4 divider (``rtl/arith.py``): three
    per quotient digit pair (against ``d``, ``2d``, ``3d`` in parallel) and ``3d = 2d + d``
    when it loads."""
    return 3 * (divider_latency(quo_bits) - 1) + 1


@njit(cache=True)
def sqrt_adds(in_bits):
    """Trial compare-subtracts of one square root of an ``in_bits``-bit operand
    (``rtl/arith.py``): one per root bit, ``SQRT_BITS_PER_CYCLE`` per cycle."""
    return SQRT_BITS_PER_CYCLE * (sqrt_latency(in_bits) - 1)


@njit(cache=True)
def in_int32(v):
    """True when ``v`` fits the int32 accumulator (golden ``check_accumulator``'s range)."""
    return INT32_MIN <= v <= INT32_MAX


@njit(cache=True)
def round_shift(x, s):
    """``(x + 2**(s-1)) >> s``, round half up; ``x`` itself for ``s <= 0``."""
    if s <= 0:
        return x
    return (x + (np.int64(1) << (s - 1))) >> s


@njit(cache=True)
def pow2_rescale(x, f):
    """``x << f`` for ``f >= 0``, else :func:`round_shift` by ``-f``."""
    if f >= 0:
        return x << f
    return round_shift(x, -f)


@njit(cache=True)
def requantize(v, m, s, lo, hi):
    """``clamp((v * m + 2**(s-1)) >> s, lo, hi)``: the requantizer, then the output clamp.

    ``s >= 1`` (golden's range); ``[lo, hi]`` is the output range intersected with a fused
    activation's bounds (``golden.quant.activation_bounds``).
    """
    y = (v * m + (np.int64(1) << (s - 1))) >> s
    return min(max(y, lo), hi)
