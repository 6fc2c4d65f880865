"""The LayerNorm unit (sim/units/layernorm.py): cycles, work, refusals, kernel against golden.

The cycles are the RTL unit's (``edgetron.hw.layernorm``, measured equal to the RTL in
tests/rtl and tests/cocotb), written out here as closed forms; the kernel is compared with
``golden.layernorm.layernorm_int`` on the same
:class:`~edgetron.golden.layernorm.LayerNormConstants`, on random rows and at the extremes
(-128/127 rows, zero variance with and without epsilon, two channels, the widest inputs and
the most channels golden takes).
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
    isqrt,
    layernorm_constants,
    layernorm_int,
)
from edgetron.hw.layernorm import layernorm_cycles as hw_layernorm_cycles
from edgetron.sim.records import F_A_B, F_COLS, F_ELEMS, F_ROWS, FIELDS
from edgetron.sim.units import layernorm
from edgetron.workload import LayerNorm


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


def test_cycles_are_the_rtl_units():
    # The RTL unit's function, rows overlapped (docs/vector-units.md): 197 rows of 192
    # channels on 16 lanes, B = 12, P = max(12, 9, 10) = 12, one row's latency
    # B + T + 41 = 57 (41 = 2 ingest + 6 row + 9 square root + 10 divider + 15 normalize
    # stages, the output FIFO's and skid buffer's included, - 1).
    assert layernorm.layernorm_cycles(params(16), 197, 192) == 12 + 196 * 12 + 57 == 2421
    assert layernorm.layernorm_cycles(params(16), 197, 192) == hw_layernorm_cycles(16, 197, 192)
    # Lanes wider than the row: one beat, the period is the divider's 10 cycles, T = 8.
    assert layernorm.layernorm_cycles(params(256), 3, 100) == 1 + 2 * 10 + 1 + 8 + 41
    # sqrt: 16 root bits, one trial each; divider: 9 digit pairs of 3, and 3d once; D: 2
    assert layernorm.LAYERNORM_ROW_ADDS == 2 + 16 + 3 * 9 + 1 == 46


def test_work_streams_and_keeps_its_ring():
    p = params(16)
    rec = np.zeros(len(FIELDS), np.int64)
    rec[F_ROWS], rec[F_COLS], rec[F_ELEMS], rec[F_A_B] = 197, 192, 197 * 192, 1
    w = layernorm.work(p, rec)
    assert w.cycles == 2421
    # x ring: 12 + 4 + 9 + 10 + 8 words of 16 int8 inputs
    assert w.buffer_bytes == 16 * 43
    assert w.sram_write == w.sram_read == 197 * 12 * 16
    assert w.muls == 197 * 192 * 4 + 197 * 2
    assert w.adds == 197 * 192 * 4 + 197 * (46 + 2 * 15)


def test_rows_longer_than_vector_row_max_are_refused():
    op = LayerNorm(name="ln", inputs=("input",), batch=1, rows=4, cols=1024)
    assert layernorm.check_config(op, AcceleratorConfig(vector_row_max=1024)) is None
    assert layernorm.check_config(op, AcceleratorConfig()) == (
        "LayerNorm rows of 1024 channels are longer than the LayerNorm unit's "
        "vector_row_max 768")


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
