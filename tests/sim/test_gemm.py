"""The GEMM unit (sim/units/gemm.py, gemm_timing.py): timing against hand-derived closed
forms and the row-by-row reference schedule, and its functional kernel against golden.

Each expected cycle count is written as its derivation: ``cmd 4 + fill + compute + drain``
for one call on an idle unit (the command handshake and the three stages of the pipelined
shape check), with every term computed from the array size and the shape (4x4 unless
said: ``drain = READ + (R + C + 1) + 1 + OUT = 19`` for ws, ``READ = 2`` the buffer read
and its output register, the array's ``R + C + 1`` (``R + C - 2`` hops and the PEs'
three-stage MAC: the product, its second register, the add), ``OUT = 6 + 1`` the
requantizer's stages and the skid buffer, for both output modes), so a change of the
model that is not also a change of the hardware shows up here. Sequences of calls are
checked by hand for two calls and against tests/models/gemm_schedule.py (an independent
row-by-row stepping of the unit's rules) for thousands of random ones. Cycle equality
with the RTL itself is asserted in tests/rtl/test_gemm.py and the cocotb testbenches.
The kernel ``gemm_tiled`` is compared with golden's ``gemm_int`` / ``gemm_requant`` in
every dataflow and tiling, at the int8 and int32 extremes.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import accumulator_bound, gemm_int, gemm_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, M_MAX, S_MAX
from edgetron.golden.quant import activation_bounds
from edgetron.hw.gemm import (
    GEMM_BUFFER_READ_CYCLES,
    GEMM_OUT_CYCLES,
    gemm_buffer_words,
    gemm_fits,
    gemm_max_shape,
)
from edgetron.sim.units.gemm import (
    SEQ_COLUMNS,
    call_counts,
    gemm_cycles,
    gemm_phases,
    gemm_sequence,
    gemm_sequence_cycles,
    gemm_tiled,
    gemm_utilization,
)

from ..models.gemm_schedule import replay


def config(dataflow="ws", rows=4, cols=4, size=1024, **kw):
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=size,
                             weight_sram_bytes=size, ofmap_sram_bytes=size, **kw)


def params(dataflow="ws", rows=4, cols=4, size=1024, **kw):
    return config(dataflow, rows, cols, size, **kw).sim_params()


WS_DRAIN = GEMM_BUFFER_READ_CYCLES + (4 + 4 + 1) + 1 + GEMM_OUT_CYCLES   # 19 on 4x4


def test_ws_one_fold():
    """K <= R and N <= C: one fold step. 4x4, M=3, K=4, N=4.

    fill = max(R + 1, min(N, C)) = 5 (the weight tile is written one cycle behind its
    beats, R rows); compute = M = 3; drain 19.
    """
    p = params("ws")
    assert WS_DRAIN == 19
    ph = gemm_phases(p, 3, 4, 4, True)
    assert tuple(ph) == (4, 3, 4, 4, 5, 3, 19, 3)
    assert gemm_cycles(p, 3, 4, 4, True) == 4 + 5 + 3 + 19 == 31


def test_ws_many_folds():
    """4x4, M=8, K=16, N=8: KF=4 folds x NT=2 tiles = 8 steps of max(M,R)=8.

    compute = 7*8 + 8 = 64: the weight tile of every step but the first is written into
    the idle bank while the step before streams its rows.
    """
    p = params("ws")
    assert tuple(gemm_phases(p, 8, 16, 8, False)) == (4, 32, 32, 8, 5, 64, 19, 16)
    assert gemm_cycles(p, 8, 16, 8, False) == 4 + 5 + 64 + 19 == 92


def test_ws_k_not_a_multiple_of_the_array():
    """4x4, M=5, K=7, N=6: KF=2 (the second fold has 3 real rows), NT=2, S=4, P=5.

    compute = 3*5 + 5 = 20.
    """
    p = params("ws")
    assert tuple(gemm_phases(p, 5, 7, 6, True)) == (4, 10, 14, 6, 5, 20, 19, 10)
    assert gemm_cycles(p, 5, 7, 6, True) == 4 + 5 + 20 + 19 == 48


def test_ws_few_rows_wait_for_the_weight_tile():
    """M=2 < R=4: each step lasts R cycles (the next weight tile loads one row per cycle).

    4x4, K=12, N=4: KF=3, S=3, P=4; compute = 2*4 + 2 = 10.
    """
    assert gemm_phases(params("ws"), 2, 12, 4, True).compute == 10


def test_a_wide_array_waits_for_all_channels_first():
    """cols > rows (2x4): a column tile can be shorter than its 4 channels, so a call's
    first issue waits for all N of them: ws M=3, K=2, N=8: fill = max(R + 1, N) = 8."""
    p = params("ws", rows=2, cols=4)
    assert gemm_phases(p, 3, 2, 8, True).fill == 8
    assert gemm_phases(params("ws"), 3, 2, 4, True).fill == 5     # 4x4: min(N, C) = 4


def test_os_one_tile():
    """4x4 os, M=4, K=4, N=4: one tile. fill = max(1, min(N, C)) = 4 (the first pair waits
    for the column tile's channels); compute = K = 4; r_last = 3; drain = READ 2 + (R + 2) +
    r_last + (C - 1) + 1 + OUT = 22 (the drain delay R + 2: the bottom PE's last pair is
    captured after the PEs' three-stage MAC)."""
    p = params("os")
    assert tuple(gemm_phases(p, 4, 4, 4, True)) == (4, 4, 4, 4, 4, 4, 22, 4)
    assert gemm_cycles(p, 4, 4, 4, True) == 4 + 4 + 4 + 22 == 34


def test_os_tiles_and_the_minimum_tile_period():
    """4x4 os, M=5, K=7, N=6: MT=2 x NT=2 tiles, period max(K, 2R-1) = 7, r_last = 0.

    compute = 3*7 + 7 = 28; drain = 2 + 6 + 0 + 3 + 1 + 7 = 19. With K=2 the period is
    2R-1 = 7 (result chains must empty): compute = 3*7 + 2.
    """
    p = params("os")
    assert tuple(gemm_phases(p, 5, 7, 6, True)) == (4, 14, 14, 6, 4, 28, 19, 10)
    assert gemm_phases(p, 5, 2, 6, True).compute == 3 * 7 + 2
    assert gemm_phases(p, 5, 100, 6, True).compute == 3 * 100 + 100


def test_input_stationary_is_transposed_ws():
    """is(M, K, N) = ws(N, K, M) with the two operand streams exchanged (and all of its
    channels before the first issue)."""
    p_is, p_ws = params("is"), params("ws")
    for m, k, n in [(3, 4, 4), (8, 16, 8), (5, 7, 6), (2, 30, 9)]:
        ph_is = gemm_phases(p_is, m, k, n, False)
        ph_ws = gemm_phases(p_ws, n, k, m, False)
        assert ph_is.a_beats == ph_ws.w_beats and ph_is.w_beats == ph_ws.a_beats
        assert (ph_is.compute, ph_is.drain, ph_is.out_beats) == (
            ph_ws.compute, ph_ws.drain, ph_ws.out_beats)
        assert ph_is.fill == max(4 + 1, n)


def test_both_output_modes_take_the_same_cycles():
    """Every beat passes the requantizer's stages (int32 ones beside them), so that calls
    in both modes stay in order: out32 does not change the timing."""
    for df in ("ws", "os", "is"):
        p = params(df)
        assert gemm_cycles(p, 7, 9, 5, False) == gemm_cycles(p, 7, 9, 5, True)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_large_k_keeps_the_array_busy(dataflow):
    """M, K, N multiples of the array and a large K: >= 95 % of R*C MACs per compute cycle."""
    p = params(dataflow, rows=8, cols=8, size=1 << 16)
    assert gemm_utilization(p, 16, 1024, 16) >= 950_000
    # An exact figure: ws 8x8, M=N=16, K=1024: S = 2*128 = 256 steps of 16 cycles, every
    # one streaming a row per cycle: 100 %.
    if dataflow == "ws":
        assert gemm_phases(p, 16, 1024, 16, 1).compute == 255 * 16 + 16
        assert gemm_utilization(p, 16, 1024, 16) == 1_000_000


def test_two_calls_back_to_back():
    """Two calls (8, 16, 8) on 4x4 ws, at full input rate.

    The first call's first row issues at max(R + 5, 4 + min(N, C)) = 9 (cmd 4), its last
    at 9 + 64 - 1. Double-buffered: the second command is taken at cycle 4 into the other
    slot; its operands stream right after the first call's (from 36), its first weight
    tile is written during the first call's last step, and its first row follows the first
    call's last row (73): the second call adds exactly its compute, 64 cycles.
    Single-buffered: the second command waits for the slot (the first call's last issue,
    73), its channels for the first call's last results to read their parameters
    (73 + READ 2 + (R + C + 1) = 84): its first row issues at 84 + min(N, C) = 88, and the
    sequence ends at 88 + 64 + 19 = 171.
    """
    shapes = np.array([[8, 16, 8, 0], [8, 16, 8, 1]], np.int64)
    p = params("ws", double_buffer=True)
    seq = gemm_sequence(p, shapes)
    col = {name: i for i, name in enumerate(SEQ_COLUMNS)}
    assert seq[0, col["issue_first"]] == 9 and seq[0, col["issue_end"]] == 9 + 64
    assert tuple(seq[1, :4]) == (4, 36, 36, 12)
    assert seq[1, col["issue_first"]] == 73
    assert gemm_sequence_cycles(p, shapes) == 92 + 64
    p = params("ws", double_buffer=False)
    seq = gemm_sequence(p, shapes)
    assert tuple(seq[1, :4]) == (73, 77, 77, 84)
    assert seq[1, col["issue_first"]] == 88
    assert gemm_sequence_cycles(p, shapes) == 88 + 64 + 19 == 171


def test_os_calls_keep_the_tile_gap_across_calls():
    """os 4x4, two calls (4, 2, 4): each one tile of K = 2 pairs. The second tile's last
    pair comes 2R - 1 = 7 cycles after the first's, across the call boundary too."""
    p = params("os")
    seq = gemm_sequence(p, np.array([[4, 2, 4, 1], [4, 2, 4, 1]], np.int64))
    col = {name: i for i, name in enumerate(SEQ_COLUMNS)}
    assert seq[1, col["issue_end"]] - seq[0, col["issue_end"]] == 7


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("double_buffer", [True, False])
def test_the_closed_form_is_the_row_by_row_schedule(dataflow, double_buffer):
    """Random sequences of random shapes on random arrays (1x1 to 8x8, cols > rows too):
    every column of gemm_sequence equals the row-by-row stepping of the unit's rules
    (tests/models/gemm_schedule.py)."""
    rng = np.random.default_rng(len(dataflow) + 2 * double_buffer)
    for _ in range(300):
        rows, cols = (int(x) for x in rng.integers(1, 9, 2))
        cfg = config(dataflow, rows, cols, int(rng.choice([256, 512, 2048])),
                     double_buffer=double_buffer)
        p = cfg.sim_params()
        shapes = []
        while len(shapes) < int(rng.integers(1, 7)):
            m, k, n = (int(x) for x in rng.integers(1, [4 * rows + 3, 5 * rows + 3,
                                                        3 * cols + 3]))
            if gemm_fits(p, m, k, n):
                shapes.append((m, k, n, int(rng.integers(0, 2))))
        seq = gemm_sequence(p, np.array(shapes, np.int64))
        for row, t in zip(seq, replay(cfg, [s[:3] for s in shapes]), strict=True):
            want = (t.cmd, t.first["a"], t.first["w"], t.first["ch"], t.issue_first,
                    t.issue_end, t.out_first, t.out_last)
            assert tuple(int(x) for x in row) == want, (cfg, shapes)


def test_buffer_limits_closed_form():
    """4x4 with 1 KiB buffers, int8 operands and int32 accumulators, one slot.

    A words 1024/4 = 256, W words 256, accumulator rows 1024/(4*4) = 64, 4 parameter
    words of 4 channels. ws: M <= min(256, 64), K <= min(256*4, 256), N <= 4*4;
    os: M <= 256*4, K <= min(256, 256); is (A^T held in the array as words of C lanes,
    W^T streamed as words of R lanes): M <= 256*4, K <= min(256*4, 256),
    N <= min(256, 64, 4*4). With double_buffer a call has one slot: half of the A and W
    words (128 each), the whole accumulator buffer, 4 parameter words (the memory has 8).
    """
    p = params("ws", double_buffer=False)
    assert tuple(gemm_buffer_words(p)) == (256, 256, 64, 4)
    assert tuple(gemm_max_shape(p)) == (64, 256, 16)
    assert gemm_fits(p, 64, 4, 16)
    assert not gemm_fits(p, 65, 4, 16)       # accumulator rows
    assert not gemm_fits(p, 64, 17, 16)      # 64 * ceil(17/4) = 320 > 256 A words
    assert not gemm_fits(p, 1, 257, 1)       # 257 W words
    assert not gemm_fits(p, 1, 1, 17)        # parameter memory
    assert not gemm_fits(p, 0, 1, 1)
    half = params("ws", double_buffer=True)
    assert tuple(gemm_buffer_words(half)) == (128, 128, 64, 4)
    assert tuple(gemm_max_shape(half)) == (64, 128, 16)
    assert gemm_fits(half, 32, 16, 16) and not gemm_fits(half, 33, 16, 16)   # 33 * 4 > 128
    assert gemm_fits(half, 1, 128, 1) and not gemm_fits(half, 1, 129, 1)
    p = params("os", double_buffer=False)
    assert tuple(gemm_buffer_words(p)) == (256, 256, 0, 4)
    assert tuple(gemm_max_shape(p)) == (1024, 256, 16)
    assert gemm_fits(p, 1024, 1, 4) and not gemm_fits(p, 1025, 1, 4)
    p = params("is", double_buffer=False)
    assert tuple(gemm_max_shape(p)) == (1024, 256, 16)


def test_usable_from_other_numba_code():
    """The engine calls the model from its own @njit loops."""
    p = params("ws")

    @njit
    def sweep(pp):
        s = 0
        for m in range(1, 20):
            s += gemm_cycles(pp, m, 9, 7, 1)
        return s

    assert sweep(p) == sum(gemm_cycles(p, m, 9, 7, 1) for m in range(1, 20))


def test_the_model_does_not_import_amaranth():
    code = "import sys, edgetron.sim.units.gemm; sys.exit('amaranth' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_call_counts_closed_form():
    """ws 4x4, (8, 16, 8), int8 operands, int32 accumulators: 8 steps (KF 4, NT 2); A written
    once (8 rows x 4 folds of 4 bytes) and read once per step; W written and read once
    (2 x 16 rows of 4 bytes); 8 rows of 4 accumulators read and written per step; the
    adds of the accumulator stage, KF per output."""
    if_rd, if_wr, w_rd, w_wr, of_rd, of_wr, _, add32 = call_counts(params("ws"), 8, 16, 8,
                                                                   1, 1)
    assert (if_wr, if_rd) == (8 * 4 * 4, 8 * 8 * 4)
    assert w_wr == w_rd == 2 * 16 * 4
    assert of_rd == of_wr == 8 * 8 * 4 * 4
    assert add32 == 4 * 8 * 8


# ---- the functional kernel -------------------------------------------------------------------
FULL = (INT32_MIN, INT32_MAX)
DATAFLOWS = {"ws": 0, "os": 1, "is": 2}


def _run(a, w, bias, m=None, s=None, tile=None, rows=4, cols=4, dataflow=0, lo=INT8_MIN,
         hi=INT8_MAX):
    """``gemm_tiled`` of one product; int32 output when ``m`` is None. (out, calls, ok)."""
    a = np.ascontiguousarray(a, dtype=np.int64)[None]
    w = np.ascontiguousarray(w, dtype=np.int64)[None]
    n = w.shape[2]
    out32 = int(m is None)
    if out32:
        m, s, (lo, hi) = np.zeros(n, np.int64), np.ones(n, np.int64), FULL
    bias, m, s = (np.broadcast_to(np.asarray(v, np.int64), (n,))[None].copy()
                  for v in (bias, m, s))
    out = np.empty((1, a.shape[1], n), dtype=np.int64)
    tile = tile or (a.shape[1], a.shape[2], n)
    calls, ok = gemm_tiled(a, w, bias, m, s, out32, lo, hi, *tile, rows, cols, dataflow, out)
    return out[0], calls, ok


def test_gemm_kernel_matches_numpy_in_every_dataflow():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, size=(2, 13, 37)).astype(np.int64)
    w = rng.integers(-128, 128, size=(2, 37, 11)).astype(np.int64)
    bias = rng.integers(-1000, 1000, size=(2, 11)).astype(np.int64)
    ref = np.matmul(a, w) + bias[:, None, :]
    zeros = np.zeros((2, 11), dtype=np.int64)
    for dataflow in (0, 1, 2):
        for tile in ((13, 37, 11), (5, 16, 4), (1, 3, 1)):
            out = np.empty((2, 13, 11), dtype=np.int64)
            calls, ok = gemm_tiled(a, w, bias, zeros, zeros, 1, -(1 << 31), (1 << 31) - 1,
                                   *tile, 4, 4, dataflow, out)
            assert ok
            np.testing.assert_array_equal(out, ref)
            assert calls == 2 * -(-13 // tile[0]) * -(-37 // tile[1]) * -(-11 // tile[2])


@pytest.mark.parametrize("dataflow", DATAFLOWS.values(), ids=DATAFLOWS)
@pytest.mark.parametrize("tile", [None, (3, 256, 2), (4, 100, 4), (1, 1, 1)])
def test_extreme_operands_at_large_k_equal_golden(dataflow, tile):
    """All -128 (the largest product, 2**14) and all 127 at K = 1024, with the largest bias
    the int32 accumulator leaves room for: M = 4 on a 4x4 array reaches 16,777,216 in every
    PE; the K split (tiles of K 256 or 100, and 1) carries it through its partial sums."""
    k = 1024
    room = INT32_MAX - accumulator_bound(k)
    for value, bias in ((INT8_MIN, room), (INT8_MIN, -room), (INT8_MAX, -room)):
        a = np.full((4, k), value)
        w = np.full((k, 4), value)
        got, calls, ok = _run(a, w, bias, tile=tile, dataflow=dataflow)
        mt, kt, nt = tile or (4, k, 4)
        assert ok and calls == -(-4 // mt) * -(-k // kt) * -(-4 // nt)
        np.testing.assert_array_equal(got, gemm_int(a, w, np.full(4, bias)))
        assert got[0, 0] == value * value * k + bias
    assert gemm_int(np.full((4, k), INT8_MIN), np.full((k, 4), INT8_MIN))[0, 0] == 16_777_216


@pytest.mark.parametrize("dataflow", DATAFLOWS.values(), ids=DATAFLOWS)
def test_requantized_output_equals_golden(dataflow):
    """Random operands and biases, per-channel (m, s) from the smallest to the largest
    multiplier and shift, some channels saturating at -128 and 127; fused-activation
    clamps from golden."""
    rng = np.random.default_rng(5)
    a = rng.integers(INT8_MIN, INT8_MAX + 1, size=(9, 70))
    w = rng.integers(INT8_MIN, INT8_MAX + 1, size=(70, 6))
    bias = rng.integers(-(1 << 14), 1 << 14, size=6)
    m = np.array([M_MAX, 1 << 30, 1, 0, M_MAX, 12345])
    s = np.array([S_MAX, 40, 1, 7, 24, 20])
    for tile in (None, (4, 16, 4), (1, 8, 1)):
        got, _, ok = _run(a, w, bias, m, s, tile=tile, dataflow=dataflow)
        assert ok
        np.testing.assert_array_equal(got, gemm_requant(a, w, bias, m, s))
    want = gemm_requant(a, w, bias, m, s)
    assert want.min() == INT8_MIN and want.max() == INT8_MAX
    for act, scale in (("relu", 0.1), ("relu6", 0.1)):
        lo, hi = activation_bounds(act, scale)
        got, _, _ = _run(a, w, bias, m, s, dataflow=dataflow, lo=lo, hi=hi)
        np.testing.assert_array_equal(got, np.clip(want, lo, hi))


def test_rounding_ties_round_half_up():
    """acc * m / 2**s exactly half-way: +0.5 rounds up to 1, -0.5 up to 0, -1.5 to -1."""
    a = np.array([[1], [-1], [-3], [3]])
    w = np.array([[1]])
    got, _, ok = _run(a, w, 0, m=1, s=1)
    assert ok
    assert list(got[:, 0]) == [1, 0, -1, 2] == list(gemm_requant(a, w, [0], 1, 1)[:, 0])


@pytest.mark.parametrize("dataflow", [0, 1, 2])
@pytest.mark.parametrize("kt", [4, 1])
def test_gemm_kernel_flags_accumulations_beyond_int32(dataflow, kt):
    # Products of 2**15 * 2**15 = 2**30: one fits int32, the sum of four (2**32) does not.
    # With kt = 4 the array's own accumulation overflows, with kt = 1 each call fits and
    # the K split's partial-sum addition does; neither may wrap silently.
    a = np.full((1, 2, 4), 1 << 15, dtype=np.int64)
    w = np.full((1, 4, 3), 1 << 15, dtype=np.int64)
    zeros = np.zeros((1, 3), dtype=np.int64)
    out = np.empty((1, 2, 3), dtype=np.int64)
    calls, ok = gemm_tiled(a, w, zeros, zeros, zeros + 1, 1, -(1 << 31), (1 << 31) - 1,
                           2, kt, 3, 4, 4, dataflow, out)
    assert not ok and calls == 4 // kt
    np.testing.assert_array_equal(out, 1 << 32)  # int64 throughout: the exact sum, no wrap


def test_a_bias_past_int32_is_flagged():
    # INT32_MAX - 0 plus one product of 1: the bias add leaves int32.
    got, _, ok = _run(np.array([[1]]), np.array([[1]]), INT32_MAX)
    assert not ok and got[0, 0] == INT32_MAX + 1
