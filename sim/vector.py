"""Timing of the vector (non-linear and element-wise) units: softmax, GELU, LayerNorm, add.

Every unit takes ``lanes = p.vector_lanes`` elements per cycle through a fixed pipeline.
A *pass* over ``n`` elements takes ``ceil(n / lanes)`` beats plus the pipeline latency of
that pass (the time from the first beat in to the last result out). Passes that need a
result of the previous pass (the row maximum before the exponentials, the row sum before
the normalization, the mean and variance before LayerNorm's normalization) wait for that
pass to drain, and rows are processed one after the other. The per-stage latencies are
named constants below, each derived from the golden datapath it implements
(``golden/softmax.py``, ``golden/gelu.py``, ``golden/layernorm.py``,
``golden/residual.py``, ``golden/conv.py``); a multiplier, an adder, a shifter or a
saturation is one pipeline stage, an adder tree over the lanes is ``ceil(log2(lanes))``
stages, and a divider is a radix-2 restoring divider producing one quotient bit per cycle.

Formulas (``B(n) = ceil(n / lanes)``, ``T = ceil(log2(lanes))``):

* softmax, per row of ``n``:
  ``3 B(n) + SOFTMAX_MAX_LATENCY + T + SOFTMAX_EXP_LATENCY + T + SOFTMAX_RECIP_LATENCY +
  SOFTMAX_NORM_LATENCY``; rows in sequence.
* GELU over ``n`` elements: ``B(n) + GELU_LATENCY``.
* LayerNorm, per row of ``n``:
  ``2 B(n) + LAYERNORM_STATS_LATENCY + T + LAYERNORM_ROW_LATENCY + LAYERNORM_NORM_LATENCY``.
* residual add over ``n`` elements: ``B(n) + ADD_LATENCY``.
* concat (a copy through the unit): ``B(n) + CONCAT_LATENCY``.
* partial-sum accumulation of a GEMM whose K is split over several GEMM-unit calls
  (``chunks`` int32 partial tiles of ``n`` elements, summed, then requantized):
  ``chunks * B(n) + ADD_LATENCY + REQUANT_LATENCY``.

These functions are the timing contract of the future RTL units
(``rtl/softmax.py:SoftmaxUnit`` <-> :func:`softmax_cycles`, and so on).
"""

from __future__ import annotations

from numba import njit

from edgetron.golden.layernorm import ISQRT_BITS, RECIP_K, isqrt_iteration_bound
from edgetron.golden.softmax import EXP_BITS

from .units.gemm import REQUANT_LATENCY as SYSTOLIC_REQUANT_LATENCY
from .units.gemm import cdiv

__all__ = [
    "ADD_ADDS_PER_ELEMENT",
    "ADD_LATENCY",
    "ADD_MULS_PER_ELEMENT",
    "CONCAT_LATENCY",
    "DIVIDER_SETUP",
    "GELU_ADDS_PER_ELEMENT",
    "GELU_LATENCY",
    "GELU_MULS_PER_ELEMENT",
    "ISQRT_UPDATES",
    "ISQRT_UPDATE_LATENCY",
    "LAYERNORM_ADDS_PER_ELEMENT",
    "LAYERNORM_ADDS_PER_ROW",
    "LAYERNORM_MULS_PER_ELEMENT",
    "LAYERNORM_NORM_LATENCY",
    "LAYERNORM_RECIP_LATENCY",
    "LAYERNORM_ROW_LATENCY",
    "LAYERNORM_STATS_LATENCY",
    "REQUANT_LATENCY",
    "SOFTMAX_ADDS_PER_ELEMENT",
    "SOFTMAX_ADDS_PER_ROW",
    "SOFTMAX_EXP_LATENCY",
    "SOFTMAX_MAX_LATENCY",
    "SOFTMAX_MULS_PER_ELEMENT",
    "SOFTMAX_NORM_LATENCY",
    "SOFTMAX_RECIP_LATENCY",
    "add_cycles",
    "beats",
    "concat_cycles",
    "gelu_cycles",
    "layernorm_cycles",
    "psum_accumulate_cycles",
    "softmax_cycles",
    "tree_depth",
]

#: One register stage.
_STAGE = 1

#: Beats to stream ``n`` elements through ``lanes`` lanes, ``B(n) = ceil(n / lanes)``:
#: ``beats(n, lanes)`` is :func:`edgetron.sim.units.gemm.cdiv` under the name the formulas use.
beats = cdiv

#: Dyadic requantization ``saturate(round_shift(acc * m, s))`` (golden
#: ``intops.requantize``): the vector units reuse ``rtl/requant.py:Requantizer``, whose
#: latency ``sim.units.gemm.REQUANT_LATENCY`` is asserted against the RTL.
REQUANT_LATENCY = SYSTOLIC_REQUANT_LATENCY

#: A radix-2 restoring divider spends one cycle loading its operands before producing
#: one quotient bit per cycle.
DIVIDER_SETUP = _STAGE

# ---- softmax (golden/softmax.py, steps 1-9) ------------------------------------------------
#: Max pass: per-lane running maximum register, then the tree over lanes (``+ T``).
SOFTMAX_MAX_LATENCY = _STAGE
#: Exp + sum pass: ``d = q - max`` (1), rescale and clamp ``u`` (1), ``z = (u * m_ln2) >>
#: s_ln2`` (multiplier, 1), ``r``/``t`` (1), ``L = t * t + q_c`` (multiplier, 1),
#: ``e = L >> (z + g)`` and store e in the row buffer (1), running sum register (1);
#: then the tree over lanes (``+ T``).
SOFTMAX_EXP_LATENCY = 7 * _STAGE
#: One reciprocal per row, ``factor = floor(2**k / sum)``: ``factor`` has ``EXP_BITS``
#: bits (golden ``SoftmaxConstants.factor_bits``), one per cycle.
SOFTMAX_RECIP_LATENCY = DIVIDER_SETUP + EXP_BITS
#: Normalize pass: read e (1), ``e * factor`` (multiplier, 1), round shift and clamp to
#: 127 (1).
SOFTMAX_NORM_LATENCY = 3 * _STAGE

# ---- GELU (golden/gelu.py, steps 1-7, then gelu_int8's requantization) --------------------
#: ``|q|`` and clamp (1), rescale ``u`` (1), ``w = (clip - u)**2`` (multiplier, 1), ``r = q_one
#: + sgn(q) (q_one - w)`` and truncation (1), ``q * rt`` (multiplier, 1), rounding shift
#: (1), then the dyadic requantization to int8.
GELU_LATENCY = 6 * _STAGE + REQUANT_LATENCY

# ---- LayerNorm (golden/layernorm.py, steps 1-9) --------------------------------------------
#: Statistics pass: ``x * x`` (multiplier, 1), running ``s1``/``s2`` registers (1); then the
#: tree over lanes (``+ T``).
LAYERNORM_STATS_LATENCY = 2 * _STAGE
#: Newton updates of the integer square root: the worst case for a ``ISQRT_BITS``-bit
#: operand (golden ``isqrt_iteration_bound``); the unit always runs that many so that its
#: timing does not depend on the data (the stop rule keeps the result exact).
ISQRT_UPDATES = isqrt_iteration_bound(ISQRT_BITS)
#: One Newton update: ``floor(n / x)`` with ``n < 2**ISQRT_BITS`` and ``x >= 2**(ISQRT_BITS
#: / 2 - 1)``, a quotient of ``ISQRT_BITS / 2 + 1`` bits, plus the add-and-halve (1).
ISQRT_UPDATE_LATENCY = DIVIDER_SETUP + ISQRT_BITS // 2 + 1 + _STAGE
#: ``factor = floor(2**RECIP_K / std)`` with ``std >= 2**(ISQRT_BITS/2 - 1)``: a quotient of
#: ``RECIP_K - ISQRT_BITS / 2 + 2`` bits (golden's factor width).
LAYERNORM_RECIP_LATENCY = DIVIDER_SETUP + RECIP_K - ISQRT_BITS // 2 + 2
#: Per-row scalar work between the passes: ``C * s2`` and ``s1**2`` (multipliers, 1), ``D``
#: (1), leading-zero count and normalizing shift (1), the square root, the reciprocal.
LAYERNORM_ROW_LATENCY = (
    3 * _STAGE + ISQRT_UPDATES * ISQRT_UPDATE_LATENCY + LAYERNORM_RECIP_LATENCY
)
#: Normalize pass: ``dev = C x - s1`` (1), ``dev * factor`` (multiplier, 1), rounding shift
#: (1), ``n * gamma + beta`` (multiplier and adder, 1), rounding shift and saturation (1).
LAYERNORM_NORM_LATENCY = 5 * _STAGE

# ---- residual add (golden/residual.py) -----------------------------------------------------
#: ``a * m_a`` and ``b * m_b`` (two multipliers, 1), sum (1), rounding shift, saturation and
#: the fused activation clamp (1).
ADD_LATENCY = 3 * _STAGE

# ---- concat ---------------------------------------------------------------------------------
#: A copy: read register (1), write register (1).
CONCAT_LATENCY = 2 * _STAGE


# ---- arithmetic per element (energy events, counted by the engine) -----------------------
#: Softmax: products ``u * m_ln2``, ``z * q_ln2``, ``t * t``, ``e * factor``.
SOFTMAX_MULS_PER_ELEMENT = 4
#: Softmax: ``q - max``, ``u - z q_ln2``, ``q_b - r``, ``t * t + q_c``, the running sum.
SOFTMAX_ADDS_PER_ELEMENT = 5
#: Softmax: one subtraction per quotient bit of the row reciprocal.
SOFTMAX_ADDS_PER_ROW = EXP_BITS
#: GELU: ``(clip - u)**2``, ``q * rt`` and the requantization product.
GELU_MULS_PER_ELEMENT = 3
#: GELU: ``clip - u``, ``q_one - w``, ``q_one + erf``.
GELU_ADDS_PER_ELEMENT = 3
#: LayerNorm: ``x * x``, ``C * x``, ``dev * factor``, ``n * gamma``.
LAYERNORM_MULS_PER_ELEMENT = 4
#: LayerNorm: the sums ``s1`` and ``s2``, ``C x - s1``, ``+ beta``.
LAYERNORM_ADDS_PER_ELEMENT = 4
#: LayerNorm: subtractions of the square root's divisions (with its add-and-halve) and
#: of the reciprocal, one per quotient bit.
LAYERNORM_ADDS_PER_ROW = (
    ISQRT_UPDATES * (ISQRT_BITS // 2 + 2) + RECIP_K - ISQRT_BITS // 2 + 2
)
#: Residual add: ``a * m_a`` and ``b * m_b``.
ADD_MULS_PER_ELEMENT = 2
#: Residual add: the sum.
ADD_ADDS_PER_ELEMENT = 1


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
def softmax_cycles(p, rows, cols):
    """Cycles of the softmax unit for ``rows`` rows of ``cols`` logits (three passes per row).

    Parameters
    ----------
    p : SimParams
    rows, cols : int
        Rows (all samples and heads) and row length.

    Returns
    -------
    int
        Cycles, first element in to last probability out.
    """
    t = tree_depth(p.vector_lanes)
    per_row = (
        3 * beats(cols, p.vector_lanes)
        + SOFTMAX_MAX_LATENCY + t
        + SOFTMAX_EXP_LATENCY + t
        + SOFTMAX_RECIP_LATENCY
        + SOFTMAX_NORM_LATENCY
    )
    return rows * per_row


@njit(cache=True)
def gelu_cycles(p, elements):
    """Cycles of the GELU unit for ``elements`` values (one pass)."""
    return beats(elements, p.vector_lanes) + GELU_LATENCY


@njit(cache=True)
def layernorm_cycles(p, rows, cols):
    """Cycles of the LayerNorm unit for ``rows`` rows of ``cols`` features (two passes per row)."""
    t = tree_depth(p.vector_lanes)
    per_row = (
        2 * beats(cols, p.vector_lanes)
        + LAYERNORM_STATS_LATENCY + t
        + LAYERNORM_ROW_LATENCY
        + LAYERNORM_NORM_LATENCY
    )
    return rows * per_row


@njit(cache=True)
def add_cycles(p, elements):
    """Cycles of the residual-add unit for ``elements`` output values (one pass)."""
    return beats(elements, p.vector_lanes) + ADD_LATENCY


@njit(cache=True)
def concat_cycles(p, elements):
    """Cycles to copy ``elements`` values through the vector unit."""
    return beats(elements, p.vector_lanes) + CONCAT_LATENCY


@njit(cache=True)
def psum_accumulate_cycles(p, elements, chunks):
    """Cycles to sum ``chunks`` int32 partial-sum tiles of ``elements`` values and requantize.

    Used when a GEMM's reduction length does not fit the GEMM unit's buffers and is split
    over several calls (``sim.memory``): the add unit streams every partial tile once.
    """
    return chunks * beats(elements, p.vector_lanes) + ADD_LATENCY + REQUANT_LATENCY
