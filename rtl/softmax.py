"""Softmax unit: row-wise integer softmax (I-BERT i-exp), ``lanes`` logits per beat.

``SoftmaxUnit(lanes, row_max)`` computes :func:`edgetron.golden.softmax.softmax_apply`
bit for bit on rows of ``n <= row_max`` logits: the row maximum, i-exp and the row sum,
**one** reciprocal per row (the radix-4 :class:`~edgetron.rtl.arith.SeqDivider`), then the
normalization to int8 in ``[0, 127]`` at scale ``2**-7``. The integer constants of
:func:`edgetron.golden.softmax.softmax_constants` and the row length arrive on the ``c``
stream. :func:`encode_softmax_consts`, :func:`encode_softmax` and :func:`decode_softmax`
define the beats; ``edgetron.hw.softmax`` holds the schedule, the ring-buffer sizes and the
cycle function; docs/vector-units.md has the block diagram.

Constant fields
---------------
Every scale-dependent constant depends on the scale only through the internal scale ``S'``
in ``(2**-13, 2**-12]`` (``EXP_FRAC_BITS = 12``) and the pre-shift ``f`` in
``[-62, 30]``; ``q_ln2``, ``q_b``, ``q_c``, ``l_max``, ``z_max``, ``u_max`` grow with
``1 / S'``, so their values at ``S' = 2**-13`` bound them; ``s_ln2 <= bits(u_max) +
bits(q_ln2)`` (``golden.quant.exact_reciprocal``) and ``m_ln2 = ceil(2**s_ln2 / q_ln2)``
bound the reciprocal pair (:func:`softmax_field_bounds`). The fields that golden fixes
(``exp_bits``, ``z_cap``, ``k``, ``out_shift``) are structure; :func:`encode_softmax_consts`
checks them. A row length ``n`` outside ``[1, row_max]`` on the port is clamped into it.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory
from amaranth.lib.fifo import SyncFIFOBuffered

from edgetron.config import AcceleratorConfig
from edgetron.golden.dyadic import INTERNAL_SHIFT_MAX
from edgetron.golden.intops import INT32_MAX, as_int64, check_range, int_range
from edgetron.golden.softmax import (
    EXP_A,
    EXP_B,
    EXP_BITS,
    EXP_C,
    EXP_FRAC_BITS,
    OUT_FRAC_BITS,
    OUT_MAX,
    ROW_MAX,
    SoftmaxConstants,
)
from edgetron.hw import softmax as hw
from edgetron.hw.arith import beats, tree_depth

from .arith import (
    SeqDivider,
    at_least,
    max_tree,
    pack_checked,
    pack_lanes,
    shift_left,
    tree_reduce,
    unpack_lanes,
)
from .common import (
    MAX_EDGE,
    BeatCounter,
    DelayLine,
    SkidBuffer,
    VectorUnit,
    ceil_div_const,
    check_param,
    mul_const,
    ring_next,
)

__all__ = ["SoftmaxLayouts", "SoftmaxUnit", "decode_softmax", "decode_softmax_input",
           "encode_softmax",
           "encode_softmax_consts", "softmax_field_bounds", "softmax_layouts", "softmax_timing"]

_IN_BITS_MAX = INT32_MAX.bit_length() + 1
_K = 2 * EXP_BITS - 2                  # golden softmax_constants: factor = 2**k // sum
_OUT_SHIFT = _K - OUT_FRAC_BITS
_OUT_BITS = 8
_SAT_BITS = (2 * OUT_MAX + 1).bit_length()
if 2 * OUT_MAX + 1 != (1 << _SAT_BITS) - 1:      # the saturation test needs OUT_MAX = 2**m - 1
    raise AssertionError("softmax: OUT_MAX is not one less than a power of two")


def softmax_field_bounds() -> dict[str, int]:
    """Upper bounds of the scale-dependent constants over every supported scale (module
    docstring)."""
    inv = 2.0 ** (EXP_FRAC_BITS + 1)                   # sup of 1 / S'
    q_ln2 = math.floor(math.log(2.0) * inv) + 1
    q_ln2_min = math.floor(math.log(2.0) * 2.0 ** EXP_FRAC_BITS)
    q_b = math.floor(EXP_B * inv) + 1
    q_c = math.floor(EXP_C / EXP_A * inv * inv) + 1
    l_max = q_b * q_b + q_c
    u_max = l_max.bit_length() * q_ln2
    s_ln2 = u_max.bit_length() + q_ln2.bit_length()
    return {"q_ln2": q_ln2, "q_b": q_b, "q_c": q_c, "l_max": l_max,
            "z_max": l_max.bit_length(), "u_max": u_max, "s_ln2": s_ln2,
            "m_ln2": (1 << s_ln2) // q_ln2_min + 1,
            "exp_shift": l_max.bit_length() - EXP_BITS}


class SoftmaxLayouts(NamedTuple):
    """Payload layouts of :class:`SoftmaxUnit`'s streams."""

    c: data.StructLayout   #: row length and constants (see :func:`softmax_layouts`)
    i: data.ArrayLayout    #: ArrayLayout(signed(in_bits), lanes)
    o: data.StructLayout   #: data: ArrayLayout(signed(8), lanes), last: 1


def softmax_layouts(lanes: int, row_max: int, in_bits: int = _IN_BITS_MAX) -> SoftmaxLayouts:
    """The stream payloads of :class:`SoftmaxUnit` (defined here once).

    ``c`` fields (LSB first): ``n`` (``bits(row_max)``), ``pre_shift`` signed(7),
    ``clamp_in`` unsigned(32), then ``u_max``, ``m_ln2``, ``s_ln2``, ``q_ln2``, ``q_b``,
    ``q_c``, ``exp_shift`` with the widths of :func:`softmax_field_bounds`.
    """
    b = softmax_field_bounds()
    fields = {"n": unsigned(row_max.bit_length()), "pre_shift": signed(7),
              "clamp_in": unsigned(INT32_MAX.bit_length() + 1)}
    for name in ("u_max", "m_ln2", "s_ln2", "q_ln2", "q_b", "q_c", "exp_shift"):
        fields[name] = unsigned(b[name].bit_length())
    return SoftmaxLayouts(
        c=data.StructLayout(fields),
        i=data.ArrayLayout(signed(in_bits), lanes),
        o=data.StructLayout({"data": data.ArrayLayout(signed(_OUT_BITS), lanes), "last": 1}),
    )


_TAG = data.StructLayout({"valid": 1, "first": 1, "last": 1})


class SoftmaxUnit(VectorUnit):
    """Row-wise integer softmax, ``lanes`` logits per beat, rows of up to ``row_max``.

    Parameters
    ----------
    lanes : int
        Logits per beat, 1..256 (the config's ``vector_lanes``).
    row_max : int
        Longest row, 1..65536 (golden ``ROW_MAX``); sets the ring buffers
        (``edgetron.hw.softmax.softmax_buffer_words``).
    in_bits : int
        Signed logit width, 2..32 (32: int32 attention scores). Every parameter is checked
        before construction; a bad one raises ValueError naming it and its range.

    Members
    -------
    c : ``In(stream.Signature(softmax_layouts(...).c))``
        Row length ``n`` and the i-exp constants; taken only when the unit is empty, they
        apply to every later row.
    i : ``In(stream.Signature(ArrayLayout(signed(in_bits), lanes)))``
        Each row as ``B = ceil(n / lanes)`` beats, lane ``l`` of beat ``j`` is logit
        ``j * lanes + l`` (the last beat's extra lanes are ignored). Not taken while
        ``c.valid`` is high, nor in the three cycles after a ``c`` beat is taken.
    o : ``Out(stream.Signature(softmax_layouts(...).o))``
        ``B`` beats per row, probabilities in ``data`` (extra lanes 0), ``last`` on the row's
        last beat.

    Latency
    -------
    ``edgetron.hw.softmax.softmax_row_latency(lanes, n)`` cycles from a row's last input
    handshake to its last output beat; ``softmax_cycles(lanes, rows, n)`` from the first
    input handshake to the last output handshake of ``rows`` rows.

    Throughput
    ----------
    One row every ``P = max(B, SOFTMAX_RECIP_LATENCY)`` cycles: ``lanes`` logits per cycle
    once ``n >= 9 * lanes`` (197-logit rows: 15.2 per cycle at 16 lanes, 7.9 at 8).

    Backpressure
    ------------
    The pipeline never stalls: its output words go into an output FIFO of
    ``edgetron.hw.softmax.softmax_out_fifo_words(lanes, row_max)`` words (block RAM), then
    a skid buffer, whose registers alone ``o.ready`` reaches. ``i.ready`` drops while that
    many input beats are pending (taken, their output not yet handed over), so the FIFO
    never overflows; with ``o`` always ready it never drops for that reason. A beat offered
    is held; nothing is lost or duplicated. Input gaps delay only the rows behind them.

    Golden
    ------
    :func:`edgetron.golden.softmax.softmax_apply`.
    """

    PARAMS: ClassVar[dict[str, tuple[int, int]]] = {
        "lanes": (1, MAX_EDGE), "row_max": (1, ROW_MAX), "in_bits": (2, _IN_BITS_MAX)}
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {
        "lanes": "vector_lanes", "row_max": "vector_row_max", "in_bits": "acc_bits"}
    build_layouts = staticmethod(softmax_layouts)

    def __init__(self, lanes: int, row_max: int = 256, in_bits: int = _IN_BITS_MAX):
        super().__init__(lanes=lanes, row_max=row_max, in_bits=in_bits)

    @property
    def row_max(self) -> int:
        """Longest row."""
        return self._params["row_max"]

    def elaborate(self, platform):
        m, core = Module(), Module()
        lanes, lay, k_in = self.lanes, self._layouts, self.c.payload
        bmax = beats(self.row_max, lanes)
        q_words, e_words = hw.softmax_buffer_words(lanes, self.row_max)
        recip = hw.SOFTMAX_RECIP_LATENCY
        k = Signal(lay.c)
        n_beats = Signal(range(bmax + 1))
        last_lanes = Signal(range(lanes + 1))
        gap_len = Signal(range(recip + 1))
        configured = Signal()
        # Output FIFO (SyncFIFOBuffered: a word written into it empty is offered two cycles
        # later), then a skid buffer (one cycle, registers: o.ready reaches only them): the
        # normalize pass's last three stages. ``pending`` counts the input beats whose output
        # word has not left yet; ``i`` is not taken once they would fill the FIFO.
        fifo_words = hw.softmax_out_fifo_words(lanes, self.row_max)
        out_data = Signal(lay.o["data"].shape)
        m.submodules.out_fifo = fifo = SyncFIFOBuffered(width=len(out_data.as_value()),
                                                        depth=fifo_words)
        m.submodules.out_skid = skid = SkidBuffer(out_data.shape())
        out_beat = BeatCounter(bmax, "out")
        pending = Signal(range(fifo_words + 1))
        rows = Signal(range(fifo_words + 1))   # rows in flight: each has a beat pending

        # ---- buffers ---------------------------------------------------------------------------
        m.submodules.qbuf = qmem = memory.Memory(shape=data.ArrayLayout(self.in_bits, lanes),
                                                 depth=q_words, init=[])
        m.submodules.ebuf = emem = memory.Memory(
            shape=data.ArrayLayout(EXP_BITS, lanes), depth=e_words, init=[])
        qw, qr = qmem.write_port(), qmem.read_port()
        ew, er = emem.write_port(), emem.read_port()

        # ---- constants and ingest ------------------------------------------------------------
        i_fire = self.i.valid & self.i.ready
        c_fire = self.c.valid & self.c.ready
        beat = BeatCounter(bmax, "in")
        in_cnt, in_last = beat.cnt, beat.last
        gap = Signal.like(gap_len)
        qwp = Signal(range(q_words))
        # c.ready, the FIFO room and gap == 0 are registers (computed from the next counts).
        idle, room, gap_zero = Signal(init=1), Signal(init=1), Signal(init=1)
        m.d.comb += [
            self.c.ready.eq(idle),
            self.i.ready.eq(configured & ~self.c.valid & gap_zero & room),
        ]
        # The row length's beat counts are derived from registers in the three cycles after
        # the constants are taken (``load``: the clamped length, the beats, the rest); ``i``
        # is taken from the cycle after.
        load = Signal(3)
        n_eff, b_new = Signal.like(k.n), Signal.like(n_beats)
        erp, ewp, nrp = Signal(range(q_words)), Signal(range(e_words)), Signal(range(e_words))
        core.d.sync += load.eq(Mux(c_fire, 1, load << 1))
        with core.If(load[0]):
            core.d.sync += n_eff.eq(Mux(k.n > self.row_max, self.row_max, Mux(k.n == 0, 1, k.n)))
        with core.If(load[1]):
            core.d.sync += b_new.eq(ceil_div_const(n_eff, lanes))
        with core.If(load[2]):
            core.d.sync += [
                n_beats.eq(b_new), last_lanes.eq(n_eff - mul_const(b_new - 1, lanes)),
                gap_len.eq(Mux(b_new >= recip, 0, recip - b_new)), configured.eq(1),
                *beat.restart(b_new), *out_beat.restart(b_new), gap.eq(0), gap_zero.eq(1),
                qwp.eq(0),
                erp.eq(0), ewp.eq(0), nrp.eq(0),
            ]
        with core.If(c_fire):                  # after the load steps: a new c beat restarts them
            core.d.sync += [k.eq(k_in), configured.eq(0)]
        with core.If(i_fire):
            core.d.sync += beat.advance(n_beats)
            with core.If(in_last):
                core.d.sync += [gap.eq(gap_len), gap_zero.eq(gap_len == 0)]
        with core.Elif(gap != 0):
            core.d.sync += [gap.eq(gap - 1), gap_zero.eq(gap == 1)]

        def lane_ok(tag_last, lane):
            return ~tag_last | (lane < last_lanes)

        # in_reg: the beat registered (spare lanes of a row's last beat as the smallest
        # logit), so that the lane maxima compare registers, not the input port. The q ring
        # is written from here too. Logits are kept in offset binary from here on (q + 2**
        # (in_bits - 1), the sign bit inverted): maxima and differences are the same, and
        # the comparisons unsigned (the running maximum's loop is the ingest's longest path).
        bias = 1 << (self.in_bits - 1)
        in_q = Signal(data.ArrayLayout(self.in_bits, lanes))
        in_tag = Signal(_TAG)
        core.d.sync += [in_tag.valid.eq(i_fire), in_tag.first.eq(in_cnt == 0),
                        in_tag.last.eq(in_last)]
        for j in range(lanes):
            core.d.sync += in_q[j].eq(Mux(lane_ok(in_last, j),
                                          self.i.payload[j].as_unsigned() ^ bias, 0))
        m.d.comb += [qw.addr.eq(qwp), qw.data.eq(in_q), qw.en.eq(in_tag.valid)]
        with core.If(in_tag.valid):
            core.d.sync += qwp.eq(ring_next(qwp, q_words))
        lane_max = [Signal(self.in_bits, name=f"lane_max_{j}") for j in range(lanes)]
        for j in range(lanes):                                            # lane_max
            with core.If(in_tag.valid):
                core.d.sync += lane_max[j].eq(Mux(in_tag.first | (in_q[j] > lane_max[j]),
                                                  in_q[j], lane_max[j]))
        max_valid = Signal()
        core.d.sync += max_valid.eq(in_tag.valid & in_tag.last)
        row_max, max_cycles = max_tree(core, lane_max)
        exp_go = DelayLine(core, max_valid, max_cycles, "max_valid").output

        # ---- exp pass ------------------------------------------------------------------------
        # Per-configuration decodes of pre_shift, one or two cycles behind k in free-running
        # registers (k changes only while the unit is empty, three load cycles pass before
        # the next input is taken, and a row's first beat reaches the shift stage many cycles
        # after that). The barrel shifters and the
        # range masks then read registers that nothing precedes.
        b = softmax_field_bounds()
        u_bits, z_bits = b["u_max"].bit_length(), b["z_max"].bit_length()
        f = k.pre_shift
        f_neg = Signal(reset_less=True)
        l_amt = Signal(INTERNAL_SHIFT_MAX.bit_length(), reset_less=True)   # f  (f >= 0)
        r_amt = Signal(6, reset_less=True)                                 # -f - 1 (f < 0)
        big_mask = Signal(self.in_bits, reset_less=True)
        neg_f = (-f).as_unsigned()[:len(f)]
        m.d.sync += [f_neg.eq(f[-1]), l_amt.eq(f[:len(l_amt)]), r_amt.eq((neg_f - 1)[:6])]
        for i in range(self.in_bits):
            # bit i of mag alone takes the rescaled value to 2**u_bits or above (from the
            # amounts: two cycles behind k)
            m.d.sync += big_mask[i].eq(Mux(f_neg, ~at_least(r_amt, i - u_bits),
                                           at_least(l_amt, u_bits - i)))
        e_act, e_cnt = Signal(), Signal(range(bmax))
        e_max = Signal(self.in_bits)
        e_lim = Signal(signed(max(self.in_bits, len(k.clamp_in) + 1) + 1))   # max - clamp_in
        with core.If(e_act):                                              # issue
            core.d.sync += [erp.eq(ring_next(erp, q_words)), e_cnt.eq(e_cnt + 1)]
            with core.If(e_cnt == n_beats - 1):
                core.d.sync += [e_act.eq(0), e_cnt.eq(0)]
        with core.If(exp_go):
            core.d.sync += [e_act.eq(1), e_cnt.eq(0), e_max.eq(row_max),
                            e_lim.eq(row_max - k.clamp_in)]
        m.d.comb += qr.addr.eq(erp)
        tags = [Signal(_TAG, name=f"exp_tag_{s}") for s in hw.SOFTMAX_EXP_STAGES[1:-1]]
        rd_max, rd_lim = Signal.like(e_max), Signal.like(e_lim)
        ro_max, ro_lim = Signal.like(e_max), Signal.like(e_lim)
        core.d.sync += [tags[0].valid.eq(e_act), tags[0].first.eq(e_cnt == 0),
                        tags[0].last.eq(e_cnt == n_beats - 1),
                        rd_max.eq(e_max), rd_lim.eq(e_lim),                       # read
                        ro_max.eq(rd_max), ro_lim.eq(rd_lim)]                     # read_out
        core.d.sync += [tags[s].eq(tags[s - 1]) for s in range(1, len(tags))]
        t_e = tags[-1]                                   # tag of the exp_shift stage
        e8 = Signal(data.ArrayLayout(EXP_BITS, lanes))
        m_lo, m_hi = k.m_ln2[:18], k.m_ln2[18:]          # u * m_ln2 from 18 x 18 products
        lane_sum = []
        for j in range(lanes):
            q_r = Signal(self.in_bits, name=f"q_r_{j}")
            dq, over = Signal(self.in_bits, name=f"dq_{j}"), Signal(name=f"over_{j}")
            mag = Signal(self.in_bits, name=f"mag_{j}")
            left_c, left = Signal(u_bits, name=f"left_c_{j}"), Signal(u_bits, name=f"left_{j}")
            right_c = Signal(u_bits + 8, name=f"right_c_{j}")
            right = Signal(u_bits + 1, name=f"right_{j}")
            big1, big1b = Signal(name=f"big1_{j}"), Signal(name=f"big1b_{j}")
            big2 = Signal(name=f"big2_{j}")
            v2 = Signal(u_bits, name=f"v2_{j}")
            u2, u3, u4, u5 = (Signal(u_bits, name=f"u{s}_{j}") for s in range(2, 6))
            pl = Signal(u_bits + 18, name=f"pl_{j}", reset_less=True)
            ph = Signal(u_bits + len(m_hi), name=f"ph_{j}", reset_less=True)
            p3 = Signal(u_bits + b["m_ln2"].bit_length(), name=f"p3_{j}")
            z4, z5, z6, z7 = (Signal(z_bits, name=f"z{s}_{j}") for s in range(4, 8))
            zq5 = Signal(u_bits, name=f"zq5_{j}", reset_less=True)
            qbu5 = Signal(signed(max(u_bits, b["q_b"].bit_length()) + 1), name=f"qbu5_{j}")
            t6 = Signal(b["q_b"].bit_length(), name=f"t6_{j}")
            sq = Signal(2 * len(t6), name=f"sq_{j}", reset_less=True)
            el = Signal(b["l_max"].bit_length(), name=f"l8_{j}")
            cap = Signal(range(EXP_BITS + (1 << len(k.exp_shift))), name=f"cap_{j}")
            core.d.sync += [
                q_r.eq(qr.data[j]),                                           # read_out
                # diff, clamp_in: min(max - q, clamp_in), where max - q > clamp_in iff
                # q < max - clamp_in
                dq.eq((ro_max - q_r).as_unsigned()), over.eq(q_r < ro_lim),
                mag.eq(Mux(over, k.clamp_in, dq)),
                # shift, shift_fine: the low bits of mag << f and of mag >> (-f - 1)
                # (arith.pow2_rescale), by multiples of 8 and then by the rest; big1: the
                # rescaled value is >= 2**u_bits by a bit of mag alone
                left_c.eq(shift_left(mag, Cat(Const(0, 3), l_amt[3:]), u_bits)),
                right_c.eq((mag >> Cat(Const(0, 3), r_amt[3:]))[:len(right_c)]),
                big1.eq((mag & big_mask).any()),
                left.eq(shift_left(left_c, l_amt[:3], u_bits)),
                right.eq((right_c >> r_amt[:3])[:len(right)]), big1b.eq(big1),
                # round: pre = the left shift, or the rounding ((mag >> (-f-1)) + 1) >> 1,
                # whose carry also reaches 2**u_bits when the shifted bits are all ones
                v2.eq(Mux(f_neg, ((right + 1) >> 1)[:u_bits], left)),
                big2.eq(big1b | (f_neg & right.all())),
                u2.eq(Mux(big2 | (v2 > k.u_max), k.u_max, v2)),               # clamp
                pl.eq(u2 * m_lo), ph.eq(u2 * m_hi), u3.eq(u2),                # recip_mul
                p3.eq(pl + (ph << 18)), u4.eq(u3),                            # recip_add
                z4.eq(p3 >> k.s_ln2), u5.eq(u4),                              # recip_shift
                zq5.eq(z4 * k.q_ln2), qbu5.eq(k.q_b - u5), z5.eq(z4),         # ln2_mul
                t6.eq(qbu5 + zq5), z6.eq(z5),                                 # poly_in
                sq.eq(t6 * t6), z7.eq(z6),                                    # square
                el.eq(sq + k.q_c), cap.eq(Mux(z7 > EXP_BITS, EXP_BITS, z7) + k.exp_shift),
                e8[j].eq(Mux(lane_ok(tags[-2].last, j), el >> cap, 0)),       # exp_shift
            ]
            ls = Signal(EXP_BITS + bmax.bit_length(), name=f"lane_sum_{j}")
            with core.If(t_e.valid):                                          # lane_sum
                core.d.sync += ls.eq(Mux(t_e.first, e8[j], ls + e8[j]))
            lane_sum.append(ls)
        built = ("issue", "read", q_r, dq, mag, left_c, left, v2, u2, pl, p3, z4, zq5, t6, sq,
                 el, e8, "lane_sum")
        m.d.comb += [ew.addr.eq(ewp), ew.data.eq(e8), ew.en.eq(t_e.valid)]
        with core.If(t_e.valid):
            core.d.sync += ewp.eq(ring_next(ewp, e_words))
        sum_valid = Signal()
        core.d.sync += sum_valid.eq(t_e.valid & t_e.last)
        row_sum, t_depth = tree_reduce(core, lane_sum, lambda a, b: a + b, "sum_tree")
        div_go = DelayLine(core, sum_valid, t_depth, "sum_valid").output

        # ---- reciprocal ----------------------------------------------------------------------
        sum_bits = (self.row_max * ((1 << EXP_BITS) - 1)).bit_length()
        core.submodules.recip = div = SeqDivider(_K + 1, sum_bits, EXP_BITS)
        core.d.comb += [div.start.eq(div_go), div.num.eq(1 << _K), div.den.eq(row_sum)]

        # ---- normalize pass ------------------------------------------------------------------
        n_act, n_cnt, n_fac = Signal(), Signal(range(bmax)), Signal(EXP_BITS)
        with core.If(n_act):                                              # issue
            core.d.sync += [nrp.eq(ring_next(nrp, e_words)), n_cnt.eq(n_cnt + 1)]
            with core.If(n_cnt == n_beats - 1):
                core.d.sync += [n_act.eq(0), n_cnt.eq(0)]
        with core.If(div.done):
            core.d.sync += [n_act.eq(1), n_cnt.eq(0), n_fac.eq(div.quo)]
        m.d.comb += er.addr.eq(nrp)
        r_valid, o_valid, m_valid = Signal(), Signal(), Signal()
        r_fac, o_fac = Signal(EXP_BITS), Signal(EXP_BITS)
        out_valid = Signal()
        core.d.sync += [r_valid.eq(n_act),
                        r_fac.eq(n_fac),                                  # read
                        o_valid.eq(r_valid), o_fac.eq(r_fac),             # read_out
                        m_valid.eq(o_valid),                              # mul
                        out_valid.eq(m_valid)]                            # round
        for j in range(lanes):
            e_out = Signal(EXP_BITS, name=f"e_out_{j}")
            prod = Signal(2 * EXP_BITS, name=f"norm_prod_{j}", reset_less=True)
            y = Signal(signed(_OUT_BITS), name=f"y_{j}")
            rnd = ((prod >> (_OUT_SHIFT - 1)) + 1) >> 1
            # rnd > OUT_MAX iff (prod >> (_OUT_SHIFT - 1)) >= 2 * OUT_MAX + 1 = 2**_SAT_BITS - 1:
            # decided from the product's bits beside the rounding add, not after it
            top = prod[_OUT_SHIFT - 1:]
            sat = top[_SAT_BITS:].any() | top[:_SAT_BITS].all()
            # The e ring's read data into a register of its own, then the multiplier (the
            # block RAM's output into a multiplier in one stage was the unit's critical
            # path on ECP5).
            core.d.sync += [e_out.eq(er.data[j]),                             # read_out
                            prod.eq(e_out * o_fac),                           # mul
                            y.eq(Mux(sat, OUT_MAX, rnd))]                     # round
            m.d.comb += out_data[j].eq(y)
        # ---- output FIFO: the core never stalls; every input beat has its output word -------
        # (The FIFO holds the probabilities; ``last`` is counted at its output, so that no
        # control flag passes through a memory.)
        m.d.comb += [fifo.w_data.eq(out_data), fifo.w_en.eq(out_valid),
                     skid.i.payload.eq(fifo.r_data), skid.i.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(skid.i.ready),
                     self.o.payload.data.eq(skid.o.payload), self.o.valid.eq(skid.o.valid),
                     self.o.payload.last.eq(out_beat.last), skid.o.ready.eq(self.o.ready)]
        o_fire = self.o.valid & self.o.ready
        with core.If(o_fire):
            core.d.sync += out_beat.advance(n_beats)
        rows_next = rows + (i_fire & (in_cnt == 0)) - (o_fire & out_beat.last)
        pending_next = pending + i_fire - o_fire
        core.d.sync += [rows.eq(rows_next), idle.eq(rows_next == 0),
                        pending.eq(pending_next), room.eq(pending_next < fifo_words)]

        norm_built = ("issue", "read", e_out, prod, y, "fifo_write", "fifo_out", skid)
        for what, got, want in (("exp", built, hw.SOFTMAX_EXP_STAGES),
                                ("normalize", norm_built, hw.SOFTMAX_NORM_STAGES),
                                ("ingest", (in_q, lane_max[0]), hw.SOFTMAX_INGEST_STAGES)):
            if len(got) != len(want):
                raise AssertionError(f"SoftmaxUnit: {len(got)} {what} stages, the timing "
                                     f"model has {len(want)}")
        if max_cycles != len(hw.SOFTMAX_MAX_TREE_STAGES) * tree_depth(lanes):
            raise AssertionError("SoftmaxUnit: max tree latency differs from the timing model")
        if div.LATENCY != recip:
            raise AssertionError("SoftmaxUnit: divider latency differs from the timing model")
        m.submodules.core = core
        return m


def encode_softmax_consts(unit: SoftmaxUnit, consts: SoftmaxConstants, n: int) -> int:
    """The ``c`` payload for rows of ``n`` logits with ``consts``.

    Raises ValueError when ``n`` is outside ``[1, row_max]``, when a field golden fixes
    differs from the unit's structure, or when a constant does not fit its field.
    """
    if not isinstance(consts, SoftmaxConstants):
        raise TypeError(f"consts must be SoftmaxConstants, got {type(consts).__name__}")
    check_param("SoftmaxUnit", "n", n, 1, unit.row_max)
    for name, want in (("exp_bits", EXP_BITS), ("z_cap", EXP_BITS), ("k", _K),
                       ("out_shift", _OUT_SHIFT), ("factor_bits", EXP_BITS)):
        if getattr(consts, name) != want:
            raise ValueError(f"SoftmaxUnit: constant {name} = {getattr(consts, name)}, the "
                             f"hardware implements {want}")
    c = consts.iexp
    if c.pre_shift > INTERNAL_SHIFT_MAX:
        raise ValueError(f"SoftmaxUnit: pre_shift = {c.pre_shift} above {INTERNAL_SHIFT_MAX}")
    return pack_checked("SoftmaxUnit", unit.layouts.c, {
        "n": n, "pre_shift": c.pre_shift, "clamp_in": c.clamp_in, "u_max": c.u_max,
        "m_ln2": c.m_ln2, "s_ln2": c.s_ln2, "q_ln2": c.q_ln2, "q_b": c.q_b, "q_c": c.q_c,
        "exp_shift": consts.exp_shift})


def encode_softmax(unit: SoftmaxUnit, q) -> list[int]:
    """``i`` payloads of the rows ``q`` (shape ``(rows, n)``), ``ceil(n / lanes)`` per row."""
    x = as_int64(q, "q")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"q must be 2-D (rows, n) with at least one row, got shape {x.shape}")
    check_param("SoftmaxUnit", "n", x.shape[1], 1, unit.row_max)
    check_range(x, *int_range(unit.in_bits), f"q (int{unit.in_bits} logits)")
    lanes = unit.lanes
    xp = np.pad(x, ((0, 0), (0, -x.shape[1] % lanes)))
    return [pack_lanes(row[j:j + lanes], unit.in_bits)
            for row in xp for j in range(0, xp.shape[1], lanes)]


def decode_softmax_input(unit: SoftmaxUnit, words, rows: int, n: int) -> np.ndarray:
    """The ``(rows, n)`` logits the ``i`` payloads ``words`` carry (inverse of
    :func:`encode_softmax`, for input monitors). ``unit`` is a :class:`SoftmaxUnit` or
    anything with its ``lanes``, ``row_max``, ``in_bits`` and ``layouts``."""
    b = beats(n, unit.lanes)
    words = [int(w) for w in words]
    if len(words) != rows * b:
        raise ValueError(f"expected {rows} x {b} input beats, got {len(words)}")
    vals = [v for w in words for v in unpack_lanes(w, unit.in_bits, unit.lanes)]
    return np.array(vals, np.int64).reshape(rows, b * unit.lanes)[:, :n]


def decode_softmax(unit: SoftmaxUnit, words, rows: int, n: int) -> np.ndarray:
    """The ``(rows, n)`` probabilities from the ``o`` payloads; ValueError when the beat count
    or a ``last`` flag is wrong."""
    b = beats(n, unit.lanes)
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
    return out[:, :n]


def softmax_timing(config: AcceleratorConfig) -> dict:
    """The cycle model of :class:`SoftmaxUnit` as data (export manifest)."""
    lanes, row_max = config.vector_lanes, config.vector_row_max
    q_words, e_words = hw.softmax_buffer_words(lanes, row_max)
    return {
        "model": "edgetron.hw.softmax.softmax_cycles",
        "counts": "cycles from the first i handshake to the last o handshake, both included, "
                  "with i valid on every cycle and o.ready always high",
        "output_backpressure": "fills the output FIFO (out_fifo_words), then holds back "
                               "i.ready while that many input beats are pending",
        "variables": {"R": "rows", "n": "logits per row"},
        "constants": {"lanes": lanes, "T": int(tree_depth(lanes)),
                      "ingest_stages": len(hw.SOFTMAX_INGEST_STAGES),
                      "max_tree_level_stages": len(hw.SOFTMAX_MAX_TREE_STAGES),
                      "exp_stages": len(hw.SOFTMAX_EXP_STAGES),
                      "norm_stages": len(hw.SOFTMAX_NORM_STAGES),
                      "recip_latency": hw.SOFTMAX_RECIP_LATENCY,
                      "q_buffer_words": int(q_words), "e_buffer_words": int(e_words),
                      "out_fifo_words": int(hw.softmax_out_fifo_words(lanes, row_max))},
        "derived": {"B": "ceil(n / lanes)", "P": "max(B, recip_latency)",
                    "row_latency": "ingest_stages + max_tree_level_stages * T + B - 1 "
                                   "+ exp_stages + T + recip_latency + norm_stages + B - 1"},
        "total": "B + (R - 1) * P + row_latency",
        "example": {"R": 197, "n": 197, "cycles": int(hw.softmax_cycles(lanes, 197, 197))},
    }
