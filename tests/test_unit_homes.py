"""docs/adding-a-unit.md's checklist holds for every unit of the export registry.

Each hardware unit has one home per layer, under its registry name: its golden module, its
shared numbers in edgetron/hw, its RTL module, its simulator module, its unit model, its
tests in every layer, its mutants, and a docs section. The requantizer is a component
shared by the units (exported on its own for lint and the FPGA flow), not a unit of its
own: its latency is in edgetron/hw/gemm.py, its golden function is golden.intops.requantize.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from edgetron.rtl.export import UNITS

ROOT = Path(__file__).resolve().parents[1]
#: Exported components that are not units of their own (see the module docstring).
COMPONENTS = {"requant"}
HW_UNITS = sorted(set(UNITS) - COMPONENTS)


def _mutant_units() -> set[str]:
    """The unit names of benchmarks/mutants.py's registry (read as text: it is a script)."""
    tree = ast.parse((ROOT / "benchmarks" / "mutants.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "UNITS"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("benchmarks/mutants.py has no UNITS registry")


def test_the_registry_has_units():
    assert "gemm" in HW_UNITS


@pytest.mark.parametrize("unit", HW_UNITS)
def test_every_layer_has_the_unit_under_its_name(unit):
    for module in (f"edgetron.golden.{unit}", f"edgetron.hw.{unit}", f"edgetron.rtl.{unit}",
                   f"edgetron.sim.units.{unit}"):
        importlib.import_module(module)
    golden = UNITS[unit].golden.split()[0]
    assert golden.startswith(f"edgetron.golden.{unit}."), (unit, golden)
    for path in (f"tests/golden/test_{unit}.py", f"tests/sim/test_{unit}.py",
                 f"tests/rtl/test_{unit}.py", f"tests/cocotb/tb_{unit}.py",
                 f"tests/models/{unit}.py"):
        assert (ROOT / path).is_file(), f"{unit}: {path} is missing (docs/adding-a-unit.md)"
    runners = (ROOT / "tests" / "cocotb" / "test_runners.py").read_text(encoding="utf-8")
    assert f'"{unit}"' in runners, f"{unit}: no cocotb runner in tests/cocotb/test_runners.py"
    assert unit in _mutant_units(), f"{unit}: no mutants in benchmarks/mutants.py"


@pytest.mark.parametrize("unit", HW_UNITS)
def test_every_unit_has_a_docs_section(unit):
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    headings = [line for line in docs.splitlines() if line.startswith("#")]
    assert any(unit in h.lower() or unit.upper() in h for h in headings), (
        f"{unit}: no docs section names it")
