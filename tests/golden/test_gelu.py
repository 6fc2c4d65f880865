"""Golden integer GELU (golden/gelu.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from edgetron.golden.dyadic import dyadic
from edgetron.golden.gelu import (
    ERF_BITS,
    GELU_A,
    GELU_B,
    GELU_FRAC_BITS,
    gelu_apply,
    gelu_constants,
    gelu_int,
    gelu_int8,
    gelu_int8_apply,
    gelu_int8_constants,
)
from edgetron.golden.intops import INT32_MAX, INT32_MIN

_erf = np.vectorize(math.erf, otypes=[np.float64])
#: (scale, in_bits): int8 activations, fine int16, int32 accumulators, extremes.
CASES = [
    (4 / 127, 8),
    (4 / 128, 8),
    (0.5, 8),
    (2.0**-10, 8),
    (4 / 32767, 16),
    (2.0**-12, 16),
    (1e-4, 32),
    (3.3e-5, 32),
    (1e-6, 32),
    (2.0, 32),
]


def float_gelu(x: np.ndarray) -> np.ndarray:
    return x / 2 * (1 + _erf(x / math.sqrt(2.0)))


def gelu_oracle(q: int, scale: float, in_bits: int) -> int:
    """Scalar Python-int restatement: I-BERT's signed constants, no input clamp."""
    c = gelu_constants(scale, in_bits)
    s_t = c.int_scale / math.sqrt(2.0)
    b_int = math.floor(GELU_B / s_t)
    c_int = math.floor(1.0 / (GELU_A * s_t * s_t))
    f = c.pre_shift
    mag = abs(q) << f if f >= 0 else (abs(q) + (1 << (-f - 1))) >> -f
    sgn = (q > 0) - (q < 0)
    erf = sgn * ((min(mag, -b_int) + b_int) ** 2 + c_int)  # at the negative scale a * s_t**2
    r = -(erf + c_int)  # 1 + erf at the positive scale -a * s_t**2
    prod = q * (r >> c.erf_shift)
    if c.out_shift == 0:
        return prod
    return (prod + (1 << (c.out_shift - 1))) >> c.out_shift


@pytest.mark.parametrize(("scale", "in_bits"), CASES)
def test_constants_follow_their_definitions(scale, in_bits):
    c = gelu_constants(scale, in_bits)
    s_i = c.int_scale
    assert math.ldexp(s_i, c.pre_shift) == scale
    assert 2.0 ** -(GELU_FRAC_BITS + 1) < s_i <= 2.0**-GELU_FRAC_BITS
    s_t = s_i / math.sqrt(2.0)
    assert c.q_b * s_t <= GELU_B < (c.q_b + 1) * s_t
    assert c.clip == -c.q_b
    assert -(c.q_one - 1) * GELU_A * s_t * s_t < 1.0 <= -c.q_one * GELU_A * s_t * s_t
    assert c.clip**2 <= c.q_one  # the erf magnitude q_one - w is never negative
    assert (2 * c.q_one) >> c.erf_shift < 2**ERF_BITS <= (2 * c.q_one) >> (c.erf_shift - 1)
    assert c.out_shift == max(0, in_bits + ERF_BITS - 32)
    assert c.out_scale == pytest.approx(
        scale * -GELU_A * s_t * s_t * 2.0 ** (c.erf_shift + c.out_shift - 1), rel=1e-14
    )
    # The clamp before rescaling is exact: clamp_in itself already reaches the clip.
    f = c.pre_shift
    reach = c.clamp_in << f if f >= 0 else (c.clamp_in + (1 << (-f - 1))) >> -f
    assert reach >= c.clip or c.clamp_in == 2 ** (in_bits - 1)


@pytest.mark.parametrize(("scale", "in_bits"), CASES)
def test_gelu_matches_scalar_oracle(scale, in_bits):
    rng = np.random.default_rng(in_bits)
    lo, hi = -(2 ** (in_bits - 1)), 2 ** (in_bits - 1) - 1
    near = int(min(hi, 3.0 / scale))
    q = np.concatenate(
        [
            rng.integers(lo, hi, size=300, endpoint=True),
            rng.integers(-near, near + 1, size=300),
            [lo, lo + 1, -1, 0, 1, hi - 1, hi],
        ]
    )
    got = gelu_int(q, scale, in_bits)
    assert got.tolist() == [gelu_oracle(int(v), scale, in_bits) for v in q]


@pytest.mark.parametrize(("scale", "in_bits"), [(4 / 127, 8), (4 / 32767, 16), (1e-4, 32)])
def test_gelu_accuracy_on_minus4_to_4(scale, in_bits):
    n = math.floor(4 / scale)
    q = np.arange(-n, n + 1) if n <= 50_000 else np.unique(np.linspace(-n, n, 100_001).round())
    q = q.astype(np.int64)
    err = gelu_int(q, scale, in_bits) * gelu_constants(scale, in_bits).out_scale - float_gelu(
        q * scale
    )
    assert np.abs(err).max() <= 0.02
    assert math.sqrt(np.mean(err**2)) <= 0.009


def test_gelu_int8_requantized_is_within_one_lsb_of_float():
    scale, out_scale = 4 / 127, 4 / 127
    q = np.arange(-128, 128)
    y = gelu_int8(q, scale, out_scale, in_bits=8)
    ref = np.clip(np.round(float_gelu(q * scale) / out_scale), -128, 127)
    assert np.abs(y - ref).max() <= 1
    assert y.min() >= -128 and y.max() <= 127


def test_saturation_at_both_ends():
    scale = 4 / 127
    c8 = gelu_constants(scale, 8)
    top = (2 * c8.q_one) >> c8.erf_shift  # 1 + erf clipped at +1
    np.testing.assert_array_equal(gelu_int(np.full(5, -128), scale, 8), 0)
    np.testing.assert_array_equal(gelu_int(np.full(5, 127), scale, 8), 127 * top)
    assert 127 * top * c8.out_scale == pytest.approx(127 * scale, rel=1e-4)
    c32 = gelu_constants(1e-4, 32)
    top32 = (2 * c32.q_one) >> c32.erf_shift
    y = gelu_int(np.array([INT32_MIN, INT32_MIN + 1, INT32_MAX]), 1e-4, 32)
    want = (INT32_MAX * top32 + (1 << (c32.out_shift - 1))) >> c32.out_shift
    assert y.tolist() == [0, 0, want] and want <= INT32_MAX
    # int8 requantization saturates at both ends.
    assert gelu_int8([127], 4 / 127, 1 / 127, in_bits=8).tolist() == [127]
    assert gelu_int8([-24], 4 / 127, 0.1 / 128, in_bits=8).tolist() == [-128]  # GELU(-0.76) = -0.17
    assert gelu_int8([-128, 0], 4 / 127, 0.1 / 128, in_bits=8).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (([0.5], 0.1, 8), TypeError, "q must hold integers"),
        ((np.array([True]), 0.1, 8), TypeError, "q must hold integers"),
        (([128], 0.1, 8), ValueError, r"q \(int8 input\) must lie in \[-128, 127\]"),
        (([2**31], 0.1, 32), ValueError, r"q \(int32 input\) must lie in"),
        (([1], 0.0, 8), ValueError, "scale must be a finite number > 0"),
        (([1], -0.1, 8), ValueError, "scale must be a finite number > 0"),
        (([1], math.nan, 8), ValueError, "scale must be a finite"),
        (([1], None, 8), TypeError, "scale must be a real number"),
        (([1], 2.0**70, 8), ValueError, "scale .* outside the supported range"),
        (([1], 0.1, 33), ValueError, r"in_bits must lie in \[2, 32\]"),
        (([1], 0.1, 1), ValueError, r"in_bits must lie in \[2, 32\]"),
        (([1], 0.1, 8.0), TypeError, "in_bits must be an integer"),
    ],
)
def test_bad_inputs(args, exc, match):
    with pytest.raises(exc, match=match):
        gelu_int(*args)


def test_gelu_int8_bad_out_scale():
    with pytest.raises(ValueError, match="out_scale must be a finite number > 0"):
        gelu_int8([1], 0.1, 0.0, in_bits=8)
    with pytest.raises(ValueError, match="out_scale must be a finite"):
        gelu_int8([1], 0.1, math.inf, in_bits=8)
    with pytest.raises(ValueError, match=r"requantization ratio .* needs shift"):
        gelu_int8([1], 0.1, 1e-30, in_bits=8)


def test_gelu_apply_and_int8_constants():
    rng = np.random.default_rng(4)
    q = rng.integers(INT32_MIN, INT32_MAX, size=500, endpoint=True)
    c = gelu_constants(1e-4, 32)
    np.testing.assert_array_equal(gelu_apply(q, c), gelu_int(q, 1e-4, 32))
    k = gelu_int8_constants(1e-4, 0.02, 32)
    assert k.gelu == c and k.out_scale == 0.02
    assert (k.m, k.s) == dyadic(Fraction(c.out_scale) / Fraction(0.02))
    np.testing.assert_array_equal(gelu_int8_apply(q, k), gelu_int8(q, 1e-4, 0.02, 32))
    with pytest.raises(TypeError, match="consts must be GeluConstants"):
        gelu_apply(q, k)
    with pytest.raises(TypeError, match="consts must be GeluInt8Constants"):
        gelu_int8_apply(q, c)
