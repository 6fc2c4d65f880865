"""Calibration and dyadic constants against exact rational arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from edgetron.golden.gemm import gemm_requant
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    M_MAX,
    S_MAX,
    S_MIN,
    int_range,
    requantize,
)
from edgetron.golden.quant import (
    ACTIVATIONS,
    RELU6_BOUND,
    activation_bounds,
    activation_clamp,
    activation_scale,
    dequantize,
    dyadic,
    dyadic_per_channel,
    exact_ratio,
    internal_shift,
    positive_scale,
    quantize,
    quantize_bias,
    real_scalar,
    requant_constants,
    weight_scales,
)

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


# ---- calibration ------------------------------------------------------------------------
def test_activation_scale_maps_amax_to_127():
    x = np.array([[-3.0, 1.0], [0.5, 2.0]])
    assert activation_scale(x) == 3.0 / INT8_MAX
    assert activation_scale(x, bits=4) == 3.0 / 7
    assert activation_scale(np.arange(1, 101), percentile=50) == 50.5 / INT8_MAX
    q = quantize(x, activation_scale(x))
    assert q.min() == -INT8_MAX  # -amax maps to -127, not -128: the grid is symmetric


@pytest.mark.parametrize(
    ("x", "kwargs", "exc", "match"),
    [
        (np.zeros(4), {}, ValueError, "x is all zeros"),
        (np.array([5e-324, 0.0]), {}, ValueError, "x is too small to calibrate"),
        (np.array([]), {}, ValueError, "x is empty"),
        (np.array([1.0, np.nan]), {}, ValueError, "x contains nan or inf"),
        (np.array([True, False]), {}, TypeError, "x must hold real numbers, got dtype bool"),
        (np.array(["a"]), {}, TypeError, "x must hold real numbers"),
        (np.ones(3), {"percentile": 0}, ValueError, r"percentile must be a number in \(0, 100\]"),
        (np.ones(3), {"percentile": 101}, ValueError, "percentile must be a number"),
        (np.ones(3), {"bits": 0}, ValueError, "bits must be an integer"),
        (np.ones(3), {"bits": 1}, ValueError, "bits must be >= 2 for a symmetric scale"),
    ],
)
def test_activation_scale_rejects_bad_input(x, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        activation_scale(x, **kwargs)


def test_weight_scales_per_output_channel():
    w = np.array([[[[1.0, -4.0]]], [[[0.5, 0.25]]], [[[0.0, 0.0]]]])  # (K=3, C=1, R=1, S=2)
    sc = weight_scales(w, axis=0)
    assert sc.tolist() == [4.0 / INT8_MAX, 0.5 / INT8_MAX, 4.0 / INT8_MAX]  # zero -> largest
    g = np.array([[1.0, -2.0], [-3.0, 0.5]])  # GEMM weights (K, N): channels on axis 1
    assert weight_scales(g, axis=1).tolist() == [3.0 / INT8_MAX, 2.0 / INT8_MAX]
    assert weight_scales(g, axis=-1).tolist() == weight_scales(g, axis=1).tolist()
    q = quantize(g, weight_scales(g, axis=1), axis=1)
    assert np.abs(q).max(axis=0).tolist() == [INT8_MAX, INT8_MAX]
    with pytest.raises(ValueError, match="w is too small to calibrate"):
        weight_scales(np.array([[1e-310], [1.0]]), axis=0)
    with pytest.raises(ValueError, match="w is all zeros"):
        weight_scales(np.zeros((2, 3)), axis=0)
    with pytest.raises(ValueError, match=r"axis must be an integer in \[-2, 1\], got 2"):
        weight_scales(g, axis=2)
    with pytest.raises(ValueError, match="w must have at least one axis"):
        weight_scales(np.float64(1.0), axis=0)


# ---- quantize / dequantize ---------------------------------------------------------------
@FAST
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=50))
def test_quantize_round_trip_error_is_half_a_step(values):
    x = np.array(values)
    assume(np.abs(x).max() >= 1e-300)  # smaller magnitudes are rejected (tested below)
    sc = activation_scale(x)
    back = dequantize(quantize(x, sc), sc)
    assert np.all(np.abs(back - x) <= sc / 2 * (1 + 1e-12))


def test_quantize_rounds_half_up_and_saturates_both_ends():
    sc = 0.25  # a power of two: x / S is exact, so the ties are real ties
    x = np.array([-0.375, -0.125, 0.125, 0.375, -1e3, 1e3, -32.0, -32.125, 31.75, 31.875])
    assert quantize(x, sc).tolist() == [-1, 0, 1, 2, INT8_MIN, INT8_MAX, INT8_MIN, INT8_MIN,
                                        INT8_MAX, INT8_MAX]


def test_quantize_per_channel_and_errors():
    x = np.array([[1.0, 1.0], [2.0, 2.0]])
    assert quantize(x, np.array([0.5, 0.25]), axis=1).tolist() == [[2, 4], [4, 8]]
    assert dequantize(np.array([[2, 4]]), np.array([0.5, 0.25]), axis=1).tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match=r"scale must have shape \(2,\) to match axis 0"):
        quantize(x, np.array([0.5, 0.25, 1.0]), axis=0)
    with pytest.raises(ValueError, match="scale must be a scalar without axis"):
        quantize(x, np.array([0.5, 0.25]))
    with pytest.raises(ValueError, match="scale must be positive"):
        quantize(x, -1.0)
    with pytest.raises(ValueError, match=r"axis must be an integer in \[-2, 1\]"):
        quantize(x, np.array([0.5, 0.25]), axis=5)
    with pytest.raises(TypeError, match="q must hold integers"):
        dequantize(np.array([0.5]), 1.0)


# ---- bias ------------------------------------------------------------------------------
def test_quantize_bias_at_accumulator_scale():
    sx, sw = 2.0**-4, np.array([2.0**-3, 2.0**-5])
    b = np.array([1.0, -1.0])
    assert quantize_bias(b, sx, sw).tolist() == [2**7, -(2**9)]
    # The int32 limit is accepted exactly; one step beyond is rejected, not saturated.
    acc_scale = sx * sw[0]
    assert quantize_bias([INT32_MAX * acc_scale], sx, sw[0]).tolist() == [INT32_MAX]
    assert quantize_bias([-(2**31) * acc_scale], sx, sw[0]).tolist() == [-(2**31)]
    with pytest.raises(ValueError, match=r"bias\[0\] = .* outside the int32 range"):
        quantize_bias([(INT32_MAX + 0.5) * acc_scale], sx, sw[0])
    with pytest.raises(ValueError, match=r"bias\[1\] = .* outside the int32 range"):
        quantize_bias([0.0, -(2**31 + 1) * sx * sw[1]], sx, sw)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (([1.0], 0.0, 1.0), ValueError, "input_scale must be positive"),
        (([1.0], 1.0, [1.0, 2.0]), ValueError, r"weight_scales must be a scalar or have shape"),
        (([1.0], 1.0, [-1.0]), ValueError, "weight_scales must be positive"),
        (([[1.0]], 1.0, 1.0), ValueError, "bias must be 1-D"),
        (([np.inf], 1.0, 1.0), ValueError, "bias contains nan or inf"),
    ],
)
def test_quantize_bias_rejects_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        quantize_bias(*args)


# ---- end to end: a calibrated float linear layer -----------------------------------------------
def test_calibrated_linear_layer_tracks_float():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 96))
    w = rng.standard_normal((96, 48)) / np.sqrt(96)
    b = rng.standard_normal(48) * 0.1
    y = x @ w + b
    sx, sw, sy = activation_scale(x), weight_scales(w, axis=1), activation_scale(y)
    qx, qw = quantize(x, sx), quantize(w, sw, axis=1)
    qb = quantize_bias(b, sx, sw)
    m, s = requant_constants(sx, sw, sy)
    qy = gemm_requant(qx, qw, qb, m, s)
    # The integer layer is the float layer on the quantized operands, rounded once
    # (and saturated where quantization noise pushes it past the calibrated range).
    exact = np.clip((qx @ qw + qb) * (sx * sw / sy), INT8_MIN, INT8_MAX)
    assert np.abs(qy - exact).max() <= 0.5 + 1e-6
    yd = dequantize(qy, sy)
    cos = float((yd * y).sum() / np.linalg.norm(yd) / np.linalg.norm(y))
    assert cos > 0.999


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


# ---- fused activation clamp ---------------------------------------------------------------
def relu6_hi_oracle(scale: float, bits: int = 8) -> int:
    """``min(qmax, floor(6 / S_y + 1/2))`` in exact rationals."""
    return min(int_range(bits)[1], half_up(Fraction(RELU6_BOUND) / Fraction(scale)))


def test_activation_bounds_none_and_relu_are_the_saturation_range_and_zero():
    assert ACTIVATIONS == ("none", "relu", "relu6")
    for bits in (2, 4, 8, 16, 32, 63):
        lo, hi = int_range(bits)
        assert activation_bounds("none", 0.1, bits) == (lo, hi)
        assert activation_bounds("relu", 0.1, bits) == (0, hi)
    assert activation_bounds("none", 1e-300) == (INT8_MIN, INT8_MAX)
    assert activation_bounds("relu", 1e300) == (0, INT8_MAX)


@pytest.mark.parametrize(
    ("scale", "bits", "hi"),
    [
        (RELU6_BOUND / INT8_MAX, 8, INT8_MAX),  # 6 maps to 127 exactly (the calibrated case)
        (0.5, 8, 12),                           # 6 / 0.5 = 12 exactly
        (4.0, 8, 2),                            # 6 / 4 = 1.5, an exact tie: rounds up
        (12.0, 8, 1),                           # 6 / 12 = 0.5, a tie: up to 1
        (np.nextafter(12.0, np.inf), 8, 0),     # just below the tie 0.5
        (np.nextafter(4.0, 0.0), 8, 2),         # just above 1.5
        (np.nextafter(4.0, np.inf), 8, 1),      # just below 1.5
        (24.0, 8, 0),                           # 0.25: relu6 clamps everything to 0
        (1e300, 8, 0),                          # huge scale
        (1e-300, 8, INT8_MAX),                  # tiny scale: 6 is far beyond int8, saturates
        (5e-324, 8, INT8_MAX),                  # the smallest subnormal float
        (0.5, 4, 7),                            # 12 > int4 max: saturates at 7
        (1e-300, 32, (1 << 31) - 1),            # wide output
        (0.5, 32, 12),
    ],
)
def test_relu6_upper_bound_at_the_extremes(scale, bits, hi):
    assert activation_bounds("relu6", scale, bits) == (0, hi)
    assert hi == relu6_hi_oracle(scale, bits)


@FAST
@given(st.floats(min_value=1e-6, max_value=1e3))
def test_relu6_upper_bound_is_exactly_rounded(scale):
    lo, hi = activation_bounds("relu6", scale)
    assert lo == 0 and hi == relu6_hi_oracle(scale)
    # hi is the nearest integer to 6 / S_y (half up), unless it saturates.
    exact = Fraction(RELU6_BOUND) / Fraction(scale)
    assert hi == INT8_MAX or abs(Fraction(hi) - exact) <= Fraction(1, 2)


def test_activation_clamp_equals_quantizing_the_real_activation():
    # Quantizing is monotone, so it commutes with the clamp: clamping the quantized value to
    # the quantized bounds is the quantized clamped value, for every real input.
    rng = np.random.default_rng(11)
    for scale in np.exp(rng.uniform(np.log(1e-3), np.log(1.0), size=40)):
        x = rng.normal(0.0, 4.0, size=2000) * rng.choice([0.01, 1.0, 100.0])
        q = quantize(x, scale)
        np.testing.assert_array_equal(activation_clamp(q, "none", scale), q)
        np.testing.assert_array_equal(activation_clamp(q, "relu", scale),
                                      quantize(np.maximum(x, 0.0), scale))
        np.testing.assert_array_equal(activation_clamp(q, "relu6", scale),
                                      quantize(np.clip(x, 0.0, RELU6_BOUND), scale))


def test_activation_clamp_at_the_extremes():
    q = np.array([INT8_MIN, -1, 0, 1, 2, 3, INT8_MAX])
    assert activation_clamp(q, "none", 4.0).tolist() == q.tolist()
    assert activation_clamp(q, "relu", 4.0).tolist() == [0, 0, 0, 1, 2, 3, INT8_MAX]
    assert activation_clamp(q, "relu6", 4.0).tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert activation_clamp(q, "relu6", 24.0).tolist() == [0] * 7
    assert activation_clamp(q, "relu6", 1e-9).tolist() == [0, 0, 0, 1, 2, 3, INT8_MAX]
    wide = np.array([INT32_MAX, -INT32_MAX - 1])
    assert activation_clamp(wide, "relu", 1.0, bits=32).tolist() == [INT32_MAX, 0]
    assert activation_clamp(wide, "relu6", 1.0, bits=32).tolist() == [6, 0]
    y = activation_clamp(np.int8(-5), "relu", 1.0)
    assert y.dtype == np.int64 and y.shape == () and int(y) == 0


def test_activation_after_requantize_is_one_clamp():
    # The requantizer saturates to the bits range, which contains [lo, hi]: the fused
    # activation is the requantizer with [lo, hi] as its saturation bounds.
    rng = np.random.default_rng(12)
    acc = rng.integers(INT32_MAX // -4, INT32_MAX // 4, size=5000)
    m, s = dyadic(1 / 3e5)
    for act in ACTIVATIONS:
        lo, hi = activation_bounds(act, 0.1)  # relu6: hi = 60
        y = activation_clamp(requantize(acc, m, s), act, 0.1)
        want = [min(max(half_up(Fraction(int(a) * m, 2**s)), lo), hi) for a in acc[:300]]
        assert y[:300].tolist() == want
        assert y.min() == lo and y.max() == hi  # both bounds are reached


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: activation_bounds("gelu", 0.1), ValueError,
         "act must be one of none, relu, relu6, got 'gelu'"),
        (lambda: activation_bounds(None, 0.1), ValueError, "act must be one of"),
        (lambda: activation_bounds("relu6", 0.0), ValueError, "out_scale must be positive"),
        (lambda: activation_bounds("none", -1.0), ValueError, "out_scale must be positive"),
        (lambda: activation_bounds("relu6", float("nan")), ValueError, "out_scale must be finite"),
        (lambda: activation_bounds("relu6", "0.1"), TypeError, "out_scale must be a real number"),
        (lambda: activation_bounds("relu", True), TypeError, "out_scale must be a real number"),
        (lambda: activation_bounds("relu", 0.1, 1), ValueError, r"bits must lie in \[2, 63\]"),
        (lambda: activation_bounds("relu", 0.1, 8.0), TypeError, "bits must be an integer"),
        (lambda: activation_clamp([128], "relu", 0.1), ValueError,
         r"q must lie in \[-128, 127\], got values in \[128, 128\]"),
        (lambda: activation_clamp([8], "relu6", 0.1, bits=4), ValueError,
         r"q must lie in \[-8, 7\]"),
        (lambda: activation_clamp([0.5], "relu", 0.1), TypeError, "q must hold integers"),
        (lambda: activation_clamp([1], "tanh", 0.1), ValueError, "act must be one of"),
    ],
)
def test_activation_rejects_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---- audit: rejected instead of garbage ------------------------------------------------------
def test_quantize_bias_rejects_an_accumulator_scale_that_is_not_a_normal_float():
    # 1e-200 * 1e-200 underflows to 0: a zero bias became 0/0 = nan and then an arbitrary int64.
    with pytest.raises(ValueError, match=r"accumulator scale input_scale \* weight_scales\[0\] "
                                         r"= 1e-200 \* 1e-200 = 0 is not a finite normal"):
        quantize_bias([0.0, 1.0], 1e-200, [1e-200, 1.0])
    with pytest.raises(ValueError, match=r"weight_scales\[1\] = .* = inf is not a finite normal"):
        quantize_bias([0.0, 0.0], 1e200, [1.0, 1e200])
    # Subnormal products are rejected too; the smallest normal one is accepted.
    with pytest.raises(ValueError, match="is not a finite normal float64"):
        quantize_bias([0.0], 2.0**-600, 2.0**-500)
    tiny = float(np.finfo(np.float64).tiny)
    assert quantize_bias([0.0, 3 * tiny], 2.0**-511, 2.0**-511).tolist() == [0, 3]


def test_quantize_bits_are_limited_to_an_exact_float_clamp():
    big = [1e30, -1e30, 0.4, -0.6]
    assert quantize(big, 1.0, bits=32).tolist() == [2**31 - 1, -(2**31), 0, -1]
    assert quantize(big, 1.0, bits=2).tolist() == [1, -2, 0, -1]
    # bits = 55 used to clamp to the float 2**54 and return values outside its range.
    for bits in (1, 33, 55, 63):
        with pytest.raises(ValueError, match=r"bits must lie in \[2, 32\], got"):
            quantize(big, 1.0, bits=bits)
    with pytest.raises(TypeError, match="bits must be an integer, got float"):
        quantize(big, 1.0, bits=8.0)


def test_percentile_accepts_numpy_reals_and_reports_plain_numbers():
    x = np.arange(1, 101)
    assert activation_scale(x, percentile=np.float32(50)) == 50.5 / INT8_MAX
    assert activation_scale(x, percentile=np.int64(100)) == 100 / INT8_MAX
    for bad, shown in ((np.float32(500), "500.0"), (math.nan, "nan"), (-1, "-1.0")):
        with pytest.raises(ValueError, match=rf"percentile must be a number in \(0, 100\], "
                                             rf"got {shown}$"):
            activation_scale(x, percentile=bad)
    with pytest.raises(ValueError, match=r"got '50'"):
        activation_scale(x, percentile="50")


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
