"""Latencies of the arithmetic blocks the vector units share (``rtl/arith.py``).

* the radix-4 sequential divider: one cycle to load, one per pair of quotient bits;
* the digit-recurrence square root: one cycle to load, two root bits per cycle;
* a registered reduction tree over ``lanes`` values: ``ceil(log2(lanes))`` levels;
* ``beats(n, lanes)``: beats of ``lanes`` elements that carry ``n`` elements.

The RTL builds these blocks and asserts at elaboration that their structure has exactly
these latencies; the unit timing models (``edgetron.hw.softmax`` etc.) add them up.
"""

from __future__ import annotations

from numba import njit

from .gemm import cdiv

__all__ = [
    "DIVIDER_BITS_PER_CYCLE",
    "SQRT_BITS_PER_CYCLE",
    "beats",
    "divider_latency",
    "sqrt_latency",
    "tree_depth",
]

#: Quotient bits the divider retires per cycle (radix 4).
DIVIDER_BITS_PER_CYCLE = 2
#: Root bits the square root retires per cycle (two restoring steps per cycle).
SQRT_BITS_PER_CYCLE = 2


#: Beats of ``lanes`` elements that carry ``n`` elements, ``beats(n, lanes) = ceil(n /
#: lanes)``: :func:`edgetron.hw.gemm.cdiv` under the name the vector formulas use.
beats = cdiv


@njit(cache=True)
def tree_depth(lanes):
    """Register levels of a binary reduction tree over ``lanes`` values, ``ceil(log2(lanes))``."""
    d = 0
    w = 1
    while w < lanes:
        w *= 2
        d += 1
    return d


@njit(cache=True)
def divider_latency(quo_bits):
    """Cycles from ``start`` to ``done`` of the radix-4 divider with ``quo_bits`` quotient bits:
    one load cycle plus ``ceil(quo_bits / 2)`` iterations."""
    return 1 + (quo_bits + DIVIDER_BITS_PER_CYCLE - 1) // DIVIDER_BITS_PER_CYCLE


@njit(cache=True)
def sqrt_latency(in_bits):
    """Cycles from ``start`` to ``done`` of the square root of an ``in_bits``-bit operand:
    one load cycle plus ``ceil(ceil(in_bits / 2) / 2)`` iterations."""
    root_bits = (in_bits + 1) // 2
    return 1 + (root_bits + SQRT_BITS_PER_CYCLE - 1) // SQRT_BITS_PER_CYCLE
