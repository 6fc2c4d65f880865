"""The conv front end (sim/units/conv.py): im2col shapes and data, depthwise, DRAM bytes of a
call, and convolutions through the GEMM unit's kernel against golden at the int8 extremes."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.golden.conv import conv2d_int
from edgetron.golden.gemm import accumulator_bound
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX
from edgetron.hw.conv import dw_output_latency
from edgetron.sim.engine import simulate
from edgetron.sim.units import conv
from edgetron.sim.units.gemm import gemm_tiled
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


def test_depthwise_mode_costs_the_rtl_schedule():
    # MobileNetV2's 3x3 depthwise layer on 112 x 112 x 32 runs in the array's depthwise
    # mode: one call per group of 16 channels, its cycles the RTL's (dw_sequence), 9 of
    # each column's 16 PEs busy while a row is swept.
    op = DwConv2d(name="dw", inputs=("input",), n=1, h=112, w=112, c=32, k=32, r=3, s=3,
                  **_pads((1, 1, 1, 1)))
    assert op.gemm == GemmShape(32, 112 * 112, 9, 1, True)
    cfg = PRESETS["edge-16"]
    res = simulate(Trace(name="t", batch=1, ops=(op,)), cfg).op_dict(0)
    cycles, head, tail = conv.dw_sequence(16, 2, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1)
    assert res["compute_cycles"] == cycles
    assert res["calls"] == 2
    # Per call: the command, the first two input rows (the line fill), 112 rows swept in
    # 114 cycles each; one drain (the output latency) at the end.
    assert cycles == 2 * (1 + 2 * 112 + 112 * 114) + dw_output_latency(16)
    assert head == 1 + 2 * 112 + 2 + dw_output_latency(16) + 1
    # After the last input pixel (cycle 1 + 112*112 - 1: the loader, 112 cycles a row,
    # never waits for the 114-cycle sweeps), the sweeps still to come, then the drain.
    assert tail == 4 * 114 - 8 + dw_output_latency(16) + 1
    mac_util = op.macs / (cfg.rows * cfg.cols * cycles)
    assert 0.5 < mac_util < 9 / 16
    assert res["dram_a_bytes"] == 112 * 112 * 32             # every pixel read once


def test_depthwise_outside_the_mode_is_one_small_gemm_per_channel():
    # A 5x5 depthwise kernel needs 25 PEs per column, more than edge-16's 16 rows: it runs
    # as 32 products (112*112) x 25 @ 25 x 1, one array column per product.
    op = DwConv2d(name="dw", inputs=("input",), n=1, h=56, w=56, c=32, k=32, r=5, s=5,
                  **_pads((2, 2, 2, 2)))
    res = simulate(Trace(name="t", batch=1, ops=(op,)), PRESETS["edge-16"]).op_dict(0)
    assert 0 < res["utilization"] <= 16 / 256
    assert res["tile_k"] == 25


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


@pytest.mark.parametrize("groups, mult", [(1, 1), (2, 1), (4, 1), (4, 2)])
@pytest.mark.parametrize("fill", ["random", "min", "max", "alternating"])
def test_im2col_through_the_gemm_kernel_equals_golden(groups, mult, fill):
    """conv2d (groups 1, 2) and depthwise (groups = c, multiplier 1 or 2) with padding,
    run as the GEMM unit's calls on the im2col matrices, with all -128 / 127 inputs and
    weights and the largest bias the accumulator leaves room for."""
    rng = np.random.default_rng(3)
    n, h, w, c, r, s, stride = 2, 7, 6, 4, 3, 3, 2
    k = c * mult if groups == c else 8
    cg = c // groups
    values = {"random": lambda shape: rng.integers(INT8_MIN, INT8_MAX + 1, size=shape),
              "min": lambda shape: np.full(shape, INT8_MIN),
              "max": lambda shape: np.full(shape, INT8_MAX),
              "alternating": lambda shape: rng.choice([INT8_MIN, INT8_MAX], size=shape)}[fill]
    x = values((n, h, w, c)).astype(np.int64)
    wt = values((k, cg, r, s)).astype(np.int64)
    room = INT32_MAX - accumulator_bound(cg * r * s)
    bias = rng.choice([-room, room, 0], size=k).astype(np.int64)
    pads = (1, 1, 1, 1)
    ref = conv2d_int(x.transpose(0, 3, 1, 2), wt, bias, stride, pads, groups)
    oh, ow = ref.shape[2], ref.shape[3]
    xpad = np.ascontiguousarray(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
    m, kk, kg = n * oh * ow, cg * r * s, k // groups
    a = np.stack([conv.im2col_rows(xpad, g, cg, r, s, stride, stride, oh, ow, 0, m, 0, kk)
                  for g in range(groups)])
    zeros = np.zeros((groups, kg), dtype=np.int64)
    for dataflow in (0, 1, 2):
        for tile in ((m, kk, kg), (5, 9, 1)):
            out = np.empty((groups, m, kg), dtype=np.int64)
            calls, ok = gemm_tiled(a, conv.conv_weight_matrix(wt, groups),
                                   bias.reshape(groups, kg), zeros, zeros, 1, -(1 << 31),
                                   (1 << 31) - 1, *tile, 4, 4, dataflow, out)
            assert ok and calls == groups * -(-m // tile[0]) * -(-kk // tile[1]) * -(-kg // tile[2])
            got = out.transpose(1, 0, 2).reshape(n, oh, ow, k)
            np.testing.assert_array_equal(got, ref.transpose(0, 2, 3, 1))


def test_depthwise_mode_functional_run_is_exact_and_makes_its_calls():
    # Depthwise layers in the mode (stride 1 and 2, a partial channel group, two images,
    # ReLU6) and one outside it (channel multiplier 2): bit-exact against golden, and
    # the functional kernel makes the calls the timing model counts (one per image and
    # group of 16 channels in the mode).
    from edgetron.sim.functional import run_functional
    from edgetron.sim.prepare import prepare

    trace = Trace(name="dw", batch=2, ops=(
        DwConv2d(name="dw1", inputs=("input",), n=2, h=14, w=14, c=20, k=20, r=3, s=3,
                 act="relu6", **_pads((1, 1, 1, 1))),
        DwConv2d(name="dw2", inputs=(0,), n=2, h=14, w=14, c=20, k=20, r=3, s=3,
                 stride_h=2, stride_w=2, **_pads((0, 1, 0, 1))),
        DwConv2d(name="dw3", inputs=(1,), n=2, h=7, w=7, c=20, k=40, r=3, s=3,
                 **_pads((1, 1, 1, 1))),
    ))
    cfg = PRESETS["edge-16"]
    res = run_functional(prepare(trace, seed=3), cfg)
    assert res.ok, res.summary()
    sim = simulate(trace, cfg)
    assert [sim.op_dict(i)["calls"] for i in range(2)] == [4, 4]
    assert sim.op_dict(2)["tile_k"] == 9 and sim.op_dict(2)["calls"] > 4
