"""GEMM timing model against closed forms derived by hand (docs/rtl.md, "Latency").

Each expected value is written as its derivation: ``cmd 2 + load max(a, w, ch) + compute
+ drain`` with every term computed from the array size and the shape, so a change of the
model that is not also a change of the hardware shows up here. Cycle equality with the
RTL itself is asserted in tests/rtl/test_gemm.py and the cocotb testbenches.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from numba import njit

from edgetron.config import AcceleratorConfig
from edgetron.sim.units.gemm import (
    REQUANT_LATENCY,
    gemm_buffer_words,
    gemm_cycles,
    gemm_fits,
    gemm_max_shape,
    gemm_phases,
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
