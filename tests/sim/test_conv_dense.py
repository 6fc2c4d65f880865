"""The dense ConvUnit's timing model and planner (sim/units/conv_dense.py): hand-derived
small cases, agreement with the GEMM model where the two are the same machine, the
band plan, DRAM bytes and the choice against the im2col GEMM (sim/tiling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS, AcceleratorConfig
from edgetron.hw.conv import conv_bands, conv_fits
from edgetron.hw.gemm import GEMM_CMD_CYCLES
from edgetron.sim.engine import simulate
from edgetron.sim.units.conv_dense import (
    conv_sequence,
    conv_sequence_cycles,
    dense_account,
    dense_plan,
)
from edgetron.sim.units.gemm_timing import gemm_cycles, gemm_sequence
from edgetron.workload import Conv2d, Trace

#: 4x4, double-buffered: 512 band words, 512 weight words per slot, 128 accumulator rows.
P = AcceleratorConfig(name="t", rows=4, cols=4, ifmap_sram_bytes=4096,
                      weight_sram_bytes=4096, ofmap_sram_bytes=2048).sim_params()


def _calls(*calls):
    return np.array(calls, np.int64).reshape(-1, 12)


def test_one_3x3_band_from_idle():
    """hb = w = 2, c = n = 4, 3x3, padding 1: M = 4, K = 36 (9 folds), its 4 band words
    are in long before the first weight tile (cycle 10 = 5 + 1 + R), so no row waits:
    cmd 5 (CONV_CMD_CYCLES) + fill R + 1 = 5 + compute 8 * max(M, R) + M = 36 + drain
    buffer read 2 (the read and its output register) + array R + C + 1 = 9 (R + C - 2
    hops and the PEs' three-stage MAC) + epilogue 1 + out 7 (requantizer 6, skid 1) = 19:
    65. The GEMM of the same shape takes one cycle less: its command phase is 4 cycles."""
    assert conv_sequence_cycles(P, _calls((2, 2, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1))) == 65
    assert gemm_cycles(P, 4, 36, 4, 0) == 64


def test_rows_wait_for_their_band_words():
    """1x1, c = 8 (two channel blocks), one row of 8 pixels: word = 2 * pixel + cb, so
    fold 0's row t reads word 2t, readable from cycle 6 + 2t (loads start at cycle 5,
    after the command phase). The first tile is written at cycle 10: rows issue at 10,
    11, 12, 13, 14, then wait: 16, 18, 20; fold 1 starts at 21 (every word in), its 8
    rows end at 29; its first output 21 + 19 = 40 (drain 19 as above), the last
    29 + 19 - 1 = 47: 48 cycles, 4 more than the GEMM (8, 8, 4) (cmd 4 + fill 5 +
    compute 16 + drain 19), whose A order is fold-major and whose command phase is one
    cycle shorter."""
    seq = conv_sequence(P, _calls((1, 8, 8, 4, 1, 1, 1, 1, 0, 0, 0, 0)))
    assert seq[0].tolist() == [0, 5, 5, 5, 10, 29, 40, 47]
    assert gemm_cycles(P, 8, 8, 4, 0) == 44


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_1x1_conv_of_one_channel_block_is_the_gemm(seed):
    """With c <= R, a 1x1 stride-1 conv without padding reads word t in fold 0, as the
    GEMM (M = hb * w, K = R, N = n): with the GEMM unit's command phase the two models
    agree on any sequence."""
    rng = np.random.default_rng(seed)
    calls, shapes = [], []
    for _ in range(6):
        hb, w, c, n = (int(v) for v in rng.integers(1, [6, 6, 5, 12]))
        calls.append((hb, w, c, n, 1, 1, 1, 1, 0, 0, 0, 0))
        shapes.append((hb * w, 4, n, 0))
    assert np.array_equal(conv_sequence(P, _calls(*calls), GEMM_CMD_CYCLES),
                          gemm_sequence(P, np.array(shapes, np.int64)))


def test_bands_cover_the_output_with_their_halo():
    """56 rows, 3x3, stride 1, padding 1, bands of 8 output rows: 7 bands; the first
    reads rows 0..8 (9 rows, one padding row above), the middle ones 10 rows (8 + 2 of
    halo), the last 9 (one padding row below)."""
    bands = conv_bands(56, 3, 1, 1, 56, 8)
    assert bands[:, 1].sum() == 56 and bands.shape[0] == 7
    assert bands[0].tolist() == [0, 8, 0, 9, 1, 0]
    assert bands[1].tolist() == [8, 8, 7, 10, 0, 0]
    assert bands[-1].tolist() == [48, 8, 47, 9, 0, 1]


def test_a_band_holds_at_least_one_input_row():
    """1x1, stride 2, padding 1 on a 1-row map: the only output row lies in the top
    padding; its band takes input row 0 (skipped by its window). On 4 rows with padding
    1 below, the last output row lies in the bottom padding: it joins the band before."""
    assert conv_bands(1, 1, 2, 1, 1, 1).tolist() == [[0, 1, 0, 1, 1, 0]]
    bands = conv_bands(4, 1, 2, 0, 3, 1)         # oh = (4 + 0 + 1 - 1) // 2 + 1 = 3
    assert bands.tolist() == [[0, 1, 0, 1, 0, 0], [1, 2, 2, 2, 0, 1]]


def test_plan_and_dram_bytes():
    """h = w = 16, c = 8, n = 12, 3x3, padding 1 on the 4x4 unit: the weights of all 3
    column tiles fit (3 * 9 * 2 * 4 = 216 <= 512 words), the band of ho output rows needs
    (ho + 2) * 16 * 2 words <= 512 and ho * 16 <= 128 rows: ho = 8 (a 8-row band, 320
    words), two bands. DRAM: the 10 + 9... rows of input once per band (9 + 9 = 18 rows:
    each band has one padding row and one halo row), the weights and parameters per
    band, the outputs once."""
    calls = dense_plan(P, 16, 16, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1)
    assert calls.tolist() == [[9, 16, 8, 12, 3, 3, 1, 1, 1, 0, 1, 1],
                              [9, 16, 8, 12, 3, 3, 1, 1, 0, 1, 1, 1]]
    assert all(conv_fits(P, *c) for c in calls)
    row = np.zeros(128)
    from edgetron.sim.records import C_CALLS, C_DRAM_A, C_DRAM_B, C_DRAM_OUT
    dense_account(P, calls, 2, 1, 1, 1, row)
    assert row[C_DRAM_A] == 2 * 18 * 16 * 8
    assert row[C_DRAM_B] == 2 * 2 * 9 * 8 * 12
    assert row[C_DRAM_OUT] == 2 * 16 * 16 * 12
    assert row[C_CALLS] == 4


def test_plan_splits_output_channels_when_the_weights_do_not_fit():
    """3x3, c = 16: one column tile holds 9 * 4 * 4 = 144 words, 3 fit in 512: n = 20 (5
    tiles) runs as two groups of 3 evened out to 3 and 2 tiles (12 and 8 channels)."""
    calls = dense_plan(P, 4, 4, 16, 20, 3, 3, 1, 1, 1, 1, 1, 1)
    assert sorted({int(c[3]) for c in calls}) == [8, 12]


def test_the_cheaper_of_conv_unit_and_im2col_gemm_wins():
    """ResNet-18's layer1 3x3 conv on edge-16: both run the array at about 99.5 %; the
    im2col GEMM (28 calls of 112 rows) starts faster (its fold 0 needs 112 A words, the
    first band all of its pixels' first channel block), so with edge-16's DRAM it is
    kept. With a narrow DRAM port the ConvUnit's 4 bands win: they fetch the weights 4
    times instead of 28. The MACs never change."""
    op = Conv2d(name="c", inputs=("input",), n=1, h=56, w=56, c=64, k=64, r=3, s=3,
                stride_h=1, stride_w=1, pad_top=1, pad_bottom=1, pad_left=1, pad_right=1)
    trace = Trace(name="t", batch=1, ops=(op,))
    wide = simulate(trace, PRESETS["edge-16"]).ops[0]
    narrow = simulate(trace, PRESETS["edge-16"].replace(dram_bytes_per_cycle=1.0)).ops[0]
    assert wide["calls"] == 28 and narrow["calls"] == 4
    assert narrow["dram_b_bytes"] == 4 * 64 * 64 * 9
    assert wide["macs"] == narrow["macs"] == 56 * 56 * 64 * 64 * 9
