"""Pipelined per-lane dyadic requantizer: int32 accumulators -> saturated int8.

Each lane computes ``saturate(round_shift(acc * mult, shift), out_bits)`` with its own
multiplier ``mult`` and shift ``shift`` (per output channel), bit-exact with
:func:`edgetron.golden.intops.requantize`. The rounding add of the golden,
``(p + 2**(s-1)) >> s`` (``p = acc * mult``, ``s = shift``), is done without building
the constant ``2**(s-1)``: for every integer ``p`` and ``s >= 1``,

    ``(p + 2**(s-1)) >> s == ((p >> (s-1)) + 1) >> 1``

(both sides are ``floor(p / 2**s + 1/2)``; floor division by ``2**(s-1)`` then by
2 equals floor division by ``2**s``), so the hardware shifts by ``s - 1``, adds
one and drops one more bit.

Only a window of ``t = p >> (s-1)`` matters: a ``t`` outside ``out_bits + 1`` signed
bits (``t >= 2**out_bits`` or ``t < -2**out_bits``) gives an ``r = (t + 1) >> 1`` at or
beyond the saturation bound of its sign, so the fine shift is ``out_bits + 1`` bits
wide, and whether ``t`` fits is decided on ``p`` itself: its bits from ``(s - 1) +
out_bits`` up all copy its sign. Inside the window ``r = (t >> 1) + t[0]``, which fits
``out_bits`` bits except for ``t = 2**out_bits - 1``.

Shift values outside the golden range
-------------------------------------
``shift`` is a 6-bit field, so the only values the golden rejects that the port can
carry are ``s = 0`` and ``s = 63``. The hardware defines both: the shift amount
``s - 1`` is computed modulo 64, so ``s = 0`` shifts by 63 and ``s = 63`` by 62,
both at least the product width minus one; every bit of the product is shifted
out and the lane outputs 0. They are *unsupported* (no golden counterpart):
:func:`encode_requant` refuses them with a ValueError, and the Amaranth test
checks the documented 0 so that the behaviour cannot change silently.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed

from edgetron.golden.intops import (
    M_MAX,
    MULT_BITS,
    S_MAX,
    S_MIN,
    SHIFT_BITS,
    as_int64,
    check_range,
    check_signed,
)
from edgetron.hw.gemm import REQUANT_LATENCY, REQUANT_STAGES

from .common import ACC_BITS_MAX, MAX_EDGE, CheckedComponent, check_param
from .layouts import requant_layout, requant_out_layout, requant_signature_members

__all__ = ["Requantizer", "decode_requant", "encode_requant"]

#: Allowed range of each elaboration parameter; lanes (one per array column) as the config's
#: cols.
_PARAM_RANGES = {"lanes": (1, MAX_EDGE), "acc_bits": (2, ACC_BITS_MAX),
                 "out_bits": (2, ACC_BITS_MAX)}


#: Operand width of the partial products of ``acc * mult``: one 18 x 18 DSP multiplier each.
_PART_BITS = 18
#: Bits of the product one register of the saturation check reduces in the shift stage
#: (two LUT4 levels); the window stage reduces the registers.
_GROUP_BITS = 16


def _check_param(name: str, value) -> None:
    check_param("Requantizer", name, value, *_PARAM_RANGES[name])


class Requantizer(CheckedComponent):
    """Per-lane dyadic requantizer, fully pipelined (one beat per cycle).

    Each lane computes ``saturate(round_shift(acc * mult, shift), out_bits)``.

    Parameters
    ----------
    lanes : int
        Values per beat (one per output channel), 1..256 (``common.MAX_EDGE``).
    acc_bits : int
        Accumulator width in bits, 2..32.
    out_bits : int
        Output width in bits, 2..32 (8 for int8 activations).
        Every parameter is checked before the component is created; a bad one raises
        ConfigError naming it and its range.

    Members
    -------
    See :func:`edgetron.rtl.layouts.requant_signature_members` (widths there).

    i
        One beat of ``lanes`` accumulators with their multipliers and shifts
        (:func:`~edgetron.rtl.layouts.requant_layout`: ``acc``, ``mult``, ``shift``).
    o
        The requantized, saturated values, one ``signed(out_bits)`` per lane.

    Latency
    -------
    :attr:`LATENCY` ``= edgetron.hw.gemm.REQUANT_LATENCY = 6`` cycles from a beat accepted
    on ``i`` to the same beat valid on ``o`` (with ``o.ready`` high): the four partial
    products of ``acc * mult`` (18-bit parts, one DSP multiplier each), the middle two
    added, the product, the shift by whole bytes, the shift by the remaining 0..7 bits,
    the rounding add with the saturation (``REQUANT_STAGES``; no stage chains two carry
    chains, a multiplier and an adder, or a shifter and an adder). The fine shift works on
    a window of ``out_bits + 1`` bits, the rounding add on ``out_bits``; beside the
    product, a mask decoded from the shift marks the product bits that must all copy its
    sign for the shifted value to fit that window (otherwise it saturates).
    :meth:`elaborate` counts the data and valid registers it builds and raises
    AssertionError if either differs.

    Backpressure
    ------------
    The pipeline advances when its last stage is empty or ``o.ready`` is high;
    otherwise every stage holds, and ``i.ready`` (``= ~o.valid | o.ready``,
    combinational) is low so no beat enters. Beats are never dropped or
    duplicated; throughput is one beat per cycle while ``o.ready`` stays high.

    Golden
    ------
    :func:`edgetron.golden.intops.requantize` with ``bits=out_bits``, bit for bit,
    for ``1 <= shift <= 62``; ``shift = 0`` and ``shift = 63`` are unsupported and
    output 0 (see the module docstring).
    """

    #: Pipeline depth in cycles (``edgetron.hw.gemm.REQUANT_LATENCY``); :meth:`elaborate`
    #: asserts that it builds exactly that many registered stages.
    LATENCY = REQUANT_LATENCY

    @classmethod
    def check_parameters(cls, lanes: int, acc_bits: int = 32, out_bits: int = 8) -> None:
        for name, value in (("lanes", lanes), ("acc_bits", acc_bits), ("out_bits", out_bits)):
            _check_param(name, value)

    def __init__(self, lanes: int, acc_bits: int = 32, out_bits: int = 8):
        self._lanes = lanes
        self._acc_bits = acc_bits
        self._out_bits = out_bits
        super().__init__(requant_signature_members(lanes, acc_bits, out_bits))

    @property
    def lanes(self) -> int:
        """Values per beat."""
        return self._lanes

    @property
    def acc_bits(self) -> int:
        """Accumulator width in bits."""
        return self._acc_bits

    @property
    def out_bits(self) -> int:
        """Output width in bits."""
        return self._out_bits

    def elaborate(self, platform):
        m = Module()
        # |acc * mult| <= 2**(acc_bits-1) * (2**MULT_BITS - 1) < 2**(acc_bits + MULT_BITS - 1): the
        # product fits a signed value of acc_bits + MULT_BITS bits.
        prod_bits = self._acc_bits + MULT_BITS

        # One valid bit per stage; the whole pipeline moves together.
        valid = [Signal(name=f"valid_{stage}") for stage in REQUANT_STAGES]
        advance = Signal()
        m.d.comb += [
            advance.eq(~valid[-1] | self.o.ready),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, len(valid))]

        out = Signal(requant_out_layout(self._lanes, self._out_bits))
        m.d.comb += self.o.payload.eq(out)
        # The data registers of one lane, stage by stage: the data path must be exactly as
        # deep as the valid chain and the timing model's REQUANT_LATENCY.
        lane_stages = None
        for lane in range(self._lanes):
            with m.If(advance):
                lane_stages = self._lane(m, lane, out[lane], prod_bits)
        if not len(lane_stages) == len(valid) == self.LATENCY:
            raise AssertionError(
                f"Requantizer: {len(lane_stages)} data stages and {len(valid)} valid stages, "
                f"but the timing model's REQUANT_LATENCY is {self.LATENCY}")
        return m


    def _lane(self, m: Module, lane: int, out, prod_bits: int) -> tuple:
        """The registers of one lane (inside ``m.If(advance)``), one tuple entry per stage."""
        acc, mult = self.i.p.acc[lane], self.i.p.mult[lane]
        # acc * mult from multiplier-sized parts: acc = acc_hi * 2**L + acc_lo and
        # mult = mult_hi * 2**L + mult_lo with the low parts unsigned, so that each partial
        # product fits one 18 x 18 DSP multiplier and gets a register of its own.
        split = self._acc_bits > _PART_BITS
        acc_lo = acc.as_unsigned()[:_PART_BITS] if split else acc
        mult_lo, mult_hi = mult[:_PART_BITS], mult[_PART_BITS:]
        p_ll = Signal.like(acc_lo * mult_lo, name=f"p_ll_{lane}")
        p_lh = Signal.like(acc_lo * mult_hi, name=f"p_lh_{lane}")
        sm1 = [Signal(SHIFT_BITS, name=f"shift_{lane}_{k}") for k in range(3)]
        # Stage 1 (MUL): the partial products; keep k = s - 1 (mod 64) for the shift stages.
        m.d.sync += [p_ll.eq(acc_lo * mult_lo), p_lh.eq(acc_lo * mult_hi),
                     sm1[0].eq(self.i.p.shift[lane] - 1), sm1[1].eq(sm1[0]), sm1[2].eq(sm1[1])]
        mid = Signal(signed(prod_bits - _PART_BITS), name=f"mid_{lane}")
        low = Signal(signed(prod_bits), name=f"low_{lane}")
        if split:
            acc_hi = acc[_PART_BITS:].as_signed()
            p_hl = Signal.like(acc_hi * mult_lo, name=f"p_hl_{lane}")
            p_hh = Signal.like(acc_hi * mult_hi, name=f"p_hh_{lane}")
            m.d.sync += [p_hl.eq(acc_hi * mult_lo), p_hh.eq(acc_hi * mult_hi)]
            # Stage 2 (MID): the two middle products added; the outer ones do not overlap
            # (p_ll < 2**(2L)), so they are placed side by side, without an adder.
            m.d.sync += [mid.eq(p_lh + p_hl), low.eq(Cat(p_ll, p_hh))]
        else:
            m.d.sync += [mid.eq(p_lh), low.eq(p_ll)]
        # t = p >> k fits the window of W = out_bits + 1 bits iff its bits from W - 1 up
        # are copies of its sign, i.e. iff p's bits from k + W - 1 up are: a mask of those
        # positions, mask[j] = (k <= j - (W - 1)), decoded while the product is summed from
        # comparisons of k's high and low three bits registered the stage before (each
        # mask bit then reads three registers, not k's six bits fanned out to every bit).
        window = self._out_bits + 1
        hi_lt = Signal(8, name=f"k_hi_lt_{lane}")      # hi_lt[v]: k >> 3 < v
        hi_eq = Signal(8, name=f"k_hi_eq_{lane}")      # hi_eq[v]: k >> 3 == v
        lo_le = Signal(8, name=f"k_lo_le_{lane}")      # lo_le[v]: k & 7 <= v
        k_hi, k_lo = sm1[0][3:], sm1[0][:3]
        # (hi_lt[0] is always 0 and lo_le[7] always 1: constants, not comparisons.)
        m.d.sync += [hi_lt.eq(Cat(Const(0, 1), *(k_hi < v for v in range(1, 8)))),
                     hi_eq.eq(Cat(k_hi == v for v in range(8))),
                     lo_le.eq(Cat(*(k_lo <= v for v in range(7)), Const(1, 1)))]

        def k_at_most(bound: int):
            """k <= bound, from the registered comparisons (bound a constant)."""
            if bound < 0:
                return Const(0, 1)
            if bound >= 63:
                return Const(1, 1)
            return hi_lt[bound >> 3] | (hi_eq[bound >> 3] & lo_le[bound & 7])

        mask = Signal(prod_bits, name=f"mask_{lane}")
        # Stage 3 (SUM): the product p = acc * mult, exact in prod_bits.
        prod = Signal(signed(prod_bits), name=f"prod_{lane}")
        m.d.sync += [prod.eq(low + (mid << _PART_BITS)),
                     mask.eq(Cat(k_at_most(j - (window - 1)) for j in range(prod_bits)))]
        # Stage 4 (SHIFT): the coarse shift c = p >> (k & ~7), by whole bytes, narrowed to
        # what the fine shift reads; and whether p's masked bits are all ones, all zeros,
        # per group of _GROUP_BITS bits (stage 5 reduces the groups).
        coarse = Signal(signed(window + 7), name=f"coarse_{lane}")
        groups = -(-prod_bits // _GROUP_BITS)
        ones, zeros = Signal(groups, name=f"ones_{lane}"), Signal(groups, name=f"zeros_{lane}")
        unmasked = ~mask | prod.as_unsigned()           # 1 where the bit is not masked or 1
        masked_zero = ~mask | ~prod.as_unsigned()       # 1 where the bit is not masked or 0
        sign = [Signal(name=f"sign_{lane}_{k}") for k in range(2)]
        lo = Signal(3, name=f"lo_{lane}")
        m.d.sync += [coarse.eq(prod >> Cat(Const(0, 3), sm1[2][3:])), lo.eq(sm1[2][:3]),
                     ones.eq(Cat(unmasked[g:g + _GROUP_BITS].all()
                                 for g in range(0, prod_bits, _GROUP_BITS))),
                     zeros.eq(Cat(masked_zero[g:g + _GROUP_BITS].all()
                                  for g in range(0, prod_bits, _GROUP_BITS))),
                     sign[0].eq(prod[-1])]
        # Stage 5 (WINDOW): t = c >> (k & 7) in the window, exact when it fits.
        win = Signal(signed(window), name=f"win_{lane}")
        fits = Signal(name=f"fits_{lane}")
        m.d.sync += [win.eq((coarse >> lo)[:window]),
                     fits.eq(Mux(sign[0], ones.all(), zeros.all())), sign[1].eq(sign[0])]
        # Stage 6 (ROUND): r = (t + 1) >> 1 = (t >> 1) + t[0], clamped to out_bits. Outside
        # the window r is at or beyond the bound of t's sign; inside, the only t whose r
        # does not fit is 2**out_bits - 1 (r = 2**(out_bits-1)), so the add is out_bits
        # wide and the clamp reads no sum bit.
        r = Signal(signed(self._out_bits), name=f"r_{lane}")
        m.d.comb += r.eq(win[1:] + win[0])
        top, bottom = (1 << (self._out_bits - 1)) - 1, -(1 << (self._out_bits - 1))
        with m.If(~fits):
            m.d.sync += out.eq(Mux(sign[1], bottom, top))
        with m.Elif(win == (1 << self._out_bits) - 1):
            m.d.sync += out.eq(top)
        with m.Else():
            m.d.sync += out.eq(r)
        return (p_ll, mid, prod, coarse, win, out)


def encode_requant(acc, mult, shift, *, acc_bits: int = 32) -> list[int]:
    """Pack beats for :attr:`Requantizer.i` into integers (payload bits, LSB first).

    Parameters
    ----------
    acc : array of int, shape (beats, lanes)
        Accumulators, each in the signed ``acc_bits`` range.
    mult, shift : int or array of int
        Multipliers (0..2**31-1) and shifts (1..62), broadcast to ``acc``'s
        shape (a vector of length ``lanes`` gives per-lane values).
    acc_bits : int
        Accumulator width of the :class:`Requantizer`.

    Returns
    -------
    list of int
        One unsigned payload integer per beat.

    Raises
    ------
    ValueError
        Wrong shape, or a value out of range (``shift = 0`` and ``shift = 63`` are
        unsupported, see the module docstring).
    """
    va = as_int64(acc, "acc")
    if va.ndim != 2:
        raise ValueError(f"acc must be 2-D (beats, lanes), got shape {va.shape}")
    lanes = va.shape[1]
    _check_param("lanes", lanes)
    _check_param("acc_bits", acc_bits)
    try:
        vm = np.broadcast_to(as_int64(mult, "mult"), va.shape)
        vs = np.broadcast_to(as_int64(shift, "shift"), va.shape)
    except ValueError:
        raise ValueError(
            f"mult and shift must broadcast to acc's shape {va.shape}, got {np.shape(mult)} "
            f"and {np.shape(shift)}"
        ) from None
    check_signed(va, acc_bits, "acc")
    check_range(vm, 0, M_MAX, "mult")
    check_range(vs, S_MIN, S_MAX, "shift")
    layout = requant_layout(lanes, acc_bits)
    return [
        layout.const({
            "acc": va[b].tolist(), "mult": vm[b].tolist(), "shift": vs[b].tolist(),
        }).as_value().value
        for b in range(va.shape[0])
    ]


def decode_requant(words, lanes: int, *, out_bits: int = 8) -> np.ndarray:
    """Unpack :attr:`Requantizer.o` payload integers into an int64 array (beats, lanes)."""
    _check_param("lanes", lanes)
    _check_param("out_bits", out_bits)
    layout = requant_out_layout(lanes, out_bits)
    rows = [list(layout.from_bits(int(w))) for w in words]
    return np.array(rows, dtype=np.int64).reshape(len(rows), lanes)
