"""Export of the vector units: manifests, their timing models, lint on a vector config.

``edgetron rtl export`` registers softmax, gelu, layernorm, add and pool (``rtl/export.py``);
tests/rtl/test_export.py checks every registered unit's files, ports and lint on its
configs. Here: the manifests' parameters come from the config (``vector_lanes``,
``vector_row_max``, the widths), their timing models, evaluated by the manifest formula
evaluator of test_export (integers, ``+ - *``, ``max``, ``ceil(x / y)``; no ``eval``),
equal the ``edgetron.hw`` cycle functions, and the units lint clean at a lane count that is
not a power of two and a short row maximum.
"""

from __future__ import annotations

import pytest

from edgetron.config import AcceleratorConfig
from edgetron.hw.add import add_cycles
from edgetron.hw.gelu import gelu_cycles
from edgetron.hw.layernorm import layernorm_cycles
from edgetron.hw.pool import pool_cycles
from edgetron.hw.softmax import softmax_cycles
from edgetron.rtl.export import UNITS, export_unit
from edgetron.rtl.lint import lint_verilator, lint_yosys

from .test_export import _formula

VECTOR_UNITS = ("softmax", "gelu", "layernorm", "add", "pool")
#: Three lanes (a partial tree level), rows of up to 10, a 1 KiB ofmap buffer (the pool's
#: line buffer): every vector unit small.
CFG = AcceleratorConfig(name="vector-lint", vector_lanes=3, vector_row_max=10, acc_bits=24,
                        ofmap_sram_bytes=1024)


def _total(model: dict, variables: dict) -> int:
    names = {**model["constants"], **variables}
    for name, expr in model.get("derived", {}).items():
        names[name] = _formula(expr, names)
    return _formula(model["total"], names)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("vector_export")
    return {unit: export_unit(unit, CFG, out) for unit in VECTOR_UNITS}


def test_registered_with_parameters_from_the_config(exported):
    assert set(VECTOR_UNITS) <= set(UNITS)
    params = {u: exported[u].manifest_data["parameters"] for u in VECTOR_UNITS}
    assert params["softmax"] == {"lanes": 3, "row_max": 10, "in_bits": 24}
    assert params["layernorm"] == {"lanes": 3, "row_max": 10, "in_bits": 8}
    assert params["gelu"] == {"lanes": 3, "in_bits": 24}
    assert params["add"] == {"lanes": 3, "in_bits": 8}
    # the line buffer: two rows of 3 bytes per word in 1 KiB; as many groups as one row
    assert params["pool"] == {"lanes": 3, "row_beats": 170, "groups": 170, "in_bits": 8}
    lat = {u: exported[u].manifest_data["latency_cycles"] for u in VECTOR_UNITS}
    # gelu: eight i-GELU stages and the six-stage requantizer; add: products, sum, rounding
    # shift, saturation; pool: read, vertical, horizontal, the six-stage requantizer and
    # the output buffer's cycle
    assert lat == {"softmax": None, "layernorm": None, "gelu": 8 + 6, "add": 4,
                   "pool": 3 + 6 + 1}


@pytest.mark.parametrize("unit", VECTOR_UNITS)
def test_lint_clean(exported, unit):
    res = exported[unit]
    for report in (lint_verilator(res.verilog, res.top), lint_yosys(res.verilog, res.top)):
        assert report.ok, report.output


@pytest.mark.parametrize("lanes", [1, 4, 16])
def test_manifest_timing_models_equal_the_cycle_functions(lanes):
    cfg = AcceleratorConfig(name="t", vector_lanes=lanes)
    models = {u: UNITS[u].timing_model(cfg) for u in VECTOR_UNITS}
    for e in (1, lanes, 197, 1000):
        assert _total(models["add"], {"E": e}) == add_cycles(lanes, e)
        assert _total(models["gelu"], {"E": e}) == gelu_cycles(lanes, e)
    for rows, n in ((1, 1), (3, 197), (2, 256), (5, 7), (4, 768)):
        assert _total(models["softmax"], {"R": rows, "n": n}) == softmax_cycles(lanes, rows, n)
    for rows, c in ((1, 2), (3, 197), (2, 768), (4, 9)):
        assert _total(models["layernorm"], {"R": rows, "C": c}) == \
            layernorm_cycles(lanes, rows, c)
    pools = ((1, 112, 112, 64, 56, 56, 3, 3, 2, 2, 1, 1), (2, 7, 7, 1280, 1, 1, 7, 7, 1, 1, 0, 0),
             (1, 7, 6, 5, 3, 3, 2, 2, 2, 2, 0, 0), (3, 4, 5, 9, 4, 5, 3, 3, 1, 1, 1, 1))
    names = ("n", "h", "w", "C", "oh", "ow", "r", "s", "sh", "sw", "pt", "pl")
    for shape in pools:
        assert _total(models["pool"], dict(zip(names, shape, strict=True))) == \
            pool_cycles(lanes, *shape)

