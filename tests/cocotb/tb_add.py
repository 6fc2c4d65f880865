"""cocotb testbench of the add unit (edgetron_add), run by test_runners.py: the
four tests of :func:`vector_bench.vector_tests` on the unit model tests/models/add.py."""

from __future__ import annotations

from harness import load_manifest
from vector_bench import vector_tests

from tests.models.add import AddModel

MODEL = AddModel.from_parameters(load_manifest()["parameters"])
(add_extremes, add_random, add_full_rate,
 add_coverage) = vector_tests(MODEL, __name__)
