"""pytest runners of the cocotb testbenches (tb_*.py), on Icarus and on Verilator.

Each runner exports the unit from Amaranth into its own build directory
(build/cocotb/<unit>-<sim>-<tag>, or under $EDGETRON_BUILD_DIR), compiles it once and
runs every cocotb test of the testbench in that one simulator process; run_tb fails unless
every test the testbench defines ran and passed (the count follows its parameter lists).
A missing simulator fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest
from simrun import SIMULATORS, TB_DIR, build_root, discovered_tests, run_tb

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
    # Two rows: the ws accumulator stage reads only R = 2 cycles ahead, through its
    # transparent read (R >= 4 never takes that path).
    "2x2-ws": _gemm_config(2, "ws", 4, 1),
    "4x4-ws": _gemm_config(4, "ws", 4, 1),
    "8x8-ws": _gemm_config(8, "ws", 8, 2),
    "4x4-os": _gemm_config(4, "os", 4, 1),
}
_GEMM_SLOW_CFG = _gemm_config(16, "ws", 32, 8)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_requant(sim):
    build_dir, tests = run_tb("requant", sim, _REQUANT_CFG, tag="4lanes")
    assert tests >= 1
    # Builds go under the build root, never next to the testbench sources.
    assert build_dir == build_root() / "cocotb" / f"requant-{sim}-4lanes"
    assert not build_dir.is_relative_to(TB_DIR) and not (TB_DIR / "sim_build").exists()


@pytest.mark.parametrize("tag", list(_GEMM_CFGS))
@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm(sim, tag):
    _, tests = run_tb("gemm", sim, _GEMM_CFGS[tag], tag=tag)
    assert tests >= 1


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm_16x16(sim):
    _, tests = run_tb("gemm", sim, _GEMM_SLOW_CFG, tag="16x16-ws")
    assert tests >= 1


#: One small config for every vector unit: 4 lanes, rows of up to 40 (the longest row is
#: in the random mix; 10 beats, more than the 9-cycle reciprocal, so back-to-back rows fill
#: the rings), int32 logits and GELU inputs, int8 LayerNorm and add operands.
_VECTOR_CFG = AcceleratorConfig(name="tb-vector", vector_lanes=4, vector_row_max=40)


@pytest.mark.parametrize("unit", ["softmax", "gelu", "layernorm", "add"])
@pytest.mark.parametrize("sim", SIMULATORS)
def test_vector_unit(sim, unit):
    _, tests = run_tb(unit, sim, _VECTOR_CFG, tag="4lanes")
    assert tests == 4


#: Random rows (elements) per unit of the slow regression (EDGETRON_LONG_RUN overrides it).
VECTOR_LONG_RUN = int(os.environ.get("EDGETRON_LONG_RUN", 10**6))


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["softmax", "gelu", "layernorm", "add"])
def test_vector_unit_million_vectors_on_verilator(unit, monkeypatch):
    """The slow regression: 10^6 random rows (softmax, LayerNorm) or elements (GELU, add) on
    Verilator through benchmarks/vector_units.py's compiled bench: no mismatch, no empty
    coverage bin."""
    benchmarks = TB_DIR.parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    spec = importlib.util.spec_from_file_location("_vector_units_bench",
                                                  benchmarks / "vector_units.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.random_run(unit, VECTOR_LONG_RUN)
    assert res["vectors"] >= VECTOR_LONG_RUN, res["vectors"]
    assert res["mismatches"] == 0 and not res["empty_bins"], res


#: The pool unit: 4 lanes, a 40-word line buffer (a 320-byte ofmap buffer: two rows of 4
#: bytes per word), maps of up to 9 x 9 with up to 3 channel groups; 60 random pools (each
#: about 300 cycles: the Amaranth tests run more).
_POOL_CFG = AcceleratorConfig(name="tb-pool", vector_lanes=4, ofmap_sram_bytes=320)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_pool_unit(sim):
    _, tests = run_tb("pool", sim, _POOL_CFG, tag="4lanes",
                      extra_env={"EDGETRON_TB_VECTORS": "60"})
    assert tests == 4


#: Full-size network pools (slow, Verilator): 16 lanes, a 512-word line buffer (16 KiB).
_POOL_LAYER_CFG = AcceleratorConfig(name="tb-pool-layers", vector_lanes=16,
                                    ofmap_sram_bytes=16 * KiB)


@pytest.mark.slow
def test_pool_unit_network_layers():
    _, tests = run_tb("pool", "verilator", _POOL_LAYER_CFG, tag="16lanes-layers",
                      extra_env={"EDGETRON_TB_VECTORS": "10", "EDGETRON_TB_POOL_LAYERS": "1"})
    assert tests == 4


#: The depthwise mode: a 9-row array holds every kernel of up to 9 taps (3x3); 4 channels,
#: 16-word lines. The slow run: a 16x16 array whose lines hold MobileNetV2's 112.
_CONV_CFG = AcceleratorConfig(name="tb-conv-9x4", rows=9, cols=4, ifmap_sram_bytes=576)
_CONV_SLOW_CFG = AcceleratorConfig(name="tb-conv-16x16", rows=16, cols=16,
                                   ifmap_sram_bytes=32 * KiB)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_conv(sim):
    _, tests = run_tb("conv", sim, _CONV_CFG, tag="9x4")
    assert tests >= 1


@pytest.mark.slow
def test_conv_full_mobilenet_depthwise_layer(tmp_path, monkeypatch):
    """MobileNetV2's first depthwise layer, full size (112 x 112 x 32, 3x3, padding 1),
    and a stride-2 one (112 x 112 x 96 -> 56 x 56), on Verilator: bit-exact, every
    command and output at the simulator's cycle."""
    calls = [[112, 112, 3, 3, 1, 1, 1, 1, 1, 1]] * 2 + [[112, 112, 3, 3, 2, 2, 0, 1, 0, 1]] * 6
    shapes, out = tmp_path / "calls.json", tmp_path / "cycles.json"
    shapes.write_text(json.dumps({"calls": calls}))
    monkeypatch.setenv("EDGETRON_TB_FILTER", "conv_sweep")
    _, tests = run_tb("conv", "verilator", _CONV_SLOW_CFG, tag="16x16", extra_env={
        "EDGETRON_TB_SWEEP": str(shapes), "EDGETRON_TB_SWEEP_OUT": str(out)})
    assert tests == 1
    got = json.loads(out.read_text())
    assert got["rtl_cycles"] == got["sim_cycles"]


#: The dense ConvUnit: a 4x4 array with 512 band words and 512 weight words per slot and
#: 128 accumulator rows (ResNet-18 slices at 14 x 14 in bands of 4 output rows). The slow
#: run: edge-16's array with buffers for a full 56 x 56 x 64 layer in bands.
_CONV_DENSE_CFG = AcceleratorConfig(name="tb-conv-dense-4x4", rows=4, cols=4,
                                    ifmap_sram_bytes=4 * KiB, weight_sram_bytes=4 * KiB,
                                    ofmap_sram_bytes=2 * KiB)
_CONV_DENSE_SLOW_CFG = AcceleratorConfig(name="tb-conv-dense-16x16", rows=16, cols=16,
                                         ifmap_sram_bytes=64 * KiB,
                                         weight_sram_bytes=128 * KiB,
                                         ofmap_sram_bytes=64 * KiB)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_conv_dense(sim):
    _, tests = run_tb("conv_dense", sim, _CONV_DENSE_CFG, tag="4x4")
    assert tests >= 1


@pytest.mark.slow
def test_conv_dense_full_resnet18_layer1(tmp_path, monkeypatch):
    """ResNet-18's layer1 3x3 conv, full size (56 x 56 x 64 -> 64, padding 1), in bands,
    on Verilator: bit-exact, every call's command and output cycles the simulator's."""
    convs = [[56, 56, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 4]]
    spec, out = tmp_path / "convs.json", tmp_path / "cycles.json"
    spec.write_text(json.dumps({"convs": convs}))
    monkeypatch.setenv("EDGETRON_TB_FILTER", "conv_dense_sweep")
    _, tests = run_tb("conv_dense", "verilator", _CONV_DENSE_SLOW_CFG, tag="16x16",
                      extra_env={"EDGETRON_TB_SWEEP": str(spec),
                                 "EDGETRON_TB_SWEEP_OUT": str(out)})
    assert tests == 1
    got = json.loads(out.read_text())
    assert got["rtl"] == got["sim"]


def test_test_counts_follow_the_parameter_lists(tmp_path):
    """The expected count is cocotb's own discovery of the testbench, each parametrisation
    expanded: one test per spec of tb_gemm.SPECS and per sequence of tb_gemm.SEQUENCES
    plus one per plain test, so adding a case to a parameter list raises it; nothing is
    kept by hand."""
    from cocotb.regression import TestGenerator

    from edgetron.rtl.export import export_unit

    exported = export_unit("gemm", _GEMM_CFGS["4x4-ws"], tmp_path)
    env = {"EDGETRON_TB_MANIFEST": str(exported.manifest)}
    spec = importlib.util.spec_from_file_location("_tb_gemm_specs", TB_DIR / "tb_gemm.py")
    module = importlib.util.module_from_spec(spec)
    os.environ.update(env)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name)
        os.environ.pop("EDGETRON_TB_MANIFEST")
    generators = [obj for obj in vars(module).values() if isinstance(obj, TestGenerator)]
    assert len(module.SPECS) >= 30 and len(module.SEQUENCES) >= 9 and len(generators) >= 4
    # gemm_case yields one test per spec, gemm_sequence one per sequence, every other
    # generator one test.
    assert discovered_tests("gemm", env) == (len(module.SPECS) + len(module.SEQUENCES)
                                             + len(generators) - 2)
