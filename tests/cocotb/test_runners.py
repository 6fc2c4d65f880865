"""pytest runners of the cocotb testbenches (tb_*.py), on Icarus and on Verilator.

Each runner exports the unit from Amaranth into its own build directory
(build/cocotb/<unit>-<sim>-<tag>, or under $EDGETRON_BUILD_DIR), compiles it once and
runs every cocotb test of the testbench in that one simulator process. A missing
simulator fails the test.
"""

from __future__ import annotations

import pytest
from simrun import SIMULATORS, TB_DIR, build_root, run_tb, tb_filter

from edgetron.config import AcceleratorConfig

KiB = 1024

#: The requantizer only depends on cols and the widths.
_REQUANT_CFG = AcceleratorConfig(name="tb-requant", rows=4, cols=4)


def _gemm_config(n: int, dataflow: str, sram_kib: int, acc_kib: int) -> AcceleratorConfig:
    # Buffers large enough for the large-K utilization run, small enough to simulate fast.
    return AcceleratorConfig(
        name=f"tb-{n}x{n}-{dataflow}", rows=n, cols=n, dataflow=dataflow,
        ifmap_sram_bytes=sram_kib * KiB, weight_sram_bytes=sram_kib * KiB,
        ofmap_sram_bytes=acc_kib * KiB, vector_lanes=n,
    )


_GEMM_CFGS = {
    "4x4-ws": _gemm_config(4, "ws", 4, 1),
    "8x8-ws": _gemm_config(8, "ws", 8, 2),
    "4x4-os": _gemm_config(4, "os", 4, 1),
}
_GEMM_SLOW_CFG = _gemm_config(16, "ws", 32, 8)
#: cocotb tests in tb_gemm.py: 30 cases (10 fixed + 20 random), back-to-back,
#: bad shapes, utilization.
_GEMM_TESTS = 33


def _check_count(ran: int, expected: int) -> None:
    # Every cocotb test of the module ran (a filter from EDGETRON_TB_FILTER selects fewer).
    assert ran == expected or (tb_filter() is not None and ran >= 1), (
        f"{ran} cocotb tests ran, the testbench has {expected}")


@pytest.mark.parametrize("sim", SIMULATORS)
def test_requant(sim):
    build_dir, tests = run_tb("requant", sim, _REQUANT_CFG, tag="4lanes")
    _check_count(tests, 5)
    # Builds go under the build root, never next to the testbench sources.
    assert build_dir == build_root() / "cocotb" / f"requant-{sim}-4lanes"
    assert not build_dir.is_relative_to(TB_DIR) and not (TB_DIR / "sim_build").exists()


@pytest.mark.parametrize("tag", list(_GEMM_CFGS))
@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm(sim, tag):
    _, tests = run_tb("gemm", sim, _GEMM_CFGS[tag], tag=tag)
    _check_count(tests, _GEMM_TESTS)


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm_16x16(sim):
    _, tests = run_tb("gemm", sim, _GEMM_SLOW_CFG, tag="16x16-ws")
    _check_count(tests, _GEMM_TESTS)
