"""Residual-add unit: ``y = saturate_int8((a * m_a + b * m_b + 2**(s-1)) >> s)`` per lane.

``AddUnit(lanes)`` adds two int8 tensors at two scales, bit-exact with
:func:`edgetron.golden.add.residual_add` (golden has no fused activation clamp). The
constants ``(m_a, m_b, s)`` of :func:`edgetron.golden.add.residual_constants` arrive on
the ``c`` stream; :func:`encode_add` / :func:`decode_add` are the one definition of the beat
format (Amaranth tests and cocotb testbenches alike). docs/vector-units.md has the diagram.

Shift values outside the golden range
-------------------------------------
As in ``rtl/requant.py``: the 6-bit ``s`` field can carry 0 and 63, which golden rejects;
the hardware shifts by ``s - 1`` modulo 64 and outputs 0 for both. :func:`encode_add_consts`
refuses them.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import EnableInserter, Module, Signal, signed, unsigned
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
)
from edgetron.hw.add import ADD_LATENCY, ADD_STAGES, add_cycles

from .arith import pack_checked, pack_lanes, saturate, unpack_lanes
from .common import MAX_EDGE, VectorUnit

__all__ = ["AddLayouts", "AddUnit", "add_layouts", "add_timing", "decode_add", "decode_add_input",
           "encode_add", "encode_add_consts"]

_OUT_BITS = INT8_MAX.bit_length() + 1


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
        only when the unit is empty; they apply to every later ``i`` beat.
    i : ``In(stream.Signature(add_layouts(...).i))``
        ``lanes`` pairs ``(a, b)``: ``2 * lanes * in_bits`` bits. Not taken while
        ``c.valid`` is high (constants first).
    o : ``Out(stream.Signature(add_layouts(...).o))``
        ``lanes`` int8 sums, ``8 * lanes`` bits, in input order.

    Latency
    -------
    ``LATENCY = edgetron.hw.add.ADD_LATENCY = 4`` cycles from a beat accepted to the same
    beat valid on ``o``; ``edgetron.hw.add.add_cycles(lanes, elements)`` from the first
    input handshake to the last output handshake.

    Throughput
    ----------
    One beat (``lanes`` elements) per cycle.

    Backpressure
    ------------
    ``o`` not ready with a beat offered stalls the whole pipeline (one clock enable) and
    drops ``i.ready``; nothing is lost or duplicated and the offered beat is held.

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
        core = Module()
        run = Signal()
        k = Signal(self._layouts.c)
        valid = [Signal(name=f"valid_{stage}") for stage in ADD_STAGES]
        busy = Signal()
        m.d.comb += [
            busy.eq(valid[0] | valid[1] | valid[2] | valid[3]),
            run.eq(~valid[-1] | self.o.ready),
            self.c.ready.eq(run & ~busy),
            self.i.ready.eq(run & ~self.c.valid),
            self.o.valid.eq(valid[-1]),
        ]
        with core.If(self.c.valid & self.c.ready):
            core.d.sync += k.eq(self.c.payload)
        core.d.sync += valid[0].eq(self.i.valid & self.i.ready)
        core.d.sync += [valid[j].eq(valid[j - 1]) for j in range(1, len(valid))]

        shift = Signal(SHIFT_BITS)
        core.d.comb += shift.eq(k.s - 1)            # modulo 64 (see the module docstring)
        prod_bits = RESIDUAL_SUM_BITS - 1
        stages = None
        for lane in range(self.lanes):
            pa = Signal(signed(prod_bits), name=f"pa_{lane}")
            pb = Signal(signed(prod_bits), name=f"pb_{lane}")
            t = Signal(signed(RESIDUAL_SUM_BITS), name=f"t_{lane}")
            rnd = Signal(signed(RESIDUAL_SUM_BITS), name=f"rnd_{lane}")
            out = Signal(signed(_OUT_BITS), name=f"out_{lane}")
            core.d.sync += [
                pa.eq(self.i.payload.a[lane] * k.m_a),          # mul
                pb.eq(self.i.payload.b[lane] * k.m_b),
                t.eq(pa + pb),                                   # sum
                rnd.eq((t >> shift) + 1),                        # shift: round one bit early
                out.eq(saturate(rnd >> 1, _OUT_BITS)),           # sat
            ]
            m.d.comb += self.o.payload[lane].eq(out)
            stages = (pa, t, rnd, out)
        if not len(stages) == len(valid) == self.LATENCY:
            raise AssertionError(f"AddUnit: {len(stages)} data stages, {len(valid)} valid "
                                 f"stages, timing model ADD_LATENCY = {self.LATENCY}")
        m.submodules.core = EnableInserter(run)(core)
        return m


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
        "output_backpressure": "stalls the whole pipeline",
        "variables": {"E": "elements"},
        "constants": {"lanes": lanes, "latency_cycles": ADD_LATENCY},
        "total": "ceil(E / lanes) + latency_cycles",
        "example": {"E": 197 * 192, "cycles": int(add_cycles(lanes, 197 * 192))},
    }
