"""Residual-add unit: ``y = saturate_int8((a * m_a + b * m_b + 2**(s-1)) >> s)`` per lane.

``AddUnit(lanes)`` adds two int8 tensors at two scales, bit-exact with
:func:`edgetron.golden.add.residual_add` (golden has no fused activation clamp). The
constants ``(m_a, m_b, s)`` of :func:`edgetron.golden.add.residual_constants` arrive on
the ``c`` stream; :func:`encode_add` / :func:`decode_add` are the one definition of the beat
format (Amaranth tests and cocotb testbenches alike). docs/vector-units.md has the stages.

Datapath
--------
Each multiplier is split at bit ``_LO_BITS`` (17): ``m = m_hi * 2**17 + m_lo``, so each of
the four partial products ``a * m_a_lo``, ``b * m_b_lo``, ``a * m_a_hi``, ``b * m_b_hi`` is
one 18 x 18 signed multiplier with nothing but its register after it. The rounding bit
``2**(s-1)`` is a constant of the run (a one-hot register): it joins the low or the high
half's sum through a carry-save layer, so that

    ``u = a * m_a + b * m_b + 2**(s-1) = lo + hi * 2**17``

costs two short carry chains (``lo``, ``hi``) and then one for ``hi`` plus ``lo``'s carry,
with no rounding add after the shift: ``y = saturate(u >> s)``. The shift is split, as
``s = 8 * q + r``: the stage that completes ``u`` also shifts it by ``q`` whole bytes
(``u`` has 41 bits, so ``q <= 4``; a one-hot ``q``), keeping the 15 bits the shift by
``r`` bits reads in the last stage. ``u >> s`` fits int8 when ``u``'s bits from ``s + 7``
up all copy its sign: those positions are a mask registered from ``s``; the stage that
completes ``u`` reduces the masked bits byte by byte (all ones, all zeros), the last
stage the bytes. Every constant derived from ``s`` is a register computed from the
constants register, one or two cycles behind it (:func:`_constants`): no arithmetic on
``s`` lies in a beat's path.

Shift values outside the golden range
-------------------------------------
``|a * m_a + b * m_b| < 2**39``, so every ``s >= 40`` gives 0 (golden's result for
``40 <= s <= 62``); the hardware outputs 0 for ``s >= 40`` without shifting. The 6-bit
``s`` field can also carry 0 and 63, which golden rejects: the hardware outputs 0 for
both (as ``rtl/requant.py`` does), and :func:`encode_add_consts` refuses them.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data

from edgetron.config import AcceleratorConfig
from edgetron.golden.add import RESIDUAL_SUM_BITS, ResidualConstants
from edgetron.golden.intops import (
    INT8_MAX,
    M_MAX,
    MULT_BITS,
    S_MAX,
    S_MIN,
    SHIFT_BITS,
    as_int64,
    check_range,
    int_range,
    signed_bits,
)
from edgetron.hw.add import ADD_LATENCY, ADD_STAGES, add_cycles

from .arith import pack_checked, pack_lanes, unpack_lanes
from .common import MAX_EDGE, CreditFifo, VectorUnit

__all__ = ["AddLayouts", "AddUnit", "add_layouts", "add_timing", "decode_add", "decode_add_input",
           "encode_add", "encode_add_consts"]

_OUT_BITS = INT8_MAX.bit_length() + 1
_OUT_MIN, _OUT_MAX = int_range(_OUT_BITS)
#: The multipliers' low part, ``m[:_LO_BITS]``: with an operand of up to 8 bits, each
#: partial product is one 18 x 18 signed multiplier (ECP5 MULT18X18D), the high part
#: ``m[_LO_BITS:]`` (14 bits) too.
_LO_BITS = 17
#: The shift ``s = 8 * q + r``: bytes ``q`` (the coarse shift), bits ``r`` (the fine one).
_BYTE = 8
_FINE_BITS = 3
#: Bits the fine shift reads: the window and the 7 bits ``r`` can move it by.
_FINE_SPAN = _OUT_BITS + _BYTE - 1


class AddLayouts(NamedTuple):
    """Payload layouts of :class:`AddUnit`'s streams."""

    c: data.StructLayout   #: constants: m_a, m_b unsigned(MULT_BITS), s unsigned(SHIFT_BITS)
    i: data.StructLayout   #: a, b: ArrayLayout(signed(in_bits), lanes) each
    o: data.ArrayLayout    #: ArrayLayout(signed(8), lanes)


def add_layouts(lanes: int, in_bits: int = _OUT_BITS) -> AddLayouts:
    """The stream payloads of :class:`AddUnit` (defined here once)."""
    return AddLayouts(
        c=data.StructLayout({"m_a": unsigned(MULT_BITS), "m_b": unsigned(MULT_BITS),
                             "s": unsigned(SHIFT_BITS)}),
        i=data.StructLayout({"a": data.ArrayLayout(signed(in_bits), lanes),
                             "b": data.ArrayLayout(signed(in_bits), lanes)}),
        o=data.ArrayLayout(signed(_OUT_BITS), lanes),
    )


class AddUnit(VectorUnit):
    """Residual add of two int8 tensors at two scales, ``lanes`` elements per beat.

    Parameters
    ----------
    lanes : int
        Elements per beat, 1..256 (the config's ``vector_lanes``).
    in_bits : int
        Operand width, 2..8 (the config's ``input_bits``). Checked before construction;
        a bad value raises ValueError naming it and its range.

    Members
    -------
    c : ``In(stream.Signature(add_layouts(...).c))``
        Constants ``m_a``, ``m_b`` (31 bits each), ``s`` (6 bits): 68 bits. A beat is taken
        only when no beat is in the pipeline (the output FIFO may still hold some); they
        apply to every later ``i`` beat.
    i : ``In(stream.Signature(add_layouts(...).i))``
        ``lanes`` pairs ``(a, b)``: ``2 * lanes * in_bits`` bits. Not taken while
        ``c.valid`` is high (constants first).
    o : ``Out(stream.Signature(add_layouts(...).o))``
        ``lanes`` int8 sums, ``8 * lanes`` bits, in input order.

    Latency
    -------
    ``LATENCY = edgetron.hw.add.ADD_LATENCY = 4`` cycles from a beat accepted to the same
    beat valid on ``o`` (``ADD_STAGES``: the partial products; the two half sums; the high
    half's carry with the shift by whole bytes; the shift by bits and the saturation, into
    the output register);
    ``edgetron.hw.add.add_cycles(lanes, elements)`` from the first input handshake to the
    last output handshake. :meth:`elaborate` counts the stages it builds and raises
    AssertionError if they differ.

    Throughput
    ----------
    One beat (``lanes`` elements) per cycle.

    Backpressure
    ------------
    The pipeline never stalls (stages 1-3 have no clock enable): every beat taken on ``i``
    holds a credit until it leaves on ``o``, and the output register and an output FIFO
    (a :class:`~edgetron.rtl.common.CreditFifo` of ``ADD_LATENCY`` beats, for the beats
    that find the output register taken) have room for every beat in flight. ``i.ready``
    is low while ``ADD_LATENCY`` beats are in flight and none leaves in that cycle; with
    ``o.ready`` high that never happens. ``o.valid`` and ``o.payload`` are registers;
    ``o.ready`` reaches the output register's enable, the FIFO's read side and
    ``i.ready``. Nothing is lost or duplicated and an offered beat is held.

    Golden
    ------
    :func:`edgetron.golden.add.residual_add` with ``(m_a, m_b, s)`` from the ``c`` beat.
    """

    LATENCY = ADD_LATENCY

    PARAMS: ClassVar[dict[str, tuple[int, int]]] = {
        "lanes": (1, MAX_EDGE), "in_bits": (2, _OUT_BITS)}
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {"lanes": "vector_lanes", "in_bits": "input_bits"}
    build_layouts = staticmethod(add_layouts)

    def __init__(self, lanes: int, in_bits: int = _OUT_BITS):
        super().__init__(lanes=lanes, in_bits=in_bits)

    def elaborate(self, platform):
        m = Module()
        k = Signal(self._layouts.c)
        # One valid bit per stage. Stages 1-3 have no enable: a beat is taken only against
        # a credit (room in the output register and FIFO for every beat in flight), so
        # nothing ever waits in them. Stage 4 writes the output register when it is free
        # (or being taken) and the FIFO is empty, else the FIFO; the output register loads
        # from the FIFO first. o.payload is a register that changes only when o is free.
        valid = [Signal(name=f"valid_{stage}") for stage in ADD_STAGES]
        m.submodules.out_fifo = fifo = CreditFifo(self._layouts.o, ADD_LATENCY)
        out = Signal(self._layouts.o, name="out")
        result = Signal(self._layouts.o, name="result")    # stage 4's value, every lane
        inflight = Signal(range(ADD_LATENCY + 1))     # beats taken on i, not yet left on o
        i_fire, o_fire, busy, load = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            busy.eq(Cat(valid[:-1]).any()),
            o_fire.eq(self.o.valid & self.o.ready),
            self.c.ready.eq(~busy),
            self.i.ready.eq(~self.c.valid & ((inflight != ADD_LATENCY) | o_fire)),
            i_fire.eq(self.i.valid & self.i.ready),
            load.eq(~valid[-1] | self.o.ready),
            self.o.valid.eq(valid[-1]),
            self.o.payload.eq(out),
            fifo.o.ready.eq(load),
            fifo.i.valid.eq(valid[-2] & ~(load & ~fifo.o.valid)),
            fifo.i.payload.eq(result),
        ]
        m.d.sync += inflight.eq(inflight + i_fire - o_fire)
        with m.If(self.c.valid & self.c.ready):
            m.d.sync += k.eq(self.c.payload)
        m.d.sync += valid[0].eq(i_fire)
        m.d.sync += [valid[j].eq(valid[j - 1]) for j in range(1, len(valid) - 1)]
        with m.If(load):
            m.d.sync += [valid[-1].eq(fifo.o.valid | valid[-2]),
                         out.eq(Mux(fifo.o.valid, fifo.o.payload, result))]

        consts = _constants(m, k, _widths(self.in_bits))
        stages = None
        for lane in range(self.lanes):
            stages = (*self._lane(m, lane, consts, result[lane]), out)
        if not len(stages) == len(valid) == self.LATENCY:
            raise AssertionError(f"AddUnit: {len(stages)} data stages, {len(valid)} valid "
                                 f"stages, timing model ADD_LATENCY = {self.LATENCY}")
        return m

    def _lane(self, m: Module, lane: int, c: _Constants, y) -> tuple:
        """The registers of one lane, one tuple entry per stage before the output register;
        ``y`` gets the lane's result (stage 4, combinational)."""
        w = c.widths
        a, b = self.i.payload.a[lane], self.i.payload.b[lane]
        # mul: the four partial products, one MULT18X18D each, nothing but a register after
        pa_lo = Signal(signed(w.p_lo), name=f"pa_lo_{lane}")
        pb_lo = Signal(signed(w.p_lo), name=f"pb_lo_{lane}")
        pa_hi = Signal(signed(w.p_hi), name=f"pa_hi_{lane}")
        pb_hi = Signal(signed(w.p_hi), name=f"pb_hi_{lane}")
        m.d.sync += [pa_lo.eq(a * c.m_a[:_LO_BITS]), pb_lo.eq(b * c.m_b[:_LO_BITS]),
                     pa_hi.eq(a * c.m_a[_LO_BITS:]), pb_hi.eq(b * c.m_b[_LO_BITS:])]
        # sum: the low and high halves, each with its part of the rounding bit
        lo = Signal(signed(w.lo), name=f"lo_{lane}")
        hi = Signal(signed(w.hi), name=f"hi_{lane}")
        m.d.sync += [lo.eq(_add3(pa_lo, pb_lo, c.rnd[:_LO_BITS], w.lo)),
                     hi.eq(_add3(pa_hi, pb_hi, c.rnd[_LO_BITS:], w.hi))]
        # top: u = t + 2**(s-1) = lo + hi * 2**_LO_BITS (the low bits are lo's), then at once
        # the shift by whole bytes, u >> 8 * q, and whether u's masked bits are all ones, all
        # zeros, byte by byte (u's sign bit is left out: the last stage compares with it)
        u = Cat(lo[:_LO_BITS], (lo >> _LO_BITS) + hi)[:w.u].as_signed()
        u_ext = Cat(u, u[-1].replicate(_BYTE * (w.coarse_steps - 1) + _FINE_SPAN - w.u))
        masked = [(u[j], c.fit_mask[j - _OUT_BITS]) for j in range(_OUT_BITS, w.u - 1)]
        by_byte = [masked[g:g + _BYTE] for g in range(0, len(masked), _BYTE)]
        coarse = Signal(_FINE_SPAN, name=f"coarse_{lane}")
        ones = Signal(len(by_byte), name=f"ones_{lane}")
        zeros = Signal(len(by_byte), name=f"zeros_{lane}")
        sign = Signal(name=f"sign_{lane}")
        m.d.sync += [
            coarse.eq(reduce(operator.or_, (
                u_ext[_BYTE * q:][:_FINE_SPAN] & c.q_sel[q].replicate(_FINE_SPAN)
                for q in range(w.coarse_steps)))),
            ones.eq(Cat(Cat(v | ~mk for v, mk in byte).all() for byte in by_byte)),
            zeros.eq(Cat(Cat(~v | ~mk for v, mk in byte).all() for byte in by_byte)),
            sign.eq(u[-1]),
        ]
        # sat: y = saturate(u >> s), into the output register or the FIFO
        window = (coarse >> c.r_sel)[:_OUT_BITS]
        fits = Mux(sign, ones.all(), zeros.all())
        m.d.comb += y.eq(Mux(c.zero, 0, Mux(fits, window, Mux(sign, _OUT_MIN, _OUT_MAX))))
        return (pa_lo, lo, coarse)


class _Widths(NamedTuple):
    p_lo: int   #: a * m[:_LO_BITS]
    p_hi: int   #: a * m[_LO_BITS:]
    lo: int     #: the sum of the low products and the low rounding bits
    hi: int     #: the sum of the high products and the high rounding bits
    r_hi: int   #: rounding bits above _LO_BITS that can be set (s - 1 <= RESIDUAL_SUM_BITS - 2)
    u: int      #: u = a * m_a + b * m_b + 2**(s-1)
    coarse_steps: int  #: values of q = s >> 3 whose result is not always 0


def _widths(in_bits: int) -> _Widths:
    """Exact signed widths of the add unit's registers for ``in_bits``-bit operands."""
    x_lo, x_hi = int_range(in_bits)
    m_lo, m_hi = (1 << _LO_BITS) - 1, M_MAX >> _LO_BITS
    r_top = RESIDUAL_SUM_BITS - 2                   # largest s - 1 whose result is not 0
    r_hi = r_top - _LO_BITS + 1
    return _Widths(
        p_lo=signed_bits(x_lo * m_lo, x_hi * m_lo),
        p_hi=signed_bits(x_lo * m_hi, x_hi * m_hi),
        lo=signed_bits(2 * x_lo * m_lo, 2 * x_hi * m_lo + (1 << (_LO_BITS - 1))),
        hi=signed_bits(2 * x_lo * m_hi, 2 * x_hi * m_hi + (1 << (r_hi - 1))),
        r_hi=r_hi,
        u=signed_bits(2 * x_lo * M_MAX, 2 * x_hi * M_MAX + (1 << r_top)),
        coarse_steps=(r_top + 1) // _BYTE + 1,
    )


class _Constants(NamedTuple):
    """The constants one beat reads, registers all (:func:`_constants`)."""

    widths: _Widths
    m_a: Value          #: the multipliers (k's fields)
    m_b: Value
    rnd: Value          #: the rounding bit 2**(s-1), one-hot; none for s = 0 and s >= 40
    q_sel: Value        #: s >> 3, one-hot
    r_sel: Value        #: s & 7
    fit_mask: Value     #: bit j - 8: u's bit j must copy its sign (j >= s + 7), 8 <= j < u - 1
    zero: Value         #: every result is 0 (s = 0 or s >= 40)


def _constants(m: Module, k, w: _Widths) -> _Constants:
    """Registers of the constants derived from ``k.s``, with no arithmetic on ``s`` in a
    beat's path. A beat taken the cycle after a ``c`` beat reaches the sum stage, which
    reads ``rnd``, a cycle later, the top stage two, the last stage three: ``rnd``,
    ``q_sel`` and ``r_sel`` are one cycle behind ``k`` (equalities of ``s`` and its bits),
    ``fit_mask`` and ``zero`` two (from ``rnd``: no comparator chain)."""
    c = _Constants(
        widths=w, m_a=k.m_a, m_b=k.m_b,
        rnd=Signal(_LO_BITS + w.r_hi, name="rnd"),
        q_sel=Signal(w.coarse_steps, name="q_sel"),
        r_sel=Signal(_FINE_BITS, name="r_sel"),
        fit_mask=Signal(w.u - 1 - _OUT_BITS, name="fit_mask"),
        zero=Signal(name="zero"))
    m.d.sync += [
        c.rnd.eq(Cat(k.s == j + 1 for j in range(len(c.rnd)))),
        c.q_sel.eq(Cat(k.s[_FINE_BITS:] == q for q in range(w.coarse_steps))),
        c.r_sel.eq(k.s[:_FINE_BITS]),
        # u's bit j (j >= 8) is masked when j >= s + 7, i.e. rnd has a bit at j - 8 or below
        c.fit_mask.eq(Cat(c.rnd[:j + 1].any() for j in range(len(c.fit_mask)))),
        c.zero.eq(~c.rnd.any()),
    ]
    return c


def _add3(x, y, one_hot, width: int):
    """``x + y + one_hot`` in ``width`` bits (exact when the sum fits): a carry-save layer,
    then one carry chain (``one_hot`` has at most one bit set)."""
    xs = Cat(x, x[-1].replicate(width - len(x)))
    ys = Cat(y, y[-1].replicate(width - len(y)))
    zs = Cat(one_hot, Const(0, width - len(one_hot)))
    part = xs ^ ys ^ zs
    carry = (xs & ys) | (xs & zs) | (ys & zs)
    return (part + Cat(Const(0, 1), carry[:width - 1]))[:width].as_signed()


def encode_add_consts(layouts: AddLayouts, consts: ResidualConstants) -> int:
    """The ``c`` payload for ``consts`` (ValueError for ``m`` outside ``[0, M_MAX]`` or ``s``
    outside ``[1, 62]``)."""
    if not isinstance(consts, ResidualConstants):
        raise TypeError(f"consts must be ResidualConstants, got {type(consts).__name__}")
    for name, v, lo, hi in (("m_a", consts.m_a, 0, M_MAX), ("m_b", consts.m_b, 0, M_MAX),
                            ("s", consts.s, S_MIN, S_MAX)):
        if not lo <= int(v) <= hi:
            raise ValueError(f"AddUnit: constant {name} = {v} outside [{lo}, {hi}]")
    return pack_checked("AddUnit", layouts.c, consts._asdict())


def encode_add(layouts: AddLayouts, a, b) -> list[int]:
    """``i`` payloads for the element-wise add of ``a`` and ``b`` (same shape, flattened in C
    order, the last beat padded with zeros)."""
    lanes = layouts.o.length
    in_bits = layouts.i["a"].shape.elem_shape.width
    va, vb = as_int64(a, "a").reshape(-1), as_int64(b, "b").reshape(-1)
    if np.shape(a) != np.shape(b) or va.size == 0:
        raise ValueError(f"a and b must have one non-empty shape, got {np.shape(a)} and "
                         f"{np.shape(b)}")
    check_range(va, *int_range(in_bits), "a")
    check_range(vb, *int_range(in_bits), "b")
    pad = -va.size % lanes
    va, vb = np.pad(va, (0, pad)), np.pad(vb, (0, pad))
    shift = layouts.i["b"].offset
    return [pack_lanes(va[j:j + lanes], in_bits) | (pack_lanes(vb[j:j + lanes], in_bits) << shift)
            for j in range(0, va.size, lanes)]


def decode_add_input(layouts: AddLayouts, words, elements: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``elements`` pairs ``(a, b)`` the ``i`` payloads ``words`` carry (inverse of
    :func:`encode_add`, for input monitors)."""
    lanes = layouts.o.length
    in_bits = layouts.i["a"].shape.elem_shape.width
    shift = layouts.i["b"].offset
    a = [v for w in words for v in unpack_lanes(int(w), in_bits, lanes)]
    b = [v for w in words for v in unpack_lanes(int(w) >> shift, in_bits, lanes)]
    if len(a) < elements:
        raise ValueError(f"{len(words)} input beats hold {len(a)} pairs, need {elements}")
    return np.array(a[:elements], np.int64), np.array(b[:elements], np.int64)


def decode_add(layouts: AddLayouts, words, elements: int) -> np.ndarray:
    """The first ``elements`` int8 results of the ``o`` payloads ``words``."""
    lanes = layouts.o.length
    vals = [v for w in words for v in unpack_lanes(int(w), _OUT_BITS, lanes)]
    if len(vals) < elements:
        raise ValueError(f"{len(words)} output beats hold {len(vals)} elements, need {elements}")
    return np.array(vals[:elements], dtype=np.int64)


def add_timing(config: AcceleratorConfig) -> dict:
    """The cycle model of :class:`AddUnit` as data (export manifest)."""
    lanes = config.vector_lanes
    return {
        "model": "edgetron.hw.add.add_cycles",
        "counts": "cycles from the first i handshake to the last o handshake, both included, "
                  "with i valid on every cycle and o.ready always high",
        "output_backpressure": "fills the output register and FIFO; i.ready is low while "
                               "latency_cycles beats are in flight and none leaves",
        "variables": {"E": "elements"},
        "constants": {"lanes": lanes, "latency_cycles": ADD_LATENCY},
        "total": "ceil(E / lanes) + latency_cycles",
        "example": {"E": 197 * 192, "cycles": int(add_cycles(lanes, 197 * 192))},
    }
