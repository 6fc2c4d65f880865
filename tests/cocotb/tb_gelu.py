"""cocotb testbench of the gelu unit (edgetron_gelu), run by test_runners.py: the
four tests of :func:`vector_bench.vector_tests` on the unit model tests/models/gelu.py."""

from __future__ import annotations

from harness import load_manifest
from vector_bench import vector_tests

from tests.models.gelu import GeluModel

MODEL = GeluModel.from_parameters(load_manifest()["parameters"])
(gelu_extremes, gelu_random, gelu_full_rate,
 gelu_coverage) = vector_tests(MODEL, __name__)
