"""Weight-stationary compute core of the GEMM unit.

Array rows span K, columns span N. Every call is cut into fold steps ``(nt, kf)``, ``nt``
outer: ``S = ceil(N/C) * ceil(K/R)`` steps, and the steps of consecutive calls follow
each other in one sequence of weight tiles. Two agents walk that sequence:

* the **weight writer** writes each tile into the array's idle weight bank, one row per
  cycle, a row as soon as its ``w`` beat is in the W buffer (rows beyond K as zeros); it
  starts a tile when the bank is free, i.e. when the row issuer has taken the tile
  before it;
* the **row issuer** starts a step (takes its tile) when the tile is written and the
  previous step has issued its rows, and issues rows ``m = 0 .. M-1`` of A's fold ``kf``,
  each as soon as its ``a`` beat is in the A buffer and the column tile's channels are
  in the parameter memory.

So a step lasts ``max(M, R)`` cycles (the next tile loads while the current one streams),
across calls too: the first tile of the next call loads during the last step of the
current one. A tag ``(valid, first, last, m, nt, slot, out32, call_last)`` travels beside
each row to meet its column sums; the accumulator stage adds them to the bias (first
fold) or the partial sum of earlier folds (accumulator buffer, shared by the calls in
pipeline order), and the last fold goes to the epilogue. docs/rtl.md derives the cycles.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory

from edgetron.hw import gemm as hw

from ..common import DelayLine, tag_line
from ..layouts import unsigned_for
from ..systolic import SystolicArray
from .core import Epilogue, GemmCore, next_slot, pick, slot_pointer

__all__ = ["RowEvents", "WsCore"]

_cdiv = hw.cdiv.py_func

#: Cycles before the accumulator stage its buffer read is addressed: the synchronous read,
#: the register after the RAM, the addend register (fewer on arrays of fewer rows).
ACC_READ_AHEAD = 3


def _set_bit(m: Module, vector, index, slots: int, value: int) -> None:
    """``vector[index] <= value`` for a slot index that is a signal (or the constant 0)."""
    for j in range(slots):
        with m.If(index == j):
            m.d.sync += vector[j].eq(value)


class RowEvents(NamedTuple):
    """What the row issuer tells an A address generator (:meth:`WsCore.a_operand`).

    ``slot``: the slot of the call being issued; ``row``: the row ``t`` of the current
    step; ``issue``: the row is issued this cycle; ``last_row``, ``last_kf``,
    ``last_step``: it is the step's last row, the step is its column tile's last fold,
    the call's last step.
    """

    slot: object
    row: object
    issue: object
    last_row: object
    last_kf: object
    last_step: object


class WsCore(GemmCore):
    """The ``ws`` compute core (see :class:`~.core.GemmCore` for parameters and members).

    The A operand of a row comes from :meth:`a_operand` (the GEMM's word ``kf * M + t``;
    the ConvUnit's core, ``rtl/conv/im2col.py``, generates the im2col address instead).

    Latency
    -------
    A row issued in cycle ``i`` (its buffer address) leaves the accumulator stage into the
    epilogue register at the end of cycle ``i + GEMM_BUFFER_READ_CYCLES + (R + C)`` (the
    array latency, ``edgetron.hw.gemm.array_timing``);
    ``o.valid`` rises ``GEMM_EPILOGUE_CYCLES`` later.
    """

    DATAFLOW = "ws"

    def a_operand(self, m: Module, ev: RowEvents):
        """The A operand of the row about to issue: ``(index, zero)``, the word of the
        call's A slot it reads and a bit that replaces the read by zeros (a row with
        ``zero`` waits for no ``a`` beat). Registers it keeps advance in ``m`` on
        ``ev.issue``. The GEMM: word ``kf * M + t``, never zero."""
        # The words follow each other within a column tile (fold kf's rows after fold
        # kf - 1's), so the index is a counter: no adder between it and the availability
        # check.
        a_idx = Signal(unsigned_for(self._limits.a_words), name="a_idx")
        with m.If(ev.issue):
            with m.If(ev.last_row & ev.last_kf):
                m.d.sync += a_idx.eq(0)
            with m.Else():
                m.d.sync += a_idx.eq(a_idx + 1)
        return a_idx, Const(0, 1)

    def schedule(self, m: Module, array: SystolicArray, room) -> Epilogue:
        cfg, lim = self._config, self._limits
        R, C, slots = cfg.rows, cfg.cols, lim.slots
        shape_layout = self.slots[0].call.shape()
        kf_shape = shape_layout["kf_last"].shape
        nt_shape = shape_layout["nt_last"].shape

        # ---- the weight writer -----------------------------------------------------------
        wsl = slot_pointer(slots, "w_slot")
        wshape = self.slot(wsl).call
        w_written = Signal(slots)        # per slot: every tile of its call is written
        wt = Signal(range(R), name="w_row")
        wkf = Signal(kf_shape, name="w_kf")
        wnt = Signal(nt_shape, name="w_nt")
        # The row of K the writer is at, wkf * R + wt: a counter (no adder before the
        # comparison with K).
        wk = Signal(range(_cdiv(lim.k_max, R) * R + 1), name="w_k")
        w_addr = Signal(unsigned_for(lim.w_words))                        # beat index
        wbank = Signal()                 # the bank the tile being written goes into
        pending = Signal()               # a written tile waits for the row issuer
        take = Signal()                  # the row issuer takes it this cycle
        w_row_real = wk < wshape.k
        w_on = self.slot(wsl).busy & ~pick(w_written, wsl, slots)
        w_issue = Signal()
        m.d.comb += w_issue.eq(
            w_on & ((wt != 0) | ~pending | take)
            & (~w_row_real | self.available("w", wsl, w_addr)))
        w_last_tile = (wkf == wshape.kf_last) & (wnt == wshape.nt_last)
        with m.If(w_issue):
            with m.If(w_row_real):
                m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(wt == R - 1):
                m.d.sync += [wt.eq(0), wbank.eq(~wbank)]
                with m.If(w_last_tile):
                    m.d.sync += [wkf.eq(0), wnt.eq(0), wk.eq(0), w_addr.eq(0)]
                    _set_bit(m, w_written, wsl, slots, 1)
                    next_slot(m, wsl, slots)
                with m.Elif(wkf == wshape.kf_last):
                    m.d.sync += [wkf.eq(0), wk.eq(0), wnt.eq(wnt + 1)]
                with m.Else():
                    m.d.sync += [wkf.eq(wkf + 1), wk.eq(wk + 1)]
            with m.Else():
                m.d.sync += [wt.eq(wt + 1), wk.eq(wk + 1)]
        m.d.sync += pending.eq((pending & ~take) | (w_issue & (wt == R - 1)))

        # ---- the row issuer --------------------------------------------------------------
        asl = slot_pointer(slots, "a_slot")
        ashape = self.slot(asl).call
        in_step = Signal()               # rows of the current step remain
        t = Signal(unsigned_for(lim.m_max), name="row")
        kf = Signal(kf_shape)
        nt = Signal(nt_shape)
        # The last channel of the column tile, nt * C + C - 1 (no adder before the check).
        ch_top = Signal(unsigned_for(_cdiv(lim.n_max, C) * C), init=C - 1)
        sel = Signal()                   # weight bank of the current step
        issue = Signal()
        last_row = t == ashape.m_last
        last_kf = kf == ashape.kf_last
        last_step = last_kf & (nt == ashape.nt_last)
        a_index, a_zero = self.a_operand(
            m, RowEvents(asl, t, issue, last_row, last_kf, last_step))
        # A row issues with a credit of the output FIFO in hand (a row of a column tile's
        # last fold takes it: its sums become an output beat).
        row_ok = ((a_zero | self.available("a", asl, a_index))
                  & self.channels_ready(asl, ch_top) & room)
        start = ~in_step & pending & row_ok
        m.d.comb += [issue.eq(start | (in_step & row_ok)), take.eq(start)]
        call_done = issue & last_row & last_step
        with m.If(issue):
            with m.If(start):
                m.d.sync += sel.eq(~wbank)
            with m.If(last_row):
                m.d.sync += [in_step.eq(0), t.eq(0)]
                with m.If(last_step):
                    m.d.sync += [kf.eq(0), nt.eq(0), ch_top.eq(C - 1)]
                    _set_bit(m, w_written, asl, slots, 0)
                    next_slot(m, asl, slots)
                with m.Elif(last_kf):
                    m.d.sync += [kf.eq(0), nt.eq(nt + 1), ch_top.eq(ch_top + C)]
                with m.Else():
                    m.d.sync += kf.eq(kf + 1)
            with m.Else():
                m.d.sync += [in_step.eq(1), t.eq(t + 1)]
        m.d.comb += [self.free.valid.eq(call_done), self.free.slot.eq(asl)]

        # ---- buffer reads; the control of each read travels beside it to meet its data.
        m.d.comb += [
            self.a_rd.addr.eq(self.a_address(asl, a_index)),
            self.w_rd.addr.eq(self.w_address(wsl, w_addr)),
        ]
        a_ctl = tag_line(m, {"sel": 1, "zero": 1}, hw.GEMM_BUFFER_READ_CYCLES, "a_ctl")
        w_ctl = tag_line(m, {"zero": 1, "valid": 1, "row": array.w.row.shape(), "bank": 1},
                         hw.GEMM_BUFFER_READ_CYCLES, "w_ctl")
        m.d.comb += [
            a_ctl.input.sel.eq(Mux(start, ~wbank, sel)),
            a_ctl.input.zero.eq(a_zero),
            w_ctl.input.zero.eq(~w_row_real),
            w_ctl.input.valid.eq(w_issue),
            w_ctl.input.row.eq(wt),
            w_ctl.input.bank.eq(wbank),
        ]
        wc = w_ctl.output
        m.d.comb += [
            array.a.data.eq(Mux(a_ctl.output.zero, 0, self.a_rd.data)),
            # The array takes the bank select one cycle ahead of the data: the tap
            # before the output (the row the array gets in the next cycle).
            array.a.sel.eq(a_ctl[a_ctl.depth - 1].sel),
            array.w.valid.eq(wc.valid), array.w.row.eq(wc.row), array.w.bank.eq(wc.bank),
            array.w.data.eq(Mux(wc.zero, 0, self.w_rd.data)),
        ]

        # Tag of each issued row, delayed to meet its column sums at the array output (the
        # buffer read + the array latency); the accumulator read taps it one cycle earlier.
        tag = tag_line(m, {"valid": 1, "first": 1, "last": 1, "m": unsigned_for(lim.m_max),
                              "nt": nt_shape, "slot": 1, "out32": 1, "call_last": 1},
                       hw.GEMM_BUFFER_READ_CYCLES + array.latency, "tag")
        m.d.comb += [
            tag.input.valid.eq(issue), tag.input.first.eq(kf == 0),
            tag.input.last.eq(last_kf), tag.input.m.eq(t), tag.input.nt.eq(nt),
            tag.input.slot.eq(asl), tag.input.out32.eq(ashape.out32),
            tag.input.call_last.eq(last_row & last_step),
        ]
        tag_out = tag.output

        # Accumulator stage: sum = addend + column sums, addend = first fold ? bias : acc[m];
        # write back unless it is the last fold, in which case it goes to the epilogue
        # register. The stage's inputs are registers: the parameter word is read the cycle
        # before (at the tag tap `pre`, through an address register loaded from the tap
        # before it) and registered, and so is the addend.
        acc_layout = data.ArrayLayout(signed(cfg.acc_bits), C)
        m.submodules.acc_mem = acc_mem = memory.Memory(shape=acc_layout, depth=lim.acc_words,
                                                       init=[])
        # The accumulator read is addressed ahead of the stage: its block-RAM data goes
        # straight into a register (acc_q), then through the multiplexer into the addend
        # register. The same row m comes back at least max(M, R) cycles later (a step
        # lasts that long, docs/rtl.md), so its partial sum is written no later than the
        # cycle its next read is addressed when the read is at most R cycles ahead (the
        # read is transparent for that cycle): min(ACC_READ_AHEAD, R) ahead, so arrays of
        # two rows select right after the RAM and one-row arrays at the stage.
        ahead = min(ACC_READ_AHEAD, R)
        pre = tag[tag.depth - 1]
        before = tag[tag.depth - 2]      # the address register loads it for `pre`
        params = DelayLine(m, self.read_params(m, before.slot, before.nt, registered=True), 1,
                           "params").output
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
        m.d.comb += acc_rd.addr.eq(tag[tag.depth - ahead].m)
        acc_q = DelayLine(m, acc_rd.data, max(ahead - 2, 0), "acc_q").output
        addend = Signal(acc_layout)
        for c in range(C):
            if ahead > 1:
                m.d.sync += addend[c].eq(Mux(pre.first, self.p_data[c].bias, acc_q[c]))
            else:
                m.d.comb += addend[c].eq(Mux(tag_out.first, params[c].bias, acc_q[c]))
        total = Signal(acc_layout)
        for c in range(C):
            m.d.comb += total[c].eq(addend[c] + array.p[c])
        m.d.comb += [
            acc_wr.addr.eq(tag_out.m),
            acc_wr.data.eq(total),
            acc_wr.en.eq(tag_out.valid & ~tag_out.last),
        ]
        last = tag_out.valid & tag_out.last
        return Epilogue(valid=last, acc=total, params=params, slot=tag_out.slot,
                        out32=tag_out.out32, call_last=last & tag_out.call_last,
                        path=tag.depth, model=hw.GEMM_BUFFER_READ_CYCLES + array.latency,
                        take=issue & last_kf, reserve=1)
