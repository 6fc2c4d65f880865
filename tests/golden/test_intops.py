"""intops against exact big-int / rational oracles (Python ints and Fractions)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
    check_signed,
    check_unsigned,
    int_param,
    int_range,
    pow2_rescale,
    pow2_rescale_limit,
    requantize,
    round_shift,
    saturate,
    signed_bits,
    wrap,
)

from .oracles import requant_oracle

FAST = settings(deadline=None, max_examples=300)

acc_st = st.integers(INT32_MIN, INT32_MAX)
m_st = st.integers(0, M_MAX)
s_st = st.integers(S_MIN, S_MAX)


# ---- requantize ------------------------------------------------------------------------
@FAST
@given(acc=acc_st, m=m_st, s=s_st)
@example(acc=INT32_MIN, m=M_MAX, s=S_MIN)
@example(acc=INT32_MIN, m=M_MAX, s=S_MAX)
@example(acc=INT32_MAX, m=M_MAX, s=S_MIN)
@example(acc=INT32_MAX, m=M_MAX, s=S_MAX)
@example(acc=INT32_MIN, m=1, s=S_MAX)
@example(acc=INT32_MAX, m=1, s=S_MIN)
@example(acc=INT32_MIN, m=0, s=S_MIN)
@example(acc=-1, m=1, s=1)  # -0.5 rounds half up to 0
@example(acc=1, m=1, s=1)  # +0.5 rounds half up to 1
@example(acc=-3, m=1, s=1)  # -1.5 -> -1
def test_requantize_matches_rational_oracle(acc, m, s):
    assert int(requantize(acc, m, s)) == requant_oracle(acc, m, s)


@st.composite
def unsaturated(draw):
    """(acc, m, s) whose exact result lies near [-128, 127], so rounding is exercised."""
    s = draw(s_st)
    m = draw(st.integers(1, M_MAX))
    target = draw(st.integers(2 * INT8_MIN, 2 * INT8_MAX))
    centre = (target << s) // m
    acc = centre + draw(st.integers(-4, 4))
    return min(INT32_MAX, max(INT32_MIN, acc)), m, s


@FAST
@given(unsaturated())
def test_requantize_rounding_region(case):
    acc, m, s = case
    assert int(requantize(acc, m, s)) == requant_oracle(acc, m, s)


@FAST
@given(
    data=st.data(),
    n=st.integers(1, 6),
    c=st.integers(1, 5),
)
def test_requantize_per_channel_vectors(data, n, c):
    accs = data.draw(st.lists(st.lists(acc_st, min_size=c, max_size=c), min_size=n, max_size=n))
    ms = data.draw(st.lists(m_st, min_size=c, max_size=c))
    ss = data.draw(st.lists(s_st, min_size=c, max_size=c))
    got = requantize(np.array(accs, dtype=np.int64), np.array(ms), np.array(ss))
    want = [[requant_oracle(a, ms[j], ss[j]) for j, a in enumerate(row)] for row in accs]
    assert got.dtype == np.int64
    assert got.tolist() == want


def test_requantize_saturates_both_ends():
    # m = 2**31 - 1, s = 1 multiplies by about 2**30: every non-zero int32 saturates.
    acc = np.array([INT32_MIN, -1, 0, 1, INT32_MAX])
    assert requantize(acc, M_MAX, S_MIN).tolist() == [INT8_MIN, INT8_MIN, 0, INT8_MAX, INT8_MAX]
    # With the largest shift, acc * m / 2**62 = +-(1 - 2**-31) at the int32 extremes.
    assert requantize(acc, M_MAX, S_MAX).tolist() == [-1, 0, 0, 0, 1]
    # Wider outputs saturate at their own limits.
    assert requantize(acc, M_MAX, S_MIN, bits=16).tolist() == [-(2**15), -(2**15), 0, 2**15 - 1,
                                                                2**15 - 1]


def test_requantize_product_fits_int64_at_extremes():
    # |acc * m| <= 2**31 * (2**31 - 1) < 2**62: no int64 overflow, result exact.
    for acc in (INT32_MIN, INT32_MAX):
        for s in range(S_MIN, S_MAX + 1):
            assert int(requantize(acc, M_MAX, s, bits=63)) == requant_oracle(acc, M_MAX, s, 63)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"acc": 1.5, "mult": 1, "shift": 1}, TypeError, "acc must hold integers"),
        ({"acc": np.array([True]), "mult": 1, "shift": 1}, TypeError, "acc must hold integers"),
        ({"acc": 1, "mult": 1.0, "shift": 1}, TypeError, "mult must hold integers"),
        ({"acc": 1, "mult": 1, "shift": np.float32(1)}, TypeError, "shift must hold integers"),
        ({"acc": INT32_MAX + 1, "mult": 1, "shift": 1}, ValueError,
         r"acc must lie in \[-2147483648"),
        ({"acc": INT32_MIN - 1, "mult": 1, "shift": 1}, ValueError, r"acc must lie in"),
        ({"acc": 1, "mult": M_MAX + 1, "shift": 1}, ValueError,
         r"mult must lie in \[0, 2147483647\]"),
        ({"acc": 1, "mult": -1, "shift": 1}, ValueError, r"mult must lie in \[0, 2147483647\]"),
        ({"acc": 1, "mult": 1, "shift": 0}, ValueError, r"shift must lie in \[1, 62\]"),
        ({"acc": 1, "mult": 1, "shift": 63}, ValueError, r"shift must lie in \[1, 62\]"),
        ({"acc": 1, "mult": 1, "shift": 1, "bits": 0}, ValueError, r"bits must be an integer in"),
        ({"acc": 1, "mult": 1, "shift": 1, "bits": 64}, ValueError,
         r"bits must be an integer in"),
    ],
)
def test_requantize_rejects_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        requantize(**kwargs)


# ---- round_shift, saturate, wrap --------------------------------------------------------
@FAST
@given(x=st.integers(-(2**62), 2**62 - 1), s=st.integers(0, 62))
@example(x=-(2**62), s=62)
@example(x=2**62 - 1, s=62)
@example(x=-(2**62), s=0)
@example(x=-5, s=1)
@example(x=5, s=1)
def test_round_shift_is_round_half_up(x, s):
    assert int(round_shift(x, s)) == math.floor(Fraction(x, 2**s) + Fraction(1, 2))


def test_round_shift_ties_go_up():
    s = 3
    ties = np.array([-12, -4, 4, 12])  # -1.5, -0.5, 0.5, 1.5 times 2**3
    assert round_shift(ties, s).tolist() == [-1, 0, 1, 2]


@pytest.mark.parametrize(
    ("x", "s", "match"),
    [
        (2**62, 1, r"x must lie in"),
        (-(2**62) - 1, 1, r"x must lie in"),
        (1, -1, r"s must lie in \[0, 62\]"),
        (1, 63, r"s must lie in \[0, 62\]"),
    ],
)
def test_round_shift_rejects_out_of_range(x, s, match):
    with pytest.raises(ValueError, match=match):
        round_shift(x, s)


@FAST
@given(x=st.integers(-(2**63), 2**63 - 1), bits=st.integers(1, 63))
@example(x=-(2**63), bits=8)
@example(x=2**63 - 1, bits=63)
def test_wrap_is_twos_complement(x, bits):
    lo = -(2 ** (bits - 1))
    assert int(wrap(x, bits)) == (x - lo) % 2**bits + lo


@FAST
@given(x=st.integers(-(2**63), 2**63 - 1), bits=st.integers(1, 63))
def test_saturate_clamps(x, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert int(saturate(x, bits)) == min(hi, max(lo, x))


def test_saturate_and_wrap_differ_past_the_range():
    x = np.array([INT8_MIN - 1, INT8_MIN, INT8_MAX, INT8_MAX + 1])
    assert saturate(x, 8).tolist() == [INT8_MIN, INT8_MIN, INT8_MAX, INT8_MAX]
    assert wrap(x, 8).tolist() == [INT8_MAX, INT8_MIN, INT8_MAX, INT8_MIN]


@pytest.mark.parametrize("bits", [1, 8, 32, 63])
def test_int_range(bits):
    lo, hi = int_range(bits)
    assert (lo, hi) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@pytest.mark.parametrize("bits", [0, 64, True, 8.0, "8"])
def test_int_range_rejects_bad_width(bits):
    with pytest.raises(ValueError, match="bits must be an integer in"):
        int_range(bits)


def test_as_int64_accepts_integer_dtypes_and_rejects_others():
    for dt in (np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64):
        assert as_int64(np.array([1, 2], dtype=dt)).dtype == np.int64
    with pytest.raises(TypeError, match="q must hold integers, got dtype float64"):
        as_int64(np.zeros(2), "q")
    with pytest.raises(TypeError, match="q must hold integers, got dtype bool"):
        as_int64(np.zeros(2, dtype=bool), "q")
    with pytest.raises(ValueError, match="q has values above the int64 range"):
        as_int64(np.array([2**63], dtype=np.uint64), "q")


def test_check_range_names_the_tensor_and_range():
    check_range(np.array([], dtype=np.int64), 0, 1, "empty")
    with pytest.raises(ValueError, match=r"acc must lie in \[-3, 3\], got values in \[-4, 2\]"):
        check_range(np.array([-4, 2]), -3, 3, "acc")


@FAST
@given(x=st.integers(0, 2**40), f=st.integers(-30, 20), clamp=st.integers(1, 2**24))
@example(x=3, f=-1, clamp=10)  # 1.5 rounds half up to 2
@example(x=2**40, f=-30, clamp=1024)
def test_pow2_rescale_and_its_clamp_limit(x, f, clamp):
    want = x << f if f >= 0 else math.floor(Fraction(x, 2**-f) + Fraction(1, 2))
    assert int(pow2_rescale(x, f)) == want
    # Clamping the input at the limit first never changes the clamped result.
    limit = pow2_rescale_limit(clamp, f)
    assert int(pow2_rescale(limit, f)) >= clamp
    assert min(int(pow2_rescale(min(x, limit), f)), clamp) == min(want, clamp)


def test_width_checks_and_signed_bits():
    check_signed(np.array([-128, 127]), 8, "y")
    check_unsigned(np.array([0, 255]), 8, "u")
    with pytest.raises(ValueError, match=r"y must lie in \[-128, 127\], got values in \[-129"):
        check_signed(np.array([-129, 0]), 8, "y")
    with pytest.raises(ValueError, match=r"u must lie in \[0, 255\]"):
        check_unsigned(np.array([-1]), 8, "u")
    for lo, hi in [(-128, 127), (-129, 127), (-128, 128), (-1, 1), (-(2**38), 2**38 - 1)]:
        bits = signed_bits(lo, hi)
        lo_b, hi_b = int_range(bits)
        assert lo_b <= lo and hi <= hi_b  # fits ...
        lo_s, hi_s = int_range(bits - 1)
        assert lo < lo_s or hi > hi_s  # ... and one bit fewer does not


def test_int_param():
    assert int_param(np.int16(8), "in_bits", 2, 32) == 8
    with pytest.raises(TypeError, match="in_bits must be an integer, got bool"):
        int_param(True, "in_bits", 2, 32)
    with pytest.raises(TypeError, match="in_bits must be an integer, got float"):
        int_param(8.0, "in_bits", 2, 32)
    with pytest.raises(ValueError, match=r"in_bits must lie in \[2, 32\], got 33"):
        int_param(33, "in_bits", 2, 32)


def test_pow2_rescale_extremes_fit_int64_or_raise():
    top = (1 << 63) - 1
    # Left shifts up to f = 62 are exact while x * 2**f fits int64, at both ends ...
    assert int(pow2_rescale(1, S_MAX)) == 1 << 62
    assert int(pow2_rescale(-2, S_MAX)) == -(1 << 63)
    assert int(pow2_rescale(top, 0)) == top
    assert int(pow2_rescale(top >> 30, 30)) == (top >> 30) << 30
    # ... and rejected, never wrapped, one step beyond (2**40 << 30 used to wrap to 0).
    for x, f in [(2**40, 30), (2, S_MAX), (-3, S_MAX), ((top >> 30) + 1, 30)]:
        with pytest.raises(ValueError, match=rf"x \(x << {f} must fit int64\) must lie in"):
            pow2_rescale(x, f)
    # Right shifts down to f = -62 round half up; x must leave room for the rounding constant.
    assert int(pow2_rescale((1 << 62) - 1, -S_MAX)) == 1
    assert int(pow2_rescale(1 << 61, -S_MAX)) == 1 and int(pow2_rescale((1 << 61) - 1, -S_MAX)) == 0
    with pytest.raises(ValueError, match=r"x must lie in \[-4611686018427387904"):
        pow2_rescale(1 << 62, -1)


@pytest.mark.parametrize(
    ("f", "exc", "match"),
    [
        (64, ValueError, r"f must lie in \[-62, 62\], got 64"),
        (63, ValueError, r"f must lie in \[-62, 62\], got 63"),
        (-63, ValueError, r"f must lie in \[-62, 62\], got -63"),
        (1.5, TypeError, "f must be an integer, got float"),
        (np.float64(2.0), TypeError, "f must be an integer, got float64"),
        (True, TypeError, "f must be an integer, got bool"),
    ],
)
def test_pow2_rescale_and_limit_reject_bad_exponents(f, exc, match):
    with pytest.raises(exc, match=match):
        pow2_rescale(3, f)
    with pytest.raises(exc, match=match):
        pow2_rescale_limit(3, f)


def test_pow2_rescale_accepts_numpy_integer_exponents():
    assert int(pow2_rescale(3, np.int64(4))) == 48 and int(pow2_rescale(3, np.int8(-1))) == 2
    assert pow2_rescale_limit(np.int64(10), np.int32(2)) == 3
    with pytest.raises(ValueError, match=r"limit must lie in \[0, "):
        pow2_rescale_limit(-1, 2)
    with pytest.raises(TypeError, match="limit must be an integer, got float"):
        pow2_rescale_limit(10.0, 2)


def test_signed_bits_validates_its_range():
    assert signed_bits(np.int64(-128), 127) == 8 and signed_bits(0, 0) == 1
    assert signed_bits(5, 10) == 5 and signed_bits(-10, -5) == 5
    with pytest.raises(ValueError, match="signed_bits needs lo <= hi, got lo=3, hi=2"):
        signed_bits(3, 2)
    with pytest.raises(TypeError, match="hi must be an integer, got float"):
        signed_bits(-1, 1.0)


def test_requantize_and_round_shift_name_shapes_that_do_not_broadcast():
    acc = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=r"shapes do not broadcast together: acc \(2, 3\), "
                                         r"mult \(4,\), shift \(\)"):
        requantize(acc, np.ones(4, dtype=np.int64), 3)
    with pytest.raises(ValueError, match=r"shapes do not broadcast together: x \(2, 3\), "
                                         r"s \(2,\)"):
        round_shift(acc, np.ones(2, dtype=np.int64))
