"""Convolutions on the GEMM unit (im2col), depthwise convolutions, and pooling on the vector unit.

Convolution (``conv2d``) by im2col
----------------------------------
A convolution of an NHWC map ``[n, h, w, c]`` with ``k`` filters of ``r x s x c/g``
(``g`` groups) runs as ``g`` independent GEMMs ``A_g @ W_g`` on the GEMM unit
(``rtl/gemm.py:GemmUnit``, timed by :mod:`edgetron.sim.units.gemm`):

* ``M = n * out_h * out_w`` output pixels (rows of A, in ``(image, y, x)`` order),
* ``K = (c/g) * r * s`` (columns of A, in ``(ry, sx, channel)`` order, the NHWC order in
  which a window is read), and
* ``N = k/g`` output channels (columns of ``W_g``, ``W_g[(ry*s + sx)*c/g + ci, j] =
  w[g*k/g + j, ci, ry, sx]`` from the trace's ``[k, c/g, r, s]`` weights).

The GEMM unit receives the expanded rows of A on its A stream (so its cycles are those
of the im2col GEMM, folds over ``K`` and ``N`` included), but the DMA that feeds it
fetches the raw input rows from DRAM once per call and expands the windows on the fly:
:func:`im2col_dram_bytes` is what one GEMM-unit call of ``mt`` output pixels and ``kt``
of the ``K`` columns reads from DRAM. That is why a 3x3 stride-1 convolution does not
cost nine times its input in DRAM traffic.

Depthwise convolution (``dwconv2d``)
------------------------------------
Each input channel is its own GEMM ``(n*out_h*out_w) x (r*s) @ (r*s) x (k/c)``: the
``K = r*s`` reduction of one channel fills ``r*s`` of the array's rows in one array
column per output channel (``k/c`` columns, 1 for the usual multiplier). A 3x3 depthwise
layer therefore keeps 9 of ``rows * cols`` PEs busy (9 of 256 on a 16x16 array): the
honest cost of depthwise layers on a systolic array, which is why MobileNetV2 maps
poorly. It is exactly the ``conv2d`` mapping with ``groups = c``.

Pooling (``maxpool``, ``avgpool``)
----------------------------------
Pools run on the vector unit: ``lanes`` channels in parallel (NHWC keeps them adjacent),
one window element per beat, so an ``r x s`` window costs ``r*s`` beats per
``ceil(c / lanes)`` channel groups:
``ceil(c/lanes) * n * out_h * out_w * r * s + MAXPOOL_LATENCY`` (or ``AVGPOOL_LATENCY``,
which adds the dyadic requantization of the window sum). Vertically overlapping windows
(``stride_h < r`` and ``out_h > 1``) read input rows several times, so ``r`` rows are held in a
line buffer; non-overlapping ones (global average pooling included) only keep one output
row of running maxima or int32 sums (:func:`pool_line_buffer_bytes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .units.gemm import cdiv
from .vector import REQUANT_LATENCY, beats

__all__ = [
    "AVGPOOL_LATENCY",
    "MAXPOOL_LATENCY",
    "avgpool_cycles",
    "conv_weight_matrix",
    "im2col_dram_bytes",
    "im2col_rows",
    "maxpool_cycles",
    "pool_keeps_input_rows",
    "pool_line_buffer_bytes",
]

#: Max pool: running maximum register per lane (1 stage), output register (1 stage).
MAXPOOL_LATENCY = 2
#: Average pool: running sum register per lane (1 stage), then the dyadic requantization.
AVGPOOL_LATENCY = 1 + REQUANT_LATENCY


def conv_weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """The trace's ``[k, c/g, r, s]`` weights as ``g`` GEMM operands ``[g, (r*s*c/g), k/g]``.

    Row index ``(ry * s + sx) * (c/g) + ci`` matches the column order of :func:`im2col_rows`.
    """
    k, cg, r, s = w.shape
    kg = k // groups
    wg = w.reshape(groups, kg, cg, r, s).transpose(0, 3, 4, 2, 1)  # g, r, s, cg, kg
    return np.ascontiguousarray(wg.reshape(groups, r * s * cg, kg))


@njit(cache=True)
def im2col_rows(xpad, group, cg, r, s, stride_h, stride_w, out_h, out_w, m0, mt, k0, kt):
    """Rows ``m0 .. m0+mt`` and columns ``k0 .. k0+kt`` of one group's im2col matrix.

    Parameters
    ----------
    xpad : int64 array [n, h + pads, w + pads, c]
        The zero-padded NHWC input.
    group, cg : int
        Group index and channels per group.
    r, s, stride_h, stride_w, out_h, out_w : int
        Window geometry.
    m0, mt, k0, kt : int
        Row (output pixel) and column (``(ry, sx, ci)``) ranges.

    Returns
    -------
    int64 array [mt, kt]
    """
    out = np.empty((mt, kt), dtype=np.int64)
    hw = out_h * out_w
    for i in range(mt):
        mi = m0 + i
        img = mi // hw
        rem = mi - img * hw
        oy = rem // out_w
        ox = rem - oy * out_w
        for j in range(kt):
            ki = k0 + j
            win = ki // cg
            ci = ki - win * cg
            ry = win // s
            sx = win - ry * s
            out[i, j] = xpad[img, oy * stride_h + ry, ox * stride_w + sx, group * cg + ci]
    return out


@njit(cache=True)
def im2col_dram_bytes(mt, kt, k_total, n_img, h, w, cg, out_h, out_w, r, stride_h, in_bytes):
    """DRAM bytes read by one GEMM-unit call of ``mt`` output pixels, ``kt`` of ``k_total`` columns.

    The call's output pixels are consecutive in ``(image, y, x)`` order, so they cover
    ``rows_out = ceil(mt / out_w)`` output rows, plus one when ``mt`` is not a whole
    number of rows (the tile may start mid-row), at most ``n * out_h``. Those need
    ``(rows_out - 1) * stride_h + r`` input rows (at most ``n * h``: padding is not
    fetched) of ``w * cg`` elements; a call with ``kt < k_total`` fetches the matching
    share of the channels. The result never exceeds the call's im2col operand,
    ``mt * kt`` elements (e.g. a strided 1x1 convolution fetches only the pixels it uses).
    """
    rows_out = cdiv(mt, out_w)
    if mt % out_w != 0:
        rows_out += 1
    rows_out = min(rows_out, n_img * out_h)
    rows_in = min((rows_out - 1) * stride_h + r, n_img * h)
    raw = (rows_in * w * cg * kt + k_total - 1) // k_total
    return min(raw, mt * kt) * in_bytes


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
