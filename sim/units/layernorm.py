"""The LayerNorm unit: cycles, events, row buffer and functional kernel (golden/layernorm.py).

Timing (:func:`layernorm_cycles`; ``B(n)``, ``T`` and the stage rules in
:mod:`edgetron.sim.units.pipeline`): two passes per row of ``n`` features, rows in
sequence::

    2 B(n) + LAYERNORM_STATS_LATENCY + T + LAYERNORM_ROW_LATENCY + LAYERNORM_NORM_LATENCY

Between the passes the unit does the per-row scalar work: ``C * s2 - s1**2``, the
normalizing shift, :data:`ISQRT_UPDATES` Newton updates of the integer square root (the
worst case, always, so that the timing does not depend on the data) and the reciprocal.
It keeps a row of inputs in the ofmap buffer. The functional kernel
:func:`layernorm_rows` runs the statistics pass, the per-row square root and reciprocal
and the normalize-and-affine pass on golden's
:class:`~edgetron.golden.layernorm.LayerNormConstants`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.golden.layernorm import (
    ISQRT_BITS,
    NORM_FRAC_BITS,
    RECIP_K,
    isqrt_iteration_bound,
    layernorm_constants,
    layernorm_int,
)
from edgetron.workload import LayerNorm, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, deployed_scale, quant_array
from ..records import F_A_B, F_COLS, F_ELEMS, F_ROWS
from .pipeline import DIVIDER_SETUP, STAGE, beats, round_shift, tree_depth

__all__ = [
    "ISQRT_UPDATES",
    "ISQRT_UPDATE_LATENCY",
    "LAYERNORM_ADDS_PER_ELEMENT",
    "LAYERNORM_ADDS_PER_ROW",
    "LAYERNORM_MULS_PER_ELEMENT",
    "LAYERNORM_NORM_LATENCY",
    "LAYERNORM_RECIP_LATENCY",
    "LAYERNORM_ROW_LATENCY",
    "LAYERNORM_STATS_LATENCY",
    "buffer_text",
    "int64_bounds",
    "layernorm_cycles",
    "layernorm_rows",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
    "work",
]

# ---- latencies (golden/layernorm.py, steps 1-9) --------------------------------------------
#: Statistics pass: ``x * x`` (multiplier, 1), running ``s1``/``s2`` registers (1); then the
#: tree over lanes (``+ T``).
LAYERNORM_STATS_LATENCY = 2 * STAGE
#: Newton updates of the integer square root: the worst case for a ``ISQRT_BITS``-bit
#: operand (golden ``isqrt_iteration_bound``); the unit always runs that many so that its
#: timing does not depend on the data (the stop rule keeps the result exact).
ISQRT_UPDATES = isqrt_iteration_bound(ISQRT_BITS)
#: One Newton update: ``floor(n / x)`` with ``n < 2**ISQRT_BITS`` and ``x >= 2**(ISQRT_BITS
#: / 2 - 1)``, a quotient of ``ISQRT_BITS / 2 + 1`` bits, plus the add-and-halve (1).
ISQRT_UPDATE_LATENCY = DIVIDER_SETUP + ISQRT_BITS // 2 + 1 + STAGE
#: ``factor = floor(2**RECIP_K / std)`` with ``std >= 2**(ISQRT_BITS/2 - 1)``: a quotient of
#: ``RECIP_K - ISQRT_BITS / 2 + 2`` bits (golden's factor width).
LAYERNORM_RECIP_LATENCY = DIVIDER_SETUP + RECIP_K - ISQRT_BITS // 2 + 2
#: Per-row scalar work between the passes: ``C * s2`` and ``s1**2`` (multipliers, 1), ``D``
#: (1), leading-zero count and normalizing shift (1), the square root, the reciprocal.
LAYERNORM_ROW_LATENCY = (
    3 * STAGE + ISQRT_UPDATES * ISQRT_UPDATE_LATENCY + LAYERNORM_RECIP_LATENCY
)
#: Normalize pass: ``dev = C x - s1`` (1), ``dev * factor`` (multiplier, 1), rounding shift
#: (1), ``n * gamma + beta`` (multiplier and adder, 1), rounding shift and saturation (1).
LAYERNORM_NORM_LATENCY = 5 * STAGE

# ---- events -------------------------------------------------------------------------------
#: ``x * x``, ``C * x``, ``dev * factor``, ``n * gamma``.
LAYERNORM_MULS_PER_ELEMENT = 4
#: The sums ``s1`` and ``s2``, ``C x - s1``, ``+ beta``.
LAYERNORM_ADDS_PER_ELEMENT = 4
#: Subtractions of the square root's divisions (with its add-and-halve) and of the
#: reciprocal, one per quotient bit.
LAYERNORM_ADDS_PER_ROW = (
    ISQRT_UPDATES * (ISQRT_BITS // 2 + 2) + RECIP_K - ISQRT_BITS // 2 + 2
)

#: LayerNorm epsilon of the functional data (timm's ViT).
_LN_EPS = 1e-6
#: Largest |normalized value| used to set a LayerNorm output scale (|x - mean| / std).
_LN_RANGE = 4.0


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
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a LayerNorm op (flat record ``rec``).

    A row of ``cols`` inputs in the buffer, written once and read once per row; the input
    streams during the statistics pass, the output during the normalization.
    """
    rows = rec[F_ROWS]
    cols = rec[F_COLS]
    elems = rec[F_ELEMS]
    need = cols * rec[F_A_B]
    passes = float(rows * beats(cols, p.vector_lanes))
    sram = float(rows * need)
    return VectorWork(layernorm_cycles(p, rows, cols), need, 0, passes, passes, sram, sram,
                      float(elems * LAYERNORM_MULS_PER_ELEMENT),
                      float(elems * LAYERNORM_ADDS_PER_ELEMENT + rows * LAYERNORM_ADDS_PER_ROW))


@njit(cache=True)
def _bit_length(v):
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@njit(cache=True)
def _isqrt(n):
    """``floor(sqrt(n))`` by golden's Newton iteration (golden ``layernorm.isqrt``)."""
    if n == 0:
        return 0
    x = np.int64(1) << ((_bit_length(n) + 1) // 2)
    while True:
        nxt = (x + n // x) >> 1
        if nxt >= x:
            return x
        x = nxt


@njit(cache=True)
def layernorm_rows(q, c, out):
    """LayerNorm of every row: statistics pass, per-row isqrt and reciprocal, normalize pass.

    Parameters
    ----------
    q : int64 array [rows, C]
        Inputs in the signed ``c.in_bits`` range.
    c : LayerNormConstants
        Golden's constants (:func:`edgetron.golden.layernorm.layernorm_constants`), as
        they are.
    out : int64 array [rows, C]
        Receives the int8 outputs.
    """
    rows, ch = q.shape
    for i in range(rows):
        s1 = 0
        s2 = 0
        for j in range(ch):  # pass 1: statistics
            s1 += q[i, j]
            s2 += q[i, j] * q[i, j]
        var = ch * s2 - s1 * s1 + c.q_eps  # per-row scalar work
        p = (ISQRT_BITS - _bit_length(var)) // 2
        var_n = var << (2 * p) if p >= 0 else var >> (-2 * p)
        std = _isqrt(var_n)
        factor = (np.int64(1) << RECIP_K) // std if std > 0 else 0
        for j in range(ch):  # pass 2: normalize and affine
            dev = ch * q[i, j] - s1
            norm = round_shift(dev * factor, RECIP_K - p - NORM_FRAC_BITS)
            acc = norm * c.gamma_int[j] + c.beta_int[j]
            out[i, j] = min(max(round_shift(acc, c.gamma_shift + NORM_FRAC_BITS), INT8_MIN),
                            INT8_MAX)


# ------------------------------------------------------------------------------------------
# The layernorm op kind: flat record, limits, buffer, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: LayerNorm, rec: list[int]) -> None:
    """``rows`` (every sample's) and ``cols`` in the flat record."""
    rec[F_ROWS], rec[F_COLS] = op.batch * op.rows, op.cols


def int64_bounds(op: LayerNorm, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles, buffer traffic and events are at most ``8*rows*cols + 256*rows``."""
    rows = op.batch * op.rows
    return (("its cycles and buffer traffic", "8*rows*cols + 256*rows",
             8 * rows * op.cols + 256 * rows),)


def buffer_text(op: LayerNorm) -> str:
    """What the unit keeps in the ofmap buffer, for the error of a row that cannot fit."""
    return f"a LayerNorm row of {op.cols} {op.in_bits}-bit values"


def prepare(op: LayerNorm, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """``gamma``, ``beta``, golden's constants and its output.

    Seeded: ``gamma ~ U(0.5, 1.5)``, ``beta ~ N(0, 0.2)`` (zero without ``bias``), the
    output scale covers ``4 max|gamma| + max|beta|``. Deployed (``q``): the model's gain,
    shift and epsilon, and the calibrated output scale.
    """
    if q is None:
        gamma = rng.uniform(0.5, 1.5, size=op.cols)
        beta = rng.normal(0.0, 0.2, size=op.cols) if op.bias else np.zeros(op.cols)
        out_scale = (np.abs(gamma).max() * _LN_RANGE + np.abs(beta).max()) / INT8_MAX
        eps = _LN_EPS
    else:
        gamma = quant_array(q, "gamma", (op.cols,))
        beta = quant_array(q, "bias", (op.cols,)) if op.bias else np.zeros(op.cols)
        out_scale = deployed_scale(q)
        eps = _LN_EPS if q.eps is None else float(q.eps)
    consts = layernorm_constants(gamma, beta, scales[0], out_scale, eps, op.in_bits)
    return OpData(ops_in, {"c": consts}, layernorm_int(ops_in[0], consts), out_scale)


def run(op: LayerNorm, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run :func:`layernorm_rows` on the op's rows: ``(output, 0 calls, True)``."""
    out = np.empty(op.out_shape, dtype=np.int64)
    layernorm_rows(d.operands[0].reshape(-1, op.cols), d.params["c"],
                   out.reshape(-1, op.cols))
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """Golden's temporaries: about twelve int64 arrays of the op's size."""
    return 12 * 8 * op.out_elements
