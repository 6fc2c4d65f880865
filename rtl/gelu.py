"""GELU unit: element-wise I-BERT i-GELU, ``lanes`` values per beat, int32 or int8 out.

``GeluUnit(lanes, in_bits)`` computes :func:`edgetron.golden.gelu.gelu_int8_apply` (int8
output) or :func:`edgetron.golden.gelu.gelu_apply` (int32 output), bit for bit. The
integer constants of :func:`edgetron.golden.gelu.gelu_int8_constants` /
:func:`~edgetron.golden.gelu.gelu_constants` arrive on the ``c`` stream;
:func:`encode_gelu_consts`, :func:`encode_gelu` and :func:`decode_gelu` define the beats.

Datapath (one lane; stage names from ``edgetron.hw.gelu.GELU_STAGES``)
------------------------------------------------------------------------
====  =======================================================  ================================
st.   operation (golden/gelu.py step)                          width
====  =======================================================  ================================
mag   ``mag = min(|q|, clamp_in)`` (1)                         ``in_bits`` unsigned
resc  ``v = pre(mag)`` (2): ``mag << f`` or                     ``in_bits + 31``
      ``((mag >> (-f-1)) + 1) >> 1`` (``arith.pow2_rescale``)
clip  ``d = clip - min(v, clip)`` (2, 3: ``u = min(v, clip)``)  ``CLIP_BITS``
sq    ``w = d**2 = (clip - u)**2`` (3)                          ``2 * CLIP_BITS``
erf   ``r = 2 q_one - w`` (q>0), ``w`` (q<0), ``q_one`` (q=0);  ``ERF_BITS`` = 16
      ``rt = r >> erf_shift`` (4, 5)
mul   ``q * rt`` (6)                                            ``in_bits + 17`` signed
rnd   ``round_shift(., out_shift)`` (7), ``out_shift =``       32 signed
      ``max(0, in_bits - 16)`` fixed by ``in_bits``
rq    ``rtl/requant.Requantizer(lanes, 32, 32)``: int8 mode    32 signed, then saturated to 8
      ``(m, s)`` of the c beat; int32 mode ``(2**30, 30)``,
      the identity
====  =======================================================  ================================

Field widths of the constants are bounds over every scale golden accepts: the constants
depend on the scale only through the internal scale ``S_i`` in ``(2**-11, 2**-10]``
(``GELU_FRAC_BITS = 10``) and grow with ``1 / S_i``, so their bounds are their values at
``S_i = 2**-11`` (:func:`gelu_field_bounds`).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np
from amaranth.hdl import EnableInserter, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

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
    pow2_rescale,
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

    ``c`` fields (LSB first): ``pre_shift`` signed(7), ``clamp_in`` unsigned(in_bits),
    ``clip``, ``q_one``, ``erf_shift`` (widths of :func:`gelu_field_bounds`), ``m``
    unsigned(31), ``s`` unsigned(6), ``out32`` 1 bit.
    """
    b = gelu_field_bounds()
    return GeluLayouts(
        c=data.StructLayout({
            "pre_shift": signed(7),
            "clamp_in": unsigned(in_bits),
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
    ``LATENCY = edgetron.hw.gelu.GELU_LATENCY = 13`` cycles (seven i-GELU stages and the
    six-stage requantizer, ``REQUANT_LATENCY``) from a beat accepted to it valid on ``o``;
    ``edgetron.hw.gelu.gelu_cycles(lanes, elements)`` from the first input handshake to the
    last output handshake.

    Throughput
    ----------
    One beat per cycle.

    Backpressure
    ------------
    ``o`` not ready with a beat offered stalls the whole pipeline through one clock enable
    and drops ``i.ready``; the offered beat is held.

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
        core = Module()
        run = Signal()
        k = Signal(self._layouts.c)
        inflight = Signal(range(self.LATENCY + 2))
        core.submodules.requant = rq = Requantizer(self.lanes, OUT_BITS, OUT_BITS)
        i_fire = self.i.valid & self.i.ready
        o_fire = self.o.valid & self.o.ready
        m.d.comb += [
            run.eq(~rq.o.valid | self.o.ready),
            self.c.ready.eq(run & (inflight == 0)),
            self.i.ready.eq(run & ~self.c.valid),
            self.o.valid.eq(rq.o.valid),
            rq.o.ready.eq(1),             # the requantizer stalls with the rest (clock enable)
        ]
        with core.If(self.c.valid & self.c.ready):
            core.d.sync += k.eq(self.c.payload)
        core.d.sync += inflight.eq(inflight + i_fire - o_fire)
        valid = [Signal(name=f"valid_{stage}") for stage in GELU_STAGES]
        core.d.sync += valid[0].eq(i_fire)
        core.d.sync += [valid[j].eq(valid[j - 1]) for j in range(1, len(valid))]
        core.d.comb += rq.i.valid.eq(valid[-1])
        out_shift = max(0, self.in_bits + ERF_BITS - OUT_BITS)
        clip_bits = len(k.clip)
        stages = None
        for lane in range(self.lanes):
            x = [Signal(signed(self.in_bits), name=f"x{j}_{lane}") for j in range(1, 6)]
            mag = Signal(self.in_bits, name=f"mag_{lane}")
            d = Signal(clip_bits, name=f"d_{lane}")
            w = Signal(2 * clip_bits, name=f"w_{lane}")
            rt = Signal(ERF_BITS, name=f"rt_{lane}")
            prod = Signal(signed(self.in_bits + ERF_BITS + 1), name=f"prod_{lane}")
            y = Signal(signed(OUT_BITS), name=f"y_{lane}")
            q = self.i.payload[lane]
            absq = Mux(q[-1], -q, q).as_unsigned()[:self.in_bits]
            v = pow2_rescale(mag, k.pre_shift, self.in_bits)
            vr = Signal(len(v), name=f"v_{lane}")
            sign, nonzero = x[3][-1], x[3].any()
            r = Mux(sign, w, Mux(nonzero, (k.q_one << 1) - w, k.q_one))
            core.d.sync += [
                x[0].eq(q), mag.eq(Mux(absq > k.clamp_in, k.clamp_in, absq)),     # mag
                x[1].eq(x[0]), vr.eq(v),                                           # rescale
                x[2].eq(x[1]), d.eq(Mux(vr > k.clip, 0, k.clip - vr)),             # clip
                x[3].eq(x[2]), w.eq(d * d),                                        # square
                x[4].eq(x[3]), rt.eq(r >> k.erf_shift),                            # erf
                prod.eq(x[4] * rt),                                                # mul
                y.eq((((prod >> (out_shift - 1)) + 1) >> 1)
                     if out_shift else prod),                                      # round
            ]
            core.d.comb += [
                rq.i.payload.acc[lane].eq(y),
                rq.i.payload.mult[lane].eq(Mux(k.out32, 1 << _IDENTITY_SHIFT, k.m)),
                rq.i.payload.shift[lane].eq(Mux(k.out32, _IDENTITY_SHIFT, k.s)),
            ]
            res = rq.o.payload[lane]
            m.d.comb += self.o.payload[lane].eq(Mux(k.out32, res, saturate(res, _INT8_BITS)))
            stages = (mag, vr, d, w, rt, prod, y)
        if not (len(stages) == len(valid) and len(valid) + rq.LATENCY == self.LATENCY):
            raise AssertionError(
                f"GeluUnit: {len(stages)} i-GELU stages + requantizer {rq.LATENCY}, timing "
                f"model GELU_LATENCY = {self.LATENCY}")
        m.submodules.core = EnableInserter(run)(core)
        return m


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
        "pre_shift": g.pre_shift, "clamp_in": g.clamp_in, "clip": g.clip, "q_one": g.q_one,
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
        "output_backpressure": "stalls the whole pipeline",
        "variables": {"E": "elements"},
        "constants": {"lanes": lanes, "latency_cycles": GELU_LATENCY},
        "total": "ceil(E / lanes) + latency_cycles",
        "example": {"E": 197 * 768, "cycles": int(gelu_cycles(lanes, 197 * 768))},
    }
