"""The convolution front end of the GEMM unit: im2col geometry and DRAM bytes, depthwise.

Convolution (``conv2d``) by im2col
----------------------------------
A convolution of an NHWC map ``[n, h, w, c]`` with ``k`` filters of ``r x s x c/g``
(``g`` groups) runs as ``g`` independent GEMMs ``A_g @ W_g`` on the GEMM unit (timed by
:mod:`edgetron.sim.units.gemm`):

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

Functional mode builds the im2col matrix of every group with :func:`im2col_rows` and
runs it through the GEMM unit's kernel, :func:`edgetron.sim.units.gemm.gemm_tiled`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.conv import conv2d_int
from edgetron.hw.conv import (
    DW_CMD_CYCLES,
    DW_LINE_ROWS,
    dw_bank_reuse,
    dw_fits,
    dw_line_width,
    dw_output_latency,
)
from edgetron.hw.gemm import cdiv, element_bytes
from edgetron.workload import DwConv2d, Op

from ..opdata import (
    OpData,
    OpQuant,
    deployed_bias,
    deployed_scale,
    int8_values,
    matrix_output,
    quant_array,
    seeded_bias,
    weight_scales,
)
from ..records import (
    C_CALLS,
    C_DRAM_A,
    C_DRAM_B,
    C_DRAM_OUT,
    C_DRAM_PARAM,
    C_EV_MUL,
    C_EV_REG,
    C_IFMAP_RD,
    C_IFMAP_WR,
    C_PARAM_RD,
    C_PARAM_WR,
    C_TILE_K,
    C_TILE_M,
    C_TILE_N,
    C_WEIGHT_RD,
    C_WEIGHT_WR,
    F_A_B,
    F_CG,
    F_COUNT,
    F_H,
    F_IMG,
    F_IS_CONV,
    F_OH,
    F_OUT32,
    F_OUT_B,
    F_OW,
    F_PB,
    F_PL,
    F_PR,
    F_PT,
    F_R,
    F_S,
    F_SH,
    F_SW,
    F_W,
    F_W_B,
    NFIELD,
)
from . import gemm
from .gemm import ch_bytes
from .pipeline import requantize

__all__ = [
    "conv_weight_matrix",
    "dw_account",
    "dw_call_times",
    "dw_mode",
    "dw_run",
    "dw_schedule",
    "dw_sequence",
    "groups_of",
    "im2col_dram_bytes",
    "im2col_rows",
    "int64_bounds",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
]


def groups_of(op: Op) -> int:
    """The convolution's groups: ``groups`` of a conv2d, ``c`` of a dwconv2d."""
    return op.c if isinstance(op, DwConv2d) else op.groups


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


# ------------------------------------------------------------------------------------------
# The depthwise mode's timing (rtl/conv/depthwise.py; docs/rtl.md derives it)
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def dw_call_times(rows, h, w, r, s, sh, sw, pt, pb, pl, pr):
    """One depthwise call from its command handshake (cycle 0), inputs at full rate:
    ``(first_sweep, last_sweep, last_pixel, first_out, last_out)``.

    The weights take cycles ``1 .. r*s`` (the parameters cycle 1), the pixels one per
    cycle from cycle 1, input row ``iy`` waiting until the line buffer has room for it
    (row ``iy - DW_LINE_ROWS`` no longer needed: the output row that needed it last has
    been swept). Output row ``oy`` is swept in ``L = (wo - 1) * sw + s`` consecutive
    cycles, from the cycle after the previous row's sweep (or after the last weight) and
    not before its input rows ``oy*sh - pt .. oy*sh - pt + r - 1`` (those that exist) are
    in. A window completed in sweep cycle ``c`` leaves on ``o`` in cycle
    ``c + dw_output_latency(rows)``.
    """
    ho = (h + pt + pb - r) // sh + 1
    wo = (w + pl + pr - s) // sw + 1
    sweep = (wo - 1) * sw + s
    lat = dw_output_latency(rows)
    row_end = np.empty(ho, dtype=np.int64)      # last sweep cycle of each output row
    pix_end = np.empty(h, dtype=np.int64)       # cycle of each input row's last pixel
    loaded = 0                                  # input rows whose times are known
    t_free = DW_CMD_CYCLES                      # the loader's next free cycle
    start = DW_CMD_CYCLES + r * s               # no sweep before the weights are in
    first_sweep = 0
    for oy in range(ho):
        need = min(h, oy * sh - pt + r)
        while loaded < need:
            iy = loaded
            q = (iy - DW_LINE_ROWS + pt) // sh  # the row whose sweep frees its memory
            begin = t_free
            if iy >= DW_LINE_ROWS - pt:
                begin = max(begin, row_end[q] + 1)
            pix_end[iy] = begin + w - 1
            t_free = pix_end[iy] + 1
            loaded += 1
        if need > 0:
            start = max(start, pix_end[need - 1] + 1)
        if oy == 0:
            first_sweep = start
        row_end[oy] = start + sweep - 1
        start = row_end[oy] + 1
    while loaded < h:                           # rows no window needs, still taken
        iy = loaded
        q = (iy - DW_LINE_ROWS + pt) // sh
        begin = t_free
        if iy >= DW_LINE_ROWS - pt:
            begin = max(begin, row_end[min(q, ho - 1)] + 1)
        pix_end[iy] = begin + w - 1
        t_free = pix_end[iy] + 1
        loaded += 1
    return (first_sweep, row_end[ho - 1], pix_end[h - 1], first_sweep + s - 1 + lat,
            row_end[ho - 1] + lat)


@njit(cache=True)
def dw_schedule(rows, shapes):
    """Depthwise calls back to back, inputs at full rate and no backpressure: per call
    ``(command, first output, last output)`` cycles, the first command at cycle 0.

    ``shapes``: int64 ``[n, 10]``, one call per row ``(h, w, r, s, sh, sw, pt, pb, pl,
    pr)``. A command is taken once the previous call has swept its last row and taken
    its last pixel, and ``dw_bank_reuse(rows)`` cycles after the last sweep of the call
    two before (the weight bank it reuses).
    """
    n = shapes.shape[0]
    out = np.empty((n, 3), dtype=np.int64)
    reuse = dw_bank_reuse(rows)
    t0 = 0
    end1 = -(1 << 40)            # last sweep of the call before
    end2 = -(1 << 40)            # and of the one before it (the same weight bank)
    for i in range(n):
        sh_ = shapes[i]
        _, last_sweep, last_pixel, first_out, last_out = dw_call_times(
            rows, sh_[0], sh_[1], sh_[2], sh_[3], sh_[4], sh_[5], sh_[6], sh_[7], sh_[8],
            sh_[9])
        t0 = max(t0, end2 + reuse + 1)
        out[i, 0] = t0
        out[i, 1] = t0 + first_out
        out[i, 2] = t0 + last_out
        end2 = end1
        end1 = t0 + last_sweep
        t0 = t0 + max(last_sweep, last_pixel) + 1
    return out


@njit(cache=True)
def dw_sequence(rows, calls, h, w, r, s, sh, sw, pt, pb, pl, pr):
    """``calls`` identical depthwise calls (:func:`dw_schedule`): ``(cycles, head, tail)``,
    the first command handshake to the last output handshake, both included; the cycles
    to the first output handshake, both included; the cycles from the last input pixel
    to the end (what the unit still does once its last operand is in)."""
    shapes = np.empty((calls, 10), dtype=np.int64)
    for i in range(calls):
        shapes[i, 0] = h
        shapes[i, 1] = w
        shapes[i, 2] = r
        shapes[i, 3] = s
        shapes[i, 4] = sh
        shapes[i, 5] = sw
        shapes[i, 6] = pt
        shapes[i, 7] = pb
        shapes[i, 8] = pl
        shapes[i, 9] = pr
    sched = dw_schedule(rows, shapes)
    last_pixel = dw_call_times(rows, h, w, r, s, sh, sw, pt, pb, pl, pr)[2]
    end = sched[calls - 1, 2] + 1
    return end, sched[0, 1] + 1, end - (sched[calls - 1, 0] + last_pixel)


@njit(cache=True)
def dw_mode(p, rec):
    """True when the conv of flat record ``rec`` runs in the depthwise mode: a depthwise
    convolution with channel multiplier 1 (``is_conv == 2``), requantized output, and a
    geometry that fits (:func:`edgetron.hw.conv.dw_fits` with the config's line buffer).
    Otherwise it runs as per-channel GEMMs."""
    if rec[F_IS_CONV] != 2 or rec[F_OUT32] != 0:
        return False
    lw = dw_line_width(p.ifmap_sram_bytes, p.cols, p.input_bits)
    return dw_fits(p.rows, lw, rec[F_H], rec[F_W], rec[F_R], rec[F_S], rec[F_SH], rec[F_SW],
                   rec[F_PT], rec[F_PB], rec[F_PL], rec[F_PR])


@njit(cache=True)
def dw_account(p, rec, row):
    """Account a depthwise op in the depthwise mode into ``row``: traffic, events, calls;
    returns ``(compute, head, tail)`` of :func:`dw_sequence` for the DRAM port bound
    (:func:`edgetron.sim.tiling.matrix_costs` finishes the row).

    One call per image and group of ``cols`` channels. DRAM: every input pixel once, the
    weights and the per-channel parameters once, the int8 outputs once. SRAM: the line
    buffer is written once per pixel word and read ``r`` words per sweep cycle; the
    weight and parameter banks are written once and read per call. Registers: each MAC
    moves its operand and its partial sum one PE on.
    """
    n_img, h, w, c = rec[F_IMG], rec[F_H], rec[F_W], rec[F_COUNT]
    r, s, ho, wo = rec[F_R], rec[F_S], rec[F_OH], rec[F_OW]
    sh, sw = rec[F_SH], rec[F_SW]
    pt, pb, pl, pr = rec[F_PT], rec[F_PB], rec[F_PL], rec[F_PR]
    a_b, w_b, out_b = rec[F_A_B], rec[F_W_B], rec[F_OUT_B]
    groups = cdiv(c, p.cols)
    calls = n_img * groups
    word = p.cols * a_b
    sweep = (wo - 1) * sw + s
    chb = ch_bytes(p)
    row[C_DRAM_A] = float(n_img * h * w * c * a_b)
    row[C_DRAM_B] = float(c * r * s * w_b)
    row[C_DRAM_PARAM] = float(c * chb)
    row[C_DRAM_OUT] = float(n_img * ho * wo * c * out_b)
    row[C_IFMAP_WR] = float(calls * h * w * word)
    row[C_IFMAP_RD] = float(calls * ho * sweep * r * word)
    row[C_WEIGHT_WR] = float(c * r * s * w_b)
    row[C_WEIGHT_RD] = float(calls * r * s * p.cols * w_b)
    row[C_PARAM_WR] = float(c * chb)
    row[C_PARAM_RD] = float(calls * p.cols * chb)
    macs = n_img * ho * wo * c * r * s
    row[C_EV_REG] = float(macs * (a_b + element_bytes(p.acc_bits)))
    row[C_EV_MUL] = float(n_img * ho * wo * c)
    row[C_CALLS] = float(calls)
    row[C_TILE_M] = ho * wo
    row[C_TILE_K] = r * s
    row[C_TILE_N] = p.cols
    return dw_sequence(p.rows, calls, h, w, r, s, sh, sw, pt, pb, pl, pr)


@njit(cache=True)
def dw_run(a, w, bias, mq, sq, lo, hi, n_img, cols, out):
    """The depthwise mode's calls on the im2col rows of each channel: ``a`` [c, M, r*s],
    ``w`` [c, r*s, 1], ``bias``/``mq``/``sq`` [c, 1]; ``out`` [c, M, 1] gets
    ``clamp(requantize(acc), lo, hi)``. One call per image and group of ``cols``
    channels; returns ``(calls, ok)``, ``ok`` False if an accumulation left int32."""
    c, m, k = a.shape
    per_img = m // n_img
    calls = 0
    ok = True
    for img in range(n_img):
        for g0 in range(0, c, cols):
            calls += 1
            for ch in range(g0, min(c, g0 + cols)):
                for i in range(img * per_img, (img + 1) * per_img):
                    acc = bias[ch, 0]
                    for t in range(k):
                        acc += a[ch, i, t] * w[ch, t, 0]
                    if acc < -(1 << 31) or acc > (1 << 31) - 1:
                        ok = False
                    out[ch, i, 0] = requantize(acc, mq[ch, 0], sq[ch, 0], lo, hi)
    return calls, ok


# ------------------------------------------------------------------------------------------
# The conv2d and dwconv2d op kinds: flat record, limits, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Op, rec: list[int]) -> None:
    """A convolution's flat record: its GEMM view and its window geometry."""
    gemm.matrix_record(op, rec)
    rec[F_IS_CONV] = 1
    rec[F_IMG], rec[F_H], rec[F_W] = op.n, op.h, op.w
    rec[F_CG] = op.c // groups_of(op)
    rec[F_OH], rec[F_OW], rec[F_R], rec[F_S], rec[F_SH] = (
        op.out_h, op.out_w, op.r, op.s, op.stride_h)
    rec[F_SW], rec[F_PT], rec[F_PB], rec[F_PL], rec[F_PR] = (
        op.stride_w, op.pad_top, op.pad_bottom, op.pad_left, op.pad_right)
    if isinstance(op, DwConv2d) and op.k == op.c:
        rec[F_IS_CONV] = 2


def int64_bounds(op: Op, edge: int) -> tuple[tuple[str, str, int], ...]:
    """The GEMM unit's bounds (:func:`edgetron.sim.units.gemm.int64_bounds`) and the
    raw input elements times the reduction length that :func:`im2col_dram_bytes` forms,
    ``n*h*w*(c/groups) * K + K``."""
    k_total = op.gemm.k
    raw = op.n * op.h * op.w * (op.c // groups_of(op)) * k_total + k_total
    return (*gemm.int64_bounds(op, edge),
            ("its im2col DRAM accounting", f"n*h*w*(c/groups)*K + K with K={k_total}", raw))


def prepare(op: Op, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """Weights, bias, requantization constants and the golden output of a convolution.

    Seeded, or a deployed model's (``q``: int8 weights, their scales, real bias, output
    scale).
    """
    x = ops_in[0]
    groups = groups_of(op)
    cg = op.c // groups
    if q is None:
        w = int8_values(rng, (op.k, cg, op.r, op.s))
        sw_flat = weight_scales(rng, op.k, cg * op.r * op.s, op.requant == "channel")
        bias_flat = seeded_bias(rng, cg * op.r * op.s, op.k) if op.bias else None
    else:
        w = quant_array(q, "weight", (op.k, cg, op.r, op.s)).astype(np.int64)
        sw_flat = quant_array(q, "weight_scale", (op.k,)).astype(np.float64)
        bias_flat = deployed_bias(q, (op.k,), scales[0], sw_flat) if op.bias else None
    if bias_flat is None:
        bias_flat = np.zeros(op.k, dtype=np.int64)
    pad = (op.pad_top, op.pad_bottom, op.pad_left, op.pad_right)
    accn = conv2d_int(x.transpose(0, 3, 1, 2), w, bias_flat, (op.stride_h, op.stride_w),
                      pad, groups)
    acc_nhwc = accn.transpose(0, 2, 3, 1)  # [n, oh, ow, k]
    kg = op.k // groups
    acc = acc_nhwc.reshape(-1, groups, kg).transpose(1, 0, 2)  # [groups, M, kg]
    sw = sw_flat.reshape(groups, kg)
    bias = bias_flat.reshape(groups, kg)
    out = None if q is None or op.requant == "none" else deployed_scale(q)
    y, params, out_scale = matrix_output(op, acc, bias, sw, scales[0], False, out)
    params.update(w=conv_weight_matrix(w, groups), bias=bias)
    golden = y.transpose(1, 0, 2).reshape(op.out_shape)
    return OpData(ops_in, params, np.ascontiguousarray(golden), out_scale)


def run(op: Op, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run a convolution as the GEMM-unit calls of ``tile`` on its im2col matrices, or as
    the depthwise mode's calls (:func:`dw_mode`, :func:`dw_run`)."""
    prm = d.params
    groups = groups_of(op)
    cg = op.c // groups
    xpad = np.ascontiguousarray(np.pad(
        d.operands[0],
        ((0, 0), (op.pad_top, op.pad_bottom), (op.pad_left, op.pad_right), (0, 0))))
    mdim = op.n * op.out_h * op.out_w
    kdim = cg * op.r * op.s
    a = np.empty((groups, mdim, kdim), dtype=np.int64)
    for g in range(groups):
        a[g] = im2col_rows(xpad, g, cg, op.r, op.s, op.stride_h, op.stride_w, op.out_h,
                           op.out_w, 0, mdim, 0, kdim)
    out = np.empty((groups, mdim, op.k // groups), dtype=np.int64)
    rec = [0] * NFIELD
    record(op, rec)
    if dw_mode(p, np.array(rec, dtype=np.int64)):
        calls, ok = dw_run(a, prm["w"], prm["bias"], prm["m"], prm["s"], prm["lo"], prm["hi"],
                           op.n, p.cols, out)
        return out.transpose(1, 0, 2).reshape(op.out_shape), calls, ok
    # Through the module, so that a test may replace the GEMM unit's kernel.
    calls, ok = gemm.gemm_tiled(a, prm["w"], prm["bias"], prm["m"], prm["s"],
                                int(op.requant == "none"), prm["lo"], prm["hi"], *tile,
                                p.rows, p.cols, p.dataflow, out)
    return out.transpose(1, 0, 2).reshape(op.out_shape), calls, ok


def scratch_bytes(op: Op) -> int:
    """Peak bytes :func:`prepare` and :func:`run` allocate beyond the op's kept data.

    The padded input (golden's float copy and the run's int64), the run's im2col matrices
    of every group (``M * K`` per group) and golden's of one image, and six int64
    copies of the output (accumulators, real values, requantized, the run's).
    """
    groups = groups_of(op)
    mm = op.gemm
    padded = op.n * (op.h + op.pad_top + op.pad_bottom) * (
        op.w + op.pad_left + op.pad_right) * op.c
    im2col = groups * mm.m * mm.k
    return 8 * (2 * padded + im2col + im2col // op.n + 6 * op.out_elements)
