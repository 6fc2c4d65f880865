"""The concat op: a copy through the vector unit (cycles and kernel).

Timing: ``B(n) + CONCAT_LATENCY`` for ``n`` output elements (``B(n)`` in
:mod:`edgetron.sim.units.pipeline`). The constant rows and the row offsets are address
arithmetic of the DMA; the functional kernel :func:`copy_rows` places each input's rows
after the learned constant rows (ViT's class token).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.workload import Concat, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, deployed_const, int8_values
from ..records import F_ELEMS
from .pipeline import STAGE, beats

__all__ = [
    "CONCAT_LATENCY",
    "concat_cycles",
    "copy_rows",
    "int64_bounds",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
    "work",
]

#: A copy: read register (1), write register (1).
CONCAT_LATENCY = 2 * STAGE


@njit(cache=True)
def concat_cycles(p, elements):
    """Cycles to copy ``elements`` values through the vector unit."""
    return beats(elements, p.vector_lanes) + CONCAT_LATENCY


@njit(cache=True)
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a concat: it streams, no arithmetic."""
    return VectorWork(concat_cycles(p, rec[F_ELEMS]), 0, 0.0, 0.0, 0.0, 0.0)


@njit(cache=True)
def copy_rows(src, dst, row0):
    """Copy ``src`` [batch, rows, cols] into ``dst`` rows ``row0 ..`` (the concat unit)."""
    bsz, rows, cols = src.shape
    for b in range(bsz):
        for i in range(rows):
            for j in range(cols):
                dst[b, row0 + i, j] = src[b, i, j]


# ------------------------------------------------------------------------------------------
# The concat op kind: flat record, limits, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Concat, rec: list[int]) -> None:
    """No fields beyond the common ones (the output elements)."""


def int64_bounds(op: Concat, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles are at most ``elements + 2``."""
    return (("its cycles", "elements + 2", op.out_elements + CONCAT_LATENCY),)


def prepare(op: Concat, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """The int8 constant rows -- seeded, or a deployed model's real rows quantized at the
    input scale (``q``) -- and golden's NumPy concatenation (same scale out)."""
    if q is None:
        const = int8_values(rng, (op.const_rows, op.cols))
    elif len(set(scales)) > 1:
        raise ValueError(f"a concat moves values: its inputs must share one scale, got "
                         f"{', '.join(f'{v:.6g}' for v in scales)}")
    elif op.const_rows:
        const = deployed_const(q, (op.const_rows, op.cols), scales[0])
    else:
        const = np.zeros((0, op.cols), dtype=np.int64)
    parts = [np.broadcast_to(const, (op.batch, op.const_rows, op.cols))]
    parts += [v.reshape(op.batch, -1, op.cols) for v in ops_in]
    return OpData(ops_in, {"const": const}, np.concatenate(parts, axis=1), scales[0])


def run(op: Concat, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """The constant rows, then each input's rows, through :func:`copy_rows`."""
    out = np.empty(op.out_shape, dtype=np.int64)
    const = np.ascontiguousarray(
        np.broadcast_to(d.params["const"], (op.batch, op.const_rows, op.cols)))
    copy_rows(const, out, 0)
    row0 = op.const_rows
    for v in d.operands:
        src = np.ascontiguousarray(v.reshape(op.batch, -1, op.cols))
        copy_rows(src, out, row0)
        row0 += src.shape[1]
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """The golden concatenation's parts and the run's copies: two int64 arrays of the output."""
    return 2 * 8 * op.out_elements
