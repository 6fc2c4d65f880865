"""Model of the GELU unit for every testbench: codec, golden, timing, stimuli, coverage.

Used by tests/rtl/test_gelu.py (Amaranth simulator) and tests/cocotb/tb_gelu.py (exported
Verilog); nothing here depends on an HDL simulator. The codec is rtl.gelu's, golden
``golden.gelu.gelu_int8_apply`` (int8 output) or ``gelu_apply`` (int32 output), the cycles
the simulator's ``sim.units.gelu.gelu_cycles`` (built on ``edgetron.hw.gelu``). A segment is
one vector of elements.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgetron.golden.gelu import (
    GeluConstants,
    gelu_apply,
    gelu_constants,
    gelu_int8_apply,
    gelu_int8_constants,
)
from edgetron.golden.intops import int_range, pow2_rescale, round_shift
from edgetron.hw.gelu import GELU_LATENCY
from edgetron.rtl.gelu import (
    decode_gelu,
    decode_gelu_input,
    encode_gelu,
    encode_gelu_consts,
    gelu_layouts,
)
from edgetron.sim.units.gelu import gelu_cycles

from .vector import Segment, VectorModel

__all__ = ["KINDS", "GeluModel", "aligned_constants"]

#: Stimulus kinds: one extreme value repeated (the input minimum, maximum, 0, -1, 1),
#: the curved part (small values), random over the whole input range.
KINDS = ("constant", "curved", "random", "random")


class GeluModel(VectorModel):
    """The GELU unit with ``lanes`` lanes and ``in_bits``-bit inputs."""

    name = "gelu"
    inputs = ("c", "i")
    COVER: ClassVar[dict[str, tuple]] = {
        # per element: the input range's ends, zero, and the rest by sign
        "input": ("min", "max", "zero", "negative", "positive"),
        # per element: int8 output beyond the int8 range (saturated), within, int32 mode
        "output": ("saturated", "in_range", "int32"),
        # per vector: one element, a partial last beat, whole beats
        "length": ("1", "partial_beat", "whole_beats"),
        # per element: the rescaled magnitude beyond the clip (u clamped; erf at its top,
        # 2 q_one), with 2 q_one a multiple of 2**erf_shift (an erf one below the top
        # changes rt), beyond it otherwise, or not beyond it
        "clip": ("clamped_aligned", "clamped", "inside"),
    }

    def __init__(self, lanes: int, in_bits: int = 32):
        self.lanes, self.in_bits = lanes, in_bits
        self.layouts = gelu_layouts(lanes, in_bits)

    # ---- codec, golden, timing ------------------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        return {"c": [encode_gelu_consts(self, seg.consts)]}

    def in_words(self, seg: Segment) -> list[int]:
        return encode_gelu(self, seg.data[0])

    def decode_inputs(self, seg: Segment, words) -> tuple:
        return (decode_gelu_input(self, words, seg.data[0].size),)

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        if isinstance(seg.consts, GeluConstants):
            return gelu_apply(data[0], seg.consts)
        return gelu_int8_apply(data[0], seg.consts)

    def decode(self, seg: Segment, words) -> np.ndarray:
        return decode_gelu(self, words, seg.data[0].size)

    def cycles(self, seg: Segment) -> int:
        return int(gelu_cycles(self.sim_params, seg.data[0].size))

    def latency(self) -> int:
        return GELU_LATENCY

    # ---- coverage --------------------------------------------------------------------------
    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        x = data[0]
        lo, hi = int_range(self.in_bits)
        int32 = isinstance(seg.consts, GeluConstants)
        g = seg.consts if int32 else seg.consts.gelu
        clipped = pow2_rescale(np.minimum(np.abs(x), g.clamp_in), g.pre_shift) > g.clip
        aligned = (2 * g.q_one) % (1 << g.erf_shift) == 0
        if not int32:
            c = seg.consts
            raw = round_shift(gelu_apply(x, c.gelu) * c.m, c.s)
        n = x.size
        out = [{"length": "1" if n == 1 else "partial_beat" if n % self.lanes
                else "whole_beats"}]
        for j, v in enumerate(x.tolist()):
            inp = ("min" if v == lo else "max" if v == hi else "zero" if v == 0
                   else "negative" if v < 0 else "positive")
            res = ("int32" if int32 else "saturated" if not -128 <= raw[j] <= 127
                   else "in_range")
            clip = ("inside" if not clipped[j] else "clamped_aligned" if aligned
                    else "clamped")
            out.append({"input": inp, "output": res, "clip": clip})
        return out

    # ---- stimuli ---------------------------------------------------------------------------
    def consts(self, rng, int32: bool):
        """Constants at an input scale across golden's range; int8 output scales that make
        some results saturate."""
        scale = float(rng.choice([2.0 ** -72, 2.0 ** 19, 2.0 ** rng.uniform(-40, 10),
                                  2.0 ** rng.uniform(-12, -4)]))
        c = gelu_constants(scale, self.in_bits)
        if int32:
            return c
        return gelu_int8_constants(scale, c.out_scale * 2.0 ** rng.uniform(-4, 14),
                                   self.in_bits)

    def vector(self, rng, kind: str, n: int) -> np.ndarray:
        lo, hi = int_range(self.in_bits)
        if kind == "constant":
            return np.full(n, int(rng.choice([lo, hi, 0, -1, 1])))
        if kind == "curved":
            return rng.integers(max(lo, -4096), min(hi, 4096), n, endpoint=True)
        return rng.integers(lo, hi, n, dtype=np.int64, endpoint=True)

    def length(self, rng) -> int:
        return int(rng.choice([1, 2, self.lanes, self.lanes + 1, 4 * self.lanes + 3,
                               int(rng.integers(1, 100))]))

    def random_segments(self, rng, count: int) -> list[Segment]:
        """``count`` vectors, kinds in turn, every third with int32 output."""
        return [Segment(KINDS[t % len(KINDS)], self.consts(rng, t % 3 == 0),
                        (self.vector(rng, KINDS[t % len(KINDS)], self.length(rng)),))
                for t in range(count)]

    def coverage_segments(self, rng) -> list[Segment]:
        """Vectors that hit every coverage bin: both ends of the input range, 0, signs, at
        int8 output scales fine enough to saturate, and one int32 vector."""
        lo, hi = int_range(self.in_bits)
        x = np.array([lo, hi, 0, -1, 1, lo // 2, hi // 2] * self.lanes)[:4 * self.lanes + 1]
        c = gelu_constants(2.0 ** -10, self.in_bits)
        return [Segment("ends", gelu_int8_constants(2.0 ** -10, c.out_scale, self.in_bits),
                        (x,)),
                Segment("ends32", c, (x[:1],)),
                Segment("clip_aligned", aligned_constants(self.in_bits, rng),
                        (np.array([hi, hi // 2, hi // 4, 1, lo] * self.lanes),))]

    def full_rate_segments(self, rng) -> list[Segment]:
        return [Segment("random", self.consts(rng, False),
                        (self.vector(rng, "random", n),))
                for n in (1, self.lanes, self.lanes + 1, 197, 800)]


def aligned_constants(in_bits: int, rng) -> GeluConstants:
    """int32-output constants at a random scale whose ``2 q_one`` is a multiple of
    ``2**erf_shift`` and whose largest magnitude rescales beyond the clip: there the erf's
    top value survives the truncation exactly, so an ``r`` one below it (a clip bound off
    by one) changes ``rt`` (searched; about one scale in 2**(erf_shift - 1))."""
    for _ in range(100_000):
        c = gelu_constants(float(2.0 ** rng.uniform(-6, 0)), in_bits)
        beyond = int(pow2_rescale(np.int64(c.clamp_in), c.pre_shift)) > c.clip
        if beyond and (2 * c.q_one) % (1 << c.erf_shift) == 0:
            return c
    raise AssertionError("no scale with 2 q_one a multiple of 2**erf_shift found")
