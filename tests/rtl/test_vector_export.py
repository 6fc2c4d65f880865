# amaranth: UnusedElaboratable=no
"""Export readiness of the vector units: Verilog, Verilator and Yosys lint, timing models.

Each unit is built from a config with ``from_config``, converted with
``amaranth.back.verilog.convert`` and linted exactly as ``edgetron rtl export`` lints the
GEMM unit (``rtl/export.py``: ``verilator --lint-only -Wall`` with the project waivers,
Yosys ``check -assert``). The manifest timing dicts (``<unit>_timing``) are evaluated and
compared with the ``edgetron.hw`` cycle functions they describe.
"""

from __future__ import annotations

import math

import pytest
from amaranth.back import verilog

from edgetron.config import AcceleratorConfig
from edgetron.hw.add import add_cycles
from edgetron.hw.gelu import gelu_cycles
from edgetron.hw.layernorm import layernorm_cycles
from edgetron.hw.softmax import softmax_cycles
from edgetron.rtl.add import AddUnit, add_timing
from edgetron.rtl.gelu import GeluUnit, gelu_timing
from edgetron.rtl.layernorm import LayerNormUnit, layernorm_timing
from edgetron.rtl.lint import lint_verilator, lint_yosys
from edgetron.rtl.softmax import SoftmaxUnit, softmax_timing

CFG = AcceleratorConfig(name="lint", vector_lanes=4)
BUILDERS = {
    "add": lambda cfg: AddUnit.from_config(cfg),
    "gelu": lambda cfg: GeluUnit.from_config(cfg),
    "softmax": lambda cfg: SoftmaxUnit.from_config(cfg, row_max=64),
    "layernorm": lambda cfg: LayerNormUnit.from_config(cfg, row_max=64),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("vector_export")
    paths = {}
    for name, build in BUILDERS.items():
        top = f"edgetron_{name}"
        path = out / f"{top}.v"
        path.write_text(verilog.convert(build(CFG), name=top, emit_src=False))
        paths[name] = (path, top)
    return paths


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_verilator_lint_clean(exported, name):
    report = lint_verilator(*exported[name])
    assert report.ok, report.output


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_yosys_check_clean(exported, name):
    report = lint_yosys(*exported[name])
    assert report.ok, report.output


def _evaluate(model: dict, variables: dict) -> int:
    """Evaluate a manifest timing model (integers, + - *, max, ceil of an exact ratio)."""
    from fractions import Fraction
    env = {k: Fraction(v) for k, v in {**model["constants"], **variables}.items()}
    scope = {"__builtins__": {}, "max": max, "ceil": math.ceil}
    for name, expr in model.get("derived", {}).items():
        env[name] = Fraction(eval(expr, scope, env))
    return int(eval(model["total"], scope, env))


@pytest.mark.parametrize("lanes", [1, 4, 16])
def test_manifest_timing_models_equal_the_cycle_functions(lanes):
    cfg = AcceleratorConfig(name="t", vector_lanes=lanes)
    for e in (1, lanes, 197, 1000):
        assert _evaluate(add_timing(cfg), {"E": e}) == add_cycles(lanes, e)
        assert _evaluate(gelu_timing(cfg), {"E": e}) == gelu_cycles(lanes, e)
    for rows, n in ((1, 1), (3, 197), (2, 256), (5, 7)):
        assert _evaluate(softmax_timing(cfg), {"R": rows, "n": n}) == \
            softmax_cycles(lanes, rows, n)
    for rows, c in ((1, 2), (3, 197), (2, 768), (4, 9)):
        assert _evaluate(layernorm_timing(cfg), {"R": rows, "C": c}) == \
            layernorm_cycles(lanes, rows, c)
