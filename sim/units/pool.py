"""The pool unit (``maxpool``, ``avgpool`` on the vector lanes): cycles, line buffer, kernel.

Pools run on the vector unit: ``lanes`` channels in parallel (NHWC keeps them adjacent),
one window element per beat, so an ``r x s`` window costs ``r*s`` beats per
``ceil(c / lanes)`` channel groups:
``ceil(c/lanes) * n * out_h * out_w * r * s + MAXPOOL_LATENCY`` (or ``AVGPOOL_LATENCY``,
which adds the dyadic requantization of the window sum). Vertically overlapping windows
(``stride_h < r`` and ``out_h > 1``) read input rows several times, so ``r`` rows are held in a
line buffer; non-overlapping ones (global average pooling included) only keep one output
row of running maxima or int32 sums (:func:`pool_line_buffer_bytes`).

The functional kernel :func:`pool_nhwc` takes the trace's four paddings as they are
(golden's ``maxpool2d`` / ``avgpool2d`` on NCHW, ``avgpool_constants`` for the average).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.conv import avgpool2d, avgpool_constants, maxpool2d
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw.gemm import REQUANT_LATENCY, element_bytes
from edgetron.workload import MaxPool, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, deployed_scale
from ..records import (
    F_A_B,
    F_CG,
    F_ELEMS,
    F_H,
    F_IMG,
    F_IN_BYTES,
    F_OH,
    F_OW,
    F_R,
    F_S,
    F_SH,
    F_W,
)
from .pipeline import beats, requantize

__all__ = [
    "AVGPOOL_LATENCY",
    "MAXPOOL_LATENCY",
    "avgpool_cycles",
    "avgpool_work",
    "buffer_text",
    "int64_bounds",
    "maxpool_cycles",
    "maxpool_work",
    "pool_keeps_input_rows",
    "pool_line_buffer_bytes",
    "pool_nhwc",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
]

#: Max pool: running maximum register per lane (1 stage), output register (1 stage).
MAXPOOL_LATENCY = 2
#: Average pool: running sum register per lane (1 stage), then the dyadic requantization.
AVGPOOL_LATENCY = 1 + REQUANT_LATENCY


@njit(cache=True)
def maxpool_cycles(p, n, out_h, out_w, c, r, s):
    """Cycles of a max pool on the vector unit: lanes over channels, one window element per beat."""
    return beats(c, p.vector_lanes) * n * out_h * out_w * r * s + MAXPOOL_LATENCY


@njit(cache=True)
def avgpool_cycles(p, n, out_h, out_w, c, r, s):
    """Cycles of an average pool: window sums over channels, then one requantization each."""
    return beats(c, p.vector_lanes) * n * out_h * out_w * r * s + AVGPOOL_LATENCY


@njit(cache=True)
def pool_keeps_input_rows(r, stride_h, out_h):
    """True when a pool's windows overlap vertically (``stride_h < r`` and ``out_h > 1``).

    Such a pool reads input rows several times and holds ``r`` of them in a line buffer.
    """
    return stride_h < r and out_h > 1


@njit(cache=True)
def pool_line_buffer_bytes(w, c, r, stride_h, out_h, out_w, in_bytes, acc_bytes):
    """Bytes of on-chip buffer a pool needs.

    Vertically overlapping windows (:func:`pool_keeps_input_rows`): ``r`` input rows of
    ``w * c`` elements. Otherwise one output row of running values, ``out_w * c`` of
    ``acc_bytes``.
    """
    if pool_keeps_input_rows(r, stride_h, out_h):
        return r * w * c * in_bytes
    return out_w * c * acc_bytes


@njit(cache=True)
def _pool_work(p, rec, cycles, muls):
    """A pool's :class:`~edgetron.sim.memory.VectorWork`: the input written into the line
    buffer once, every window element read from it, one addition or comparison each."""
    elems = rec[F_ELEMS]
    r, s = rec[F_R], rec[F_S]
    need = pool_line_buffer_bytes(rec[F_W], rec[F_CG], r, rec[F_SH], rec[F_OH], rec[F_OW],
                                  rec[F_A_B], element_bytes(p.acc_bits))
    return VectorWork(cycles, need, float(elems * r * s * rec[F_A_B]),
                      float(rec[F_IN_BYTES]), muls, float(elems * r * s))


@njit(cache=True)
def maxpool_work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a max pool (flat record ``rec``)."""
    cycles = maxpool_cycles(p, rec[F_IMG], rec[F_OH], rec[F_OW], rec[F_CG], rec[F_R], rec[F_S])
    return _pool_work(p, rec, cycles, 0.0)


@njit(cache=True)
def avgpool_work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of an average pool: one requantization
    product per output."""
    cycles = avgpool_cycles(p, rec[F_IMG], rec[F_OH], rec[F_OW], rec[F_CG], rec[F_R], rec[F_S])
    return _pool_work(p, rec, cycles, float(rec[F_ELEMS]))


@njit(cache=True)
def pool_nhwc(x, r, s, sh, sw, pt, pl, oh, ow, is_max, m, sq, out):
    """Max or average pool of an NHWC map, lanes over channels, one window element per beat.

    Padded positions never win a max (golden pads max pools with ``INT8_MIN``) and count
    as zeros in an average, whose window sum is requantized by ``(m, sq)``.
    """
    n, h, w, c = x.shape
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    acc = INT8_MIN if is_max else 0
                    for ry in range(r):
                        y = oy * sh + ry - pt
                        if y < 0 or y >= h:
                            continue
                        for sx in range(s):
                            xx = ox * sw + sx - pl
                            if xx < 0 or xx >= w:
                                continue
                            v = x[b, y, xx, ch]
                            if is_max:
                                acc = max(acc, v)
                            else:
                                acc += v
                    if not is_max:
                        acc = requantize(acc, m, sq, INT8_MIN, INT8_MAX)
                    out[b, oy, ox, ch] = acc


# ------------------------------------------------------------------------------------------
# The maxpool and avgpool op kinds: flat record, limits, buffer, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Op, rec: list[int]) -> None:
    """The pool's geometry: ``img, h, w, cg`` (channels), ``out_h, out_w, r, s, stride_h``."""
    rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG] = op.n, op.h, op.w, op.c
    rec[F_OH], rec[F_OW], rec[F_R], rec[F_S] = op.out_h, op.out_w, op.r, op.s
    rec[F_SH] = op.stride_h


def int64_bounds(op: Op, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles and window reads are at most ``8*n*out_h*out_w*c*r*s``, its line buffer
    ``8*r*w*c`` bytes."""
    return (("its cycles and window reads", "8*n*out_h*out_w*c*r*s",
             8 * op.out_elements * op.r * op.s),
            ("its line buffer bytes", "8*r*w*c", 8 * op.r * op.w * op.c))


def buffer_text(op: Op) -> str:
    """What the pool keeps in the ofmap buffer, for the error of a buffer that cannot fit."""
    if pool_keeps_input_rows(op.r, op.stride_h, op.out_h):
        return f"the {op.r}-row line buffer of the pool ({op.r} x {op.w} x {op.c} values)"
    return f"the running values of one output row of the pool ({op.out_w} x {op.c})"


def prepare(op: Op, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """Golden's pool of the NHWC input, and its output: the average at the input scale, or
    at a deployed model's calibrated output scale (``q``)."""
    xn = ops_in[0].transpose(0, 3, 1, 2)
    pad = (op.pad_top, op.pad_bottom, op.pad_left, op.pad_right)
    stride = (op.stride_h, op.stride_w)
    if isinstance(op, MaxPool):
        y = maxpool2d(xn, (op.r, op.s), stride, pad)
        return OpData(ops_in, {"m": 0, "s": 1}, y.transpose(0, 2, 3, 1), scales[0])
    out_scale = scales[0] if q is None else deployed_scale(q)
    m, s = (avgpool_constants(op.r * op.s) if q is None
            else avgpool_constants(op.r * op.s, scales[0], out_scale))
    y = avgpool2d(xn, (op.r, op.s), stride, pad, m, s)
    return OpData(ops_in, {"m": m, "s": s}, y.transpose(0, 2, 3, 1), out_scale)


def run(op: Op, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run :func:`pool_nhwc`: ``(output, 0 calls, True)``."""
    out = np.empty(op.out_shape, dtype=np.int64)
    pool_nhwc(d.operands[0], op.r, op.s, op.stride_h, op.stride_w, op.pad_top, op.pad_left,
              op.out_h, op.out_w, isinstance(op, MaxPool), d.params["m"], d.params["s"], out)
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """Golden's padded copy of the input and its window reductions: about four int64 arrays
    of the input's size."""
    return 4 * 8 * sum(op.in_elements)
