"""Matrix ops (sim/tiling.py: tiling, DRAM, double buffering) against hand-derived closed forms.

One GEMM-unit call (the formulas of sim/units/gemm.py, written out here by hand; R, C the
array, KF = ceil(K/R), NT = ceil(N/C), LAT = 3 for int8 output, 0 for int32):

    ws: 2 + max(M*KF, NT*K, N) + [R + (NT*KF - 1) * max(M, R) + M] + [R + C + 1 + LAT]

A matrix op on the engine (sim/tiling.py), with L / S the DRAM bytes into / out of a
call, BW the DRAM bandwidth, load = max(a, w, ch beats), tail = compute + drain:

    no double buffering: sum over calls of t + max(0, L/BW - load) + max(0, S/BW - tail)
    double buffering:    L/BW + max(t, L/BW) + (T-2) max(t, (L+S)/BW) + max(t, S/BW) + S/BW
                         for T alike calls, each fitting half of every buffer and of the
                         parameter memory (N <= C * (R // 2))

One channel's parameters (int32 bias, 31-bit m, 6-bit s) are ceil(69/8) = 9 bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.sim.engine import simulate
from edgetron.sim.records import COLUMNS
from edgetron.sim.tiling import gemm_costs, tile_fits
from edgetron.sim.units.gemm import ch_bytes, gemm_cycles
from edgetron.workload import Conv2d, Gemm, Trace

CH = 9  # bytes of one channel's (bias, m, s)
BIG = 1 << 20


def cfg4(**kw) -> AcceleratorConfig:
    base = dict(rows=4, cols=4, dataflow="ws", ifmap_sram_bytes=BIG, weight_sram_bytes=BIG,
                ofmap_sram_bytes=BIG, dram_bytes_per_cycle=4096.0, double_buffer=False,
                vector_lanes=16)
    base.update(kw)
    return AcceleratorConfig(**base)


def gemm_op(m, k, n, *, out32=False, count=1) -> Gemm:
    return Gemm(name="g", inputs=("input",), batch=1, count=count, m=m, k=k, n=n,
                weights=True, bias=True, requant="none" if out32 else "channel",
                out_bits=32 if out32 else 8)


def run(op, cfg) -> dict:
    return simulate(Trace(name="t", batch=1, ops=(op,)), cfg).op_dict(0)


def ws_call(r, c, m, k, n, lat=3):
    kf, nt = -(-k // r), -(-n // c)
    return 2 + max(m * kf, nt * k, n) + (r + (nt * kf - 1) * max(m, r) + m) + (r + c + 1 + lat)


def test_channel_parameter_bytes():
    assert ch_bytes(cfg4().sim_params()) == CH


def test_one_fold():
    # 8 x 4 @ 4 x 4 on 4x4: one fold, 2 + 8 + (4 + 0 + 8) + (4 + 4 + 1 + 3) = 34 cycles.
    v = run(gemm_op(8, 4, 4), cfg4())
    assert ws_call(4, 4, 8, 4, 4) == 34
    assert (v["cycles"], v["compute_cycles"], v["stall_cycles"], v["calls"]) == (34, 34, 0, 1)
    assert v["macs"] == 8 * 4 * 4
    assert v["dram_a_bytes"] == 32 and v["dram_b_bytes"] == 16
    assert v["dram_param_bytes"] == 4 * CH and v["dram_out_bytes"] == 32


def test_many_folds():
    # 10 x 12 @ 12 x 9: KF 3, NT 3, 9 steps of max(10, 4) = 10 cycles:
    # 2 + max(30, 36, 9) + (4 + 8*10 + 10) + 12 = 144.
    v = run(gemm_op(10, 12, 9), cfg4())
    assert ws_call(4, 4, 10, 12, 9) == 144
    assert v["cycles"] == 144 and v["calls"] == 1
    # ws SRAM words: A written once (10 words of 4 lanes per fold), read once per step.
    assert v["ifmap_write_bytes"] == 10 * 3 * 4
    assert v["ifmap_read_bytes"] == 9 * 10 * 4
    assert v["ofmap_write_bytes"] == v["ofmap_read_bytes"] == 9 * 10 * 4 * 4


def test_k_not_a_multiple_of_the_rows():
    # K = 10 on 4 rows needs 3 folds, like K = 12: 2 + 18 + (4 + 2*6 + 6) + 12 = 54.
    v10 = run(gemm_op(6, 10, 4), cfg4())
    v12 = run(gemm_op(6, 12, 4), cfg4())
    assert v10["cycles"] == v12["cycles"] == ws_call(4, 4, 6, 10, 4) == 54
    assert v10["macs"] == 6 * 10 * 4 != v12["macs"]
    assert v10["utilization"] == pytest.approx(240 / (16 * 54))


@pytest.mark.parametrize("dataflow, expected", [
    # os: MT 2, P = max(10, 2*4-1) = 10, r_last = 1: 2 + 20 + (10 + 10) + (4+4+1+1+3) = 55.
    ("os", 55),
    # is: KF 3, MTC 2, 6 steps of max(4, 4): 2 + max(20, 12, 4) + (4 + 5*4 + 4) + 12 = 62.
    ("is", 62),
])
def test_other_dataflows_one_call(dataflow, expected):
    v = run(gemm_op(6, 10, 4), cfg4(dataflow=dataflow))
    assert v["cycles"] == expected and v["calls"] == 1


def test_tiny_ifmap_buffer_forces_weight_refetch():
    # 64 x 16 @ 16 x 8 with a 256-byte A buffer (64 words of 4 lanes): M * KF <= 64, so
    # calls of 16 rows, each re-fetching all of B.
    # One call (16, 16, 8): KF 4, NT 2, 8 steps of 16: 2 + 64 + (4 + 7*16 + 16) + 12 = 210.
    small = run(gemm_op(64, 16, 8), cfg4(ifmap_sram_bytes=256))
    assert (small["tile_m"], small["tile_k"], small["tile_n"], small["calls"]) == (16, 16, 8, 4)
    assert ws_call(4, 4, 16, 16, 8) == 210
    assert small["cycles"] == 4 * 210
    assert small["dram_b_bytes"] == 4 * 16 * 8  # B fetched once per call
    assert small["dram_a_bytes"] == 64 * 16
    assert small["dram_param_bytes"] == 4 * 8 * CH
    # A large buffer takes it in one call: B once, 2 + 256 + (4 + 7*64 + 64) + 12 = 786.
    large = run(gemm_op(64, 16, 8), cfg4())
    assert large["calls"] == 1 and large["cycles"] == ws_call(4, 4, 64, 16, 8) == 786
    assert large["dram_b_bytes"] == 16 * 8
    assert small["dram_b_bytes"] == 4 * large["dram_b_bytes"]


def test_bandwidth_starved_dram_without_double_buffering():
    # The one-fold call at 0.25 B/cycle: L = 32 + 16 + 36 = 84 bytes in, 336 cycles against
    # a load phase of 8; S = 32 bytes out, 128 cycles against compute + drain = 24.
    v = run(gemm_op(8, 4, 4), cfg4(dram_bytes_per_cycle=0.25))
    assert v["cycles"] == 34 + (336 - 8) + (128 - 24) == 466
    assert v["compute_cycles"] == 34 and v["stall_cycles"] == 432
    # Double buffering cannot help a single call (L/BW + t + S/BW = 498 > 466): the planner
    # keeps the sequential plan.
    assert run(gemm_op(8, 4, 4), cfg4(dram_bytes_per_cycle=0.25, double_buffer=True)) == v


def test_double_buffering_overlaps_loads_with_compute():
    # Four products 16 x 16 @ 16 x 8 on 4x4 (count = 4), one call each, alike in both plans:
    # t = 2 + max(64, 32, 8) + (4 + 7*16 + 16) + 12 = 210 (load phase 64, tail 144). At
    # 2 B/cycle: L = 256 + 128 + 8*9 = 456 bytes (228 cycles), S = 128 (64), L + S: 292.
    # Overlapped: 228 + max(210, 228) + 2 max(210, 292) + max(210, 64) + 64 = 1314; every
    # call still takes its whole t, load phase included (the RTL's own cycles).
    cfg = cfg4(dram_bytes_per_cycle=2.0, double_buffer=True)
    v = run(gemm_op(16, 16, 8, count=4), cfg)
    assert ws_call(4, 4, 16, 16, 8) == 210
    assert (v["calls"], v["tile_m"], v["tile_n"], v["double_buffered"]) == (4, 16, 8, 1)
    assert v["cycles"] == 228 + 228 + 2 * 292 + 210 + 64 == 1314
    assert v["compute_cycles"] == 4 * 210 and v["stall_cycles"] == 1314 - 840
    # Sequential: each load phase (64 beats) waits for 228 cycles of DRAM; the output
    # (64 cycles) drains within the tail: 4 (210 + 228 - 64) = 1496.
    seq = run(gemm_op(16, 16, 8, count=4), cfg.replace(double_buffer=False))
    assert seq["cycles"] == 4 * (210 + 228 - 64) == 1496
    assert seq["double_buffered"] == 0


def test_double_buffered_calls_get_half_the_parameter_memory():
    # The parameter memory (R = 4 words of C = 4 channels) is split like the SRAMs: a
    # double-buffered call takes N <= 2 * 4 = 8 channels, a sequential one N <= 16.
    p = cfg4(double_buffer=True).sim_params()
    assert tile_fits(p, 0, 1, 16, 16) and not tile_fits(p, 1, 1, 16, 16)
    assert tile_fits(p, 1, 1, 16, 8) and not tile_fits(p, 1, 1, 16, 9)
    assert not tile_fits(cfg4(rows=1).sim_params(), 1, 1, 1, 1)  # 1 word: no halves
    # 16 x 16 @ 16 x 64 at 2 B/cycle. Sequential: four calls (16, 16, 16) of
    # t = 2 + 64 + (4 + 15*16 + 16) + 12 = 338, L = 256 + 256 + 16*9 = 656 bytes (328
    # cycles against a load phase of 64), S = 256 (128, within the tail): 4 (338 + 264).
    # Double-buffered: eight calls (16, 16, 8) of t = 210, L = 456 (228), S = 128 (64):
    # 228 + max(210, 228) + 6 max(210, 292) + max(210, 64) + 64 = 2482. The planner keeps
    # the sequential plan.
    cfg = cfg4(dram_bytes_per_cycle=2.0, double_buffer=True)
    v = run(gemm_op(16, 16, 64), cfg)
    assert ws_call(4, 4, 16, 16, 16) == 338
    assert (v["calls"], v["tile_n"], v["double_buffered"]) == (4, 16, 0)
    assert v["cycles"] == 4 * (338 + 328 - 64) == 2408
    row = np.zeros(len(COLUMNS))
    geom = (0,) * 9
    assert gemm_costs(cfg.sim_params(), 1, 1, 16, 16, 64, 16, 16, 8, 0, 1, 1, 1, geom,
                      row) == 228 + 228 + 6 * 292 + 210 + 64 == 2482
    assert row[COLUMNS.index("calls")] == 8


def test_double_buffering_is_dropped_when_halved_tiles_cost_more():
    # A 512-byte A buffer: halves of 256 bytes give calls of 16 rows, the whole buffer
    # calls of 32 rows; with DRAM this slow the planner keeps the sequential plan, two
    # calls of 2 + 128 + (4 + 7*32 + 32) + 12 = 402 with 712 bytes in (178 cycles against
    # a load phase of 128) and 256 out (64 against 272): 2 (402 + 50) = 904.
    cfg = cfg4(ifmap_sram_bytes=512, dram_bytes_per_cycle=4.0, double_buffer=True)
    v = run(gemm_op(64, 16, 8), cfg)
    assert (v["calls"], v["tile_m"], v["double_buffered"]) == (2, 32, 0)
    assert v["cycles"] == 2 * (ws_call(4, 4, 32, 16, 8) + 178 - 128) == 904
    # The halves: four calls of 16 rows, t = 210, L = 456 bytes (114 cycles), S = 128
    # (32), L + S 146: 114 + max(210, 114) + 2 max(210, 146) + max(210, 32) + 32 = 986.
    row = np.zeros(len(COLUMNS))
    assert gemm_costs(cfg.sim_params(), 1, 1, 64, 16, 8, 16, 16, 8, 0, 1, 1, 1, (0,) * 9,
                      row) == 114 + 210 + 2 * 210 + 210 + 32 == 986


def test_k_split_emits_int32_partial_sums():
    # A 256-byte weight buffer holds 64 words: K = 100 does not fit one call, so the planner
    # takes 2 chunks of whole folds (52 + 48). Each call writes int32 partial sums
    # (LAT 0): t(8, 52, 4) = 2 + 104 + (4 + 12*8 + 8) + 9 = 223, t(8, 48, 4) = 207; the
    # vector unit then reads both partial tiles (2 * ceil(32/16) beats), adds (3) and
    # requantizes (3): 10 cycles.
    v = run(gemm_op(8, 100, 4), cfg4(weight_sram_bytes=256))
    assert (v["k_chunks"], v["tile_k"], v["calls"]) == (2, 52, 2)
    assert v["compute_cycles"] == ws_call(4, 4, 8, 52, 4, 0) + ws_call(4, 4, 8, 48, 4, 0)
    assert v["compute_cycles"] == 223 + 207
    assert v["vector_cycles"] == 10
    assert v["cycles"] == 440
    # Partial sums leave as int32 (4 bytes), once out and once back; the final output int8.
    assert v["dram_psum_bytes"] == 2 * (2 * 8 * 4 * 4)
    assert v["dram_out_bytes"] == 8 * 4
    # Parameters are fetched once: the int32 bias by the first chunk's call (the second
    # call's parameter words are zeros from the DMA), (m, s) -- 31 + 6 bits, 5 bytes -- by
    # the vector unit that requantizes. The unit's parameter memory still takes 4 words
    # of 9 bytes per call.
    assert v["dram_param_bytes"] == 4 * 4 + 4 * 5
    assert v["param_write_bytes"] == 2 * 4 * CH
    v32 = run(gemm_op(8, 100, 4, out32=True), cfg4(weight_sram_bytes=256))
    assert v32["k_chunks"] == 2 and v32["dram_param_bytes"] == 4 * 4  # no requantization


def test_count_multiplies_calls():
    one = run(gemm_op(20, 8, 8), cfg4())
    three = run(gemm_op(20, 8, 8, count=3), cfg4())
    assert three["cycles"] == 3 * one["cycles"]
    assert three["calls"] == 3 * one["calls"]
    assert three["dram_bytes"] == 3 * one["dram_bytes"]


def test_int32_output_has_no_requantizer_latency_and_four_byte_outputs():
    v8 = run(gemm_op(8, 4, 4), cfg4())
    v32 = run(gemm_op(8, 4, 4, out32=True), cfg4())
    assert v8["cycles"] - v32["cycles"] == 3
    assert v32["dram_out_bytes"] == 4 * v8["dram_out_bytes"]
    assert v32["ev_mul_int32"] == 0 and v8["ev_mul_int32"] == 8 * 4


def test_conv_fetches_raw_rows_not_the_im2col_matrix():
    # 3x3 stride-1 pad-1 conv of an 8x8x4 map: the im2col A is 64 x 36 = 2304 bytes, but
    # the call needs only the 8 input rows of 8 x 4 channels: 256 bytes.
    conv = Conv2d(name="c", inputs=("input",), n=1, h=8, w=8, c=4, k=8, r=3, s=3,
                  pad_top=1, pad_bottom=1, pad_left=1, pad_right=1)
    v = run(conv, cfg4())
    assert v["calls"] == 1 and v["dram_a_bytes"] == 8 * 8 * 4
    # The GEMM unit still streams the im2col rows: 64 rows of KF = 9 words.
    assert v["ifmap_write_bytes"] == 64 * 9 * 4
    assert v["cycles"] == ws_call(4, 4, 64, 36, 8)


def test_cycles_are_compute_plus_vector_plus_stall():
    for kw in ({}, {"dram_bytes_per_cycle": 0.5}, {"weight_sram_bytes": 256},
               {"double_buffer": True, "dram_bytes_per_cycle": 2.0}):
        v = run(gemm_op(50, 100, 30), cfg4(**kw))
        assert v["cycles"] == v["compute_cycles"] + v["vector_cycles"] + v["stall_cycles"]
        assert v["stall_cycles"] >= 0


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("m, k, n, out32", [(1, 1, 1, False), (7, 13, 5, False),
                                            (33, 64, 16, True), (16, 16, 9, False)])
def test_one_call_costs_exactly_the_unit_cycles(dataflow, m, k, n, out32):
    # With the op fitting one call (N <= R*C for the parameter memory) and DRAM out of the
    # way, the engine adds nothing to the
    # GEMM unit's own cycles -- the figure the RTL tests check cycle for cycle.
    cfg = cfg4(dataflow=dataflow)
    v = run(gemm_op(m, k, n, out32=out32), cfg)
    assert v["calls"] == 1
    assert v["cycles"] == v["compute_cycles"] == gemm_cycles(cfg.sim_params(), m, k, n,
                                                                int(out32))
