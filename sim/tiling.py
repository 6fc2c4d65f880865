"""How a matrix op becomes GEMM-unit calls, and what those calls cost and move.

A matrix op (``gemm``, ``conv2d``, ``dwconv2d``) is ``count`` products ``(M x K) @ (K x N)``
(its GEMM view). The planner here cuts each product into calls of the GEMM unit
(:mod:`edgetron.sim.units.gemm` times them), costs the sequence of calls the way the RTL
runs it, and accounts the op's cycles, DRAM and SRAM traffic and events into its result
row (:data:`edgetron.sim.records.COLUMNS`); the machine is described in
:mod:`edgetron.sim.memory`.

Tiling of a matrix op (:func:`plan_gemm`)
-----------------------------------------
Each of the op's ``count`` products ``(M x K) @ (K x N)`` is cut into GEMM-unit calls of
at most ``mt x kt x nt`` that one call accepts (:func:`edgetron.hw.gemm.gemm_fits`: with
``double_buffer`` a call has one slot, half of the A and W buffers). Every call streams its
whole A, B and per-channel parameter tile into the unit (the unit reloads its buffers per
call), so a tile of ``mt`` rows re-fetches B ``ceil(M / mt)`` times and A ``ceil(N / nt)``
times: small buffers force re-fetch. The planner tries ``kt``: the whole ``K`` if a call of
one row and one column accepts it, else the largest fitting number of whole array folds
(the *K split*: the calls then emit int32 partial sums, which leave the array and are
summed, then requantized, by the add unit); ``nt``: every multiple of ``C`` up to the
largest that fits (one candidate per number of column tiles), and ``N`` itself (narrower
than ``C`` only if none of those fits); ``mt``: the largest that fits with them (for
``os`` a multiple of ``R``: a call's row tiles are then all full but the last call's);
tile sizes are then evened out over the calls (``os`` in multiples of ``R``); the fewest
cycles (then the least DRAM traffic) wins. When not even a ``1 x 1 x 1`` call fits, the op
gets the error code of the buffer below one word per slot
(:data:`~edgetron.sim.records.ERR_TILE_IFMAP`, ...).

Cost of a matrix op (:func:`gemm_costs`)
----------------------------------------
The calls run back to back in the order of the functional kernel (per product, per
column tile, per row tile, per K chunk). Their cycles at full input rate, ``T``, are the
RTL's own: the recurrence of :func:`edgetron.sim.units.gemm.gemm_step` over the calls
(each call's closed form, overlapped with the calls before it), with runs of identical
calls and blocks extrapolated once their timing is stationary (:func:`op_sequence`). The
DMA streams the operands from DRAM and the results back through the config's ports
(:func:`edgetron.sim.memory.port_cycles`), each at its bandwidth; so the op takes

    cycles = max(T, T_port for every port)

where a port that carries inputs cannot finish before ``tail`` cycles before the end
(once the last operands are needed, the unit still streams the last fold step, or issues
the last operand pair, and drains), and a
port that carries results cannot start before the first result (``head`` cycles from the
start): ``T_port = max(bytes/BW, in/BW + tail - 1, head - 1 + out/BW)`` (the cycle of the
last step's start and of the first result counted once). With a K split the add unit's
partial-sum pass (:func:`edgetron.sim.units.add.psum_accumulate_cycles`) follows, its DRAM
stall the slowest port's excess over it. ``compute`` is ``T``, ``stall`` the rest.

Traffic, with real widths: A and B elements are ``ceil(bits / 8)`` bytes, accumulators
and biases ``ceil(acc_bits / 8)``, one channel's parameters (bias, ``m``, ``s``)
``ceil((acc_bits + 31 + 6) / 8)`` bytes, outputs ``ceil(out_bits / 8)`` or the
accumulator width when not requantized; DRAM per operand (A, B, parameters, output,
partial sums); SRAM per buffer (words as the unit reads and writes them, see
:func:`edgetron.sim.units.gemm.call_counts`). A convolution's A is fetched as raw input rows
(:func:`edgetron.sim.units.conv.im2col_dram_bytes`). With a K split the parameters are fetched
once per output tile, not per chunk: the first chunk's calls fetch the bias
(``ceil(acc_bits / 8)`` bytes per channel), the later chunks' parameter words are zeros
from the DMA (an int32-output call ignores ``m`` and ``s``), and the add unit fetches
``(m, s)`` (:data:`~edgetron.sim.units.gemm.MS_BYTES` per channel) for its requantization.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.hw.gemm import (
    DATAFLOW_IS,
    DATAFLOW_OS,
    cdiv,
    element_bytes,
    gemm_buffer_words,
    gemm_fits,
    gemm_slots,
)

from .memory import port_cycles, vector_stall
from .records import (
    AU_CONV_DENSE,
    AU_DEPTHWISE,
    C_ARRAY_UNIT,
    C_CALLS,
    C_COMPUTE,
    C_CYCLES,
    C_DB,
    C_DRAM_A,
    C_DRAM_B,
    C_DRAM_OUT,
    C_DRAM_PARAM,
    C_DRAM_PSUM,
    C_DRAM_RD,
    C_DRAM_WR,
    C_ERR,
    C_ERR_HAVE,
    C_ERR_NEED,
    C_EV_ADD,
    C_EV_MAC,
    C_EV_MUL,
    C_EV_REG,
    C_IFMAP_RD,
    C_IFMAP_WR,
    C_KCHUNKS,
    C_OFMAP_RD,
    C_OFMAP_WR,
    C_PARAM_RD,
    C_PARAM_WR,
    C_SRAM_RD,
    C_SRAM_WR,
    C_STALL,
    C_TILE_K,
    C_TILE_M,
    C_TILE_N,
    C_VECTOR,
    C_WEIGHT_RD,
    C_WEIGHT_WR,
    ERR_TILE_IFMAP,
    ERR_TILE_OFMAP,
    ERR_TILE_WEIGHT,
    F_A_B,
    F_CG,
    F_COUNT,
    F_H,
    F_IMG,
    F_IS_CONV,
    F_K,
    F_M,
    F_MACS,
    F_N,
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
)
from .units.add import psum_accumulate_cycles
from .units.conv import dw_account, dw_mode, im2col_dram_bytes
from .units.conv_dense import dense_account, dense_mode, dense_plan
from .units.gemm import MS_BYTES, call_counts, ch_bytes
from .units.gemm_timing import gemm_step, sequence_start, state_relative, state_shift

__all__ = [
    "gemm_costs",
    "matrix_costs",
    "op_sequence",
    "plan_gemm",
]


@njit(cache=True)
def _largest(p, which, hi, m, k, n):
    """Largest value in [1, hi] of dimension ``which`` (0 m, 1 k, 2 n) that fits, or 0."""
    lo = 0
    top = hi
    while lo < top:
        mid = (lo + top + 1) // 2
        mm = mid if which == 0 else m
        kk = mid if which == 1 else k
        nn = mid if which == 2 else n
        if gemm_fits(p, mm, kk, nn):
            lo = mid
        else:
            top = mid - 1
    return lo


@njit(cache=True)
def _a_dram(m, k, kt, a_b, geom):
    """DRAM bytes of a call's A tile: ``m * kt`` elements, or raw input rows for a conv."""
    if geom[0] == 0:
        return m * kt * a_b
    return im2col_dram_bytes(m, kt, k, geom[1], geom[2], geom[3], geom[4], geom[5],
                             geom[6], geom[7], geom[8], a_b)


# ------------------------------------------------------------------------------------------
# The sequence of an op's calls
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _same(p, before, after):
    """``after`` is ``before`` shifted: the block that led from one to the other is
    stationary, every further run of it shifts the state by the same cycles."""
    return state_relative(p, before) == state_relative(p, after)


@njit(cache=True)
def _calls(p, st, reps, m, k, n, out32):
    """``reps`` identical calls after ``st``; returns ``(state, first-output cycle)`` (the
    first output of the first of them)."""
    first_out = 0
    i = 0
    while i < reps:
        nxt, times = gemm_step(p, st, m, k, n, out32)
        if i == 0:
            first_out = times[6]
        i += 1
        if _same(p, st, nxt):
            return state_shift(nxt, (nxt[0] - st[0]) * (reps - i)), first_out
        st = nxt
    return st, first_out


@njit(cache=True)
def _k_block(p, st, mm, nn, ks0, ks1, nk, out32):
    """The K chunks of one output tile: ``nk - 1`` calls of ``ks0``, one of ``ks1``."""
    st, first_out = _calls(p, st, nk - 1, mm, ks0, nn, out32)
    st, last_first = _calls(p, st, 1, mm, ks1, nn, out32)
    return st, first_out if nk > 1 else last_first


@njit(cache=True)
def _m_block(p, st, nn, ms0, ms1, nm, ks0, ks1, nk, out32):
    """The row tiles of one column tile: ``nm - 1`` K blocks of ``ms0`` rows, one of
    ``ms1``; the repeated blocks extrapolated once stationary."""
    first_out = -1
    i = 0
    while i < nm - 1:
        nxt, fo = _k_block(p, st, ms0, nn, ks0, ks1, nk, out32)
        first_out = fo if first_out < 0 else first_out
        i += 1
        if _same(p, st, nxt):
            nxt = state_shift(nxt, (nxt[0] - st[0]) * (nm - 1 - i))
            st = nxt
            break
        st = nxt
    st, fo = _k_block(p, st, ms1, nn, ks0, ks1, nk, out32)
    return st, fo if first_out < 0 else first_out


@njit(cache=True)
def _n_block(p, st, ns0, ns1, nn, ms0, ms1, nm, ks0, ks1, nk, out32):
    """The column tiles of one product: ``nn - 1`` row blocks of ``ns0`` columns, one of
    ``ns1``; the repeated blocks extrapolated once stationary."""
    first_out = -1
    i = 0
    while i < nn - 1:
        nxt, fo = _m_block(p, st, ns0, ms0, ms1, nm, ks0, ks1, nk, out32)
        first_out = fo if first_out < 0 else first_out
        i += 1
        if _same(p, st, nxt):
            st = state_shift(nxt, (nxt[0] - st[0]) * (nn - 1 - i))
            break
        st = nxt
    st, fo = _m_block(p, st, ns1, ms0, ms1, nm, ks0, ks1, nk, out32)
    return st, fo if first_out < 0 else first_out


@njit(cache=True)
def op_sequence(p, count, m, k, n, mt, kt, nt, out32):
    """Cycles of the calls of a matrix op, back to back at full input rate:
    ``(T, head, tail)``.

    ``T``: the first command handshake to the last output handshake, both included;
    ``head``: cycles to the first output handshake; ``tail``: cycles from the start of the
    last call's last fold step (ws, is) or its last operand pair (os) to the end, what
    the unit still has to do once its last operands are needed. The order is the
    functional kernel's (per product, per column tile, per row tile, per K chunk); every
    block that repeats (the
    products, the column tiles, the row tiles, the K chunks) is run until its timing is
    stationary and then extrapolated, which is exact (:func:`_same`).
    """
    nm, nk, nn = cdiv(m, mt), cdiv(k, kt), cdiv(n, nt)
    ms1, ks1, ns1 = m - (nm - 1) * mt, k - (nk - 1) * kt, n - (nn - 1) * nt
    st = sequence_start()
    st, head = _n_block(p, st, nt, ns1, nn, mt, ms1, nm, kt, ks1, nk, out32)
    i = 1
    while i < count:
        nxt, _ = _n_block(p, st, nt, ns1, nn, mt, ms1, nm, kt, ks1, nk, out32)
        i += 1
        if _same(p, st, nxt):
            st = state_shift(nxt, (nxt[0] - st[0]) * (count - i))
            break
        st = nxt
    end = st[9] + 1
    return end, head + 1, end - st[8]


# ------------------------------------------------------------------------------------------
# The cost of an op
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _port_bound(p, ifmap, filt, ofmap, head, tail):
    """The cycles the DRAM ports need for the op's transfers, with the head and tail that
    cannot overlap them (module docstring): the slowest port, the inputs alone and then
    the tail, the results alone from the first result on (the first cycles of the tail
    and of the results counted once: with DRAM out of the way the bound stays below the
    unit's own cycles)."""
    a, b, c = port_cycles(p, ifmap, filt, ofmap)
    t_all = max(a, b, c)
    a, b, c = port_cycles(p, ifmap, filt, 0.0)
    t_in = max(a, b, c)
    a, b, c = port_cycles(p, 0.0, 0.0, ofmap)
    t_out = max(a, b, c)
    return max(t_all, t_in + tail - 1, head - 1 + t_out)


@njit(cache=True)
def gemm_costs(p, count, m, k, n, mt, kt, nt, out32, a_b, w_b, out_b, geom, row):
    """Account one matrix op tiled as ``mt x kt x nt`` into ``row`` (see :data:`COLUMNS`).

    Parameters
    ----------
    p : SimParams
        The config.
    count, m, k, n : int
        ``count`` independent ``(m x k) @ (k x n)`` products.
    mt, kt, nt : int
        Tile (one GEMM-unit call); ``kt < k`` is a K split.
    out32 : int
        1 when the op's output is the int32 accumulator (no requantization).
    a_b, w_b, out_b : int
        Bytes per element of A, B and of the requantized output.
    geom : tuple of int
        ``(is_conv, n_img, h, w, c_per_group, out_h, out_w, r, stride_h)``; ``is_conv`` 0
        for a plain GEMM.
    row : float64 array of NCOL
        Filled in (the macs, energy and error columns are left to the caller).
    """
    acc_b = element_bytes(p.acc_bits)
    chb = ch_bytes(p)
    nm = cdiv(m, mt)
    nk = cdiv(k, kt)
    nn = cdiv(n, nt)
    split = nk > 1
    call_out32 = 1 if split else out32
    call_out_b = acc_b if call_out32 == 1 else out_b
    ms0, ms1 = mt, m - (nm - 1) * mt
    ks0, ks1 = kt, k - (nk - 1) * kt
    ns0, ns1 = nt, n - (nn - 1) * nt
    for im in range(2):
        mult_m = nm - 1 if im == 0 else 1
        mm = ms0 if im == 0 else ms1
        for ik in range(2):
            mult_k = nk - 1 if ik == 0 else 1
            kk = ks0 if ik == 0 else ks1
            for jn in range(2):
                mult_n = nn - 1 if jn == 0 else 1
                nn_ = ns0 if jn == 0 else ns1
                mult = mult_m * mult_k * mult_n
                if mult == 0:
                    continue
                (if_rd, if_wr, w_rd, w_wr, of_rd, of_wr, reg,
                 add32) = call_counts(p, mm, kk, nn_, a_b, w_b)
                a_dram = _a_dram(mm, k, kk, a_b, geom)
                b_dram = kk * nn_ * w_b
                # The unit takes nn_ parameter words per call. Without a K split they are
                # the packed (bias, m, s) of DRAM. With one, its calls emit int32 partial
                # sums and ignore (m, s): only the first chunk's calls fetch the bias, the
                # DMA sends zeros for the rest, and (m, s) go to the add unit below.
                # The first of the nk - 1 chunks of class ik == 0 is chunk 0: its share.
                if not split:
                    par = float(nn_ * chb)
                elif ik == 0:
                    par = float(nn_ * acc_b) / mult_k
                else:
                    par = 0.0
                out_dram = mm * nn_ * call_out_b
                f = float(mult * count)
                row[C_DRAM_A] += f * a_dram
                row[C_DRAM_B] += f * b_dram
                row[C_DRAM_PARAM] += f * par
                if split:
                    row[C_DRAM_PSUM] += f * out_dram
                else:
                    row[C_DRAM_OUT] += f * out_dram
                row[C_IFMAP_RD] += f * if_rd
                row[C_IFMAP_WR] += f * if_wr
                row[C_WEIGHT_RD] += f * w_rd
                row[C_WEIGHT_WR] += f * w_wr
                row[C_OFMAP_RD] += f * of_rd
                row[C_OFMAP_WR] += f * of_wr
                row[C_PARAM_RD] += f * nn_ * chb
                row[C_PARAM_WR] += f * nn_ * chb
                row[C_EV_REG] += f * reg
                row[C_EV_ADD] += f * add32
                if call_out32 == 0:
                    row[C_EV_MUL] += f * mm * nn_
                row[C_CALLS] += f
    compute, head, tail = op_sequence(p, count, m, k, n, mt, kt, nt, call_out32)
    ofmap = row[C_DRAM_PSUM] if split else row[C_DRAM_OUT]
    busy = max(float(compute), _port_bound(p, row[C_DRAM_A], row[C_DRAM_B] + row[C_DRAM_PARAM],
                                           ofmap, float(head), float(tail)))
    vector = 0.0
    vstall = 0.0
    if split:
        vector = float(count * psum_accumulate_cycles(p, m * n, nk))
        psum_rd = float(count * nk * m * n * acc_b)
        final = float(count * m * n * (acc_b if out32 == 1 else out_b))
        ms = 0.0 if out32 == 1 else float(count * n * MS_BYTES)
        row[C_DRAM_PSUM] += psum_rd
        row[C_DRAM_OUT] += final
        row[C_DRAM_PARAM] += ms
        vstall = vector_stall(p, vector, psum_rd, ms, final)
        row[C_EV_ADD] += float(count * (nk - 1) * m * n)
        if out32 == 0:
            row[C_EV_MUL] += float(count * m * n)
    row[C_COMPUTE] = compute
    row[C_VECTOR] = vector
    total = np.ceil(busy + vector + vstall)
    row[C_CYCLES] = total
    row[C_STALL] = total - compute - vector
    row[C_DRAM_RD] = row[C_DRAM_A] + row[C_DRAM_B] + row[C_DRAM_PARAM]
    row[C_DRAM_WR] = row[C_DRAM_OUT]
    if split:
        # Partial sums go out once and come back once.
        row[C_DRAM_RD] += row[C_DRAM_PSUM] / 2.0
        row[C_DRAM_WR] += row[C_DRAM_PSUM] / 2.0
    row[C_SRAM_RD] = row[C_IFMAP_RD] + row[C_WEIGHT_RD] + row[C_OFMAP_RD] + row[C_PARAM_RD]
    row[C_SRAM_WR] = row[C_IFMAP_WR] + row[C_WEIGHT_WR] + row[C_OFMAP_WR] + row[C_PARAM_WR]
    row[C_TILE_M] = mt
    row[C_TILE_K] = kt
    row[C_TILE_N] = nt
    row[C_DB] = p.double_buffer
    row[C_KCHUNKS] = nk
    return total


@njit(cache=True)
def _try_tile(p, count, m, k, n, kt, cand, out32, a_b, w_b, out_b, geom, row, best):
    """Cost the tile ``(largest m, kt, cand)`` if it fits; keep it in ``best`` if better."""
    if not gemm_fits(p, 1, kt, cand):
        return False
    r, c = p.rows, p.cols
    mt = _largest(p, 0, m, 1, kt, cand)
    if p.dataflow == DATAFLOW_OS and r <= mt < m:
        mt = (mt // r) * r                       # whole row tiles but in the last call
        mt = min(cdiv(cdiv(m, cdiv(m, mt)), r) * r, mt)
    else:
        mt = cdiv(m, cdiv(m, mt))
    nn = cdiv(n, cand)
    even_n = min(cdiv(cdiv(n, nn), c) * c, cand)
    row[:] = 0.0
    cyc = gemm_costs(p, count, m, k, n, mt, kt, even_n, out32, a_b, w_b, out_b, geom, row)
    dram = row[C_DRAM_RD] + row[C_DRAM_WR]
    if cyc < best[0] or (cyc == best[0] and dram < best[1]):
        best[0] = cyc
        best[1] = dram
        best[2] = mt
        best[3] = kt
        best[4] = even_n
    return True


@njit(cache=True)
def _plan(p, count, m, k, n, out32, a_b, w_b, out_b, geom, row, best):
    """Best tile that fits one call; updates ``best`` = (cycles, dram, mt, kt, nt)."""
    if not gemm_fits(p, 1, 1, 1):
        return
    r, c = p.rows, p.cols
    if gemm_fits(p, 1, k, 1):
        kt = k
    else:
        kt = _largest(p, 1, k, 1, 1, 1)
        if kt >= r:
            kt = (kt // r) * r
        nk = cdiv(k, kt)
        even = cdiv(cdiv(k, nk), r) * r
        if even <= kt:
            kt = even
    # Column tiles: every multiple of C up to the widest call (one candidate per number
    # of column tiles), and N itself.
    widest = _largest(p, 2, n, 1, kt, 1)
    found = False
    if widest >= 1:
        last = -1
        for nn in range(cdiv(n, widest), cdiv(n, c) + 1):
            cand = min(cdiv(cdiv(n, nn), c) * c, widest)
            if cand == last:
                continue
            last = cand
            if _try_tile(p, count, m, k, n, kt, cand, out32, a_b, w_b, out_b, geom, row,
                         best):
                found = True
    # Narrower than the array (the input-stationary W buffer holds N * KF words): halve
    # until a call fits; N = 1 always does, since K was chosen for it.
    nt = min(c, n) // 2
    while not found and nt >= 1:
        found = _try_tile(p, count, m, k, n, kt, nt, out32, a_b, w_b, out_b, geom, row, best)
        nt //= 2


@njit(cache=True)
def _no_tile(p, row):
    """Name the buffer that cannot hold one word of the array per slot (no call fits) in
    ``row``."""
    a_words, w_words, _, _ = gemm_buffer_words(p)
    r, c = p.rows, p.cols
    slots = gemm_slots(p)
    a_lanes, w_lanes = (c, r) if p.dataflow == DATAFLOW_IS else (r, c)
    if a_words < 1:
        row[C_ERR] = ERR_TILE_IFMAP
        row[C_ERR_NEED] = slots * a_lanes * element_bytes(p.input_bits)
        row[C_ERR_HAVE] = p.ifmap_sram_bytes
    elif w_words < 1:
        row[C_ERR] = ERR_TILE_WEIGHT
        row[C_ERR_NEED] = slots * w_lanes * element_bytes(p.weight_bits)
        row[C_ERR_HAVE] = p.weight_sram_bytes
    else:
        row[C_ERR] = ERR_TILE_OFMAP
        row[C_ERR_NEED] = c * element_bytes(p.acc_bits)
        row[C_ERR_HAVE] = p.ofmap_sram_bytes


@njit(cache=True)
def plan_gemm(p, count, m, k, n, out32, a_b, w_b, out_b, geom, row):
    """Choose the tiling of a matrix op and account it into ``row``; returns the cycles.

    See the module docstring. When not even a ``1 x 1 x 1`` call fits (a buffer smaller
    than one word of the array per slot), ``row`` gets the error code of that buffer
    (:data:`ERR_TILE_IFMAP`, ...) and 0 is returned.
    """
    best = np.empty(5)
    best[0] = np.inf
    best[1] = np.inf
    best[2] = 0
    best[3] = 0
    best[4] = 0
    _plan(p, count, m, k, n, out32, a_b, w_b, out_b, geom, row, best)
    row[:] = 0.0
    if best[2] == 0:
        _no_tile(p, row)
        return 0.0
    return gemm_costs(p, count, m, k, n, int(best[2]), int(best[3]), int(best[4]), out32,
                      a_b, w_b, out_b, geom, row)


@njit(cache=True)
def matrix_costs(p, rec, row):
    """Plan and account the matrix op of flat record ``rec`` into ``row`` (zeroed).

    :func:`plan_gemm` on the record's GEMM view and, for a convolution, its window
    geometry; a depthwise convolution that the array's depthwise mode runs
    (:func:`edgetron.sim.units.conv.dw_mode`) is costed by
    :func:`~edgetron.sim.units.conv.dw_account` instead, with the same DRAM port bound.
    The MAC events are the op's MACs. The ``array_unit`` column names the unit that
    ran the op (:data:`edgetron.sim.records.ARRAY_UNITS`; the row is zeroed, so the GEMM
    unit unless set).
    """
    if dw_mode(p, rec):
        row[:] = 0.0
        _finish_unit_row(p, row, dw_account(p, rec, row))
        row[C_EV_MAC] = float(rec[F_MACS])
        row[C_ARRAY_UNIT] = AU_DEPTHWISE
        return
    geom = (rec[F_IS_CONV], rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG], rec[F_OH],
            rec[F_OW], rec[F_R], rec[F_SH])
    plan_gemm(p, rec[F_COUNT], rec[F_M], rec[F_K], rec[F_N], rec[F_OUT32], rec[F_A_B],
              rec[F_W_B], rec[F_OUT_B], geom, row)
    row[C_EV_MAC] = float(rec[F_MACS])
    if dense_mode(p, rec) and row[C_ERR] == 0:
        calls = dense_plan(p, rec[F_H], rec[F_W], rec[F_CG], rec[F_N], rec[F_R], rec[F_S],
                           rec[F_SH], rec[F_SW], rec[F_PT], rec[F_PB], rec[F_PL], rec[F_PR])
        if calls.shape[0] > 0:
            dense = np.zeros_like(row)
            _finish_unit_row(p, dense, dense_account(p, calls, rec[F_IMG], rec[F_A_B],
                                                     rec[F_W_B], rec[F_OUT_B], dense))
            dense[C_EV_MAC] = float(rec[F_MACS])
            dense[C_ARRAY_UNIT] = AU_CONV_DENSE
            if dense[C_CYCLES] < row[C_CYCLES] or (
                    dense[C_CYCLES] == row[C_CYCLES]
                    and dense[C_DRAM_RD] + dense[C_DRAM_WR] < row[C_DRAM_RD] + row[C_DRAM_WR]):
                row[:] = dense


@njit(cache=True)
def _finish_unit_row(p, row, timing):
    """Finish the row of an op a conv unit runs (the depthwise mode, the ConvUnit), its
    traffic accounted: ``timing = (compute, head, tail)`` and the DRAM port bound give
    the cycles; totals of the traffic columns."""
    compute, head, tail = timing
    busy = max(float(compute), _port_bound(p, row[C_DRAM_A], row[C_DRAM_B] + row[C_DRAM_PARAM],
                                           row[C_DRAM_OUT], float(head), float(tail)))
    total = np.ceil(busy)
    row[C_COMPUTE] = compute
    row[C_CYCLES] = total
    row[C_STALL] = total - compute
    row[C_DRAM_RD] = row[C_DRAM_A] + row[C_DRAM_B] + row[C_DRAM_PARAM]
    row[C_DRAM_WR] = row[C_DRAM_OUT]
    row[C_SRAM_RD] = row[C_IFMAP_RD] + row[C_WEIGHT_RD] + row[C_OFMAP_RD] + row[C_PARAM_RD]
    row[C_SRAM_WR] = row[C_IFMAP_WR] + row[C_WEIGHT_WR] + row[C_OFMAP_WR] + row[C_PARAM_WR]
    row[C_DB] = p.double_buffer
    row[C_KCHUNKS] = 1
