"""Vector-unit timing (sim/vector.py) and pooling (sim/conv.py) against hand-derived closed forms.

Each expected value is written out from the formulas of the module docstrings with the
stage counts of the golden datapaths, so a change of any latency constant shows here.
"""

from __future__ import annotations

import math

import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.layernorm import ISQRT_BITS, RECIP_K, isqrt_iteration_bound
from edgetron.golden.softmax import EXP_BITS
from edgetron.sim import conv, vector
from edgetron.sim.units.gemm import REQUANT_LATENCY


def params(lanes: int, **kw):
    return AcceleratorConfig(vector_lanes=lanes, **kw).sim_params()


def test_latency_constants_follow_the_golden_datapaths():
    # Softmax reciprocal: one setup cycle, then one quotient bit of factor per cycle.
    assert vector.SOFTMAX_RECIP_LATENCY == 1 + EXP_BITS == 17
    # Newton updates: the golden bound for 32-bit operands.
    assert vector.ISQRT_UPDATES == isqrt_iteration_bound(ISQRT_BITS) == 6
    # One update: setup + a 17-bit quotient + the add-and-halve.
    assert vector.ISQRT_UPDATE_LATENCY == 1 + (ISQRT_BITS // 2 + 1) + 1 == 19
    # factor = floor(2**31 / std), std >= 2**15: 17 quotient bits.
    assert vector.LAYERNORM_RECIP_LATENCY == 1 + RECIP_K - ISQRT_BITS // 2 + 2 == 18
    assert vector.LAYERNORM_ROW_LATENCY == 3 + 6 * 19 + 18 == 135
    assert vector.GELU_LATENCY == 6 + REQUANT_LATENCY
    assert vector.REQUANT_LATENCY == REQUANT_LATENCY


@pytest.mark.parametrize("lanes, depth", [(1, 0), (2, 1), (3, 2), (8, 3), (16, 4), (17, 5)])
def test_tree_depth_is_ceil_log2(lanes, depth):
    assert vector.tree_depth(lanes) == depth == math.ceil(math.log2(lanes))


@pytest.mark.parametrize("n, lanes", [(1, 1), (7, 8), (8, 8), (9, 8), (197, 16), (768, 16)])
def test_beats(n, lanes):
    assert vector.beats(n, lanes) == -(-n // lanes)


def test_softmax_closed_form():
    # 591 rows of 197 logits on 16 lanes: per row 3 passes of ceil(197/16) = 13 beats,
    # max 1 + tree 4, exp 7 + tree 4, reciprocal 17, normalize 3.
    p = params(16)
    per_row = 3 * 13 + (1 + 4) + (7 + 4) + 17 + 3
    assert per_row == 75
    assert vector.softmax_cycles(p, 591, 197) == 591 * 75
    # One lane, one element: 3 beats, no tree.
    assert vector.softmax_cycles(params(1), 1, 1) == 3 + 1 + 7 + 17 + 3


def test_layernorm_closed_form():
    # 197 rows of 192 features on 16 lanes: 2 passes of 12 beats, stats 2 + tree 4,
    # the row latency 135, normalize 5.
    p = params(16)
    assert vector.layernorm_cycles(p, 197, 192) == 197 * (2 * 12 + 2 + 4 + 135 + 5)
    # Lanes wider than the row: one beat per pass.
    assert vector.layernorm_cycles(params(256), 3, 100) == 3 * (2 + 2 + 8 + 135 + 5)


@pytest.mark.parametrize("elements, lanes", [(1, 1), (151296, 16), (1000, 7)])
def test_single_pass_units(elements, lanes):
    p = params(lanes)
    b = -(-elements // lanes)
    assert vector.gelu_cycles(p, elements) == b + 6 + REQUANT_LATENCY
    assert vector.add_cycles(p, elements) == b + 3
    assert vector.concat_cycles(p, elements) == b + 2


def test_psum_accumulation_closed_form():
    # Three int32 partial tiles of 100 elements on 8 lanes: 3 * 13 beats, add 3, requant.
    assert vector.psum_accumulate_cycles(params(8), 100, 3) == 3 * 13 + 3 + REQUANT_LATENCY


def test_pools_closed_form():
    # ResNet-18's max pool: 112x112x64 -> 56x56, 3x3 windows, 16 lanes:
    # ceil(64/16) = 4 channel groups, one window element per beat, + 2 latency.
    p = params(16)
    assert conv.maxpool_cycles(p, 1, 56, 56, 64, 3, 3) == 4 * 56 * 56 * 9 + 2
    # Global average pool 7x7x512 on 8 lanes: 64 groups x 49 beats, + 1 + requant.
    assert conv.avgpool_cycles(params(8), 1, 1, 1, 512, 7, 7) == 64 * 49 + 1 + REQUANT_LATENCY
    # Overlapping 3x3 stride-2 windows keep 3 input rows; a global pool one row of sums.
    assert conv.pool_line_buffer_bytes(112, 64, 3, 2, 56, 56, 1, 4) == 3 * 112 * 64
    assert conv.pool_line_buffer_bytes(7, 1280, 7, 1, 1, 1, 1, 4) == 1280 * 4
    # 2x2 stride-2 windows do not overlap: one output row of int32 running values.
    assert conv.pool_line_buffer_bytes(8, 16, 2, 2, 4, 4, 1, 4) == 4 * 16 * 4


def test_cycles_grow_with_work_and_shrink_with_lanes():
    small, big = params(4), params(32)
    assert vector.softmax_cycles(small, 10, 100) > vector.softmax_cycles(big, 10, 100)
    assert vector.layernorm_cycles(big, 20, 64) == 2 * vector.layernorm_cycles(big, 10, 64)
