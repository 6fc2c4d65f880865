"""Builders against the reference shapes and MAC totals of docs/workloads.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.workload import (
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
    mobilenetv2,
    resnet18,
    vit,
)

# ---- ViT-Tiny / DeiT-Tiny (docs/workloads.md) ----------------------------------------------
# One encoder block in order: (op suffix, kind, (count, m, k, n) for GEMMs or rows x cols, MACs)
VIT_TINY_BLOCK = [
    ("ln1", LayerNorm, (197, 192), 0),
    ("qkv", Gemm, (1, 197, 192, 576), 21_786_624),
    ("attn_scores", Gemm, (3, 197, 64, 197), 3 * 2_483_776),
    ("softmax", Softmax, (3 * 197, 197), 0),
    ("attn_v", Gemm, (3, 197, 197, 64), 3 * 2_483_776),
    ("proj", Gemm, (1, 197, 192, 192), 7_262_208),
    ("add1", Add, (197, 192), 0),
    ("ln2", LayerNorm, (197, 192), 0),
    ("fc1", Gemm, (1, 197, 192, 768), 29_048_832),
    ("gelu", Gelu, (197, 768), 0),
    ("fc2", Gemm, (1, 197, 768, 192), 29_048_832),
    ("add2", Add, (197, 192), 0),
]
VIT_TINY_BLOCK_MACS = 102_049_152
VIT_TINY_PATCH_MACS = 28_901_376
VIT_TINY_HEAD_MACS = 192_000
VIT_TINY_MACS = 1_253_683_200


@pytest.fixture(scope="module")
def vit_tiny() -> Trace:
    return build_model("vit-tiny")


def _block_ops(trace: Trace, i: int) -> list:
    return [op for op in trace if op.name.startswith(f"blocks.{i}.")]


def test_vit_tiny_whole_model_macs(vit_tiny):
    assert vit_tiny.macs == VIT_TINY_MACS
    # The sum of docs/workloads.md, term by term from the trace: 12 blocks, the patch
    # embedding and the head; no other op multiplies.
    blocks = [sum(op.macs for op in _block_ops(vit_tiny, i)) for i in range(12)]
    assert blocks == [VIT_TINY_BLOCK_MACS] * 12
    outside = {op.name: op.macs for op in vit_tiny if not op.name.startswith("blocks.")}
    assert outside == {"patch_embed": VIT_TINY_PATCH_MACS, "cls_token": 0, "pos_embed": 0,
                       "norm": 0, "head": VIT_TINY_HEAD_MACS}
    assert sum(blocks) + sum(outside.values()) == vit_tiny.macs
    assert len(vit_tiny) == 3 + 12 * len(VIT_TINY_BLOCK) + 2


@pytest.mark.parametrize("block", range(12))
def test_vit_tiny_block_ops_shapes_and_macs(vit_tiny, block):
    ops = _block_ops(vit_tiny, block)
    assert [op.name.split(".")[-1] for op in ops] == [row[0] for row in VIT_TINY_BLOCK]
    for op, (_, cls, shape, macs) in zip(ops, VIT_TINY_BLOCK, strict=True):
        assert type(op) is cls, op.name
        assert op.macs == macs, op.name
        if cls is Gemm:
            assert (op.count, op.m, op.k, op.n) == shape, op.name
        elif cls in (LayerNorm, Softmax):
            assert (op.rows, op.cols) == shape, op.name
        else:
            assert op.shape == (1, *shape), op.name
    assert sum(op.macs for op in ops) == VIT_TINY_BLOCK_MACS


def test_vit_tiny_attention_operands(vit_tiny):
    ops = {op.name: (i, op) for i, op in enumerate(vit_tiny)}
    qkv, _ = ops["blocks.0.qkv"]
    scores = ops["blocks.0.attn_scores"][1]
    attn_v = ops["blocks.0.attn_v"][1]
    softmax_i, _ = ops["blocks.0.softmax"]
    # Q and K, then the probabilities and V: slices of the fused QKV output.
    assert scores.inputs == (Ref(qkv, cols=(0, 192)), Ref(qkv, cols=(192, 384)))
    assert attn_v.inputs == (Ref(softmax_i), Ref(qkv, cols=(384, 576)))
    assert scores.scale == 1 / math.sqrt(64)
    assert (scores.weights, attn_v.weights) == (False, False)
    assert scores.gemm == GemmShape(3, 197, 64, 197, False)
    assert attn_v.gemm == GemmShape(3, 197, 197, 64, False)
    assert (scores.weight_count, attn_v.weight_count) == (0, 0)
    # The attention scores stay int32 for the softmax; fc1 stays int32 for the GELU.
    assert (scores.out_bits, scores.requant) == (32, "none")
    assert ops["blocks.0.softmax"][1].in_bits == 32
    assert (ops["blocks.0.fc1"][1].out_bits, ops["blocks.0.gelu"][1].in_bits) == (32, 32)
    # The head layout is explicit: Q, K, V heads are column blocks, K is used transposed,
    # the softmax rows are stacked by head, and attention x V merges the heads.
    assert (scores.a_heads, scores.b_heads, scores.b_transposed, scores.out_heads) == (
        "cols", "cols", True, "rows")
    assert (attn_v.a_heads, attn_v.b_heads, attn_v.b_transposed, attn_v.out_heads) == (
        "rows", "cols", False, "cols")
    assert scores.in_shapes == ((1, 197, 192), (1, 197, 192))
    assert scores.out_shape == (1, 3, 197, 197)
    assert attn_v.in_shapes == ((1, 3, 197, 197), (1, 197, 192))
    assert attn_v.out_shape == (1, 197, 192) == ops["blocks.0.proj"][1].in_shapes[0]


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(("embed", "heads", "batch"), [(8, 2, 1), (12, 3, 2), (10, 2, 1)])
def test_vit_attention_layout_computes_multi_head_attention(embed, heads, batch):
    # Follow the trace's declared layouts (Gemm.product_view) from a QKV output to the
    # projection's input and compare with multi-head attention written out per head.
    # (10, 2): tokens = head_dim = 5, where the shapes alone cannot tell K from K^T.
    trace = vit(image_size=32, patch=16, embed=embed, heads=heads, depth=1, classes=10,
                batch=batch)
    ops = {op.name: (i, op) for i, op in enumerate(trace)}
    _, scores = ops["blocks.0.attn_scores"]
    _, attn_v = ops["blocks.0.attn_v"]
    _, proj = ops["blocks.0.proj"]
    tokens, d = scores.m, embed // heads
    rng = np.random.default_rng(embed)
    qkv = rng.normal(size=(batch, tokens, 3 * embed))

    def operand(op, j):
        ref = op.inputs[j]
        cols = ref.cols or (0, qkv.shape[2])
        src = qkv[:, :, cols[0]:cols[1]] if ref.op == ops["blocks.0.qkv"][0] else probs
        return src.reshape(op.in_shapes[j])

    def products(op, which, x):
        shape, axes = op.product_view(which)
        return x.reshape(shape).transpose(axes)

    s = products(scores, "a", operand(scores, 0)) @ products(scores, "b", operand(scores, 1))
    _, axes = scores.product_view("out")
    s_out = s.transpose(np.argsort(axes)).reshape(scores.out_shape)
    probs = _softmax_rows(s_out.reshape(batch, -1, tokens) / math.sqrt(d))  # the softmax op
    ctx = products(attn_v, "a", operand(attn_v, 0)) @ products(attn_v, "b", operand(attn_v, 1))
    _, axes = attn_v.product_view("out")
    merged = ctx.transpose(np.argsort(axes)).reshape(attn_v.out_shape).reshape(
        proj.in_shapes[0])

    q, k, v = (qkv[:, :, j * embed:(j + 1) * embed] for j in range(3))
    want = np.empty((batch, tokens, embed))
    for b in range(batch):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            p = _softmax_rows(q[b, :, cols] @ k[b, :, cols].T / math.sqrt(d))
            want[b, :, cols] = p @ v[b, :, cols]
    np.testing.assert_allclose(merged, want, rtol=1e-12, atol=1e-12)


def test_vit_tiny_nonlinear_work_per_block(vit_tiny):
    for block in range(12):
        ops = _block_ops(vit_tiny, block)
        softmax = [op for op in ops if isinstance(op, Softmax)]
        gelu = [op for op in ops if isinstance(op, Gelu)]
        norms = [op for op in ops if isinstance(op, LayerNorm)]
        assert [(op.rows, op.cols) for op in softmax] == [(3 * 197, 197)]
        assert [op.out_elements for op in gelu] == [197 * 768]
        assert [(op.rows, op.cols) for op in norms] == [(197, 192), (197, 192)]


def test_vit_tiny_patch_embedding_and_head(vit_tiny):
    patch, cls, pos = vit_tiny[0], vit_tiny[1], vit_tiny[2]
    assert isinstance(patch, Conv2d)
    assert (patch.h, patch.w, patch.c, patch.k, patch.r, patch.s) == (224, 224, 3, 192, 16, 16)
    assert (patch.stride_h, patch.stride_w, patch.out_h, patch.out_w) == (16, 16, 14, 14)
    assert patch.macs == VIT_TINY_PATCH_MACS
    # 196 x 768 @ 768 x 192, as docs/workloads.md writes it
    assert patch.gemm == GemmShape(1, 196, 768, 192, True)
    assert isinstance(cls, Concat) and cls.out_shape == (1, 197, 192) and cls.weight_count == 192
    assert isinstance(pos, Add) and pos.weights and pos.weight_count == 197 * 192
    norm, head = vit_tiny[-2], vit_tiny[-1]
    assert isinstance(norm, LayerNorm) and (norm.rows, norm.cols) == (197, 192)
    assert isinstance(head, Gemm)
    assert (head.m, head.k, head.n, head.macs) == (1, 192, 1000, VIT_TINY_HEAD_MACS)
    assert head.inputs == (Ref(len(vit_tiny) - 2, rows=(0, 1)),)  # the class token


@pytest.mark.parametrize(("preset", "embed", "heads"), [
    ("deit-small", 384, 6), ("deit-base", 768, 12),
])
def test_deit_sizes(preset, embed, heads):
    trace = build_model(preset)
    mlp, tokens, d = 4 * embed, 197, embed // heads
    ops = {op.name: op for op in trace}
    assert (ops["blocks.11.qkv"].k, ops["blocks.11.qkv"].n) == (embed, 3 * embed)
    assert (ops["blocks.0.attn_scores"].count, ops["blocks.0.attn_scores"].k) == (heads, d)
    assert (ops["blocks.0.fc1"].n, ops["blocks.0.fc2"].k) == (mlp, mlp)
    block = tokens * embed * (3 * embed + embed + 2 * mlp) + 2 * heads * tokens * tokens * d
    assert trace.macs == 12 * block + 196 * 768 * embed + embed * 1000


def test_vit_parameters_are_checked():
    with pytest.raises(TraceError, match="image_size"):
        vit(image_size=225)
    with pytest.raises(TraceError, match="embed"):
        vit(embed=190, heads=3)
    with pytest.raises(TraceError, match="mlp_ratio"):
        vit(embed=192, mlp_ratio=4.1)
    with pytest.raises(TraceError, match="depth"):
        vit(depth=0)
    # Too large to convert to a float, or to fit a trace: an error naming the argument.
    for ratio in (10**400, 1e308, float("inf"), float("nan")):
        with pytest.raises(TraceError, match=r"^vit: mlp_ratio: embed \* mlp_ratio = .* is not "
                                             r"an integer in \[1, 16777216\]$"):
            vit(mlp_ratio=ratio)
    # 8332 blocks of 12 ops and 5 ops outside them fit in 100000 ops; one more does not.
    with pytest.raises(TraceError, match=r"^vit: depth: int 8333 blocks exceed the 8332 that "
                                         r"fit in a trace of at most 100000 ops$"):
        vit(depth=8333)


@pytest.mark.parametrize(("preset", "first"), [
    ("vit-tiny", "patch_embed"), ("resnet18", "conv1"), ("mobilenetv2", "conv1"),
])
def test_builder_errors_name_the_model_batch_and_op(preset, first):
    batch = 1 << 24
    with pytest.raises(TraceError, match=rf"^{preset} \(batch {batch}\): op 0 \('{first}'\): "
                                         r"inputs\[0\]: \d+ elements exceed the limit"):
        build_model(preset, batch=batch)


def test_vit_custom_geometry():
    trace = vit(image_size=32, patch=8, embed=16, heads=2, depth=2, mlp_ratio=2, classes=10)
    tokens = 4 * 4 + 1
    assert trace[2].out_shape == (1, tokens, 16)
    assert trace.ops[-1].n == 10
    assert sum(isinstance(op, Softmax) for op in trace) == 2


# ---- ResNet-18 (docs/workloads.md) ---------------------------------------------------------
# (in HxW, kernel, C, K, stride, pad, out HxW, MACs)
_L1 = (56, 3, 64, 64, 1, 1, 56, 115_605_504)
_L2 = (28, 3, 128, 128, 1, 1, 28, 115_605_504)
_L3 = (14, 3, 256, 256, 1, 1, 14, 115_605_504)
_L4 = (7, 3, 512, 512, 1, 1, 7, 115_605_504)
RESNET18_CONVS = {
    "conv1": (224, 7, 3, 64, 2, 3, 112, 118_013_952),
    **{f"layer1.{b}.conv{c}": _L1 for b in (0, 1) for c in (1, 2)},
    "layer2.0.conv1": (56, 3, 64, 128, 2, 1, 28, 57_802_752),
    "layer2.0.downsample": (56, 1, 64, 128, 2, 0, 28, 6_422_528),
    "layer2.0.conv2": _L2, "layer2.1.conv1": _L2, "layer2.1.conv2": _L2,
    "layer3.0.conv1": (28, 3, 128, 256, 2, 1, 14, 57_802_752),
    "layer3.0.downsample": (28, 1, 128, 256, 2, 0, 14, 6_422_528),
    "layer3.0.conv2": _L3, "layer3.1.conv1": _L3, "layer3.1.conv2": _L3,
    "layer4.0.conv1": (14, 3, 256, 512, 2, 1, 7, 57_802_752),
    "layer4.0.downsample": (14, 1, 256, 512, 2, 0, 7, 6_422_528),
    "layer4.0.conv2": _L4, "layer4.1.conv1": _L4, "layer4.1.conv2": _L4,
}
RESNET18_CONV_MACS = 1_813_561_344
RESNET18_MACS = 1_814_073_344


def test_resnet18_layers_match_table():
    trace = resnet18()
    convs = {op.name: op for op in trace if isinstance(op, Conv2d)}
    assert set(convs) == set(RESNET18_CONVS)
    for name, (hw, kernel, c, k, stride, pad, out, macs) in RESNET18_CONVS.items():
        op = convs[name]
        assert (op.h, op.w, op.r, op.s, op.c, op.k) == (hw, hw, kernel, kernel, c, k), name
        assert (op.stride_h, op.stride_w) == (stride, stride), name
        assert (op.pad_top, op.pad_bottom, op.pad_left, op.pad_right) == (pad,) * 4, name
        assert (op.out_h, op.out_w, op.macs) == (out, out, macs), name
    assert sum(op.macs for op in convs.values()) == RESNET18_CONV_MACS
    pool = next(op for op in trace if isinstance(op, MaxPool))
    assert (pool.h, pool.r, pool.stride_h, pool.pad_top, pool.out_h) == (112, 3, 2, 1, 56)
    avg = next(op for op in trace if isinstance(op, AvgPool))
    assert (avg.h, avg.out_h, avg.c) == (7, 1, 512)
    fc = trace.ops[-1]
    assert isinstance(fc, Gemm) and (fc.m, fc.k, fc.n, fc.macs) == (1, 512, 1000, 512_000)
    assert trace.macs == RESNET18_MACS
    adds = [op for op in trace if isinstance(op, Add)]
    assert len(adds) == 8 and all(op.act == "relu" and not op.weights for op in adds)


def test_resnet18_downsample_feeds_the_add():
    trace = resnet18()
    names = [op.name for op in trace]
    add = trace[names.index("layer2.0.add")]
    assert {trace[r.op].name for r in add.inputs} == {"layer2.0.conv2", "layer2.0.downsample"}
    assert trace[names.index("layer2.0.downsample")].inputs == (Ref(names.index("layer1.1.add")),)


# ---- MobileNetV2 -------------------------------------------------------------------------
def test_mobilenetv2_macs_and_params():
    trace = mobilenetv2()
    assert abs(trace.macs - 300e6) <= 0.01 * 300e6
    assert abs(trace.params - 3.4e6) <= 0.1e6


def test_mobilenetv2_depthwise_layers():
    trace = mobilenetv2()
    dws = [op for op in trace if isinstance(op, DwConv2d)]
    assert len(dws) == 17
    assert all((op.r, op.s, op.k, op.multiplier) == (3, 3, op.c, 1) for op in dws)
    assert all(op.gemm == GemmShape(op.c, op.out_h * op.out_w, 9, 1, True) for op in dws)
    assert not any(isinstance(op, Conv2d) and op.groups > 1 for op in trace)
    first = trace[0]
    assert (first.h, first.c, first.k, first.stride_h, first.out_h) == (224, 3, 32, 2, 112)
    last_conv = trace[-3]
    assert (last_conv.c, last_conv.k, last_conv.out_h) == (320, 1280, 7)
    assert sum(isinstance(op, Add) for op in trace) == 10


# ---- every builder ---------------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(MODELS))
def test_macs_scale_with_batch(preset):
    one, three = build_model(preset), build_model(preset, batch=3)
    assert three.batch == 3 and three.macs == 3 * one.macs
    assert three.params == one.params  # weights are shared by the batch
    assert all(op.out_shape[0] == 3 for op in three)


def test_attention_folds_batch_into_count_and_weights_into_m():
    trace = build_model("vit-tiny", batch=2)
    ops = {op.name: op for op in trace}
    assert ops["blocks.0.attn_scores"].gemm == GemmShape(6, 197, 64, 197, False)
    assert ops["blocks.0.qkv"].gemm == GemmShape(1, 394, 192, 576, True)


def test_build_model_rejects_unknown_preset():
    with pytest.raises(TraceError, match="not a preset"):
        build_model("resnet50")
