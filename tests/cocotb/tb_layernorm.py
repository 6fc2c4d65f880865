"""cocotb testbench of the layernorm unit (edgetron_layernorm), run by test_runners.py: the
four tests of :func:`vector_bench.vector_tests` on the unit model tests/models/layernorm.py."""

from __future__ import annotations

from harness import load_manifest
from vector_bench import vector_tests

from tests.models.layernorm import LayerNormModel

MODEL = LayerNormModel.from_parameters(load_manifest()["parameters"])
(layernorm_extremes, layernorm_random, layernorm_full_rate,
 layernorm_coverage) = vector_tests(MODEL, __name__)
