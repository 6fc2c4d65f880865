"""The dense ConvUnit's timing (rtl/conv/dense.py): one band, a sequence of bands.

This is the timing contract of the RTL ``ConvUnit``: for every sequence of calls, with
every input stream valid on every cycle and ``o.ready`` always high, the RTL takes
exactly these cycles (tests/rtl/test_conv_dense.py and tests/cocotb/tb_conv.py measure
it). The unit is the GEMM unit's ``ws`` pipeline with an im2col A address, so this is
:func:`edgetron.sim.units.gemm_timing.gemm_step` with its closed-form compute phase
replaced by an exact per-row recurrence where rows can wait for their band words.

A call (``edgetron.hw.conv.CONV_FIELDS``) is the GEMM ``(M, K, N)`` of
:func:`edgetron.hw.conv.conv_geometry`; its ``S = N//^C * r * s * cb`` fold steps
``(nt, i, j, cb_i)`` issue rows ``t = (oh, ow)`` in raster order. Row ``t`` of a step
reads band word ``((oh*sh + i - pt) * w + ow*sw + j - pl) * cb + cb_i`` (none in the
padding); with the a stream's first beat at ``L^a`` that word is readable from cycle
``L^a + word + 1``, and the column tile's channels from ``L^ch + CC`` (``CC``: ``N`` if
:func:`~edgetron.hw.gemm.gemm_channels_first`, else ``min(N, (nt+1)*C)``). So::

    issue(step, 0) = max(ready(step), avail(step, 0))
    issue(step, t) = max(issue(step, t-1) + 1, avail(step, t))
    ready(0)       = max(E_{i-1}, max(A_{i-1}, L^w_i + 1) + R)     (gemm_step's I0 terms)
    ready(step+1)  = max(issue(step, M-1) + 1, issue(step, 0) + R)  (the next weight tile)

Once a step is ready after the band's last word and the last channel are in, no row
waits any more, and the remaining steps take ``max(M, R)`` cycles each (the GEMM's
closed form). The command, load, slot and output terms are ``gemm_step``'s.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.hw.conv import conv_geometry, conv_stream_beats
from edgetron.hw.gemm import (
    DATAFLOW_WS,
    GEMM_BUFFER_READ_CYCLES,
    GEMM_CMD_CYCLES,
    GEMM_EPILOGUE_CYCLES,
    GEMM_OUT_CYCLES,
    array_timing,
    cdiv,
    gemm_channels_first,
    gemm_slots,
)

from .gemm_timing import SEQ_COLUMNS, sequence_start

__all__ = ["conv_sequence", "conv_sequence_cycles", "conv_step"]


@njit(cache=True)
def conv_step(p, st, call):
    """Run one ConvUnit call (int64 array of ``CONV_FIELDS``) after the state ``st`` of
    :func:`~edgetron.sim.units.gemm_timing.sequence_start`; returns ``(state, times)``,
    ``times`` the columns of :data:`~edgetron.sim.units.gemm_timing.SEQ_COLUMNS`."""
    hs0, le_a, le_w, le_ch, e1, e2, f1, f2, core, out = st
    hb, w, c, n = call[0], call[1], call[2], call[3]
    r, s, sh, sw = call[4], call[5], call[6], call[7]
    pt, pb, pl, pr = call[8], call[9], call[10], call[11]
    rows, cols = p.rows, p.cols
    cb, ho, wo, m, _ = conv_geometry(rows, hb, w, c, r, s, sh, sw, pt, pb, pl, pr)
    ba, bw, bc, _ = conv_stream_beats(p, hb, w, c, n, r, s, sh, sw, pt, pb, pl, pr)
    two = gemm_slots(p) == 2
    hs = max(hs0 + GEMM_CMD_CYCLES, e2 if two else e1)
    alloc = hs + GEMM_CMD_CYCLES
    la = max(alloc, le_a)
    lw = max(alloc, le_w)
    lc = max(alloc, le_ch, f2 if two else f1)
    drain0 = (GEMM_BUFFER_READ_CYCLES + array_timing(rows, cols, DATAFLOW_WS)[0]
              + GEMM_EPILOGUE_CYCLES + GEMM_OUT_CYCLES)
    kf = r * s * cb
    steps = cdiv(n, cols) * kf
    period = max(m, rows)
    ch_first = gemm_channels_first(p)
    settled = max(la + ba, lc + n)          # from here on no row waits
    ready = max(e1, max(core, lw + 1) + rows)
    first = -1
    out_first = -1
    last_start = 0
    end = 0
    for step in range(steps):
        if ready >= settled:
            if first < 0:
                first = ready
            if out_first < 0:
                out_first = ready + (kf - 1 - step) * period + drain0
            last_start = ready + (steps - 1 - step) * period
            end = last_start + m
            break
        nt, f = step // kf, step % kf
        i, j, cbi = f // (s * cb), (f // cb) % s, f % cb
        ch = lc + (n if ch_first else min(n, (nt + 1) * cols))
        nxt = ready
        start = -1
        for oh in range(ho):
            y = oh * sh + i - pt
            for ow in range(wo):
                x = ow * sw + j - pl
                avail = ch
                if 0 <= y < hb and 0 <= x < w:
                    avail = max(avail, la + (y * w + x) * cb + cbi + 1)
                nxt = max(nxt, avail)
                if start < 0:
                    start = nxt
                nxt += 1
        if first < 0:
            first = start
        if nt == 0 and f == kf - 1:
            out_first = start + drain0
        last_start = start
        end = nxt
        ready = max(nxt, start + rows)
    pf = end + drain0 - GEMM_EPILOGUE_CYCLES - GEMM_OUT_CYCLES
    last_out = end + drain0 - 1
    new = (hs, la + ba, lw + bw, lc + bc, end, e1, pf, f1, last_start, max(out, last_out))
    return new, (hs, la, lw, lc, first, end, out_first, last_out)


@njit(cache=True)
def conv_sequence(p, calls):
    """Per-call times (:data:`~edgetron.sim.units.gemm_timing.SEQ_COLUMNS`, absolute
    cycles, the first command at cycle 0) of ConvUnit calls back to back at full input
    rate. ``calls``: int64 ``[n, 12]`` of ``CONV_FIELDS``, each accepted by
    :func:`edgetron.hw.conv.conv_fits`. Returns int64 ``[n, 8]``."""
    st = sequence_start()
    res = np.empty((calls.shape[0], len(SEQ_COLUMNS)), np.int64)
    for i in range(calls.shape[0]):
        st, times = conv_step(p, st, calls[i])
        for j in range(len(SEQ_COLUMNS)):
            res[i, j] = times[j]
    return res


@njit(cache=True)
def conv_sequence_cycles(p, calls):
    """Cycles of a sequence of ConvUnit calls, first command handshake to last output
    handshake (both included)."""
    return conv_sequence(p, calls)[-1, len(SEQ_COLUMNS) - 1] + 1
