"""Model of the residual-add unit for every testbench: codec, golden, timing, stimuli,
coverage.

Used by tests/rtl/test_add.py (Amaranth simulator) and tests/cocotb/tb_add.py (exported
Verilog); nothing here depends on an HDL simulator. The codec is rtl.add's, golden
``golden.add.residual_add``, the cycles the simulator's ``sim.units.add.add_cycles``
(built on ``edgetron.hw.add``). A segment is one pair of vectors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgetron.golden.add import ResidualConstants, residual_add, residual_constants
from edgetron.golden.intops import M_MAX, S_MAX, S_MIN, int_range
from edgetron.hw.add import ADD_LATENCY
from edgetron.rtl.add import (
    add_layouts,
    decode_add,
    decode_add_input,
    encode_add,
    encode_add_consts,
)
from edgetron.sim.units.add import add_cycles

from .vector import Segment, VectorModel

__all__ = ["KINDS", "AddModel"]

#: Stimulus kinds: all -128 with -128 or 127, all 127, random.
KINDS = ("all_min", "all_max", "random", "random", "random", "random")


class AddModel(VectorModel):
    """The add unit with ``lanes`` lanes and ``in_bits``-bit operands."""

    name = "add"
    inputs = ("c", "i")
    COVER: ClassVar[dict[str, tuple]] = {
        # per element: the result saturated high, low, or within int8
        "output": ("saturated_high", "saturated_low", "in_range"),
        # per element: both operands at an end of their range, one, none
        "operands": ("both_ends", "one_end", "inside"),
        # per vector: the shift's limits (1, 62) and the multipliers' (0, M_MAX)
        "constants": ("s_min", "s_max", "m_zero", "m_max", "other"),
    }

    def __init__(self, lanes: int, in_bits: int = 8):
        self.lanes, self.in_bits = lanes, in_bits
        self.layouts = add_layouts(lanes, in_bits)

    # ---- codec, golden, timing ------------------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        return {"c": [encode_add_consts(self.layouts, seg.consts)]}

    def in_words(self, seg: Segment) -> list[int]:
        return encode_add(self.layouts, *seg.data)

    def decode_inputs(self, seg: Segment, words) -> tuple:
        return decode_add_input(self.layouts, words, seg.data[0].size)

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        return residual_add(*data, *seg.consts)

    def decode(self, seg: Segment, words) -> np.ndarray:
        return decode_add(self.layouts, words, seg.data[0].size)

    def cycles(self, seg: Segment) -> int:
        return int(add_cycles(self.sim_params, seg.data[0].size))

    def latency(self) -> int:
        return ADD_LATENCY

    # ---- coverage --------------------------------------------------------------------------
    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        a, b = data
        m_a, m_b, s = seg.consts
        lo, hi = int_range(self.in_bits)
        raw = (a * m_a + b * m_b + (1 << (s - 1))) >> s
        const = ("s_min" if s == S_MIN else "s_max" if s == S_MAX
                 else "m_zero" if 0 in (m_a, m_b) else "m_max" if M_MAX in (m_a, m_b)
                 else "other")
        out = [{"constants": const}]
        for j in range(a.size):
            ends = int(a[j] in (lo, hi)) + int(b[j] in (lo, hi))
            out.append({"output": ("saturated_high" if raw[j] > 127 else "saturated_low"
                                   if raw[j] < -128 else "in_range"),
                        "operands": ("both_ends", "one_end", "inside")[2 - ends]})
        return out

    # ---- stimuli ---------------------------------------------------------------------------
    def pair(self, rng, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int_range(self.in_bits)
        if kind == "all_min":
            return np.full(n, lo), np.full(n, int(rng.choice([lo, hi])))
        if kind == "all_max":
            return np.full(n, hi), np.full(n, hi)
        return (rng.integers(lo, hi, n, endpoint=True), rng.integers(lo, hi, n, endpoint=True))

    def consts(self, rng, t: int) -> ResidualConstants:
        """Every seventh vector at the constants' limits, else from random scales."""
        if t % 7 == 0:
            return ResidualConstants(int(rng.choice([0, M_MAX])), int(rng.choice([0, M_MAX])),
                                     int(rng.choice([S_MIN, S_MAX, 31])))
        return residual_constants(*(float(2.0 ** rng.uniform(-12, 2)) for _ in range(3)))

    def random_segments(self, rng, count: int) -> list[Segment]:
        segs = []
        for t in range(count):
            kind = KINDS[t % len(KINDS)]
            n = int(rng.choice([1, 2, 3, self.lanes, self.lanes + 1, 17, 64,
                                int(rng.integers(1, 80))]))
            segs.append(Segment(kind, self.consts(rng, t), self.pair(rng, kind, n)))
        return segs

    def coverage_segments(self, rng) -> list[Segment]:
        """Vectors that hit every coverage bin: the shift limits, zero and largest
        multipliers, results beyond both ends of int8."""
        a = np.array([-128, 127, 0, 5, -128, 127, 3, -7][:8])
        b = np.array([-128, 127, 0, -128, 3, 9, 127, 2])
        return [Segment("s_min", ResidualConstants(1, 1, S_MIN), (a, b)),
                Segment("s_max", ResidualConstants(M_MAX, M_MAX, S_MAX), (a, b)),
                Segment("m_zero", ResidualConstants(0, 1 << 20, 20), (a, b)),
                Segment("m_max", ResidualConstants(M_MAX, 1 << 24, 31), (a, b))]

    def every_shift_segments(self, rng) -> list[Segment]:
        """Every shift ``S_MIN..S_MAX`` with the multipliers at their ends, at the split of
        the hardware's partial products (bit 17) and random; operands at the ends of
        their range and random."""
        lo, hi = int_range(self.in_bits)
        a = np.array([lo, hi, lo, hi, 0, -1, 1, int(rng.integers(lo, hi, endpoint=True))])
        b = np.array([lo, hi, hi, lo, 0, -1, 1, int(rng.integers(lo, hi, endpoint=True))])
        pairs = ((M_MAX, M_MAX), (M_MAX, 0), ((1 << 17) - 1, 1 << 17))
        return [Segment("shift", ResidualConstants(*pairs[s % len(pairs)], s), (a, b))
                for s in range(S_MIN, S_MAX + 1)] + [
            Segment("shift", ResidualConstants(int(rng.integers(0, M_MAX, endpoint=True)),
                                               int(rng.integers(0, M_MAX, endpoint=True)), s),
                    (a, b)) for s in range(S_MIN, S_MAX + 1)]

    def full_rate_segments(self, rng) -> list[Segment]:
        return [Segment("random", residual_constants(0.05, 0.02, 0.04),
                        self.pair(rng, "random", n))
                for n in (1, self.lanes, self.lanes + 1, 197, 600)]
