"""The ConvUnit: conv2d on the weight-stationary array, im2col on the fly.

A call convolves one *band* of one image: ``hb`` input rows (with the halo of
``r - sh`` rows the next band reads again) of ``w`` pixels of ``c`` channels into the
band's ``ho x wo`` output pixels of ``n`` channels. It is the GEMM unit's call
(``rtl/gemm/unit.py``: command, slots, loaders, ``ws`` core, output stage) with three
differences:

* the A slot holds the band in NHWC order (``cb = c//^R`` words per pixel), not an
  im2col matrix: :class:`~.im2col.ConvCore` generates each row's word on the fly (or
  zeros in the padding), so the slot is the line buffer, double-buffered: the next band
  loads while this one computes;
* the command carries the geometry; its shape check, pipelined over the states of
  :data:`~edgetron.hw.conv.CONV_CMD_STATES` (no multiplier between two registers),
  computes the GEMM view ``M = ho * wo``, ``K = r * s * cb * R`` and the address
  constants, and registers them with the slot;
* the output stage clamps each requantized result to the call's ``[lo, hi]`` (the fused
  activation) between the requantizer and the output FIFO; the bounds of the calls in
  flight wait in a small queue (:func:`~edgetron.hw.conv.conv_clamp_calls` entries) and
  travel beside the requantizer's stages with their beats.

Timing: ``edgetron.sim.units.conv.conv_sequence`` (docs/rtl.md, "Dense convolution").
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream
from amaranth.lib.wiring import In, Out

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.hw import conv as hw
from edgetron.hw import gemm as hw_gemm

from ..common import (
    CheckedComponent,
    DelayLine,
    at_most,
    ceil_div_const,
)
from ..gemm.core import check_path
from ..gemm.model import OUT_BITS, check_config, gemm_limits
from ..gemm.slots import (
    command_phase,
    operand_buffers,
    operand_loaders,
    output_fifo,
    requantizer_after,
    slot_state,
)
from ..layouts import (
    gemm_core_shape_layout,
    gemm_layouts,
    unsigned_for,
)
from .im2col import ConvCore, conv_geom_layout

__all__ = ["ConvUnit", "conv_layouts", "conv_limits"]

KM = hw.CONV_MAX_KERNEL


def conv_limits(config: AcceleratorConfig):
    """The GEMM limits the ConvUnit's buffers give (:func:`~..gemm.model.check_config`);
    ConfigError naming ``dataflow`` unless it is ``ws``."""
    lim = check_config(config)
    if config.dataflow != "ws":
        raise ConfigError(
            f"dataflow: the ConvUnit runs on the weight-stationary array ('ws'), got "
            f"{config.dataflow!r}; with 'os' the simulator costs conv2d as im2col GEMMs")
    return lim


def conv_layouts(config: AcceleratorConfig, limits=None) -> dict:
    """Payload layouts of the ConvUnit's streams (LSB first).

    * ``cmd``: the fields of :data:`edgetron.hw.conv.CONV_FIELDS` (``hb``, ``w`` up to the
      A slot's words, ``c`` up to ``k_max``, ``n`` up to ``n_max``, the kernel, strides
      and paddings in 3, 2 and 3 bits) and the clamp ``lo``, ``hi`` (signed int8);
    * ``a``: ``R`` input lanes (``R`` channels of one pixel), ``w``: ``C`` weight lanes,
      ``ch``: one output channel's ``bias``, ``mult``, ``shift``: the GEMM unit's;
    * ``o``: ``C`` signed int8 lanes (one output pixel's channels ``nt*C .. nt*C+C-1``).
    """
    lim = gemm_limits(config) if limits is None else limits
    g = gemm_layouts(config, lim)
    size = unsigned_for(lim.a_words)
    return {
        "cmd": data.StructLayout({
            "hb": size, "w": size, "c": unsigned_for(lim.k_max), "n": unsigned_for(lim.n_max),
            "r": unsigned_for(KM), "s": unsigned_for(KM),
            "sh": unsigned_for(hw.CONV_MAX_STRIDE), "sw": unsigned_for(hw.CONV_MAX_STRIDE),
            "pt": unsigned_for(KM - 1), "pb": unsigned_for(KM - 1),
            "pl": unsigned_for(KM - 1), "pr": unsigned_for(KM - 1),
            "lo": signed(OUT_BITS), "hi": signed(OUT_BITS),
        }),
        "a": g.a, "w": g.w, "ch": g.ch,
        "o": data.ArrayLayout(signed(OUT_BITS), config.cols),
    }


class ConvUnit(CheckedComponent):
    """conv2d bands on an ``R x C`` weight-stationary array (module docstring).

    Parameters
    ----------
    config : AcceleratorConfig
        As :class:`~edgetron.rtl.gemm.GemmUnit`'s; ``dataflow`` must be ``ws``
        (ConfigError naming the field otherwise).

    Members
    -------
    cmd
        One call: :data:`edgetron.hw.conv.CONV_FIELDS` and the clamp ``lo``, ``hi``.
        A call that :func:`edgetron.hw.conv.conv_fits` rejects sets ``err`` (until the
        next command handshake) and takes no operand beat.
    a
        The band's pixels, NHWC, ``cb`` words of ``R`` channels each (channels beyond
        ``c`` zero).
    w
        For each column tile ``nt``, for each tap ``(i, j)``, channel block and lane
        ``q < R``: the weights of input channel ``cb_i * R + q`` for output channels
        ``nt*C .. nt*C + C - 1`` (zero rows for padded channels).
    ch
        One output channel per beat: ``bias``, ``mult``, ``shift``.
    o
        For each column tile ``nt``, for each output pixel of the band (raster order):
        ``C`` int8 channels, ``clamp(requantize(acc), lo, hi)``.
    err
        The last command was rejected.

    Latency
    -------
    Calls from an idle unit and sequences of calls: ``edgetron.sim.units.conv.
    conv_sequence`` (cycle-exact at full input rate with ``o.ready`` high); the fixed
    depths are :mod:`edgetron.hw.gemm`'s, asserted at elaboration as in the GEMM unit.

    Throughput
    ----------
    A fold step issues ``M`` rows in ``max(M, R)`` cycles once its band words are in;
    with ``double_buffer`` the next band and its weights load during the current one.

    Backpressure
    ------------
    As the GEMM unit: valid/ready on every stream; output backpressure fills the output
    FIFO, then holds back the issue of rows (the core issues against the FIFO's credits,
    nothing after the issue point stalls); no beat is lost or duplicated.

    Golden
    ------
    ``np.clip(golden.conv.conv2d_requant(x, w, bias, mult, shift, (sh, sw), (pt, pb,
    pl, pr)), lo, hi)`` on the band.
    """

    @classmethod
    def check_parameters(cls, config: AcceleratorConfig) -> None:
        conv_limits(config)

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        self._limits = conv_limits(config)
        self._layouts = conv_layouts(config, self._limits)
        lay = self._layouts
        super().__init__({
            "cmd": In(stream.Signature(lay["cmd"])),
            "a": In(stream.Signature(lay["a"])),
            "w": In(stream.Signature(lay["w"])),
            "ch": In(stream.Signature(lay["ch"])),
            "o": Out(stream.Signature(lay["o"])),
            "err": Out(1),
        })

    @property
    def limits(self):
        """The buffer words and shape limits (:class:`~edgetron.rtl.gemm.GemmLimits`)."""
        return self._limits

    def elaborate(self, platform):
        m = Module()
        cfg, lim = self._config, self._limits
        gl = gemm_layouts(cfg, lim)
        R, C, slots = cfg.rows, cfg.cols, lim.slots

        # ---- the core, buffers (the A half is the band's line buffer) and slots ----------
        m.submodules.core = core = ConvCore(cfg, lim)
        writes = operand_buffers(m, "ConvUnit", gl, lim, core)
        st = slot_state(m, cfg, lim, core)
        geom = Signal(data.ArrayLayout(conv_geom_layout(cfg, lim), slots))
        m.d.comb += core.geom.eq(geom)

        # ---- command and shape check (hw.CONV_CMD_STATES, one cycle each): free-running
        # registers over the held command, so that no multiplier or divider lies between
        # two registers: DIV the ceiling divisions, the output size and the products of
        # command fields; MUL the products with cb; MUL2 the weight words and K; CHECK
        # compares registers only (the GEMM view and the address constants of the slot).
        cmd = Signal(self._layouts["cmd"])

        def reg(value, name):
            r = Signal.like(value, name=name)
            m.d.sync += r.eq(value)
            return r

        sh2, sw2 = cmd.sh == 2, cmd.sw == 2
        hp = cmd.hb + cmd.pt + cmd.pb
        wp = cmd.w + cmd.pl + cmd.pr
        pad_h = Mux(cmd.r > cmd.sh, cmd.r, cmd.sh)
        pad_w = Mux(cmd.s > cmd.sw, cmd.s, cmd.sw)
        # DIV
        cb = reg(ceil_div_const(cmd.c, R), "cb")
        nt_c = reg(ceil_div_const(cmd.n, C), "nt_count")
        ho = reg(Mux(sh2, (hp - cmd.r)[1:], (hp - cmd.r)[:len(hp)]) + 1, "ho")
        wo = reg(Mux(sw2, (wp - cmd.s)[1:], (wp - cmd.s)[:len(wp)]) + 1, "wo")
        rs = reg(cmd.r * cmd.s, "rs")
        hbw = reg(cmd.hb * cmd.w, "hbw")
        ptw_pl = reg(cmd.pt * cmd.w + cmd.pl, "ptw_pl")
        fields_ok = reg(
            (cmd.hb != 0) & (cmd.w != 0) & (cmd.c != 0) & (cmd.n != 0)
            & (cmd.r != 0) & (cmd.s != 0) & (cmd.sh != 0) & (cmd.sw != 0)
            & at_most(cmd.sh, hw.CONV_MAX_STRIDE) & at_most(cmd.sw, hw.CONV_MAX_STRIDE)
            & (cmd.pt < pad_h) & (cmd.pb < pad_h) & (cmd.pl < pad_w) & (cmd.pr < pad_w)
            & (hp >= cmd.r) & (wp >= cmd.s), "fields_ok")
        # MUL
        mm = reg(ho * wo, "m")
        kf = reg(rs * cb, "kf")
        wcb = reg(cmd.w * cb, "wcb")
        a_need = reg(hbw * cb, "a_need")
        pad_off = reg(ptw_pl * cb, "pad_off")
        ntcb = reg(nt_c * cb, "ntcb")
        rs_r = reg(rs * R, "rs_r")
        # MUL2
        kk = reg(kf * R, "k")
        w_need = reg(ntcb * rs_r, "w_need")
        shape = Signal(gemm_core_shape_layout(cfg, lim))
        g = Signal(conv_geom_layout(cfg, lim))
        m.d.comb += [
            shape.m.eq(mm), shape.m_last.eq(mm - 1), shape.k.eq(kk), shape.nt_last.eq(nt_c - 1),
            shape.kf_last.eq(kf - 1), shape.out32.eq(0), shape.a_end.eq(a_need - 1),
            shape.w_end.eq(w_need - 1), shape.ch_end.eq(cmd.n - 1),
            g.ow_last.eq(wo - 1), g.cb_last.eq(cb - 1), g.s_last.eq(cmd.s - 1),
            g.sh2.eq(sh2), g.sw2.eq(sw2), g.wcb.eq(wcb), g.swcb.eq(Mux(sw2, cb << 1, cb)),
            g.shwcb.eq(Mux(sh2, wcb << 1, wcb)), g.pad_off.eq(pad_off),
            g.pt.eq(cmd.pt), g.pl.eq(cmd.pl), g.y_end.eq(cmd.hb + cmd.pt),
            g.x_end.eq(cmd.w + cmd.pl),
        ]
        ok = (fields_ok & at_most(a_need, lim.a_words) & at_most(w_need, lim.w_words)
              & at_most(mm, min(lim.acc_words, lim.m_max)) & at_most(kk, lim.k_max)
              & at_most(nt_c, lim.param_words))

        # The clamp bounds of every call in flight, in call order.
        clamp_layout = data.StructLayout({"lo": signed(OUT_BITS), "hi": signed(OUT_BITS)})
        m.submodules.clamps = clamps = fifo.SyncFIFO(
            width=clamp_layout.size, depth=hw.conv_clamp_calls(R, C, slots))

        command_phase(m, "ConvUnit", hw.CONV_CMD_STATES, hw.CONV_CMD_CYCLES, st, lim,
                      self.cmd, cmd, self.err, ok, shape, ready=clamps.w_rdy,
                      accept_comb=[clamps.w_en.eq(1), clamps.w_data.eq(Cat(cmd.lo, cmd.hi))],
                      accept_slot=lambda j: geom[j].eq(g))

        # ---- loaders: each stream takes its beats of the slot it points to, in turn -----
        operand_loaders(m, st, lim, C, (self.a, self.w, self.ch), writes)

        # ---- output stage: requantizer, clamp, output FIFO (the core holds its credits) --
        rq = requantizer_after(m, "ConvUnit", core, C, cfg.acc_bits, OUT_BITS)
        # The beat at the core's output is its call's last when the core reported `drained`
        # as the beat entered its epilogue register; then the call's bounds leave the queue.
        last_out = Signal()
        m.d.sync += last_out.eq(core.drained.valid)
        m.d.comb += clamps.r_en.eq(core.o.valid & last_out)
        bounds = Signal(clamp_layout, name="clamp_in")
        m.d.comb += bounds.eq(clamps.r_data)
        line = DelayLine(m, bounds, hw_gemm.REQUANT_LATENCY, "clamp")
        check_path("ConvUnit", "the clamp bounds beside the requantizer", line.depth,
                   hw_gemm.REQUANT_LATENCY)
        beat = Signal(self._layouts["o"], name="out_beat")
        output_fifo(m, "ConvUnit", cfg, core, rq, beat, self.o)
        lo, hi = line.output.lo, line.output.hi
        for c in range(C):
            q = rq.o.payload[c]
            m.d.comb += beat[c].eq(Mux(q < lo, lo, Mux(q > hi, hi, q)))
        return m
