"""docs/trace-format.md: the hand-written example is valid and every field is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_every_kind_and_field_is_documented(text):
    for kind, cls in KINDS.items():
        assert f"**`{kind}`**" in text, kind
        for field in cls._FIELDS:
            assert f"`{field}`" in text, (kind, field)
    for key in ("format", "version", "name", "batch", "description", "ops", "id", "kind",
                "inputs", "in_bits", "out_bits", "requant", "weight_bits", "act"):
        assert f"`{key}`" in text, key


def test_preset_table_matches_the_builders(text):
    for name in MODELS:
        trace = build_model(name)
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {trace.macs:,} |" in row, name
        assert f"| {trace.params / 1e6:.2f} M |" in row, name
