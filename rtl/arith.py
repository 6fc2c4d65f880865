"""Arithmetic building blocks of the vector units: sequential divider, square root, trees.

The per-row scalar work of softmax and LayerNorm (one reciprocal per row; LayerNorm's
square root) is done by small *sequential* circuits with a fixed latency, one per unit,
shared by all lanes. Golden defines their results (``floor(n / d)``, ``floor(sqrt(n))``),
not their circuits; both are exact digit recurrences (docs/vector-units.md):

* :class:`SeqDivider` -- radix-4 restoring division, two quotient bits per cycle. The
  partial remainder ``r < d`` is shifted by two bits, ``d``, ``2d`` and ``3d`` are
  subtracted from it in parallel (``3d`` is precomputed when the operands load), and the
  largest multiple that fits gives the new remainder. ``LATENCY = ceil(quo_bits / 2) + 1``.
* :class:`SeqSqrt` -- radix-4 restoring square root, two root bits per cycle from three
  parallel trials. ``LATENCY = ceil(in_bits / 4) + 1`` cycles.

Both take a ``start`` pulse with their operands and raise ``done`` for one cycle exactly
``LATENCY`` cycles later, with the result held until the next ``start``; a ``start`` in
the ``done`` cycle is allowed (occupancy = ``LATENCY``). They have no stall input: a unit
that stalls puts them under its clock enable.

Also here: :func:`tree_reduce` (a registered reduction tree over lanes, one level per
cycle), :func:`max_tree` (softmax's maximum, two cycles per level), :func:`saturate`,
:func:`shift_left`, the multiplier-block-sized partial products
(:func:`mul_parts`, :func:`sum_parts`), a leading-pair search (:func:`top_pair_groups`,
:func:`top_pair`), :func:`round_half_saturate`, and the beat packing of the vector units'
codecs (:func:`pack_checked`, :func:`pack_lanes`, :func:`unpack_lanes`).
What every unit shares (parameter checks, delay lines, constant division, constant
products, ring addresses) is in :mod:`edgetron.rtl.common`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib.wiring import In, Out

from edgetron.hw.arith import divider_latency, sqrt_latency, tree_depth

from .common import CheckedComponent, check_param

__all__ = [
    "SeqDivider",
    "SeqSqrt",
    "at_least",
    "max_tree",
    "mul_parts",
    "pack_checked",
    "pack_lanes",
    "round_half_saturate",
    "saturate",
    "shift_left",
    "sum_parts",
    "top_pair",
    "top_pair_groups",
    "tree_reduce",
    "unpack_lanes",
]

#: Widest operand the sequential circuits are built for (LayerNorm's 62-bit variance is
#: normalised to 32 bits before its square root; the reciprocals divide 32-bit values).
_ARITH_BITS_MAX = 64


class SeqDivider(CheckedComponent):
    """Radix-4 restoring divider: ``quo = floor(num / den)``, two quotient bits per cycle.

    Parameters
    ----------
    num_bits, den_bits : int
        Operand widths (unsigned), 1..64.
    quo_bits : int
        Quotient width, 1..64. The caller guarantees ``num < den * 2**quo_bits`` (the
        quotient fits) and ``den > 0``; then ``quo`` is exact. ``den = 0`` yields all
        ones (every trial subtraction of 0 succeeds).

    Members
    -------
    start : ``In(1)``
        Load ``num`` and ``den`` (sampled in this cycle) and start.
    num : ``In(num_bits)``, den : ``In(den_bits)``
        Operands.
    quo : ``Out(quo_bits)``
        The quotient, valid from the ``done`` cycle until the next ``start``.
    done : ``Out(1)``
        High for the one cycle ``LATENCY`` cycles after ``start``.

    Latency
    -------
    ``LATENCY = ceil(quo_bits / 2) + 1``: one cycle to load, one per quotient digit pair
    (:func:`edgetron.hw.arith.divider_latency`).

    Throughput
    ----------
    One division every ``LATENCY`` cycles (``start`` may coincide with ``done``).
    """

    @classmethod
    def check_parameters(cls, num_bits: int, den_bits: int, quo_bits: int) -> None:
        for name, value in (("num_bits", num_bits), ("den_bits", den_bits),
                            ("quo_bits", quo_bits)):
            check_param(cls.__name__, name, value, 1, _ARITH_BITS_MAX)

    def __init__(self, num_bits: int, den_bits: int, quo_bits: int):
        self._num_bits, self._den_bits, self._quo_bits = num_bits, den_bits, quo_bits
        self._iters = (quo_bits + 1) // 2
        super().__init__({
            "start": In(1), "num": In(num_bits), "den": In(den_bits),
            "quo": Out(quo_bits), "done": Out(1),
        })

    @property
    def LATENCY(self) -> int:
        """Cycles from ``start`` to ``done``."""
        return divider_latency(self._quo_bits)

    def elaborate(self, platform):
        m = Module()
        nd, q2 = self._den_bits, 2 * self._iters
        r = Signal(nd)                # partial remainder, r < den
        nlo = Signal(q2)              # numerator bits still to bring down, MSB first
        q = Signal(q2)
        d1, d2, d3 = Signal(nd), Signal(nd + 1), Signal(nd + 2)
        cnt = Signal(range(self._iters + 1))
        # x = 4 r + (next two numerator bits) < 4 den: subtract d, 2d, 3d in parallel; each
        # difference's sign is its comparison (one carry chain per multiple, none after).
        x = Cat(nlo[q2 - 2:], r)
        s1, s2, s3 = x - d1, x - d2, x - d3
        ge1, ge2, ge3 = ~s1[-1], ~s2[-1], ~s3[-1]
        digit = Mux(ge3, 3, Mux(ge2, 2, Mux(ge1, 1, 0)))
        with m.If(self.start):
            m.d.sync += [
                r.eq(self.num >> q2),
                nlo.eq(self.num),
                q.eq(0),
                d1.eq(self.den), d2.eq(self.den << 1), d3.eq((self.den << 1) + self.den),
                cnt.eq(self._iters),
                self.done.eq(0),
            ]
        with m.Elif(cnt != 0):
            m.d.sync += [
                r.eq(Mux(ge3, s3, Mux(ge2, s2, Mux(ge1, s1, x)))[:nd]),
                nlo.eq(nlo << 2),
                q.eq(Cat(digit[:2], q)),
                cnt.eq(cnt - 1),
                self.done.eq(cnt == 1),
            ]
        with m.Else():
            m.d.sync += self.done.eq(0)
        m.d.comb += self.quo.eq(q)
        if self._iters + 1 != self.LATENCY:
            raise AssertionError("SeqDivider: structure does not match divider_latency")
        return m


class SeqSqrt(CheckedComponent):
    """Restoring digit-recurrence square root: ``root = floor(sqrt(n))``, 2 bits per cycle.

    Parameters
    ----------
    in_bits : int
        Width of ``n`` (unsigned), 2..64; the root has ``ceil(in_bits / 2)`` bits.

    Members
    -------
    start : ``In(1)``; n : ``In(in_bits)``
        Load ``n`` and start.
    root : ``Out(ceil(in_bits / 2))``
        ``floor(sqrt(n))``, valid from ``done`` until the next ``start``.
    done : ``Out(1)``
        High for one cycle, ``LATENCY`` cycles after ``start``.

    Latency
    -------
    ``LATENCY = ceil(in_bits / 4) + 1`` (:func:`edgetron.hw.arith.sqrt_latency`).

    Notes
    -----
    Radix 4: each cycle brings down the next four bits of ``n``, ``x = 16 r + bits``, and
    finds the next two root bits ``k`` (``q' = 4 q + k``) by subtracting the three trials
    ``(4 q + k)**2 - 16 q**2 = 8 q k + k**2`` (``8 q + 1``, ``16 q + 4``, ``24 q + 9``) from
    ``x`` in parallel: each difference's sign is its comparison, the largest that fits is
    the new remainder (one carry chain per trial, none after it). ``8 q + 1`` and
    ``16 q + 4`` are ``q`` shifted with constant low bits; ``24 q + 9`` is a register of its
    own, updated with ``q`` (``4 t + 24 k - 27``). Invariant: ``r = n_i - q**2 <= 2 q``, so
    ``r`` has ``ceil(in_bits/2) + 1`` bits.
    """

    @classmethod
    def check_parameters(cls, in_bits: int) -> None:
        check_param(cls.__name__, "in_bits", in_bits, 2, _ARITH_BITS_MAX)

    def __init__(self, in_bits: int):
        self._in_bits = in_bits
        self._half = (in_bits + 1) // 2
        self._iters = (self._half + 1) // 2
        super().__init__({"start": In(1), "n": In(in_bits),
                          "root": Out(self._half), "done": Out(1)})

    @property
    def LATENCY(self) -> int:
        """Cycles from ``start`` to ``done``."""
        return sqrt_latency(self._in_bits)

    def elaborate(self, platform):
        m = Module()
        h = self._half
        steps = 2 * self._iters               # root bits computed (a leading 0 if h is odd)
        quads = Signal(2 * steps)             # n, four bits per cycle, MSB first
        r = Signal(h + 2)
        q = Signal(steps)
        t3_bits = steps + 5                   # 24 q + 9 < 2**(steps + 5)
        t3 = Signal(t3_bits)                  # 24 q + 9
        cnt = Signal(range(self._iters + 1))
        x = Cat(quads[-4:], r)                # 16 r + the next four bits
        s1 = x - Cat(Const(1, 3), q)          # 8 q + 1
        s2 = x - Cat(Const(4, 4), q)          # 16 q + 4
        s3 = x - t3
        ge1, ge2, ge3 = ~s1[-1], ~s2[-1], ~s3[-1]
        k = Mux(ge3, 3, Mux(ge2, 2, Mux(ge1, 1, 0)))
        # 24 (4 q + k) + 9 = 4 (24 q + 9) + 24 k - 27, for each k beside the trials.
        t3_next = [((t3 << 2) + 24 * j - 27)[:t3_bits] for j in range(4)]
        with m.If(self.start):
            m.d.sync += [quads.eq(self.n), r.eq(0), q.eq(0), t3.eq(9), cnt.eq(self._iters),
                         self.done.eq(0)]
        with m.Elif(cnt != 0):
            m.d.sync += [
                r.eq(Mux(ge3, s3, Mux(ge2, s2, Mux(ge1, s1, x)))[:h + 2]),
                q.eq(Cat(k[:2], q)[:steps]),
                t3.eq(Mux(ge3, t3_next[3], Mux(ge2, t3_next[2],
                                               Mux(ge1, t3_next[1], t3_next[0])))),
                quads.eq((quads << 4)[:2 * steps]),
                cnt.eq(cnt - 1),
                self.done.eq(cnt == 1),
            ]
        with m.Else():
            m.d.sync += self.done.eq(0)
        m.d.comb += self.root.eq(q)
        if self._iters + 1 != self.LATENCY:
            raise AssertionError("SeqSqrt: structure does not match sqrt_latency")
        return m


def tree_reduce(m: Module, values: list, op, name: str):
    """Reduce ``values`` with the binary ``op`` in a registered tree, one level per cycle.

    Returns ``(result, depth)``: ``result`` is valid ``depth = ceil(log2(len(values)))``
    cycles after ``values`` (:func:`edgetron.hw.arith.tree_depth`); ``depth = 0`` returns
    the single value itself. Each level's registers are named ``<name>_l<level>_<i>``.
    """
    level = list(values)
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            expr = op(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            shape = expr.shape() if hasattr(expr, "shape") else None
            reg = Signal(shape, name=f"{name}_l{depth + 1}_{i // 2}")
            m.d.sync += reg.eq(expr)
            nxt.append(reg)
        level = nxt
        depth += 1
    if depth != tree_depth(len(values)):
        raise AssertionError(f"{name}: tree of depth {depth}, timing model says "
                             f"{tree_depth(len(values))}")
    return level[0], depth


def max_tree(m: Module, values: list):
    """The maximum of ``values`` (unsigned) in a registered tree, two cycles per level
    (``SOFTMAX_MAX_TREE_STAGES``): the comparison, with its operands registered beside it,
    then the selection. Returns ``(result, cycles)``."""
    level, cycles = list(values), 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            tag = f"max_tree_l{cycles // 2 + 1}_{i // 2}"
            a = level[i]
            ra, sel = Signal.like(a, name=f"{tag}_a"), Signal.like(a, name=tag)
            if i + 1 < len(level):
                b = level[i + 1]
                rb, a_gt = Signal.like(b, name=f"{tag}_b"), Signal(name=f"{tag}_gt")
                m.d.sync += [ra.eq(a), rb.eq(b), a_gt.eq(a > b),          # compare
                             sel.eq(Mux(a_gt, ra, rb))]                   # select
            else:
                m.d.sync += [ra.eq(a), sel.eq(ra)]
            nxt.append(sel)
        level, cycles = nxt, cycles + 2
    return level[0], cycles


def at_least(x, c: int):
    """``x >= c`` for an unsigned ``x`` and a constant ``c``, as AND/OR logic from the top
    bit down (LUTs, no carry chain: a comparison with a constant maps onto a subtractor's
    carry chain otherwise); a constant where the answer is one."""
    if c <= 0:
        return Const(1, 1)
    if c >= 1 << len(x):
        return Const(0, 1)
    top = len(x) - 1
    rest = at_least(x[:top], c - (1 << top)) if c >> top else at_least(x[:top], c)
    return (x[top] & rest) if c >> top else (x[top] | rest)


def saturate(x, bits: int):
    """A signed ``x`` clamped to the signed ``bits`` range (golden ``intops.saturate``), as
    ``signed(bits)``. ``x`` fits when its bits from ``bits - 1`` up are all copies of its sign
    (no comparator: the generated Verilog has no mixed-width signed comparison)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if len(x) <= bits:
        return x.as_signed()
    upper = x[bits - 1:]
    fits = upper.all() | ~upper.any()
    return Mux(fits, x[:bits], Mux(x[-1], lo, hi))[:bits].as_signed()


def shift_left(x, amount, width: int):
    """``(x << amount)`` truncated to ``width`` bits, as a barrel shifter of constant shifts
    (one multiplexer level per bit of ``amount``; no variable-shift operator, whose Verilog
    form widens its operand)."""
    value = x.as_unsigned()
    value = value[:width] if len(value) >= width else value
    for b in range(len(amount)):
        step = 1 << b
        if step >= width:
            value = Mux(amount[b], 0, value)
            continue
        shifted = (value << step)[:width]
        value = Mux(amount[b], shifted, value)
    return value


#: Signed operand width of an FPGA multiplier block (ECP5 MULT18X18D).
_DSP_BITS = 18


def _dsp_chunks(value) -> list:
    """``value`` as ``[(offset, part)]`` parts that each fit a signed 18-bit multiplier
    input: unsigned 17-bit low parts, the top part keeping ``value``'s signedness."""
    value = Value.cast(value)
    shape = value.shape()
    limit = _DSP_BITS if shape.signed else _DSP_BITS - 1
    if shape.width <= limit:
        return [(0, value)]
    parts, off = [], 0
    while shape.width - off > limit:
        parts.append((off, value[off:off + _DSP_BITS - 1]))
        off += _DSP_BITS - 1
    top = value[off:]
    parts.append((off, top.as_signed() if shape.signed else top))
    return parts


def mul_parts(m: Module, a, b, name: str) -> list:
    """The partial products of ``a * b``, one DSP-sized multiplier each, every product in a
    register of its own (``<name>_p<i><j>``, no reset: the multiplier's output register)
    that nothing but :func:`sum_parts` in the next stage reads. Returns ``[(offset, reg)]``
    with ``a * b = sum(reg << offset)``."""
    parts = []
    for i, (oa, pa) in enumerate(_dsp_chunks(a)):
        for j, (ob, pb) in enumerate(_dsp_chunks(b)):
            reg = Signal.like(pa * pb, name=f"{name}_p{i}{j}", reset_less=True)
            m.d.sync += reg.eq(pa * pb)
            parts.append((oa + ob, reg))
    return parts


def sum_parts(parts: list):
    """``sum(reg << offset)`` of :func:`mul_parts`'s registers (the product itself when the
    operands fit one multiplier)."""
    total = None
    for off, reg in parts:
        term = reg << off if off else reg
        total = term if total is None else total + term
    return total


def top_pair_groups(x):
    """The pairs of bits of the unsigned ``x`` in groups of four: per group, whether a pair
    is non-zero (``any``) and the index of the highest non-zero one (``idx``), for
    :func:`top_pair` to finish in the next stage."""
    flags = [x[k:k + 2].any() for k in range(0, len(x), 2)]
    flags += [Const(0, 1)] * (-len(flags) % 4)
    out = []
    for g in range(0, len(flags), 4):
        f = flags[g:g + 4]
        out.append(Cat(f[0] | f[1] | f[2] | f[3],
                       Mux(f[3], 3, Mux(f[2], 2, Mux(f[1], 1, 0)))[:2]))
    return Cat(*out)


def top_pair(groups):
    """``floor(msb(x) / 2)`` (0 for ``x < 4``), the index of the highest non-zero pair of
    bits of ``x``, from :func:`top_pair_groups`'s registers: a priority encoder of
    ``log2`` levels of multiplexers over the groups."""
    entries = [(groups[g].any, groups[g].idx) for g in range(len(groups))]
    entries += [(Const(0, 1), Const(0, 2))] * \
        ((1 << max(1, (len(entries) - 1).bit_length())) - len(entries))

    def encode(es):
        if len(es) == 1:
            return es[0]
        lo_any, lo_idx = encode(es[:len(es) // 2])
        hi_any, hi_idx = encode(es[len(es) // 2:])
        return lo_any | hi_any, Cat(Mux(hi_any, hi_idx, lo_idx), hi_any)

    return encode(entries)[1]


def round_half_saturate(t, bits: int):
    """``saturate((t + 1) >> 1, bits)`` of a signed ``t`` (the last step of a rounding
    shift whose ``t = x >> (s - 1)`` is registered): ``t`` in ``[-2**bits, 2**bits)``
    gives ``(t >> 1) + t[0]``, a ``bits``-wide add whose only overflow, ``t = 2**bits - 1``,
    is caught by a comparison; outside that window the sign picks the bound."""
    window = bits + 1
    top, bottom = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    upper = t[window - 1:]
    fits = upper.all() | ~upper.any()
    rounded = (t[1:window] + t[0])[:bits]
    return Mux(fits, Mux(t[:window] == (1 << bits) - 1, top, rounded),
               Mux(t[-1], bottom, top))


def pack_checked(owner: str, layout, values: dict) -> int:
    """The payload integer of one beat of ``layout`` (a ``StructLayout`` of plain unsigned or
    signed fields) from ``values``, refusing a value its field cannot hold.

    Raises
    ------
    ValueError
        A missing field, or a value outside its field's range, naming ``owner`` and the field.
    """
    fields = {}
    for name, field in layout:
        if name not in values:
            raise ValueError(f"{owner}: constant {name} is missing")
        v = int(values[name])
        shape = Shape.cast(field.shape)
        width = shape.width
        lo, hi = ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if shape.signed
                  else (0, (1 << width) - 1))
        if not lo <= v <= hi:
            raise ValueError(f"{owner}: constant {name} = {v} does not fit its {width}-bit "
                             f"{'signed' if shape.signed else 'unsigned'} field [{lo}, {hi}]")
        fields[name] = v
    return layout.const(fields).as_value().value


def pack_lanes(values, width: int) -> int:
    """Pack integers (two's complement, ``width`` bits each) into one payload, element 0 in the
    lowest bits (the order of ``lib.data.ArrayLayout``)."""
    mask = (1 << width) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack_lanes(word: int, width: int, lanes: int, signed_values: bool = True) -> list[int]:
    """The ``lanes`` elements of ``width`` bits in ``word`` (inverse of :func:`pack_lanes`)."""
    mask = (1 << width) - 1
    half = 1 << (width - 1)
    out = []
    for i in range(lanes):
        v = (word >> (i * width)) & mask
        out.append(v - (1 << width) if signed_values and v >= half else v)
    return out
