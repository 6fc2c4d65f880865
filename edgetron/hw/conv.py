"""The convolution unit's numbers: depthwise-mode latencies, line buffer and fit rule.

Imported by ``rtl/conv/`` (which builds and asserts its structure from them) and by
``sim/units/conv.py`` (the timing model, docs/rtl.md#depthwise-mode derives it).

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
"""

from __future__ import annotations

from numba import njit

from .gemm import GEMM_SKID_CYCLES, REQUANT_LATENCY, element_bytes

__all__ = [
    "DW_CMD_CYCLES",
    "DW_LINE_ROWS",
    "DW_MAX_HEIGHT",
    "DW_MAX_KERNEL",
    "DW_MAX_STRIDE",
    "DW_MAX_WIDTH",
    "DW_READ_CYCLES",
    "DW_WINDOW_CYCLES",
    "dw_bank_reuse",
    "dw_fits",
    "dw_line_width",
    "dw_output_latency",
]

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


@njit(cache=True)
def dw_output_latency(rows):
    """Cycles from the sweep cycle that completes a window to its output beat on ``o``:
    the line-buffer read, the window register, ``rows`` PEs down the column, the
    requantizer (the activation clamp is combinational at its output) and the skid buffer."""
    return DW_READ_CYCLES + DW_WINDOW_CYCLES + rows + REQUANT_LATENCY + GEMM_SKID_CYCLES


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
