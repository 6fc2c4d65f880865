"""Output-stationary compute core of the GEMM unit.

Each PE owns one output. Tiles ``(nt, mt)``, ``nt`` outer, stream ``K`` operand pairs (A's
row tile ``mt``, W's column tile ``nt``) with ``first``/``last``; tiles start
``max(K, 2R - 1)`` cycles apart. ``drain_delay`` cycles after a tile's last pair reaches
the array, a drain counter gives ``R`` drain pulses; the rows come out aligned, rows beyond
M are marked invalid, and the epilogue adds the bias. There is no accumulator buffer.
docs/rtl.md derives the cycle count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from edgetron.hw import gemm as hw

from ..common import tag_line
from ..systolic import SystolicArray
from .core import Epilogue, GemmCore

__all__ = ["OsCore"]


class OsCore(GemmCore):
    """The ``os`` compute core (see :class:`~.core.GemmCore` for parameters and members).

    Latency
    -------
    The last operand pair of a tile issued in cycle ``i`` (its buffer address) reaches the
    array after ``GEMM_BUFFER_READ_CYCLES``; its drain pulses start ``drain_delay`` cycles
    later, one per row; row ``r``'s sums are in the epilogue register after
    ``array_latency`` more cycles and on ``o`` after ``GEMM_EPILOGUE_CYCLES`` (the
    ``drain`` of the timing model, without the requantizer).
    """

    DATAFLOW = "os"

    def schedule(self, m: Module, pipe: Module, array: SystolicArray, run) -> Epilogue:
        cfg, lim = self._config, self._limits
        R, C = cfg.rows, cfg.cols
        shape = self.shape
        M, K = shape.m, shape.k
        a_rd, w_rd = self.a_rd, self.w_rd
        gap = array.min_tile_gap
        period = Mux(K > gap, K, gap)    # max(K, 2R - 1)

        # Issue state: tile (nt, mt) streams k = 0..K-1 of A's row tile mt and W's column
        # tile nt.
        busy = Signal()
        t = Signal(range(max(lim.k_max, gap) + 1))
        mt = Signal.like(shape.mt_last)
        nt = Signal.like(shape.nt_last)
        a_base = Signal.like(a_rd.addr)  # mt * K
        w_base = Signal.like(w_rd.addr)  # nt * K
        last_tile = (mt == shape.mt_last) & (nt == shape.nt_last)
        tile_len = Mux(last_tile, K, period)
        active = self.issue & busy
        issue = active & (t < K)
        with pipe.If(self.start):
            pipe.d.sync += [busy.eq(1), t.eq(0), mt.eq(0), nt.eq(0), a_base.eq(0),
                            w_base.eq(0)]
        with pipe.Elif(active):
            with pipe.If(t == tile_len - 1):
                pipe.d.sync += t.eq(0)
                with pipe.If(last_tile):
                    pipe.d.sync += busy.eq(0)
                with pipe.Elif(mt == shape.mt_last):
                    pipe.d.sync += [mt.eq(0), a_base.eq(0), nt.eq(nt + 1), w_base.eq(w_base + K)]
                with pipe.Else():
                    pipe.d.sync += [mt.eq(mt + 1), a_base.eq(a_base + K)]
            with pipe.Else():
                pipe.d.sync += t.eq(t + 1)

        # Buffer reads; first/last travel beside the read to meet its data.
        m.d.comb += [a_rd.addr.eq(a_base + t), w_rd.addr.eq(w_base + t)]
        ctl = tag_line(pipe, {"first": 1, "last": 1}, hw.GEMM_BUFFER_READ_CYCLES, "ctl")
        pipe.d.comb += [ctl.input.first.eq(issue & (t == 0)),
                        ctl.input.last.eq(issue & (t == K - 1))]
        pipe.d.comb += [
            array.a.data.eq(a_rd.data), array.a.first.eq(ctl.output.first),
            array.a.last.eq(ctl.output.last), array.w.data.eq(w_rd.data),
        ]

        # Drain: the last operand pair of a tile is read in cycle i and reaches the array in
        # i + read cycles; its R drain pulses start drain_delay cycles later. The trigger
        # is taken where the pair enters the array and delayed drain_delay - 1 cycles; the
        # pulse counter's register adds the last one.
        rows_shape = range(R + 1)      # valid rows of a tile: R, or fewer in the last one
        trig = tag_line(pipe, {"go": 1, "rows": rows_shape, "nt": nt.shape()},
                        hw.GEMM_BUFFER_READ_CYCLES + array.drain_delay - 1, "drain_trig")
        pipe.d.comb += [
            trig.input.go.eq(issue & (t == K - 1)),
            trig.input.rows.eq(Mux(mt == shape.mt_last, M - shape.mt_last * R, R)),
            trig.input.nt.eq(nt),
        ]
        go = trig.output
        d_active = Signal()
        d_row = Signal(range(R))
        d_rows = Signal(rows_shape)
        d_nt = Signal.like(nt)
        pulse_counter_cycles = 1       # d_active is a register
        with pipe.If(go.go):
            pipe.d.sync += [d_active.eq(1), d_row.eq(0), d_rows.eq(go.rows), d_nt.eq(go.nt)]
        with pipe.Elif(d_active):
            with pipe.If(d_row == R - 1):
                pipe.d.sync += d_active.eq(0)
            with pipe.Else():
                pipe.d.sync += d_row.eq(d_row + 1)
        # The drained row's tag (a real row of the tile, its column tile) meets it at the
        # array output.
        tag = tag_line(pipe, {"valid": 1, "nt": nt.shape()}, array.latency, "tag")
        pipe.d.comb += [
            array.drain.eq(d_active),
            tag.input.valid.eq(d_active & (d_row < d_rows)),
            tag.input.nt.eq(d_nt),
        ]

        total = Signal.like(array.o)
        for c in range(C):
            pipe.d.comb += total[c].eq(array.o[c] + self.p_data[c].bias)
        # The path of row 0 of a tile; row r comes r cycles later (r_last in the model).
        return Epilogue(valid=tag.output.valid, acc=total, nt=tag.output.nt,
                        path=trig.depth + pulse_counter_cycles + tag.depth,
                        model=hw.GEMM_BUFFER_READ_CYCLES + array.drain_delay + array.latency)
