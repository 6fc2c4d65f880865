"""The GEMM unit: local buffers, a compute core around a systolic array, and a controller
for any M x K x N that fits.

One invocation
--------------
1. ``cmd`` handshake (``m``, ``k``, ``n``, ``out32``), then one cycle to check the shape
   against the buffers (``edgetron.hw.gemm.GEMM_CMD_STATES``). A shape that does not fit,
   or has a zero dimension, is *rejected*: ``err`` goes high until the next command
   handshake, no operand beat is accepted, nothing is output, and the unit takes the
   next command.
2. Load: ``a``, ``w`` and ``ch`` are accepted in parallel, one beat per cycle each, into
   the A buffer, the W buffer and the parameter memory.
3. Compute: the core (:mod:`.ws_core` or :mod:`.os_core`) reads the buffers fold by fold;
   the results of the last fold stream out on ``o``, straight (int32) or through the
   requantizer (int8). After the last output handshake the next command is accepted.

The beat order of every stream is :mod:`.codec`'s; docs/rtl.md has the block diagram,
the schedules and the latency derivation.

Buffers
-------
Sized from the config (:func:`~.model.gemm_limits`, the rules of :mod:`edgetron.hw.gemm`):
the A buffer holds words of ``R`` operands, the W buffer words of ``C`` operands, the
accumulator buffer (``ws`` only, inside :class:`~.ws_core.WsCore`) words of ``C`` partial
sums, and the parameter memory ``R`` words of ``C`` channels, so ``N <= R * C``.
``double_buffer`` does not change the unit: one invocation uses the whole of every
buffer and the next invocation loads after the current one has finished.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring

from edgetron.config import AcceleratorConfig
from edgetron.hw import gemm as hw

from ..common import (
    CheckedComponent,
    StreamDemux,
    at_most,
    ceil_div_const,
    read_latency,
)
from ..layouts import gemm_core_shape_layout, gemm_layouts, gemm_signature_members, unsigned_for
from ..requant import Requantizer
from .core import check_path
from .model import OUT_BITS, GemmLimits, check_config, gemm_limits
from .os_core import OsCore
from .ws_core import WsCore

__all__ = ["GemmUnit"]

_cdiv = hw.cdiv.py_func
#: Outputs of the output-stage demultiplexer, by ``out32``.
_TO_REQUANT, _TO_OUTPUT = 0, 1


class GemmUnit(CheckedComponent):
    """int8 GEMM unit on an ``R x C`` systolic array (``ws`` or ``os`` from the config).

    Parameters
    ----------
    config : AcceleratorConfig
        Array size, dataflow, widths and buffer sizes. Construction fails, before the
        component is created, with a ConfigError naming the field for ``dataflow = "is"``,
        for an array of more than ``common.MAX_PES`` (4096) PEs, for a buffer of more than
        ``common.MAX_BUFFER_WORDS`` (65536) words and for an ``acc_bits`` that the largest
        K of the buffers could overflow; TypeError for a non-config
        (:func:`~.model.check_config`).

    Members
    -------
    See :func:`edgetron.rtl.layouts.gemm_signature_members` and
    :func:`~edgetron.rtl.layouts.gemm_layouts` (widths there); beat order in
    :mod:`edgetron.rtl.gemm.codec`.

    cmd
        ``m``, ``k``, ``n``, ``out32`` (1: int32 results; 0: requantized int8).
    a, w
        Activation and weight beats (one lane per array row, resp. column).
    ch
        One output channel per beat: ``bias``, ``mult``, ``shift``.
    o
        One output row segment of ``cols`` channels per beat.
    err
        The last command was rejected (zero dimension, or the shape does not fit the
        buffers, see :func:`~.model.check_shape`); high from the cycle after the check
        until the next command handshake.

    Latency
    -------
    ``sim.units.gemm.gemm_cycles(config.sim_params(), M, K, N, out32)`` cycles from the
    command handshake to the last output handshake, both included, when the inputs are
    valid on every cycle and ``o.ready`` is always high (docs/rtl.md derives it). With
    input gaps and ``o.ready`` high, the last output handshake comes exactly ``compute +
    drain`` (``sim.units.gemm.gemm_phases``) cycles after the last operand handshake.
    :func:`~.model.gemm_timing` gives the model as data (the export manifest). The fixed
    latencies are those of :mod:`edgetron.hw.gemm`; the unit, its cores, the array and the
    requantizer assert at elaboration that their structure has exactly those.

    Backpressure
    ------------
    Every stream honours valid/ready. Input gaps only lengthen the load phase. Output
    backpressure stalls the compute core (buffer reads, array, accumulator stage) as a
    whole through a clock enable, and the requantizer's pipeline; no beat is lost or
    duplicated. A new command is accepted only after the last output beat of the
    previous one.

    Golden
    ------
    ``out32 = 1``: :func:`edgetron.golden.gemm.gemm_int` (``a @ w + bias``);
    ``out32 = 0``: :func:`edgetron.golden.gemm.gemm_requant`.
    """

    @classmethod
    def check_parameters(cls, config: AcceleratorConfig) -> None:
        check_config(config)

    def __init__(self, config: AcceleratorConfig):
        self._limits = gemm_limits(config)
        self._config = config
        self._layouts = gemm_layouts(config, self._limits)
        super().__init__(gemm_signature_members(self._layouts))

    @staticmethod
    def max_shape(config: AcceleratorConfig) -> tuple[int, int, int]:
        """Largest ``(M, K, N)`` of one invocation, each with the other two at 1."""
        lim = check_config(config)
        return lim.m_max, lim.k_max, lim.n_max

    @property
    def limits(self) -> GemmLimits:
        """Buffer sizes and shape limits of this unit."""
        return self._limits

    def elaborate(self, platform):
        m = Module()
        cfg, lim, lay = self._config, self._limits, self._layouts
        R, C = cfg.rows, cfg.cols
        ws = cfg.dataflow == "ws"

        # ---- buffers ----------------------------------------------------------------------
        m.submodules.a_mem = a_mem = memory.Memory(shape=lay.a, depth=lim.a_words, init=[])
        m.submodules.w_mem = w_mem = memory.Memory(shape=lay.w, depth=lim.w_words, init=[])
        m.submodules.p_mem = p_mem = memory.Memory(shape=lay.param, depth=lim.param_words,
                                                   init=[])
        a_wr, a_rd = a_mem.write_port(), a_mem.read_port()
        w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
        p_wr, p_rd = p_mem.write_port(granularity=1), p_mem.read_port(domain="comb")
        for name, port in (("A", a_rd), ("W", w_rd)):
            check_path("GemmUnit", f"the {name} buffer read", read_latency(port),
                       hw.GEMM_BUFFER_READ_CYCLES)

        # ---- compute core -----------------------------------------------------------------
        m.submodules.core = core = (WsCore if ws else OsCore)(cfg, lim)
        wiring.connect(m, core.a_rd, a_rd)
        wiring.connect(m, core.w_rd, w_rd)
        m.d.comb += [p_rd.addr.eq(core.p_addr), core.p_data.eq(p_rd.data)]

        # ---- command and shape check ------------------------------------------------------
        # The check registers every count as its last index (count - 1, the shape has no
        # zero dimension), so each "last beat / last tile" test compares equal widths.
        cmd = Signal(lay.cmd)
        shape = Signal(gemm_core_shape_layout(cfg, lim))
        m.d.comb += core.shape.eq(shape)
        nt_c = ceil_div_const(cmd.n, C)
        check = [shape.m.eq(cmd.m), shape.k.eq(cmd.k), shape.nt_last.eq(nt_c - 1)]
        if ws:
            kf_c = ceil_div_const(cmd.k, R)
            a_need = cmd.m * kf_c
            check.append(shape.kf_last.eq(kf_c - 1))
        else:
            mt_c = ceil_div_const(cmd.m, R)
            a_need = mt_c * cmd.k
            check.append(shape.mt_last.eq(mt_c - 1))
        w_need = nt_c * cmd.k
        ok = ((cmd.m != 0) & (cmd.k != 0) & (cmd.n != 0) & at_most(a_need, lim.a_words)
              & at_most(w_need, lim.w_words) & at_most(nt_c, lim.param_words))
        if ws:
            ok &= at_most(cmd.m, lim.acc_words)

        # ---- load: beats accepted per stream (the A and W counts are the write addresses),
        # output beats handshaken, and the index of the last beat of each.
        a_cnt = Signal(unsigned_for(lim.a_words))
        w_cnt = Signal(unsigned_for(lim.w_words))
        ch_cnt = Signal(unsigned_for(lim.n_max))
        out_cnt = Signal(unsigned_for(_cdiv(lim.n_max, C) * lim.m_max))
        a_end = Signal.like(a_cnt)
        w_end = Signal.like(w_cnt)
        ch_end = Signal.like(ch_cnt)
        out_end = Signal.like(out_cnt)
        ch_lane = Signal(range(C))          # channel of the ch beat within its word
        ch_word = Signal.like(p_wr.addr)    # parameter memory word of the ch beat
        a_done = Signal()
        w_done = Signal()
        ch_done = Signal()
        check += [a_end.eq(a_need - 1), w_end.eq(w_need - 1), ch_end.eq(cmd.n - 1),
                  out_end.eq(nt_c * cmd.m - 1)]

        a_hs = self.a.valid & self.a.ready
        w_hs = self.w.valid & self.w.ready
        ch_hs = self.ch.valid & self.ch.ready
        o_hs = self.o.valid & self.o.ready
        a_last = a_done | (a_hs & (a_cnt == a_end))
        w_last = w_done | (w_hs & (w_cnt == w_end))
        ch_last = ch_done | (ch_hs & (ch_cnt == ch_end))

        m.d.comb += [
            a_wr.addr.eq(a_cnt), a_wr.data.eq(self.a.payload), a_wr.en.eq(a_hs),
            w_wr.addr.eq(w_cnt), w_wr.data.eq(self.w.payload), w_wr.en.eq(w_hs),
            p_wr.addr.eq(ch_word),
        ]
        for c in range(C):
            m.d.comb += [p_wr.data[c].eq(self.ch.payload), p_wr.en[c].eq(ch_hs & (ch_lane == c))]

        # The command phase is one state per hw.GEMM_CMD_STATES entry, one cycle each.
        idle, checking = hw.GEMM_CMD_STATES
        cmd_states = []
        with m.FSM():
            with m.State(idle):
                cmd_states.append(idle)
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [cmd.eq(self.cmd.payload), self.err.eq(0)]
                    m.next = checking
            with m.State(checking):
                cmd_states.append(checking)
                with m.If(ok):
                    m.d.sync += [
                        *check,
                        a_cnt.eq(0), w_cnt.eq(0), ch_cnt.eq(0), ch_lane.eq(0), ch_word.eq(0),
                        out_cnt.eq(0), a_done.eq(0), w_done.eq(0), ch_done.eq(0),
                    ]
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += self.err.eq(1)
                    m.next = idle
            with m.State("LOAD"):
                m.d.comb += [
                    core.start.eq(1),
                    self.a.ready.eq(~a_done), self.w.ready.eq(~w_done),
                    self.ch.ready.eq(~ch_done),
                ]
                with m.If(a_hs):
                    m.d.sync += a_cnt.eq(a_cnt + 1)
                with m.If(w_hs):
                    m.d.sync += w_cnt.eq(w_cnt + 1)
                with m.If(ch_hs):
                    m.d.sync += ch_cnt.eq(ch_cnt + 1)
                    with m.If(ch_lane == C - 1):
                        m.d.sync += [ch_lane.eq(0), ch_word.eq(ch_word + 1)]
                    with m.Else():
                        m.d.sync += ch_lane.eq(ch_lane + 1)
                m.d.sync += [a_done.eq(a_last), w_done.eq(w_last), ch_done.eq(ch_last)]
                with m.If(a_last & w_last & ch_last):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += core.issue.eq(1)
                with m.If(o_hs):
                    m.d.sync += out_cnt.eq(out_cnt + 1)
                    with m.If(out_cnt == out_end):
                        m.next = idle
        check_path("GemmUnit", "the command phase (states before LOAD)", len(cmd_states),
                   hw.GEMM_CMD_CYCLES)

        # ---- output: int32 straight from the epilogue, or int8 through the requantizer --
        m.submodules.route = route = StreamDemux(lay.epilogue, 2)
        m.submodules.requant = rq = Requantizer(C, cfg.acc_bits, OUT_BITS)
        check_path("GemmUnit", "the requantizer", rq.LATENCY, hw.REQUANT_LATENCY)
        wiring.connect(m, core.o, route.i)
        wiring.connect(m, route.o[_TO_REQUANT], rq.i)
        bypass = route.o[_TO_OUTPUT]
        m.d.comb += [
            route.sel.eq(Mux(cmd.out32, _TO_OUTPUT, _TO_REQUANT)),
            bypass.ready.eq(self.o.ready),
            rq.o.ready.eq(self.o.ready),
            self.o.valid.eq(Mux(cmd.out32, bypass.valid, rq.o.valid)),
        ]
        with m.If(cmd.out32):
            m.d.comb += self.o.payload.eq(bypass.payload.acc)
        with m.Else():
            for c in range(C):
                m.d.comb += self.o.payload[c].eq(rq.o.payload[c])
        return m
