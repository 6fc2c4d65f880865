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

from ..common import COLLISION_ATTR, DelayLine, tag_line
from ..layouts import unsigned_for
from ..systolic import SystolicArray
from .core import Epilogue, GemmCore, Step, first_of, next_slot, pick, slot_pointer, stepped

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


def _last_flag(event, now, choices):
    """The next value of a register that holds a comparison of the counters of the
    issuer (or the writer) with their call's last value (e.g. ``t == M - 1``), so that no
    comparison lies between the registers and the issue decision: ``first_of(choices)``
    (the comparison after the counters move, of registers) when ``event`` moves them, else
    ``now`` (the comparison, of registers; one cycle late).

    One cycle late is enough: a call's shape is written (the command's ``CHECK``) only
    while its slot is free, when the issuer and the writer wait at its start, and its
    first row (or weight row) issues two cycles after at the earliest (its first beats
    are taken once the slot is busy, and read a cycle after that); the flags have been
    computed from the new shape by then."""
    return Mux(event, first_of(choices), now)


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
        """The A operand of the row about to issue: ``(index, zero, advanced)``, the word
        of the call's A slot it reads, a bit that replaces the read by zeros (a row with
        ``zero`` waits for no ``a`` beat), and, when ``index`` is a register that changes
        only on ``ev.issue``, its value after the issue as ``choices`` of
        :func:`~.core.first_of`, constants or :class:`~.core.Step` from ``index``, under
        conditions of registers (else ``None``).
        Registers it keeps advance in ``m`` on ``ev.issue``. The GEMM: word
        ``kf * M + t``, never zero."""
        # The words follow each other within a column tile (fold kf's rows after fold
        # kf - 1's), so the index is a counter; its availability check is a register
        # computed the cycle before (GemmCore.available_ahead).
        a_idx = Signal(unsigned_for(self._limits.a_words), name="a_idx")
        choices = [(ev.last_row & ev.last_kf, 0), (None, Step(1))]
        with m.If(ev.issue):
            m.d.sync += a_idx.eq(first_of(stepped(a_idx, choices)))
        return a_idx, Const(0, 1), choices

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
        w_on = self.slot(wsl).busy & ~pick(w_written, wsl, slots)
        w_issue = Signal()
        # wkf and wnt at their call's last (registers, _last_flag).
        wk_last, wn_last = Signal(name="w_kf_last", init=1), Signal(name="w_nt_last", init=1)
        row_end = wt == R - 1
        w_last_tile = wk_last & wn_last
        wnext = self.slot(~wsl).call     # the call after the writer's
        m.d.sync += [
            wk_last.eq(_last_flag(w_issue, wkf == wshape.kf_last, [
                (~row_end, wk_last), (~wk_last, wkf + 1 == wshape.kf_last),
                (wn_last, wnext.kf_last == 0), (None, wshape.kf_last == 0)])),
            wn_last.eq(_last_flag(w_issue, wnt == wshape.nt_last, [
                (~(row_end & wk_last), wn_last), (~wn_last, wnt + 1 == wshape.nt_last),
                (None, wnext.nt_last == 0)])),
        ]
        # The registers the availability check compares, after this row: wk goes back to
        # 0 after a column tile's last fold, w_addr after the call's last tile.
        wk_wrap = row_end & wk_last
        # The row is one of K (a register, wk < K, computed the cycle before: the next row
        # is when wk + 1 < K, or when wk goes back to 0, since K >= 1; the writer's K only
        # changes while wk = 0).
        w_row_real = Signal(init=1)
        m.d.sync += w_row_real.eq(Mux(w_issue, wk_wrap | (wk + 1 < wshape.k), w_row_real))
        w_next = [(row_end & w_last_tile, 0), (w_row_real, Step(1)), (None, Step(0))]
        m.d.comb += w_issue.eq(
            w_on & ((wt != 0) | ~pending | take)
            & (~w_row_real | self.available_ahead(m, "w", wsl, w_addr, w_issue, w_next,
                                                  "w_in")))
        with m.If(w_issue):
            m.d.sync += w_addr.eq(first_of(stepped(w_addr, w_next)))
            with m.If(row_end):
                m.d.sync += [wt.eq(0), wbank.eq(~wbank)]
                with m.If(w_last_tile):
                    m.d.sync += [wkf.eq(0), wnt.eq(0), wk.eq(0)]
                    _set_bit(m, w_written, wsl, slots, 1)
                    next_slot(m, wsl, slots)
                with m.Elif(wk_last):
                    m.d.sync += [wkf.eq(0), wk.eq(0), wnt.eq(wnt + 1)]
                with m.Else():
                    m.d.sync += [wkf.eq(wkf + 1), wk.eq(wk + 1)]
            with m.Else():
                m.d.sync += [wt.eq(wt + 1), wk.eq(wk + 1)]
        m.d.sync += pending.eq((pending & ~take) | (w_issue & row_end))

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
        # t, kf and nt at their call's last (registers, _last_flag).
        last_row = Signal(name="last_row", init=1)
        last_kf = Signal(name="last_kf", init=1)
        last_nt = Signal(name="last_nt", init=1)
        last_step = last_kf & last_nt
        call_end = last_row & last_step
        anext = self.slot(~asl).call     # the call after the issuer's
        m.d.sync += [
            last_row.eq(_last_flag(issue, t == ashape.m_last, [
                (~last_row, t + 1 == ashape.m_last), (call_end, anext.m_last == 0),
                (None, ashape.m_last == 0)])),
            last_kf.eq(_last_flag(issue, kf == ashape.kf_last, [
                (~last_row, last_kf), (~last_kf, kf + 1 == ashape.kf_last),
                (call_end, anext.kf_last == 0), (None, ashape.kf_last == 0)])),
            last_nt.eq(_last_flag(issue, nt == ashape.nt_last, [
                (~(last_row & last_kf), last_nt), (~last_nt, nt + 1 == ashape.nt_last),
                (None, anext.nt_last == 0)])),
        ]
        a_index, a_zero, a_choices = self.a_operand(
            m, RowEvents(asl, t, issue, last_row, last_kf, last_step))
        a_in = (self.available("a", asl, a_index) if a_choices is None else
                self.available_ahead(m, "a", asl, a_index, issue, a_choices, "a_in"))
        ch_next = [(last_row & last_step, C - 1), (last_row & last_kf, Step(C)),
                   (None, Step(0))]
        # A row issues with a credit of the output FIFO in hand (a row of a column tile's
        # last fold takes it: its sums become an output beat).
        row_ok = ((a_zero | a_in) & self.channels_ready(asl, ch_top, (m, issue, ch_next))
                  & room)
        start = ~in_step & pending & row_ok
        m.d.comb += [issue.eq(start | (in_step & row_ok)), take.eq(start)]
        call_done = issue & call_end
        with m.If(issue):
            m.d.sync += ch_top.eq(first_of(stepped(ch_top, ch_next)))
            with m.If(start):
                m.d.sync += sel.eq(~wbank)
            with m.If(last_row):
                m.d.sync += [in_step.eq(0), t.eq(0)]
                with m.If(last_step):
                    m.d.sync += [kf.eq(0), nt.eq(0)]
                    _set_bit(m, w_written, asl, slots, 0)
                    next_slot(m, asl, slots)
                with m.Elif(last_kf):
                    m.d.sync += [kf.eq(0), nt.eq(nt + 1)]
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
        # register. The stage's inputs are registers: the parameter word is read two
        # cycles before (at the tag tap ``tag[depth - 2]``, through an address register
        # loaded from ``early``, the tap before it) and registered twice, and the addend
        # is registered from the first of those registers.
        acc_layout = data.ArrayLayout(signed(cfg.acc_bits), C)
        # The accumulator read is addressed ahead of the stage: its block-RAM data goes
        # straight into a register (acc_q), then through the multiplexer into the addend
        # register. The same row m comes back at least max(M, R) cycles later (a step
        # lasts that long, docs/rtl.md), so its partial sum is written no later than the
        # cycle its next read is addressed when the read is at most R cycles ahead (the
        # read is transparent for that cycle): min(ACC_READ_AHEAD, R) ahead, so arrays of
        # two rows select right after the RAM and one-row arrays at the stage. With more
        # rows than ACC_READ_AHEAD the read is addressed after the write of the row's last
        # visit, never in its cycle: no transparency, and no read uses a word read in the
        # cycle it is written (COLLISION_ATTR).
        ahead = min(ACC_READ_AHEAD, R)
        transparent = R <= ACC_READ_AHEAD
        m.submodules.acc_mem = acc_mem = memory.Memory(
            shape=acc_layout, depth=lim.acc_words, init=[],
            attrs=None if transparent else {COLLISION_ATTR: "unused"})
        pre = tag[tag.depth - 1]
        early = tag[tag.depth - 3]       # the address register loads it for tag[depth - 2]
        params_line = DelayLine(m, self.read_params(m, early.slot, early.nt, registered=True),
                                2, "params")
        params = params_line.output
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,) if transparent else ())
        m.d.comb += acc_rd.addr.eq(tag[tag.depth - ahead].m)
        acc_q = DelayLine(m, acc_rd.data, max(ahead - 2, 0), "acc_q").output
        addend = Signal(acc_layout)
        for c in range(C):
            if ahead > 1:
                m.d.sync += addend[c].eq(Mux(pre.first, params_line[1][c].bias, acc_q[c]))
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
