"""The add unit (sim/units/add.py): closed-form cycles, and its residual kernel against golden.

``residual_elems`` is compared with golden's ``residual_add`` followed by the fused
activation's clamp, on the same :class:`~edgetron.golden.add.ResidualConstants`:
every pair of int8 values at several constants, including the largest multipliers and
the shift limits.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.add import ResidualConstants, residual_add, residual_constants
from edgetron.golden.intops import INT8_MAX, INT8_MIN, M_MAX, S_MAX, S_MIN
from edgetron.golden.quant import activation_bounds
from edgetron.hw.gemm import REQUANT_LATENCY
from edgetron.sim.units import add


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


@pytest.mark.parametrize("elements, lanes", [(1, 1), (151296, 16), (1000, 7)])
def test_closed_forms(elements, lanes):
    # The RTL unit's four stages: products, sum, rounding shift, saturation.
    assert add.add_cycles(params(lanes), elements) == -(-elements // lanes) + 4


def test_psum_accumulation_closed_form():
    # Modelled (no RTL): three int32 partial tiles of 100 elements on 8 lanes: 3 * 13
    # beats, the accumulate pass 3, the requantizer.
    assert add.PSUM_LATENCY == 3
    assert add.psum_accumulate_cycles(params(8), 100, 3) == 3 * 13 + 3 + REQUANT_LATENCY


#: Every pair of int8 values.
_A, _B = (v.ravel() for v in np.meshgrid(np.arange(INT8_MIN, INT8_MAX + 1),
                                          np.arange(INT8_MIN, INT8_MAX + 1)))

CONSTANTS = [
    residual_constants(0.05, 0.05, 0.1),
    residual_constants(1.0 / 32, 0.5, 0.2),
    residual_constants(1e-3, 1.0, 1.0),
    ResidualConstants(M_MAX, M_MAX, S_MAX),  # the largest products, the largest shift
    ResidualConstants(M_MAX, M_MAX, 32),  # the largest products, saturating both ways
    ResidualConstants(M_MAX, 0, S_MIN),  # one addend ignored, the smallest shift
    ResidualConstants(1, 1, S_MIN),  # round half up at the smallest shift
    ResidualConstants(0, 0, 5),  # all zero
]


@pytest.mark.parametrize("rc", CONSTANTS, ids=str)
@pytest.mark.parametrize("act, out_scale", [("none", 0.1), ("relu", 0.1), ("relu6", 0.1),
                                            ("relu6", 0.03)])
def test_every_int8_pair_equals_golden(rc, act, out_scale):
    lo, hi = activation_bounds(act, out_scale)
    out = np.empty_like(_A)
    add.residual_elems(_A, _B, rc, lo, hi, out)
    want = np.clip(residual_add(_A, _B, rc.m_a, rc.m_b, rc.s), lo, hi)
    np.testing.assert_array_equal(out, want)


def test_saturation_reaches_both_ends():
    rc = ResidualConstants(M_MAX, M_MAX, 32)
    a = np.array([INT8_MIN, INT8_MAX, 0], dtype=np.int64)
    out = np.empty_like(a)
    add.residual_elems(a, a.copy(), rc, INT8_MIN, INT8_MAX, out)
    assert list(out) == [INT8_MIN, INT8_MAX, 0]
