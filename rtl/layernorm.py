"""LayerNorm unit: integer LayerNorm with per-channel affine and int8 output.

``LayerNormUnit(lanes, row_max, in_bits)`` computes
:func:`edgetron.golden.layernorm.layernorm_int` bit for bit on rows of ``C <= row_max``
channels: per-row ``sum(x)`` and ``sum(x**2)``, ``D = C s2 - s1**2 + q_eps``, the even
normalizing shift, the square root (:class:`~edgetron.rtl.arith.SeqSqrt`), one reciprocal
per row (:class:`~edgetron.rtl.arith.SeqDivider`), then per element ``dev = C x - s1``,
``round_shift(dev * factor, 31 - p - 12)``, ``* gamma + beta`` and the final rounding and
saturation. The scalar constants (``C``, ``q_eps``, ``gamma_shift``) arrive on ``c``; the
per-channel ``gamma_int``/``beta_int`` on ``p`` right after (``ceil(C / lanes)`` beats).
``edgetron.hw.layernorm`` holds the schedule, buffer words and the cycle function.

Data-dependent shifts
---------------------
``h = floor(msb(D) / 2)`` (0 for ``D < 4``) lies in ``[0, 30]`` for ``D < 2**62``; golden's
``p = (32 - bits(D)) // 2`` is ``15 - h`` for ``D > 0``, so ``Dn = (D << 30) >> 2h`` (one
right shift covers ``D << 2p`` and the floor ``D >> -2p``) and the normalized value's
shift ``31 - p - 12`` is ``4 + h``, in ``[4, 34]``. A row with ``D = 0`` has ``std = 0``;
golden uses ``factor = 0`` (and ``p = 16``) there, the divider returns all ones for a
zero divisor (and the unit has ``h = 0``), and both give ``dev * factor = 0`` because
``D = 0`` means a constant row (``dev = 0`` for every element): the output is ``beta``
either way, so no special case is built.

FPGA timing
-----------
Every product goes straight into a register of its own (no reset), which the FPGA flow
moves into the multiplier block; :func:`mul_parts` splits a product wider than the
block's 18-bit signed inputs into partial products that :func:`sum_parts` adds in the
next stage. No stage has a multiplier and an adder in series, or a memory's read data and
a multiplier.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import as_int64, check_range, int_range
from edgetron.golden.layernorm import (
    CHANNELS_MAX,
    GAMMA_BITS,
    IN_BITS_MAX,
    ISQRT_BITS,
    NORM_FRAC_BITS,
    RECIP_K,
    LayerNormConstants,
)
from edgetron.hw import layernorm as hw
from edgetron.hw.arith import beats, tree_depth

from .arith import (
    SeqDivider,
    SeqSqrt,
    mul_parts,
    pack_checked,
    pack_lanes,
    round_half_saturate,
    sum_parts,
    top_pair,
    top_pair_groups,
    tree_reduce,
    unpack_lanes,
)
from .common import (
    MAX_EDGE,
    BeatCounter,
    CreditFifo,
    DelayLine,
    SkidBuffer,
    VectorUnit,
    ceil_div_const,
    check_param,
    mul_const,
    ring_next,
)

__all__ = ["LayerNormLayouts", "LayerNormUnit", "decode_layernorm", "decode_layernorm_input",
           "encode_layernorm",
           "encode_layernorm_consts", "layernorm_layouts", "layernorm_timing"]

_OUT_BITS = 8
#: Width of ``D`` (golden: ``q_eps`` plus the largest ``C**2 var`` stays below ``2**62``).
_VAR_BITS = 62
#: ``beta_int`` width (golden ``_BETA_LSB_LIMIT`` scaled by ``2**(G + NF)``).
_BETA_BITS = hw.LAYERNORM_BETA_BITS
class LayerNormLayouts(NamedTuple):
    """Payload layouts of :class:`LayerNormUnit`'s streams."""

    c: data.StructLayout   #: channels, q_eps unsigned(62), gamma_shift unsigned(4)
    p: data.ArrayLayout    #: lanes x {gamma: signed(16), beta: signed(43)}
    i: data.ArrayLayout    #: ArrayLayout(signed(in_bits), lanes)
    o: data.StructLayout   #: data: ArrayLayout(signed(8), lanes), last: 1


def layernorm_layouts(lanes: int, row_max: int, in_bits: int = 8) -> LayerNormLayouts:
    """The stream payloads of :class:`LayerNormUnit` (defined here once)."""
    return LayerNormLayouts(
        c=data.StructLayout({"channels": unsigned(row_max.bit_length()),
                             "q_eps": unsigned(_VAR_BITS),
                             "gamma_shift": unsigned((GAMMA_BITS - 1).bit_length())}),
        p=data.ArrayLayout(data.StructLayout({"gamma": signed(GAMMA_BITS),
                                              "beta": signed(_BETA_BITS)}), lanes),
        i=data.ArrayLayout(signed(in_bits), lanes),
        o=data.StructLayout({"data": data.ArrayLayout(signed(_OUT_BITS), lanes), "last": 1}),
    )


class LayerNormUnit(VectorUnit):
    """Row-wise integer LayerNorm, ``lanes`` channels per beat, rows of up to ``row_max``.

    Parameters
    ----------
    lanes : int
        Channels per beat, 1..256 (the config's ``vector_lanes``).
    row_max : int
        Most channels, 2..4096 (golden ``CHANNELS_MAX``; 768 for DeiT-base).
    in_bits : int
        Signed input width, 2..16 (the config's ``input_bits``). Every parameter is checked
        before construction; a bad one raises ValueError naming it and its range.

    Members
    -------
    c : ``In(stream.Signature(layernorm_layouts(...).c))``
        ``channels`` (C), ``q_eps``, ``gamma_shift``; taken only when the unit is empty.
    p : ``In(stream.Signature(layernorm_layouts(...).p))``
        After each ``c`` beat, ``ceil(C / lanes)`` beats of per-channel ``gamma_int`` and
        ``beta_int`` (lane ``l`` of beat ``j`` is channel ``j * lanes + l``); no ``i`` beat
        is taken before they are all in.
    i : ``In(stream.Signature(ArrayLayout(signed(in_bits), lanes)))``
        Each row as ``B = ceil(C / lanes)`` beats; not taken while ``c.valid`` is high.
    o : ``Out(stream.Signature(layernorm_layouts(...).o))``
        ``B`` beats per row (int8 results, the last beat's extra lanes unspecified),
        ``last`` on a row's last beat.

    Latency
    -------
    ``edgetron.hw.layernorm.layernorm_row_latency(lanes, C)`` from a row's last input
    handshake to its last output beat; ``layernorm_cycles(lanes, rows, C)`` from the first
    input handshake to the last output handshake.

    Throughput
    ----------
    One row every ``P = max(B, 9, 10)`` cycles (square root 9, reciprocal 10): 197-channel
    rows at 15.2 channels per cycle with 16 lanes, 7.9 with 8.

    Backpressure
    ------------
    Nothing stalls: every ``i`` beat takes a credit of the output FIFO
    (``edgetron.hw.layernorm.layernorm_out_fifo_beats``, enough for every beat in flight
    at full rate), given back by its ``o`` handshake. ``o`` not ready fills the FIFO; once
    the credits are out, ``i.ready`` falls until beats leave. ``o.ready`` reaches only the
    FIFO's read side and the credit and row counters (no clock enable over the unit);
    nothing is lost or duplicated.

    Golden
    ------
    :func:`edgetron.golden.layernorm.layernorm_int`.
    """

    PARAMS: ClassVar[dict[str, tuple[int, int]]] = {
        "lanes": (1, MAX_EDGE), "row_max": (2, CHANNELS_MAX), "in_bits": (2, IN_BITS_MAX)}
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {
        "lanes": "vector_lanes", "row_max": "vector_row_max", "in_bits": "input_bits"}
    build_layouts = staticmethod(layernorm_layouts)

    def __init__(self, lanes: int, row_max: int = 768, in_bits: int = 8):
        super().__init__(lanes=lanes, row_max=row_max, in_bits=in_bits)

    @property
    def row_max(self) -> int:
        """Longest row."""
        return self._params["row_max"]

    def elaborate(self, platform):
        m, core = Module(), Module()
        lanes, lay, rmax, ib = self.lanes, self._layouts, self.row_max, self.in_bits
        bmax = beats(rmax, lanes)
        x_words, p_words = hw.layernorm_buffer_words(lanes, rmax)
        k = Signal(lay.c)
        n_beats = Signal(range(bmax + 1))
        last_lanes = Signal(range(lanes + 1))
        gap_len = Signal(range(bmax + 16))
        p_left = Signal(range(bmax + 1))
        configured = Signal()
        rows = Signal(range(2 * bmax + 64))
        # (p_left == 0), (gap == 0), (rows == 0) kept in registers beside the counters: the
        # ready signals and the handshakes behind them read no comparator.
        p_empty, gap_zero, rows_zero = Signal(init=1), Signal(init=1), Signal(init=1)
        # Output credits: every i beat takes one of the output FIFO's fifo_beats words, given
        # back by its o handshake; room = (taken < fifo_beats), a register.
        fifo_beats = hw.layernorm_out_fifo_beats(lanes, rmax)
        taken = Signal(range(fifo_beats + 1))
        room = Signal(init=1)

        m.submodules.xbuf = xmem = memory.Memory(shape=lay.i, depth=x_words, init=[])
        m.submodules.pbuf = pmem = memory.Memory(shape=lay.p, depth=p_words, init=[])
        xw, xr = xmem.write_port(), xmem.read_port()
        pw, pr = pmem.write_port(), pmem.read_port()

        # ---- constants, parameters, ingest ---------------------------------------------------
        i_fire = self.i.valid & self.i.ready
        c_fire = self.c.valid & self.c.ready
        p_fire = self.p.valid & self.p.ready
        beat, gap = BeatCounter(bmax, "in"), Signal.like(gap_len)
        in_cnt, in_last = beat.cnt, beat.last
        xwp, xrp, p_wp = Signal(range(x_words)), Signal(range(x_words)), Signal(range(p_words))
        m.d.comb += [
            self.c.ready.eq(rows_zero),
            self.p.ready.eq(~self.c.valid & ~p_empty),
            self.i.ready.eq(configured & ~self.c.valid & p_empty & gap_zero & room),
            xw.addr.eq(xwp), xw.data.eq(self.i.payload), xw.en.eq(i_fire),
            pw.addr.eq(p_wp), pw.data.eq(self.p.payload), pw.en.eq(p_fire),
        ]
        ch = self.c.payload.channels
        n_eff = Mux(ch > rmax, rmax, Mux(ch == 0, 1, ch))
        b_new = ceil_div_const(n_eff, lanes)
        slow = max(hw.LAYERNORM_ISQRT_LATENCY, hw.LAYERNORM_RECIP_LATENCY)
        # A row of one beat: b_new == 1, without the division (all the beat counter reads).
        one_beat = (ch <= lanes) if rmax > lanes else Const(1, 1)
        gap_none = Signal()
        with core.If(c_fire):
            core.d.sync += [
                k.eq(self.c.payload), k.channels.eq(n_eff), n_beats.eq(b_new),
                p_left.eq(b_new), configured.eq(1),
                *beat.restart(Mux(one_beat, 1, 0)), gap.eq(0), xwp.eq(0), xrp.eq(0),
                p_wp.eq(0), p_empty.eq(0), gap_zero.eq(1),
            ]
        # Derived from the registered row length: they are first read by an i beat, which
        # comes after at least one p beat, so at least two cycles after c.
        core.d.sync += [last_lanes.eq(k.channels - mul_const(n_beats - 1, lanes)),
                        gap_len.eq(Mux(n_beats >= slow, 0, slow - n_beats)),
                        gap_none.eq(n_beats >= slow)]
        with core.If(p_fire):
            core.d.sync += [p_wp.eq(p_wp + 1), p_left.eq(p_left - 1), p_empty.eq(p_left == 1)]
        with core.If(i_fire):
            core.d.sync += [xwp.eq(ring_next(xwp, x_words)),
                            *beat.advance(n_beats)]
            with core.If(in_last):
                core.d.sync += [gap.eq(gap_len), gap_zero.eq(gap_none)]
        with core.Elif(~gap_zero):
            core.d.sync += [gap.eq(gap - 1), gap_zero.eq(gap == 1)]

        sq_tag = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        core.d.sync += [sq_tag.valid.eq(i_fire), sq_tag.first.eq(in_cnt == 0),
                        sq_tag.last.eq(in_last)]
        s1_lane_bits = (bmax << (ib - 1)).bit_length() + 1
        s2_lane_bits = (bmax << (2 * ib - 2)).bit_length()
        lane_on = Signal(lanes)                  # the lane holds a channel of the row
        a1s, a2s = [], []
        for j in range(lanes):
            xv = Signal(signed(ib), name=f"xm_{j}", reset_less=True)
            xj = self.i.payload[j]
            # The square of the unmasked input goes straight into its register (the
            # multiplier's own); the spare lanes of a row's last beat are masked after it.
            sq = Signal.like(xj * xj, name=f"sq_{j}", reset_less=True)
            on = ~in_last | (j < last_lanes)
            core.d.sync += [xv.eq(Mux(on, xj, 0)), sq.eq(xj * xj), lane_on[j].eq(on)]  # square
            a1 = Signal(signed(s1_lane_bits), name=f"lane_s1_{j}", reset_less=True)
            a2 = Signal(s2_lane_bits, name=f"lane_s2_{j}", reset_less=True)
            sq_on = Mux(lane_on[j], sq.as_unsigned(), 0)
            with core.If(sq_tag.valid):                                        # lane_stats
                core.d.sync += [a1.eq(Mux(sq_tag.first, xv, a1 + xv)),
                                a2.eq(Mux(sq_tag.first, 0, a2) + sq_on)]
            a1s.append(a1)
            a2s.append(a2)
        stats_valid = Signal()
        core.d.sync += stats_valid.eq(sq_tag.valid & sq_tag.last)
        s1, t_depth = tree_reduce(core, a1s, lambda a, b: a + b, "s1_tree")
        s2, _ = tree_reduce(core, a2s, lambda a, b: a + b, "s2_tree")
        row_go = DelayLine(core, stats_valid, t_depth, "stats_valid").output

        # ---- row scalars: D, its normalization, square root, reciprocal ----------------------
        # One valid bit and one copy of s1 per row stage.
        s1_bits = ((rmax << (ib - 1)).bit_length() + 1)
        n_row = len(hw.LAYERNORM_ROW_STAGES)
        r_v = [Signal(name=f"r{i + 1}_v") for i in range(n_row)]
        r_s1 = [Signal(signed(s1_bits), name=f"r{i + 1}_s1", reset_less=True)
                for i in range(n_row)]
        core.d.sync += [r_v[0].eq(row_go), r_s1[0].eq(s1)]
        core.d.sync += [r_v[i].eq(r_v[i - 1]) for i in range(1, n_row)]
        core.d.sync += [r_s1[i].eq(r_s1[i - 1]) for i in range(1, n_row)]
        cs2_parts = mul_parts(core, k.channels, s2, "cs2")                    # var_mul
        s1sq_parts = mul_parts(core, s1, s1, "s1sq")
        cs2 = Signal(_VAR_BITS + 1, name="cs2", reset_less=True)
        q_minus = Signal(signed(_VAR_BITS + 2), name="q_minus_s1sq", reset_less=True)
        core.d.sync += [cs2.eq(sum_parts(cs2_parts)),                          # var_sum
                        q_minus.eq(k.q_eps - sum_parts(s1sq_parts))]
        dvar = Signal(_VAR_BITS, reset_less=True)
        core.d.sync += dvar.eq(cs2 + q_minus)                                  # var
        # Step 4 with h = floor(msb(D) / 2) (0 for D < 2): p = ISQRT_BITS / 2 - 1 - h, so
        # Dn = D * 4**p (floor) is (D << ISQRT_BITS - 2) >> 2h, one right shift.
        groups = Signal(data.ArrayLayout(data.StructLayout({"any": 1, "idx": 2}),
                                         -(-_VAR_BITS // 8)), name="pair_groups",
                        reset_less=True)
        dvar_g = Signal(_VAR_BITS, name="dvar_lzc", reset_less=True)
        core.d.sync += [groups.eq(top_pair_groups(dvar)), dvar_g.eq(dvar)]      # lzc
        half_var = Signal(range(_VAR_BITS // 2), name="half_msb", reset_less=True)
        dvar_l = Signal(_VAR_BITS, name="dvar_msb", reset_less=True)
        core.d.sync += [half_var.eq(top_pair(groups)), dvar_l.eq(dvar_g)]      # msb
        dn = Signal(ISQRT_BITS, reset_less=True)
        wide = Cat(Const(0, ISQRT_BITS - 2), dvar_l)
        r_h = Signal.like(half_var, name="r_h", reset_less=True)
        core.d.sync += [dn.eq((wide >> Cat(Const(0, 1), half_var))[:ISQRT_BITS]),
                        r_h.eq(half_var)]                                      # normalize
        r_done_v, r_done_s1 = r_v[-1], r_s1[-1]
        core.submodules.isqrt = sqrt = SeqSqrt(ISQRT_BITS)
        core.submodules.recip = div = SeqDivider(RECIP_K + 1, ISQRT_BITS // 2,
                                                 hw.LAYERNORM_FACTOR_BITS)
        sq_s1, dv_s1 = Signal.like(r_done_s1), Signal.like(r_done_s1)
        sq_h, dv_h = Signal.like(r_h), Signal.like(r_h)
        core.d.comb += [sqrt.start.eq(r_done_v), sqrt.n.eq(dn),
                        div.start.eq(sqrt.done), div.num.eq(1 << RECIP_K), div.den.eq(sqrt.root)]
        with core.If(r_done_v):
            core.d.sync += [sq_s1.eq(r_done_s1), sq_h.eq(r_h)]
        with core.If(sqrt.done):
            core.d.sync += [dv_s1.eq(sq_s1), dv_h.eq(sq_h)]

        # ---- normalize pass -------------------------------------------------------------------
        stages = hw.LAYERNORM_NORM_STAGES
        n_act, n_cnt = Signal(), Signal(range(bmax))
        n_s1, n_fac = Signal.like(r_done_s1), Signal(hw.LAYERNORM_FACTOR_BITS)
        n_h = Signal.like(r_h)
        with core.If(n_act):                                                   # issue
            core.d.sync += [xrp.eq(ring_next(xrp, x_words)), n_cnt.eq(n_cnt + 1)]
            with core.If(n_cnt == n_beats - 1):
                core.d.sync += [n_act.eq(0), n_cnt.eq(0)]
        with core.If(div.done):
            core.d.sync += [n_act.eq(1), n_cnt.eq(0), n_s1.eq(dv_s1),
                            n_fac.eq(div.quo), n_h.eq(dv_h)]
        m.d.comb += [xr.addr.eq(xrp)]
        tags = [Signal(name=f"norm_valid_{s}") for s in stages[1:stages.index("out") + 1]]
        # The FIFO holds the results; last comes from a beat counter of the o handshakes
        # (the row length is constant while rows are in flight: c waits for rows == 0).
        core.submodules.out_fifo = fifo = CreditFifo(lay.o.members["data"], fifo_beats)
        # A register after the FIFO's (asynchronous) read: the beat offered on o is held
        # in it, and o.ready reaches the FIFO through its registered ready only.
        core.submodules.out_skid = skid = SkidBuffer(lay.o.members["data"])
        out_beat = BeatCounter(bmax, "out")
        core.d.sync += tags[0].eq(n_act)
        core.d.sync += [tags[s].eq(tags[s - 1]) for s in range(1, len(tags))]
        # The parameters are registered by the coarse stage (then copied by the shift stage,
        # so that the registers the memory drives drive nothing else): the synchronous read
        # gives the word one cycle after its address, so the address trails the issue
        # counter by the stage's index minus 2 (the issue register and the read).
        param_delay = stages.index("coarse") - 2
        core.d.comb += pr.addr.eq(DelayLine(core, n_cnt, param_delay, "param_addr").output)

        def row_const(value, name: str, upto: str):
            """``value`` (a row constant held from the issue stage) copied along the stages
            up to and including ``upto``, so that a beat meets its own row's constant."""
            for stage in stages[1:stages.index(upto) + 1]:
                reg = Signal.like(value, name=f"{name}_{stage}", reset_less=True)
                core.d.sync += reg.eq(value)
                value = reg
            return value

        mu_s1 = row_const(n_s1, "s1", "dev_mul")
        dv_fac = row_const(n_fac, "factor", "dev")
        co_h = row_const(n_h, "half_msb", "scale_sum")
        sh_h = Signal.like(co_h, name="half_msb_coarse", reset_less=True)
        core.d.sync += sh_h.eq(co_h)
        dev_bits = (rmax * ((1 << ib) - 1)).bit_length() + 1
        norm_bits = ((math.isqrt(rmax - 1) + 1) << NORM_FRAC_BITS).bit_length() + 1
        # n = round_shift(prod, sh) with sh = _SH_BASE + h >= 1: t = prod >> (sh - 1) and
        # n = (t + 1) >> 1 = (t >> 1) + t[0]; |n| < 2**(norm_bits - 1), so t and t >> 1 fit
        # norm_bits + 1 and norm_bits bits.
        sh_base = RECIP_K - NORM_FRAC_BITS - ISQRT_BITS // 2 + 1
        for j in range(lanes):
            x_out = Signal(signed(ib), name=f"x_out_{j}", reset_less=True)
            cx = Signal.like(k.channels * x_out, name=f"cx_{j}", reset_less=True)
            dev = Signal(signed(dev_bits), name=f"dev_{j}", reset_less=True)
            prod = Signal(signed(dev_bits + hw.LAYERNORM_FACTOR_BITS + 1), name=f"scaled_{j}",
                          reset_less=True)
            coarse = Signal(signed(norm_bits + 8), name=f"coarse_{j}", reset_less=True)
            t = Signal(signed(norm_bits + 1), name=f"half_norm_{j}", reset_less=True)
            gamma_m = Signal(signed(GAMMA_BITS), name=f"gamma_mem_{j}", reset_less=True)
            beta_m = Signal(signed(_BETA_BITS), name=f"beta_mem_{j}", reset_less=True)
            gamma = Signal(signed(GAMMA_BITS), name=f"gamma_{j}", reset_less=True)
            beta = Signal(signed(_BETA_BITS), name=f"beta_{j}", reset_less=True)
            beta_r = Signal(signed(_BETA_BITS + 1), name=f"beta_r_{j}", reset_less=True)
            acc = Signal(signed(max(norm_bits + GAMMA_BITS, _BETA_BITS + 1) + 1),
                         name=f"affine_{j}", reset_less=True)
            t_out = Signal(signed(len(acc) - NORM_FRAC_BITS + 1), name=f"out_half_{j}",
                           reset_less=True)
            y = Signal(signed(_OUT_BITS), name=f"y_{j}", reset_less=True)
            par = pr.data[j]
            # A multiplier and an adder never share a stage (as in the requantizer), every
            # product goes into its own register (the DSP block's), and the read data of the
            # x ring and of the parameter memory are registered before their multipliers.
            core.d.sync += [
                x_out.eq(xr.data[j]),                                           # read_out
                cx.eq(k.channels * x_out),                                      # dev_mul
                dev.eq(cx - mu_s1),                                             # dev
            ]
            scaled_parts = mul_parts(core, dev, dv_fac, f"scaled_{j}")         # scale
            core.d.sync += prod.eq(sum_parts(scaled_parts))                    # scale_sum
            # t = prod >> (sh_base - 1 + h) as a shift by 8 (h >> 3), then by h & 7.
            core.d.sync += [coarse.eq((prod >> (sh_base - 1)) >> Cat(Const(0, 3), co_h[3:])),
                            gamma_m.eq(par.gamma), beta_m.eq(par.beta)]          # coarse
            core.d.sync += [t.eq(coarse >> sh_h[:3]),                         # shift
                            gamma.eq(gamma_m), beta.eq(beta_m)]
            ng_parts = mul_parts(core, t[1:].as_signed(), gamma, f"ngamma_{j}")  # affine_mul
            core.d.sync += beta_r.eq(beta + Mux(t[0], gamma, 0))
            core.d.sync += acc.eq(sum_parts(ng_parts) + beta_r)                # affine
            # y = saturate(round_shift(acc, gamma_shift + NF)): t_out = acc >> (NF - 1 +
            # gamma_shift), y = (t_out + 1) >> 1 clamped to int8.
            core.d.sync += t_out.eq((acc >> (NORM_FRAC_BITS - 1)) >> k.gamma_shift)  # out_shift
            core.d.sync += y.eq(round_half_saturate(t_out, _OUT_BITS))         # out
            m.d.comb += fifo.i.payload[j].eq(y)
            norm_regs = ("issue", "read", x_out, cx, dev, scaled_parts, prod, coarse, t,
                         ng_parts, acc, t_out, y, fifo, skid)
        out_tag = tags[-1]
        m.d.comb += [fifo.i.valid.eq(out_tag),
                     skid.i.valid.eq(fifo.o.valid), skid.i.payload.eq(fifo.o.payload),
                     fifo.o.ready.eq(skid.i.ready),
                     self.o.valid.eq(skid.o.valid), self.o.payload.data.eq(skid.o.payload),
                     self.o.payload.last.eq(out_beat.last), skid.o.ready.eq(self.o.ready)]
        o_fire = self.o.valid & self.o.ready
        with core.If(c_fire):
            core.d.sync += out_beat.restart(Mux(one_beat, 1, 0))
        with core.Elif(o_fire):
            core.d.sync += out_beat.advance(n_beats)
        row_in, row_out = i_fire & (in_cnt == 0), o_fire & out_beat.last
        core.d.sync += [rows.eq(rows + row_in - row_out),
                        rows_zero.eq(Mux(row_in, Mux(row_out, rows_zero, 0),
                                         Mux(row_out, rows == 1, rows_zero))),
                        taken.eq(taken + i_fire - o_fire),
                        room.eq(Mux(i_fire, Mux(o_fire, room, taken < fifo_beats - 1),
                                    Mux(o_fire, 1, room)))]

        built = {"ingest": (("square", "lane_stats"), hw.LAYERNORM_INGEST_STAGES),
                 "row": ((cs2_parts, cs2, dvar, groups, half_var, dn),
                         hw.LAYERNORM_ROW_STAGES),
                 "normalize": (norm_regs, hw.LAYERNORM_NORM_STAGES),
                 "normalize tag": (("issue", *tags, fifo, skid), hw.LAYERNORM_NORM_STAGES)}
        for what, (got, want) in built.items():
            if len(got) != len(want):
                raise AssertionError(f"LayerNormUnit: {len(got)} {what} stages, the timing "
                                     f"model has {len(want)}")
        if (sqrt.LATENCY, div.LATENCY, fifo.LATENCY, skid.LATENCY) != (
                hw.LAYERNORM_ISQRT_LATENCY, hw.LAYERNORM_RECIP_LATENCY, 1, 1):
            raise AssertionError("LayerNormUnit: square root, divider, output FIFO or skid "
                                 "buffer latency differs from the timing model")
        m.submodules.core = core
        return m


def encode_layernorm_consts(unit: LayerNormUnit, consts: LayerNormConstants) -> list[int]:
    """The ``c`` payload and the ``p`` payloads (gamma, beta) for ``consts``, as
    ``[c, p0, p1, ...]``. ValueError when ``consts`` does not fit the unit."""
    if not isinstance(consts, LayerNormConstants):
        raise TypeError(f"consts must be LayerNormConstants, got {type(consts).__name__}")
    check_param("LayerNormUnit", "channels", consts.channels, 2, unit.row_max)
    if consts.in_bits != unit.in_bits:
        raise ValueError(f"LayerNormUnit: constants for in_bits = {consts.in_bits}, the unit "
                         f"has in_bits = {unit.in_bits}")
    lay = unit.layouts
    c = pack_checked("LayerNormUnit", lay.c, {"channels": consts.channels,
                                              "q_eps": consts.q_eps,
                                              "gamma_shift": consts.gamma_shift})
    g = as_int64(consts.gamma_int, "gamma_int")
    b = as_int64(consts.beta_int, "beta_int")
    check_range(g, *int_range(GAMMA_BITS), "gamma_int")
    check_range(b, *int_range(_BETA_BITS), "beta_int")
    pad = -g.size % unit.lanes
    g, b = np.pad(g, (0, pad)), np.pad(b, (0, pad))
    elem = GAMMA_BITS + _BETA_BITS
    words = []
    for j in range(0, g.size, unit.lanes):
        words.append(pack_lanes([(int(gv) & ((1 << GAMMA_BITS) - 1))
                                 | ((int(bv) & ((1 << _BETA_BITS) - 1)) << GAMMA_BITS)
                                 for gv, bv in zip(g[j:j + unit.lanes], b[j:j + unit.lanes],
                                                   strict=True)], elem))
    return [c, *words]


def encode_layernorm(unit: LayerNormUnit, q) -> list[int]:
    """``i`` payloads of the rows ``q`` (shape ``(rows, C)``), ``ceil(C / lanes)`` per row."""
    x = as_int64(q, "q")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"q must be 2-D (rows, C) with at least one row, got shape {x.shape}")
    check_param("LayerNormUnit", "C", x.shape[1], 2, unit.row_max)
    check_range(x, *int_range(unit.in_bits), f"q (int{unit.in_bits} input)")
    lanes = unit.lanes
    xp = np.pad(x, ((0, 0), (0, -x.shape[1] % lanes)))
    return [pack_lanes(row[j:j + lanes], unit.in_bits)
            for row in xp for j in range(0, xp.shape[1], lanes)]


def decode_layernorm_input(unit: LayerNormUnit, words, rows: int,
                           channels: int) -> np.ndarray:
    """The ``(rows, C)`` inputs the ``i`` payloads ``words`` carry (inverse of
    :func:`encode_layernorm`, for input monitors). ``unit`` is a :class:`LayerNormUnit`
    or anything with its ``lanes``, ``row_max``, ``in_bits`` and ``layouts``."""
    b = beats(channels, unit.lanes)
    words = [int(w) for w in words]
    if len(words) != rows * b:
        raise ValueError(f"expected {rows} x {b} input beats, got {len(words)}")
    vals = [v for w in words for v in unpack_lanes(w, unit.in_bits, unit.lanes)]
    return np.array(vals, np.int64).reshape(rows, b * unit.lanes)[:, :channels]


def decode_layernorm(unit: LayerNormUnit, words, rows: int, channels: int) -> np.ndarray:
    """The ``(rows, C)`` int8 results from the ``o`` payloads; ValueError when the beat count
    or a ``last`` flag is wrong."""
    b = beats(channels, unit.lanes)
    width = unit.lanes * _OUT_BITS
    words = [int(w) for w in words]
    if len(words) != rows * b:
        raise ValueError(f"expected {rows} x {b} output beats, got {len(words)}")
    out = np.zeros((rows, b * unit.lanes), np.int64)
    for idx, w in enumerate(words):
        r, j = divmod(idx, b)
        if (w >> width) & 1 != (j == b - 1):
            raise ValueError(f"output beat {j} of row {r}: last flag is {(w >> width) & 1}")
        out[r, j * unit.lanes:(j + 1) * unit.lanes] = unpack_lanes(w, _OUT_BITS, unit.lanes)
    return out[:, :channels]


def layernorm_timing(config: AcceleratorConfig) -> dict:
    """The cycle model of :class:`LayerNormUnit` as data (export manifest)."""
    lanes, row_max = config.vector_lanes, config.vector_row_max
    x_words, p_words = hw.layernorm_buffer_words(lanes, row_max)
    return {
        "model": "edgetron.hw.layernorm.layernorm_cycles",
        "counts": "cycles from the first i handshake to the last o handshake, both included, "
                  "with i valid on every cycle and o.ready always high",
        "output_backpressure": "fills the output FIFO (out_fifo_beats), then holds back i: "
                               "each i beat takes a credit, its o handshake gives it back; "
                               "o.ready only reaches the FIFO's read side",
        "variables": {"R": "rows", "C": "channels per row"},
        "constants": {"lanes": lanes, "T": int(tree_depth(lanes)),
                      "ingest_stages": len(hw.LAYERNORM_INGEST_STAGES),
                      "row_stages": len(hw.LAYERNORM_ROW_STAGES),
                      "isqrt_latency": hw.LAYERNORM_ISQRT_LATENCY,
                      "recip_latency": hw.LAYERNORM_RECIP_LATENCY,
                      "norm_stages": len(hw.LAYERNORM_NORM_STAGES),
                      "x_buffer_words": int(x_words), "param_words": int(p_words),
                      "out_fifo_beats": int(hw.layernorm_out_fifo_beats(lanes, row_max))},
        "derived": {"B": "ceil(C / lanes)", "P": "max(B, isqrt_latency, recip_latency)",
                    "row_latency": "ingest_stages + T + row_stages + isqrt_latency + "
                                   "recip_latency + norm_stages + B - 1"},
        "total": "B + (R - 1) * P + row_latency",
        "example": {"R": 197, "C": 192, "cycles": int(hw.layernorm_cycles(lanes, 197, 192))},
    }
