"""The LayerNorm unit (sim/units/layernorm.py): closed-form cycles, and its kernel against golden.

The latency constants are checked against the golden widths they are derived from; the
kernel is compared with ``golden.layernorm.layernorm_int`` on the same
:class:`~edgetron.golden.layernorm.LayerNormConstants`, on random rows and at the
extremes (-128/127 rows, zero variance with and without epsilon, two channels, the
widest inputs and the most channels golden takes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import int_range
from edgetron.golden.layernorm import (
    CHANNELS_MAX,
    IN_BITS_MAX,
    ISQRT_BITS,
    RECIP_K,
    isqrt,
    isqrt_iteration_bound,
    layernorm_constants,
    layernorm_int,
)
from edgetron.sim.units import layernorm


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


def test_latency_constants_follow_the_golden_datapath():
    # Newton updates: the golden bound for 32-bit operands.
    assert layernorm.ISQRT_UPDATES == isqrt_iteration_bound(ISQRT_BITS) == 6
    # One update: setup + a 17-bit quotient + the add-and-halve.
    assert layernorm.ISQRT_UPDATE_LATENCY == 1 + (ISQRT_BITS // 2 + 1) + 1 == 19
    # factor = floor(2**31 / std), std >= 2**15: 17 quotient bits.
    assert layernorm.LAYERNORM_RECIP_LATENCY == 1 + RECIP_K - ISQRT_BITS // 2 + 2 == 18
    assert layernorm.LAYERNORM_ROW_LATENCY == 3 + 6 * 19 + 18 == 135
    assert layernorm.LAYERNORM_ADDS_PER_ROW == 6 * 18 + 17


def test_closed_form():
    # 197 rows of 192 features on 16 lanes: 2 passes of 12 beats, stats 2 + tree 4,
    # the row latency 135, normalize 5.
    assert layernorm.layernorm_cycles(params(16), 197, 192) == 197 * (2 * 12 + 2 + 4 + 135 + 5)
    # Lanes wider than the row: one beat per pass.
    assert layernorm.layernorm_cycles(params(256), 3, 100) == 3 * (2 + 2 + 8 + 135 + 5)
    big = params(32)
    assert layernorm.layernorm_cycles(big, 20, 64) == 2 * layernorm.layernorm_cycles(big, 10, 64)


def test_isqrt_equals_golden():
    rng = np.random.default_rng(0)
    values = np.concatenate([np.arange(0, 1000), rng.integers(0, 1 << 32, size=2000),
                             [(1 << 32) - 1, 1 << 31, (1 << 31) - 1, (1 << 62) - 1]])
    got = np.array([layernorm._isqrt(int(v)) for v in values])
    np.testing.assert_array_equal(got, isqrt(values))
    assert all(math.isqrt(int(v)) == g for v, g in zip(values, got, strict=True))


def _check(q: np.ndarray, gamma, beta, in_scale=0.05, out_scale=0.05, eps=1e-6,
           in_bits=8) -> np.ndarray:
    consts = layernorm_constants(np.asarray(gamma, float), np.asarray(beta, float), in_scale,
                                 out_scale, eps, in_bits)
    q = np.ascontiguousarray(q, dtype=np.int64)
    out = np.full(q.shape, 99, dtype=np.int64)
    layernorm.layernorm_rows(q, consts, out)
    np.testing.assert_array_equal(out, layernorm_int(q, consts))
    return out


def _affine(rng, c):
    return rng.uniform(0.5, 1.5, size=c), rng.normal(0.0, 0.2, size=c)


@pytest.mark.parametrize("c", [2, 3, 64, 192, 768])
def test_random_rows_equal_golden(c):
    rng = np.random.default_rng(c)
    gamma, beta = _affine(rng, c)
    _check(rng.integers(-128, 128, size=(17, c)), gamma, beta)
    _check(rng.integers(-128, 128, size=(5, c)), -gamma, beta, in_scale=1e-3, out_scale=0.5)


def test_extremes_equal_golden():
    rng = np.random.default_rng(3)
    c = 16
    gamma, beta = _affine(rng, c)
    rows = np.array([
        [-128] * c, [127] * c, [-128, 127] * (c // 2), [0] * c,  # int8 extremes, all equal
        [-128] + [127] * (c - 1), [127] + [-128] * (c - 1),  # one outlier
    ])
    _check(rows, gamma, beta)
    _check(rows, gamma, beta, eps=0.0)  # zero variance and no epsilon: std 0, factor 0
    _check(rows, gamma, beta, eps=1e3)  # an epsilon that dominates the variance
    # Output saturation: a tiny output scale drives every normalized value to -128 / 127.
    out = _check(rows, np.full(c, 1.0), np.zeros(c), out_scale=2e-4)
    assert out.min() == -128 and out.max() == 127


def test_two_channels_and_the_widest_rows():
    rng = np.random.default_rng(4)
    _check(np.array([[-128, 127], [127, -128], [5, 5], [0, 1]]), [1.0, -1.0], [0.1, 0.0])
    gamma, beta = _affine(rng, CHANNELS_MAX)
    lo, hi = int_range(8)
    _check(rng.choice([lo, hi], size=(2, CHANNELS_MAX)), gamma, beta)


def test_the_widest_inputs_equal_golden():
    rng = np.random.default_rng(5)
    c = 256
    lo, hi = int_range(IN_BITS_MAX)
    gamma, beta = _affine(rng, c)
    rows = np.concatenate([rng.integers(lo, hi + 1, size=(8, c)),
                           rng.choice([lo, hi], size=(4, c)), np.full((1, c), lo)])
    _check(rows, gamma, beta, in_scale=1e-4, in_bits=IN_BITS_MAX)
