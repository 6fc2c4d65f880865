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

from harness import load_manifest
from vector_bench import vector_tests

from tests.models.pool import PoolModel

MODEL = PoolModel.from_parameters(load_manifest()["parameters"])
if os.environ.get("EDGETRON_TB_POOL_LAYERS") == "1":     # the slow full-size run
    _random_segments = MODEL.random_segments
    MODEL.random_segments = lambda rng, count: (_random_segments(rng, count)
                                                + MODEL.layer_segments(rng))

(pool_extremes, pool_random, pool_full_rate,
 pool_coverage) = vector_tests(MODEL, __name__)
