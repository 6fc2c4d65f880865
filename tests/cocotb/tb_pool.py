"""cocotb testbench of the pool unit (edgetron_pool), run by test_runners.py.

The model is tests/models/pool.py, the same as the Amaranth tests': pools are built from
seeds, driven with random valid gaps and ready backpressure, rebuilt by the input monitor
from the beats the unit accepted and compared with golden bit for bit by the scoreboard
(tests/cocotb/vector_bench.py). Tests, in order: the extremes of every coverage bin; random
pools with the extremes weighted (``EDGETRON_TB_VECTORS`` pools, default 1000; here capped
by the runner); the same pools and the full-rate shapes at full rate, each taking exactly
the ``edgetron.hw`` cycles; every cocotb-coverage bin hit. With
``EDGETRON_TB_POOL_LAYERS=1`` (the slow run) the random and full-rate tests also run the
full-size network pools of ``PoolModel.layer_segments``.
"""

from __future__ import annotations

import os

import cocotb
from harness import load_manifest
from vector_bench import CoverageBins, coverage_test, extremes_test, full_rate_test, random_test

from tests.models.pool import PoolModel

MODEL = PoolModel.from_parameters(load_manifest()["parameters"])
BINS = CoverageBins(MODEL)
SEED = 2026


def _segments(rng, count):
    segs = MODEL.random_segments(rng, count)
    if os.environ.get("EDGETRON_TB_POOL_LAYERS") == "1":    # the slow full-size run
        segs += MODEL.layer_segments(rng)
    return segs


@cocotb.test()
async def pool_extremes(dut):
    """Every coverage bin's extreme, with gaps and backpressure."""
    await extremes_test(dut, MODEL, BINS, SEED)


@cocotb.test()
async def pool_random(dut):
    """Random pools with gaps and backpressure, bit for bit with golden."""
    await random_test(dut, MODEL, BINS, SEED + 1, _segments, lambda seg: seg.data[0].size)


@cocotb.test()
async def pool_full_rate(dut):
    """The random pools and the full-rate shapes at full rate: cycles = edgetron.hw."""
    await full_rate_test(dut, MODEL, SEED + 1, _segments)


@cocotb.test()
async def pool_coverage(dut):
    """Every coverage bin hit (fails on an empty one)."""
    coverage_test(dut, BINS)
