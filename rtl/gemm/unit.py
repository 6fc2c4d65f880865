"""The GEMM unit: operand slots, a compute core around a systolic array, and a controller
that overlaps the calls it is given.

A call
------
1. ``cmd`` handshake (``m``, ``k``, ``n``, ``out32``), then three cycles to check the
   shape against a slot's buffers, a pipeline of registers (``edgetron.hw.gemm.
   GEMM_CMD_STATES``: the ceiling divisions, the products, the comparisons). A shape that does not
   fit, or has a zero dimension, is *rejected*: ``err`` goes high until the next command
   handshake, no operand beat is accepted for it, nothing is output. An accepted shape
   takes a slot: half of the A and W buffers and of the parameter memory with
   ``double_buffer`` (two slots, used in turn), all of them without (one slot).
2. Load: ``a``, ``w`` and ``ch`` each take their beats of the call into the slot, one per
   cycle, independently; a stream goes on with the next call's beats right after the
   last beat of this one (once the next call has its slot).
3. Compute: the core (:mod:`.ws_core` or :mod:`.os_core`) issues the call as soon as
   the operands of its first fold are in and the previous call has issued its last row,
   and later folds as their operands arrive; the slot is free once the call has issued
   its last row (its parameter half once the last results have read it). The results
   stream out on ``o`` through the output stage: every beat passes the requantizer's
   stages (int8 results; int32 results beside them, unchanged), so that calls in
   different modes stay in order, then an output FIFO.

So with ``double_buffer`` the next call loads while the current one computes and the
drain of one call overlaps the next: back to back at full input rate, the array is busy
but for one fill at the start and one drain at the end. The beat order of every stream
is :mod:`.codec`'s; docs/rtl.md has the block diagram, the schedules and the timing.

Buffers
-------
Sized from the config (:func:`~.model.gemm_limits`, the rules of :mod:`edgetron.hw.gemm`):
the A memory holds ``slots`` halves of words of ``R`` operands, the W memory of words of
``C`` operands, the parameter memory ``slots * R`` words of ``C`` channels (``N <= R * C``
per call); the accumulator buffer (``ws`` only, inside :class:`~.ws_core.WsCore`) holds
words of ``C`` partial sums, shared by the calls in pipeline order.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data

from edgetron.config import AcceleratorConfig
from edgetron.hw import gemm as hw

from ..common import (
    CheckedComponent,
    DelayLine,
    at_most,
    ceil_div_const,
)
from ..layouts import (
    gemm_core_shape_layout,
    gemm_layouts,
    gemm_signature_members,
)
from .core import check_path
from .model import OUT_BITS, GemmLimits, check_config, gemm_limits
from .os_core import OsCore
from .slots import (
    command_phase,
    operand_buffers,
    operand_loaders,
    output_fifo,
    requantizer_after,
    slot_state,
)
from .ws_core import WsCore

__all__ = ["GemmUnit"]


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
    One call on an idle unit: ``sim.units.gemm.gemm_cycles(config.sim_params(), M, K, N,
    out32)`` cycles from the command handshake to the last output handshake, both
    included, when the inputs are valid on every cycle and ``o.ready`` is always high; a
    sequence of calls: ``sim.units.gemm.gemm_sequence`` (docs/rtl.md derives both).
    :func:`~.model.gemm_timing` gives the one-call model as data (the export manifest).
    The fixed latencies are those of :mod:`edgetron.hw.gemm`; the unit, its cores, the
    array and the requantizer assert at elaboration that their structure has exactly
    those.

    Backpressure
    ------------
    Every stream honours valid/ready; ``valid`` never depends on ``ready``. Input gaps
    delay only the rows whose operands they delay. Output backpressure fills the output
    FIFO (``edgetron.hw.gemm.gemm_out_fifo_beats`` beats) and then holds back only the
    issue of rows: the core issues against credits of the FIFO, and nothing after the
    issue point stalls (no clock enable on the datapath). ``o.ready`` reaches only the
    FIFO's read side. No beat is lost or duplicated. A new command is accepted while
    earlier calls load, compute and drain, whenever a slot is free.

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

        # ---- compute core, buffers (`slots` halves each) and slots ---------------------------
        m.submodules.core = core = (WsCore if ws else OsCore)(cfg, lim)
        writes = operand_buffers(m, "GemmUnit", lay, lim, core)
        st = slot_state(m, cfg, lim, core)

        # ---- command and shape check ------------------------------------------------------
        # The check is a pipeline of free-running registers behind the command register,
        # one hw.GEMM_CMD_STATES entry per stage (the command holds still through them):
        # DIV registers the ceiling divisions, MUL the products (the beats of each operand
        # stream) and the command's own checks, CHECK compares the products with the slot's
        # buffers and takes the slot. No adder or multiplier lies between two stages'
        # registers in a row, so the check is off the unit's critical path. Every count is
        # registered as its last index (count - 1, the shape has no zero dimension), so
        # each "last beat / last tile" test compares equal widths.
        cmd = Signal(lay.cmd)
        shape = Signal(gemm_core_shape_layout(cfg, lim))
        nt_c = Signal.like(ceil_div_const(cmd.n, C), name="nt_count")
        fold = cmd.k if ws else cmd.m               # ws: K folds of R; os: M tiles of R
        f_c = Signal.like(ceil_div_const(fold, R), name="kf_count" if ws else "mt_count")
        m.d.sync += [nt_c.eq(ceil_div_const(cmd.n, C)), f_c.eq(ceil_div_const(fold, R))]
        a_need = Signal.like(cmd.m * f_c if ws else f_c * cmd.k, name="a_need")
        w_need = Signal.like(nt_c * cmd.k, name="w_need")
        m.d.sync += [a_need.eq(cmd.m * f_c if ws else f_c * cmd.k), w_need.eq(nt_c * cmd.k)]
        m.d.comb += [shape.m.eq(cmd.m), shape.k.eq(cmd.k), shape.nt_last.eq(nt_c - 1),
                     shape.out32.eq(cmd.out32), shape.ch_end.eq(cmd.n - 1),
                     shape.a_end.eq(a_need - 1), shape.w_end.eq(w_need - 1)]
        m.d.comb += (shape.kf_last if ws else shape.mt_last).eq(f_c - 1)
        if ws:
            m.d.comb += shape.m_last.eq(cmd.m - 1)
        # The comparisons of the command and the tile count are registered beside the
        # products (MUL), so CHECK only compares the products.
        cmd_ok = Signal(name="cmd_ok")
        m.d.sync += cmd_ok.eq((cmd.m != 0) & (cmd.k != 0) & (cmd.n != 0)
                              & at_most(nt_c, lim.param_words)
                              & (at_most(cmd.m, lim.acc_words) if ws else 1))
        ok = cmd_ok & at_most(a_need, lim.a_words) & at_most(w_need, lim.w_words)

        # The command phase is one state per hw.GEMM_CMD_STATES entry, one cycle each; an
        # accepted shape takes the next slot in turn at the end of CHECK.
        command_phase(m, "GemmUnit", hw.GEMM_CMD_STATES, hw.GEMM_CMD_CYCLES, st, lim,
                      self.cmd, cmd, self.err, ok, shape)

        # ---- loaders: each stream takes its beats of the slot it points to, in turn -----
        operand_loaders(m, st, lim, C, (self.a, self.w, self.ch), writes)

        # ---- output stage: every beat through the requantizer's stages (an int32 beat
        # beside them, unchanged) so that beats of calls in both modes stay in order, then
        # the output FIFO, for which the core holds credits: nothing here stalls, o.ready
        # reaches only the FIFO's read side.
        rq = requantizer_after(m, "GemmUnit", core, C, cfg.acc_bits, OUT_BITS)
        int32 = Signal(data.StructLayout({"acc": lay.o, "out32": 1}), name="int32_in")
        m.d.comb += [int32.acc.eq(core.o.payload.acc), int32.out32.eq(core.o.payload.out32)]
        line = DelayLine(m, int32, hw.REQUANT_LATENCY, "int32")
        check_path("GemmUnit", "the int32 path beside the requantizer", line.depth,
                   hw.REQUANT_LATENCY)
        beat = Signal(lay.o, name="out_beat")
        output_fifo(m, "GemmUnit", cfg, core, rq, beat, self.o)
        with m.If(line.output.out32):
            m.d.comb += beat.eq(line.output.acc)
        with m.Else():
            for c in range(C):
                m.d.comb += beat[c].eq(rq.o.payload[c])
        return m
