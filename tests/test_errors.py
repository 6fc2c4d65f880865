"""One error hierarchy: every bad input from a user is an EdgetronError of its kind.

Library users catch one class per kind of input (ConfigError for configurations,
TraceError for traces and workloads, ScaleSimError for SCALE-Sim CSVs) or EdgetronError
for all of them; nothing else (OverflowError, TypeError, a bare ValueError) escapes for
bad data, whatever the value.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetron.config import AcceleratorConfig
from edgetron.config_file import load_config
from edgetron.errors import ConfigError, EdgetronError, ScaleSimError, SimulationError, TraceError
from edgetron.report import plot_path
from edgetron.workload import (
    KINDS,
    Gemm,
    Trace,
    build_model,
    load_workload,
    parse_scalesim,
    resnet18,
    vit,
)
from edgetron.workload.scalesim import CONV_HEADER, GEMM_HEADER


def test_hierarchy():
    for cls in (ConfigError, TraceError, ScaleSimError, SimulationError):
        assert issubclass(cls, EdgetronError) and issubclass(cls, ValueError)
    assert issubclass(ScaleSimError, TraceError)
    assert not issubclass(ConfigError, TraceError) and not issubclass(TraceError, ConfigError)


def _write(tmp_path, name, text: str | bytes):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# (what goes wrong, the call, the one class a library user catches)
CASES = [
    ("config value", lambda p: AcceleratorConfig(rows=0), ConfigError),
    ("config type", lambda p: AcceleratorConfig(clock_mhz="fast"), ConfigError),
    ("config huge int", lambda p: AcceleratorConfig(clock_mhz=10**400), ConfigError),
    ("config preset", lambda p: load_config("edge-99"), ConfigError),
    ("TOML syntax", lambda p: load_config(_write(p, "c.toml", "rows = = 1")), ConfigError),
    ("TOML key", lambda p: load_config(_write(p, "c.toml", "rowz = 1")), ConfigError),
    ("TOML huge int", lambda p: load_config(_write(p, "c.toml", "rows = " + "1" * 5000)),
     ConfigError),
    ("TOML not UTF-8", lambda p: load_config(_write(p, "c.toml", b"rows = 1 # \xff")),
     ConfigError),
    ("op field", lambda p: Gemm(name="g", inputs=("input",), batch=1, m=0, k=1, n=1,
                                weights=True), TraceError),
    ("op huge int", lambda p: Gemm(name="g", inputs=("input",), batch=1, m=10**5000, k=1, n=1,
                                   weights=True), TraceError),
    ("op scale", lambda p: Gemm(name="g", inputs=("input",), batch=1, m=1, k=1, n=1,
                                weights=True, scale=10**400), TraceError),
    ("trace links", lambda p: Trace(name="t", batch=2, ops=(
        Gemm(name="g", inputs=("input",), batch=1, m=1, k=1, n=1, weights=True),)), TraceError),
    ("trace JSON", lambda p: Trace.from_json("{"), TraceError),
    ("trace huge int", lambda p: Trace.from_json('{"batch": ' + "1" * 5000 + "}"), TraceError),
    ("trace file", lambda p: load_workload(_write(p, "t.json", "[]")), TraceError),
    ("model name", lambda p: build_model("resnet50"), TraceError),
    ("model batch", lambda p: build_model("vit-tiny", batch=1 << 24), TraceError),
    ("builder argument", lambda p: vit(embed=7, heads=2), TraceError),
    ("builder argument type", lambda p: resnet18(batch="2"), TraceError),
    ("CSV cell", lambda p: parse_scalesim(GEMM_HEADER + "\nfc,4,x,8,\n"), ScaleSimError),
    ("CSV huge cell", lambda p: parse_scalesim(GEMM_HEADER + "\nfc,4," + "9" * 5000 + ",8,\n"),
     ScaleSimError),
    ("CSV header order", lambda p: parse_scalesim("Layer, M, K, N,\nfc,4,8,8,\n"),
     ScaleSimError),
    ("CSV file", lambda p: load_workload(_write(p, "n.csv", "x\n")), ScaleSimError),
    ("plot format", lambda p: plot_path(p / "plot.txt"), EdgetronError),
]


@pytest.mark.parametrize(("case", "call", "cls"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_bad_input_is_caught_by_one_class(tmp_path, case, call, cls):
    with pytest.raises(cls) as info:
        call(tmp_path)
    assert isinstance(info.value, EdgetronError)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 600, message


# ---- any JSON value in any field: a TraceError or a trace, nothing else -------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers() | st.sampled_from([10**400, -(10**400), 2**63, 0, -1, 1 << 24])
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=8,
)
DOC = json.loads(vit(image_size=32, patch=16, embed=8, heads=2, depth=1, classes=10).to_json())
FIELDS = sorted({f for cls in KINDS.values() for f in cls._FIELDS}
                | {"id", "name", "kind", "inputs", "unknown"})


@settings(deadline=None, max_examples=300)
@given(op=st.integers(0, len(DOC["ops"]) - 1), field=st.sampled_from(FIELDS), value=json_values)
def test_any_value_in_any_op_field_is_a_trace_error_or_valid(op, field, value):
    doc = json.loads(json.dumps(DOC))
    doc["ops"][op][field] = value
    try:
        Trace.from_dict(doc, source="t.json")
    except TraceError as exc:
        assert str(exc).startswith("t.json: ")
    # also through the text: NaN and Infinity are refused there
    text = json.dumps(doc)
    try:
        Trace.from_json(text, source="t.json")
    except TraceError as exc:
        assert str(exc).startswith("t.json: ")


@settings(deadline=None, max_examples=300)
@given(field=st.sampled_from(sorted({"preset", *AcceleratorConfig.__dataclass_fields__})),
       value=json_values)
def test_any_value_in_any_config_field_is_a_config_error_or_valid(field, value):
    try:
        cfg = AcceleratorConfig.from_dict({field: value}, source="c.toml")
    except ConfigError as exc:
        assert str(exc).startswith("c.toml: ")
    else:
        assert all(not isinstance(v, float) or math.isfinite(v) for v in cfg.to_dict().values())


@settings(deadline=None, max_examples=300)
@given(row=st.integers(0, 1), column=st.integers(0, 8),
       cell=st.text(max_size=12) | st.integers(-5, 10**30).map(str)
       | st.integers(1, 6000).map(lambda n: "9" * n))
def test_any_csv_cell_is_a_scalesim_error_or_valid(row, column, cell):
    rows = [["a", "10", "10", "3", "3", "4", "4", "1", "1"], ["b", "9", "9", "3", "3", "4",
                                                              "4", "2", "2"]]
    rows[row][column] = cell
    text = CONV_HEADER + " Stride Width,\n" + "".join(",".join(r) + ",\n" for r in rows)
    try:
        parse_scalesim(text, source="n.csv")
    except ScaleSimError as exc:
        assert str(exc).startswith("n.csv")
