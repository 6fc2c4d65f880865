"""The GELU unit (sim/units/gelu.py): closed-form cycles, and its kernels against golden.

``gelu_elems`` is compared with ``golden.gelu.gelu_apply`` and ``gelu_int8_elems`` with
``gelu_int8_apply``, on the same constants, over every int8 input, across input scales
and widths up to the int32 limits.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.gelu import (
    gelu_apply,
    gelu_constants,
    gelu_int8_apply,
    gelu_int8_constants,
)
from edgetron.golden.intops import INT32_MAX, INT32_MIN, int_range
from edgetron.hw.gelu import GELU_STAGES
from edgetron.hw.gemm import REQUANT_LATENCY
from edgetron.sim.units import gelu

#: Input scales across golden's range ``(2**-73, 2**20]``.
SCALES = (2.0**-72, 1e-4, 1.0 / 32, 0.5, 2.0**20)


def test_cycles_are_the_rtl_units():
    for elements, lanes in ((1, 1), (151296, 16), (1000, 7)):
        p = AcceleratorConfig(vector_lanes=lanes).sim_params()
        # ceil(E / lanes) + one cycle per i-GELU stage + the requantizer's stages
        want = -(-elements // lanes) + len(GELU_STAGES) + REQUANT_LATENCY
        assert gelu.gelu_cycles(p, elements) == want


def _inputs(bits: int) -> np.ndarray:
    """Every value for 8 bits; for wider inputs the extremes, small values and random ones."""
    lo, hi = int_range(bits)
    if bits <= 8:
        return np.arange(lo, hi + 1, dtype=np.int64)
    rng = np.random.default_rng(bits)
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    return np.concatenate([edges, np.arange(-300, 300), rng.integers(lo, hi + 1, size=2993)])


@pytest.mark.parametrize("bits", [8, 16, 32])
@pytest.mark.parametrize("scale", SCALES)
def test_int32_output_equals_golden(scale, bits):
    consts = gelu_constants(scale, bits)
    x = _inputs(bits).reshape(-1, 4) if bits > 8 else _inputs(bits)  # any shape
    out = np.empty_like(x)
    gelu.gelu_elems(x, consts, out)
    np.testing.assert_array_equal(out, gelu_apply(x, consts))


@pytest.mark.parametrize("bits", [8, 32])
@pytest.mark.parametrize("scale, out_scale", [(1.0 / 32, 1.0 / 32), (1.0 / 32, 1e-3),
                                              (1e-4, 1e-6), (0.5, 4.0), (2.0**20, 2.0**25)])
def test_int8_output_equals_golden(scale, out_scale, bits):
    # Small output scales saturate at 127; the negative tail reaches -128 only when
    # the output scale is tiny.
    c8 = gelu_int8_constants(scale, out_scale, bits)
    x = _inputs(bits)
    out = np.empty_like(x)
    gelu.gelu_int8_elems(x, c8, out)
    np.testing.assert_array_equal(out, gelu_int8_apply(x, c8))


def test_int32_limits_reach_the_output():
    consts = gelu_constants(1e-6, 32)
    x = np.array([INT32_MIN, INT32_MAX], dtype=np.int64)
    out = np.empty_like(x)
    gelu.gelu_elems(x, consts, out)
    want = gelu_apply(x, consts)
    np.testing.assert_array_equal(out, want)
    assert want[1] > 0  # a large positive input passes (GELU(x) ~ x)
