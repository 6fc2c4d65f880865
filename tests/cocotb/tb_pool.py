"""cocotb testbench of the pool unit (edgetron_pool), run by test_runners.py.

The model is tests/models/pool.py, the same as the Amaranth tests': pools are built from
seeds, driven with random valid gaps and ready backpressure, rebuilt by the input monitor
from the beats the unit accepted and compared with golden bit for bit by the scoreboard
(tests/cocotb/vector_bench.py). Tests, in order: the extremes of every coverage bin; random
pools with the extremes weighted (``EDGETRON_TB_VECTORS`` pools, default 1000; here capped
by the runner); the same pools and the full-rate shapes at full rate, each taking exactly
the ``edgetron.hw`` cycles; every cocotb-coverage bin hit. The extremes test also runs pools
whose grid rows are one or two line-buffer words (:func:`_short_row_segments`: each position
reads the word written back one or two cycles before: forwarded, or through the line
buffer's transparent read). With ``EDGETRON_TB_POOL_LAYERS=1`` (the slow run) the random
and full-rate tests also run the full-size network pools of ``PoolModel.layer_segments``.
"""

from __future__ import annotations

import os

from harness import load_manifest
from vector_bench import vector_tests

from edgetron.golden.pool import pool_constants
from tests.models.pool import PoolModel
from tests.models.vector import Segment

MODEL = PoolModel.from_parameters(load_manifest()["parameters"])


def _short_row_segments(rng) -> list[Segment]:
    """Pools over maps one pixel wide (one or two channel groups) and two pixels wide (one
    group): grid rows of one and two line-buffer words."""
    lanes = MODEL.lanes
    return [Segment(f"{kind} {win[0]}x{win[1]} W{w} C{c}",
                    pool_constants(kind, win, (1, 1), pads),
                    (MODEL.map(rng, "random", (2, 6, w, c)),))
            for w, c in ((1, lanes), (1, 2 * lanes), (2, lanes - 1))
            for kind, win, pads in (("max", (3, 1), (0, 0, 0, 0)),
                                    ("avg", (2, 1), (1, 0, 0, 0)),
                                    ("max", (3, w), (1, 1, 0, 0)))]


_coverage_segments = MODEL.coverage_segments
MODEL.coverage_segments = lambda rng: _coverage_segments(rng) + _short_row_segments(rng)
if os.environ.get("EDGETRON_TB_POOL_LAYERS") == "1":     # the slow full-size run
    _random_segments = MODEL.random_segments
    MODEL.random_segments = lambda rng, count: (_random_segments(rng, count)
                                                + MODEL.layer_segments(rng))

(pool_extremes, pool_random, pool_full_rate,
 pool_coverage) = vector_tests(MODEL, __name__)
