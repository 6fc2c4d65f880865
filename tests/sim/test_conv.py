"""Convolution mapping (sim/conv.py): im2col shapes and data, depthwise, DRAM traffic of a call."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.golden.conv import conv2d_int
from edgetron.sim import conv
from edgetron.sim.engine import simulate
from edgetron.workload import Conv2d, DwConv2d, GemmShape, Trace


def _pads(p):
    return {"pad_top": p[0], "pad_bottom": p[1], "pad_left": p[2], "pad_right": p[3]}


@pytest.mark.parametrize("n, h, w, c, k, r, s, stride, pads, groups", [
    (1, 8, 8, 3, 4, 3, 3, 1, (1, 1, 1, 1), 1),
    (2, 9, 7, 4, 6, 3, 3, 2, (1, 1, 1, 1), 1),
    (1, 10, 10, 4, 8, 5, 3, 2, (2, 1, 0, 2), 2),  # asymmetric padding, two groups
    (1, 6, 6, 1, 5, 1, 1, 1, (0, 0, 0, 0), 1),
])
def test_im2col_times_weights_is_the_convolution(n, h, w, c, k, r, s, stride, pads, groups):
    rng = np.random.default_rng(0)
    op = Conv2d(name="c", inputs=("input",), n=n, h=h, w=w, c=c, k=k, r=r, s=s,
                stride_h=stride, stride_w=stride, groups=groups, **_pads(pads))
    mm = op.gemm
    assert mm == GemmShape(groups, n * op.out_h * op.out_w, c // groups * r * s, k // groups,
                             True)
    x = rng.integers(-128, 128, size=(n, h, w, c)).astype(np.int64)
    wt = rng.integers(-128, 128, size=(k, c // groups, r, s)).astype(np.int64)
    xpad = np.pad(x, ((0, 0), (pads[0], pads[1]), (pads[2], pads[3]), (0, 0)))
    wm = conv.conv_weight_matrix(wt, groups)
    assert wm.shape == (groups, mm.k, mm.n)
    got = np.stack([
        conv.im2col_rows(xpad, g, c // groups, r, s, stride, stride, op.out_h, op.out_w,
                         0, mm.m, 0, mm.k) @ wm[g]
        for g in range(groups)
    ])  # [groups, M, k/groups]
    ref = conv2d_int(xpad.transpose(0, 3, 1, 2), wt, None, stride, 0, groups)
    ref = ref.transpose(0, 2, 3, 1).reshape(mm.m, groups, mm.n).transpose(1, 0, 2)
    np.testing.assert_array_equal(got, ref)


def test_im2col_sub_block_is_a_slice_of_the_full_matrix():
    rng = np.random.default_rng(1)
    xpad = rng.integers(-128, 128, size=(1, 10, 10, 4)).astype(np.int64)
    full = conv.im2col_rows(xpad, 0, 4, 3, 3, 1, 1, 8, 8, 0, 64, 0, 36)
    part = conv.im2col_rows(xpad, 0, 4, 3, 3, 1, 1, 8, 8, 13, 20, 5, 17)
    np.testing.assert_array_equal(part, full[13:33, 5:22])


def test_depthwise_is_one_small_gemm_per_channel():
    # MobileNetV2's 3x3 depthwise layer on 112 x 112 x 32: 32 products of
    # (112*112) x 9 @ 9 x 1, so one array column of 9 rows per product.
    op = DwConv2d(name="dw", inputs=("input",), n=1, h=112, w=112, c=32, k=32, r=3, s=3,
                  **_pads((1, 1, 1, 1)))
    assert op.gemm == GemmShape(32, 112 * 112, 9, 1, True)
    res = simulate(Trace(name="t", batch=1, ops=(op,)), PRESETS["edge-16"])
    util = res.op_dict(0)["utilization"]
    # At most 9 of the 256 PEs do useful work.
    assert 0 < util <= 9 / 256
    dense = Conv2d(name="c", inputs=("input",), n=1, h=112, w=112, c=32, k=32, r=3, s=3,
                   **_pads((1, 1, 1, 1)))
    dense_util = simulate(Trace(name="t", batch=1, ops=(dense,)),
                          PRESETS["edge-16"]).op_dict(0)["utilization"]
    assert dense_util > 20 * util


@pytest.mark.parametrize("mt, kt, k_total, expect", [
    # 3x3 stride 1 on 8 x 8 x 4 (output 8 x 8): 64 pixels = 8 whole rows need all 8 input
    # rows (10 with padding, which is not fetched): 8 * 8 * 4.
    (64, 36, 36, 8 * 8 * 4),
    # 16 pixels = 2 output rows -> 4 input rows.
    (16, 36, 36, 4 * 8 * 4),
    # 12 pixels: not whole rows, so up to 3 output rows -> 5 input rows.
    (12, 36, 36, 5 * 8 * 4),
    # Half the channels of a K split.
    (16, 18, 36, 4 * 8 * 4 // 2),
    # 2 pixels: the im2col operand (2 x 36) is smaller than 4 raw rows.
    (2, 36, 36, 2 * 36),
])
def test_im2col_dram_bytes(mt, kt, k_total, expect):
    assert conv.im2col_dram_bytes(mt, kt, k_total, 1, 8, 8, 4, 8, 8, 3, 1, 1) == expect


def test_strided_1x1_fetches_only_used_pixels():
    # 1x1 stride 2 on 14 x 14 x 8 -> 7 x 7: 49 pixels of 8 channels.
    assert conv.im2col_dram_bytes(49, 8, 8, 1, 14, 14, 8, 7, 7, 1, 2, 1) == 49 * 8
