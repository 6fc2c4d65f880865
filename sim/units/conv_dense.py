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

from edgetron.hw.conv import (
    CONV_CMD_CYCLES,
    conv_bands,
    conv_fits,
    conv_geometry,
    conv_stream_beats,
)
from edgetron.hw.gemm import (
    DATAFLOW_WS,
    GEMM_BUFFER_READ_CYCLES,
    GEMM_EPILOGUE_CYCLES,
    GEMM_OUT_CYCLES,
    array_timing,
    cdiv,
    gemm_channels_first,
    gemm_slots,
)

from ..records import (
    C_CALLS,
    C_DRAM_A,
    C_DRAM_B,
    C_DRAM_OUT,
    C_DRAM_PARAM,
    C_EV_ADD,
    C_EV_MUL,
    C_EV_REG,
    C_IFMAP_RD,
    C_IFMAP_WR,
    C_OFMAP_RD,
    C_OFMAP_WR,
    C_PARAM_RD,
    C_PARAM_WR,
    C_TILE_K,
    C_TILE_M,
    C_TILE_N,
    C_WEIGHT_RD,
    C_WEIGHT_WR,
    F_COUNT,
    F_IS_CONV,
    F_OUT32,
)
from .gemm import call_counts, ch_bytes
from .gemm_timing import SEQ_COLUMNS, sequence_start, state_relative, state_shift

__all__ = ["conv_sequence", "conv_sequence_cycles", "conv_step", "dense_account",
           "dense_mode", "dense_plan"]


@njit(cache=True)
def conv_start(cmd_cycles):
    """The state of an idle unit whose first command comes in cycle 0:
    :func:`~edgetron.sim.units.gemm_timing.sequence_start` with a command phase of
    ``cmd_cycles`` (the ConvUnit's: ``CONV_CMD_CYCLES``) before the first handshake."""
    st = sequence_start()
    return (-cmd_cycles, st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8], st[9])


@njit(cache=True)
def conv_step(p, st, call, cmd_cycles=CONV_CMD_CYCLES):
    """Run one ConvUnit call (int64 array of ``CONV_FIELDS``) after the state ``st`` of
    :func:`conv_start`; returns ``(state, times)``,
    ``times`` the columns of :data:`~edgetron.sim.units.gemm_timing.SEQ_COLUMNS`."""
    hs0, le_a, le_w, le_ch, e1, e2, f1, f2, core, out = st
    hb, w, c, n = call[0], call[1], call[2], call[3]
    r, s, sh, sw = call[4], call[5], call[6], call[7]
    pt, pb, pl, pr = call[8], call[9], call[10], call[11]
    rows, cols = p.rows, p.cols
    cb, ho, wo, m, _ = conv_geometry(rows, hb, w, c, r, s, sh, sw, pt, pb, pl, pr)
    ba, bw, bc, _ = conv_stream_beats(p, hb, w, c, n, r, s, sh, sw, pt, pb, pl, pr)
    two = gemm_slots(p) == 2
    hs = max(hs0 + cmd_cycles, e2 if two else e1)
    alloc = hs + cmd_cycles
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
def conv_sequence(p, calls, cmd_cycles=CONV_CMD_CYCLES):
    """Per-call times (:data:`~edgetron.sim.units.gemm_timing.SEQ_COLUMNS`, absolute
    cycles, the first command at cycle 0) of ConvUnit calls back to back at full input
    rate. ``calls``: int64 ``[n, 12]`` of ``CONV_FIELDS``, each accepted by
    :func:`edgetron.hw.conv.conv_fits`. Returns int64 ``[n, 8]``. ``cmd_cycles`` is the
    ConvUnit's command phase; another value gives the same machine with another phase
    (the tests set the GEMM unit's to compare the two models)."""
    st = conv_start(cmd_cycles)
    res = np.empty((calls.shape[0], len(SEQ_COLUMNS)), np.int64)
    for i in range(calls.shape[0]):
        st, times = conv_step(p, st, calls[i], cmd_cycles)
        for j in range(len(SEQ_COLUMNS)):
            res[i, j] = times[j]
    return res


@njit(cache=True)
def conv_sequence_cycles(p, calls):
    """Cycles of a sequence of ConvUnit calls, first command handshake to last output
    handshake (both included)."""
    return conv_sequence(p, calls)[-1, len(SEQ_COLUMNS) - 1] + 1


# ------------------------------------------------------------------------------------------
# Costing a conv2d op on the ConvUnit
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _same(p, before, after):
    """``after`` is ``before`` shifted (gemm_timing.state_relative): the calls between
    them are stationary, every further one shifts the state by the same cycles."""
    return state_relative(p, before) == state_relative(p, after)


@njit(cache=True)
def _band_calls(p, st, calls, reps):
    """The band calls ``calls`` (int64 ``[b, 12]``) ``reps`` times after ``st`` (the
    images of a batch); the middle bands, identical calls, extrapolated once their timing
    is stationary. Returns ``(state, first output)``."""
    first_out = -1
    for _ in range(reps):
        i = 0
        while i < calls.shape[0]:
            nxt, times = conv_step(p, st, calls[i])
            if first_out < 0:
                first_out = times[6]
            run = 0                               # identical calls that follow
            while i + 1 + run < calls.shape[0] and (calls[i + 1 + run] == calls[i]).all():
                run += 1
            if run > 0 and _same(p, st, nxt):
                nxt = state_shift(nxt, (nxt[0] - st[0]) * run)
                i += run
            st = nxt
            i += 1
    return st, first_out


@njit(cache=True)
def dense_mode(p, rec):
    """True when the ConvUnit may run the op of flat record ``rec``: a conv2d with one
    group, requantized output, on the ``ws`` array (``edgetron.sim.tiling`` then keeps
    the cheaper of it and the im2col GEMM, the rule of :mod:`edgetron.hw.conv`)."""
    return (rec[F_IS_CONV] == 1 and rec[F_COUNT] == 1 and rec[F_OUT32] == 0
            and p.dataflow == DATAFLOW_WS)


@njit(cache=True)
def _bands_fit(p, h, w, c, n, r, s, sh, sw, pt, pl, pr, oh, ohb):
    """Every band of ``ohb`` output rows fits one ConvUnit call."""
    bands = conv_bands(h, r, sh, pt, oh, ohb)
    for b in range(bands.shape[0]):
        if not conv_fits(p, bands[b, 3], w, c, n, r, s, sh, sw, bands[b, 4], bands[b, 5],
                         pl, pr):
            return False
    return True


@njit(cache=True)
def dense_plan(p, h, w, c, n, r, s, sh, sw, pt, pb, pl, pr):
    """The ConvUnit's calls of one image of a conv2d (``groups = 1``): int64 ``[b, 12]``
    of ``CONV_FIELDS``, for each output-channel group the bands top to bottom; empty
    when no call fits. The most column tiles per call for which bands of one output row
    fit, evened out over the groups; then the tallest bands that fit (a band's words and
    rows grow with its output rows), evened out."""
    oh = (h + pt + pb - r) // sh + 1
    nt_all = cdiv(n, p.cols)
    ng = 0
    for nt in range(nt_all, 0, -1):
        groups = cdiv(nt_all, nt)
        cand = min(n, cdiv(nt_all, groups) * p.cols)
        if _bands_fit(p, h, w, c, cand, r, s, sh, sw, pt, pl, pr, oh, 1):
            ng = cand
            break
    if ng == 0:
        return np.empty((0, 12), np.int64)
    lo, hi = 1, oh                       # the tallest band that fits, by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _bands_fit(p, h, w, c, ng, r, s, sh, sw, pt, pl, pr, oh, mid):
            lo = mid
        else:
            hi = mid - 1
    even = cdiv(oh, cdiv(oh, lo))
    if not _bands_fit(p, h, w, c, ng, r, s, sh, sw, pt, pl, pr, oh, even):
        even = lo
    bands = conv_bands(h, r, sh, pt, oh, even)
    nb = bands.shape[0]
    groups = cdiv(n, ng)
    out = np.empty((groups * nb, 12), np.int64)
    for g in range(groups):
        for b in range(nb):
            i = g * nb + b
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = bands[b, 3], w, c, min(ng, n - g * ng)
            out[i, 4], out[i, 5], out[i, 6], out[i, 7] = r, s, sh, sw
            out[i, 8], out[i, 9], out[i, 10], out[i, 11] = bands[b, 4], bands[b, 5], pl, pr
    return out


@njit(cache=True)
def dense_account(p, calls, n_img, a_b, w_b, out_b, row):
    """Account the ConvUnit's ``calls`` (:func:`dense_plan`) for ``n_img`` images into
    ``row``: traffic, SRAM, events, calls; returns ``(compute, head, tail)`` for the DRAM
    port bound (``edgetron.sim.tiling.matrix_costs`` finishes the row).

    DRAM per call: the band's input rows once (the halo rows of neighbouring bands
    twice, no ``r * s`` duplication), its weights and parameters, its int8 outputs.
    SRAM: the GEMM unit's ``ws`` counts (:func:`edgetron.sim.units.gemm.call_counts`) of
    the call's GEMM view, the A buffer written once per band word.
    """
    rows = p.rows
    chb = ch_bytes(p)
    for i in range(calls.shape[0]):
        hb, w, c, n = calls[i, 0], calls[i, 1], calls[i, 2], calls[i, 3]
        r, s = calls[i, 4], calls[i, 5]
        cb, _, _, m, k = conv_geometry(rows, hb, w, c, r, s, calls[i, 6], calls[i, 7],
                                       calls[i, 8], calls[i, 9], calls[i, 10], calls[i, 11])
        if_rd, _, w_rd, w_wr, of_rd, of_wr, reg, add32 = call_counts(p, m, k, n, a_b, w_b)
        f = float(n_img)
        row[C_DRAM_A] += f * hb * w * c * a_b
        row[C_DRAM_B] += f * r * s * c * n * w_b
        row[C_DRAM_PARAM] += f * n * chb
        row[C_DRAM_OUT] += f * m * n * out_b
        row[C_IFMAP_RD] += f * if_rd
        row[C_IFMAP_WR] += f * hb * w * cb * rows * a_b
        row[C_WEIGHT_RD] += f * w_rd
        row[C_WEIGHT_WR] += f * w_wr
        row[C_OFMAP_RD] += f * of_rd
        row[C_OFMAP_WR] += f * of_wr
        row[C_PARAM_RD] += f * n * chb
        row[C_PARAM_WR] += f * n * chb
        row[C_EV_REG] += f * reg
        row[C_EV_ADD] += f * add32
        row[C_EV_MUL] += f * m * n
        row[C_CALLS] += f
    row[C_TILE_M] = conv_geometry(rows, calls[0, 0], calls[0, 1], calls[0, 2], calls[0, 4],
                                  calls[0, 5], calls[0, 6], calls[0, 7], calls[0, 8],
                                  calls[0, 9], calls[0, 10], calls[0, 11])[3]
    row[C_TILE_K] = calls[0, 4] * calls[0, 5] * calls[0, 2]
    row[C_TILE_N] = calls[0, 3]
    st, head = _band_calls(p, conv_start(CONV_CMD_CYCLES), calls, n_img)
    end = st[9] + 1
    return end, head + 1, end - st[8]
