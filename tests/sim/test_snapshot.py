"""Results frozen in tests/data/sim_snapshot.json stay exactly as they are (see snapshot.py)."""

from __future__ import annotations

import json

import pytest

from .snapshot import SNAPSHOT, collect


@pytest.fixture(scope="module")
def fresh():
    return collect()


@pytest.fixture(scope="module")
def frozen():
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_preset_model_and_config_is_frozen(fresh, frozen):
    assert sorted(fresh["runs"]) == sorted(frozen["runs"])
    assert fresh["op_columns"] == frozen["op_columns"]
    cols = frozen["op_columns"]
    for run, want in frozen["runs"].items():
        got = fresh["runs"][run]
        assert got["totals"] == want["totals"], run
        assert len(got["ops"]) == len(want["ops"]), run
        for i, (g, w) in enumerate(zip(got["ops"], want["ops"], strict=True)):
            diff = {c: (a, b) for c, a, b in zip(cols, g, w, strict=True) if a != b}
            assert not diff, f"{run}, op {i}: (now, frozen) {diff}"


def test_functional_outputs_are_frozen(fresh, frozen):
    assert fresh["functional"] == frozen["functional"]
    assert all(v["ok"] for v in frozen["functional"].values())
