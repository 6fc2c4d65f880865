"""The softmax unit (sim/units/softmax.py): closed-form cycles, and its kernel against golden.

The expected cycles are written out from the module's formula with the stage counts of
the golden datapath; the kernel is compared with ``golden.softmax.softmax_apply`` on the
same :class:`~edgetron.golden.softmax.SoftmaxConstants`, on random logits and at the
extremes of its input range.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN
from edgetron.golden.softmax import EXP_BITS, softmax_apply, softmax_constants
from edgetron.sim.units import softmax

#: Input scales across golden's supported range ``(2**-75, 2**18]``.
SCALES = (2.0**-74, 1e-5, 1.0 / 1024, 0.05, 1.0, 2.0**18)


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


def test_latency_constants_follow_the_golden_datapath():
    # The reciprocal: one setup cycle, then one quotient bit of factor per cycle.
    assert softmax.SOFTMAX_RECIP_LATENCY == 1 + EXP_BITS == 17
    assert (softmax.SOFTMAX_MAX_LATENCY, softmax.SOFTMAX_EXP_LATENCY,
            softmax.SOFTMAX_NORM_LATENCY) == (1, 7, 3)
    assert softmax.SOFTMAX_EXP_BYTES == 2  # a 16-bit exponential
    assert softmax.SOFTMAX_ADDS_PER_ROW == EXP_BITS


def test_closed_form():
    # 591 rows of 197 logits on 16 lanes: per row 3 passes of ceil(197/16) = 13 beats,
    # max 1 + tree 4, exp 7 + tree 4, reciprocal 17, normalize 3.
    per_row = 3 * 13 + (1 + 4) + (7 + 4) + 17 + 3
    assert per_row == 75
    assert softmax.softmax_cycles(params(16), 591, 197) == 591 * 75
    # One lane, one element: 3 beats, no tree.
    assert softmax.softmax_cycles(params(1), 1, 1) == 3 + 1 + 7 + 17 + 3
    assert softmax.softmax_cycles(params(4), 10, 100) > softmax.softmax_cycles(params(32), 10,
                                                                                100)


def _check(q: np.ndarray, scale: float) -> np.ndarray:
    """Run the kernel on ``q`` and assert it equals golden; return the output."""
    consts = softmax_constants(scale)
    q = np.ascontiguousarray(q, dtype=np.int64).reshape(-1, q.shape[-1])
    out = np.full(q.shape, -1, dtype=np.int64)
    softmax.softmax_rows(q, consts, out)
    want = softmax_apply(q, consts)
    np.testing.assert_array_equal(out, want, err_msg=f"scale {scale!r}")
    return out


@pytest.mark.parametrize("scale", SCALES)
def test_random_logits_equal_golden(scale):
    rng = np.random.default_rng(1)
    _check(rng.integers(INT8_MIN, INT8_MAX + 1, size=(40, 197)), scale)
    _check(rng.integers(-(1 << 20), 1 << 20, size=(20, 64)), scale)
    _check(rng.integers(INT32_MIN, INT32_MAX, size=(10, 33), endpoint=True), scale)


@pytest.mark.parametrize("scale", SCALES)
def test_extremes_equal_golden(scale):
    rows = [
        [INT8_MIN] * 8, [INT8_MAX] * 8, [INT8_MIN, INT8_MAX] * 4,  # int8 extremes
        [INT32_MIN, INT32_MAX], [INT32_MAX, INT32_MIN],  # the largest difference, 2**32 - 1
        [0] * 8, [INT32_MIN] * 8, [INT32_MAX] * 8,  # all equal
        [INT32_MAX] + [INT32_MIN] * 7, [INT8_MIN] * 7 + [INT8_MAX],  # one huge logit
    ]
    for row in rows:
        _check(np.array([row]), scale)
    for value in (INT32_MIN, -1, 0, 1, INT32_MAX):  # rows of length 1: probability 1
        out = _check(np.array([[value]]), scale)
        assert out[0, 0] == 127


def test_one_huge_logit_takes_everything():
    out = _check(np.array([[INT32_MAX] + [INT32_MIN] * 15]), 0.05)
    assert out[0, 0] == 127 and not out[0, 1:].any()


def test_long_rows_equal_golden():
    rng = np.random.default_rng(2)
    _check(rng.integers(INT8_MIN, INT8_MAX + 1, size=(2, 4096)), 1.0 / 32)
