"""The softmax unit: cycles, events, row buffer and functional kernel (golden/softmax.py).

Timing (:func:`softmax_cycles`; ``B(n)``, ``T`` and the stage rules in
:mod:`edgetron.sim.units.pipeline`): three passes per row of ``n`` logits, rows in
sequence::

    3 B(n) + SOFTMAX_MAX_LATENCY + T + SOFTMAX_EXP_LATENCY + T + SOFTMAX_RECIP_LATENCY
      + SOFTMAX_NORM_LATENCY

The unit keeps a row of logits and their :data:`SOFTMAX_EXP_BYTES`-byte exponentials in
the ofmap buffer between its passes. The functional kernel :func:`softmax_rows` runs the
three passes (max; i-exp and the row sum; one reciprocal and the normalization) on
golden's :class:`~edgetron.golden.softmax.SoftmaxConstants`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.softmax import EXP_BITS, OUT_MAX, softmax_apply, softmax_constants
from edgetron.hw.gemm import element_bytes
from edgetron.workload import Op, Softmax

from ..memory import VectorWork
from ..opdata import OpData, OpQuant
from ..records import F_A_B, F_COLS, F_ELEMS, F_ROWS
from .pipeline import DIVIDER_SETUP, STAGE, beats, pow2_rescale, round_shift, tree_depth

__all__ = [
    "SOFTMAX_ADDS_PER_ELEMENT",
    "SOFTMAX_ADDS_PER_ROW",
    "SOFTMAX_EXP_BYTES",
    "SOFTMAX_EXP_LATENCY",
    "SOFTMAX_MAX_LATENCY",
    "SOFTMAX_MULS_PER_ELEMENT",
    "SOFTMAX_NORM_LATENCY",
    "SOFTMAX_RECIP_LATENCY",
    "buffer_text",
    "int64_bounds",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
    "softmax_cycles",
    "softmax_rows",
    "work",
]

# ---- latencies (golden/softmax.py, steps 1-9) ----------------------------------------------
#: Max pass: per-lane running maximum register, then the tree over lanes (``+ T``).
SOFTMAX_MAX_LATENCY = STAGE
#: Exp + sum pass: ``d = q - max`` (1), rescale and clamp ``u`` (1), ``z = (u * m_ln2) >>
#: s_ln2`` (multiplier, 1), ``r``/``t`` (1), ``L = t * t + q_c`` (multiplier, 1),
#: ``e = L >> (z + g)`` and store e in the row buffer (1), running sum register (1);
#: then the tree over lanes (``+ T``).
SOFTMAX_EXP_LATENCY = 7 * STAGE
#: One reciprocal per row, ``factor = floor(2**k / sum)``: ``factor`` has ``EXP_BITS``
#: bits (golden ``SoftmaxConstants.factor_bits``), one per cycle.
SOFTMAX_RECIP_LATENCY = DIVIDER_SETUP + EXP_BITS
#: Normalize pass: read e (1), ``e * factor`` (multiplier, 1), round shift and clamp to
#: 127 (1).
SOFTMAX_NORM_LATENCY = 3 * STAGE

# ---- events and buffer ------------------------------------------------------------------
#: Products ``u * m_ln2``, ``z * q_ln2``, ``t * t``, ``e * factor``.
SOFTMAX_MULS_PER_ELEMENT = 4
#: ``q - max``, ``u - z q_ln2``, ``q_b - r``, ``t * t + q_c``, the running sum.
SOFTMAX_ADDS_PER_ELEMENT = 5
#: One subtraction per quotient bit of the row reciprocal.
SOFTMAX_ADDS_PER_ROW = EXP_BITS
#: Bytes of one exponential ``e`` the unit keeps between its second and third pass.
SOFTMAX_EXP_BYTES = element_bytes.py_func(EXP_BITS)


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
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a softmax op (flat record ``rec``).

    A row of ``cols`` logits and exponentials in the buffer, written once and read once
    per row; the input streams during the max pass, the output during the normalization.
    """
    rows = rec[F_ROWS]
    cols = rec[F_COLS]
    elems = rec[F_ELEMS]
    need = cols * (rec[F_A_B] + SOFTMAX_EXP_BYTES)
    passes = float(rows * beats(cols, p.vector_lanes))
    sram = float(rows * need)
    return VectorWork(softmax_cycles(p, rows, cols), need, 0, passes, passes, sram, sram,
                      float(elems * SOFTMAX_MULS_PER_ELEMENT),
                      float(elems * SOFTMAX_ADDS_PER_ELEMENT + rows * SOFTMAX_ADDS_PER_ROW))


@njit(cache=True)
def softmax_rows(q, c, out):
    """Softmax of every row of ``q`` in the unit's three passes (golden/softmax.py steps).

    Parameters
    ----------
    q : int64 array [rows, n]
        Logits in the int32 range.
    c : SoftmaxConstants
        Golden's constants (:func:`edgetron.golden.softmax.softmax_constants`), as they are.
    out : int64 array [rows, n]
        Receives the probabilities, int8 values in ``[0, 127]``.
    """
    ce = c.iexp
    rows, n = q.shape
    e = np.empty(n, dtype=np.int64)
    for i in range(rows):
        mx = q[i, 0]
        for j in range(1, n):  # pass 1: row maximum
            if q[i, j] > mx:
                mx = q[i, j]
        total = 0
        for j in range(n):  # pass 2: i-exp and the row sum
            u = min(pow2_rescale(min(mx - q[i, j], ce.clamp_in), ce.pre_shift), ce.u_max)
            z = (u * ce.m_ln2) >> ce.s_ln2
            t = ce.q_b - (u - z * ce.q_ln2)
            e[j] = (t * t + ce.q_c) >> (min(z, c.z_cap) + c.exp_shift)
            total += e[j]
        factor = (np.int64(1) << c.k) // total  # one reciprocal per row
        for j in range(n):  # pass 3: normalize
            out[i, j] = min(round_shift(e[j] * factor, c.out_shift), OUT_MAX)


# ------------------------------------------------------------------------------------------
# The softmax op kind: flat record, limits, buffer, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Softmax, rec: list[int]) -> None:
    """``rows`` (every sample's) and ``cols`` in the flat record."""
    rec[F_ROWS], rec[F_COLS] = op.batch * op.rows, op.cols


def int64_bounds(op: Softmax, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles and row-buffer traffic are at most ``8*rows*cols + 64*rows``."""
    rows = op.batch * op.rows
    return (("its cycles and buffer traffic", "8*rows*cols + 64*rows",
             8 * rows * op.cols + 64 * rows),)


def buffer_text(op: Softmax) -> str:
    """What the unit keeps in the ofmap buffer, for the error of a row that cannot fit."""
    return (f"a softmax row of {op.cols} {op.in_bits}-bit logits and their "
            f"{SOFTMAX_EXP_BYTES}-byte exponentials")


def prepare(op: Softmax, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """Golden's constants for the input scale, and its output (the same for a deployed
    model: the input scale fixes every constant, the output scale is 2^-7)."""
    consts = softmax_constants(scales[0])
    return OpData(ops_in, {"c": consts}, softmax_apply(ops_in[0], consts), consts.out_scale)


def run(op: Softmax, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run :func:`softmax_rows` on the op's rows: ``(output, 0 calls, True)``."""
    out = np.empty(op.out_shape, dtype=np.int64)
    softmax_rows(d.operands[0].reshape(-1, op.cols), d.params["c"], out.reshape(-1, op.cols))
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """Golden's temporaries: about twelve int64 arrays of the op's size."""
    return 12 * 8 * op.out_elements
