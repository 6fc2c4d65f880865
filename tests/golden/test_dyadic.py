"""Exact constants from real scales (golden/dyadic.py) against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edgetron.golden import dyadic as dyadic_module
from edgetron.golden import quant
from edgetron.golden.dyadic import (
    dyadic,
    dyadic_per_channel,
    exact_positive,
    exact_ratio,
    internal_shift,
    positive_scale,
    real_scalar,
    requant_constants,
    round_half_up,
)
from edgetron.golden.intops import INT8_MAX, INT8_MIN, M_MAX, S_MAX, S_MIN, requantize

from .oracles import half_up

FAST = settings(deadline=None, max_examples=300)

#: Representable multipliers: [2**-63, 2**30 - 1/4).
M_SMALLEST = 2.0 ** -(S_MAX + 1)
M_LARGEST = float(Fraction(M_MAX, 2**S_MIN) + Fraction(1, 2**(S_MIN + 1)))  # exclusive
#: Below this the shift is capped at 62 and m has fewer than 31 bits.
M_NORMAL = 2.0 ** -(S_MAX - M_MAX.bit_length() + 1)


multiplier_st = st.floats(min_value=M_SMALLEST, max_value=M_LARGEST, exclude_max=True)


# ---- dyadic ---------------------------------------------------------------------------
@FAST
@given(multiplier_st)
@example(M_SMALLEST)
@example(np.nextafter(M_LARGEST, 0))
@example(M_NORMAL)
@example(1.0)
@example(1.0 - 2.0**-33)  # rounding carries into bit 31
@example(0.1)
def test_dyadic_is_the_best_representation(mult):
    m, s = dyadic(mult)
    exact = Fraction(mult)
    assert 1 <= m <= M_MAX and S_MIN <= s <= S_MAX
    assert isinstance(m, int) and isinstance(s, int)
    assert m == half_up(exact * 2**s)  # round half up at the chosen shift
    assert abs(Fraction(m, 2**s) - exact) <= Fraction(1, 2 ** (s + 1))
    # Maximal precision: one more bit of shift would overflow m, or s is already 62.
    assert s == S_MAX or half_up(exact * 2 ** (s + 1)) > M_MAX
    if mult >= M_NORMAL:
        assert m >= 2 ** (M_MAX.bit_length() - 1)
        assert abs(Fraction(m, 2**s) - exact) / exact <= Fraction(1, M_MAX)


@pytest.mark.parametrize("e", [-62, -40, -1, 0, 1, 29])
def test_dyadic_powers_of_two_are_exact(e):
    m, s = dyadic(2.0**e)
    assert Fraction(m, 2**s) == Fraction(2) ** e


def test_dyadic_range_ends():
    assert dyadic(M_SMALLEST) == (1, S_MAX)
    assert dyadic(np.nextafter(M_LARGEST, 0)) == (M_MAX, S_MIN)
    assert dyadic(1.0 - 2.0**-33) == (2**30, 30)  # carry: m = 2**31 at s = 31 is not allowed
    assert dyadic(Fraction(3, 4)) == dyadic(0.75) == dyadic(np.float32(0.75))
    assert dyadic(np.int64(5)) == dyadic(5)


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [
        (0.0, ValueError, "multiplier must be positive"),
        (-0.5, ValueError, "multiplier must be positive"),
        (float("nan"), ValueError, "multiplier must be finite, got nan"),
        (float("inf"), ValueError, "multiplier must be finite, got inf"),
        (M_LARGEST, ValueError, "multiplier .* is too large"),
        (1e300, ValueError, "multiplier .* is too large"),
        (np.nextafter(M_SMALLEST, 0), ValueError, r"multiplier .* is too small: below 2\*\*-63"),
        (5e-324, ValueError, "is too small"),
        (True, TypeError, "multiplier must be a real number, got bool"),
        ("0.5", TypeError, "multiplier must be a real number, got str"),
        (None, TypeError, "multiplier must be a real number, got NoneType"),
        (1 + 1j, TypeError, "multiplier must be a real number, got complex"),
    ],
)
def test_dyadic_rejects_unrepresentable(value, exc, match):
    with pytest.raises(exc, match=match):
        dyadic(value)


def test_dyadic_with_fixed_shift():
    assert dyadic(0.75, shift=2) == (3, 2)
    assert dyadic(0.7, shift=S_MIN) == (1, 1)  # 1.4 rounds to 1
    assert dyadic(0.75, shift=S_MIN) == (2, 1)  # 1.5 rounds half up to 2
    with pytest.raises(ValueError, match=r"shift s must lie in \[1, 62\], got 0"):
        dyadic(0.5, shift=0)
    with pytest.raises(ValueError, match=r"shift s must lie in \[1, 62\], got 63"):
        dyadic(0.5, shift=63)
    with pytest.raises(TypeError, match="shift must be an integer"):
        dyadic(0.5, shift=True)
    with pytest.raises(ValueError, match="too large for shift s=31: m = 2147483648 exceeds"):
        dyadic(1.0, shift=31)
    with pytest.raises(ValueError, match="too small for shift s=4: it rounds to m = 0"):
        dyadic(0.01, shift=4)


def test_dyadic_per_channel():
    mults = [0.5, 1e-3, 3.25, 2.0**-50]
    ms, ss = dyadic_per_channel(np.array(mults))
    assert ms.dtype == ss.dtype == np.int64
    assert list(zip(ms.tolist(), ss.tolist(), strict=True)) == [dyadic(v) for v in mults]
    ms, ss = dyadic_per_channel(mults[:3], shift=28)
    assert list(zip(ms.tolist(), ss.tolist(), strict=True)) == [dyadic(v, 28) for v in mults[:3]]
    with pytest.raises(ValueError, match=r"channel 3: multiplier .* too small for shift s=28"):
        dyadic_per_channel(mults, shift=28)
    with pytest.raises(ValueError, match="channel 2: multiplier must be positive"):
        dyadic_per_channel([0.5, 0.25, -1.0])
    with pytest.raises(ValueError, match=r"multipliers must be 1-D, got shape \(2, 2\)"):
        dyadic_per_channel(np.ones((2, 2)))
    with pytest.raises(TypeError, match="multipliers must be a 1-D sequence"):
        dyadic_per_channel(0.5)


# ---- requantization constants from real scales ---------------------------------------------
scale_st = st.floats(min_value=1e-4, max_value=1e1)


@FAST
@given(sx=scale_st, sw=scale_st, sy=scale_st, acc=st.integers(-(2**31), 2**31 - 1))
# real = -127.04: below -127 but it rounds to -127, inside int8 (no saturation).
@example(sx=0.32473114625681404, sw=0.04753803944537949, sy=0.1, acc=-823)
def test_requant_constants_follow_the_real_formula(sx, sw, sy, acc):
    mult = Fraction(sx) * Fraction(sw) / Fraction(sy)
    if not Fraction(M_SMALLEST) <= mult < Fraction(M_LARGEST):
        with pytest.raises(ValueError, match="multiplier"):
            requant_constants(sx, sw, sy)
        return
    m, s = requant_constants(sx, sw, sy)
    assert (m, s) == dyadic(mult)
    real = acc * mult
    y = int(requantize(acc, m, s))
    if INT8_MIN <= real <= INT8_MAX:
        # The dyadic error moves the pre-rounding value by less than 2**-23 LSB.
        assert abs(y - real) <= Fraction(1, 2) + Fraction(1, 2**23)
    else:
        assert y == (INT8_MAX if real > 0 else INT8_MIN)


def test_requant_constants_vector_and_errors():
    ms, ss = requant_constants(0.02, np.array([0.01, 0.003]), 0.05)
    for c, sw in enumerate([0.01, 0.003]):
        assert (int(ms[c]), int(ss[c])) == dyadic(Fraction(0.02) * Fraction(sw) / Fraction(0.05))
    with pytest.raises(ValueError, match=r"weight_scales\[1\] must be positive"):
        requant_constants(0.02, [0.01, 0.0], 0.05)
    with pytest.raises(ValueError, match="output_scale must be finite"):
        requant_constants(0.02, 0.01, float("inf"))
    with pytest.raises(TypeError, match="input_scale must be a real number"):
        requant_constants("0.02", 0.01, 0.05)


def test_exact_ratio():
    assert exact_ratio((0.5, 0.25), 0.125) == 1
    assert exact_ratio((0.1,), 0.3) == Fraction(0.1) / Fraction(0.3)
    with pytest.raises(ValueError, match="output scale must be positive"):
        exact_ratio((0.1,), 0)
    with pytest.raises(ValueError, match="names must give 2 labels, got 1"):
        exact_ratio((0.1,), 0.2, ("S_a",))


def test_requant_constants_with_one_output_scale_per_channel():
    sw = np.array([0.01, 0.003, 0.02])
    sy = np.array([0.05, 0.05, 0.2])  # e.g. the Q/K/V column groups of a fused projection
    ms, ss = requant_constants(0.02, sw, sy)
    for c in range(3):
        want = dyadic(Fraction(0.02) * Fraction(sw[c]) / Fraction(sy[c]))
        assert (int(ms[c]), int(ss[c])) == want
    with pytest.raises(ValueError, match="output_scale must have 3 values"):
        requant_constants(0.02, sw, [0.05, 0.05])
    with pytest.raises(ValueError, match="a vector output_scale needs a vector of weight_scales"):
        requant_constants(0.02, 0.01, [0.05, 0.05])
    with pytest.raises(ValueError, match=r"output_scale\[1\] must be positive"):
        requant_constants(0.02, sw, [0.05, -1.0, 0.2])


def test_scalar_checks_name_the_value():
    assert positive_scale(np.float32(0.5)) == 0.5 and real_scalar(-3, "eps") == -3.0
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="scale must be a finite number > 0"):
            positive_scale(bad)
    with pytest.raises(TypeError, match="out_scale must be a real number, got bool"):
        positive_scale(True, "out_scale")
    with pytest.raises(ValueError, match="eps must be finite, got nan"):
        real_scalar(math.nan, "eps")
    with pytest.raises(TypeError, match="eps must be a real number, got str"):
        real_scalar("1", "eps")


@pytest.mark.parametrize("frac_bits", [10, 12])
def test_internal_shift_puts_the_scale_in_one_octave(frac_bits):
    for scale in [4 / 127, 1e-4, 2.0**-frac_bits, 2.0 ** -(frac_bits + 1), 3.7, 1e-9]:
        f = internal_shift(scale, frac_bits)
        s_int = math.ldexp(scale, -f)
        assert 2.0 ** -(frac_bits + 1) < s_int <= 2.0**-frac_bits
    # The supported range is (2**(-63 - F), 2**(30 - F)]: f = -62 and f = 30 at its ends.
    assert internal_shift(2.0**-74.5, 12) == -62 and internal_shift(2.0**18, 12) == 30
    for bad in (2.0**-75, 2.0**-80, np.nextafter(2.0**18, np.inf)):
        with pytest.raises(ValueError,
                           match=r"scale .* outside the supported range \(2\*\*-75, 2\*\*18\]"):
            internal_shift(bad, 12)


def test_scalar_checks_reject_ints_beyond_float64():
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got inf"):
        positive_scale(10**400)
    with pytest.raises(ValueError, match="eps must be finite, got -inf"):
        real_scalar(-(10**400), "eps")


def test_internal_shift_validates_its_arguments():
    # A zero or negative scale used to return a meaningless shift.
    for bad in (0.0, -0.25, math.inf):
        with pytest.raises(ValueError, match="scale must be a finite number > 0"):
            internal_shift(bad, 12)
    with pytest.raises(TypeError, match="scale must be a real number, got str"):
        internal_shift("0.1", 12)
    with pytest.raises(TypeError, match="frac_bits must be an integer, got float"):
        internal_shift(0.1, 12.0)
    with pytest.raises(ValueError, match=r"frac_bits must lie in \[0, 62\], got -1"):
        internal_shift(0.1, -1)
    assert internal_shift(np.float32(0.25), np.int64(12)) == 10


# ---- the exact helpers and the re-exports ---------------------------------------------------
def test_exact_positive_and_round_half_up():
    assert exact_positive(0.1, "S") == Fraction(0.1)  # the float's exact value, not 1/10
    assert exact_positive(np.int32(3), "S") == 3
    with pytest.raises(ValueError, match="S must be positive, got 0"):
        exact_positive(0, "S")
    with pytest.raises(TypeError, match="S must be a real number, got bool"):
        exact_positive(True, "S")
    # Ties round up (towards +inf), on both sides of zero.
    halves = [Fraction(k, 2) for k in range(-5, 6)]
    assert [round_half_up(v) for v in halves] == [math.floor(v + Fraction(1, 2)) for v in halves]
    assert [round_half_up(Fraction(v)) for v in (-1.5, -0.5, 0.5, 1.5)] == [-1, 0, 1, 2]


def test_quant_re_exports_the_moved_names():
    # golden/quant.py kept these names when they moved to golden/dyadic.py: one definition.
    moved = set(dyadic_module.__all__) - {"exact_positive", "round_half_up",
                                             "INTERNAL_SHIFT_MIN", "INTERNAL_SHIFT_MAX"}
    assert moved <= set(quant.__all__)
    for name in moved:
        assert getattr(quant, name) is getattr(dyadic_module, name), name
