"""How a matrix op becomes GEMM-unit calls, and what those calls cost and move.

A matrix op (``gemm``, ``conv2d``, ``dwconv2d``) is ``count`` products ``(M x K) @ (K x N)``
(its GEMM view). The planner here cuts each product into calls of the GEMM unit
(:mod:`edgetron.sim.units.gemm` times one call), chooses between the whole buffers and
their double-buffered halves, and accounts the op's cycles, DRAM and SRAM traffic and
events into its result row (:data:`edgetron.sim.records.COLUMNS`); the machine is
described in :mod:`edgetron.sim.memory`.

Tiling of a matrix op (:func:`plan_gemm`)
-----------------------------------------
Each of the op's ``count`` products ``(M x K) @ (K x N)`` is cut into GEMM-unit calls of
at most ``mt x kt x nt`` that the buffers accept (:func:`tile_fits`). Every call streams
its whole A, B and per-channel parameter tile into the unit (the unit reloads its
buffers per call), so a tile of ``mt`` rows re-fetches B ``ceil(M / mt)`` times and A
``ceil(N / nt)`` times: small buffers force re-fetch. The planner tries ``kt``: the whole
``K`` if a call of one row and one column accepts it, else the largest fitting number of
whole array folds (the *K split*: the calls then emit int32 partial sums, which leave the
array and are summed, then requantized, by the add unit); ``nt``: ``cols * 2**j`` and
``N`` (halved below ``cols`` only if none of those fits); ``mt``: the largest that fits
with them; tile sizes are then evened out over the calls; the fewest cycles (then the
least DRAM traffic) wins. When not even a ``1 x 1 x 1`` call fits, the op gets the error
code of the buffer below one array word (:data:`~edgetron.sim.records.ERR_TILE_IFMAP`, ...).

Double buffering (``double_buffer``; a DMA feature, not in ``rtl/``): each buffer is a
ping-pong pair of halves, the parameter memory's ``rows`` words included. A call's tile
must fit one half of each (:func:`tile_fits` with ``db = 1``); while the call runs from
that half, the DMA moves the next call's A, B and parameters from DRAM into the other
half and the previous call's output from it to DRAM. The call itself is the RTL's: it
still takes its whole ``t``, its own load phase included (the unit streams the staged
tile into its array-side buffers one beat per cycle, as the RTL does); only the
DRAM transfers are hidden. The planner costs both the half-buffer tiling (overlapped)
and the whole-buffer tiling (sequential) and keeps the faster, per op.

Cost of a matrix op (:func:`gemm_costs`)
----------------------------------------
For one call with the phases of :func:`edgetron.sim.units.gemm.gemm_phases` (``t`` its
cycles, ``load = max(a_beats, w_beats, ch_beats)``, ``tail = compute + drain``) and DRAM
bytes ``L`` in (A, B, parameters) and ``S`` out, ``BW = dram_bytes_per_cycle``:

* without double buffering the unit's input streams are fed from DRAM and its output
  drains to DRAM: ``t + max(0, L/BW - load) + max(0, S/BW - tail)`` (the output term is
  optimistic: it lets the output leave over the whole compute + drain, docs/simulator.md);
* with double buffering call ``i`` overlaps the load of call ``i+1`` and the store of
  call ``i-1``: ``L_0/BW + sum_i max(t_i, (L_{i+1} + S_{i-1})/BW) + S_last/BW``. The
  model charges each call its own ``L + S`` in the sum (exact when the calls are alike,
  which all but the edge tiles are), ``max(t_0, L/BW)`` for the first, ``max(t_last,
  S/BW)`` for the last, and ``L/BW + t + S/BW`` for a single call.

The op's cycles are the sum over its calls (``count`` products, each cut into tiles),
plus, with a K split, the add unit's partial-sum pass
(:func:`edgetron.sim.units.add.psum_accumulate_cycles`, its DRAM stall included), rounded
up to a whole cycle. ``compute`` is the GEMM unit's own cycles, ``stall`` the rest.

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

from edgetron.config import SimParams
from edgetron.hw.gemm import (
    DATAFLOW_IS,
    cdiv,
    element_bytes,
    gemm_buffer_words,
    gemm_fits,
)

from .records import (
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
    F_R,
    F_SH,
    F_W,
    F_W_B,
)
from .units.add import psum_accumulate_cycles
from .units.conv import im2col_dram_bytes
from .units.gemm import MS_BYTES, call_counts, ch_bytes

__all__ = [
    "gemm_costs",
    "half_buffers",
    "matrix_costs",
    "plan_gemm",
    "tile_fits",
]


@njit(cache=True)
def half_buffers(p):
    """``p`` with the three buffers halved: the SRAM one double-buffered call may use."""
    return SimParams(p.rows, p.cols, p.dataflow, p.input_bits, p.weight_bits, p.acc_bits,
                     p.ifmap_sram_bytes // 2, p.weight_sram_bytes // 2,
                     p.ofmap_sram_bytes // 2, p.dram_bytes_per_cycle, p.clock_mhz,
                     p.vector_lanes, p.double_buffer)


@njit(cache=True)
def tile_fits(p, db, m, k, n):
    """Whether one GEMM-unit call ``(m, k, n)`` fits the memory one call may use.

    Parameters
    ----------
    p : SimParams
        The config.
    db : int
        0: the whole of every buffer (:func:`edgetron.hw.gemm.gemm_fits`).
        1 (double-buffered): one half of each, the next call's operands and the
        previous call's output occupying the other: the three SRAMs halved
        (:func:`half_buffers`) and the parameter memory's ``rows`` words of ``cols``
        channels too, ``ceil(n / cols) <= rows // 2`` (no half when ``rows`` is 1).
    m, k, n : int
        The call's shape.

    Returns
    -------
    bool
    """
    if db == 0:
        return gemm_fits(p, m, k, n)
    return gemm_fits(half_buffers(p), m, k, n) and cdiv(n, p.cols) <= p.rows // 2


@njit(cache=True)
def _largest(p, db, which, hi, m, k, n):
    """Largest value in [1, hi] of dimension ``which`` (0 m, 1 k, 2 n) that fits, or 0."""
    lo = 0
    top = hi
    while lo < top:
        mid = (lo + top + 1) // 2
        mm = mid if which == 0 else m
        kk = mid if which == 1 else k
        nn = mid if which == 2 else n
        if tile_fits(p, db, mm, kk, nn):
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


@njit(cache=True)
def gemm_costs(p, db, count, m, k, n, mt, kt, nt, out32, a_b, w_b, out_b, geom, row):
    """Account one matrix op tiled as ``mt x kt x nt`` into ``row`` (see :data:`COLUMNS`).

    Parameters
    ----------
    p : SimParams
        The config.
    db : int
        1 when the calls are double-buffered.
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
    bw = p.dram_bytes_per_cycle
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
    compute = 0.0
    busy = 0.0
    # (t, L, S) of the first and of the last call, for the ends of the DMA pipeline.
    t_first = -1.0
    l_first = 0.0
    s_first = 0.0
    t_last = 0.0
    l_last = 0.0
    s_last = 0.0
    calls = 0
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
                (t, load, tail, if_rd, if_wr, w_rd, w_wr, of_rd, of_wr, reg,
                 add32) = call_counts(p, mm, kk, nn_, call_out32, a_b, w_b)
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
                in_dram = a_dram + b_dram + par
                f = float(mult * count)
                compute += f * t
                if db == 1:
                    busy += f * max(float(t), (in_dram + out_dram) / bw)
                else:
                    busy += f * (t + max(0.0, in_dram / bw - load)
                                 + max(0.0, out_dram / bw - tail))
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
                calls += mult * count
                if t_first < 0.0:
                    t_first, l_first, s_first = float(t), float(in_dram), float(out_dram)
                t_last, l_last, s_last = float(t), float(in_dram), float(out_dram)
    # Classes are visited full tiles first; the last one, (edge, edge, edge), always exists.
    if db == 1:
        # Call i overlaps the load of call i+1 and the store of call i-1; the sum above
        # charged every call its own L + S, exact for alike calls except at the ends: the
        # first call has no store before it, the last no load after it, and the first load
        # and the last store are exposed.
        if calls == 1:
            busy = t_first
        else:
            busy += max(t_first, l_first / bw) - max(t_first, (l_first + s_first) / bw)
            busy += max(t_last, s_last / bw) - max(t_last, (l_last + s_last) / bw)
        busy += l_first / bw + s_last / bw
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
        vstall = max(0.0, (psum_rd + ms + final) / bw - vector)
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
    row[C_DB] = db
    row[C_KCHUNKS] = nk
    return total


@njit(cache=True)
def _try_tile(p, db, count, m, k, n, kt, cand, out32, a_b, w_b, out_b, geom, row, best):
    """Cost the tile ``(largest m, kt, cand)`` if it fits; keep it in ``best`` if better."""
    if not tile_fits(p, db, 1, kt, cand):
        return False
    c = p.cols
    mt = _largest(p, db, 0, m, 1, kt, cand)
    mt = cdiv(m, cdiv(m, mt))
    nn = cdiv(n, cand)
    even_n = min(cdiv(cdiv(n, nn), c) * c, cand)
    row[:] = 0.0
    cyc = gemm_costs(p, db, count, m, k, n, mt, kt, even_n, out32, a_b, w_b, out_b, geom,
                     row)
    dram = row[C_DRAM_RD] + row[C_DRAM_WR]
    if cyc < best[0] or (cyc == best[0] and dram < best[1]):
        best[0] = cyc
        best[1] = dram
        best[2] = mt
        best[3] = kt
        best[4] = even_n
        best[5] = db
    return True


@njit(cache=True)
def _plan_in(p, db, count, m, k, n, out32, a_b, w_b, out_b, geom, row, best):
    """Best tile that :func:`tile_fits`; updates ``best`` = (cycles, dram, mt, kt, nt, db)."""
    if not tile_fits(p, db, 1, 1, 1):
        return
    r, c = p.rows, p.cols
    if tile_fits(p, db, 1, k, 1):
        kt = k
    else:
        kt = _largest(p, db, 1, k, 1, 1, 1)
        if kt >= r:
            kt = (kt // r) * r
        nk = cdiv(k, kt)
        even = cdiv(cdiv(k, nk), r) * r
        if even <= kt:
            kt = even
    found = False
    nt = c
    while True:
        cand = min(nt, n)
        if _try_tile(p, db, count, m, k, n, kt, cand, out32, a_b, w_b, out_b, geom, row,
                     best):
            found = True
        if cand >= n:
            break
        nt *= 2
    # Narrower than the array (the input-stationary W buffer holds N * KF words): halve
    # until a call fits; N = 1 always does, since K was chosen for it.
    nt = min(c, n) // 2
    while not found and nt >= 1:
        found = _try_tile(p, db, count, m, k, n, kt, nt, out32, a_b, w_b, out_b, geom, row,
                          best)
        nt //= 2


@njit(cache=True)
def _no_tile(p, row):
    """Name the buffer that cannot hold one word of the array (no call fits) in ``row``."""
    a_words, w_words, _, _ = gemm_buffer_words(p)
    r, c = p.rows, p.cols
    a_lanes, w_lanes = (c, r) if p.dataflow == DATAFLOW_IS else (r, c)
    if a_words < 1:
        row[C_ERR] = ERR_TILE_IFMAP
        row[C_ERR_NEED] = a_lanes * element_bytes(p.input_bits)
        row[C_ERR_HAVE] = p.ifmap_sram_bytes
    elif w_words < 1:
        row[C_ERR] = ERR_TILE_WEIGHT
        row[C_ERR_NEED] = w_lanes * element_bytes(p.weight_bits)
        row[C_ERR_HAVE] = p.weight_sram_bytes
    else:
        row[C_ERR] = ERR_TILE_OFMAP
        row[C_ERR_NEED] = c * element_bytes(p.acc_bits)
        row[C_ERR_HAVE] = p.ofmap_sram_bytes


@njit(cache=True)
def plan_gemm(p, count, m, k, n, out32, a_b, w_b, out_b, geom, row):
    """Choose the tiling of a matrix op and account it into ``row``; returns the cycles.

    See the module docstring; with ``p.double_buffer`` both the half-buffer (overlapped)
    and the whole-buffer (sequential) tilings are costed and the faster one is kept.
    When not even a ``1 x 1 x 1`` call fits (a buffer smaller than one word of the
    array, which a validated config cannot have), ``row`` gets the error code of that
    buffer (:data:`ERR_TILE_IFMAP`, ...) and 0 is returned.
    """
    best = np.empty(6)
    best[0] = np.inf
    best[1] = np.inf
    best[2] = 0
    best[3] = 0
    best[4] = 0
    best[5] = 0
    if p.double_buffer == 1:
        _plan_in(p, 1, count, m, k, n, out32, a_b, w_b, out_b, geom, row, best)
    _plan_in(p, 0, count, m, k, n, out32, a_b, w_b, out_b, geom, row, best)
    row[:] = 0.0
    if best[2] == 0:
        _no_tile(p, row)
        return 0.0
    return gemm_costs(p, int(best[5]), count, m, k, n, int(best[2]), int(best[3]),
                      int(best[4]), out32, a_b, w_b, out_b, geom, row)


@njit(cache=True)
def matrix_costs(p, rec, row):
    """Plan and account the matrix op of flat record ``rec`` into ``row`` (zeroed).

    :func:`plan_gemm` on the record's GEMM view and, for a convolution, its window
    geometry; the MAC events are the op's MACs.
    """
    geom = (rec[F_IS_CONV], rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG], rec[F_OH],
            rec[F_OW], rec[F_R], rec[F_SH])
    plan_gemm(p, rec[F_COUNT], rec[F_M], rec[F_K], rec[F_N], rec[F_OUT32], rec[F_A_B],
              rec[F_W_B], rec[F_OUT_B], geom, row)
    row[C_EV_MAC] = float(rec[F_MACS])
