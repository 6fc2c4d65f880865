"""GEMM timing of the systolic array: exact cycles of one ``rtl/matmul.py:MatmulUnit`` call.

Every function here is a pure, integer-only Numba function of ``(SimParams, M, K, N,
out32)``. For the weight-stationary (``ws``) and output-stationary (``os``)
dataflows the result equals, cycle for cycle, what the RTL GEMM unit takes
(``tests/rtl/test_matmul.py`` and the cocotb testbenches assert it). The
input-stationary (``is``) dataflow has no RTL: it is modelled as the transposed
counterpart of ``ws`` (see below) and is *not* RTL-verified.

One invocation (docs/rtl.md has the microarchitecture)
------------------------------------------------------
The unit accepts a command ``(M, K, N, out32)``, loads the operands into its local
buffers, computes, and streams ``ceil(N/C) * M`` output vectors of ``C`` lanes.
``matmul_cycles`` counts the cycles from the first input handshake (the command)
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

so ``matmul_cycles = cmd + max(a_beats, w_beats, ch_beats) + compute + drain``
(:func:`matmul_phases` returns every term).

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

Buffer limits (:func:`matmul_fits`, :func:`matmul_max_shape`) are those of
``rtl/matmul.py:matmul_limits``: each SRAM holds whole words of one array edge
(``rows`` or ``cols`` lanes of ``ceil(bits/8)`` bytes each) and a parameter memory
holds ``rows`` words of ``cols`` channels (``N <= R*C``). With ``DA``, ``DW``, ``DO``
the A, W and accumulator words (:func:`matmul_buffer_words`)::

    ws: M * K//^R <= DA (R lanes)   N//^C * K <= DW (C lanes)   M <= DO
    os: M//^R * K <= DA (R lanes)   N//^C * K <= DW (C lanes)   (accumulators in the PEs)
    is: M//^C * K <= DA (C lanes)   N * K//^R <= DW (R lanes)   N <= DO

One call uses the whole of every buffer: the RTL does not overlap consecutive calls
(``double_buffer`` is not implemented in ``rtl/``), so a sequence of calls takes the
sum of their ``matmul_cycles``; the next command is accepted in the cycle after the
previous call's last output.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import njit

__all__ = [
    "DATAFLOW_IS",
    "DATAFLOW_OS",
    "DATAFLOW_WS",
    "REQUANT_LATENCY",
    "MatmulPhases",
    "cdiv",
    "element_bytes",
    "matmul_buffer_words",
    "matmul_cycles",
    "matmul_fits",
    "matmul_max_shape",
    "matmul_phases",
    "matmul_utilization",
]

#: Dataflow codes of ``SimParams.dataflow`` (``edgetron.config.DATAFLOWS``).
DATAFLOW_WS, DATAFLOW_OS, DATAFLOW_IS = 0, 1, 2
#: Cycles of ``rtl/requant.py:Requantizer`` from input handshake to output handshake
#: (multiply, shift-and-round, saturate); a test asserts it equals ``Requantizer.LATENCY``.
REQUANT_LATENCY = 3
#: Cycles of the command phase: the handshake, then the registered shape check.
_CMD_CYCLES = 2


class MatmulPhases(NamedTuple):
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
def cdiv(x, y):
    """``ceil(x / y)`` for positive integers."""
    return (x + y - 1) // y


@njit(cache=True)
def element_bytes(bits):
    """Bytes one ``bits``-wide element takes in a buffer, ``ceil(bits / 8)``."""
    return (bits + 7) // 8


@njit(cache=True)
def matmul_buffer_words(p):
    """Words of the A, W, accumulator and parameter buffers of the GEMM unit.

    Returns ``(a_words, w_words, acc_words, param_words)``. ``ws`` and ``os``: A words
    are ``rows`` lanes, W and accumulator words ``cols`` lanes; ``is`` exchanges the
    roles (A words ``cols`` lanes, W words ``rows`` lanes). The parameter memory holds
    ``rows`` words of ``cols`` channels. ``acc_words`` is 0 for ``os`` (accumulation
    happens inside the PEs).
    """
    r, c = p.rows, p.cols
    if p.dataflow == DATAFLOW_IS:
        a_words = p.ifmap_sram_bytes // (c * element_bytes(p.input_bits))
        w_words = p.weight_sram_bytes // (r * element_bytes(p.weight_bits))
    else:
        a_words = p.ifmap_sram_bytes // (r * element_bytes(p.input_bits))
        w_words = p.weight_sram_bytes // (c * element_bytes(p.weight_bits))
    acc_words = 0
    if p.dataflow != DATAFLOW_OS:
        acc_words = p.ofmap_sram_bytes // (c * element_bytes(p.acc_bits))
    return a_words, w_words, acc_words, r


@njit(cache=True)
def matmul_fits(p, m, k, n):
    """True when one invocation accepts the shape ``(M, K, N)`` (all >= 1, buffers fit)."""
    if m < 1 or k < 1 or n < 1:
        return False
    r, c = p.rows, p.cols
    a_words, w_words, acc_words, param_words = matmul_buffer_words(p)
    if p.dataflow == DATAFLOW_WS:
        return (m * cdiv(k, r) <= a_words and cdiv(n, c) * k <= w_words
                and m <= acc_words and cdiv(n, c) <= param_words)
    if p.dataflow == DATAFLOW_OS:
        return (cdiv(m, r) * k <= a_words and cdiv(n, c) * k <= w_words
                and cdiv(n, c) <= param_words)
    return (cdiv(m, c) * k <= a_words and n * cdiv(k, r) <= w_words
            and n <= acc_words and cdiv(n, c) <= param_words)


@njit(cache=True)
def matmul_max_shape(p):
    """Largest ``(M, K, N)`` of one invocation, each with the other two at 1.

    A shape is accepted when :func:`matmul_fits` says so; the three maxima cannot
    in general be reached together (the buffers hold products such as ``M * K``).
    """
    r, c = p.rows, p.cols
    a_words, w_words, acc_words, param_words = matmul_buffer_words(p)
    if p.dataflow == DATAFLOW_WS:
        return min(a_words, acc_words), min(a_words * r, w_words), c * min(param_words, w_words)
    if p.dataflow == DATAFLOW_OS:
        return a_words * r, min(a_words, w_words), c * min(param_words, w_words)
    n_max = min(w_words, acc_words, c * param_words)
    return a_words * c, min(w_words * r, a_words), n_max


@njit(cache=True)
def matmul_phases(p, m, k, n, out32):
    """Cycle breakdown of one invocation, a :class:`MatmulPhases`.

    See the module docstring for the formulas; the shape must satisfy
    :func:`matmul_fits` (not checked here).
    """
    r, c = p.rows, p.cols
    lat = 0 if out32 else REQUANT_LATENCY
    if p.dataflow == DATAFLOW_OS:
        mt = cdiv(m, r)
        nt = cdiv(n, c)
        period = max(k, 2 * r - 1)
        r_last = m - (mt - 1) * r - 1
        return MatmulPhases(_CMD_CYCLES, mt * k, nt * k, n, (nt * mt - 1) * period + k,
                            r + c + r_last + 1 + lat, nt * m)
    kf = cdiv(k, r)
    if p.dataflow == DATAFLOW_IS:
        # Transposed ws: the streamed operand is W^T (N rows), the stationary one A^T.
        mtc = cdiv(m, c)
        steps = mtc * kf
        period = max(n, r)
        return MatmulPhases(_CMD_CYCLES, mtc * k, n * kf, n, r + (steps - 1) * period + n,
                            r + c + 1 + lat, mtc * n)
    nt = cdiv(n, c)
    steps = nt * kf
    period = max(m, r)
    return MatmulPhases(_CMD_CYCLES, m * kf, nt * k, n, r + (steps - 1) * period + m,
                        r + c + 1 + lat, nt * m)


@njit(cache=True)
def matmul_cycles(p, m, k, n, out32):
    """Cycles of one GEMM unit invocation, first input handshake to last output handshake.

    ``cmd + max(a_beats, w_beats, ch_beats) + compute + drain`` of :func:`matmul_phases`.
    """
    ph = matmul_phases(p, m, k, n, out32)
    return ph.cmd + max(ph.a_beats, ph.w_beats, ph.ch_beats) + ph.compute + ph.drain


@njit(cache=True)
def matmul_utilization(p, m, k, n):
    """Compute-phase utilization in parts per million: ``MACs / (R * C * compute)``."""
    compute = matmul_phases(p, m, k, n, 1).compute
    return (m * k * n * 1_000_000) // (p.rows * p.cols * compute)
