"""docs/trace-format.md: the hand-written example is valid and every field is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import edgetron.workload
from edgetron.workload import KINDS, MODELS, Gemm, Ref, Trace, build_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"


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


def test_preset_table_matches_the_builders(text):
    for name in MODELS:
        trace = build_model(name)
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {trace.macs:,} |" in row, name
        assert f"| {trace.params / 1e6:.2f} M |" in row, name
