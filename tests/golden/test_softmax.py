"""Golden integer softmax and i-exp (golden/softmax.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.golden.dyadic import exact_reciprocal
from edgetron.golden.intops import INT32_MAX, INT32_MIN
from edgetron.golden.softmax import (
    EXP_A,
    EXP_B,
    EXP_BITS,
    EXP_C,
    EXP_FRAC_BITS,
    OUT_MAX,
    ROW_MAX,
    i_exp,
    iexp_constants,
    softmax_apply,
    softmax_constants,
    softmax_int,
)

LN2 = math.log(2.0)
#: Input scales from a coarse int8 logit to a very fine int32 attention score.
SCALES = [8.0, 1.0, 14 / 127, 4 / 127, 2.0**-12, 2.0**-13 * 1.0001, 1e-3, 7.3e-5, 1e-6, 1e-9]
ACCURACY_TARGET = 1 / 128 + 2.5e-3


def float_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_oracle(row: list[int], scale: float) -> list[int]:
    """Scalar Python-int restatement of the spec: floor division, no clamps, no reciprocal."""
    c = softmax_constants(scale)
    ic = c.iexp
    mx = max(row)
    es = []
    for v in row:
        mag = mx - v
        f = ic.pre_shift
        u = mag << f if f >= 0 else (mag + (1 << (-f - 1))) >> -f
        z = u // ic.q_ln2
        if z >= c.z_cap:
            es.append(0)
            continue
        r = u - z * ic.q_ln2
        es.append(((ic.q_b - r) ** 2 + ic.q_c) >> (z + c.exp_shift))
    factor = (1 << c.k) // sum(es)
    half = 1 << (c.out_shift - 1)
    return [min((e * factor + half) >> c.out_shift, OUT_MAX) for e in es]


@pytest.mark.parametrize(("d", "n_max"), [(1, 1000), (3, 10**5), (2839, 3 * 10**5), (5678, 10**5)])
def test_exact_reciprocal_is_floor_division(d, n_max):
    m, s = exact_reciprocal(d, n_max)
    n = np.arange(n_max + 1, dtype=np.int64)
    np.testing.assert_array_equal((n * m) >> s, n // d)
    if s > 0:  # s is the smallest shift that works
        m1 = -((-(1 << (s - 1))) // d)
        assert np.any(((n * m1) >> (s - 1)) != n // d)


@pytest.mark.parametrize("scale", SCALES)
def test_iexp_reciprocal_exact_over_the_whole_clamped_range(scale):
    c = iexp_constants(scale)
    u = np.arange(c.u_max + 1, dtype=np.int64)
    np.testing.assert_array_equal((u * c.m_ln2) >> c.s_ln2, u // c.q_ln2)
    assert (c.u_max * c.m_ln2).bit_length() == c.recip_bits


@pytest.mark.parametrize("scale", SCALES)
def test_iexp_constants_follow_their_definitions(scale):
    c = iexp_constants(scale)
    s = c.int_scale
    assert math.ldexp(s, c.pre_shift) == scale
    assert 2.0 ** -(EXP_FRAC_BITS + 1) < s <= 2.0**-EXP_FRAC_BITS
    assert c.q_ln2 * s <= LN2 < (c.q_ln2 + 1) * s
    assert c.q_b * s <= EXP_B < (c.q_b + 1) * s
    assert c.q_c * EXP_A * s * s <= EXP_C < (c.q_c + 1) * EXP_A * s * s
    assert c.l_max == c.q_b**2 + c.q_c
    assert c.l_max >> c.z_max == 0 < c.l_max >> (c.z_max - 1)
    assert c.u_max == c.z_max * c.q_ln2
    assert c.out_scale == pytest.approx(EXP_A * s * s, rel=1e-15)
    # Documented widths (what the RTL declares) for every supported scale.
    assert c.u_bits <= 18 and c.t_bits <= 14 and c.l_bits <= 28 and c.z_bits == 5
    sc = softmax_constants(scale)
    assert (sc.exp_bits, sc.sum_bits, sc.k, sc.factor_bits, sc.product_bits) == (16, 32, 30, 16, 31)
    assert sc.exp_shift == c.l_bits - EXP_BITS and sc.out_shift == 23
    assert (c.l_max >> sc.exp_shift).bit_length() == EXP_BITS


@pytest.mark.parametrize("scale", [2.0**-12, 1e-4, 3e-5, 9e-4, 2.0**-13 * 1.0001])
def test_iexp_polynomial_error_on_minus_ln2_to_zero(scale):
    c = iexp_constants(scale)
    q = np.arange(-math.floor(LN2 / scale) + 1, 1)
    err = np.abs(i_exp(q, scale) * c.out_scale - np.exp(q * scale))
    assert err.max() <= 2.2e-3


def test_iexp_error_over_a_wide_range_and_zero_beyond_the_cap():
    scale = 1e-3
    c = iexp_constants(scale)
    q = np.arange(-40_000, 1)
    assert np.abs(i_exp(q, scale) * c.out_scale - np.exp(q * scale)).max() <= 2.2e-3
    far = np.array([-(2**32 - 1), INT32_MIN, -(c.u_max + 1) * 1000])
    np.testing.assert_array_equal(i_exp(far, scale), 0)
    assert int(i_exp(0, scale)) == c.l_max


@pytest.mark.parametrize("scale", SCALES)
def test_softmax_matches_scalar_oracle(scale):
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 37):
        q = rng.integers(-(2**31), 2**31, size=(4, n))
        q[1] = rng.integers(-300, 300, size=n)
        q[2] = rng.integers(-20_000, 20_000, size=n)
        got = softmax_int(q, scale)
        for row, out in zip(q, got, strict=True):
            assert out.tolist() == softmax_oracle(row.tolist(), scale)


@pytest.mark.parametrize("n", [1, 2, 3, 50, 197, 1000])
def test_softmax_rows_sum_to_128_within_row_length(n):
    rng = np.random.default_rng(n)
    for scale, spread in [(4 / 127, 60), (1e-4, 30_000), (0.5, 5), (1e-6, 2**30)]:
        q = rng.integers(-spread, spread, size=(64, n))
        y = softmax_int(q, scale)
        assert y.min() >= 0 and y.max() <= OUT_MAX
        assert np.all(np.abs(y.sum(axis=-1) - 128) <= n)
        # The documented bound: half an LSB of rounding per element, the truncated reciprocal
        # (less than n/128) and the saturation of 128 to 127 (docs/integer-kernels.md).
        assert np.all(np.abs(y.sum(axis=-1) - 128) <= n / 2 + n / 128 + 1)


@pytest.mark.parametrize("sigma", [1, 2, 4])
@pytest.mark.parametrize("kind", ["int8", "int16", "int32"])
def test_softmax_accuracy_on_gaussian_rows_of_197(sigma, kind):
    rng = np.random.default_rng(100 + sigma)
    x = rng.normal(0.0, sigma, size=(400, 197))
    full = {"int8": 127, "int16": 32767, "int32": 2**30}[kind]
    scale = float(np.abs(x).max()) / full
    q = np.round(x / scale).astype(np.int64)
    err = np.abs(softmax_int(q, scale) / 128 - float_softmax(q * scale))
    assert err.max() <= ACCURACY_TARGET


def test_softmax_saturation_at_both_ends():
    # Uniform rows of the int8 and int32 extremes: every element gets round(128 / n).
    for v in (-128, 127, INT32_MIN, INT32_MAX):
        np.testing.assert_array_equal(softmax_int(np.full((3, 4), v), 0.1), 32)
        np.testing.assert_array_equal(softmax_int(np.full((1, 1), v), 1e-5), 127)  # 128 -> 127
    # A dominant logit saturates its probability to 127 and zeroes the rest.
    row = np.array([[INT32_MIN, INT32_MAX, INT32_MIN]])
    np.testing.assert_array_equal(softmax_int(row, 1e-5), [[0, 127, 0]])
    row = np.array([[127] + [-128] * 196])
    y = softmax_int(row, 0.25)
    assert y[0, 0] == 127 and np.all(y[0, 1:] == 0)
    assert softmax_int([[-128, 127]], 8 / 127).tolist() == [[0, 127]]


@pytest.mark.parametrize(
    ("q", "scale", "exc", "match"),
    [
        (np.zeros((2, 3), dtype=np.float32), 0.1, TypeError, "q must hold integers"),
        (np.ones((2, 3), dtype=bool), 0.1, TypeError, "q must hold integers"),
        (np.zeros((2, 3), dtype=np.int8), 0.0, ValueError, "scale must be a finite number > 0"),
        (np.zeros((2, 3), dtype=np.int8), -1.0, ValueError, "scale must be a finite number > 0"),
        (np.zeros((2, 3), dtype=np.int8), math.nan, ValueError, "scale must be a finite"),
        (np.zeros((2, 3), dtype=np.int8), math.inf, ValueError, "scale must be a finite"),
        (np.zeros((2, 3), dtype=np.int8), "0.1", TypeError, "scale must be a real number"),
        (np.zeros((2, 3), dtype=np.int8), True, TypeError, "scale must be a real number"),
        (np.zeros((2, 3), dtype=np.int8), 2.0**-80, ValueError, "scale .* outside the supported"),
        (np.int64(3), 0.1, ValueError, "at least 1 dimension"),
        (np.zeros((3, 0), dtype=np.int64), 0.1, ValueError, "rows must have 1 to"),
        (np.zeros((0, 5), dtype=np.int64), 0.1, ValueError, "rows must have 1 to"),
        (np.zeros((1, ROW_MAX + 1), dtype=np.int64), 0.1, ValueError, "rows must have 1 to"),
        (np.array([[0, 2**31]]), 0.1, ValueError, r"q must lie in \[-2147483648"),
        (np.array([[INT32_MIN - 1, 0]]), 0.1, ValueError, r"q must lie in"),
    ],
)
def test_softmax_bad_inputs(q, scale, exc, match):
    with pytest.raises(exc, match=match):
        softmax_int(q, scale)


def test_iexp_and_constants_bad_inputs():
    with pytest.raises(ValueError, match="q must lie in"):
        i_exp([1], 0.1)
    with pytest.raises(ValueError, match="q must lie in"):
        i_exp([-(2**32)], 0.1)
    with pytest.raises(TypeError, match="q must hold integers"):
        i_exp([-0.5], 0.1)
    with pytest.raises(ValueError, match="scale must be a finite"):
        i_exp([0], math.nan)
    with pytest.raises(ValueError, match=r"scale .* outside the supported range"):
        iexp_constants(2.0**19)
    with pytest.raises(TypeError, match="scale must be a real number"):
        softmax_constants(None)
    with pytest.raises(ValueError, match="exact_reciprocal needs d >= 1"):
        exact_reciprocal(0, 10)
    with pytest.raises(TypeError, match=r"d must be an integer, got float 2\.5"):
        exact_reciprocal(2.5, 10)
    with pytest.raises(TypeError, match="n_max must be an integer, got bool"):
        exact_reciprocal(3, True)
    assert exact_reciprocal(np.int64(3), np.int32(100)) == exact_reciprocal(3, 100)


def test_softmax_apply_takes_the_derived_constants():
    rng = np.random.default_rng(3)
    q = rng.integers(-(2**20), 2**20, size=(3, 4, 50))
    for scale in (1e-4, 4 / 127):
        np.testing.assert_array_equal(
            softmax_apply(q, softmax_constants(scale)), softmax_int(q, scale)
        )
    with pytest.raises(TypeError, match="consts must be SoftmaxConstants, got float"):
        softmax_apply(q, 1e-4)
