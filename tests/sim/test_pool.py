"""The pool unit (sim/units/pool.py): closed-form cycles and line buffer, and its kernel
against golden's ``maxpool2d`` / ``avgpool2d`` (padding, strides, windows from 1x1 to global,
int8 extremes)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.conv import avgpool2d, avgpool_constants, maxpool2d
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw.pool import (
    POOL_LATENCY,
    pool_cycles,
    pool_grid,
    pool_line_buffer_bytes,
    pool_row_beats,
)
from edgetron.sim.engine import simulate
from edgetron.sim.units import pool
from edgetron.workload import MaxPool, Trace


def params(lanes: int):
    return AcceleratorConfig(vector_lanes=lanes).sim_params()


def test_closed_forms():
    # ResNet-18's max pool: 112x112x64 -> 56x56, 3x3/2, padding 1, 16 lanes: ceil(64/16) = 4
    # channel groups per pixel, every pixel once; the last window ends at pixel (111, 111).
    assert pool_cycles(16, 1, 112, 112, 64, 56, 56, 3, 3, 2, 2, 1, 1) == (
        112 * 112 * 4 + POOL_LATENCY)
    # Global average pool 7x7x512 on 8 lanes, two images: 64 groups x 49 pixels each.
    assert pool_cycles(8, 2, 7, 7, 512, 1, 1, 7, 7, 1, 1, 0, 0) == 2 * 49 * 64 + POOL_LATENCY
    # 3x3/1 with padding 1 on 4x5: a padded bottom row and right column (5 x 6 grid); the
    # last window ends at grid (4, 5).
    assert pool_grid(4, 5, 4, 5, 3, 3, 1, 1, 1, 1) == (5, 6, 4, 5)
    assert pool_cycles(4, 1, 4, 5, 4, 4, 5, 3, 3, 1, 1, 1, 1) == 5 * 6 + POOL_LATENCY
    # 2x2/2 on 7 x 7: rows and columns 6 are in no window; the last output leaves at (5, 5)
    assert pool_cycles(1, 2, 7, 7, 1, 3, 3, 2, 2, 2, 2, 0, 0) == 49 + 5 * 7 + 6 + POOL_LATENCY


def test_sim_cycles_follow_the_record():
    cfg = AcceleratorConfig(vector_lanes=16)
    op = MaxPool(name="mp", inputs=("input",), n=1, h=112, w=112, c=64, r=3, s=3,
                 stride_h=2, stride_w=2, pad_top=1, pad_bottom=1, pad_left=1, pad_right=1)
    res = simulate(Trace(name="t", batch=1, ops=(op,)), cfg).ops[0]
    assert res["cycles"] >= res["vector_cycles"] == 112 * 112 * 4 + POOL_LATENCY


def test_line_buffer():
    # Two grid rows of ceil(c/lanes) words of lanes values: ResNet-18's max pool at 16 lanes
    # (113 grid columns with the right padding), a global pool, a partial channel group.
    assert pool_line_buffer_bytes(16, 113, 64, 3, 3) == 2 * 113 * 64
    assert pool_line_buffer_bytes(16, 8, 20, 2, 2) == 2 * 8 * 32
    # a global pool (7x7) keeps only the unit's running sums
    assert pool_line_buffer_bytes(8, 7, 1280, 7, 7) == 0
    # the RTL's line buffer from the config holds exactly the bytes the simulator places
    assert pool_row_beats(16, 128 * 1024) * 2 * 16 == 128 * 1024


def _out(size: int, k: int, stride: int, pad: tuple[int, int]) -> int:
    return (size + pad[0] + pad[1] - k) // stride + 1


def _check(x: np.ndarray, kernel, stride, pads) -> None:
    """Both pools of the NHWC ``x`` by the kernel and by golden (NCHW)."""
    r, s = kernel
    pt, pb, pl, pr = pads
    oh, ow = _out(x.shape[1], r, stride[0], (pt, pb)), _out(x.shape[2], s, stride[1], (pl, pr))
    xn = x.transpose(0, 3, 1, 2)
    for is_max in (True, False):
        m, sq = (0, 1) if is_max else avgpool_constants(r * s)
        out = np.full((x.shape[0], oh, ow, x.shape[3]), 99, dtype=np.int64)
        pool.pool_nhwc(x, r, s, stride[0], stride[1], pt, pl, oh, ow, is_max, m, sq, out)
        want = (maxpool2d(xn, kernel, stride, pads) if is_max
                else avgpool2d(xn, kernel, stride, pads, m, sq))
        np.testing.assert_array_equal(out, want.transpose(0, 2, 3, 1),
                                      err_msg=f"max={is_max} {kernel} {stride} {pads}")


GEOMETRIES = [
    ((3, 3), (2, 2), (1, 1, 1, 1)),  # ResNet's max pool
    ((2, 2), (2, 2), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (1, 1, 1, 1)),
    ((3, 2), (2, 1), (1, 0, 0, 1)),  # asymmetric
    ((1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1: the identity (the average by 1)
    ((3, 3), (3, 3), (0, 1, 0, 1)),  # padding only at the end
]


@pytest.mark.parametrize("kernel, stride, pads", GEOMETRIES)
def test_random_maps_equal_golden(kernel, stride, pads):
    rng = np.random.default_rng(7)
    _check(rng.integers(INT8_MIN, INT8_MAX + 1, size=(2, 9, 8, 5)), kernel, stride, pads)


@pytest.mark.parametrize("kernel, stride, pads", GEOMETRIES)
def test_extremes_equal_golden(kernel, stride, pads):
    rng = np.random.default_rng(8)
    shape = (1, 7, 6, 3)
    for x in (np.full(shape, INT8_MIN), np.full(shape, INT8_MAX),
              rng.choice([INT8_MIN, INT8_MAX], size=shape)):
        _check(x.astype(np.int64), kernel, stride, pads)


def test_global_pool_equals_golden():
    rng = np.random.default_rng(9)
    x = rng.integers(INT8_MIN, INT8_MAX + 1, size=(2, 7, 7, 16))
    _check(x, (7, 7), (1, 1), (0, 0, 0, 0))
    _check(np.full((1, 7, 7, 4), INT8_MIN), (7, 7), (1, 1), (0, 0, 0, 0))
