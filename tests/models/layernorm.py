"""Model of the LayerNorm unit for every testbench: codec, golden, timing, stimuli, coverage.

Used by tests/rtl/test_layernorm.py (Amaranth simulator) and tests/cocotb/tb_layernorm.py
(exported Verilog); nothing here depends on an HDL simulator. The codec is rtl.layernorm's,
golden ``golden.layernorm.layernorm_int``, the cycles the simulator's
``sim.units.layernorm.layernorm_cycles`` (built on ``edgetron.hw.layernorm``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgetron.golden.intops import round_shift
from edgetron.golden.layernorm import (
    ISQRT_BITS,
    NORM_FRAC_BITS,
    RECIP_K,
    bit_length,
    isqrt,
    layernorm_constants,
    layernorm_int,
)
from edgetron.hw.layernorm import layernorm_row_latency
from edgetron.rtl.layernorm import (
    decode_layernorm,
    decode_layernorm_input,
    encode_layernorm,
    encode_layernorm_consts,
    layernorm_layouts,
)
from edgetron.sim.units.layernorm import layernorm_cycles

from .vector import Segment, VectorModel

__all__ = ["KINDS", "LayerNormModel", "divider_tie_segment"]

#: Stimulus kinds: random, variance 0 (all equal, no epsilon), the largest variance (half
#: the input minimum, half the maximum), all minimum, all maximum, one non-zero channel,
#: gammas at the limit (saturating outputs), a variance that is a power of 4 (the square
#: root's smallest normalized operand, 2**30, and the divider's smallest divisor, 2**15).
KINDS = ("random", "equal", "largest", "min", "max", "one", "extreme_gamma", "pow4")
#: The normalized variance of the largest-variance rows (``(255 C / 2)**2`` normalized):
#: the square root's top operands.
_TOP_DN = (255 * 255) << 16
_TOP_STD = 255 * 256


class LayerNormModel(VectorModel):
    """The LayerNorm unit with ``lanes`` lanes, rows of up to ``row_max`` ``in_bits`` inputs."""

    name = "layernorm"
    inputs = ("c", "p", "i")
    COVER: ClassVar[dict[str, tuple]] = {
        # C = 2 (the fewest), a partial last beat, whole beats, the longest row
        "row_length": ("2", "partial_beat", "whole_beats", "row_max"),
        # the output saturation engaged (a result outside int8)
        "saturation": ("clamped", "not_clamped"),
        # the square root's operand Dn (0, or normalized to [2**30, 2**32)): 0 (variance
        # 0), 2**30 (the smallest), at least (255*255) << 16 (largest-variance rows), other
        "sqrt_operand": ("zero", "min", "top", "other"),
        # the divider's divisor std = isqrt(Dn): 0, 2**15, at least 255*256, other
        "divider_operand": ("zero", "min", "top", "other"),
    }

    def __init__(self, lanes: int, row_max: int, in_bits: int = 8):
        self.lanes, self.row_max, self.in_bits = lanes, row_max, in_bits
        self.layouts = layernorm_layouts(lanes, row_max, in_bits)

    # ---- codec, golden, timing ------------------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        words = encode_layernorm_consts(self, seg.consts)
        return {"c": words[:1], "p": words[1:]}

    def in_words(self, seg: Segment) -> list[int]:
        return encode_layernorm(self, seg.data[0])

    def decode_inputs(self, seg: Segment, words) -> tuple:
        return (decode_layernorm_input(self, words, *seg.data[0].shape),)

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        return layernorm_int(data[0], seg.consts)

    def decode(self, seg: Segment, words) -> np.ndarray:
        return decode_layernorm(self, words, *seg.data[0].shape)

    def cycles(self, seg: Segment) -> int:
        return int(layernorm_cycles(self.sim_params, *seg.data[0].shape))

    def latency(self) -> int:
        return int(layernorm_row_latency(self.lanes, self.row_max))

    # ---- coverage --------------------------------------------------------------------------
    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        x, c = data[0], seg.consts
        ch = x.shape[1]
        s1 = x.sum(axis=1, keepdims=True)
        var = ch * (x * x).sum(axis=1, keepdims=True) - s1 * s1 + c.q_eps
        p = (ISQRT_BITS - bit_length(var)) // 2
        dn = np.where(p >= 0, np.left_shift(var, 2 * np.maximum(p, 0)),
                      np.right_shift(var, 2 * np.maximum(-p, 0)))
        std = isqrt(dn)
        factor = np.where(std > 0, (1 << RECIP_K) // np.maximum(std, 1), 0)
        norm = round_shift((ch * x - s1) * factor, RECIP_K - p - NORM_FRAC_BITS)
        raw = round_shift(norm * c.gamma_int + c.beta_int, c.gamma_shift + NORM_FRAC_BITS)
        out = []
        for r in range(x.shape[0]):
            length = ("2" if ch == 2 else "row_max" if ch == self.row_max
                      else "partial_beat" if ch % self.lanes else "whole_beats")
            d, s = int(dn[r, 0]), int(std[r, 0])
            out.append({
                "row_length": length,
                "saturation": ("clamped" if raw[r].max() > 127 or raw[r].min() < -128
                               else "not_clamped"),
                "sqrt_operand": ("zero" if d == 0 else "min" if d == 1 << 30
                                 else "top" if d >= _TOP_DN else "other"),
                "divider_operand": ("zero" if s == 0 else "min" if s == 1 << 15
                                    else "top" if s >= _TOP_STD else "other"),
            })
        return out

    # ---- stimuli ---------------------------------------------------------------------------
    def consts(self, rng, c: int, kind: str):
        """Golden's constants for ``c`` channels: random affine, scales and epsilon; no
        epsilon for the kinds whose variance must be exact, gammas at the limit for
        ``extreme_gamma``."""
        gamma = rng.normal(1.0, 0.5, c)
        beta = rng.normal(0.0, 0.5, c)
        in_scale = float(2.0 ** rng.uniform(-8, 0))
        out_scale = float(np.abs(gamma).max() / 2000 * 2.0 ** rng.uniform(0, 8))
        exact = ("equal", "pow4", "largest", "extreme_gamma")    # D exactly the rows'
        eps = 0.0 if kind in exact else float(rng.choice([1e-6, 1e-2, 0.0]))
        if kind == "extreme_gamma":
            gamma = np.where(rng.random(c) < 0.5, -1.0, 1.0) * 16383 * out_scale * 0.999
        return layernorm_constants(gamma, beta, in_scale, out_scale, eps, self.in_bits)

    def rows(self, rng, kind: str, count: int, c: int) -> np.ndarray:
        """``count`` rows of ``c`` inputs of ``kind`` (:data:`KINDS`)."""
        lo, hi = -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        if kind == "equal":
            return np.full((count, c), int(rng.integers(lo, hi, endpoint=True)))
        if kind == "largest":
            q = np.full((count, c), lo)
            q[:, ::2] = hi
            return q
        if kind == "min":
            return np.full((count, c), lo)
        if kind == "max":
            return np.full((count, c), hi)
        if kind == "one":
            q = np.zeros((count, c), np.int64)
            q[:, int(rng.integers(0, c))] = hi
            return q
        if kind == "pow4":
            # half the channels 0, half v (c a power of 2): D = (c v / 2)**2, a power of 4
            q = np.zeros((count, c), np.int64)
            q[:, ::2] = min(2, hi)
            return q
        return rng.integers(lo, hi, (count, c), endpoint=True)

    def length(self, rng, kind: str) -> int:
        """A row length, the extremes weighted (2, lanes, lanes + 1, row_max, random);
        ``pow4`` and ``largest`` rows use even powers of two (an exact power of 4)."""
        if kind in ("pow4", "largest"):
            pows = [1 << k for k in range(1, self.row_max.bit_length())]
            return int(rng.choice(pows))
        choices = [2, self.lanes, self.lanes + 1, self.row_max,
                   int(rng.integers(2, self.row_max + 1)), int(rng.integers(2, self.row_max + 1))]
        return min(max(int(rng.choice(choices)), 2), self.row_max)

    def segment(self, rng, kind: str, rows: int, c: int) -> Segment:
        return Segment(kind, self.consts(rng, c, kind), (self.rows(rng, kind, rows, c),))

    def random_segments(self, rng, rows: int, max_rows: int = 10) -> list[Segment]:
        """Segments of ``rows`` rows in all, kinds in turn, lengths with the extremes
        weighted, up to ``max_rows`` rows per segment."""
        segs, total = [], 0
        while total < rows:
            kind = KINDS[len(segs) % len(KINDS)]
            r = min(int(rng.integers(1, max_rows + 1)), rows - total)
            segs.append(self.segment(rng, kind, r, self.length(rng, kind)))
            total += r
        return segs

    def coverage_segments(self, rng) -> list[Segment]:
        """Short segments that hit every coverage bin: C = 2 (a power-of-4 variance),
        the longest row at variance 0, largest-variance rows with saturating gammas."""
        segs = [self.segment(rng, "pow4", 1, 2), self.segment(rng, "equal", 1, self.row_max)]
        c = 2 * (self.row_max // 2)
        segs.append(Segment("largest", self.consts(rng, c, "extreme_gamma"),
                            (self.rows(rng, "largest", 2, c),)))
        if self.row_max >= 3 and self.in_bits >= 2:
            segs.append(divider_tie_segment(self.in_bits))
        return segs

    def full_rate_segments(self, rng) -> list[Segment]:
        """Every row length class and row count the cycle check measures."""
        shapes = [(1, 2), (3, 2), (2, self.lanes + 1), (3, self.row_max), (1, self.row_max),
                  (2, min(self.row_max, 10 * self.lanes)), (5, min(self.row_max, 197))]
        return [self.segment(rng, "random", r, max(2, min(c, self.row_max))) for r, c in shapes]


def divider_tie_segment(in_bits: int) -> Segment:
    """Rows of 3 channels whose ``D`` is exactly ``2**26`` (variance 2 plus an epsilon of
    ``2**26 - 2`` at scale 1): ``Dn = 2**30``, ``std = 2**15`` (the square root's and the
    divider's smallest operands, both exact), ``factor = 2**16``, the shift ``31 - p - 12 =
    17``, so the deviation ``dev = 1`` lands exactly on the rounding tie ``0.5``; gammas at
    the limit carry a one-unit change of the normalized value to the output. A reciprocal
    one too small (a divider digit missed at ``x == d``) changes it."""
    c = 3
    eps = ((1 << 26) - 2) / c**2
    consts = layernorm_constants(np.full(c, 16383 * 0.999), np.zeros(c), 1.0, 1.0, eps, in_bits)
    return Segment("divider_tie", consts, (np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]),))
