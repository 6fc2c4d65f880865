"""The depthwise mode of the array: one channel per column, the taps stationary down it.

One *call* convolves one image's group of ``C`` channels (``C`` the array's columns):
``h x w`` input pixels in, ``ho x wo`` output pixels out, each beat ``C`` channels of
one pixel (NHWC order within the group). docs/rtl.md ("Depthwise mode") has the block
diagram and derives the timing; the numbers are :mod:`edgetron.hw.conv`'s.

Datapath
--------
* **Line buffer**: :data:`~edgetron.hw.conv.DW_LINE_ROWS` row memories of
  ``line_width`` words. The *loader* writes input row ``iy`` into row memory
  ``iy mod DW_LINE_ROWS`` as it arrives, and waits only when that memory still holds a
  row the current output row needs.
* **Sweep**: output row ``oy`` starts once its input rows are in (the rows
  ``oy*sh - pt .. oy*sh - pt + r - 1`` that exist) and the weights are loaded. Its
  ``L = (wo - 1) * sw + s`` sweep cycles each read column ``j - pl`` of every row memory
  (one read port each, one address); the ``r`` rows of the window are picked from them,
  padding rows and columns read as zero. The column shifts into a window register of
  ``DW_MAX_KERNEL x DW_MAX_KERNEL`` pixels.
* **Column of PEs**: a sweep cycle that completes a window (every ``sw``-th from the
  ``s``-th) sends it down the column. Tap ``t = ry*s + sx`` is PE ``t``'s operand,
  delayed ``t`` cycles so that it meets the partial sum that enters PE ``t`` from PE
  ``t - 1``; PE 0 starts from the bias. PEs ``t >= r*s`` add zero.
* **Output**: the requantizer (per-channel ``mult``, ``shift``), the activation clamp
  ``[lo, hi]`` (combinational at its output) and the skid buffer.

Weights and parameters have two banks; consecutive calls use them in turn, so a call's
weights load while the previous call's last windows drain.
"""

from __future__ import annotations

from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import MULT_BITS, SHIFT_BITS
from edgetron.hw import conv as hw

from ..common import (
    CheckedComponent,
    DelayLine,
    SkidBuffer,
    check_array_size,
    check_config_type,
    check_param,
    read_latency,
)
from ..layouts import unsigned_for
from ..requant import Requantizer

__all__ = ["DepthwiseUnit", "dw_layouts"]

KM = hw.DW_MAX_KERNEL
NS = hw.DW_LINE_ROWS


def dw_layouts(config: AcceleratorConfig, line_width: int) -> dict:
    """Payload layouts of the depthwise unit's streams (LSB first).

    ``cmd``: ``h``, ``w``, ``r``, ``s``, ``sh``, ``sw``, ``pt``, ``pb``, ``pl``, ``pr``;
    ``x``, ``w``: ``C`` signed input / weight lanes; ``p``: per lane ``bias``, ``mult``,
    ``shift``, then the clamp ``lo``, ``hi`` of the call; ``o``: ``C`` signed int8 lanes.
    """
    C = config.cols
    pad = unsigned_for(KM - 1)
    cmd = data.StructLayout({
        "h": unsigned_for(hw.DW_MAX_HEIGHT), "w": unsigned_for(line_width),
        "r": unsigned_for(KM), "s": unsigned_for(KM),
        "sh": unsigned_for(hw.DW_MAX_STRIDE), "sw": unsigned_for(hw.DW_MAX_STRIDE),
        "pt": pad, "pb": pad, "pl": pad, "pr": pad,
    })
    param = data.StructLayout({
        "bias": data.ArrayLayout(signed(config.acc_bits), C),
        "mult": data.ArrayLayout(unsigned(MULT_BITS), C),
        "shift": data.ArrayLayout(unsigned(SHIFT_BITS), C),
        "lo": signed(8), "hi": signed(8),
    })
    return {
        "cmd": cmd,
        "x": data.ArrayLayout(signed(config.input_bits), C),
        "w": data.ArrayLayout(signed(config.weight_bits), C),
        "p": param,
        "o": data.ArrayLayout(signed(8), C),
    }


class DepthwiseUnit(CheckedComponent):
    """Depthwise int8 convolution on ``C`` columns of ``R`` PEs (the config's array).

    Parameters
    ----------
    config : AcceleratorConfig
        ``rows`` (PEs per column: taps ``r*s <= rows``), ``cols`` (channels per call),
        widths, and ``ifmap_sram_bytes`` (the line buffer,
        :func:`edgetron.hw.conv.dw_line_width`).
    line_width : int, optional
        Words of a line-buffer row, ``1 .. dw_line_width(config)``; by default all of it
        (tests elaborate narrower lines).

    Members
    -------
    cmd
        One call: input ``h x w``, kernel ``r x s``, strides ``sh``, ``sw`` (1 or 2),
        padding ``pt``, ``pb``, ``pl``, ``pr`` (:func:`dw_layouts`). The host checks the
        shape (:func:`edgetron.rtl.conv.model.check_dw_shape`); the unit does not.
    w
        ``r*s`` beats, tap ``ry*s + sx`` in order, one weight per channel.
    p
        One beat: per-channel ``bias``, ``mult``, ``shift``; the clamp ``lo``, ``hi``.
    x
        ``h*w`` beats, the pixels in raster order, one value per channel.
    o
        ``ho*wo`` beats in raster order: ``clamp(requantize(acc), lo, hi)`` per channel.

    Latency
    -------
    A window's output leaves ``edgetron.hw.conv.dw_output_latency(rows)`` cycles after
    the sweep cycle that completed it; a call or a sequence of calls with valid inputs on
    every cycle and ``o.ready`` high takes :func:`edgetron.sim.units.conv.dw_sequence`
    cycles (docs/rtl.md derives it). The line-buffer read, window register, PE chain,
    requantizer and skid buffer assert their depths at elaboration.

    Throughput
    ----------
    One sweep cycle per input column of a row (``L`` per output row); one window per
    column at stride 1, so ``r*s`` of the column's ``R`` PEs are busy per cycle in
    steady state (9 of 16 for 3x3 on a 16-row array).

    Backpressure
    ------------
    Every stream honours valid/ready. ``o`` backpressure stalls the sweep, the line-buffer
    reads, the window and the PE column as a whole (clock enable); the loaders go on
    until the line buffer or the weight bank is full. A command is taken once the
    previous call has swept its last row, taken its last pixel, and the bank it will use
    is no longer read (:func:`edgetron.hw.conv.dw_bank_reuse`).

    Golden
    ------
    :func:`edgetron.golden.conv.conv2d_requant` with ``groups = C`` (per image and
    channel group), then the clamp to ``[lo, hi]``.
    """

    @classmethod
    def check_parameters(cls, config: AcceleratorConfig, line_width: int | None = None) -> None:
        check_config_type(config)
        check_array_size(cls.__name__, config.rows, config.cols)
        full = hw.dw_line_width(config.ifmap_sram_bytes, config.cols, config.input_bits)
        if full < 1:
            check_param(cls.__name__, "ifmap_sram_bytes (line-buffer words per row)", full,
                        1, hw.DW_MAX_WIDTH)
        if line_width is not None:
            check_param(cls.__name__, "line_width", line_width, 1, full)

    def __init__(self, config: AcceleratorConfig, line_width: int | None = None):
        self._config = config
        self.line_width = line_width or hw.dw_line_width(
            config.ifmap_sram_bytes, config.cols, config.input_bits)
        self.layouts = lay = dw_layouts(config, self.line_width)
        super().__init__({
            "cmd": In(stream.Signature(lay["cmd"])),
            "w": In(stream.Signature(lay["w"])),
            "p": In(stream.Signature(lay["p"])),
            "x": In(stream.Signature(lay["x"])),
            "o": Out(stream.Signature(lay["o"])),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, lay, LW = self._config, self.layouts, self.line_width
        R, C = cfg.rows, cfg.cols
        pipe = Module()          # the compute pipeline: advances while `adv`
        adv = Signal()
        m.submodules.pipe = EnableInserter(adv)(pipe)

        m.submodules.rq = rq = Requantizer(C, cfg.acc_bits, 8)
        m.submodules.skid = skid = SkidBuffer(lay["o"])
        m.d.comb += adv.eq(rq.i.ready)
        wiring.connect(m, skid.o, wiring.flipped(self.o))

        # ---- the call: command registers ------------------------------------------------
        cmd = Signal(lay["cmd"])
        ho_last = Signal(unsigned_for(hw.DW_MAX_HEIGHT))
        j_last = Signal(unsigned_for(LW + 2 * (KM - 1)))
        rs = Signal(unsigned_for(KM * KM))
        bank = Signal(init=1)                  # bank of the current call
        reuse = [Signal(unsigned_for(hw.dw_bank_reuse(R)), name=f"reuse{b}") for b in (0, 1)]
        c_active, x_active, w_active, p_active = (Signal(name=n) for n in (
            "c_active", "x_active", "w_active", "p_active"))
        nb = ~bank
        free_bank = Mux(nb, reuse[1] == 0, reuse[0] == 0)
        m.d.comb += self.cmd.ready.eq(~c_active & ~x_active & ~w_active & ~p_active
                                      & free_bank)
        c = self.cmd.payload
        span_h = c.h + c.pt + c.pb - c.r
        span_w = c.w + c.pl + c.pr - c.s
        sweep_w = Mux(c.sw == 2, span_w & ~1, span_w)   # (wo - 1) * sw

        # ---- weights and parameters: two banks ------------------------------------------
        wts = [[Signal(lay["w"], name=f"w{b}_{t}") for t in range(R)] for b in (0, 1)]
        prm = [Signal(lay["p"], name=f"p{b}") for b in (0, 1)]
        w_cnt = Signal(unsigned_for(R))
        m.d.comb += [self.w.ready.eq(w_active), self.p.ready.eq(p_active)]
        with m.If(self.w.valid & w_active):
            for b in (0, 1):
                for t in range(R):
                    with m.If((bank == b) & (w_cnt == t)):
                        m.d.sync += wts[b][t].eq(self.w.payload)
            m.d.sync += w_cnt.eq(w_cnt + 1)
            with m.If(w_cnt == rs - 1):
                m.d.sync += w_active.eq(0)
        with m.If(self.p.valid & p_active):
            for b in (0, 1):
                with m.If(bank == b):
                    m.d.sync += prm[b].eq(self.p.payload)
            m.d.sync += p_active.eq(0)

        # ---- line buffer and loader -----------------------------------------------------
        mems, rd = [], []
        for k in range(NS):
            mem = memory.Memory(shape=lay["x"], depth=LW, init=[])
            m.submodules[f"line{k}"] = mem
            mems.append(mem.write_port())
            rd.append(mem.read_port())
        row_bits = unsigned_for(hw.DW_MAX_HEIGHT + 1)
        ix = Signal(unsigned_for(LW))
        iy = Signal(row_bits)
        lslot = Signal(unsigned_for(NS - 1))
        rows_done = Signal(row_bits)
        free_limit = Signal(signed(row_bits.width + 2))   # rows below it may be written
        m.d.comb += self.x.ready.eq(x_active & (iy < free_limit))
        for k in range(NS):
            m.d.comb += [mems[k].addr.eq(ix), mems[k].data.eq(self.x.payload),
                         mems[k].en.eq(self.x.valid & self.x.ready & (lslot == k))]
        with m.If(self.x.valid & self.x.ready):
            m.d.sync += ix.eq(ix + 1)
            with m.If(ix == cmd.w - 1):
                m.d.sync += [ix.eq(0), iy.eq(iy + 1), rows_done.eq(rows_done + 1),
                             lslot.eq(Mux(lslot == NS - 1, 0, lslot + 1))]
                with m.If(iy == cmd.h - 1):
                    m.d.sync += x_active.eq(0)

        # ---- sweep: one column of the window rows per cycle -----------------------------
        oy = Signal(unsigned_for(hw.DW_MAX_HEIGHT))
        j = Signal.like(j_last)
        first = Signal(signed(row_bits.width + 2))        # oy * sh - pt
        base = Signal(unsigned_for(NS - 1))              # first mod NS
        rows_need = first + cmd.r
        go = ~w_active & ~p_active & ((rows_done >= rows_need) | (rows_done == cmd.h))
        issue = Signal()
        m.d.comb += issue.eq(c_active & ((j != 0) | go))
        col = Signal(signed(j.shape().width + 2))
        m.d.comb += col.eq(j - cmd.pl)
        for k in range(NS):
            m.d.comb += [rd[k].addr.eq(col), rd[k].en.eq(adv)]
            assert read_latency(rd[k]) == hw.DW_READ_CYCLES, "line-buffer read latency"
        last_col = j == j_last
        last_row = oy == ho_last
        with m.If(issue & adv):
            m.d.sync += j.eq(j + 1)
            with m.If(last_col):
                step = Mux(cmd.sh == 2, 2, 1)
                nxt = base + step
                m.d.sync += [j.eq(0), oy.eq(oy + 1), first.eq(first + step),
                             free_limit.eq(free_limit + step),
                             base.eq(Mux(nxt >= NS, nxt - NS, nxt))]
                with m.If(last_row):
                    m.d.sync += c_active.eq(0)
                    for b in (0, 1):
                        with m.If(bank == b):
                            m.d.sync += reuse[b].eq(hw.dw_bank_reuse(R))
        for b in (0, 1):
            with m.If(adv & (reuse[b] != 0) & ~(issue & last_col & last_row & (bank == b))):
                m.d.sync += reuse[b].eq(reuse[b] - 1)

        # ---- command handshake: reset the call's counters ------------------------------
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [
                cmd.eq(c), bank.eq(nb), rs.eq(c.r * c.s),
                ho_last.eq(Mux(c.sh == 2, span_h >> 1, span_h)),
                j_last.eq(sweep_w + c.s - 1),
                c_active.eq(1), x_active.eq(1), w_active.eq(1), p_active.eq(1),
                w_cnt.eq(0), ix.eq(0), iy.eq(0), lslot.eq(0), rows_done.eq(0),
                oy.eq(0), j.eq(0), first.eq(-c.pt), free_limit.eq(NS - c.pt),
                base.eq(Mux(c.pt == 0, 0, NS - c.pt)),
            ]

        # ---- stage 1 (read data): pick the window's rows; padding reads zero ------------
        tag1 = Signal(data.StructLayout({
            "issued": 1, "out": 1, "col_ok": 1, "bank": 1, "s": unsigned_for(KM),
            "rs": unsigned_for(KM * KM),
            "row_ok": data.ArrayLayout(1, KM),
            "slot": data.ArrayLayout(unsigned_for(NS - 1), KM),
        }))
        win_end = j - (cmd.s - 1)
        pipe.d.sync += [
            tag1.issued.eq(issue),
            tag1.out.eq(issue & (j >= cmd.s - 1) & ((cmd.sw == 1) | ~win_end[0])),
            tag1.col_ok.eq((col >= 0) & (col < cmd.w)),
            tag1.bank.eq(bank), tag1.s.eq(cmd.s), tag1.rs.eq(rs),
        ]
        for ry in range(KM):
            row = first + ry
            sl = base + ry
            pipe.d.sync += [
                tag1.row_ok[ry].eq((row >= 0) & (row < cmd.h) & (ry < cmd.r)),
                tag1.slot[ry].eq(Mux(sl >= NS, sl - NS, sl)),
            ]
        column = []
        for ry in range(KM):
            v = Signal(lay["x"], name=f"col{ry}")
            with m.Switch(tag1.slot[ry]):
                for k in range(NS):
                    with m.Case(k):
                        m.d.comb += v.eq(rd[k].data)
            column.append(Mux(tag1.row_ok[ry] & tag1.col_ok, v, 0))

        # ---- stage 2: the window register -----------------------------------------------
        win = [[Signal(lay["x"], name=f"win{ry}_{k}") for k in range(KM)] for ry in range(KM)]
        with pipe.If(tag1.issued):
            for ry in range(KM):
                pipe.d.sync += win[ry][0].eq(column[ry])
                for k in range(1, KM):
                    pipe.d.sync += win[ry][k].eq(win[ry][k - 1])
        tag2 = Signal(data.StructLayout({"valid": 1, "bank": 1, "s": unsigned_for(KM),
                                         "rs": unsigned_for(KM * KM)}))
        pipe.d.sync += [tag2.valid.eq(tag1.out), tag2.bank.eq(tag1.bank),
                        tag2.s.eq(tag1.s), tag2.rs.eq(tag1.rs)]
        window_regs = 1

        # ---- the column of PEs: tap t delayed t cycles meets the partial sum ------------
        tags = DelayLine(pipe, Signal(data.StructLayout({"valid": 1, "bank": 1}), name="ptag"),
                         R, "ptag")
        m.d.comb += [tags.input.valid.eq(tag2.valid), tags.input.bank.eq(tag2.bank)]
        psum_prev = None
        pe_regs = 0
        for t in range(R):
            tap = Signal(lay["x"], name=f"tap{t}")
            with m.If(t < tag2.rs):
                with m.Switch(tag2.s):
                    for s in range(1, KM + 1):
                        if t // s < KM:
                            with m.Case(s):
                                m.d.comb += tap.eq(win[t // s][s - 1 - t % s])
            operand = DelayLine(pipe, tap, t, f"tap{t}").output
            wsel = lay["w"](Mux(tags[t].bank, wts[1][t], wts[0][t]))
            bias = lay["p"](Mux(tags[0].bank, prm[1], prm[0])).bias
            psum = Signal(data.ArrayLayout(signed(cfg.acc_bits), C), name=f"psum{t}")
            for lane in range(C):
                start = bias[lane] if psum_prev is None else psum_prev[lane]
                pipe.d.sync += psum[lane].eq(start + operand[lane] * wsel[lane])
            psum_prev = psum
            pe_regs += 1

        # ---- output: requantizer, clamp, skid buffer ------------------------------------
        out_tag = tags.output
        rq_bank = DelayLine(pipe, out_tag.bank, Requantizer.LATENCY, "rq_bank").output
        params_in = lay["p"](Mux(out_tag.bank, prm[1], prm[0]))
        params_out = lay["p"](Mux(rq_bank, prm[1], prm[0]))
        m.d.comb += [rq.i.valid.eq(out_tag.valid), rq.i.payload.acc.eq(psum_prev),
                     rq.i.payload.mult.eq(params_in.mult),
                     rq.i.payload.shift.eq(params_in.shift)]
        for lane in range(C):
            q = rq.o.payload[lane]
            lo, hi = params_out.lo, params_out.hi
            m.d.comb += skid.i.payload[lane].eq(Mux(q < lo, lo, Mux(q > hi, hi, q)))
        m.d.comb += [skid.i.valid.eq(rq.o.valid), rq.o.ready.eq(skid.i.ready)]

        depth = (read_latency(rd[0]) + window_regs + pe_regs + Requantizer.LATENCY
                 + SkidBuffer.LATENCY)
        if depth != hw.dw_output_latency(R):
            raise AssertionError(
                f"DepthwiseUnit: output path is {depth} cycles deep, the timing model "
                f"(edgetron.hw.conv.dw_output_latency) says {hw.dw_output_latency(R)}")
        return m
