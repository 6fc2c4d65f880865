"""The LayerNorm unit: cycles, events, row buffers and functional kernel (golden/layernorm.py).

Timing (:func:`layernorm_cycles`): the RTL unit's, ``edgetron.hw.layernorm.layernorm_cycles``
(``rtl/layernorm.py:LayerNormUnit``; docs/vector-units.md). Rows overlap: ``R`` rows of
``C`` channels on ``lanes`` lanes take::

    B + (R - 1) * P + row_latency,   B = ceil(C / lanes),  P = max(B, 9, 10),
    row_latency = B + T + 41,        T = ceil(log2(lanes))

Between the passes the unit does the per-row scalar work on sequential blocks: ``C * s2 -
s1**2``, the normalizing shift, the digit-recurrence square root (9 cycles) and the
radix-4 reciprocal (10 cycles), each pipelined across rows. It keeps the rows in a ring
carved from the ofmap buffer (:func:`edgetron.hw.layernorm.layernorm_buffer_words`) and the
per-channel ``gamma``/``beta`` in its own small parameter memory (outside the SRAM fields,
like the GEMM unit's); its input and output stream while it works. Rows longer than the
config's ``vector_row_max`` are refused (:func:`check_config`). The functional kernel
:func:`layernorm_rows` runs the statistics pass, the per-row square root and reciprocal
and the normalize-and-affine pass on golden's
:class:`~edgetron.golden.layernorm.LayerNormConstants`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import AcceleratorConfig, SimParams
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.golden.layernorm import (
    ISQRT_BITS,
    NORM_FRAC_BITS,
    RECIP_K,
    layernorm_constants,
    layernorm_int,
)
from edgetron.hw import layernorm as hw
from edgetron.workload import LayerNorm, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, deployed_scale, quant_array
from ..records import F_A_B, F_COLS, F_ELEMS, F_ROWS
from .pipeline import beats, divider_adds, round_shift, sqrt_adds

__all__ = [
    "LAYERNORM_ADDS_PER_ELEMENT",
    "LAYERNORM_MULS_PER_ELEMENT",
    "LAYERNORM_MULS_PER_ROW",
    "LAYERNORM_ROW_ADDS",
    "buffer_bytes",
    "buffer_text",
    "check_config",
    "int64_bounds",
    "layernorm_cycles",
    "layernorm_rows",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
    "work",
]

# ---- events and buffers (the datapath of rtl/layernorm.py) --------------------------------
#: ``x * x``, ``C * x``, ``dev * factor``, ``n * gamma``.
LAYERNORM_MULS_PER_ELEMENT = 4
#: The lane sums ``s1`` and ``s2``, ``C x - s1``, ``+ beta``.
LAYERNORM_ADDS_PER_ELEMENT = 4
#: ``C * s2`` and ``s1 * s1``.
LAYERNORM_MULS_PER_ROW = 2
#: ``D = C s2 - s1**2 + q_eps`` (2), the square root's trial subtractions and the
#: reciprocal's compare-subtracts. The two trees add ``2 (lanes - 1)`` per row.
LAYERNORM_ROW_ADDS = (2 + sqrt_adds(ISQRT_BITS)
                      + divider_adds(hw.LAYERNORM_FACTOR_BITS))

#: LayerNorm epsilon of the functional data (timm's ViT).
_LN_EPS = 1e-6
#: Largest |normalized value| used to set a LayerNorm output scale (|x - mean| / std).
_LN_RANGE = 4.0


@njit(cache=True)
def layernorm_cycles(p, rows, cols):
    """Cycles of the LayerNorm unit for ``rows`` rows of ``cols`` channels, rows overlapped:
    the RTL's ``edgetron.hw.layernorm.layernorm_cycles(p.vector_lanes, rows, cols)``."""
    return hw.layernorm_cycles(p.vector_lanes, rows, cols)


@njit(cache=True)
def buffer_bytes(p, cols, in_bytes):
    """Bytes of the x ring for rows of ``cols`` channels: ``x_words`` words of ``lanes``
    inputs of ``in_bytes`` bytes (the parameter memory is the unit's own)."""
    x_words = hw.layernorm_buffer_words(p.vector_lanes, cols)[0]
    return p.vector_lanes * x_words * in_bytes


@njit(cache=True)
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a LayerNorm op (flat record ``rec``).

    Its ring in the ofmap buffer, every beat written to it and read once; it streams
    (rows overlap).
    """
    rows = rec[F_ROWS]
    cols = rec[F_COLS]
    elems = rec[F_ELEMS]
    lanes = p.vector_lanes
    x_bytes = float(rows * beats(cols, lanes) * lanes * rec[F_A_B])
    adds = elems * LAYERNORM_ADDS_PER_ELEMENT + rows * (LAYERNORM_ROW_ADDS + 2 * (lanes - 1))
    muls = elems * LAYERNORM_MULS_PER_ELEMENT + rows * LAYERNORM_MULS_PER_ROW
    return VectorWork(layernorm_cycles(p, rows, cols), buffer_bytes(p, cols, rec[F_A_B]),
                      x_bytes, x_bytes, float(muls), float(adds))


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


def check_config(op: LayerNorm, cfg: AcceleratorConfig) -> str | None:
    """Why the config's LayerNorm unit cannot run ``op``: rows longer than
    ``vector_row_max``."""
    if op.cols > cfg.vector_row_max:
        return (f"LayerNorm rows of {op.cols} channels are longer than the LayerNorm unit's "
                f"vector_row_max {cfg.vector_row_max}")
    return None


def int64_bounds(op: LayerNorm, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles, buffer traffic and events are at most ``16*rows*(cols + 256) +
    1024*rows`` (a padded beat has at most 255 idle lanes; the parameters are read once
    per row)."""
    rows = op.batch * op.rows
    return (("its cycles and buffer traffic", "16*rows*(cols + 256) + 1024*rows",
             16 * rows * (op.cols + 256) + 1024 * rows),)


def buffer_text(op: LayerNorm) -> str:
    """What the unit keeps in the ofmap buffer, for the error of a row that cannot fit."""
    return f"the LayerNorm unit's ring for rows of {op.cols} {op.in_bits}-bit values"


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
