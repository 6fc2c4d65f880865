"""What every vector-unit pipeline shares: beats, adder trees, dividers and integer steps.

Timing
------
Every vector unit (softmax, GELU, LayerNorm, add, pool, concat) takes ``lanes =
p.vector_lanes`` elements per cycle through a fixed pipeline. A *pass* over ``n``
elements takes ``B(n) = ceil(n / lanes)`` beats (:func:`beats`) plus the pipeline
latency of that pass (the time from the first beat in to the last result out). Passes
that need a result of the previous pass (the row maximum before the exponentials, the
row sum before the normalization, the mean and variance before LayerNorm's
normalization) wait for that pass to drain, and rows are processed one after the other.

Each unit module names its per-stage latencies, each derived from the golden datapath it
implements (``golden/softmax.py``, ``golden/gelu.py``, ``golden/layernorm.py``,
``golden/add.py``, ``golden/conv.py``): a multiplier, an adder, a shifter or a
saturation is one pipeline stage (:data:`STAGE`), an adder tree over the lanes is
``T = ceil(log2(lanes))`` stages (:func:`tree_depth`), and a divider is a radix-2
restoring divider that spends :data:`DIVIDER_SETUP` cycles loading its operands and then
produces one quotient bit per cycle. The dyadic requantization reuses the GEMM unit's
requantizer (``rtl/requant.py``), whose latency
:data:`edgetron.hw.gemm.REQUANT_LATENCY` the RTL tests measure. These latencies are the
timing contract of the future RTL units (``rtl/softmax.py:SoftmaxUnit`` <->
:func:`edgetron.sim.units.softmax.softmax_cycles`, and so on).

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
from edgetron.hw.gemm import cdiv

__all__ = [
    "DIVIDER_SETUP",
    "STAGE",
    "beats",
    "in_int32",
    "pow2_rescale",
    "requantize",
    "round_shift",
    "tree_depth",
]

#: One register stage.
STAGE = 1

#: A radix-2 restoring divider spends one cycle loading its operands before producing
#: one quotient bit per cycle.
DIVIDER_SETUP = STAGE

#: Beats to stream ``n`` elements through ``lanes`` lanes, ``B(n) = ceil(n / lanes)``:
#: ``beats(n, lanes)`` is :func:`edgetron.hw.gemm.cdiv` under the name the formulas use.
beats = cdiv


@njit(cache=True)
def tree_depth(lanes):
    """Stages of an adder / comparator tree over ``lanes`` inputs, ``ceil(log2(lanes))``."""
    d = 0
    w = 1
    while w < lanes:
        w *= 2
        d += 1
    return d


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
