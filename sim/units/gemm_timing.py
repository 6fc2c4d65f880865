"""The GEMM unit's timing model: one call, and a sequence of calls the way the RTL runs it.

This is the timing contract of the RTL ``GemmUnit`` (``rtl/gemm/``): for every shape and
every sequence of calls, with every input stream valid on every cycle and ``o.ready``
always high, the RTL takes exactly these cycles (tests/rtl/test_gemm.py and the cocotb
testbenches measure it). docs/rtl.md derives the formulas from the microarchitecture;
the fixed latencies come from :mod:`edgetron.hw.gemm`. Everything here is integer-only
Numba code; ``is`` (no RTL) is modelled as the transposed ``ws``.

The unit in four lines
----------------------
A command is taken (``cmd``, 4 cycles with the pipelined shape check) when a slot is free (2 slots
with ``double_buffer``, else 1); its three operand streams then load into the slot, each
at one beat per cycle, each starting as soon as it has finished the previous call's beats.
The array starts a call as soon as the operands of its first fold are in (and the
previous call has issued its last row); later folds never wait for operands at full rate.
A slot is free again when its call has issued its last row, its parameter half when that
row's results have passed the epilogue.

Notation (cycles are absolute, the first command handshake is cycle 0): ``R, C`` the
array, ``x//^y = ceil(x / y)``, ``KF = K//^R``, ``NT = N//^C``, ``MT = M//^R``,
``CC0 = N`` if :func:`~edgetron.hw.gemm.gemm_channels_first` else ``min(N, C)``.

One call from an idle unit (:func:`gemm_phases`)
------------------------------------------------
``cycles = cmd + fill + compute + drain`` with ``cmd = GEMM_CMD_CYCLES = 4`` and

* ``ws``: ``fill = max(R + 1, CC0)`` (the first weight tile is written row by row as
  its beats arrive, one cycle behind them), ``compute = (S - 1) * max(M, R) + M`` with
  ``S = NT * KF`` fold steps, ``drain = 2 + (R + C + 1) + 1 + OUT`` (buffer read and its
  output register, array with the PEs' three-stage MAC, epilogue register, output stage);
* ``os``: ``fill = max(1, CC0)``, ``compute = (NT * MT - 1) * max(K, 2R - 1) + K``,
  ``drain = 2 + (R + 2) + r_last + (C - 1) + 1 + OUT`` with ``r_last = M - (MT - 1) * R - 1``
  (the drain delay ``R + 2``, the de-skew ``C - 1``);

``OUT = REQUANT_LATENCY + GEMM_OUT_FIFO_CYCLES = 7`` in both output modes (the values of
:mod:`edgetron.hw.gemm`; the code uses the constants).

A sequence (:func:`gemm_step`, :func:`gemm_sequence`)
----------------------------------------------------
Call ``i`` after the calls before it (``E`` the cycle after a call's last issue, ``F``
the cycle its parameter half is free, ``NS`` the slots, ``b_X`` the beats of stream X)::

    hs_i  = max(hs_{i-1} + 4, E_{i-NS})              command handshake
    L^X_i = max(hs_i + 4, L^X_{i-1} + b^X_{i-1})      first beat of stream X (a, w)
    L^ch_i = max(hs_i + 4, L^ch_{i-1} + b^ch_{i-1}, F_{i-NS})

    ws: W0 = max(A_{i-1}, L^w_i + 1) + R                first weight tile written
        I0 = max(E_{i-1}, W0, L^a_i + 1, L^ch_i + CC0)  first row issued
        A_i = I0 + (S - 1) * max(M, R)                  its last fold step starts
        E_i = A_i + M,  F_i = E_i + R + C + 3
    os: I0 = max(x_{i-1} + 1, L^a_i + 1, L^w_i + 1, L^ch_i + CC0)
        x_i = max(I0 + K - 1, x_{i-1} + 2R - 1) + (NT * MT - 1) * max(K, 2R - 1)
        E_i = x_i + 1,  F_i = E_i + R + C + r_last + 3

and its last output handshake is ``E_i + drain_i - 1``. ``A_{i-1}`` (ws) is where the
previous call's last step started: the first weight tile of call ``i`` goes into the
idle bank while that step streams its rows, so back to back the steps of two calls
follow each other like the steps of one. ``x_{i-1}`` (os) is the previous call's last
operand pair: the gap of ``2R - 1`` between the last pairs of two tiles holds across
calls too. The state carried from call to call is the tuple of :func:`sequence_start`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edgetron.hw.gemm import (
    DATAFLOW_IS,
    DATAFLOW_OS,
    GEMM_BUFFER_READ_CYCLES,
    GEMM_CMD_CYCLES,
    GEMM_EPILOGUE_CYCLES,
    GEMM_OUT_CYCLES,
    array_timing,
    cdiv,
    gemm_channels_first,
    gemm_slots,
    gemm_stream_beats,
)

__all__ = [
    "NEVER",
    "SEQ_COLUMNS",
    "GemmPhases",
    "gemm_cycles",
    "gemm_phases",
    "gemm_sequence",
    "gemm_sequence_cycles",
    "gemm_step",
    "gemm_utilization",
    "sequence_start",
    "state_relative",
    "state_shift",
]

#: A time before everything (the state of an idle unit).
NEVER = -(1 << 40)
#: Columns of :func:`gemm_sequence`'s result, one row per call (absolute cycles): the
#: command handshake, the first beat of the a, w and ch streams, the first issue, the
#: cycle after the last issue (``E``), the first and the last output handshake.
SEQ_COLUMNS = ("cmd", "a_first", "w_first", "ch_first", "issue_first", "issue_end",
               "out_first", "out_last")


class GemmPhases(NamedTuple):
    """Cycle breakdown of one GEMM-unit call from an idle unit (module docstring).

    ``total = cmd + fill + compute + drain``; the beats per stream are for reference.
    """

    cmd: int
    a_beats: int
    w_beats: int
    ch_beats: int
    fill: int
    compute: int
    drain: int
    out_beats: int


@njit(cache=True)
def _call_terms(p, m, k, n):
    """The closed-form terms of one call: ``(ws_like, steps, period, rows, cc0, drain0,
    r_last)``.

    ``ws_like``: 1 for ws and is (a weight writer and a row issuer), 0 for os; ``steps``:
    fold steps (ws, is) or tiles (os); ``period``: cycles per step or tile; ``rows``:
    rows issued per step (ws ``M``, is ``N``) or pairs per tile (os ``K``); ``cc0``:
    channels the first issue waits for; ``drain0``: the drain without ``r_last``.
    """
    r, c = p.rows, p.cols
    latency, drain_delay, min_tile_gap = array_timing(r, c, p.dataflow)
    cc0 = n if gemm_channels_first(p) else min(n, c)
    drain0 = GEMM_BUFFER_READ_CYCLES + latency + GEMM_EPILOGUE_CYCLES + GEMM_OUT_CYCLES
    kf = cdiv(k, r)
    if p.dataflow == DATAFLOW_OS:
        mt = cdiv(m, r)
        return 0, cdiv(n, c) * mt, max(k, min_tile_gap), k, cc0, drain0 + drain_delay, \
            m - (mt - 1) * r - 1
    if p.dataflow == DATAFLOW_IS:
        return 1, cdiv(m, c) * kf, max(n, r), n, cc0, drain0, 0
    return 1, cdiv(n, c) * kf, max(m, r), m, cc0, drain0, 0


@njit(cache=True)
def gemm_phases(p, m, k, n, out32):
    """Cycle breakdown of one call from an idle unit, a :class:`GemmPhases`.

    The shape must satisfy :func:`edgetron.hw.gemm.gemm_fits` (not checked here).
    ``out32`` does not change the cycles (both modes pass the same output stage); it is
    taken for the interface of the other unit models.
    """
    a, w, ch, o = gemm_stream_beats(p, m, k, n)
    if p.dataflow == DATAFLOW_IS:
        o = cdiv(m, p.cols) * n        # the transposed ws streams C^T
    ws_like, steps, period, rows, cc0, drain0, r_last = _call_terms(p, m, k, n)
    if ws_like == 1:
        fill = max(p.rows + 1, cc0)
    else:
        fill = max(1, cc0)
    return GemmPhases(GEMM_CMD_CYCLES, a, w, ch, fill, (steps - 1) * period + rows,
                      drain0 + r_last, o)


@njit(cache=True)
def gemm_cycles(p, m, k, n, out32):
    """Cycles of one call from an idle unit, command handshake to last output handshake
    (both included): ``cmd + fill + compute + drain`` of :func:`gemm_phases`."""
    ph = gemm_phases(p, m, k, n, out32)
    return ph.cmd + ph.fill + ph.compute + ph.drain


@njit(cache=True)
def gemm_utilization(p, m, k, n):
    """Compute-phase utilization in parts per million: ``MACs / (R * C * compute)``."""
    compute = gemm_phases(p, m, k, n, 1).compute
    return (m * k * n * 1_000_000) // (p.rows * p.cols * compute)


# ------------------------------------------------------------------------------------------
# Sequences
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def sequence_start():
    """The state of an idle unit whose first command comes in cycle 0.

    ``(hs, le_a, le_w, le_ch, e1, e2, f1, f2, core, out)``: the previous command
    handshake; the cycle after the previous call's last beat per stream; ``E`` and ``F``
    of the previous two calls; ws/is the start of the previous call's last fold step, os
    its last operand pair; the last output handshake so far.
    """
    return (-GEMM_CMD_CYCLES, 0, 0, 0, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER)


@njit(cache=True)
def gemm_step(p, st, m, k, n, out32):
    """Run one call ``(M, K, N)`` after the state ``st``; returns ``(state, times)``.

    ``times`` are the columns of :data:`SEQ_COLUMNS` for this call. See the module
    docstring for the recurrence; ``out32`` does not change the timing.
    """
    hs0, le_a, le_w, le_ch, e1, e2, f1, f2, core, out = st
    r = p.rows
    two = gemm_slots(p) == 2
    free = e2 if two else e1
    pfree = f2 if two else f1
    hs = max(hs0 + GEMM_CMD_CYCLES, free)
    alloc = hs + GEMM_CMD_CYCLES
    la = max(alloc, le_a)
    lw = max(alloc, le_w)
    lc = max(alloc, le_ch, pfree)
    ba, bw, bc, _ = gemm_stream_beats(p, m, k, n)
    ws_like, steps, period, rows, cc0, drain0, r_last = _call_terms(p, m, k, n)
    if ws_like == 1:
        # is: the stationary operand (A^T) is the one the weight writer takes.
        lwr, lis = (la, lw) if p.dataflow == DATAFLOW_IS else (lw, la)
        tile0 = max(core, lwr + 1) + r
        first = max(e1, tile0, lis + 1, lc + cc0)
        last_step = first + (steps - 1) * period
        end = last_step + rows
        new_core = last_step
        # The first results: row 0 of the last fold of column tile 0.
        kf = cdiv(k, r)
        out_first = first + (kf - 1) * period + drain0
    else:
        first = max(core + 1, la + 1, lw + 1, lc + cc0)
        x0 = max(first + rows - 1, core + 2 * r - 1)
        if rows == 1:
            first = x0          # the only pair of the first tile is its last
        new_core = x0 + (steps - 1) * period
        end = new_core + 1
        out_first = x0 + drain0
    # The last results read the parameter half in the epilogue register's input stage.
    pf = end + drain0 - GEMM_EPILOGUE_CYCLES - GEMM_OUT_CYCLES + r_last
    last_out = end + drain0 + r_last - 1
    new = (hs, la + ba, lw + bw, lc + bc, end, e1, pf, f1, new_core, max(out, last_out))
    return new, (hs, la, lw, lc, first, end, out_first, last_out)


@njit(cache=True)
def gemm_sequence(p, shapes):
    """Per-call times of a sequence of calls at full input rate (:data:`SEQ_COLUMNS`).

    ``shapes`` is an int64 array ``[calls, 4]`` of ``(M, K, N, out32)``, every shape
    accepted by the unit (:func:`edgetron.hw.gemm.gemm_fits`); the first command is taken
    in cycle 0. Returns an int64 array ``[calls, 8]``.
    """
    st = sequence_start()
    out = np.empty((shapes.shape[0], len(SEQ_COLUMNS)), np.int64)
    for i in range(shapes.shape[0]):
        st, times = gemm_step(p, st, shapes[i, 0], shapes[i, 1], shapes[i, 2], shapes[i, 3])
        for j in range(len(SEQ_COLUMNS)):
            out[i, j] = times[j]
    return out


@njit(cache=True)
def gemm_sequence_cycles(p, shapes):
    """Cycles of a sequence of calls, the first command handshake to the last output
    handshake (both included), at full input rate and with ``o.ready`` always high."""
    return gemm_sequence(p, shapes)[-1, len(SEQ_COLUMNS) - 1] + 1


@njit(cache=True)
def state_relative(p, st):
    """``st`` relative to its last command handshake, times long past clamped.

    Two states with equal relative states behave alike: every later call of the same
    shapes takes the same cycles, shifted by the difference of their handshakes (the
    recurrence is made of ``max`` and ``+`` only). Any time more than ``2R + 4`` cycles
    before the last handshake can no longer decide a ``max`` of the next call, which
    starts at least 4 cycles after it (so the clamp keeps that equivalence exact).
    """
    hs = st[0]
    floor = -(2 * p.rows + 4)
    return (0, max(st[1] - hs, floor), max(st[2] - hs, floor), max(st[3] - hs, floor),
            max(st[4] - hs, floor), max(st[5] - hs, floor), max(st[6] - hs, floor),
            max(st[7] - hs, floor), max(st[8] - hs, floor), max(st[9] - hs, floor))


@njit(cache=True)
def state_shift(st, delta):
    """``st`` with every time ``delta`` cycles later."""
    return (st[0] + delta, st[1] + delta, st[2] + delta, st[3] + delta, st[4] + delta,
            st[5] + delta, st[6] + delta, st[7] + delta, st[8] + delta, st[9] + delta)
