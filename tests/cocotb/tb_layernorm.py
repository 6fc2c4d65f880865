"""cocotb testbench of the layernorm unit (edgetron_layernorm), run by test_runners.py.

The model is tests/models/layernorm.py, the same as the Amaranth tests': segments are built from
seeds, driven with random valid gaps and ready backpressure, rebuilt by the input monitor
from the beats the unit accepted and compared with golden bit for bit by the scoreboard
(tests/cocotb/vector_bench.py). Tests, in order: the extremes of every coverage bin;
random rows with the extremes weighted (``EDGETRON_TB_VECTORS``, default 1000); the same
segments and every row-length class at full rate, each taking exactly the
``edgetron.hw`` cycles; every cocotb-coverage bin hit.
"""

from __future__ import annotations

import cocotb
from harness import load_manifest
from vector_bench import CoverageBins, coverage_test, extremes_test, full_rate_test, random_test

from tests.models.layernorm import LayerNormModel

MODEL = LayerNormModel.from_parameters(load_manifest()["parameters"])
BINS = CoverageBins(MODEL)
SEED = 2026


def _segments(rng, count):
    return MODEL.random_segments(rng, count)


@cocotb.test()
async def layernorm_extremes(dut):
    """Every coverage bin's extreme, with gaps and backpressure."""
    await extremes_test(dut, MODEL, BINS, SEED)


@cocotb.test()
async def layernorm_random(dut):
    """Random segments with gaps and backpressure, bit for bit with golden."""
    await random_test(dut, MODEL, BINS, SEED + 1, _segments, lambda seg: seg.rows)


@cocotb.test()
async def layernorm_full_rate(dut):
    """The random segments and every row-length class at full rate: cycles = edgetron.hw."""
    await full_rate_test(dut, MODEL, SEED + 1, _segments)


@cocotb.test()
async def layernorm_coverage(dut):
    """Every coverage bin hit (fails on an empty one)."""
    coverage_test(dut, BINS)
