"""GELU unit: element-wise I-BERT i-GELU, ``lanes`` values per beat, int32 or int8 out.

``GeluUnit(lanes, in_bits)`` computes :func:`edgetron.golden.gelu.gelu_int8_apply` (int8
output) or :func:`edgetron.golden.gelu.gelu_apply` (int32 output), bit for bit. The
integer constants of :func:`edgetron.golden.gelu.gelu_int8_constants` /
:func:`~edgetron.golden.gelu.gelu_constants` arrive on the ``c`` stream;
:func:`encode_gelu_consts`, :func:`encode_gelu` and :func:`decode_gelu` define the beats.

Datapath (one lane; stage names from ``edgetron.hw.gelu.GELU_STAGES``)
------------------------------------------------------------------------
``f`` is ``pre_shift``, ``s = -f`` a right shift, ``CB`` the width of the ``clip`` field.

====  =======================================================  ================================
st.   operation (golden/gelu.py step)                          width
====  =======================================================  ================================
mag   ``t = |q| + 2**(s-1)`` (f < 0), ``|q|`` (f >= 0): one   ``in_bits + 1`` unsigned,
      adder (the rounding constant of step 2 added early);   and ``CB + 15``
      and the coarse part (multiples of 16) of the shift
resc  ``v = pre(|q|)`` (2): ``t << f`` or ``t >> s``, one      ``CB + 1``
      barrel shift kept to its low ``CB`` bits (its fine
      part here), and a flag (top bit): ``v >= 2**CB``,
      from ``t`` and a mask
clip  ``d = clip - min(v, clip)`` (2, 3: ``u = min(v, clip)``)  ``CB``
sq    ``w = d**2 = (clip - u)**2`` (3)                          ``2 * CB``
erf   ``r = 2 q_one - w`` (q>0), ``w`` (q<0), ``q_one`` (q=0)   ``bits(2 q_one)``
      (4)
trnc  ``rt = r >> erf_shift`` (5): its own stage, the shift    ``ERF_BITS`` = 16
      after the subtraction is too deep for one cycle
mul   ``q * rt`` (6); for ``in_bits > 18`` two partial         ``in_bits + 17`` signed
      products of 18-bit parts of ``q``, one DSP each
rnd   ``round_shift(., out_shift)`` (7), ``out_shift =``       32 signed
      ``max(0, in_bits - 16)`` fixed by ``in_bits``; the
      partial products summed in the same adder
rq    ``rtl/requant.Requantizer(lanes, 32, 32)``: int8 mode    32 signed, then saturated to 8
      ``(m, s)`` of the c beat; int32 mode ``(2**30, 30)``,
      the identity
====  =======================================================  ================================

Golden clamps ``|q|`` at ``clamp_in`` before the rescale to keep its int64 shift in range;
the clamp changes nothing once ``u = min(v, clip)`` (``pre`` is monotone and
``pre(clamp_in) >= clip``, or ``clamp_in`` is the largest ``|q|``), and the RTL's shift is
exact for every ``|q|``, so the unit has no clamp and no ``clamp_in`` constant. A right
shift beyond ``in_bits + 1`` rounds every ``|q|`` to 0, as that shift does.

Field widths of the constants are bounds over every scale golden accepts: the constants
depend on the scale only through the internal scale ``S_i`` in ``(2**-11, 2**-10]``
(``GELU_FRAC_BITS = 10``) and grow with ``1 / S_i``, so their bounds are their values at
``S_i = 2**-11`` (:func:`gelu_field_bounds`).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from edgetron.config import AcceleratorConfig
from edgetron.golden.dyadic import INTERNAL_SHIFT_MAX
from edgetron.golden.gelu import (
    ERF_BITS,
    GELU_A,
    GELU_B,
    GELU_FRAC_BITS,
    OUT_BITS,
    GeluConstants,
    GeluInt8Constants,
)
from edgetron.golden.intops import (
    INT8_MAX,
    MULT_BITS,
    SHIFT_BITS,
    as_int64,
    check_range,
    int_range,
)
from edgetron.hw.gelu import GELU_LATENCY, GELU_STAGES, gelu_cycles

from .arith import (
    pack_checked,
    pack_lanes,
    saturate,
    unpack_lanes,
)
from .common import MAX_EDGE, VectorUnit
from .requant import Requantizer

__all__ = ["GeluLayouts", "GeluUnit", "decode_gelu", "decode_gelu_input", "encode_gelu",
           "encode_gelu_consts",
           "gelu_field_bounds", "gelu_layouts", "gelu_timing"]

_INT8_BITS = INT8_MAX.bit_length() + 1
#: The int32 mode feeds the requantizer ``m = 2**30, s = 30``: ``round_shift(y * 2**30, 30)
#: == y`` for every int32 ``y``.
_IDENTITY_SHIFT = 30
#: Left-shift headroom of the rescale: ``pre_shift <= INTERNAL_SHIFT_MAX``.
_SH = INTERNAL_SHIFT_MAX
#: The rescale's shift splits at bit ``_FINE_BITS`` of its amount: the coarse part, whole
#: multiples of ``_FINE``, in the first stage after the adder, the rest in the second.
_FINE_BITS = 4
_FINE = 1 << _FINE_BITS
#: Operand width of the partial products of ``q * rt``: one 18 x 18 DSP multiplier each.
_PART_BITS = 18


def gelu_field_bounds() -> dict[str, int]:
    """Upper bounds of the scale-dependent constants over every supported scale.

    ``S_t = S_i / sqrt2`` with ``S_i > 2**-(F+1)``: ``clip = ceil(|b| / S_t)`` and
    ``q_one = ceil(1 / (|a| S_t**2))`` are below their values at ``S_i = 2**-(F+1)`` plus 1.
    """
    inv_st = math.sqrt(2.0) * 2.0 ** (GELU_FRAC_BITS + 1)
    clip = math.floor(-GELU_B * inv_st) + 1
    q_one = math.floor(inv_st * inv_st / -GELU_A) + 1
    return {"clip": clip, "q_one": q_one,
            "erf_shift": max(0, (2 * q_one).bit_length() - ERF_BITS)}


class GeluLayouts(NamedTuple):
    """Payload layouts of :class:`GeluUnit`'s streams."""

    c: data.StructLayout  #: constants (see :func:`gelu_layouts`)
    i: data.ArrayLayout   #: ArrayLayout(signed(in_bits), lanes)
    o: data.ArrayLayout   #: ArrayLayout(signed(32), lanes); int8 results sign-extended


def gelu_layouts(lanes: int, in_bits: int = OUT_BITS) -> GeluLayouts:
    """The stream payloads of :class:`GeluUnit` (defined here once).

    ``c`` fields (LSB first): ``pre_shift`` signed(7), ``clip``, ``q_one``, ``erf_shift``
    (widths of :func:`gelu_field_bounds`), ``m`` unsigned(31), ``s`` unsigned(6), ``out32``
    1 bit.
    """
    b = gelu_field_bounds()
    return GeluLayouts(
        c=data.StructLayout({
            "pre_shift": signed(7),
            "clip": unsigned(b["clip"].bit_length()),
            "q_one": unsigned(b["q_one"].bit_length()),
            "erf_shift": unsigned(b["erf_shift"].bit_length()),
            "m": unsigned(MULT_BITS),
            "s": unsigned(SHIFT_BITS),
            "out32": 1,
        }),
        i=data.ArrayLayout(signed(in_bits), lanes),
        o=data.ArrayLayout(signed(OUT_BITS), lanes),
    )


class GeluUnit(VectorUnit):
    """Element-wise integer GELU (I-BERT i-GELU), ``lanes`` values per beat, fully pipelined.

    Parameters
    ----------
    lanes : int
        Values per beat, 1..256 (the config's ``vector_lanes``).
    in_bits : int
        Signed input width, 2..32 (32: the int32 GEMM accumulators). Checked before
        construction; a bad value raises ValueError naming it and its range.

    Members
    -------
    c : ``In(stream.Signature(gelu_layouts(...).c))``
        The constants of one GELU op; taken only when the unit is empty, they apply to every
        later ``i`` beat. ``out32 = 1``: int32 results (golden ``gelu_apply``); 0: int8
        (``gelu_int8_apply``).
    i : ``In(stream.Signature(ArrayLayout(signed(in_bits), lanes)))``
        Input values; not taken while ``c.valid`` is high.
    o : ``Out(stream.Signature(ArrayLayout(signed(32), lanes)))``
        Results in input order, ``32 * lanes`` bits.

    Latency
    -------
    ``LATENCY = edgetron.hw.gelu.GELU_LATENCY = 14`` cycles (eight i-GELU stages and the
    six-stage requantizer, ``REQUANT_LATENCY``) from a beat accepted to it valid on ``o``;
    ``edgetron.hw.gelu.gelu_cycles(lanes, elements)`` from the first input handshake to the
    last output handshake.

    Throughput
    ----------
    One beat per cycle.

    Backpressure
    ------------
    The pipeline never stalls. A beat ``o`` does not take waits in an output buffer
    (``LATENCY + 1`` beats, LUT RAM on an FPGA) and is offered from there, in order; while the
    buffer is empty the pipeline's last stage drives ``o`` directly. ``i.ready`` is low while
    ``LATENCY + 1`` beats are in flight (accepted, not yet taken on ``o``), so the buffer
    never overflows, and ``o.ready`` drives only the buffer's control, not the pipeline
    (no clock enable). With ``o.ready`` high the buffer stays empty, at most ``LATENCY``
    beats are in flight and the input is never refused: the timing is the pipeline's.

    Golden
    ------
    :func:`edgetron.golden.gelu.gelu_int8_apply` / :func:`~edgetron.golden.gelu.gelu_apply`.
    """

    LATENCY = GELU_LATENCY

    PARAMS: ClassVar[dict[str, tuple[int, int]]] = {
        "lanes": (1, MAX_EDGE), "in_bits": (2, OUT_BITS)}
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {"lanes": "vector_lanes", "in_bits": "acc_bits"}
    build_layouts = staticmethod(gelu_layouts)

    def __init__(self, lanes: int, in_bits: int = OUT_BITS):
        super().__init__(lanes=lanes, in_bits=in_bits)

    def elaborate(self, platform):
        m = Module()
        k = Signal(self._layouts.c)
        nb, cb = self.in_bits, len(k.clip)
        m.submodules.requant = rq = Requantizer(self.lanes, OUT_BITS, OUT_BITS)
        i_fire = self.i.valid & self.i.ready
        o_fire = self.o.valid & self.o.ready
        c_fire = self.c.valid & self.c.ready
        # The pipeline never stalls (no clock enable). A beat the output does not take waits
        # in a buffer with room for every beat in flight (i.ready, as credits, admits no more):
        # the oldest in a head register that drives o (held while o stalls), the others in a
        # RAM behind it. The pipeline's last stage drives o while the head is empty.
        depth = _buffer_depth()
        inflight = Signal(range(depth + 1))
        head, full = Signal(self._layouts.o, name="buf_head"), Signal(name="buf_head_valid")
        count = Signal(range(depth), name="buf_count")
        wp, rp = Signal(range(depth - 1), name="buf_wp"), Signal(range(depth - 1), name="buf_rp")
        m.submodules.buffer = mem = Memory(shape=self._layouts.o, depth=depth - 1, init=[])
        wr, rd = mem.write_port(), mem.read_port(domain="comb")
        out = Signal(self._layouts.o, name="out")
        # beats in the RAM (then the head is full); a register, as it drives the head's enable
        behind = Signal(name="buf_behind")
        take = full & self.o.ready                # the head leaves
        arrive = rq.o.valid
        refill = take & behind                    # the head from the RAM
        to_head = arrive & Mux(full, take & ~behind, ~self.o.ready)
        push = arrive & full & ~(take & ~behind)
        m.d.comb += [
            self.c.ready.eq(inflight == 0),
            self.i.ready.eq((inflight < depth) & ~self.c.valid),
            self.o.valid.eq(full | arrive),
            self.o.payload.eq(Mux(full, head, out)),
            rq.o.ready.eq(1),
            wr.addr.eq(wp), wr.data.eq(out), wr.en.eq(push), rd.addr.eq(rp),
        ]
        count_next = count + push - refill
        m.d.sync += [inflight.eq(inflight + i_fire - o_fire), count.eq(count_next),
                     behind.eq(count_next != 0)]
        with m.If(refill):
            m.d.sync += head.eq(rd.data)
        with m.Elif(to_head):
            m.d.sync += head.eq(out)
        with m.If(take & ~refill & ~to_head):
            m.d.sync += full.eq(0)
        with m.Elif(to_head):
            m.d.sync += full.eq(1)
        with m.If(push):
            m.d.sync += wp.eq(Mux(wp == depth - 2, 0, wp + 1))
        with m.If(refill):
            m.d.sync += rp.eq(Mux(rp == depth - 2, 0, rp + 1))
        # Per-op constants. rnd and amt, read by the first stage, are loaded with k; the others
        # follow k one cycle later, before any beat of the op reaches the stage that reads them.
        # amt: the rescale as one right shift of t << _SH (left by f: _SH - f; right by s:
        # _SH + s, s clamped to nb + 1); its coarse part (amt[4:]) in the first stage.
        rnd = Signal(nb + 1, name="rnd")
        amt = Signal(6, name="amt")
        big = Signal(nb + 1, name="big_mask")
        rq_m, rq_s = Signal(MULT_BITS, name="rq_m"), Signal(SHIFT_BITS, name="rq_s")
        pf = self.c.payload.pre_shift
        with m.If(c_fire):
            m.d.sync += [k.eq(self.c.payload), rnd.eq(_round_bits(pf, nb)),
                         amt.eq(Mux(pf < -(nb + 1), _SH + nb + 1, _SH - pf))]
        f = k.pre_shift
        m.d.sync += [
            big.eq(Cat(f >= cb - j for j in range(nb + 1))),
            rq_m.eq(Mux(k.out32, 1 << _IDENTITY_SHIFT, k.m)),
            rq_s.eq(Mux(k.out32, _IDENTITY_SHIFT, k.s)),
        ]
        # Copies of erf_shift for groups of lanes (one register read by every lane's trunc
        # shifter was the critical path at edge-8, its routing 9.3 of 10.8 ns). A chain, so that
        # synthesis does not merge them: copy j is valid j + 2 cycles after the c beat, no
        # later than the trunc stage of the op's first beat (accepted a cycle after c at the
        # earliest, it is in that stage trunc + 1 cycles later).
        trunc = GELU_STAGES.index("trunc")
        e_shift = [Signal(len(k.erf_shift), name=f"erf_shift_{j}")
                   for j in range(min(self.lanes, trunc))]
        m.d.sync += [e.eq(prev)
                     for e, prev in zip(e_shift, [k.erf_shift, *e_shift[:-1]], strict=True)]
        valid = [Signal(name=f"valid_{stage}") for stage in GELU_STAGES]
        m.d.sync += valid[0].eq(i_fire)
        m.d.sync += [valid[j].eq(valid[j - 1]) for j in range(1, len(valid))]
        m.d.comb += rq.i.valid.eq(valid[-1])
        stages = None
        for lane in range(self.lanes):
            x = [Signal(signed(nb), name=f"x{j}_{lane}") for j in range(1, 7)]
            t = Signal(nb + 1, name=f"mag_{lane}")
            tc = Signal(cb + _FINE - 1, name=f"mag_coarse_{lane}")
            vr = Signal(cb + 1, name=f"v_{lane}")
            d = Signal(cb, name=f"d_{lane}")
            # products: registers without reset, so that the FPGA flow can move them into
            # the multiplier block (rtl/fpga/dsp_regs.py: a clock enable or a reset)
            w = Signal(2 * cb, name=f"w_{lane}", reset_less=True)
            r = Mux(x[3][-1], w, Mux(x[3].any(), (k.q_one << 1) - w, k.q_one))
            e_lane = e_shift[lane * len(e_shift) // self.lanes]
            rr = Signal(len(r), name=f"r_{lane}")
            rt = Signal(ERF_BITS, name=f"rt_{lane}")
            y = Signal(signed(OUT_BITS), name=f"y_{lane}")
            q = self.i.payload[lane]
            m.d.sync += [
                x[0].eq(q), t.eq(tq := _abs_plus(q, rnd)),                         # mag
                tc.eq(_shift_window(tq << _SH, amt[_FINE_BITS:], len(tc), _FINE)),
                x[1].eq(x[0]), vr.eq(Cat(_shift_window(tc, amt[:_FINE_BITS], cb),   # rescale
                                        (t & big).any())),
                x[2].eq(x[1]), d.eq(Mux(vr > k.clip, 0, k.clip - vr)),               # clip
                x[3].eq(x[2]), w.eq(d * d),                                        # square
                x[4].eq(x[3]), rr.eq(r),                                           # erf
                x[5].eq(x[4]), rt.eq(rr >> e_lane),                                # trunc
            ]
            prod = self._mul_round(m, lane, x[5], rt, y)                        # mul, round
            m.d.comb += [
                rq.i.payload.acc[lane].eq(y),
                rq.i.payload.mult[lane].eq(rq_m),
                rq.i.payload.shift[lane].eq(rq_s),
            ]
            res = rq.o.payload[lane]
            m.d.comb += out[lane].eq(Mux(k.out32, res, saturate(res, _INT8_BITS)))
            stages = (t, vr, d, w, rr, rt, prod, y)
        if not (len(stages) == len(valid) and len(valid) + rq.LATENCY == self.LATENCY):
            raise AssertionError(
                f"GeluUnit: {len(stages)} i-GELU stages + requantizer {rq.LATENCY}, timing "
                f"model GELU_LATENCY = {self.LATENCY}")
        return m

    def _mul_round(self, m: Module, lane: int, q, rt, y):
        """Stages mul and round: ``y = round_shift(q * rt, out_shift)`` (mod ``2**32``).

        ``q`` wider than one multiplier operand is split, ``q = q_hi * 2**P + q_lo`` with
        ``q_lo`` unsigned: each partial product is one DSP multiplier with its register
        (nothing else after it). Round adds them with the rounding: for ``out_shift = o``
        in ``[1, P]``, ``prod >> (o - 1) = (q_hi rt << (P - o + 1)) + (q_lo rt >> (o - 1))``
        exactly, and ``+1`` goes in that first term's zero bit 0, so that the stage is one
        adder. Returns the mul stage's register (the low partial product).
        """
        out_shift = max(0, self.in_bits + ERF_BITS - OUT_BITS)
        if self.in_bits <= _PART_BITS:
            prod = Signal(signed(self.in_bits + ERF_BITS + 1), name=f"prod_{lane}",
                          reset_less=True)
            m.d.sync += [prod.eq(q * rt),                                       # mul
                            y.eq((((prod >> (out_shift - 1)) + 1) >> 1)             # round
                                 if out_shift else prod)]
            return prod
        q_lo, q_hi = q.as_unsigned()[:_PART_BITS], q[_PART_BITS:].as_signed()
        p_lo = Signal.like(q_lo * rt, name=f"prod_{lane}", reset_less=True)
        p_hi = Signal.like(q_hi * rt, name=f"prod_hi_{lane}", reset_less=True)
        m.d.sync += [p_lo.eq(q_lo * rt), p_hi.eq(q_hi * rt)]                  # mul
        hi = Cat(Const(1, 1), p_hi << (_PART_BITS - out_shift)).as_signed()      # round
        m.d.sync += y.eq((hi + (p_lo >> (out_shift - 1))) >> 1)
        return p_lo


def _buffer_depth() -> int:
    """Beats the output buffer holds: every beat that can be in flight. ``i.ready`` admits a
    beat while fewer than this many are in flight, so that with ``o.ready`` high (``LATENCY``
    beats in flight) the input is never refused."""
    return GELU_LATENCY + 1


def _round_bits(f, bits: int):
    """``2**(s - 1)`` for a right shift ``s = -f`` (``f < 0``), with ``s`` clamped to ``bits +
    1`` (every larger shift of a ``bits``-wide magnitude also rounds to 0); 0 for ``f >= 0``.
    Bit ``j`` is ``f == -(j + 1)``: comparisons with constants, no adder."""
    return Cat(*(f == -(j + 1) for j in range(bits)), f <= -(bits + 2))


def _abs_plus(q, rnd):
    """``|q| + rnd`` as one adder: ``|q| = (q ^ s) + s`` for the sign ``s``, and ``(2a + s) +
    (2b + 1) >> 1 = a + b + s``."""
    sign = q[-1]
    ones = q.as_unsigned() ^ sign.replicate(len(q))
    return ((Cat(sign, ones) + Cat(Const(1, 1), rnd)) >> 1)[:len(rnd)]


def _shift_window(x, amount, width: int, unit: int = 1):
    """``(x >> (amount * unit))[:width]``: a right barrel shifter that keeps, at each level,
    only the bits that can still reach the output (one multiplexer level per bit of
    ``amount``)."""
    for b in reversed(range(len(amount))):
        step = unit << b
        keep = width + step - unit
        x = Mux(amount[b], x[step:step + keep], x[:keep])
    return x[:width]


def _gelu_consts(consts) -> tuple[GeluConstants, int, int, int]:
    if isinstance(consts, GeluInt8Constants):
        return consts.gelu, consts.m, consts.s, 0
    if isinstance(consts, GeluConstants):
        return consts, 0, 0, 1
    raise TypeError(f"consts must be GeluInt8Constants or GeluConstants, got "
                    f"{type(consts).__name__}")


def encode_gelu_consts(unit: GeluUnit, consts) -> int:
    """The ``c`` payload for ``consts``: ``GeluInt8Constants`` (int8 results) or
    ``GeluConstants`` (int32 results). ValueError when ``consts.in_bits`` is not the unit's
    or a constant does not fit its field."""
    g, mult, shift, out32 = _gelu_consts(consts)
    if g.in_bits != unit.in_bits:
        raise ValueError(f"GeluUnit: constants for in_bits = {g.in_bits}, the unit has "
                         f"in_bits = {unit.in_bits}")
    if g.pre_shift > INTERNAL_SHIFT_MAX:
        raise ValueError(f"GeluUnit: pre_shift = {g.pre_shift} above {INTERNAL_SHIFT_MAX}")
    return pack_checked("GeluUnit", unit.layouts.c, {
        "pre_shift": g.pre_shift, "clip": g.clip, "q_one": g.q_one,
        "erf_shift": g.erf_shift, "m": mult, "s": shift, "out32": out32})


def encode_gelu(unit: GeluUnit, q) -> list[int]:
    """``i`` payloads for the values ``q`` (any shape, flattened in C order, the last beat
    padded with zeros)."""
    v = as_int64(q, "q").reshape(-1)
    if v.size == 0:
        raise ValueError("q must not be empty")
    check_range(v, *int_range(unit.in_bits), f"q (int{unit.in_bits} input)")
    v = np.pad(v, (0, -v.size % unit.lanes))
    return [pack_lanes(v[j:j + unit.lanes], unit.in_bits) for j in range(0, v.size, unit.lanes)]


def decode_gelu_input(unit: GeluUnit, words, elements: int) -> np.ndarray:
    """The first ``elements`` input values the ``i`` payloads ``words`` carry (inverse of
    :func:`encode_gelu`, for input monitors)."""
    vals = [v for w in words for v in unpack_lanes(int(w), unit.in_bits, unit.lanes)]
    if len(vals) < elements:
        raise ValueError(f"{len(words)} input beats hold {len(vals)} values, need {elements}")
    return np.array(vals[:elements], dtype=np.int64)


def decode_gelu(unit: GeluUnit, words, elements: int) -> np.ndarray:
    """The first ``elements`` results of the ``o`` payloads ``words`` (int64)."""
    vals = [v for w in words for v in unpack_lanes(int(w), OUT_BITS, unit.lanes)]
    if len(vals) < elements:
        raise ValueError(f"{len(words)} output beats hold {len(vals)} values, need {elements}")
    return np.array(vals[:elements], dtype=np.int64)


def gelu_timing(config: AcceleratorConfig) -> dict:
    """The cycle model of :class:`GeluUnit` as data (export manifest)."""
    lanes = config.vector_lanes
    return {
        "model": "edgetron.hw.gelu.gelu_cycles",
        "counts": "cycles from the first i handshake to the last o handshake, both included, "
                  "with i valid on every cycle and o.ready always high",
        "output_backpressure": "fills an output buffer of latency_cycles + 1 beats; i.ready is "
                               "low while latency_cycles + 1 beats are in flight",
        "variables": {"E": "elements"},
        "constants": {"lanes": lanes, "latency_cycles": GELU_LATENCY},
        "total": "ceil(E / lanes) + latency_cycles",
        "example": {"E": 197 * 768, "cycles": int(gelu_cycles(lanes, 197 * 768))},
    }
