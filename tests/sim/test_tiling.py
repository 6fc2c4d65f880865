"""Matrix ops (sim/tiling.py: tiling, the call sequence, DRAM ports) against hand-derived
closed forms.

One GEMM-unit call on an idle unit (the formulas of sim/units/gemm_timing.py, written out
here by hand; R, C the array, KF = ceil(K/R), NT = ceil(N/C), both output modes alike):

    ws: 4 + max(R + 1, min(N, C)) + [(NT*KF - 1) * max(M, R) + M] + [2 + (R + C + 1) + 8]

(the drain: the buffer read and its output register 2, the array R + C + 1 (R + C - 2
hops and the PEs' three-stage MAC: the product, its second register, the add), the
epilogue register 1, the requantizer 6 and the skid buffer 1).

Back to back, a call starts as soon as its first fold's operands are in and the previous
call has issued its last row (two slots with double buffering); the op's cycles at full
input rate are the RTL's for the whole sequence, T. DRAM (BW per port, sim/memory.py):

    cycles = max(T, max over ports of max(bytes/BW, in/BW + tail - 1, head - 1 + out/BW))

One channel's parameters (int32 bias, 31-bit m, 6-bit s) are ceil(69/8) = 9 bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS, AcceleratorConfig
from edgetron.sim.engine import simulate
from edgetron.sim.units.gemm import ch_bytes, gemm_cycles, gemm_sequence_cycles
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


def ws_call(r, c, m, k, n):
    kf, nt = -(-k // r), -(-n // c)
    return 4 + max(r + 1, min(n, c)) + ((nt * kf - 1) * max(m, r) + m) + (2 + (r + c + 1) + 8)


def test_channel_parameter_bytes():
    assert ch_bytes(cfg4().sim_params()) == CH


def test_one_fold():
    # 8 x 4 @ 4 x 4 on 4x4: one fold, 4 + 5 + 8 + 19 = 36 cycles.
    v = run(gemm_op(8, 4, 4), cfg4())
    assert ws_call(4, 4, 8, 4, 4) == 36
    assert (v["cycles"], v["compute_cycles"], v["stall_cycles"], v["calls"]) == (36, 36, 0, 1)
    assert v["macs"] == 8 * 4 * 4
    assert v["dram_a_bytes"] == 32 and v["dram_b_bytes"] == 16
    assert v["dram_param_bytes"] == 4 * CH and v["dram_out_bytes"] == 32


def test_many_folds():
    # 10 x 12 @ 12 x 9: KF 3, NT 3, 9 steps of max(10, 4) = 10 cycles:
    # 4 + 5 + (8*10 + 10) + 19 = 118.
    v = run(gemm_op(10, 12, 9), cfg4())
    assert ws_call(4, 4, 10, 12, 9) == 118
    assert v["cycles"] == 118 and v["calls"] == 1
    # ws SRAM words: A written once (10 words of 4 lanes per fold), read once per step.
    assert v["ifmap_write_bytes"] == 10 * 3 * 4
    assert v["ifmap_read_bytes"] == 9 * 10 * 4
    assert v["ofmap_write_bytes"] == v["ofmap_read_bytes"] == 9 * 10 * 4 * 4


def test_k_not_a_multiple_of_the_rows():
    # K = 10 on 4 rows needs 3 folds, like K = 12: 4 + 5 + (2*6 + 6) + 19 = 46.
    v10 = run(gemm_op(6, 10, 4), cfg4())
    v12 = run(gemm_op(6, 12, 4), cfg4())
    assert v10["cycles"] == v12["cycles"] == ws_call(4, 4, 6, 10, 4) == 46
    assert v10["macs"] == 6 * 10 * 4 != v12["macs"]
    assert v10["utilization"] == pytest.approx(240 / (16 * 46))


@pytest.mark.parametrize("dataflow, expected", [
    # os: MT 2, P = max(10, 2*4-1) = 10, r_last = 1: 4 + max(1, 4) + (10 + 10)
    # + (2 + (4 + 2) + 1 + 3 + 1 + 7) = 48 (the drain delay R + 2).
    ("os", 48),
    # is: KF 3, MTC 2, 6 steps of max(4, 4), all 4 channels first:
    # 4 + max(5, 4) + (5*4 + 4) + 19 = 52.
    ("is", 52),
])
def test_other_dataflows_one_call(dataflow, expected):
    v = run(gemm_op(6, 10, 4), cfg4(dataflow=dataflow))
    assert v["cycles"] == expected and v["calls"] == 1


def test_tiny_ifmap_buffer_forces_weight_refetch():
    # 64 x 16 @ 16 x 8 with a 256-byte A buffer (64 words of 4 lanes): M * KF <= 64, so
    # calls of 16 rows, each re-fetching all of B. One call (16, 16, 8): KF 4, NT 2, 8 steps
    # of 16: 4 + 5 + (7*16 + 16) + 19 = 156, its first row in cycle 9, its last in 136.
    # With one slot the next command waits for it (137), the next call's channels for its
    # last results' parameters (137 + 2 + (R + C + 1) = 148, the buffer read 2 and the
    # array; its first row 4 channels later): each later call starts 152 - 9 = 143 cycles
    # after the one before: 156 + 3 * 143.
    small = run(gemm_op(64, 16, 8), cfg4(ifmap_sram_bytes=256))
    assert (small["tile_m"], small["tile_k"], small["tile_n"], small["calls"]) == (16, 16, 8, 4)
    assert ws_call(4, 4, 16, 16, 8) == 156
    assert small["cycles"] == 156 + 3 * 143 == 585
    assert small["dram_b_bytes"] == 4 * 16 * 8  # B fetched once per call
    assert small["dram_a_bytes"] == 64 * 16
    assert small["dram_param_bytes"] == 4 * 8 * CH
    # A large buffer takes it in one call: B once, 4 + 5 + (7*64 + 64) + 19 = 540.
    large = run(gemm_op(64, 16, 8), cfg4())
    assert large["calls"] == 1 and large["cycles"] == ws_call(4, 4, 64, 16, 8) == 540
    assert large["dram_b_bytes"] == 16 * 8
    assert small["dram_b_bytes"] == 4 * large["dram_b_bytes"]


def test_double_buffering_overlaps_the_calls():
    # Four products 16 x 16 @ 16 x 8 (count = 4), one call each. Double-buffered, the next
    # call loads into the other slot while one computes, and its first row follows the
    # last row of the one before: every call after the first adds its compute, 128 cycles:
    # 156 + 3 * 128 = 540. Single-buffered each later call waits 15 cycles (its command
    # until the slot is free, its channels until the parameters are): 156 + 3 * 143.
    v = run(gemm_op(16, 16, 8, count=4), cfg4(double_buffer=True))
    assert (v["calls"], v["tile_m"], v["tile_n"], v["double_buffered"]) == (4, 16, 8, 1)
    assert v["cycles"] == v["compute_cycles"] == 156 + 3 * 128 == 540
    seq = run(gemm_op(16, 16, 8, count=4), cfg4())
    assert seq["cycles"] == 156 + 3 * 143 and seq["double_buffered"] == 0
    # Double-buffered calls fit one slot: half of the A and W buffers.
    half = run(gemm_op(64, 16, 8), cfg4(ifmap_sram_bytes=512, double_buffer=True))
    assert (half["tile_m"], half["calls"]) == (16, 4)


@pytest.mark.parametrize("ports, expected", [
    # One port for everything: (84 + 32) / 0.25 = 464.
    ({"dram_bytes_per_cycle": 0.25}, 464),
    # A read port carries the 84 input bytes (336 cycles); once they are in, the unit
    # still streams its last (only) fold step and drains, 27 cycles: 336 + 27 - 1 = 362.
    # The write port carries the 32 result bytes from the first result (cycle 28):
    # 28 + 128 = 156.
    ({"dram_ports": "read_write", "dram_read_bytes_per_cycle": 0.25,
      "dram_write_bytes_per_cycle": 0.25}, 362),
    # One port per stream: ifmap 32 bytes (128 cycles), filter 16 + 36 (208): 208 + 26.
    ({"dram_ports": "per_stream", "dram_ifmap_bytes_per_cycle": 0.25,
      "dram_filter_bytes_per_cycle": 0.25, "dram_ofmap_bytes_per_cycle": 0.25}, 234),
])
def test_bandwidth_starved_dram_on_each_kind_of_port(ports, expected):
    # The one-fold call (36 cycles at full rate): A 32 bytes, B 16, parameters 4 * 9 in;
    # 32 out. Its fold step starts in cycle 9 (27 cycles before the end, the tail), its
    # first result comes in cycle 9 + drain 19 = 28.
    v = run(gemm_op(8, 4, 4), cfg4(**ports))
    assert v["compute_cycles"] == 36
    assert v["cycles"] == expected and v["stall_cycles"] == expected - 36


def test_k_split_emits_int32_partial_sums():
    # A 256-byte weight buffer holds 64 words: K = 100 does not fit one call, so the planner
    # takes 2 chunks of whole folds (52 + 48), int32 partial sums. (8, 52, 4): 13 steps of
    # 8, first row in cycle 9, last in 112, last result in 113 + 19 - 1 = 131. (8, 48, 4)
    # waits for the slot (113) and its channels (113 + 2 + 9, the buffer read 2 and
    # R + C + 1; + 4 channels: first row at 128), 12 steps: its last result at
    # 128 + 96 + 19 - 1 = 242: 243 cycles.
    # The vector unit then reads both partial tiles (2 * ceil(32/16) beats), adds (3) and
    # requantizes (6): 13 cycles.
    v = run(gemm_op(8, 100, 4), cfg4(weight_sram_bytes=256))
    assert (v["k_chunks"], v["tile_k"], v["calls"]) == (2, 52, 2)
    assert v["compute_cycles"] == 243
    assert v["vector_cycles"] == 13
    assert v["cycles"] == 243 + 13
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


def test_count_repeats_the_calls_back_to_back():
    one = run(gemm_op(20, 8, 8), cfg4(double_buffer=True))
    three = run(gemm_op(20, 8, 8, count=3), cfg4(double_buffer=True))
    assert three["calls"] == 3 * one["calls"]
    assert three["dram_bytes"] == 3 * one["dram_bytes"]
    # The products overlap: (20, 8, 8) computes 2*2 steps of 20 = 80 cycles; each product
    # after the first adds exactly that.
    assert three["cycles"] == one["cycles"] + 2 * 80


def test_int8_and_int32_outputs_take_the_same_cycles():
    v8 = run(gemm_op(8, 4, 4), cfg4())
    v32 = run(gemm_op(8, 4, 4, out32=True), cfg4())
    assert v8["cycles"] == v32["cycles"]
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
    assert v["cycles"] == ws_call(4, 4, 64, 36, 8) == 4 + 5 + (17 * 64 + 64) + 19


def test_column_tiles_take_any_multiple_of_the_columns():
    # K = 64 with a 768-byte W buffer (192 words): a call holds NT * 64 <= 192, NT <= 3,
    # i.e. 12 columns. N = 24 is two calls of 12 (a power-of-two tile, 8, would take three).
    v = run(gemm_op(8, 64, 24), cfg4(weight_sram_bytes=768))
    assert (v["tile_n"], v["calls"]) == (12, 2)


def test_output_stationary_row_tiles_are_whole():
    # ViT-Tiny's fc2 (197 x 768 @ 768 x 192) on 16x16 os: half the A buffer holds
    # MT * 768 <= 4096 words, 5 row tiles (80 rows). Calls of 80, 80 and 37 rows take
    # 5 + 5 + 3 = 13 row tiles per column tile (ceil(197 / 16) = 13); evened out to 66
    # rows they would take 15.
    v = run(gemm_op(197, 768, 192), PRESETS["edge-16"].replace(dataflow="os"))
    assert v["tile_m"] == 80 and v["calls"] == 3 * 3


def test_cycles_are_compute_plus_vector_plus_stall():
    for kw in ({}, {"dram_bytes_per_cycle": 0.5}, {"weight_sram_bytes": 256},
               {"double_buffer": True, "dram_bytes_per_cycle": 2.0},
               {"dram_ports": "per_stream", "dram_ifmap_bytes_per_cycle": 1.0,
                "dram_filter_bytes_per_cycle": 2.0, "dram_ofmap_bytes_per_cycle": 0.5}):
        v = run(gemm_op(50, 100, 30), cfg4(**kw))
        assert v["cycles"] == v["compute_cycles"] + v["vector_cycles"] + v["stall_cycles"]
        assert v["stall_cycles"] >= 0


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("m, k, n, out32", [(1, 1, 1, False), (7, 13, 5, False),
                                            (33, 64, 16, True), (16, 16, 9, False)])
def test_one_call_costs_exactly_the_unit_cycles(dataflow, m, k, n, out32):
    # With the op fitting one call (N <= R*C for the parameter memory) and DRAM out of the
    # way, the engine adds nothing to the GEMM unit's own cycles -- the figure the RTL
    # tests check cycle for cycle.
    cfg = cfg4(dataflow=dataflow)
    v = run(gemm_op(m, k, n, out32=out32), cfg)
    assert v["calls"] == 1
    assert v["cycles"] == v["compute_cycles"] == gemm_cycles(cfg.sim_params(), m, k, n,
                                                                int(out32))


def _calls_in_order(count, m, k, n, mt, kt, nt, out32):
    """The op's calls in the functional kernel's order (product, column tile, row tile,
    K chunk)."""
    calls = []
    for _ in range(count):
        for n0 in range(0, n, nt):
            for m0 in range(0, m, mt):
                for k0 in range(0, k, kt):
                    calls.append((min(mt, m - m0), min(kt, k - k0), min(nt, n - n0), out32))
    return np.array(calls, np.int64)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("double_buffer", [True, False])
def test_the_op_costs_exactly_its_sequence_of_calls(dataflow, double_buffer):
    """Random ops on small buffers (many calls, K splits, edge tiles, many products): the
    compute cycles, extrapolated over repeated blocks, are exactly gemm_sequence_cycles of
    the op's calls listed one by one."""
    rng = np.random.default_rng(len(dataflow) * 3 + double_buffer)
    for _ in range(25):
        cfg = cfg4(dataflow=dataflow, double_buffer=double_buffer,
                   rows=int(rng.integers(1, 6)), cols=int(rng.integers(1, 6)),
                   ifmap_sram_bytes=int(rng.choice([256, 512, 1024])),
                   weight_sram_bytes=int(rng.choice([512, 1024])),
                   ofmap_sram_bytes=int(rng.choice([256, 1024])))
        count, m, k, n = (int(x) for x in rng.integers(1, [5, 90, 300, 70]))
        out32 = bool(rng.integers(0, 2))
        v = run(gemm_op(m, k, n, out32=out32, count=count), cfg)
        split = v["k_chunks"] > 1
        calls = _calls_in_order(count, m, k, n, v["tile_m"], v["tile_k"], v["tile_n"],
                                int(out32 or split))
        assert len(calls) == v["calls"]
        assert v["compute_cycles"] == gemm_sequence_cycles(cfg.sim_params(), calls), (
            cfg, count, m, k, n)
