"""Output-stationary compute core of the GEMM unit.

Each PE owns one output. Every call is cut into tiles ``(nt, mt)``, ``nt`` outer, and the
tiles of consecutive calls follow each other in one sequence. A pair issuer streams each
tile's ``K`` operand pairs (A's row tile ``mt``, W's column tile ``nt``) with
``first``/``last``, a pair as soon as its ``a`` and ``w`` beats are in the buffers and the
column tile's channels in the parameter memory (a cycle without a pair feeds zeros, so a
tile may pause); a tile's last pair comes at least ``2R - 1`` cycles after the previous
tile's last pair, in this call or the one before (the result chains must be empty).
``drain_delay`` cycles after a tile's last pair reaches the array, a drain counter gives
``R`` drain pulses; the rows come out aligned, rows beyond M are marked invalid, and the
epilogue adds the bias. There is no accumulator buffer. docs/rtl.md derives the cycles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from edgetron.hw import gemm as hw

from ..common import tag_line
from ..layouts import unsigned_for
from ..systolic import SystolicArray
from .core import Epilogue, GemmCore, next_slot, slot_pointer

__all__ = ["OsCore"]

_cdiv = hw.cdiv.py_func


class OsCore(GemmCore):
    """The ``os`` compute core (see :class:`~.core.GemmCore` for parameters and members).

    Latency
    -------
    The last operand pair of a tile issued in cycle ``i`` (its buffer address) reaches the
    array after ``GEMM_BUFFER_READ_CYCLES``; its drain pulses start ``drain_delay`` cycles
    later, one per row; row ``r``'s sums are in the epilogue register after
    ``array_latency`` more cycles and on ``o`` after ``GEMM_EPILOGUE_CYCLES``.
    """

    DATAFLOW = "os"

    @property
    def issue_beats(self) -> int:
        return self._config.rows

    def schedule(self, m: Module, array: SystolicArray, room) -> Epilogue:
        cfg, lim = self._config, self._limits
        R, C, slots = cfg.rows, cfg.cols, lim.slots
        shape_layout = self.slots[0].call.shape()
        gap = array.min_tile_gap

        # ---- the pair issuer: tile (nt, mt) streams k = 0..K-1 -----------------------------
        psl = slot_pointer(slots, "p_slot")
        pshape = self.slot(psl).call
        M, K = pshape.m, pshape.k
        t = Signal(unsigned_for(lim.k_max), name="pair")
        mt = Signal(shape_layout["mt_last"].shape)
        nt = Signal(shape_layout["nt_last"].shape)
        a_base = Signal(unsigned_for(lim.a_words))                        # mt * K
        w_base = Signal(unsigned_for(lim.w_words))                        # nt * K
        # The last channel of the column tile, nt * C + C - 1 (no adder before the check).
        ch_top = Signal(unsigned_for(_cdiv(lim.n_max, C) * C), init=C - 1)
        # Cycles since the last pair of the previous tile (saturating at the gap).
        since = Signal(range(gap + 1), init=gap)
        last_pair = t == K - 1
        last_tile = (mt == pshape.mt_last) & (nt == pshape.nt_last)
        issue = Signal()
        m.d.comb += issue.eq(
            self.slot(psl).busy
            & self.available("a", psl, a_base + t) & self.available("w", psl, w_base + t)
            & self.channels_ready(psl, ch_top) & (~last_pair | (since == gap)) & room)
        with m.If(since != gap):
            m.d.sync += since.eq(since + 1)
        with m.If(issue):
            with m.If(last_pair):
                m.d.sync += [t.eq(0), since.eq(1)]
                with m.If(last_tile):
                    m.d.sync += [mt.eq(0), nt.eq(0), a_base.eq(0), w_base.eq(0),
                                    ch_top.eq(C - 1)]
                    next_slot(m, psl, slots)
                with m.Elif(mt == pshape.mt_last):
                    m.d.sync += [mt.eq(0), a_base.eq(0), nt.eq(nt + 1),
                                    w_base.eq(w_base + K), ch_top.eq(ch_top + C)]
                with m.Else():
                    m.d.sync += [mt.eq(mt + 1), a_base.eq(a_base + K)]
            with m.Else():
                m.d.sync += t.eq(t + 1)
        m.d.comb += [self.free.valid.eq(issue & last_pair & last_tile),
                     self.free.slot.eq(psl)]

        # Buffer reads; valid/first/last travel beside the read to meet its data. A cycle
        # without a pair feeds zeros, which add nothing to the accumulators.
        m.d.comb += [self.a_rd.addr.eq(self.a_address(psl, a_base + t)),
                     self.w_rd.addr.eq(self.w_address(psl, w_base + t))]
        ctl = tag_line(m, {"valid": 1, "first": 1, "last": 1},
                       hw.GEMM_BUFFER_READ_CYCLES, "ctl")
        m.d.comb += [ctl.input.valid.eq(issue), ctl.input.first.eq(issue & (t == 0)),
                        ctl.input.last.eq(issue & last_pair)]
        m.d.comb += [
            array.a.data.eq(Mux(ctl.output.valid, self.a_rd.data, 0)),
            array.a.first.eq(ctl.output.first), array.a.last.eq(ctl.output.last),
            array.w.data.eq(self.w_rd.data),
        ]

        # Drain: the last operand pair of a tile is read in cycle i and reaches the array in
        # i + read cycles; its R drain pulses start drain_delay cycles later. The trigger
        # is taken where the pair enters the array and delayed drain_delay - 1 cycles; the
        # pulse counter's register adds the last one.
        rows_shape = range(R + 1)      # valid rows of a tile: R, or fewer in the last one
        call = {"nt": nt.shape(), "slot": 1, "out32": 1, "call_last": 1}
        trig = tag_line(m, {"go": 1, "rows": rows_shape, **call},
                        hw.GEMM_BUFFER_READ_CYCLES + array.drain_delay - 1, "drain_trig")
        tile_rows = Mux(mt == pshape.mt_last, M - pshape.mt_last * R, R)
        m.d.comb += [
            trig.input.go.eq(issue & last_pair),
            trig.input.rows.eq(tile_rows),
            trig.input.nt.eq(nt), trig.input.slot.eq(psl), trig.input.out32.eq(pshape.out32),
            trig.input.call_last.eq(last_tile),
        ]
        go = trig.output
        d_active = Signal()
        d_row = Signal(range(R))
        d_rows = Signal(rows_shape)
        d_call = Signal.like(go)        # the tile's nt, slot, out32, call_last
        pulse_counter_cycles = 1       # d_active is a register
        with m.If(go.go):
            m.d.sync += [d_active.eq(1), d_row.eq(0), d_rows.eq(go.rows), d_call.eq(go)]
        with m.Elif(d_active):
            with m.If(d_row == R - 1):
                m.d.sync += d_active.eq(0)
            with m.Else():
                m.d.sync += d_row.eq(d_row + 1)
        # The drained row's tag (a real row of the tile, its call) meets it at the array
        # output.
        tag = tag_line(m, {"valid": 1, **call}, array.latency, "tag")
        m.d.comb += [
            array.drain.eq(d_active),
            tag.input.valid.eq(d_active & (d_row < d_rows)),
            tag.input.nt.eq(d_call.nt), tag.input.slot.eq(d_call.slot),
            tag.input.out32.eq(d_call.out32),
            tag.input.call_last.eq(d_call.call_last & (d_row == d_rows - 1)),
        ]

        out = tag.output
        params = self.read_params(m, out.slot, out.nt)
        total = Signal.like(array.o)
        for c in range(C):
            m.d.comb += total[c].eq(array.o[c] + params[c].bias)
        # The path of row 0 of a tile; row r comes r cycles later (r_last in the model).
        return Epilogue(valid=out.valid, acc=total, params=params, slot=out.slot,
                        out32=out.out32,
                        call_last=out.valid & out.call_last,
                        path=trig.depth + pulse_counter_cycles + tag.depth,
                        model=hw.GEMM_BUFFER_READ_CYCLES + array.drain_delay + array.latency,
                        take=issue & last_pair, reserve=tile_rows)
