"""The operand side of the GEMM unit, shared with the ConvUnit: the slot buffers, the
slot bookkeeping, the three loaders and the requantizer at the core's output.

Both units accept a call into a slot (a half of every buffer with ``double_buffer``),
load its ``a``, ``w`` and ``ch`` beats into that slot one per cycle and stream by stream,
and hand the core's output beats to a requantizer; they differ in their command (the
GEMM's shape or a conv band's geometry), in the core's A addresses and in what sits
beside the requantizer. :class:`~.unit.GemmUnit` and :class:`edgetron.rtl.conv.ConvUnit`
build these pieces with the functions below, so each exists once.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, wiring

from edgetron.hw import gemm as hw

from ..common import COLLISION_ATTR, CreditFifo, DelayLine, read_latency
from ..layouts import gemm_load_layout, gemm_slot_layout, unsigned_for
from ..requant import Requantizer
from .core import check_path, next_slot, pick, slot_address, slot_pointer

__all__ = ["SlotState", "command_phase", "operand_buffers", "operand_loaders",
           "output_fifo", "requantizer_after", "slot_state"]


class SlotState(NamedTuple):
    """The slots of the accepted calls: ``slot`` (per slot: busy, the call's shape, which
    streams have loaded), ``load`` (each stream's slot pointer and beat count, for the
    core's availability checks) and ``draining`` (per slot: freed, but its last results
    still read its parameter half)."""

    slot: object
    load: object
    draining: object


def operand_buffers(m: Module, owner: str, layouts, lim, core) -> tuple:
    """The A, W and parameter memories (``slots`` halves each), their read ports
    connected to ``core``; returns the write ports ``(a_wr, w_wr, p_wr)``.

    The A and W reads are synchronous, then registered ``GEMM_BUFFER_OUT_REGS`` times
    (the block RAM's output register: nothing but routing between the RAM and it; the
    core never stalls, so the registers run free); ``GEMM_BUFFER_READ_CYCLES`` deep in
    all (asserted). The parameter read is combinational (the core addresses it,
    ``GemmCore.read_params``).

    No read uses an A or W word read in the cycle it is written: a beat is read no earlier
    than the cycle after it is taken (``GemmCore.available``), and the data of a read that
    is not issued is discarded (replaced by zeros, or multiplied by them); both memories
    carry ``COLLISION_ATTR``."""
    slots = lim.slots
    unused = {COLLISION_ATTR: "unused"}
    m.submodules.a_mem = a_mem = memory.Memory(shape=layouts.a, depth=slots * lim.a_words,
                                               init=[], attrs=unused)
    m.submodules.w_mem = w_mem = memory.Memory(shape=layouts.w, depth=slots * lim.w_words,
                                               init=[], attrs=unused)
    m.submodules.p_mem = p_mem = memory.Memory(shape=layouts.param,
                                               depth=slots * lim.param_words, init=[])
    a_wr, a_rd = a_mem.write_port(), a_mem.read_port()
    w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
    p_wr, p_rd = p_mem.write_port(granularity=1), p_mem.read_port(domain="comb")
    for name, port, to in (("A", a_rd, core.a_rd), ("W", w_rd, core.w_rd)):
        out = DelayLine(m, port.data, hw.GEMM_BUFFER_OUT_REGS, f"{name.lower()}_rd_out")
        m.d.comb += [port.addr.eq(to.addr), port.en.eq(to.en), to.data.eq(out.output)]
        check_path(owner, f"the {name} buffer read", read_latency(port) + out.depth,
                   hw.GEMM_BUFFER_READ_CYCLES)
    m.d.comb += [p_rd.addr.eq(core.p_addr), core.p_data.eq(p_rd.data)]
    return a_wr, w_wr, p_wr


def slot_state(m: Module, cfg, lim, core) -> SlotState:
    """The slot registers, connected to ``core``: a slot is free again when the core has
    issued its call's last row (``core.free``), its parameter half when the call's last
    results have read it (``core.drained``)."""
    slots = lim.slots
    st = SlotState(Signal(data.ArrayLayout(gemm_slot_layout(cfg, lim), slots), name="slot"),
                   Signal(gemm_load_layout(lim), name="load"),
                   Signal(slots, name="draining"))
    m.d.comb += [core.slots.eq(st.slot), core.load.eq(st.load)]
    for j in range(slots):
        with m.If(core.free.valid & (core.free.slot == j)):
            m.d.sync += [st.slot[j].busy.eq(0), st.draining[j].eq(1)]
        with m.If(core.drained.valid & (core.drained.slot == j)):
            m.d.sync += st.draining[j].eq(0)
    return st


def command_phase(m: Module, owner: str, states, cycles: int, st: SlotState, lim, port,
                  cmd, err, ok, shape, *, ready=1, accept_comb=(), accept_slot=None) -> None:
    """The command phase: one FSM state per entry of ``states`` (``IDLE``, the sizing
    stages, ``CHECK``), one cycle each, asserted to be ``cycles`` (the timing model's).

    ``IDLE`` takes a command from ``port`` into the register ``cmd`` when the next slot in
    turn is free (and ``ready``) and clears ``err``; the sizing states wait while the
    unit's free-running registers over ``cmd`` settle; ``CHECK`` writes the call into the
    next slot (``shape``, nothing loaded yet, and the statements ``accept_slot(j)`` for
    slot ``j``, synchronous) and, if ``ok``, makes it busy with the statements
    ``accept_comb`` (combinational), else sets ``err`` (the slot stays free)."""
    slots, slot = lim.slots, st.slot
    nxt = slot_pointer(slots, "next_slot")
    idle, *sizing, checking = states
    built = []
    with m.FSM():
        with m.State(idle):
            built.append(idle)
            m.d.comb += port.ready.eq(~pick(slot, nxt, slots).busy & ready)
            with m.If(port.valid & port.ready):
                m.d.sync += [cmd.eq(port.payload), err.eq(0)]
                m.next = sizing[0]
        for state, after in zip(sizing, [*sizing[1:], checking], strict=True):
            with m.State(state):
                built.append(state)
                m.next = after
        with m.State(checking):
            built.append(checking)
            # The next slot is free (IDLE waited for it), so its call registers take the
            # shape whatever the check says: only its busy bit waits for ``ok``, and the
            # comparisons do not reach the enables of the slot's registers.
            for j in range(slots):
                with m.If(nxt == j):
                    m.d.sync += [slot[j].call.eq(shape), slot[j].a_done.eq(0),
                                 slot[j].w_done.eq(0), slot[j].ch_done.eq(0)]
                    if accept_slot is not None:
                        m.d.sync += accept_slot(j)
            with m.If(ok):
                m.d.comb += list(accept_comb)
                for j in range(slots):
                    with m.If(nxt == j):
                        m.d.sync += slot[j].busy.eq(1)
                next_slot(m, nxt, slots)
            with m.Else():
                m.d.sync += err.eq(1)
            m.next = idle
    check_path(owner, "the command phase (states before the load)", len(built), cycles)


def operand_loaders(m: Module, st: SlotState, lim, cols: int, streams, writes) -> None:
    """The three loaders: each of ``streams = (a, w, ch)`` takes the beats of the slot it
    points to, one per cycle, up to the call's last beat (``<name>_end``), then moves on
    to the next slot; ``ch`` also waits while that slot's parameter half is draining.
    Beats go to ``writes = (a_wr, w_wr, p_wr)``: A and W one word per beat, ``ch`` one
    channel (lane) of a parameter word per beat."""
    slots = lim.slots
    slot, load = st.slot, st.load

    def loader(name: str, port, ready_extra=1):
        ptr = slot_pointer(slots, f"{name}_slot")
        cnt = load[f"{name}_cnt"]
        target = pick(slot, ptr, slots)
        m.d.comb += [load[f"{name}_slot"].eq(ptr),
                     port.ready.eq(target.busy & ~target[f"{name}_done"] & ready_extra)]
        hs = port.valid & port.ready
        last = cnt == target.call[f"{name}_end"]
        m.d.comb += [load[f"{name}_take"].eq(hs), load[f"{name}_last"].eq(last)]
        with m.If(hs):
            with m.If(last):
                m.d.sync += cnt.eq(0)
                for j in range(slots):
                    with m.If(ptr == j):
                        m.d.sync += slot[j][f"{name}_done"].eq(1)
                next_slot(m, ptr, slots)
            with m.Else():
                m.d.sync += cnt.eq(cnt + 1)
        return ptr, cnt, hs

    a, w, ch = streams
    a_wr, w_wr, p_wr = writes
    a_ptr, a_cnt, a_hs = loader("a", a)
    w_ptr, w_cnt, w_hs = loader("w", w)
    ch_ptr, _, ch_hs = loader("ch", ch, ~pick(st.draining, load.ch_slot, slots))
    ch_lane = Signal(range(cols))                       # channel of the beat in its word
    ch_word = Signal(unsigned_for(lim.param_words))     # parameter word of the beat
    with m.If(ch_hs):
        with m.If(load.ch_cnt == pick(slot, ch_ptr, slots).call.ch_end):
            m.d.sync += [ch_lane.eq(0), ch_word.eq(0)]
        with m.Elif(ch_lane == cols - 1):
            m.d.sync += [ch_lane.eq(0), ch_word.eq(ch_word + 1)]
        with m.Else():
            m.d.sync += ch_lane.eq(ch_lane + 1)
    m.d.comb += [
        a_wr.addr.eq(slot_address(a_ptr, lim.a_words, slots, a_cnt)),
        a_wr.data.eq(a.payload), a_wr.en.eq(a_hs),
        w_wr.addr.eq(slot_address(w_ptr, lim.w_words, slots, w_cnt)),
        w_wr.data.eq(w.payload), w_wr.en.eq(w_hs),
    ]
    # The parameter write is registered (its enables reach every LUT-RAM cell of the
    # memory): a channel is written one cycle after its beat is taken, so it is in the
    # memory two cycles after, while the core reads a tile's parameters no earlier than
    # the buffer read and the array after the row that waited for them issued (ws; os:
    # after the tile's last operand pair and the drain).
    p_en = Signal(cols, name="p_wr_en")
    p_data = Signal.like(ch.payload, name="p_wr_data")
    p_addr = Signal.like(p_wr.addr, name="p_wr_addr")
    m.d.sync += [p_en.eq(Mux(ch_hs, 1 << ch_lane, 0)), p_data.eq(ch.payload),
                 p_addr.eq(slot_address(ch_ptr, lim.param_words, slots, ch_word))]
    m.d.comb += [p_wr.addr.eq(p_addr), p_wr.en.eq(p_en)]
    m.d.comb += [p_wr.data[c].eq(p_data) for c in range(cols)]


def requantizer_after(m: Module, owner: str, core, cols: int, acc_bits: int,
                      out_bits: int) -> Requantizer:
    """The requantizer (``REQUANT_LATENCY`` stages, asserted) fed by the core's output
    stream (its ``acc``, ``mult``, ``shift``). It never stalls (its ``o.ready`` is high):
    the core issues only against credits of the output FIFO (:func:`output_fifo`)."""
    m.submodules.requant = rq = Requantizer(cols, acc_bits, out_bits)
    check_path(owner, "the requantizer", rq.LATENCY, hw.REQUANT_LATENCY)
    m.d.comb += [
        rq.i.valid.eq(core.o.valid), rq.o.ready.eq(1),
        rq.i.payload.acc.eq(core.o.payload.acc), rq.i.payload.mult.eq(core.o.payload.mult),
        rq.i.payload.shift.eq(core.o.payload.shift),
    ]
    return rq


def output_fifo(m: Module, owner: str, cfg, core, rq: Requantizer, beat, port) -> None:
    """The output FIFO between the requantizer ``rq`` and the unit's ``o`` (``port``): a
    :class:`~edgetron.rtl.common.CreditFifo` of ``gemm_out_fifo_beats`` beats of ``beat``'s
    layout (``GEMM_OUT_FIFO_CYCLES``, asserted), written with ``beat`` (the unit's output
    word of the requantizer's valid beat) whenever ``rq.o`` is valid. The core holds a
    credit for every beat in flight (so the FIFO is never written while full); every beat
    leaving it returns one to ``core`` (``release``)."""
    depth = hw.gemm_out_fifo_beats(cfg.rows, cfg.cols, cfg.dataflow)
    m.submodules.out_fifo = fifo = CreditFifo(beat.shape(), depth)
    check_path(owner, "the output FIFO", fifo.LATENCY, hw.GEMM_OUT_FIFO_CYCLES)
    wiring.connect(m, fifo.o, wiring.flipped(port))
    m.d.comb += [fifo.i.valid.eq(rq.o.valid), fifo.i.payload.eq(beat),
                 core.release.eq(port.valid & port.ready)]
