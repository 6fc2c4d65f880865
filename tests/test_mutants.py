"""The mutation benchmark's edits still match the RTL they mutate (no simulation).

``benchmarks/mutants.py`` applies each mutant as text edits of a source file; when the
source changes under a mutant, the benchmark can only stop with an error instead of showing
the bug caught. This test applies every mutant of every unit to the current file in memory:
each edit must match exactly once, change something, and leave Python that compiles.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("edgetron_mutants_benchmark",
                                                  ROOT / "benchmarks" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses resolve the module by name
    spec.loader.exec_module(module)
    return module


BENCH = _load_benchmark()
CASES = [(unit, mutant) for unit, spec in BENCH.UNITS.items() for mutant in spec.mutants]


def test_every_unit_has_mutants_with_unique_names():
    assert set(BENCH.UNITS) >= {"requant", "gemm", "conv", "conv_dense", "pool", "softmax",
                                "layernorm", "gelu", "add"}
    for unit, spec in BENCH.UNITS.items():
        names = [m.name for m in spec.mutants]
        assert names and len(names) == len(set(names)), unit


@pytest.mark.parametrize(("unit", "mutant"), CASES, ids=[f"{u}-{m.name}" for u, m in CASES])
def test_mutant_edits_match_the_source(unit, mutant):
    path = ROOT / mutant.path
    original = path.read_text(encoding="utf-8")
    mutated = BENCH.mutate(original, mutant)
    assert mutated != original
    compile(mutated, str(path), "exec")


def test_a_stale_edit_is_reported():
    mutant = BENCH.Mutant("stale", "an edit whose text is gone", "rtl/pe.py",
                          (("text that is not in the file", "x"),))
    with pytest.raises(BENCH.StaleMutant, match="0 occurrences"):
        BENCH.mutate((ROOT / "rtl/pe.py").read_text(encoding="utf-8"), mutant)
    twice = BENCH.Mutant("twice", "an edit matching twice", "rtl/pe.py", (("a", "b"),))
    with pytest.raises(BENCH.StaleMutant, match="occurrences"):
        BENCH.mutate("a a", twice)
