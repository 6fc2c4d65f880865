"""The softmax unit: cycles, events, row buffers and functional kernel (golden/softmax.py).

Timing (:func:`softmax_cycles`): the RTL unit's, ``edgetron.hw.softmax.softmax_cycles``
(``rtl/softmax.py:SoftmaxUnit``; docs/vector-units.md). Rows overlap: ``R`` rows of ``n``
logits on ``lanes`` lanes take::

    B + (R - 1) * P + row_latency,   B = ceil(n / lanes),  P = max(B, 9),
    row_latency = 2 B + 3 T + F,     T = ceil(log2(lanes)),
    F = ingest + exp-pass stages + 9 (divider) + normalize stages - 2

(the max tree takes two cycles per level, the sum tree one).

The unit keeps the rows between their passes in two rings carved from the ofmap buffer
(:func:`edgetron.hw.softmax.softmax_buffer_words`): the logits, and their
:data:`SOFTMAX_EXP_BYTES`-byte exponentials. Its input and output stream while it works
(rows overlap), so the DMA overlaps both with it. Rows longer than the config's
``vector_row_max`` are refused (:func:`check_config`). The functional kernel
:func:`softmax_rows` runs the three passes (max; i-exp and the row sum; one reciprocal and
the normalization) on golden's :class:`~edgetron.golden.softmax.SoftmaxConstants`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import AcceleratorConfig, SimParams
from edgetron.golden.softmax import EXP_BITS, OUT_MAX, softmax_apply, softmax_constants
from edgetron.hw import softmax as hw
from edgetron.hw.gemm import element_bytes
from edgetron.workload import Op, Softmax

from ..memory import VectorWork
from ..opdata import OpData, OpQuant
from ..records import F_A_B, F_COLS, F_ELEMS, F_ROWS
from .pipeline import beats, divider_adds, pow2_rescale, round_shift

__all__ = [
    "SOFTMAX_ADDS_PER_ELEMENT",
    "SOFTMAX_EXP_BYTES",
    "SOFTMAX_MULS_PER_ELEMENT",
    "SOFTMAX_RECIP_ADDS",
    "buffer_text",
    "check_config",
    "int64_bounds",
    "prepare",
    "record",
    "ring_bytes",
    "run",
    "scratch_bytes",
    "softmax_cycles",
    "softmax_rows",
    "work",
]

# ---- events and buffer (the datapath of rtl/softmax.py) -----------------------------------
#: Products ``u * m_ln2``, ``z * q_ln2``, ``t * t``, ``e * factor``.
SOFTMAX_MULS_PER_ELEMENT = 4
#: The lane maximum, ``max - q``, ``u - z q_ln2``, ``q_b - r``, ``t * t + q_c``, the lane sum.
SOFTMAX_ADDS_PER_ELEMENT = 6
#: The row reciprocal ``floor(2**k / sum)``: ``EXP_BITS`` quotient bits on the radix-4
#: divider. The max and sum trees add ``2 (lanes - 1)`` per row.
SOFTMAX_RECIP_ADDS = divider_adds(EXP_BITS)
#: Bytes of one exponential ``e`` the unit keeps between its second and third pass.
SOFTMAX_EXP_BYTES = element_bytes.py_func(EXP_BITS)


@njit(cache=True)
def softmax_cycles(p, rows, cols):
    """Cycles of the softmax unit for ``rows`` rows of ``cols`` logits, rows overlapped.

    Parameters
    ----------
    p : SimParams
    rows, cols : int
        Rows (all samples and heads) and row length.

    Returns
    -------
    int
        Cycles, first logit in to last probability out: the RTL's
        ``edgetron.hw.softmax.softmax_cycles(p.vector_lanes, rows, cols)``.
    """
    return hw.softmax_cycles(p.vector_lanes, rows, cols)


@njit(cache=True)
def ring_bytes(p, cols, in_bytes):
    """Bytes of the unit's two rings for rows of ``cols`` logits of ``in_bytes`` bytes:
    ``q_words`` words of ``lanes`` logits and ``e_words`` of ``lanes`` exponentials."""
    q_words, e_words = hw.softmax_buffer_words(p.vector_lanes, cols)
    return p.vector_lanes * (q_words * in_bytes + e_words * SOFTMAX_EXP_BYTES)


@njit(cache=True)
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a softmax op (flat record ``rec``).

    Its rings in the ofmap buffer; every beat of logits and of exponentials written once
    and read once; it streams (rows overlap).
    """
    rows = rec[F_ROWS]
    cols = rec[F_COLS]
    elems = rec[F_ELEMS]
    lanes = p.vector_lanes
    words = float(rows * beats(cols, lanes))
    sram = words * lanes * (rec[F_A_B] + SOFTMAX_EXP_BYTES)
    adds = (elems * SOFTMAX_ADDS_PER_ELEMENT
            + rows * (SOFTMAX_RECIP_ADDS + 2 * (lanes - 1)))
    return VectorWork(softmax_cycles(p, rows, cols), ring_bytes(p, cols, rec[F_A_B]),
                      sram, sram, float(elems * SOFTMAX_MULS_PER_ELEMENT),
                      float(adds))


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


def check_config(op: Softmax, cfg: AcceleratorConfig) -> str | None:
    """Why the config's softmax unit cannot run ``op``: rows longer than ``vector_row_max``."""
    if op.cols > cfg.vector_row_max:
        return (f"softmax rows of {op.cols} logits are longer than the softmax unit's "
                f"vector_row_max {cfg.vector_row_max}")
    return None


def int64_bounds(op: Softmax, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles, ring traffic and events are at most ``8*rows*(cols + 256) + 1024*rows``
    (a padded beat has at most 255 idle lanes)."""
    rows = op.batch * op.rows
    return (("its cycles and buffer traffic", "8*rows*(cols + 256) + 1024*rows",
             8 * rows * (op.cols + 256) + 1024 * rows),)


def buffer_text(op: Softmax) -> str:
    """What the unit keeps in the ofmap buffer, for the error of a row that cannot fit."""
    return (f"the softmax unit's rings for rows of {op.cols} {op.in_bits}-bit logits and their "
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
