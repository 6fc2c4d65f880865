"""cocotb testbench of the softmax unit (edgetron_softmax), run by test_runners.py: the
four tests of :func:`vector_bench.vector_tests` on the unit model tests/models/softmax.py."""

from __future__ import annotations

from harness import load_manifest
from vector_bench import vector_tests

from tests.models.softmax import SoftmaxModel

MODEL = SoftmaxModel.from_parameters(load_manifest()["parameters"])
(softmax_extremes, softmax_random, softmax_full_rate,
 softmax_coverage) = vector_tests(MODEL, __name__)
