"""docs/trace-format.md and docs/workloads.md: the hand-written example is valid, every field
is documented, the error messages quoted are the real ones, and the tables of the preset
models are the builders'."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import edgetron.workload
from edgetron.config_file import load_config
from edgetron.workload import KINDS, MODELS, Gemm, Ref, Trace, build_model, parse_scalesim, vit
from edgetron.workload.scalesim import CONV_HEADER

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "trace-format.md"
WORKLOADS = DOCS / "workloads.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def example(text) -> Trace:
    block = re.search(r"## Example\n.*?```json\n(.*?)```", text, re.S)
    assert block, "the Example section has no json code block"
    return Trace.from_json(block.group(1), source="docs example")


def test_example_is_valid_and_has_the_stated_totals(example):
    assert example.name == "tiny-attention" and len(example) == 7
    assert example.macs == 1_280 and example.params == 304
    scores = example[2]
    assert isinstance(scores, Gemm) and not scores.weights and scores.scale == 0.5
    assert scores.inputs == (Ref(1, cols=(0, 8)), Ref(1, cols=(8, 16)))
    assert (scores.out_bits, example[3].in_bits) == (32, 32)
    assert example.consumers(1) == (2, 4)
    # The head layout of the two attention products, as the text explains it.
    context = example[4]
    assert (scores.a_heads, scores.b_heads, scores.b_transposed, scores.out_heads) == (
        "cols", "cols", True, "rows")
    assert (context.a_heads, context.b_heads, context.b_transposed, context.out_heads) == (
        "rows", "cols", False, "cols")
    assert scores.out_shape == (1, 2, 4, 4) and context.out_shape == (1, 4, 8)


def test_documented_error_message_is_the_real_one(text, example):
    doc = example.to_dict()
    doc["ops"][2]["inputs"][0]["cols"] = [0, 9]
    quoted = re.search(r"slice one column too wide: `(.*?)`", text.replace("\n", " "), re.S)
    assert quoted, "the message example is missing"
    with pytest.raises(ValueError) as info:
        Trace.from_dict(doc, source="x")
    assert str(info.value) == "x: " + quoted.group(1)


def test_example_round_trips_canonically(example):
    canonical = example.to_json()
    assert Trace.from_json(canonical) == example
    assert Trace.from_json(canonical).to_json() == canonical


def _section(text: str, start: str) -> str:
    """The text from ``start`` to the next paragraph that opens with a bold kind or heading."""
    begin = text.index(start)
    ends = [i for i in (text.find("\n**`", begin + 1), text.find("\n## ", begin + 1)) if i > 0]
    return text[begin:min(ends)]


# Keys of every op, documented once in the table of the common keys.
COMMON_KEYS = ("id", "name", "kind", "inputs", "in_bits", "out_bits", "requant")


def _undocumented(text: str) -> list[tuple[str, str]]:
    """(kind, field) pairs missing from their kind's own section, ("", key) for the others."""
    missing = [("", key) for key in COMMON_KEYS if f"| `{key}` |" not in _section(text, "## Ops")]
    missing += [("", key) for key in ("format", "version", "name", "batch", "description", "ops")
                if f"| `{key}` |" not in _section(text, "## The document")]
    for kind, cls in KINDS.items():
        section = _section(text, f"**`{kind}`**")
        if "the keys of `conv2d` without `groups`" in section:  # dwconv2d
            assert "groups" not in cls._FIELDS
            section += _section(text, "**`conv2d`**")
        missing += [(kind, field) for field in cls._FIELDS
                    if field not in COMMON_KEYS and f"`{field}`" not in section]
    return missing


def test_every_kind_and_field_is_documented_in_its_own_section(text):
    assert _undocumented(text) == []
    # Not vacuous: a field dropped from its kind's text is missed although the document
    # still mentions it elsewhere.
    concat = _section(text, "**`concat`**")
    without = text.replace(concat, concat.replace("`weight_bits`", "weight_bits"))
    assert "`weight_bits`" in without
    assert _undocumented(without) == [("concat", "weight_bits")]


def test_documented_api_names_are_exported(text):
    api = _section(text, "## Derived quantities (Python API)") + _section(
        text, "## Limits and safety")
    names = set(re.findall(r"`([A-Z][A-Za-z0-9_]*)`", api)) - {"NaN", "Infinity"}  # JSON
    assert {"HEAD_LAYOUTS", "ACTIVATIONS", "KINDS", "MAX_FILE_BYTES", "Trace"} <= names
    assert names <= set(edgetron.workload.__all__), names - set(edgetron.workload.__all__)


@pytest.fixture(scope="module")
def workloads() -> str:
    return WORKLOADS.read_text(encoding="utf-8")


def test_preset_table_matches_the_builders(workloads):
    for name in MODELS:
        trace = build_model(name)
        row = next(line for line in workloads.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {trace.macs:,} |" in row, name
        assert f"| {trace.params / 1e6:.2f} M |" in row, name


def _op_rows(section: str) -> dict[str, tuple[str, str, str]]:
    """``op -> (kind, shape, MACs)`` of the table rows ``| `op` | kind | shape | MACs |``."""
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| ([^|]+?) \| ([\d,]+) \|$", section, re.M)
    return {name: (kind, shape, macs) for name, kind, shape, macs in rows}


@pytest.mark.parametrize(("heading", "model", "ops"), [
    ("## ViT-Tiny", "vit-tiny", lambda op: not op.name.startswith("blocks.")
     or op.name.startswith("blocks.0.")),
    ("## ResNet-18", "resnet18", lambda op: True),
])
def test_model_tables_are_the_builders(workloads, heading, model, ops):
    section = workloads[workloads.index(heading):]
    section = section[:section.index("\n## ", 1)] if "\n## " in section[1:] else section
    rows = _op_rows(section)
    trace = build_model(model)
    expected = {op.name: (op.kind, op.describe(), f"{op.macs:,}") for op in trace if ops(op)}
    assert rows == expected
    assert f"**{trace.macs:,} MACs**" in section


def test_model_facts_in_the_text(workloads):
    vit_tiny, mobilenet = build_model("vit-tiny"), build_model("mobilenetv2")
    block = sum(op.macs for op in vit_tiny if op.name.startswith("blocks.0."))
    assert f"A block is {block:,} MACs" in workloads
    dw = [op for op in mobilenet if op.kind == "dwconv2d"]
    assert (f"{len(mobilenet)} ops, **{mobilenet.macs:,} MACs** and "
            f"{mobilenet.params / 1e6:.2f} M") in workloads.replace("\n", " ")
    assert f"Its {len(dw)} depthwise 3x3 convolutions hold only {sum(op.macs for op in dw):,} " \
           f"MACs ({100 * sum(op.macs for op in dw) / mobilenet.macs:.0f} % of the total)" in \
           workloads.replace("\n", " ")


def _error(call) -> str:
    try:
        call()
    except ValueError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_error_message_examples_are_real(text, tmp_path, monkeypatch):
    block = re.search(r"## Error messages\n.*?```\n(.*?)```", text, re.S)
    assert block, "the Error messages section has no example block"
    quoted = block.group(1).splitlines()
    doc = json.loads(vit(image_size=32, patch=16, embed=8, heads=2, depth=1, classes=10,
                         name="small").to_json())

    def edited(op, key, value):
        d = json.loads(json.dumps(doc))
        d["ops"][op][key] = value
        return lambda: Trace.from_dict(d, source="net.json")

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.toml").write_text("cols = " + "1" * 5000 + "\n")
    text_doc = json.dumps(doc).replace('"batch": 1', '"batch": ' + "1" * 5000, 1)
    produced = [
        _error(edited(4, "k", 0)),
        _error(edited(4, "m", 5.0)),
        _error(edited(5, "a_heads", "diag")),
        _error(lambda: Trace.from_json(text_doc, source="net.json")),
        _error(lambda: parse_scalesim(CONV_HEADER + "\na,10,10,3,3,4,4,1,\n\nb,10,10,3,3,x,4,1,",
                                      source="net.csv")),
        _error(lambda: parse_scalesim("Layer, M, K, N,\nfc,4,8,8,\n", source="net.csv")),
        _error(lambda: load_config("my.toml")),
        _error(lambda: build_model("vit-tiny", batch=1 << 24)),
    ]
    assert quoted == produced
