"""GEMM timing of the systolic array: exact cycles of one ``rtl/gemm.py:GemmUnit`` call.

Every function here is a pure, integer-only Numba function of ``(SimParams, M, K, N,
out32)``. For the weight-stationary (``ws``) and output-stationary (``os``)
dataflows the result equals, cycle for cycle, what the RTL GEMM unit takes
(``tests/rtl/test_gemm.py`` and the cocotb testbenches assert it). The
input-stationary (``is``) dataflow has no RTL: it is modelled as the transposed
counterpart of ``ws`` (see below) and is *not* RTL-verified.

One invocation (docs/rtl.md has the microarchitecture)
------------------------------------------------------
The unit accepts a command ``(M, K, N, out32)``, loads the operands into its local
buffers, computes, and streams ``ceil(N/C) * M`` output vectors of ``C`` lanes.
``gemm_cycles`` counts the cycles from the first input handshake (the command)
to the last output handshake, both included, with every input stream valid on
every cycle and the output always ready.

Notation: ``R, C`` array rows and columns, ``ceil(x/y)`` written ``x//^y``,
``LAT = REQUANT_LATENCY`` when the output is requantized to int8 (``out32 = 0``)
and 0 for int32 output. The phases, in order and never overlapping, are

``cmd``
    2 cycles: the command handshake and the shape check.
``load``
    ``max(a_beats, w_beats, ch_beats)``: the three operand streams load in parallel,
    one beat per cycle each.
``compute``
    issue cycles: from the first read of the operand buffers to the last.
``drain``
    from the cycle after the last issue to the last output handshake, included.

so ``gemm_cycles = cmd + max(a_beats, w_beats, ch_beats) + compute + drain``
(:func:`gemm_phases` returns every term).

Weight-stationary (``ws``): ``KF = K//^R`` reduction folds, ``NT = N//^C`` column
tiles, ``S = NT * KF`` fold steps, step period ``P = max(M, R)``::

    a_beats = M * KF        w_beats = NT * K        ch_beats = N
    compute = R + (S - 1) * P + M
    drain   = R + C + 1 + LAT

The first ``R`` compute cycles load the first weight tile; every later tile loads
into the second weight register of each PE while the current step streams its
``M`` rows, so a step costs ``max(M, R)`` cycles.

Output-stationary (``os``): ``MT = M//^R`` row tiles, ``NT`` column tiles, tile
period ``P = max(K, 2R - 1)`` (a tile streams ``K`` operand pairs; the array
needs ``2R - 1`` cycles between the last MACs of consecutive tiles to shift the
previous results out), ``r_last = M - (MT - 1) * R - 1``::

    a_beats = MT * K        w_beats = NT * K        ch_beats = N
    compute = (NT * MT - 1) * P + K
    drain   = R + C + r_last + 1 + LAT

Input-stationary (``is``, simulator only): the transposed counterpart of ``ws``,
``C^T = W^T A^T`` with ``A^T`` held in the array and ``W^T`` streamed: the ``ws``
formulas with ``M`` and ``N`` exchanged (``KF = K//^R``, ``MTC = M//^C``,
``S = MTC * KF``, ``P = max(N, R)``)::

    a_beats = MTC * K       w_beats = N * KF        ch_beats = N
    compute = R + (S - 1) * P + N
    drain   = R + C + 1 + LAT

Buffer limits (:func:`gemm_fits`, :func:`gemm_max_shape`) are those of
``rtl/gemm.py:gemm_limits``: each SRAM holds whole words of one array edge
(``rows`` or ``cols`` lanes of ``ceil(bits/8)`` bytes each) and a parameter memory
holds ``rows`` words of ``cols`` channels (``N <= R*C``). With ``DA``, ``DW``, ``DO``
the A, W and accumulator words (:func:`gemm_buffer_words`)::

    ws: M * K//^R <= DA (R lanes)   N//^C * K <= DW (C lanes)   M <= DO
    os: M//^R * K <= DA (R lanes)   N//^C * K <= DW (C lanes)   (accumulators in the PEs)
    is: M//^C * K <= DA (C lanes)   N * K//^R <= DW (R lanes)   N <= DO

One call uses the whole of every buffer: the RTL does not overlap consecutive calls
(``double_buffer`` is not implemented in ``rtl/``), so a sequence of calls takes the
sum of their ``gemm_cycles``; the next command is accepted in the cycle after the
previous call's last output.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import njit

from edgetron.hw.gemm import (
    DATAFLOW_IS,
    DATAFLOW_OS,
    DATAFLOW_WS,
    GEMM_BUFFER_READ_CYCLES,
    GEMM_CMD_CYCLES,
    GEMM_EPILOGUE_CYCLES,
    REQUANT_LATENCY,
    array_timing,
    cdiv,
    element_bytes,
    gemm_buffer_words,
    gemm_fits,
    gemm_max_shape,
)

__all__ = [
    "DATAFLOW_IS",
    "DATAFLOW_OS",
    "DATAFLOW_WS",
    "REQUANT_LATENCY",
    "GemmPhases",
    "cdiv",
    "element_bytes",
    "gemm_buffer_words",
    "gemm_cycles",
    "gemm_fits",
    "gemm_max_shape",
    "gemm_phases",
    "gemm_utilization",
]


class GemmPhases(NamedTuple):
    """Cycle breakdown of one GEMM unit invocation (see the module docstring).

    ``total = cmd + max(a_beats, w_beats, ch_beats) + compute + drain``.
    """

    cmd: int
    a_beats: int
    w_beats: int
    ch_beats: int
    compute: int
    drain: int
    out_beats: int


@njit(cache=True)
def gemm_phases(p, m, k, n, out32):
    """Cycle breakdown of one invocation, a :class:`GemmPhases`.

    See the module docstring for the formulas; the shape must satisfy
    :func:`gemm_fits` (not checked here).
    """
    r, c = p.rows, p.cols
    lat = 0 if out32 else REQUANT_LATENCY
    latency, drain_delay, min_tile_gap = array_timing(r, c, p.dataflow)
    # From the cycle after the last issue: the buffer read, the array (and, os, the drain
    # pulses of the last tile), the epilogue register, the requantizer.
    drain = GEMM_BUFFER_READ_CYCLES + latency + GEMM_EPILOGUE_CYCLES + lat
    if p.dataflow == DATAFLOW_OS:
        mt = cdiv(m, r)
        nt = cdiv(n, c)
        period = max(k, min_tile_gap)
        r_last = m - (mt - 1) * r - 1
        return GemmPhases(GEMM_CMD_CYCLES, mt * k, nt * k, n, (nt * mt - 1) * period + k,
                          drain + drain_delay + r_last, nt * m)
    kf = cdiv(k, r)
    if p.dataflow == DATAFLOW_IS:
        # Transposed ws: the streamed operand is W^T (N rows), the stationary one A^T.
        mtc = cdiv(m, c)
        steps = mtc * kf
        period = max(n, r)
        return GemmPhases(GEMM_CMD_CYCLES, mtc * k, n * kf, n, r + (steps - 1) * period + n,
                          drain, mtc * n)
    nt = cdiv(n, c)
    steps = nt * kf
    period = max(m, r)
    return GemmPhases(GEMM_CMD_CYCLES, m * kf, nt * k, n, r + (steps - 1) * period + m,
                      drain, nt * m)


@njit(cache=True)
def gemm_cycles(p, m, k, n, out32):
    """Cycles of one GEMM unit invocation, first input handshake to last output handshake.

    ``cmd + max(a_beats, w_beats, ch_beats) + compute + drain`` of :func:`gemm_phases`.
    """
    ph = gemm_phases(p, m, k, n, out32)
    return ph.cmd + max(ph.a_beats, ph.w_beats, ph.ch_beats) + ph.compute + ph.drain


@njit(cache=True)
def gemm_utilization(p, m, k, n):
    """Compute-phase utilization in parts per million: ``MACs / (R * C * compute)``."""
    compute = gemm_phases(p, m, k, n, 1).compute
    return (m * k * n * 1_000_000) // (p.rows * p.cols * compute)
