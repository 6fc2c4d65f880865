"""The trace document: canonical round trip, validation errors, derived quantities, limits."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edgetron.workload import (
    KINDS,
    MAX_DIM,
    MODELS,
    Add,
    AvgPool,
    Concat,
    Conv2d,
    DwConv2d,
    Gelu,
    Gemm,
    GemmShape,
    LayerNorm,
    MaxPool,
    Ref,
    Softmax,
    Trace,
    TraceError,
    build_model,
    load_trace,
    save_trace,
    vit,
)
from edgetron.workload.trace import graph as trace_module


def small_vit() -> Trace:
    """17 ops: 0 patch_embed, 1 cls_token, 2 pos_embed, 3 ln1, 4 qkv, 5 attn_scores,
    6 softmax, 7 attn_v, 8 proj, 9 add1, 10 ln2, 11 fc1, 12 gelu, 13 fc2, 14 add2,
    15 norm, 16 head."""
    return vit(image_size=32, patch=16, embed=8, heads=2, depth=1, classes=10, name="small")


def small_doc() -> dict:
    return json.loads(small_vit().to_json())


# ---- canonical round trip --------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(MODELS))
@pytest.mark.parametrize("batch", [1, 2])
def test_save_load_save_is_byte_identical(tmp_path, preset, batch):
    trace = build_model(preset, batch=batch)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    save_trace(trace, first)
    loaded = load_trace(first)
    assert loaded == trace
    save_trace(loaded, second)
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    assert text.endswith("}\n") and text.isascii()


def test_defaults_may_be_omitted_and_saving_makes_it_canonical():
    doc = small_doc()
    op = doc["ops"][4]  # qkv
    for key in ("count", "in_bits", "acc_bits", "act", "scale", "out_bits"):
        del op[key]
    trace = Trace.from_dict(doc)
    assert trace == small_vit()
    assert trace.to_json() == small_vit().to_json()


def test_canonical_layout():
    text = small_vit().to_json()
    lines = text.splitlines()
    assert lines[:4] == ['{', '  "format": "edgetron-trace",', '  "version": 1,',
                         '  "name": "small",']
    assert lines[6] == '  "ops": ['
    assert lines[7].startswith('    {"id": 0, "name": "patch_embed", "kind": "conv2d"')
    assert len(lines) == 7 + 17 + 2


# ---- rejected documents: the message names the op index and the field --------------------
def _set(path, value):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _delete(path):
    def edit(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit


def _update(op, **values):
    def edit(doc):
        doc["ops"][op].update(values)
    return edit


BAD_DOCUMENTS = [
    # (edit, words the message must contain)
    (_set(["ops", 4, "kind"], "conv3d"), ["op 4", "kind", "conv3d"]),
    (_set(["ops", 4, "kind"], 7), ["op 4", "kind"]),
    (_delete(["ops", 4, "kind"]), ["op 4", "kind", "missing"]),
    (_set(["ops", 4, "k"], 0), ["op 4", "'blocks.0.qkv'", "k:", "out of range"]),
    (_set(["ops", 4, "m"], -4), ["op 4", "m:", "-4", "out of range"]),
    (_set(["ops", 0, "pad_left"], -1), ["op 0", "pad_left"]),
    (_set(["ops", 0, "pad_left"], 16), ["op 0", "pad_left", "16", "[0, 15]"]),
    (_set(["ops", 0, "r"], 0), ["op 0", "r:"]),
    (_set(["ops", 6, "cols"], 0), ["op 6", "cols"]),
    (_set(["ops", 9, "shape"], [1, 5, 0]), ["op 9", "shape[2]"]),
    (_set(["ops", 4, "m"], True), ["op 4", "m:", "bool"]),
    (_set(["ops", 4, "m"], 5.0), ["op 4", "m:", "float"]),
    (_set(["ops", 4, "weights"], 1), ["op 4", "weights"]),
    (_set(["ops", 4, "scale"], 0), ["op 4", "scale"]),
    (_set(["ops", 5, "scale"], 10**400), ["op 5", "scale", "floating-point range"]),
    (_set(["ops", 4, "requant"], "row"), ["op 4", "requant"]),
    (_set(["ops", 4, "act"], "tanh"), ["op 4", "act"]),
    (_set(["ops", 4, "in_bits"], 1), ["op 4", "in_bits"]),
    (_delete(["ops", 4, "m"]), ["op 4", "m:", "missing"]),
    (_set(["ops", 4, "foo"], 1), ["op 4", "foo", "unknown field"]),
    (_set(["ops", 6, "weight_bits"], 8), ["op 6", "weight_bits", "unknown field"]),
    (_set(["ops", 5, "weight_bits"], 8), ["op 5", "weight_bits", "without weights"]),
    (_set(["ops", 5, "a_heads"], "diag"), ["op 5", "a_heads", "'diag' is not one of rows, cols"]),
    (_set(["ops", 7, "out_heads"], 1), ["op 7", "out_heads"]),
    (_set(["ops", 5, "b_transposed"], 1), ["op 5", "b_transposed", "true or false"]),
    (_set(["ops", 5, "b_transposed"], "yes"), ["op 5", "b_transposed"]),
    (_set(["ops", 4, "a_heads"], "rows"), ["op 4", "a_heads", "gemm with weights"]),
    (_set(["ops", 4, "b_transposed"], True), ["op 4", "b_transposed", "gemm with weights"]),
    (_set(["ops", 11, "act"], "relu"), ["op 11", "act", "requant is 'none'"]),
    (_set(["ops", 5, "act"], "relu6"), ["op 5", "act", "requant is 'none'"]),
    (_set(["ops", 4, "id"], 5), ["op 4", "id"]),
    (_set(["ops", 4, "id"], 4.0), ["op 4", "id", "float"]),
    (_set(["ops", 4, "id"], True), ["op 4", "id", "bool"]),
    (_set(["ops", 4, "inputs"], 3), ["op 4", "inputs"]),
    (_set(["ops", 4, "inputs"], [3, 2]), ["op 4", "inputs", "takes 1"]),
    # the count is checked before the entries: one surplus bad entry is a count error
    (_set(["ops", 4, "inputs"], [3, "x"]), ["op 4", "inputs:", "takes 1", "got 2"]),
    (_set(["ops", 4, "inputs"], ["x"]), ["op 4", "inputs[0]"]),
    (_set(["ops", 4, "inputs"], [{"op": 3, "stride": 2}]), ["op 4", "inputs[0]", "stride"]),
    (_set(["ops", 4, "inputs"], [{"op": 3, "rows": [2, 2]}]), ["op 4", "inputs[0]", "rows"]),
    (_set(["ops", 4, "inputs"], [{"rows": [0, 1]}]), ["op 4", "inputs[0]", "'op'"]),
    # links between ops
    (_set(["ops", 4, "inputs"], [4]), ["op 4", "inputs[0]", "does not come before"]),
    (_set(["ops", 4, "inputs"], [9]), ["op 4", "inputs[0]", "op 9"]),
    (_set(["ops", 4, "k"], 16), ["op 4", "inputs[0]", "[1, 5, 16]", "[1, 5, 8]"]),
    (_set(["ops", 8, "k"], 16), ["op 8", "inputs[0]"]),
    (_set(["ops", 5, "inputs", 0, "cols"], [0, 9]),
     ["op 5", "inputs[0]", "op 4 ('blocks.0.qkv') cols 0:9", "[1, 5, 9]"]),
    (_set(["ops", 5, "inputs", 1, "cols"], [20, 25]), ["op 5", "inputs[1].cols", "exceeds"]),
    (_set(["ops", 16, "inputs", 0, "rows"], [0, 6]), ["op 16", "inputs[0].rows", "exceeds"]),
    (_set(["ops", 9, "shape"], [1, 5, 4, 2]), ["op 9", "inputs[0]"]),
    (_set(["ops", 6, "in_bits"], 8), ["op 6", "in_bits", "out_bits 32"]),
    (_set(["ops", 7, "batch"], 2), ["op 7", "batch"]),
    (_set(["ops", 0, "out_h"], 3), ["op 0", "out_h", "derived"]),
    (_set(["ops", 0, "out_w"], 2.0), ["op 0", "out_w", "float 2.0"]),
    # same elements per sample, but the features of a row are not the producer's
    (_update(10, rows=10, cols=4), ["op 10", "inputs[0]", "4 features per row instead of 8"]),
    (_update(6, rows=5, cols=10), ["op 6", "inputs[0]", "10 features per row instead of 5"]),
    (_update(4, m=10, k=4), ["op 4", "inputs[0]", "4 features per row instead of 8"]),
    (_update(1, rows=[8], cols=4), ["op 1", "inputs[0]", "4 features per row instead of 8"]),
    (_set(["ops", 11, "out_bits"], 8), ["op 11", "out_bits", "requant"]),
    (_set(["ops", 5, "requant"], "channel"), ["op 5", "requant", "per-channel"]),
    (_set(["ops", 6, "requant"], "channel"), ["op 6", "requant", "per-channel"]),
    (_set(["ops", 1, "requant"], "tensor"), ["op 1", "requant"]),
    (_set(["ops", 1, "rows"], [4, 0]), ["op 1", "rows"]),
    # the document
    (_set(["version"], 2), ["version", "unsupported", "2"]),
    (_set(["version"], "1"), ["version"]),
    (_set(["format"], "scalesim"), ["format"]),
    (_set(["batch"], 0), ["batch"]),
    (_set(["ops"], []), ["ops"]),
    (_set(["ops"], {}), ["ops"]),
    (_set(["ops", 3], [1, 2]), ["op 3", "JSON object"]),
    (_set(["extra"], 1), ["extra", "unknown key"]),
    (_delete(["name"]), ["name", "missing"]),
]


@pytest.mark.parametrize(("edit", "words"), BAD_DOCUMENTS)
def test_bad_documents_are_rejected_naming_op_and_field(edit, words):
    doc = small_doc()
    edit(doc)
    with pytest.raises(TraceError) as info:
        Trace.from_dict(doc, source="bad.json")
    message = str(info.value)
    assert message.startswith("bad.json: ")
    for word in words:
        assert word in message, (word, message)


def test_inconsistent_feature_maps_between_convs_are_rejected():
    doc = json.loads(build_model("resnet18").to_json())
    doc["ops"][2]["c"] = 32  # layer1.0.conv1 reading the 64-channel max pool output
    with pytest.raises(TraceError, match=r"op 2 \('layer1.0.conv1'\): inputs\[0\]: expects "
                                         r"a \[1, 56, 56, 32\] operand"):
        Trace.from_dict(doc)


def test_bad_json_text():
    good = small_vit().to_json()
    with pytest.raises(TraceError, match="not valid JSON"):
        Trace.from_json(good[:-10], source="cut.json")
    with pytest.raises(TraceError, match="duplicate key 'name'"):
        Trace.from_json(good.replace('"name": "small",', '"name": "small", "name": "x",'))
    with pytest.raises(TraceError, match="NaN"):
        Trace.from_json(good.replace('"scale": 1.0', '"scale": NaN', 1))
    with pytest.raises(TraceError, match="nested too deeply"):
        Trace.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(TraceError, match="expected a JSON object"):
        Trace.from_json("[1, 2]")
    # An integer of more digits than Python converts from text is valid JSON: its field's
    # check names it, as it names any other integer out of range.
    with pytest.raises(TraceError, match=r"^big\.json: batch: an integer of 5001 digits is "
                                         r"out of range; allowed \[1, 16777216\]$"):
        Trace.from_json(good.replace('"batch": 1', '"batch": 1' + "0" * 5000, 1),
                        source="big.json")
    with pytest.raises(TraceError, match=r"^big\.json: op 4 \('blocks\.0\.qkv'\): k: an integer "
                                         r"of 9000 digits is out of range"):
        Trace.from_json(good.replace('"m": 5, "k": 8,', '"m": 5, "k": -' + "9" * 9000 + ",", 1),
                        source="big.json")


def test_duplicate_keys_name_the_op():
    good = small_vit().to_json()
    with pytest.raises(TraceError, match=r"^t\.json: op 4 \('blocks\.0\.qkv'\): duplicate key "
                                         r"'kind'$"):
        Trace.from_json(good.replace('"kind": "gemm"', '"kind": "gemm", "kind": "gemm"', 1),
                        source="t.json")
    # in a sliced input of op 5
    with pytest.raises(TraceError, match=r"op 5 \('blocks\.0\.attn_scores'\): duplicate key "
                                         r"'cols'"):
        Trace.from_json(good.replace('"cols": [0, 8]', '"cols": [0, 8], "cols": [0, 8]', 1))
    # an op without a name is named by its index
    with pytest.raises(TraceError, match=r"op 3: duplicate key 'rows'"):
        Trace.from_json(good.replace('"name": "blocks.0.ln1"', '"rows": 1, "rows": 2', 1))


def test_derived_fields_must_be_integers():
    doc = json.loads(build_model("resnet18").to_json())
    pool = len(doc["ops"]) - 2
    assert doc["ops"][pool]["out_h"] == 1  # the global average pool
    for value, shown in ((True, "bool True"), (1.0, "float 1.0")):
        doc["ops"][pool]["out_h"] = value
        with pytest.raises(TraceError, match=rf"op {pool} \('avgpool'\): out_h: expected an "
                                             rf"integer .* got {shown}"):
            Trace.from_dict(doc)


def test_load_trace_file_errors(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(TraceError, match="not UTF-8"):
        load_trace(path)
    path.write_text(small_vit().to_json())
    monkeypatch.setattr(trace_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(TraceError, match="exceeds the limit of 100 bytes"):
        load_trace(path)
    with pytest.raises(OSError):
        load_trace(tmp_path / "missing.json")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_file_limit_counts_the_bytes_read_not_the_reported_size(monkeypatch):
    # /proc files report size 0 (as pipes do) whatever they hold.
    path = Path("/proc/self/maps")
    assert path.stat().st_size == 0
    monkeypatch.setattr(trace_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(TraceError, match="maps: the file exceeds the limit of 100 bytes"):
        load_trace(path)


def test_reshapes_keep_the_feature_dimension():
    conv = Conv2d(name="conv", inputs=("input",), n=2, h=2, w=2, c=4, k=8, r=1, s=1)
    # A feature map's pixels as tokens, and a classifier flattening the whole sample.
    tokens = LayerNorm(name="ln", inputs=(0,), batch=2, rows=4, cols=8)
    flat = Gemm(name="fc", inputs=(0,), batch=2, m=1, k=32, n=10, weights=True)
    assert len(Trace(name="t", batch=2, ops=(conv, tokens, flat))) == 3
    # The same 32 elements per sample as 8 rows of 4 or 2 rows of 16 are not features.
    for op in (LayerNorm(name="ln", inputs=(0,), batch=2, rows=8, cols=4),
               Softmax(name="sm", inputs=(0,), batch=2, rows=2, cols=16),
               Gemm(name="fc", inputs=(0,), batch=2, m=2, k=16, n=10, weights=True),
               Concat(name="cat", inputs=(0,), batch=2, rows=(8,), cols=4)):
        with pytest.raises(TraceError, match=rf"op 1 \('{op.name}'\): inputs\[0\]: .* same 32 "
                                             rf"elements per sample, but {op.in_shapes[0][-1]} "
                                             "features per row instead of 8"):
            Trace(name="t", batch=2, ops=(conv, op))
    # Every input of a concat is checked, the third as the first.
    rows = LayerNorm(name="ln", inputs=("input",), batch=2, rows=4, cols=8)
    with pytest.raises(TraceError, match=r"op 3 \('cat'\): inputs\[2\]: .* 8 features per row "
                                         "instead of 4"):
        Trace(name="t", batch=2, ops=(rows, rows, dataclasses.replace(rows, cols=4, rows=8),
                                      Concat(name="cat", inputs=(0, 1, 2), batch=2,
                                             rows=(4, 4, 4), cols=8)))
    # Stacked heads of a product of two activations are read as rows of the same length.
    scores = Gemm(name="s", inputs=("input", "input"), batch=1, count=2, m=3, k=4, n=3,
                  weights=False, out_bits=32, requant="none")
    assert scores.out_shape == (1, 2, 3, 3)
    Trace(name="t", batch=1, ops=(scores, Softmax(name="sm", inputs=(0,), batch=1, rows=6,
                                                  cols=3, in_bits=32)))
    with pytest.raises(TraceError, match="6 features per row instead of 3"):
        Trace(name="t", batch=1, ops=(scores, Softmax(name="sm", inputs=(0,), batch=1, rows=3,
                                                      cols=6, in_bits=32)))


# ---- size limits -------------------------------------------------------------------------
def test_dimension_limit():
    with pytest.raises(TraceError, match=f"m: {MAX_DIM + 1} is out of range"):
        Gemm(name="g", inputs=("input",), batch=1, m=MAX_DIM + 1, k=1, n=1, weights=True)
    # Beyond Python's limit on digits converted to text: still a TraceError, shown short.
    with pytest.raises(TraceError, match=r"^m: an integer of 5001 digits is out of range"):
        Gemm(name="g", inputs=("input",), batch=1, m=10**5000, k=1, n=1, weights=True)


def test_element_limit_is_checked_before_anything_is_allocated():
    with pytest.raises(TraceError, match=r"inputs\[0\]: .* elements exceed the limit"):
        Gemm(name="g", inputs=("input",), batch=1, m=MAX_DIM, k=MAX_DIM, n=1, weights=True)
    with pytest.raises(TraceError, match=r"weights: \d+ elements exceed the limit"):
        Gemm(name="g", inputs=("input",), batch=1, m=1, k=MAX_DIM, n=1024, weights=True)
    with pytest.raises(TraceError, match=r"output: \d+ elements exceed the limit"):
        Concat(name="c", inputs=("input",), batch=1, rows=(1,), cols=MAX_DIM, const_rows=1000)


# ---- attention head layout ------------------------------------------------------------
def _act_gemm(**kw) -> Gemm:
    args = dict(name="g", inputs=("input", "input"), batch=2, count=3, m=4, k=5, n=6,
                weights=False)
    args.update(kw)
    return Gemm(**args)


@pytest.mark.parametrize("a_heads", ["rows", "cols"])
@pytest.mark.parametrize("b_heads", ["rows", "cols"])
@pytest.mark.parametrize("b_transposed", [False, True])
@pytest.mark.parametrize("out_heads", ["rows", "cols"])
def test_head_layouts_define_shapes_and_products(a_heads, b_heads, b_transposed, out_heads):
    op = _act_gemm(a_heads=a_heads, b_heads=b_heads, b_transposed=b_transposed,
                   out_heads=out_heads)
    batch, count, m, k, n = 2, 3, 4, 5, 6
    # Stored shapes: heads stacked (rows) or side by side in the features (cols).
    stored = {"rows": lambda r, c: (batch, count, r, c), "cols": lambda r, c: (batch, r, count * c)}
    b_dims = (n, k) if b_transposed else (k, n)
    assert op.in_shapes == (stored[a_heads](m, k), stored[b_heads](*b_dims))
    assert op.out_shape == stored[out_heads](m, n)
    assert op.macs == batch * count * m * k * n
    assert op.gemm == GemmShape(batch * count, m, k, n, False)
    # product_view recovers element [b, h, i, j] of product h from the stored operand.
    for which, (rows, cols), layout, transposed, shape in (
        ("a", (m, k), a_heads, False, op.in_shapes[0]),
        ("b", (k, n), b_heads, b_transposed, op.in_shapes[1]),
        ("out", (m, n), out_heads, False, op.out_shape),
    ):
        mats = np.arange(batch * count * rows * cols).reshape(batch, count, rows, cols)
        per_head = mats.transpose(0, 1, 3, 2) if transposed else mats  # as stored per head
        if layout == "cols":
            x = np.concatenate(list(per_head.transpose(1, 0, 2, 3)), axis=-1)
        else:
            x = per_head
        assert x.shape == shape
        view_shape, axes = op.product_view(which)
        np.testing.assert_array_equal(x.reshape(view_shape).transpose(axes), mats)


def test_head_layout_of_one_product_is_a_plain_matrix():
    op = _act_gemm(count=1, a_heads="cols", b_heads="cols", b_transposed=True, out_heads="cols")
    assert op.in_shapes == ((2, 4, 5), (2, 6, 5)) and op.out_shape == (2, 4, 6)
    shape, axes = op.product_view("b")
    b = np.arange(2 * 6 * 5).reshape(2, 6, 5)
    np.testing.assert_array_equal(b.reshape(shape).transpose(axes)[:, 0], b.transpose(0, 2, 1))


def test_layout_fields_are_for_products_of_two_activations():
    with pytest.raises(TraceError, match="a_heads: 'cols' is only for a product of two "
                                         "activations"):
        Gemm(name="g", inputs=("input",), batch=1, m=2, k=3, n=4, weights=True, a_heads="cols")
    with pytest.raises(TraceError, match="b_transposed: True is only for"):
        Gemm(name="g", inputs=("input",), batch=1, m=2, k=3, n=4, weights=True,
             b_transposed=True)
    with pytest.raises(TraceError, match="b_heads: 'row' is not one of rows, cols"):
        _act_gemm(b_heads="row")
    with pytest.raises(TraceError, match="b_transposed: expected true or false"):
        _act_gemm(b_transposed=0)
    weights = Gemm(name="g", inputs=("input",), batch=1, count=2, m=2, k=3, n=4, weights=True)
    assert weights.product_view("a") == ((1, 2, 2, 3), (0, 1, 2, 3))
    with pytest.raises(ValueError, match="operand must be 'a', 'b' \\(weights false\\) or 'out'"):
        weights.product_view("b")
    with pytest.raises(ValueError, match="got 'c'"):
        _act_gemm().product_view("c")
    # Written for products of two activations only, defaults included.
    written = small_doc()["ops"]
    for op in written:
        if op["kind"] == "gemm":
            present = {"a_heads", "b_heads", "b_transposed", "out_heads"} <= set(op)
            assert present != op["weights"], op["name"]
    assert list(written[5])[list(written[5]).index("weights") + 1:][:4] == [
        "a_heads", "b_heads", "b_transposed", "out_heads"]


def test_documents_without_layout_fields_load_with_the_defaults():
    # Version-1 documents written before the layout fields existed still load: their
    # attention gemms take the defaults (heads stacked in rows, B not transposed).
    doc = small_doc()
    for i in (5, 7):
        for key in ("a_heads", "b_heads", "b_transposed", "out_heads"):
            del doc["ops"][i][key]
    old = Trace.from_dict(doc)
    for i in (5, 7):
        op = old[i]
        assert (op.a_heads, op.b_heads, op.b_transposed, op.out_heads) == (
            "rows", "rows", False, "rows")
        assert op.macs == small_vit()[i].macs and op.gemm == small_vit()[i].gemm
    assert old[7].out_shape == (1, 2, 5, 4)  # the product's own layout, heads stacked
    assert old.macs == small_vit().macs
    resaved = json.loads(old.to_json())["ops"][5]
    assert (resaved["a_heads"], resaved["b_transposed"]) == ("rows", False)


def test_act_needs_a_requantization():
    with pytest.raises(TraceError, match="act: 'relu' is a clamp fused into the requantization"):
        Gemm(name="g", inputs=("input",), batch=1, m=2, k=3, n=4, weights=True,
             out_bits=32, requant="none", act="relu")
    with pytest.raises(TraceError, match="act: 'relu6'"):
        Conv2d(name="c", inputs=("input",), n=1, h=4, w=4, c=2, k=2, r=1, s=1,
               out_bits=32, requant="none", act="relu6")
    with pytest.raises(TraceError, match="act: 'relu'"):
        Add(name="a", inputs=(0, 1), shape=(1, 4), requant="none", act="relu")
    assert Add(name="a", inputs=(0, 1), shape=(1, 4), act="relu").act == "relu"


# ---- Python API -------------------------------------------------------------------------
def test_json_fields_cover_every_dataclass_field():
    for kind, cls in KINDS.items():
        fields = {f.name for f in dataclasses.fields(cls)} - {"name", "inputs"}
        assert fields == set(cls._FIELDS) - set(cls._DERIVED_FIELDS), kind
        assert set(cls._REQUIRED) <= set(cls._FIELDS), kind


def test_ops_are_frozen():
    op = small_vit()[4]
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.m = 3


def test_refs():
    assert Ref.coerce("input") == Ref(None)
    assert Ref.coerce(3) == Ref(3)
    assert Ref.coerce({"op": 3, "cols": [0, 8]}) == Ref(3, cols=(0, 8))
    assert Ref(3, rows=(0, 1)).to_json() == {"op": 3, "rows": [0, 1]}
    assert Ref(None).to_json() == "input" and Ref(2).to_json() == 2
    with pytest.raises(TraceError, match="external input cannot be sliced"):
        Ref(None, cols=(0, 1))
    with pytest.raises(TraceError, match="op index"):
        Ref.coerce({"op": True})
    with pytest.raises(TraceError, match=r'expected "input", an op index .* got bool True'):
        Ref.coerce(True)


def test_conv_derived_quantities():
    op = Conv2d(name="c", inputs=("input",), n=2, h=10, w=12, c=8, k=16, r=3, s=3,
                stride_h=2, stride_w=1, pad_top=1, pad_bottom=1, groups=4, weight_bits=4,
                bias=True)
    assert (op.out_h, op.out_w) == (5, 10)
    assert op.in_shapes == ((2, 10, 12, 8),) and op.out_shape == (2, 5, 10, 16)
    assert op.macs == 2 * 5 * 10 * 16 * 2 * 9
    assert op.gemm == GemmShape(4, 100, 18, 4, True) and op.gemm.macs == op.macs
    assert (op.weight_count, op.bias_count, op.params) == (288, 16, 304)
    assert (op.weight_bytes, op.bias_bytes, op.param_bytes) == (144, 64, 208)
    assert (op.in_bytes, op.out_bytes) == (2 * 10 * 12 * 8, 2 * 5 * 10 * 16)
    assert op.unit == "array" and op.describe() == "10x12x8 -> 5x10x16 k3x3 s2x1 p1,1,0,0 g4"


def test_depthwise_with_multiplier():
    op = DwConv2d(name="d", inputs=("input",), n=1, h=8, w=8, c=4, k=8, r=3, s=3, pad_top=1,
                  pad_bottom=1, pad_left=1, pad_right=1)
    assert op.multiplier == 2 and op.out_shape == (1, 8, 8, 8)
    assert op.macs == 64 * 8 * 9 and op.weight_count == 8 * 9
    assert op.gemm == GemmShape(4, 64, 9, 2, True)
    with pytest.raises(TraceError, match="k: 6 output channels must be a multiple"):
        DwConv2d(name="d", inputs=("input",), n=1, h=8, w=8, c=4, k=6, r=3, s=3)
    with pytest.raises(TraceError, match="use kind 'dwconv2d'"):
        Conv2d(name="c", inputs=("input",), n=1, h=8, w=8, c=4, k=4, r=3, s=3, groups=4)
    with pytest.raises(TraceError, match="groups: 3 must divide"):
        Conv2d(name="c", inputs=("input",), n=1, h=8, w=8, c=4, k=6, r=3, s=3, groups=3)
    with pytest.raises(TraceError, match="r: kernel size 9 exceeds the padded input size 8"):
        Conv2d(name="c", inputs=("input",), n=1, h=8, w=8, c=4, k=6, r=9, s=3)


def test_vector_and_memory_ops():
    sm = Softmax(name="s", inputs=(0,), batch=2, rows=6, cols=5, in_bits=32)
    assert (sm.in_bytes, sm.out_bytes, sm.macs, sm.gemm, sm.unit) == (240, 60, 0, None, "vector")
    ln = LayerNorm(name="l", inputs=(0,), batch=1, rows=4, cols=8, bias=True)
    assert (ln.weight_count, ln.bias_count, ln.param_bytes) == (8, 8, 40)
    gelu = Gelu(name="g", inputs=(0,), shape=(1, 3, 4), in_bits=32)
    assert (gelu.in_bytes, gelu.out_bytes) == (48, 12)
    add = Add(name="a", inputs=(0,), shape=(2, 3, 4), weights=True)
    assert add.arity == 1 and add.weight_count == 12
    cat = Concat(name="c", inputs=(0, 1), batch=1, rows=(3, 4), cols=5, const_rows=2)
    assert cat.out_shape == (1, 9, 5) and cat.weight_count == 10 and cat.unit == "memory"
    mp = MaxPool(name="m", inputs=(0,), n=1, h=4, w=4, c=2, r=2, s=2, stride_h=2, stride_w=2)
    assert mp.out_shape == (1, 2, 2, 2) and mp.requant == "none"
    with pytest.raises(TraceError, match="out_bits: a max pool keeps its input width"):
        MaxPool(name="m", inputs=(0,), n=1, h=4, w=4, c=2, r=2, s=2, out_bits=4)
    ap = AvgPool(name="a", inputs=(0,), n=1, h=7, w=7, c=3, r=7, s=7)
    assert ap.out_shape == (1, 1, 1, 3) and ap.requant == "tensor"


def test_trace_container_and_consumers():
    trace = small_vit()
    assert len(trace) == 17 and trace[4].name == "blocks.0.qkv"
    assert [op.name for op in trace][:2] == ["patch_embed", "cls_token"]
    assert trace.consumers(4) == (5, 7)  # Q, K -> scores; V -> attn_v
    assert trace.consumers(2) == (3, 9)  # ln1 and the residual add
    assert trace.consumers(16) == ()
    assert trace.macs == sum(op.macs for op in trace)
    assert trace.params == sum(op.params for op in trace)


def test_trace_rejects_non_ops_and_bad_names():
    op = small_vit()[0]
    with pytest.raises(TraceError, match="op 1: expected an op"):
        Trace(name="t", batch=1, ops=(op, {"kind": "gemm"}))
    with pytest.raises(TraceError, match="name"):
        Trace(name="", batch=1, ops=(op,))
    with pytest.raises(TraceError, match="name"):
        dataclasses.replace(op, name="a\nb")


def test_from_dict_does_not_mutate_its_input():
    doc = small_doc()
    before = copy.deepcopy(doc)
    Trace.from_dict(doc)
    assert doc == before
