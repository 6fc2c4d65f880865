"""The LayerNorm unit's numbers: pipelines, buffer words and the cycle function.

``rtl/layernorm.py:LayerNormUnit`` streams each row of ``C`` channels in once and out once:

1. *ingest*: the row's ``B = ceil(C / lanes)`` beats are written to the x ring buffer while
   per-lane ``sum(x)`` and ``sum(x**2)`` accumulate (``LAYERNORM_INGEST_STAGES``); two
   adder trees of ``T = ceil(log2(lanes))`` levels give the row sums;
2. *row scalars*: ``C * s2`` and ``s1**2``, ``D = C s2 - s1**2 + q_eps``, the leading-one
   position and the even normalizing shift (``LAYERNORM_ROW_STAGES``); the digit-recurrence
   square root (``LAYERNORM_ISQRT_LATENCY``); the radix-4 reciprocal
   ``floor(2**31 / std)`` (``LAYERNORM_RECIP_LATENCY``);
3. *normalize pass*: ``x`` is read back with the per-channel ``gamma``, ``beta``
   (``LAYERNORM_NORM_STAGES``; the last stage is the output register).

Rows overlap: the ingest of row ``r + 1`` starts ``P = max(B, LAYERNORM_ISQRT_LATENCY,
LAYERNORM_RECIP_LATENCY)`` cycles after that of row ``r``; the square root and the divider
are separate blocks, each busy at most ``P`` cycles per row, so the per-row scalar work of
one row overlaps the passes of its neighbours. With the input valid on every cycle and the
output always ready, from the first input handshake to the last output handshake::

    cycles(R, C) = B + (R - 1) * P + layernorm_row_latency(lanes, C)

The x ring holds ``Bmax + T + Ni + Nr + LAYERNORM_ISQRT_LATENCY + LAYERNORM_RECIP_LATENCY``
words (``Ni``, ``Nr`` the ingest and row-scalar stage counts, 2 and 6): beat ``j`` is read
``X + j`` cycles after the row's last input beat (``X = T + Ni + Nr + 1 +
LAYERNORM_ISQRT_LATENCY + LAYERNORM_RECIP_LATENCY``) and the word ``W`` beats later is
written no earlier than ``1 + j + W - B`` cycles after it (the argument of
``edgetron.hw.softmax``); the parameter memory holds ``Bmax`` words of ``lanes`` channels.
"""

from __future__ import annotations

from numba import njit

from edgetron.golden.layernorm import GAMMA_BITS, ISQRT_BITS, NORM_FRAC_BITS, RECIP_K

from .arith import beats, divider_latency, sqrt_latency, tree_depth

__all__ = [
    "LAYERNORM_BETA_BITS",
    "LAYERNORM_FACTOR_BITS",
    "LAYERNORM_INGEST_STAGES",
    "LAYERNORM_ISQRT_LATENCY",
    "LAYERNORM_NORM_STAGES",
    "LAYERNORM_RECIP_LATENCY",
    "LAYERNORM_ROW_STAGES",
    "layernorm_buffer_words",
    "layernorm_cycles",
    "layernorm_out_fifo_beats",
    "layernorm_period",
    "layernorm_row_latency",
]

#: Ingest: ``x`` (masked) and ``x * x`` registered, then the per-lane sums.
LAYERNORM_INGEST_STAGES = ("square", "lane_stats")
#: Row scalars before the square root (golden/layernorm.py steps 3-4): the partial
#: products of ``C * s2`` and ``s1 * s1`` (one multiplier block each); their sums and
#: ``q_eps - s1**2``; ``D``; ``h = floor(msb(D) / 2)`` from a priority encoder over bit
#: pairs (groups of four pairs, then the groups); ``Dn = (D << 30) >> 2h``, the shift to
#: ``[2**30, 2**32)``.
LAYERNORM_ROW_STAGES = ("var_mul", "var_sum", "var", "lzc", "msb", "normalize")
#: ``std = floor(sqrt(Dn))`` of the ``ISQRT_BITS``-bit normalized variance (step 5).
LAYERNORM_ISQRT_LATENCY = sqrt_latency(ISQRT_BITS)
#: Width of ``factor = floor(2**RECIP_K / std)`` with ``std >= 2**(ISQRT_BITS/2 - 1)``.
LAYERNORM_FACTOR_BITS = RECIP_K - ISQRT_BITS // 2 + 2
#: The row reciprocal (step 6).
LAYERNORM_RECIP_LATENCY = divider_latency(LAYERNORM_FACTOR_BITS)
#: Normalize pass: issue register, x-buffer read, its read data's register, ``C x`` and
#: ``dev = C x - s1`` (2), the partial products of ``dev * factor`` and their sum (7), the
#: rounding shift's ``t = prod >> (s - 1)`` in two (by a multiple of 8, then by 0..7) with
#: gamma and beta registered from their memory and copied, ``(t >> 1) * gamma`` beside
#: ``beta + t[0] gamma`` (so ``n = (t + 1) >> 1`` is never formed) and their sum (8), the
#: output's ``t = acc >> (gamma_shift + 11)`` and its rounding and saturation into the
#: output register (9), then the output FIFO (``layernorm_out_fifo_beats``) and the skid
#: buffer's register after its read. Every product goes straight into its own register;
#: no stage has a multiplier and an adder in series, or a block RAM's read data and a
#: multiplier (FPGA timing, docs/fpga.md).
LAYERNORM_NORM_STAGES = ("issue", "read", "read_out", "dev_mul", "dev", "scale", "scale_sum",
                         "coarse", "shift", "affine_mul", "affine", "out_shift", "out",
                         "out_fifo", "out_skid")
#: Width of ``beta_int`` in the parameter memory: golden keeps ``|beta_int| <
#: 2**(2 (GAMMA_BITS - 1) + NORM_FRAC_BITS)``. A parameter word holds ``lanes`` channels of
#: ``GAMMA_BITS + LAYERNORM_BETA_BITS`` bits.
LAYERNORM_BETA_BITS = 2 * (GAMMA_BITS - 1) + NORM_FRAC_BITS + 1
_INGEST = len(LAYERNORM_INGEST_STAGES)
_ROW = len(LAYERNORM_ROW_STAGES)
_NORM = len(LAYERNORM_NORM_STAGES)


@njit(cache=True)
def layernorm_period(lanes, channels):
    """Cycles between the ingests of consecutive rows of ``channels`` values at full rate."""
    return max(beats(channels, lanes), LAYERNORM_ISQRT_LATENCY, LAYERNORM_RECIP_LATENCY)


@njit(cache=True)
def layernorm_row_latency(lanes, channels):
    """Cycles from a row's last input handshake to its last output beat."""
    b = beats(channels, lanes)
    return (_INGEST + tree_depth(lanes) + _ROW + LAYERNORM_ISQRT_LATENCY
            + LAYERNORM_RECIP_LATENCY + _NORM + b - 1)


@njit(cache=True)
def layernorm_cycles(lanes, rows, channels):
    """Cycles of ``LayerNormUnit`` for ``rows >= 1`` rows of ``channels`` values."""
    return (beats(channels, lanes) + (rows - 1) * layernorm_period(lanes, channels)
            + layernorm_row_latency(lanes, channels))


@njit(cache=True)
def layernorm_buffer_words(lanes, row_max):
    """Words of the x ring buffer and of the gamma/beta memory: ``(x_words, param_words)``."""
    bmax = beats(row_max, lanes)
    t = tree_depth(lanes)
    return bmax + t + _INGEST + _ROW + LAYERNORM_ISQRT_LATENCY + LAYERNORM_RECIP_LATENCY, bmax


@njit(cache=True)
def layernorm_out_fifo_beats(lanes, row_max):
    """Beats of the output FIFO. The unit never stalls: it takes an ``i`` beat only
    against a credit of this FIFO (given back the cycle after that beat's ``o``
    handshake), so ``o.ready`` reaches nothing but the FIFO's read side and the credit
    count. At full rate a beat reaches ``o`` ``L = layernorm_row_latency`` cycles after its
    ``i`` handshake, so at most ``L`` credits are out when the next beat comes: ``L + 1``
    beats (``L`` of the longest row) keep every run with ``o.ready`` high at the timing
    model's cycles."""
    return layernorm_row_latency(lanes, row_max) + 1
