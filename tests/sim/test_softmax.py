"""The softmax unit (sim/units/softmax.py): cycles, work, refusals, and its kernel against golden.

The cycles are the RTL unit's (``edgetron.hw.softmax``, measured equal to the RTL in
tests/rtl and tests/cocotb), written out here as closed forms; the kernel is compared with
``golden.softmax.softmax_apply`` on the same
:class:`~edgetron.golden.softmax.SoftmaxConstants`, on random logits and at the extremes of
its input range.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN
from edgetron.golden.softmax import softmax_apply, softmax_constants
from edgetron.hw.softmax import (
    SOFTMAX_EXP_STAGES,
    SOFTMAX_INGEST_STAGES,
    SOFTMAX_MAX_TREE_STAGES,
    SOFTMAX_NORM_STAGES,
    SOFTMAX_RECIP_LATENCY,
)
from edgetron.hw.softmax import softmax_cycles as hw_softmax_cycles
from edgetron.sim.records import F_A_B, F_COLS, F_ELEMS, F_ROWS, FIELDS
from edgetron.sim.units import softmax
from edgetron.workload import Softmax

#: Input scales across golden's supported range ``(2**-75, 2**18]``.
SCALES = (2.0**-74, 1e-5, 1.0 / 1024, 0.05, 1.0, 2.0**18)


#: One row's latency is ``2 B + (M + 1) T + FIXED`` (docs/vector-units.md): the max tree's
#: ``M`` cycles per level, the sum tree's one; the ingest stages, the exp-pass stages, the
#: divider and the normalize stages, less the 2 cycles of the two ``B - 1`` terms.
M = len(SOFTMAX_MAX_TREE_STAGES)
FIXED = (len(SOFTMAX_INGEST_STAGES) + len(SOFTMAX_EXP_STAGES) + SOFTMAX_RECIP_LATENCY
         + len(SOFTMAX_NORM_STAGES) - 2)


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


def test_cycles_are_the_rtl_units():
    # The RTL unit's function, rows overlapped: 591 rows of 197 logits on 16 lanes,
    # B = 13 beats, period P = max(13, 9) = 13, one row's latency 2 B + (M + 1) T + FIXED
    # = 26 + (M + 1) * 4 + FIXED.
    assert SOFTMAX_RECIP_LATENCY == 9
    assert (softmax.softmax_cycles(params(16), 591, 197)
            == 13 + 590 * 13 + 26 + (M + 1) * 4 + FIXED)
    assert softmax.softmax_cycles(params(16), 591, 197) == hw_softmax_cycles(16, 591, 197)
    # Short rows wait for the divider: 8 logits on 16 lanes, B = 1, P = 9.
    assert softmax.softmax_cycles(params(16), 4, 8) == 1 + 3 * 9 + 2 + (M + 1) * 4 + FIXED
    # One lane, one element: B = 1, T = 0.
    assert softmax.softmax_cycles(params(1), 1, 1) == 1 + 2 + FIXED
    # divider: 8 digit pairs of 3 compare-subtracts, and 3d once
    assert softmax.SOFTMAX_RECIP_ADDS == 3 * 8 + 1
    assert softmax.SOFTMAX_EXP_BYTES == 2  # a 16-bit exponential


def test_work_streams_and_keeps_its_rings():
    p = params(16)
    rec = np.zeros(len(FIELDS), np.int64)
    rec[F_ROWS], rec[F_COLS], rec[F_ELEMS], rec[F_A_B] = 591, 197, 591 * 197, 4
    w = softmax.work(p, rec)
    assert w.cycles == 13 + 590 * 13 + 26 + (M + 1) * 4 + FIXED
    # q ring 13 + M * 4 + 1 words of 16 int32 logits, e ring 13 + 4 + 9 + 1 of 16
    # exponentials
    assert w.buffer_bytes == 16 * ((14 + M * 4) * 4 + 27 * 2)
    assert w.sram_write == w.sram_read == 591 * 13 * 16 * (4 + 2)
    assert w.muls == 591 * 197 * 4
    assert w.adds == 591 * 197 * 6 + 591 * (25 + 2 * 15)


def test_rows_longer_than_vector_row_max_are_refused():
    op = Softmax(name="attn", inputs=("input",), batch=1, rows=4, cols=300)
    assert softmax.check_config(op, AcceleratorConfig(vector_row_max=300)) is None
    assert softmax.check_config(op, AcceleratorConfig(vector_row_max=299)) == (
        "softmax rows of 300 logits are longer than the softmax unit's vector_row_max 299")


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
