"""The convolution unit's numbers: the dense ConvUnit's fit rule and beats; depthwise-mode
latencies, line buffer and fit rule.

Imported by ``rtl/conv/`` (which builds and asserts its structure from them) and by
``sim/units/conv.py``, ``sim/units/conv_dense.py`` (the timing models, docs/rtl.md
derives them).

Depthwise mode
--------------
Each of the ``C`` array columns convolves its own channel; the ``r*s`` taps of its
kernel sit in the column's first ``r*s`` PEs (``r*s <= R``). A line buffer of
:data:`DW_LINE_ROWS` rows of :func:`dw_line_width` words (one word: the ``C`` channels
of one pixel) holds the input rows the windows need; every cycle of a row sweep reads
one column of the ``r`` rows, shifts it into a window register, and the window's taps
enter the column, tap ``t`` delayed ``t`` cycles, so the partial sum flows down the
column one PE per cycle. The output of a call (one image, one group of ``C`` channels)
leaves ``dw_output_latency`` cycles after the sweep cycle that completed its window.

Fit: ``1 <= r, s <= DW_MAX_KERNEL``, ``r*s <= R``, stride ``1..DW_MAX_STRIDE``,
``w <= dw_line_width``, ``h <= DW_MAX_HEIGHT``, padding as golden allows
(:func:`dw_fits`). A depthwise layer that does not fit (or with a channel multiplier
above 1) runs as per-channel GEMMs instead (``sim/units/conv.py``).

Dense ConvUnit
--------------
conv2d bands on the weight-stationary array (rtl/conv/dense.py; docs/rtl.md, "Dense
convolution"): :data:`CONV_FIELDS`, :func:`conv_geometry`, :func:`conv_stream_beats`,
:func:`conv_fits`, :func:`conv_band` / :func:`conv_bands`, :func:`conv_clamp_calls`.
**Which conv2d runs on it** (the one rule; ``sim/tiling.py:matrix_costs`` applies it):
one group, int8 output, a ``ws`` config and a band plan that fits
(``sim.units.conv_dense.dense_plan``); then the simulator costs both the ConvUnit's
bands and the im2col GEMM and keeps the fewer cycles (then the less DRAM). So a layer
whose channels waste most of each fold (ResNet-18's 7x7 stem: ``c = 3`` of 16 lanes)
keeps the im2col GEMM whenever that is cheaper.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .gemm import (
    DATAFLOW_WS,
    REQUANT_LATENCY,
    cdiv,
    element_bytes,
    gemm_buffer_words,
    gemm_max_shape,
)

__all__ = [
    "CONV_CMD_CYCLES",
    "CONV_CMD_STATES",
    "CONV_FIELDS",
    "CONV_MAX_KERNEL",
    "CONV_MAX_STRIDE",
    "DW_CMD_CYCLES",
    "DW_LINE_ROWS",
    "DW_MAX_HEIGHT",
    "DW_MAX_KERNEL",
    "DW_MAX_STRIDE",
    "DW_MAX_WIDTH",
    "DW_READ_CYCLES",
    "DW_SKID_CYCLES",
    "DW_WINDOW_CYCLES",
    "conv_band",
    "conv_bands",
    "conv_clamp_calls",
    "conv_fits",
    "conv_geometry",
    "conv_stream_beats",
    "dw_bank_reuse",
    "dw_fits",
    "dw_line_width",
    "dw_output_latency",
]

#: The ConvUnit's command phase, one cycle per state: ``IDLE`` takes the command; ``DIV``
#: registers the ceiling divisions (``cb``, column tiles), the output size and the
#: products of command fields (``r*s``, ``hb*w``); ``MUL`` the products with ``cb``;
#: ``MUL2`` the weight words ``ceil(n/C) * cb * r*s * R`` and ``K``; ``CHECK`` only
#: compares registers and takes a slot. No multiplier or divider lies between two
#: registers of the control path (the GEMM unit's phase, ``GEMM_CMD_STATES``, has one
#: product stage; the ConvUnit's products of products need two).
CONV_CMD_STATES = ("IDLE", "DIV", "MUL", "MUL2", "CHECK")
#: Cycles from a command handshake to its slot (the first operand beat it may take).
CONV_CMD_CYCLES = len(CONV_CMD_STATES)

#: Largest kernel edge (``r``, ``s``) of the depthwise mode.
DW_MAX_KERNEL = 7
#: Largest stride of the depthwise mode (each axis).
DW_MAX_STRIDE = 2
#: Rows of the line buffer: a window's ``r`` rows plus the ``stride`` rows the loader
#: fills while the current output row is swept (so that full-rate input never waits).
DW_LINE_ROWS = DW_MAX_KERNEL + DW_MAX_STRIDE
#: Largest line (input width in pixels) the line buffer holds, whatever the SRAM size.
DW_MAX_WIDTH = 256
#: Largest input height of one call (width of the row counters).
DW_MAX_HEIGHT = 4095
#: Cycles from the command handshake to the first cycle a weight or pixel beat is taken.
DW_CMD_CYCLES = 1
#: Cycles from a line-buffer read address to its data (synchronous read ports).
DW_READ_CYCLES = 1
#: Cycles of the window register (a column shifts in, the window is read the cycle after).
DW_WINDOW_CYCLES = 1
#: Cycles of the depthwise unit's output skid buffer (two entries, its ``i.ready`` a
#: register: the unit stalls as a whole under output backpressure).
DW_SKID_CYCLES = 1


@njit(cache=True)
def dw_output_latency(rows):
    """Cycles from the sweep cycle that completes a window to its output beat on ``o``:
    the line-buffer read, the window register, ``rows`` PEs down the column, the
    requantizer (the activation clamp is combinational at its output) and the skid buffer."""
    return DW_READ_CYCLES + DW_WINDOW_CYCLES + rows + REQUANT_LATENCY + DW_SKID_CYCLES


@njit(cache=True)
def dw_bank_reuse(rows):
    """Cycles after a call's last sweep cycle ``E`` before a command may reuse its weight
    and parameter bank: the call's last window reads the bank up to cycle
    ``E + DW_READ_CYCLES + DW_WINDOW_CYCLES + rows + REQUANT_LATENCY`` (the clamp bounds at
    the requantizer's output); a command taken at ``E + reuse + 1`` writes the bank at the
    end of the cycle after it, one cycle after that last read."""
    return rows + REQUANT_LATENCY + 1


@njit(cache=True)
def dw_line_width(ifmap_sram_bytes, cols, input_bits):
    """Words (pixels of ``cols`` channels) of one line-buffer row: the ifmap SRAM shared
    by :data:`DW_LINE_ROWS` rows, at most :data:`DW_MAX_WIDTH`."""
    words = ifmap_sram_bytes // (cols * element_bytes(input_bits))
    return min(DW_MAX_WIDTH, words // DW_LINE_ROWS)


@njit(cache=True)
def dw_fits(rows, line_width, h, w, r, s, sh, sw, pt, pb, pl, pr):
    """True when one depthwise call ``(h, w)`` with kernel ``r x s``, strides ``(sh, sw)``
    and padding ``(pt, pb, pl, pr)`` runs in the depthwise mode (see the module
    docstring; padding per side at most ``max(kernel, stride) - 1``, golden's limit)."""
    if r < 1 or s < 1 or r > DW_MAX_KERNEL or s > DW_MAX_KERNEL or r * s > rows:
        return False
    if sh < 1 or sw < 1 or sh > DW_MAX_STRIDE or sw > DW_MAX_STRIDE:
        return False
    if w < 1 or h < 1 or w > line_width or h > DW_MAX_HEIGHT:
        return False
    lim_h = max(r, sh) - 1
    lim_w = max(s, sw) - 1
    if min(pt, pb, pl, pr) < 0 or max(pt, pb) > lim_h or max(pl, pr) > lim_w:
        return False
    return h + pt + pb >= r and w + pl + pr >= s


# ------------------------------------------------------------------------------------------
# The dense ConvUnit (rtl/conv/dense.py): conv2d on the weight-stationary array
# ------------------------------------------------------------------------------------------
#: Fields of one ConvUnit call (a *band*: a run of output rows of one image), in order:
#: ``hb`` input rows in the band, ``w`` input width, ``c`` input channels, ``n`` output
#: channels, kernel ``r x s``, strides ``sh, sw``, padding ``pt, pb, pl, pr`` of the band
#: (``pt`` only on the image's first band, ``pb`` only on its last).
CONV_FIELDS = ("hb", "w", "c", "n", "r", "s", "sh", "sw", "pt", "pb", "pl", "pr")
#: Largest kernel edge of the ConvUnit: the depthwise mode's.
CONV_MAX_KERNEL = DW_MAX_KERNEL
#: Largest stride of the ConvUnit (each axis): the depthwise mode's.
CONV_MAX_STRIDE = DW_MAX_STRIDE


@njit(cache=True)
def conv_geometry(rows, hb, w, c, r, s, sh, sw, pt, pb, pl, pr):
    """``(cb, ho, wo, m, k)`` of one ConvUnit call: ``cb = c//^R`` words per pixel, the
    band's output rows and columns, ``m = ho * wo`` GEMM rows and ``k = r * s * cb * R``
    (fold ``(i, j, cb)``, ``kf = (i * s + j) * CB + cb``)."""
    cb = cdiv(c, rows)
    ho = (hb + pt + pb - r) // sh + 1
    wo = (w + pl + pr - s) // sw + 1
    return cb, ho, wo, ho * wo, r * s * cb * rows


@njit(cache=True)
def conv_stream_beats(p, hb, w, c, n, r, s, sh, sw, pt, pb, pl, pr):
    """Beats of one ConvUnit call on each stream ``(a, w, ch, o)``: the band's pixels
    ``hb * w * cb`` (NHWC, ``cb`` words of ``R`` channels per pixel), the weights
    ``n//^C * k``, one ``ch`` beat per output channel, ``n//^C * m`` outputs."""
    cb, _ho, _wo, m, k = conv_geometry(p.rows, hb, w, c, r, s, sh, sw, pt, pb, pl, pr)
    nt = cdiv(n, p.cols)
    return hb * w * cb, nt * k, n, nt * m


@njit(cache=True)
def conv_fits(p, hb, w, c, n, r, s, sh, sw, pt, pb, pl, pr):
    """True when one ConvUnit call takes the band (``ws`` only; the RTL's shape check).

    Kernel ``1..CONV_MAX_KERNEL``, strides ``1..CONV_MAX_STRIDE``, padding per side at
    most ``max(kernel, stride) - 1`` (golden's limit), every size >= 1, the window within
    the padded band, and the buffers of one slot hold it: band words ``<= DA``,
    ``n//^C * k <= DW``, ``m <= DO``, ``n//^C <= R`` (and ``m``, ``k`` within the GEMM
    unit's per-dimension maxima, the widths of its registers).
    """
    if p.dataflow != DATAFLOW_WS:
        return False
    if min(hb, w, c, n) < 1 or min(r, s, sh, sw) < 1:
        return False
    if max(r, s) > CONV_MAX_KERNEL or max(sh, sw) > CONV_MAX_STRIDE:
        return False
    if min(pt, pb, pl, pr) < 0 or max(pt, pb) > max(r, sh) - 1 or max(pl, pr) > max(s, sw) - 1:
        return False
    if hb + pt + pb < r or w + pl + pr < s:
        return False
    a_words, w_words, acc_words, param_words = gemm_buffer_words(p)
    m_max, k_max, _ = gemm_max_shape(p)
    _cb, _ho, _wo, m, k = conv_geometry(p.rows, hb, w, c, r, s, sh, sw, pt, pb, pl, pr)
    ba, bw, _, _ = conv_stream_beats(p, hb, w, c, n, r, s, sh, sw, pt, pb, pl, pr)
    return (ba <= a_words and bw <= w_words and m <= min(acc_words, m_max) and k <= k_max
            and cdiv(n, p.cols) <= param_words)


@njit(cache=True)
def conv_clamp_calls(rows, cols, slots):
    """Entries of the ConvUnit's clamp queue: calls accepted whose last output has not yet
    left the compute core. A call holds a slot until its last issue, then drains for
    ``R + C + 1`` cycles; two calls free their slots at least ``R`` cycles apart but for
    one pair in a row (a short call right after a long one), so at most
    ``slots + 2 * (R + C + 1)//^R`` calls are in flight; one more spare entry. The queue
    never holds a command back (tests/rtl/test_conv_dense.py runs tiny calls back to back)."""
    return slots + 2 * cdiv(rows + cols + 1, rows) + 1


@njit(cache=True)
def conv_band(h, r, sh, pt, oh0, ohb):
    """The band of output rows ``oh0 .. oh0 + ohb - 1`` of a conv over ``h`` input rows
    (kernel rows ``r``, stride ``sh``, top padding ``pt``): ``(y0, hb, pt_b, pb_b)``, its
    first input row, its input rows (the halo included, rows outside the map excluded)
    and the padding rows above and below it (the call's ``hb``, ``pt``, ``pb``).

    A first band whose windows lie wholly in the top padding (a 1-row kernel, stride 2,
    ``pt = 1``, one output row) takes input row 0 too, which its window skips:
    ``(1 + 1 - 1) // 2 + 1 = 1`` output row still. (A last band whose window lies in
    the bottom padding holds no input row: :func:`conv_bands` never makes one.)"""
    top = oh0 * sh - pt
    bottom = (oh0 + ohb - 1) * sh - pt + r
    y0 = max(0, top)
    y1 = max(min(h, bottom), min(h, y0 + 1))
    return y0, y1 - y0, y0 - top, max(0, bottom - y1)


@njit(cache=True)
def conv_bands(h, r, sh, pt, oh, band_rows):
    """The bands of a conv with ``oh`` output rows, ``band_rows`` output rows each (the
    last fewer): int64 ``[bands, 6]`` of ``(oh0, ohb, y0, hb, pt_b, pb_b)``
    (:func:`conv_band`). A last band of one output row whose window lies wholly in the
    bottom padding (a 1-row kernel, stride 2, padding 1) would hold no input row: it
    joins the band before it."""
    starts = np.arange(0, oh, band_rows)
    if starts.shape[0] > 1 and oh - starts[-1] == 1:
        if conv_band(h, r, sh, pt, starts[-1], 1)[1] < 1:
            starts = starts[:-1]
    out = np.empty((starts.shape[0], 6), np.int64)
    for b in range(starts.shape[0]):
        oh0 = starts[b]
        ohb = (starts[b + 1] if b + 1 < starts.shape[0] else oh) - oh0
        y0, hb, pt_b, pb_b = conv_band(h, r, sh, pt, oh0, ohb)
        out[b, 0], out[b, 1], out[b, 2], out[b, 3] = oh0, ohb, y0, hb
        out[b, 4], out[b, 5] = pt_b, pb_b
    return out
