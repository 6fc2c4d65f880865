"""The GEMM unit (sim/units/gemm.py): timing against hand-derived closed forms, and its
functional kernel against golden.

Each expected cycle count is written as its derivation: ``cmd 2 + load max(a, w, ch) +
compute + drain`` with every term computed from the array size and the shape, so a change
of the model that is not also a change of the hardware shows up here. Cycle equality with
the RTL itself is asserted in tests/rtl/test_gemm.py and the cocotb testbenches. The kernel
``gemm_tiled`` is compared with golden's ``gemm_int`` / ``gemm_requant`` in every dataflow
and tiling, at the int8 and int32 extremes.
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
    REQUANT_LATENCY,
    gemm_buffer_words,
    gemm_fits,
    gemm_max_shape,
)
from edgetron.sim.units.gemm import (
    call_counts,
    gemm_cycles,
    gemm_phases,
    gemm_tiled,
    gemm_utilization,
)


def params(dataflow="ws", rows=4, cols=4, size=1024, **kw):
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=size,
                             weight_sram_bytes=size, ofmap_sram_bytes=size, **kw).sim_params()


def total(cmd, a, w, ch, compute, drain):
    return cmd + max(a, w, ch) + compute + drain


def test_ws_one_fold():
    """K <= R and N <= C: one fold step. 4x4, M=3, K=4, N=4, int32 out.

    a = M*1 = 3, w = 1*K = 4, ch = 4; compute = R (first weight tile) + M = 7;
    drain = R + C + 1 = 9.
    """
    p = params("ws")
    ph = gemm_phases(p, 3, 4, 4, True)
    assert tuple(ph) == (2, 3, 4, 4, 4 + 3, 4 + 4 + 1, 3)
    assert gemm_cycles(p, 3, 4, 4, True) == total(2, 3, 4, 4, 7, 9) == 22


def test_ws_many_folds():
    """4x4, M=8, K=16, N=8, int8 out: KF=4 folds x NT=2 tiles = 8 steps of max(M,R)=8.

    a = 8*4 = 32, w = 2*16 = 32, ch = 8; compute = 4 + 7*8 + 8 = 68;
    drain = 4 + 4 + 1 + LAT.
    """
    p = params("ws")
    ph = gemm_phases(p, 8, 16, 8, False)
    assert tuple(ph) == (2, 32, 32, 8, 68, 9 + REQUANT_LATENCY, 16)
    assert gemm_cycles(p, 8, 16, 8, False) == 2 + 32 + 68 + 9 + REQUANT_LATENCY


def test_ws_k_not_a_multiple_of_the_array():
    """4x4, M=5, K=7, N=6: KF=2 (the second fold has 3 real rows), NT=2, S=4, P=5.

    a = 5*2 = 10, w = 2*7 = 14, ch = 6; compute = 4 + 3*5 + 5 = 24; drain 9.
    """
    p = params("ws")
    assert tuple(gemm_phases(p, 5, 7, 6, True)) == (2, 10, 14, 6, 24, 9, 10)
    assert gemm_cycles(p, 5, 7, 6, True) == total(2, 10, 14, 6, 24, 9)


def test_ws_few_rows_wait_for_the_weight_tile():
    """M=2 < R=4: each step lasts R cycles (the next weight tile loads one row per cycle).

    4x4, K=12, N=4: KF=3, S=3, P=4; compute = 4 + 2*4 + 2 = 14.
    """
    p = params("ws")
    assert gemm_phases(p, 2, 12, 4, True).compute == 14


def test_os_one_tile():
    """4x4 os, M=4, K=4, N=4: one tile; r_last = 3; drain = R + C + r_last + 1 = 12."""
    p = params("os")
    assert tuple(gemm_phases(p, 4, 4, 4, True)) == (2, 4, 4, 4, 4, 12, 4)
    assert gemm_cycles(p, 4, 4, 4, True) == 22


def test_os_tiles_and_the_minimum_tile_period():
    """4x4 os, M=5, K=7, N=6: MT=2 x NT=2 tiles, period max(K, 2R-1) = 7, r_last = 0.

    a = 2*7, w = 2*7, ch = 6; compute = 3*7 + 7 = 28; drain = 4 + 4 + 0 + 1 = 9.
    With K=2 the period is 2R-1 = 7 (result chains must empty): compute = 3*7 + 2.
    """
    p = params("os")
    assert tuple(gemm_phases(p, 5, 7, 6, True)) == (2, 14, 14, 6, 28, 9, 10)
    assert gemm_phases(p, 5, 2, 6, True).compute == 3 * 7 + 2
    assert gemm_phases(p, 5, 100, 6, True).compute == 3 * 100 + 100


def test_input_stationary_is_transposed_ws():
    """is(M, K, N) = ws(N, K, M) with the two operand streams exchanged."""
    p_is, p_ws = params("is"), params("ws")
    for m, k, n in [(3, 4, 4), (8, 16, 8), (5, 7, 6), (2, 30, 9)]:
        ph_is = gemm_phases(p_is, m, k, n, False)
        ph_ws = gemm_phases(p_ws, n, k, m, False)
        assert ph_is.a_beats == ph_ws.w_beats and ph_is.w_beats == ph_ws.a_beats
        assert (ph_is.compute, ph_is.drain, ph_is.out_beats) == (
            ph_ws.compute, ph_ws.drain, ph_ws.out_beats)


def test_int8_output_adds_the_requantizer_latency():
    for df in ("ws", "os", "is"):
        p = params(df)
        assert gemm_cycles(p, 7, 9, 5, False) - gemm_cycles(p, 7, 9, 5, True) == \
            REQUANT_LATENCY


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_large_k_keeps_the_array_busy(dataflow):
    """M, K, N multiples of the array and a large K: >= 95 % of R*C MACs per compute cycle."""
    p = params(dataflow, rows=8, cols=8, size=1 << 16)
    assert gemm_utilization(p, 16, 1024, 16) >= 950_000
    # An exact figure: ws 8x8, M=N=16, K=1024: S = 2*128 = 256 steps of 16 cycles.
    if dataflow == "ws":
        compute = 8 + 255 * 16 + 16
        assert gemm_utilization(p, 16, 1024, 16) == 16 * 1024 * 16 * 10**6 // (64 * compute)


def test_buffer_limits_closed_form():
    """4x4 with 1 KiB buffers, int8 operands and int32 accumulators.

    A words 1024/4 = 256, W words 256, accumulator rows 1024/(4*4) = 64, 4 parameter
    words of 4 channels. ws: M <= min(256, 64), K <= min(256*4, 256), N <= 4*4;
    os: M <= 256*4, K <= min(256, 256); is (A^T held in the array as words of C lanes,
    W^T streamed as words of R lanes): M <= 256*4, K <= min(256*4, 256),
    N <= min(256, 64, 4*4).
    """
    p = params("ws")
    assert tuple(gemm_buffer_words(p)) == (256, 256, 64, 4)
    assert tuple(gemm_max_shape(p)) == (64, 256, 16)
    assert gemm_fits(p, 64, 4, 16)
    assert not gemm_fits(p, 65, 4, 16)       # accumulator rows
    assert not gemm_fits(p, 64, 17, 16)      # 64 * ceil(17/4) = 320 > 256 A words
    assert not gemm_fits(p, 1, 257, 1)       # 257 W words
    assert not gemm_fits(p, 1, 1, 17)        # parameter memory
    assert not gemm_fits(p, 0, 1, 1)
    p = params("os")
    assert tuple(gemm_buffer_words(p)) == (256, 256, 0, 4)
    assert tuple(gemm_max_shape(p)) == (1024, 256, 16)
    assert gemm_fits(p, 1024, 1, 4) and not gemm_fits(p, 1025, 1, 4)
    p = params("is")
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


def test_call_counts_agree_with_the_phases():
    """call_counts' cycles are gemm_cycles; its load phase the largest stream's beats."""
    for dataflow in ("ws", "os", "is"):
        p = params(dataflow)
        for m, k, n in [(1, 1, 1), (8, 16, 8), (5, 7, 6)]:
            t, load, tail, *_ = call_counts(p, m, k, n, 0, 1, 1)
            ph = gemm_phases(p, m, k, n, 0)
            assert t == gemm_cycles(p, m, k, n, 0)
            assert load == max(ph.a_beats, ph.w_beats, ph.ch_beats)
            assert tail == ph.compute + ph.drain


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
