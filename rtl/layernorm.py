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
``p = (32 - bits(D)) // 2`` lies in ``[-15, 16]`` for ``D < 2**62``; ``Dn = D << 2p`` or
``D >> -2p`` (floor); the normalized value's shift ``31 - p - 12`` lies in ``[3, 34]``. A
row with ``D = 0`` has ``std = 0``; golden uses ``factor = 0`` there, the divider returns all
ones for a zero divisor, and both give ``dev * factor = 0`` because ``D = 0`` means a
constant row (``dev = 0`` for every element): the output is ``beta`` either way, so no
special case is built.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
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
    bit_length,
    pack_checked,
    pack_lanes,
    round_shift_right,
    saturate,
    shift_left,
    tree_reduce,
    unpack_lanes,
)
from .common import (
    MAX_EDGE,
    BeatCounter,
    DelayLine,
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
_SHIFT_MIN = RECIP_K - 16 - NORM_FRAC_BITS        # p <= 16
_SHIFT_MAX = RECIP_K + 15 - NORM_FRAC_BITS        # p >= -15


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
    ``o`` not ready with a beat offered stalls the whole unit through one clock enable and
    drops every ``ready``; the beat is held, nothing is lost or duplicated.

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
        run = Signal()
        k = Signal(lay.c)
        n_beats = Signal(range(bmax + 1))
        last_lanes = Signal(range(lanes + 1))
        gap_len = Signal(range(bmax + 16))
        p_left = Signal(range(bmax + 1))
        configured = Signal()
        rows = Signal(range(2 * bmax + 64))

        m.submodules.xbuf = xmem = memory.Memory(shape=lay.i, depth=x_words, init=[])
        m.submodules.pbuf = pmem = memory.Memory(shape=lay.p, depth=p_words, init=[])
        xw, xr = xmem.write_port(), xmem.read_port()
        pw, pr = pmem.write_port(), pmem.read_port()
        m.d.comb += [xr.en.eq(run), pr.en.eq(run)]

        # ---- constants, parameters, ingest ---------------------------------------------------
        i_fire = self.i.valid & self.i.ready
        c_fire = self.c.valid & self.c.ready
        p_fire = self.p.valid & self.p.ready
        beat, gap = BeatCounter(bmax, "in"), Signal.like(gap_len)
        in_cnt, in_last = beat.cnt, beat.last
        xwp, xrp, p_wp = Signal(range(x_words)), Signal(range(x_words)), Signal(range(p_words))
        m.d.comb += [
            self.c.ready.eq(run & (rows == 0)),
            self.p.ready.eq(run & ~self.c.valid & (p_left != 0)),
            self.i.ready.eq(run & configured & ~self.c.valid & (p_left == 0) & (gap == 0)),
            xw.addr.eq(xwp), xw.data.eq(self.i.payload), xw.en.eq(i_fire),
            pw.addr.eq(p_wp), pw.data.eq(self.p.payload), pw.en.eq(p_fire),
        ]
        ch = self.c.payload.channels
        n_eff = Mux(ch > rmax, rmax, Mux(ch == 0, 1, ch))
        b_new = ceil_div_const(n_eff, lanes)
        slow = max(hw.LAYERNORM_ISQRT_LATENCY, hw.LAYERNORM_RECIP_LATENCY)
        with core.If(c_fire):
            core.d.sync += [
                k.eq(self.c.payload), k.channels.eq(n_eff), n_beats.eq(b_new),
                last_lanes.eq(n_eff - mul_const(b_new - 1, lanes)), p_left.eq(b_new),
                gap_len.eq(Mux(b_new >= slow, 0, slow - b_new)), configured.eq(1),
                *beat.restart(b_new), gap.eq(0), xwp.eq(0), xrp.eq(0), p_wp.eq(0),
            ]
        with core.If(p_fire):
            core.d.sync += [p_wp.eq(p_wp + 1), p_left.eq(p_left - 1)]
        with core.If(i_fire):
            core.d.sync += [xwp.eq(ring_next(xwp, x_words)),
                            *beat.advance(n_beats)]
            with core.If(in_last):
                core.d.sync += gap.eq(gap_len)
        with core.Elif(gap != 0):
            core.d.sync += gap.eq(gap - 1)

        sq_tag = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        core.d.sync += [sq_tag.valid.eq(i_fire), sq_tag.first.eq(in_cnt == 0),
                        sq_tag.last.eq(in_last)]
        s1_lane_bits = (bmax << (ib - 1)).bit_length() + 1
        s2_lane_bits = (bmax << (2 * ib - 2)).bit_length()
        a1s, a2s = [], []
        for j in range(lanes):
            xv = Signal(signed(ib), name=f"xm_{j}")
            sq = Signal(2 * ib, name=f"sq_{j}")
            xin = Mux(~in_last | (j < last_lanes), self.i.payload[j], 0)
            core.d.sync += [xv.eq(xin), sq.eq(xin * xin)]                       # square
            a1 = Signal(signed(s1_lane_bits), name=f"lane_s1_{j}")
            a2 = Signal(s2_lane_bits, name=f"lane_s2_{j}")
            with core.If(sq_tag.valid):                                        # lane_stats
                core.d.sync += [a1.eq(Mux(sq_tag.first, xv, a1 + xv)),
                                a2.eq(Mux(sq_tag.first, sq, a2 + sq))]
            a1s.append(a1)
            a2s.append(a2)
        stats_valid = Signal()
        core.d.sync += stats_valid.eq(sq_tag.valid & sq_tag.last)
        s1, t_depth = tree_reduce(core, a1s, lambda a, b: a + b, "s1_tree")
        s2, _ = tree_reduce(core, a2s, lambda a, b: a + b, "s2_tree")
        row_go = DelayLine(core, stats_valid, t_depth, "stats_valid").output

        # ---- row scalars: D, its normalization, square root, reciprocal ----------------------
        s1_bits = ((rmax << (ib - 1)).bit_length() + 1)
        r1_v, r2_v, r3_v = Signal(), Signal(), Signal()
        r1_s1, r2_s1, r3_s1 = (Signal(signed(s1_bits), name=f"r{i}_s1") for i in (1, 2, 3))
        cs2 = Signal(_VAR_BITS + 2)
        s1sq = Signal(_VAR_BITS + 2)
        dvar = Signal(_VAR_BITS)
        core.d.sync += [r1_v.eq(row_go), r1_s1.eq(s1), cs2.eq(k.channels * s2),
                        s1sq.eq(s1 * s1)]                                      # var_mul
        core.d.sync += [r2_v.eq(r1_v), r2_s1.eq(r1_s1),
                        dvar.eq(cs2 - s1sq + k.q_eps)]                         # var
        dvar_bits = Signal(range(_VAR_BITS + 1))
        m.d.comb += dvar_bits.eq(bit_length(dvar))
        p_now = (ISQRT_BITS - dvar_bits).as_signed() >> 1  # floor((32 - bits(D)) / 2)
        dn = Signal(ISQRT_BITS)
        r3_p = Signal(signed(6))
        two_p = Signal(signed(7))
        m.d.comb += two_p.eq(p_now << 1)
        core.d.sync += [r3_v.eq(r2_v), r3_s1.eq(r2_s1), r3_p.eq(p_now),
                        dn.eq(Mux(two_p[-1], dvar >> (-two_p).as_unsigned()[:6],
                                  shift_left(dvar, two_p[:6], ISQRT_BITS)))]  # normalize
        core.submodules.isqrt = sqrt = SeqSqrt(ISQRT_BITS)
        core.submodules.recip = div = SeqDivider(RECIP_K + 1, ISQRT_BITS // 2,
                                                 hw.LAYERNORM_FACTOR_BITS)
        sq_s1, dv_s1 = Signal.like(r3_s1), Signal.like(r3_s1)
        sq_p, dv_p = Signal.like(r3_p), Signal.like(r3_p)
        core.d.comb += [sqrt.start.eq(r3_v), sqrt.n.eq(dn),
                        div.start.eq(sqrt.done), div.num.eq(1 << RECIP_K), div.den.eq(sqrt.root)]
        with core.If(r3_v):
            core.d.sync += [sq_s1.eq(r3_s1), sq_p.eq(r3_p)]
        with core.If(sqrt.done):
            core.d.sync += [dv_s1.eq(sq_s1), dv_p.eq(sq_p)]

        # ---- normalize pass -------------------------------------------------------------------
        n_act, n_cnt = Signal(), Signal(range(bmax))
        n_s1, n_fac = Signal.like(r3_s1), Signal(hw.LAYERNORM_FACTOR_BITS)
        n_sh = Signal(range(_SHIFT_MAX + 1))
        with core.If(n_act):                                                   # issue
            core.d.sync += [xrp.eq(ring_next(xrp, x_words)), n_cnt.eq(n_cnt + 1)]
            with core.If(n_cnt == n_beats - 1):
                core.d.sync += [n_act.eq(0), n_cnt.eq(0)]
        with core.If(div.done):
            core.d.sync += [n_act.eq(1), n_cnt.eq(0), n_s1.eq(dv_s1),
                            n_fac.eq(div.quo),
                            n_sh.eq(RECIP_K - NORM_FRAC_BITS - dv_p)]
        m.d.comb += [xr.addr.eq(xrp)]
        tag_l = data.StructLayout({"valid": 1, "last": 1})
        tags = [Signal(tag_l, name=f"norm_tag_{s}") for s in hw.LAYERNORM_NORM_STAGES[1:]]
        core.d.sync += [tags[0].valid.eq(n_act), tags[0].last.eq(n_cnt == n_beats - 1)]
        core.d.sync += [tags[s].eq(tags[s - 1]) for s in range(1, len(tags))]
        # The parameter address meets the affine_mul stage: the synchronous read gives the
        # word one cycle after its address, so the address trails the issue counter by the
        # stage's index minus 2 (the issue register and the read).
        param_delay = hw.LAYERNORM_NORM_STAGES.index("affine_mul") - 2
        core.d.comb += pr.addr.eq(DelayLine(core, n_cnt, param_delay, "param_addr").output)
        rd_s1, ro_s1, mu_s1 = (Signal.like(n_s1) for _ in range(3))
        rd_fac, ro_fac, mu_fac, dv_fac = (Signal.like(n_fac) for _ in range(4))
        rd_sh, ro_sh, mu_sh, dv_sh, sc_sh = (Signal.like(n_sh) for _ in range(5))
        core.d.sync += [rd_s1.eq(n_s1), rd_fac.eq(n_fac), rd_sh.eq(n_sh),     # read
                        ro_s1.eq(rd_s1), ro_fac.eq(rd_fac), ro_sh.eq(rd_sh),   # read_out
                        mu_s1.eq(ro_s1), mu_fac.eq(ro_fac), mu_sh.eq(ro_sh),   # dev_mul
                        dv_fac.eq(mu_fac), dv_sh.eq(mu_sh),                    # dev
                        sc_sh.eq(dv_sh)]                                       # scale
        dev_bits = (rmax * ((1 << ib) - 1)).bit_length() + 1
        norm_bits = ((math.isqrt(rmax - 1) + 1) << NORM_FRAC_BITS).bit_length() + 1
        acc_bits = norm_bits + GAMMA_BITS + 1
        for j in range(lanes):
            x_out = Signal(signed(ib), name=f"x_out_{j}")
            cx = Signal(signed(dev_bits), name=f"cx_{j}")
            dev = Signal(signed(dev_bits), name=f"dev_{j}")
            prod = Signal(signed(dev_bits + hw.LAYERNORM_FACTOR_BITS + 1), name=f"scaled_{j}")
            nv = Signal(signed(norm_bits), name=f"norm_{j}")
            ng = Signal(signed(acc_bits), name=f"ngamma_{j}")
            beta = Signal(signed(_BETA_BITS), name=f"beta_{j}")
            acc = Signal(signed(max(acc_bits, _BETA_BITS) + 1), name=f"affine_{j}")
            y = Signal(signed(_OUT_BITS), name=f"y_{j}")
            par = pr.data[j]
            # A multiplier and an adder never share a stage (as in the requantizer), and the
            # x ring's read data is registered before its multiplier.
            core.d.sync += [
                x_out.eq(xr.data[j]),                                           # read_out
                cx.eq(k.channels * x_out),                                      # dev_mul
                dev.eq(cx - mu_s1),                                             # dev
                prod.eq(dev * dv_fac),                                          # scale
                nv.eq(round_shift_right(prod, sc_sh, _SHIFT_MAX)),              # round
                ng.eq(nv * par.gamma), beta.eq(par.beta),                       # affine_mul
                acc.eq(ng + beta),                                              # affine
                y.eq(saturate(round_shift_right(acc, k.gamma_shift + NORM_FRAC_BITS,
                                                GAMMA_BITS - 1 + NORM_FRAC_BITS),
                              _OUT_BITS)),                                     # out
            ]
            m.d.comb += self.o.payload.data[j].eq(y)
            norm_regs = ("issue", "read", x_out, cx, dev, prod, nv, ng, acc, y)
        out_tag = tags[-1]
        m.d.comb += [run.eq(~out_tag.valid | self.o.ready), self.o.valid.eq(out_tag.valid),
                     self.o.payload.last.eq(out_tag.last)]
        o_fire = self.o.valid & self.o.ready
        core.d.sync += rows.eq(rows + (i_fire & (in_cnt == 0)) - (o_fire & out_tag.last))

        built = {"ingest": (("square", "lane_stats"), hw.LAYERNORM_INGEST_STAGES),
                 "row": ((cs2, dvar, dn), hw.LAYERNORM_ROW_STAGES),
                 "normalize": (norm_regs, hw.LAYERNORM_NORM_STAGES),
                 "normalize tag": (("issue", *tags), hw.LAYERNORM_NORM_STAGES)}
        for what, (got, want) in built.items():
            if len(got) != len(want):
                raise AssertionError(f"LayerNormUnit: {len(got)} {what} stages, the timing "
                                     f"model has {len(want)}")
        if (sqrt.LATENCY, div.LATENCY) != (hw.LAYERNORM_ISQRT_LATENCY,
                                           hw.LAYERNORM_RECIP_LATENCY):
            raise AssertionError("LayerNormUnit: square root or divider latency differs "
                                 "from the timing model")
        m.submodules.core = EnableInserter(run)(core)
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
        "output_backpressure": "stalls the whole unit",
        "variables": {"R": "rows", "C": "channels per row"},
        "constants": {"lanes": lanes, "T": int(tree_depth(lanes)),
                      "ingest_stages": len(hw.LAYERNORM_INGEST_STAGES),
                      "row_stages": len(hw.LAYERNORM_ROW_STAGES),
                      "isqrt_latency": hw.LAYERNORM_ISQRT_LATENCY,
                      "recip_latency": hw.LAYERNORM_RECIP_LATENCY,
                      "norm_stages": len(hw.LAYERNORM_NORM_STAGES),
                      "x_buffer_words": int(x_words), "param_words": int(p_words)},
        "derived": {"B": "ceil(C / lanes)", "P": "max(B, isqrt_latency, recip_latency)",
                    "row_latency": "ingest_stages + T + row_stages + isqrt_latency + "
                                   "recip_latency + norm_stages + B - 1"},
        "total": "B + (R - 1) * P + row_latency",
        "example": {"R": 197, "C": 192, "cycles": int(hw.layernorm_cycles(lanes, 197, 192))},
    }
