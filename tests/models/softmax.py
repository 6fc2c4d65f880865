"""Model of the softmax unit for every testbench: codec, golden, timing, stimuli, coverage.

Used by tests/rtl/test_softmax.py (Amaranth simulator) and tests/cocotb/tb_softmax.py
(exported Verilog); nothing here depends on an HDL simulator. The codec is rtl.softmax's
(the model has the attributes its encoders read), golden is
``golden.softmax.softmax_apply``, the cycles the simulator's
``sim.units.softmax.softmax_cycles`` (built on ``edgetron.hw.softmax``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgetron.golden.intops import round_shift
from edgetron.golden.softmax import _i_exp, softmax_apply, softmax_constants
from edgetron.hw.arith import beats
from edgetron.hw.softmax import softmax_row_latency
from edgetron.rtl.softmax import (
    decode_softmax,
    decode_softmax_input,
    encode_softmax,
    encode_softmax_consts,
    softmax_layouts,
)
from edgetron.sim.units.softmax import softmax_cycles

from .vector import Segment, VectorModel

__all__ = ["KINDS", "SoftmaxModel", "pow2_sum_row"]

#: Stimulus kinds: random int32 logits, the curved part of exp (small spread), all equal,
#: one huge logit, all -128, all 127, only INT32_MIN / INT32_MAX, random int8.
KINDS = ("random", "narrow", "equal", "huge", "all_min8", "all_max8", "int32_ends", "int8")


class SoftmaxModel(VectorModel):
    """The softmax unit with ``lanes`` lanes, rows of up to ``row_max`` ``in_bits`` logits."""

    name = "softmax"
    inputs = ("c", "i")
    COVER: ClassVar[dict[str, tuple]] = {
        # n = 1, a partial last beat, whole beats, the longest row
        "row_length": ("1", "partial_beat", "whole_beats", "row_max"),
        # the output clamp min(., 127) engaged (a probability rounds to 128)
        "saturation": ("clamped", "not_clamped"),
        # the divider's operand, the row sum: one term (every other e is 0: the smallest
        # sum for its row maximum), a power of two (an exact quotient: some digit step
        # meets x == d exactly), all terms equal in a row of row_max (the largest), other
        "divider_operand": ("one_term", "power_of_two", "equal_row_max", "other"),
    }

    def __init__(self, lanes: int, row_max: int, in_bits: int = 32):
        self.lanes, self.row_max, self.in_bits = lanes, row_max, in_bits
        self.layouts = softmax_layouts(lanes, row_max, in_bits)

    # ---- codec, golden, timing ------------------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        return {"c": [encode_softmax_consts(self, seg.consts, seg.data[0].shape[1])]}

    def in_words(self, seg: Segment) -> list[int]:
        return encode_softmax(self, seg.data[0])

    def decode_inputs(self, seg: Segment, words) -> tuple:
        return (decode_softmax_input(self, words, *seg.data[0].shape),)

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        return softmax_apply(data[0], seg.consts)

    def decode(self, seg: Segment, words) -> np.ndarray:
        return decode_softmax(self, words, *seg.data[0].shape)

    def cycles(self, seg: Segment) -> int:
        return int(softmax_cycles(self.sim_params, *seg.data[0].shape))

    def latency(self) -> int:
        return int(softmax_row_latency(self.lanes, self.row_max))

    # ---- coverage --------------------------------------------------------------------------
    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        q, c = data[0], seg.consts
        n = q.shape[1]
        poly, z = _i_exp(q - q.max(axis=1, keepdims=True), c.iexp)
        e = np.right_shift(poly, np.minimum(z, c.z_cap) + c.exp_shift)
        total = e.sum(axis=1)
        raw = round_shift(e * ((1 << c.k) // total)[:, None], c.out_shift)
        out = []
        for r in range(q.shape[0]):
            length = ("1" if n == 1 else "row_max" if n == self.row_max
                      else "partial_beat" if n % self.lanes else "whole_beats")
            if n > 1 and total[r] == e[r].max():
                div = "one_term"
            elif total[r] & (total[r] - 1) == 0:
                div = "power_of_two"
            elif n == self.row_max and (e[r] == e[r, 0]).all():
                div = "equal_row_max"
            else:
                div = "other"
            out.append({"row_length": length,
                        "saturation": "clamped" if raw[r].max() > 127 else "not_clamped",
                        "divider_operand": div})
        return out

    # ---- stimuli ---------------------------------------------------------------------------
    def rows(self, rng, kind: str, count: int, n: int) -> np.ndarray:
        """``count`` rows of ``n`` logits of ``kind`` (:data:`KINDS`)."""
        lo, hi = -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        shape = (count, n)
        if kind == "equal":
            return np.full(shape, int(rng.integers(lo, hi, endpoint=True)))
        if kind == "huge":                      # one huge logit, the rest small
            q = rng.integers(max(lo, -1000), min(hi, 1000), shape, endpoint=True)
            q[np.arange(count), rng.integers(0, n, count)] = hi
            return q
        if kind == "all_min8":
            return np.full(shape, max(lo, -128))
        if kind == "all_max8":
            return np.full(shape, min(hi, 127))
        if kind == "int32_ends":
            return rng.choice([lo, hi], shape)
        if kind == "int8":
            return rng.integers(max(lo, -128), min(hi, 127), shape, endpoint=True)
        if kind == "narrow":                    # the curved part of exp at fine scales
            return rng.integers(max(lo, -20000), min(hi, 20000), shape, endpoint=True)
        return rng.integers(lo, hi, shape, dtype=np.int64, endpoint=True)

    def scale(self, rng, kind: str) -> float:
        """An input scale across golden's range, fine scales for the curved kinds."""
        if kind in ("narrow", "int8", "all_min8", "all_max8"):
            return float(2.0 ** rng.uniform(-20, -2))
        return float(rng.choice([2.0 ** -74.9, 2.0 ** 18, 2.0 ** rng.uniform(-20, -8),
                                 2.0 ** rng.uniform(-74, 17)]))

    def length(self, rng) -> int:
        """A row length, the extremes weighted: 1, lanes, lanes + 1, row_max, random."""
        choices = [1, self.lanes, self.lanes + 1, self.row_max,
                   int(rng.integers(1, self.row_max + 1)), int(rng.integers(1, self.row_max + 1))]
        return min(int(rng.choice(choices)), self.row_max)

    def segment(self, rng, kind: str, rows: int, n: int) -> Segment:
        return Segment(kind, softmax_constants(self.scale(rng, kind)),
                       (self.rows(rng, kind, rows, n),))

    def random_segments(self, rng, rows: int, max_rows: int = 12) -> list[Segment]:
        """Segments of ``rows`` rows in all, kinds in turn, lengths with the extremes
        weighted, up to ``max_rows`` rows per segment."""
        segs, total = [], 0
        while total < rows:
            kind = KINDS[len(segs) % len(KINDS)]
            r = min(int(rng.integers(1, max_rows + 1)), rows - total)
            segs.append(self.segment(rng, kind, r, self.length(rng)))
            total += r
        return segs

    def coverage_segments(self, rng) -> list[Segment]:
        """Short segments that hit every coverage bin: the longest row of equal logits at a
        coarse scale (every e equal), one huge logit (one term; the probability clamps),
        rows whose exponentials sum to 2**16 (:func:`pow2_sum_row`)."""
        segs = [self.segment(rng, "equal", 2, self.row_max),
                Segment("huge", softmax_constants(2.0 ** 18), (self.rows(rng, "huge", 2, 3),)),
                self.segment(rng, "random", 1, 1)]
        if self.row_max >= 3:
            consts, row = pow2_sum_row(min(self.row_max, 5))
            segs.append(Segment("pow2_sum", consts, (np.array([row, np.roll(row, 2)]),)))
        return segs

    def full_rate_segments(self, rng) -> list[Segment]:
        """Every row length class and row count the cycle check measures."""
        shapes = [(1, 1), (3, 1), (2, self.lanes), (4, self.lanes + 1), (3, self.row_max),
                  (1, self.row_max), (5, min(self.row_max, 9 * self.lanes))]
        return [self.segment(rng, "random", r, min(n, self.row_max)) for r, n in shapes]

    def beats(self, n: int) -> int:
        return int(beats(n, self.lanes))


def pow2_sum_row(n: int):
    """``(constants, row)``: ``n >= 3`` logits at scale ``2**-10`` whose exponentials sum to
    exactly ``2**16`` (the largest ``e``, at ``d = 0``, plus two found by search; the rest
    far enough below the maximum that their ``e`` is 0). The reciprocal ``2**30 // 2**16 =
    2**14`` is exact, so a digit step of the divider meets ``x == d``; and one ``e`` is an
    odd multiple of ``2**8``, so ``e * 2**14`` lands exactly on a rounding tie of the
    output: a factor one too small (a missed digit) changes that probability."""
    consts = softmax_constants(2.0 ** -10)
    d = -np.arange(0, 1 << 15, dtype=np.int64)
    poly, z = _i_exp(d, consts.iexp)
    e = np.right_shift(poly, np.minimum(z, consts.z_cap) + consts.exp_shift)
    first: dict[int, int] = {}
    for i, v in enumerate(e.tolist()):
        first.setdefault(v, i)
    rest = (1 << 16) - int(e[0])
    tie = 1 << (consts.out_shift - 14 - 1)           # e * 2**14 on a tie of >> out_shift
    for a, ia in first.items():
        b = rest - a
        if a and b and b in first and a % (2 * tie) == tie:
            row = [0, -ia, -first[b]] + [-first[0]] * (n - 3)
            return consts, np.array(row, dtype=np.int64)
    raise AssertionError("no exponentials sum to 2**16 with a rounding tie at this scale")
