"""Calibration and the fused activation clamps (golden/quant.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgetron.golden.dyadic import dyadic, requant_constants
from edgetron.golden.gemm import gemm_requant
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
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
    quantize,
    quantize_bias,
    weight_scales,
)

from .oracles import half_up

FAST = settings(deadline=None, max_examples=300)


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


