"""Residual add at two scales against exact rational oracles."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgetron.golden.add import (
    RESIDUAL_PRODUCT_BITS,
    RESIDUAL_SUM_BITS,
    ResidualConstants,
    residual_add,
    residual_constants,
)
from edgetron.golden.dyadic import dyadic
from edgetron.golden.intops import INT8_MAX, INT8_MIN, M_MAX, S_MAX, S_MIN, int_range

FAST = settings(deadline=None, max_examples=200)

int8_st = st.integers(INT8_MIN, INT8_MAX)
scale_st = st.floats(min_value=1e-3, max_value=1.0)


def clamp8(v: int) -> int:
    return min(INT8_MAX, max(INT8_MIN, v))


def oracle(a: int, b: int, m_a: int, m_b: int, s: int) -> int:
    """Exact rational round-half-up of (a m_a + b m_b) / 2**s, clamped to int8."""
    return clamp8(math.floor(Fraction(a * m_a + b * m_b, 2**s) + Fraction(1, 2)))


@FAST
@given(
    st.lists(st.tuples(int8_st, int8_st), min_size=1, max_size=16),
    st.integers(0, M_MAX), st.integers(0, M_MAX), st.integers(S_MIN, S_MAX),
)
@example([(INT8_MIN, INT8_MIN), (INT8_MAX, INT8_MAX)], M_MAX, M_MAX, S_MIN)
@example([(INT8_MIN, INT8_MIN), (INT8_MAX, INT8_MAX)], M_MAX, M_MAX, S_MAX)
@example([(INT8_MIN, INT8_MAX), (-1, 0), (1, 0)], 1, 1, 1)
def test_residual_add_matches_integer_oracle(pairs, m_a, m_b, s):
    a = np.array([p[0] for p in pairs], dtype=np.int8)
    b = np.array([p[1] for p in pairs], dtype=np.int8)
    got = residual_add(a, b, m_a, m_b, s)
    assert got.dtype == np.int64
    assert got.tolist() == [oracle(x, y, m_a, m_b, s) for x, y in pairs]


@FAST
@given(scale_st, scale_st, scale_st, st.lists(st.tuples(int8_st, int8_st), min_size=1,
                                               max_size=16))
@example(0.02, 0.02, 0.02, [(INT8_MAX, INT8_MAX), (INT8_MIN, INT8_MIN)])
def test_residual_add_follows_the_real_formula(sa, sb, sy, pairs):
    m_a, m_b, s = residual_constants(sa, sb, sy)
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    got = residual_add(a, b, m_a, m_b, s).tolist()
    for (x, y), q in zip(pairs, got, strict=True):
        real = (Fraction(x) * Fraction(sa) + Fraction(y) * Fraction(sb)) / Fraction(sy)
        if real > INT8_MAX + Fraction(1, 2):
            assert q == INT8_MAX
        elif real < INT8_MIN - Fraction(1, 2):
            assert q == INT8_MIN
        else:
            # One rounding; both dyadic errors together move the sum by <= 128 * 2**-s.
            assert abs(q - real) <= Fraction(1, 2) + Fraction(128, 2**s)


@FAST
@given(scale_st, scale_st, scale_st)
def test_residual_constants_share_the_most_precise_shift(sa, sb, sy):
    c = residual_constants(sa, sb, sy)
    assert isinstance(c, ResidualConstants)
    ma_exact = Fraction(sa) / Fraction(sy)
    mb_exact = Fraction(sb) / Fraction(sy)
    assert c.s == min(dyadic(ma_exact)[1], dyadic(mb_exact)[1])
    for m, exact in ((c.m_a, ma_exact), (c.m_b, mb_exact)):
        assert 1 <= m <= M_MAX
        assert abs(Fraction(m, 2**c.s) - exact) <= Fraction(1, 2 ** (c.s + 1))
    # The larger multiplier uses (nearly) all 31 bits.
    assert max(c.m_a, c.m_b) >= 2 ** (M_MAX.bit_length() - 1)


def test_equal_scales_add_exactly():
    a = np.arange(-64, 64)
    b = np.arange(63, -65, -1)
    m_a, m_b, s = residual_constants(0.05, 0.05, 0.05)
    assert Fraction(m_a, 2**s) == 1 and m_a == m_b
    assert residual_add(a, b, m_a, m_b, s).tolist() == (a + b).tolist()


def test_residual_add_saturates_both_ends():
    c = residual_constants(0.1, 0.1, 0.1)
    x = np.array([INT8_MAX, INT8_MIN, INT8_MAX, 100])
    y = np.array([INT8_MAX, INT8_MIN, INT8_MIN, 27])
    assert residual_add(x, y, *c).tolist() == [INT8_MAX, INT8_MIN, -1, INT8_MAX]
    # Largest multipliers and smallest shift: every non-zero sum saturates.
    assert residual_add(x, y, M_MAX, M_MAX, S_MIN).tolist() == [INT8_MAX, INT8_MIN, INT8_MIN,
                                                                 INT8_MAX]


def test_declared_widths_are_minimal_and_sufficient():
    # The extremes of a * m and a * m_a + b * m_b fit the declared widths, and not one bit less.
    for bits, lo, hi in (
        (RESIDUAL_PRODUCT_BITS, INT8_MIN * M_MAX, INT8_MAX * M_MAX),
        (RESIDUAL_SUM_BITS, 2 * INT8_MIN * M_MAX, 2 * INT8_MAX * M_MAX),
    ):
        wlo, whi = int_range(bits)
        nlo, nhi = int_range(bits - 1)
        assert wlo <= lo and hi <= whi
        assert lo < nlo or hi > nhi
    # The rounding addition stays inside int64 for every shift.
    assert 2 * INT8_MIN * M_MAX - 2 ** (S_MAX - 1) >= -(2**63)
    assert 2 * INT8_MAX * M_MAX + 2 ** (S_MAX - 1) < 2**63


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (([1, 2], [1, 2, 3], 1, 1, 1), ValueError, r"shape mismatch: a is \(2,\) but b is \(3,\)"),
        (([1.0], [1], 1, 1, 1), TypeError, "a must hold integers, got dtype float64"),
        (([1], [True], 1, 1, 1), TypeError, "b must hold integers, got dtype bool"),
        (([128], [0], 1, 1, 1), ValueError, r"a must lie in \[-128, 127\]"),
        (([0], [-129], 1, 1, 1), ValueError, r"b must lie in \[-128, 127\]"),
        (([0], [0], [1, 2], 1, 1), ValueError, r"m_a must be a scalar \(per-tensor scales\)"),
        (([0], [0], 1, M_MAX + 1, 1), ValueError, r"m_b must lie in \[0, 2147483647\]"),
        (([0], [0], -1, 1, 1), ValueError, r"m_a must lie in \[0, 2147483647\]"),
        (([0], [0], 1, 1, 0), ValueError, r"s must lie in \[1, 62\]"),
        (([0], [0], 1, 1, 63), ValueError, r"s must lie in \[1, 62\]"),
        (([0], [0], 1, 1, 1.0), TypeError, "s must hold integers"),
    ],
)
def test_residual_add_rejects_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        residual_add(*args)


@pytest.mark.parametrize(
    ("scales", "exc", "match"),
    [
        ((0.0, 0.1, 0.1), ValueError, "scale_a must be positive"),
        ((0.1, float("nan"), 0.1), ValueError, "scale_b must be finite"),
        ((0.1, 0.1, -1.0), ValueError, "scale_out must be positive"),
        ((0.1, "0.1", 0.1), TypeError, "scale_b must be a real number"),
        ((2.0**31, 0.1, 1.0), ValueError,
         r"residual input a \(S_a / S_y\): multiplier .* too large"),
        ((1.0, 2.0**-70, 1.0), ValueError,
         r"residual input b \(S_b / S_y\): multiplier .* too small"),
        # b alone is representable, but at the shift a needs it would round to m = 0.
        ((1.0, 2.0**-40, 1.0), ValueError,
         r"residual input b \(S_b / S_y\) at the shared shift: .* rounds to m = 0"),
    ],
)
def test_residual_constants_reject_bad_scales(scales, exc, match):
    with pytest.raises(exc, match=match):
        residual_constants(*scales)
