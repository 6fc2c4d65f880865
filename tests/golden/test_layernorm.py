"""Golden integer square root and integer LayerNorm (golden/layernorm.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.golden.layernorm import (
    CHANNELS_MAX,
    GAMMA_BITS,
    IN_SCALE_MIN,
    NORM_FRAC_BITS,
    LayerNormConstants,
    bit_length,
    isqrt,
    isqrt_iteration_bound,
    layernorm_constants,
    layernorm_int,
)

EPS = 1e-6


# ---------------------------------------------------------------- isqrt


def assert_floor_sqrt(n: np.ndarray, r: np.ndarray) -> None:
    """``r = floor(sqrt(n))`` iff ``r**2 <= n < (r + 1)**2`` (valid while (r+1)**2 < 2**63)."""
    assert np.all(r * r <= n)
    assert np.all((r + 1) * (r + 1) > n)


def test_isqrt_exhaustive_below_2_pow_20():
    n = np.arange(1 << 20, dtype=np.int64)
    r, iters = isqrt(n, return_iterations=True)
    assert_floor_sqrt(n, r)
    assert iters.max() == isqrt_iteration_bound(20) == 5
    assert iters[0] == 0 and r[0] == 0


def test_isqrt_random_32_bit():
    rng = np.random.default_rng(2021)
    n = rng.integers(0, 1 << 32, size=10**6, dtype=np.int64)
    r, iters = isqrt(n, return_iterations=True)
    assert_floor_sqrt(n, r)
    # The bound is proven in isqrt_iteration_bound's docstring and reached here.
    assert iters.max() == isqrt_iteration_bound(32) == 6


def test_isqrt_edges_and_wide_values_against_math_isqrt():
    k = np.arange(1, 1 << 16, 7, dtype=np.int64)
    edges = np.concatenate(
        [
            k * k - 1,
            k * k,
            k * k + 1,
            (1 << np.arange(63, dtype=np.int64)) - 1,
            1 << np.arange(63, dtype=np.int64),
            [2**63 - 1, (2**31 + 5) ** 2 - 1],
        ]
    )
    rng = np.random.default_rng(5)
    wide = rng.integers(0, 2**63 - 1, size=20_000, dtype=np.int64)
    for n in (edges, wide):
        r, iters = isqrt(n, return_iterations=True)
        assert r.tolist() == [math.isqrt(int(v)) for v in n]
        assert iters.max() <= isqrt_iteration_bound(63)


def test_isqrt_keeps_shape_and_rejects_bad_input():
    n = np.arange(24).reshape(2, 3, 4)
    assert isqrt(n).shape == (2, 3, 4)
    assert int(isqrt(10**12)) == 10**6
    with pytest.raises(ValueError, match=r"n must lie in \[0,"):
        isqrt([4, -1])
    with pytest.raises(TypeError, match="n must hold integers"):
        isqrt([4.0])
    with pytest.raises(ValueError, match="bits must be an integer"):
        isqrt_iteration_bound(64)


def test_bit_length_matches_python():
    vals = [0, 1, 2, 3, 4, 255, 256, 2**31 - 1, 2**31, 2**62, 2**63 - 1]
    assert bit_length(vals).tolist() == [v.bit_length() for v in vals]
    with pytest.raises(ValueError, match="x must lie in"):
        bit_length([-1])


# ---------------------------------------------------------------- LayerNorm


def float_layernorm(q, in_scale, gamma, beta, eps=EPS):
    x = q * in_scale
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def quantize(y, scale):
    return np.clip(np.round(y / scale), -128, 127)


def layernorm_oracle(row: list[int], c: LayerNormConstants) -> list[int]:
    """Scalar Python-int restatement: math.isqrt, explicit mean-free sums."""
    n = c.channels
    s1 = sum(row)
    d = n * sum(v * v for v in row) - s1 * s1 + c.q_eps
    p = (32 - d.bit_length()) // 2
    dn = d << (2 * p) if p >= 0 else d >> (-2 * p)
    std = math.isqrt(dn)
    factor = (1 << 31) // std if std else 0
    sh = 31 - p - NORM_FRAC_BITS
    out = []
    for ch, v in enumerate(row):
        t = (n * v - s1) * factor
        norm = (t + (1 << (sh - 1))) >> sh
        acc = norm * int(c.gamma_int[ch]) + int(c.beta_int[ch])
        k = c.gamma_shift + NORM_FRAC_BITS
        out.append(max(-128, min(127, (acc + (1 << (k - 1))) >> k)))
    return out


def make_case(rng, channels, spread, offset=0, in_bits=8):
    lo, hi = -(2 ** (in_bits - 1)), 2 ** (in_bits - 1) - 1
    q = np.clip(np.round(rng.normal(offset, spread, (300, channels))), lo, hi).astype(np.int64)
    q[:, :2] = np.clip(q[:, :2] * 4, lo, hi)  # outlier channels, as ViT residual streams have
    gamma = rng.normal(1.0, 0.3, channels)
    beta = rng.normal(0.0, 0.3, channels)
    in_scale = float(rng.uniform(0.005, 0.2)) * 2.0 ** (8 - in_bits)
    y = float_layernorm(q, in_scale, gamma, beta)
    out_scale = float(np.abs(y).max()) / 127 * float(rng.uniform(0.6, 1.0))
    return q, gamma, beta, in_scale, out_scale


@pytest.mark.parametrize("seed", range(6))
def test_layernorm_accuracy_vs_float_quantized(seed):
    rng = np.random.default_rng(seed)
    total = over1 = 0
    for channels, spread, offset in [(192, 20, 0), (192, 2, 30), (768, 45, -10), (64, 0.7, 5)]:
        q, gamma, beta, s_in, s_out = make_case(rng, channels, spread, offset)
        c = layernorm_constants(gamma, beta, s_in, s_out, eps=EPS)
        diff = np.abs(layernorm_int(q, c) - quantize(float_layernorm(q, s_in, gamma, beta), s_out))
        assert diff.max() <= 2
        total += diff.size
        over1 += int((diff > 1).sum())
    assert over1 <= 0.001 * total


def test_layernorm_accuracy_int16_input_and_large_rows():
    rng = np.random.default_rng(11)
    for channels, spread in [(4096, 3000), (192, 40), (192, 20_000)]:
        q, gamma, beta, s_in, s_out = make_case(rng, channels, spread, in_bits=16)
        c = layernorm_constants(gamma, beta, s_in, s_out, eps=EPS, in_bits=16)
        ref = quantize(float_layernorm(q, s_in, gamma, beta), s_out)
        assert np.abs(layernorm_int(q, c) - ref).max() <= 1


@pytest.mark.parametrize("seed", range(3))
def test_layernorm_matches_scalar_oracle(seed):
    rng = np.random.default_rng(40 + seed)
    for channels, in_bits, eps in [(192, 8, EPS), (7, 8, 0.0), (33, 16, 1e-2), (2, 4, 0.0)]:
        q, gamma, beta, s_in, s_out = make_case(rng, channels, 3.0, in_bits=in_bits)
        q = q[:40]
        q[0] = q[0, 0]  # a constant row
        c = layernorm_constants(gamma, beta, s_in, s_out, eps=eps, in_bits=in_bits)
        got = layernorm_int(q, c)
        for row, out in zip(q, got, strict=True):
            assert out.tolist() == layernorm_oracle(row.tolist(), c)


def test_layernorm_is_exactly_shift_invariant():
    rng = np.random.default_rng(3)
    q, gamma, beta, s_in, s_out = make_case(rng, 192, 10)
    q = np.clip(q, -100, 100)
    c = layernorm_constants(gamma, beta, s_in, s_out)
    np.testing.assert_array_equal(layernorm_int(q + 27, c), layernorm_int(q, c))


def test_layernorm_constants_follow_their_definitions():
    rng = np.random.default_rng(9)
    gamma = rng.normal(1.0, 0.5, 192)
    beta = rng.normal(0.0, 0.2, 192)
    c = layernorm_constants(gamma, beta, 0.05, 0.03, eps=1e-5)
    g = c.gamma_shift
    lim = 2 ** (GAMMA_BITS - 1) - 1
    np.testing.assert_array_equal(c.gamma_int, half_up(gamma / 0.03 * 2.0**g))
    np.testing.assert_array_equal(c.beta_int, half_up(beta / 0.03 * 2.0 ** (g + NORM_FRAC_BITS)))
    assert np.abs(c.gamma_int).max() <= lim
    assert g == GAMMA_BITS - 1 or half_up(np.abs(gamma) / 0.03 * 2.0 ** (g + 1)).max() > lim
    assert c.q_eps == half_up(1e-5 * 192**2 / 0.05**2)
    # Documented widths for the ViT-Tiny case (C = 192, int8 input).
    assert (c.s1_bits, c.s2_bits, c.dev_bits, c.var_bits, c.norm_bits) == (16, 22, 17, 30, 17)
    tiny = layernorm_constants(np.full(4, 1e-9), np.zeros(4), 0.1, 1.0)
    assert tiny.gamma_shift == GAMMA_BITS - 1 and not tiny.gamma_int.any()


def half_up(v):
    """``floor(v + 1/2)`` in float64, the documented rounding of every constant."""
    return np.floor(np.asarray(v) + 0.5)


def test_layernorm_constants_round_ties_half_up():
    # Exact ties: gamma / S_out * 2**15 = 2.5 and 0.5, beta / S_out * 2**27 = +-2.5,
    # eps * C**2 / S_in**2 = 2.5. Half up, as quant.quantize rounds (half-even gave 2, 0, 2).
    c = layernorm_constants([5 * 2.0**-16, 2.0**-16], [2.5 * 2.0**-27, -2.5 * 2.0**-27],
                            1.0, 1.0, eps=0.625)
    assert c.gamma_shift == GAMMA_BITS - 1 and NORM_FRAC_BITS == 12
    assert c.gamma_int.tolist() == [3, 1]
    assert c.beta_int.tolist() == [3, -2]
    assert c.q_eps == 3


def test_layernorm_constants_reject_an_in_scale_whose_square_underflows():
    # in_scale**2 is the scale eps is divided by: 1e-163**2 == 0.0 raised ZeroDivisionError.
    for s_in, eps in ((1e-163, 0.0), (1e-163, 1e-6), (np.nextafter(IN_SCALE_MIN, 0.0), 0.0)):
        with pytest.raises(ValueError, match=r"in_scale = .* is too small: it must be >= "
                                             r"1.49167e-154 so that in_scale\*\*2"):
            layernorm_constants(np.ones(4), np.zeros(4), s_in, 0.05, eps=eps)
    assert IN_SCALE_MIN**2 == np.finfo(np.float64).tiny
    c = layernorm_constants(np.ones(4), np.zeros(4), IN_SCALE_MIN, 0.05, eps=0.0)
    assert c.q_eps == 0
    q = np.array([[-3, 0, 1, 2]])
    np.testing.assert_array_equal(layernorm_int(q, c), layernorm_int(q, layernorm_constants(
        np.ones(4), np.zeros(4), 0.1, 0.05, eps=0.0)))


def test_isqrt_iteration_bound_accepts_numpy_integers():
    assert isqrt_iteration_bound(np.int64(32)) == isqrt_iteration_bound(32) == 6
    assert isqrt_iteration_bound(np.uint8(20)) == 5
    with pytest.raises(ValueError, match="bits must be an integer in"):
        isqrt_iteration_bound(32.0)
    with pytest.raises(ValueError, match="bits must be an integer in"):
        isqrt_iteration_bound(np.int64(0))


def test_layernorm_saturation_at_both_ends():
    channels = 192
    gamma = np.full(channels, 2.0)
    beta = np.linspace(-2.0, 2.0, channels)
    c = layernorm_constants(gamma, beta, 0.05, 0.01)
    beta_q = quantize(beta, 0.01)  # constant rows normalize to 0, leaving beta (saturated at ends)
    assert beta_q.min() == -128 and beta_q.max() == 127
    for v in (-128, 127):
        np.testing.assert_array_equal(layernorm_int(np.full((2, channels), v), c), [beta_q] * 2)
    row = np.full((1, channels), -128)
    row[0, 5] = 127
    y = layernorm_int(row, c)
    assert y[0, 5] == 127 and y[0, 0] == -128  # +13.8 sigma saturates high, beta -2 low
    row = -row - 1
    y = layernorm_int(row, c)
    assert y[0, 5] == -128
    # int16 extremes, alternating: no intermediate overflows.
    c16 = layernorm_constants(gamma, beta, 1e-4, 0.02, in_bits=16)
    alt = np.tile([-(2**15), 2**15 - 1], (3, channels // 2))
    ref = quantize(float_layernorm(alt, 1e-4, gamma, beta), 0.02)
    np.testing.assert_array_equal(layernorm_int(alt, c16), ref)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"gamma": np.ones((2, 3))}, ValueError, "gamma must be 1-D"),
        ({"gamma": np.ones(1), "beta": np.zeros(1)}, ValueError, "needs 2 to 4096 channels"),
        (
            {"gamma": np.ones(CHANNELS_MAX + 1), "beta": np.zeros(CHANNELS_MAX + 1)},
            ValueError,
            "needs 2 to 4096 channels",
        ),
        ({"gamma": ["a", "b", "c", "d"]}, TypeError, "gamma must hold real numbers"),
        ({"gamma": [1.0, np.nan, 1.0, 1.0]}, ValueError, "gamma contains nan or inf"),
        ({"beta": np.zeros(5)}, ValueError, "beta must have 4 values"),
        ({"beta": np.array([True] * 4)}, TypeError, "beta must hold real numbers"),
        ({"in_scale": 0.0}, ValueError, "in_scale must be a finite number > 0"),
        ({"in_scale": math.nan}, ValueError, "in_scale must be a finite number > 0, got nan"),
        ({"out_scale": -1.0}, ValueError, "out_scale must be a finite number > 0"),
        ({"out_scale": "x"}, TypeError, "out_scale must be a real number"),
        ({"eps": -1e-6}, ValueError, "eps must be >= 0"),
        ({"eps": 1e30}, ValueError, "eps / in_scale..2 .* too large"),
        ({"in_bits": 17}, ValueError, r"in_bits must lie in \[2, 16\]"),
        ({"in_bits": 8.0}, TypeError, "in_bits must be an integer"),
        ({"out_scale": 1e-6}, ValueError, "max .gamma. / out_scale .* must be below"),
        ({"beta": np.full(4, 1e3), "out_scale": 0.01}, ValueError, "max .beta. / out_scale"),
    ],
)
def test_layernorm_constants_bad_inputs(kwargs, exc, match):
    args = {"gamma": np.ones(4), "beta": np.zeros(4), "in_scale": 0.1, "out_scale": 0.05}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        layernorm_constants(**args)


def test_layernorm_bad_inputs():
    c = layernorm_constants(np.ones(4), np.zeros(4), 0.1, 0.05)
    with pytest.raises(ValueError, match="q must have 4 channels"):
        layernorm_int(np.zeros((2, 5), dtype=np.int8), c)
    with pytest.raises(ValueError, match="q must have 4 channels"):
        layernorm_int(np.int8(3), c)
    with pytest.raises(TypeError, match="q must hold integers"):
        layernorm_int(np.zeros((2, 4)), c)
    with pytest.raises(ValueError, match=r"q \(int8 input\) must lie in \[-128, 127\]"):
        layernorm_int(np.full((2, 4), 128), c)
    with pytest.raises(TypeError, match="consts must be LayerNormConstants"):
        layernorm_int(np.zeros((2, 4), dtype=np.int8), {"channels": 4})
