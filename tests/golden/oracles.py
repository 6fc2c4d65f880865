"""Helpers shared by the golden tests: random int8 tensors and exact big-int / rational oracles.

The oracles use Python ints and :class:`fractions.Fraction` only, never the kernels under test.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX

__all__ = ["K_MAX", "half_up", "int8", "requant_oracle"]

#: Longest reduction the int32 accumulator allows with no bias: K * 2**14 <= 2**31 - 1.
K_MAX = INT32_MAX // (INT8_MIN * INT8_MIN)


def int8(rng: np.random.Generator, shape) -> np.ndarray:
    """Random ``np.int8`` values of ``shape``, the first and last element the two extremes."""
    v = rng.integers(INT8_MIN, INT8_MAX + 1, size=shape, dtype=np.int64)
    flat = v.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = INT8_MIN, INT8_MAX
    return v.astype(np.int8)


def half_up(num, den=1) -> int:
    """``floor(num / den + 1/2)`` in exact rationals (``num`` an int or a Fraction)."""
    return math.floor(Fraction(num, den) + Fraction(1, 2))


def requant_oracle(acc: int, m: int, s: int, bits: int = 8) -> int:
    """Exact rational round-half-up of ``acc * m / 2**s``, clamped to the signed ``bits`` range."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return min(hi, max(lo, half_up(acc * m, 2**s)))
