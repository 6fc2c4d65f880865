"""Weight-stationary compute core of the GEMM unit.

Array rows span K, columns span N. The work is cut into fold steps ``(nt, kf)``, ``nt``
outer: ``S = ceil(N/C) * ceil(K/R)`` steps. A prologue of ``R`` cycles writes the first
weight tile into bank 0; each step then streams rows ``m = 0 .. M-1`` of A's fold ``kf``
(``max(M, R)`` cycles, the last step only ``M``) while the next step's ``R`` weight rows
are written into the other bank. A tag ``(valid, first, last, m, nt)`` travels beside
each row to meet its column sums; the accumulator stage adds them to the bias (first
fold) or the partial sum of earlier folds (accumulator buffer), and the last fold goes
to the epilogue. docs/rtl.md derives the cycle count.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory

from edgetron.hw import gemm as hw

from ..common import tag_line
from ..layouts import unsigned_for
from ..systolic import SystolicArray
from .core import Epilogue, GemmCore

__all__ = ["WsCore"]

_cdiv = hw.cdiv.py_func


class WsCore(GemmCore):
    """The ``ws`` compute core (see :class:`~.core.GemmCore` for parameters and members).

    Latency
    -------
    A row issued in cycle ``i`` (its buffer address) leaves the accumulator stage into the
    epilogue register at the end of cycle ``i + GEMM_BUFFER_READ_CYCLES + (R + C - 1)``;
    ``o.valid`` rises ``GEMM_EPILOGUE_CYCLES`` later (``drain`` of the timing model,
    without the requantizer).
    """

    DATAFLOW = "ws"

    def schedule(self, m: Module, pipe: Module, array: SystolicArray, run) -> Epilogue:
        cfg, lim = self._config, self._limits
        R, C = cfg.rows, cfg.cols
        shape = self.shape
        M, K = shape.m, shape.k
        a_rd, w_rd = self.a_rd, self.w_rd
        period = Mux(M > R, M, R)        # cycles per fold step, max(M, R)

        # Issue state. A fold step (nt, kf) streams rows m = 0..M-1 of A's fold kf while the
        # weight rows of the *next* step are written into the other weight bank.
        steps = Signal()                 # 0: prologue (first weight tile), 1: fold steps
        busy = Signal()
        t = Signal(range(max(lim.m_max, R) + 1))
        kf = Signal.like(shape.kf_last)
        nt = Signal.like(shape.nt_last)
        a_base = Signal.like(a_rd.addr)  # kf * M
        sel = Signal()                   # weight bank of the current step
        # Weight-side counters describe the step whose weights are being written.
        wkf = Signal.like(shape.kf_last)
        wk = Signal(range(_cdiv(lim.k_max, R) * R + 1))  # wkf * R
        w_addr = Signal.like(w_rd.addr)

        last_kf = kf == shape.kf_last
        last_step = last_kf & (nt == shape.nt_last)
        phase_len = Mux(steps, Mux(last_step, M, period), R)
        active = self.issue & busy
        a_issue = active & steps & (t < M)
        w_issue = active & (t < R) & ~(steps & last_step)
        w_row_real = wk + t < K

        with pipe.If(self.start):
            pipe.d.sync += [steps.eq(0), busy.eq(1), t.eq(0), kf.eq(0), nt.eq(0),
                            a_base.eq(0), sel.eq(0), wkf.eq(0), wk.eq(0), w_addr.eq(0)]
        with pipe.Elif(active):
            with pipe.If(w_issue & w_row_real):
                pipe.d.sync += w_addr.eq(w_addr + 1)
            with pipe.If(t == phase_len - 1):
                pipe.d.sync += t.eq(0)
                # The weight side moves on to the step after the one it just loaded.
                with pipe.If(~(steps & last_step)):
                    with pipe.If(wkf == shape.kf_last):
                        pipe.d.sync += [wkf.eq(0), wk.eq(0)]
                    with pipe.Else():
                        pipe.d.sync += [wkf.eq(wkf + 1), wk.eq(wk + R)]
                with pipe.If(~steps):
                    pipe.d.sync += steps.eq(1)
                with pipe.Elif(last_step):
                    pipe.d.sync += busy.eq(0)
                with pipe.Else():
                    pipe.d.sync += sel.eq(~sel)
                    with pipe.If(last_kf):
                        pipe.d.sync += [kf.eq(0), nt.eq(nt + 1), a_base.eq(0)]
                    with pipe.Else():
                        pipe.d.sync += [kf.eq(kf + 1), a_base.eq(a_base + M)]
            with pipe.Else():
                pipe.d.sync += t.eq(t + 1)

        # Buffer reads; the weight control travels beside the read, registered as long as
        # the read takes, to meet its data.
        m.d.comb += [a_rd.addr.eq(a_base + t), w_rd.addr.eq(w_addr)]
        w_ctl = tag_line(pipe, {"zero": 1, "valid": 1, "row": array.w.row.shape(), "bank": 1,
                                "sel": 1}, hw.GEMM_BUFFER_READ_CYCLES, "w_ctl")
        pipe.d.comb += [
            w_ctl.input.zero.eq(~w_row_real),
            w_ctl.input.valid.eq(w_issue),
            w_ctl.input.row.eq(t),
            w_ctl.input.bank.eq(Mux(steps, ~sel, sel)),
            w_ctl.input.sel.eq(sel),
        ]
        ctl = w_ctl.output
        pipe.d.comb += [
            array.a.data.eq(a_rd.data), array.a.sel.eq(ctl.sel),
            array.w.valid.eq(ctl.valid), array.w.row.eq(ctl.row), array.w.bank.eq(ctl.bank),
            array.w.data.eq(Mux(ctl.zero, 0, w_rd.data)),
        ]

        # Tag of each issued row, delayed to meet its column sums at the array output (the
        # buffer read + the array latency); the accumulator read taps it one cycle earlier.
        tag = tag_line(pipe, {"valid": 1, "first": 1, "last": 1, "m": unsigned_for(lim.m_max),
                              "nt": nt.shape()},
                       hw.GEMM_BUFFER_READ_CYCLES + array.latency, "tag")
        pipe.d.comb += [tag.input.valid.eq(a_issue), tag.input.first.eq(kf == 0),
                        tag.input.last.eq(last_kf), tag.input.m.eq(t), tag.input.nt.eq(nt)]
        tag_out = tag.output

        # Accumulator stage: sum = (first fold ? bias : acc[m]) + column sums; write back
        # unless it is the last fold, in which case it goes to the epilogue register.
        acc_layout = data.ArrayLayout(signed(cfg.acc_bits), C)
        m.submodules.acc_mem = acc_mem = memory.Memory(shape=acc_layout, depth=lim.acc_words,
                                                       init=[])
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
        m.d.comb += [acc_rd.addr.eq(tag[tag.depth - 1].m), acc_rd.en.eq(run)]
        total = Signal(acc_layout)
        for c in range(C):
            pipe.d.comb += total[c].eq(
                Mux(tag_out.first, self.p_data[c].bias, acc_rd.data[c]) + array.p[c])
        m.d.comb += [
            acc_wr.addr.eq(tag_out.m),
            acc_wr.data.eq(total),
            acc_wr.en.eq(run & tag_out.valid & ~tag_out.last),
        ]
        return Epilogue(valid=tag_out.valid & tag_out.last, acc=total, nt=tag_out.nt,
                        path=tag.depth,
                        model=hw.GEMM_BUFFER_READ_CYCLES + array.latency)
