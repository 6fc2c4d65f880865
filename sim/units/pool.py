"""The pool unit (``maxpool``, ``avgpool`` on ``rtl/pool.py:PoolUnit``): cycles, buffer, kernel.

The unit streams the NHWC map in once, ``lanes`` channels per beat, and visits one grid
position per cycle: every input pixel and the bottom and right padding where a window ends
(:mod:`edgetron.hw.pool`). For ``n`` images of ``h x w x c`` pooled to ``out_h x out_w``::

    cycles = ((n - 1) * hi * wi + yl * wi + xl + 1) * ceil(c / lanes) + POOL_LATENCY

(:func:`edgetron.hw.pool.pool_cycles`, measured equal to the RTL's by tests/rtl/test_pool.py
and the cocotb testbench); a global average pool costs ``n * h * w * ceil(c / lanes) +
POOL_LATENCY``. The unit keeps two grid rows in a line buffer in the ofmap buffer
(:func:`edgetron.hw.pool.pool_line_buffer_bytes`), one word read and one written per grid
position.

The functional kernel :func:`pool_nhwc` takes the trace's four paddings as they are
(golden's ``maxpool2d`` / ``avgpool2d`` on NCHW, ``avgpool_constants`` for the average).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.conv import avgpool2d, avgpool_constants, maxpool2d
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw.pool import pool_cycles, pool_grid, pool_line_buffer_bytes
from edgetron.workload import MaxPool, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, deployed_scale
from ..records import (
    F_CG,
    F_ELEMS,
    F_H,
    F_IMG,
    F_OH,
    F_OW,
    F_PL,
    F_PT,
    F_R,
    F_S,
    F_SH,
    F_SW,
    F_W,
)
from .pipeline import requantize

__all__ = [
    "avgpool_work",
    "buffer_text",
    "int64_bounds",
    "maxpool_work",
    "pool_nhwc",
    "pool_op_cycles",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
]


@njit(cache=True)
def pool_op_cycles(p, rec):
    """Cycles of a pool (flat record ``rec``): :func:`edgetron.hw.pool.pool_cycles`."""
    return pool_cycles(p.vector_lanes, rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG], rec[F_OH],
                       rec[F_OW], rec[F_R], rec[F_S], rec[F_SH], rec[F_SW], rec[F_PT],
                       rec[F_PL])


@njit(cache=True)
def _pool_work(p, rec, cycles, muls):
    """A pool's :class:`~edgetron.sim.memory.VectorWork`: the line buffer of two grid rows
    (:func:`edgetron.hw.pool.pool_line_buffer_bytes`; none for a global pool) in the ofmap
    buffer, one word read and one written per grid position (``hi * need`` bytes per image
    each way), one addition or comparison per window element."""
    elems = rec[F_ELEMS]
    r, s, lanes, c = rec[F_R], rec[F_S], p.vector_lanes, rec[F_CG]
    hi, wi, _, _ = pool_grid(rec[F_H], rec[F_W], rec[F_OH], rec[F_OW], r, s, rec[F_SH],
                             rec[F_SW], rec[F_PT], rec[F_PL])
    need = pool_line_buffer_bytes(lanes, wi, c, r, s)
    words = float(rec[F_IMG] * hi * need)
    return VectorWork(cycles, need, words, words, muls, float(elems * r * s))


@njit(cache=True)
def maxpool_work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a max pool (flat record ``rec``)."""
    return _pool_work(p, rec, pool_op_cycles(p, rec), 0.0)


@njit(cache=True)
def avgpool_work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of an average pool: one requantization
    product per output."""
    return _pool_work(p, rec, pool_op_cycles(p, rec), float(rec[F_ELEMS]))


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
    """The pool's geometry: ``img, h, w, cg`` (channels), ``out_h, out_w, r, s``, the
    strides and the top and left padding."""
    rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG] = op.n, op.h, op.w, op.c
    rec[F_OH], rec[F_OW], rec[F_R], rec[F_S] = op.out_h, op.out_w, op.r, op.s
    rec[F_SH], rec[F_SW], rec[F_PT], rec[F_PL] = op.stride_h, op.stride_w, op.pad_top, op.pad_left


def int64_bounds(op: Op, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its window reads are at most ``8*n*out_h*out_w*c*r*s``, its cycles ``8*n*(h+1)*(w+1)*c``
    (the grid with padding), its line buffer ``8*(w+1)*c`` bytes."""
    return (("its window reads", "8*n*out_h*out_w*c*r*s", 8 * op.out_elements * op.r * op.s),
            ("its cycles", "8*n*(h+1)*(w+1)*c", 8 * op.n * (op.h + 1) * (op.w + 1) * op.c),
            ("its line buffer bytes", "8*(w+1)*c", 8 * (op.w + 1) * op.c))


def buffer_text(op: Op) -> str:
    """What the pool keeps in the ofmap buffer, for the error of a buffer that cannot fit."""
    wi = int(pool_grid(op.h, op.w, op.out_h, op.out_w, op.r, op.s, op.stride_h, op.stride_w,
                       op.pad_top, op.pad_left)[1])
    return f"the pool unit's line buffer (two grid rows of {wi} pixels x {op.c} channels)"


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
