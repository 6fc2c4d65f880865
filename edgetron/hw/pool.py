"""The pool unit's numbers: its pipeline, its limits, its iteration grid and cycle function.

``rtl/pool.py:PoolUnit`` streams an NHWC map in once, in raster order, ``lanes`` channels
per beat (``G = ceil(C / lanes)`` beats per pixel), and keeps what the windows still need
on chip: the two previous rows' beats in a line buffer (``PoolUnit.row_beats`` words) and
the two previous columns' vertical reductions per channel group. It visits one grid
position ``(y, x, g)`` per cycle: every input pixel, and after them the padded positions
where a window ends (the bottom and right padding; top and left padding cost nothing, the
windows just see fewer rows). A window's output leaves when its bottom-right position is
visited, so at most one output beat per position.

The grid of one image is ``hi x wi`` positions (:func:`pool_grid`): ``hi = max(h, yl + 1)``
with ``yl = (oh - 1) * sh - pt + r - 1`` the last window's bottom row, likewise ``wi``.
``pool_cycles`` counts from the first input handshake to the last output handshake, both
included, with the input valid on every cycle and the output always ready::

    cycles = ((n - 1) * hi * wi + yl * wi + xl + 1) * G + POOL_LATENCY

A global average pool (``r = h``, ``s = w``, no padding) is the same formula with ``hi =
h``, ``wi = w``: ``n * h * w * G + POOL_LATENCY``.
"""

from __future__ import annotations

from numba import njit

from .arith import beats
from .gemm import REQUANT_LATENCY

__all__ = [
    "POOL_BUFFER_BEATS",
    "POOL_BUFFER_CYCLES",
    "POOL_EDGE_MAX",
    "POOL_LATENCY",
    "POOL_STAGES",
    "POOL_STRIDE_MAX",
    "POOL_WINDOW_MAX",
    "pool_cycles",
    "pool_grid",
    "pool_is_global",
    "pool_line_buffer_bytes",
    "pool_row_beats",
]

#: Registered stages, one cycle each, before the requantizer: the input (or padding) beat
#: and the line buffer's rows above (row ``y - 1``, and rows ``y - 1`` and ``y - 2``
#: already reduced); the vertical reduction (max or sum of those with the input: one
#: two-input reduction); the horizontal reduction with the two previous columns (or the
#: running global sum).
POOL_STAGES = ("read", "vertical", "horizontal")
#: Cycles through the output buffer, a FIFO whose beat written is readable in the next cycle.
POOL_BUFFER_CYCLES = 1
#: Cycles from a grid position visited to its output beat valid: the stages, the dyadic
#: requantizer of ``rtl/requant.py`` (``REQUANT_LATENCY`` stages; a max goes through it
#: with ``mult = 2, shift = 1``, the identity), as the GELU unit's, and the output buffer.
POOL_LATENCY = len(POOL_STAGES) + REQUANT_LATENCY + POOL_BUFFER_CYCLES
#: Beats of the output buffer: one per position in flight (``POOL_LATENCY - 1`` issued
#: before the oldest is read) and one more, so that with the output always ready a
#: position never waits for room.
POOL_BUFFER_BEATS = POOL_LATENCY + 1
#: Largest window edge of the line-buffer mode (``r``, ``s``): three rows are reduced at
#: once. Larger windows run only as a global pool (the whole map).
POOL_WINDOW_MAX = 3
#: Largest stride (``sh``, ``sw``).
POOL_STRIDE_MAX = 3
#: Largest map edge (``h``, ``w``); a global sum holds up to ``POOL_EDGE_MAX ** 2`` values.
POOL_EDGE_MAX = 256


@njit(cache=True)
def pool_grid(h, w, oh, ow, r, s, sh, sw, pt, pl):
    """``(hi, wi, yl, xl)``: the grid rows and columns of one image and the last window's
    bottom row and right column, for ``oh x ow`` outputs (module docstring)."""
    yl = (oh - 1) * sh - pt + r - 1
    xl = (ow - 1) * sw - pl + s - 1
    return max(h, yl + 1), max(w, xl + 1), yl, xl


@njit(cache=True)
def pool_cycles(lanes, n, h, w, c, oh, ow, r, s, sh, sw, pt, pl):
    """Cycles of ``PoolUnit`` for ``n >= 1`` images of ``h x w x c`` pooled to ``oh x ow``
    (module docstring)."""
    hi, wi, yl, xl = pool_grid(h, w, oh, ow, r, s, sh, sw, pt, pl)
    return ((n - 1) * hi * wi + yl * wi + xl + 1) * beats(c, lanes) + POOL_LATENCY


@njit(cache=True)
def pool_is_global(r, s):
    """Whether a pool runs as a global pool (its window the whole map): an edge above
    ``POOL_WINDOW_MAX``."""
    return max(r, s) > POOL_WINDOW_MAX


@njit(cache=True)
def pool_line_buffer_bytes(lanes, wi, c, r, s):
    """Bytes of the line buffer a pool uses: one word per beat of a grid row (``wi *
    ceil(c / lanes)``), each two rows of ``lanes`` int8 values; every grid position reads
    one word and writes one. A global pool keeps only its running sums (the unit's column
    buffer): 0."""
    if pool_is_global(r, s):
        return 0
    return 2 * wi * beats(c, lanes) * lanes


@njit(cache=True)
def pool_row_beats(lanes, ofmap_bytes):
    """Line-buffer words of the RTL for a config: the words of :func:`pool_line_buffer_bytes`
    the ofmap buffer (``ofmap_bytes``) holds."""
    return max(1, ofmap_bytes // (2 * lanes))
