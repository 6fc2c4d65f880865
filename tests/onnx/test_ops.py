"""Every supported ONNX op on a small hand-built graph: the trace it becomes, and its values.

Each graph is imported, checked op by op, then run by the float reference
(:func:`run_float`) and compared with onnxruntime: the import must mean what the ONNX graph
means, not only cost the same.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from edgetron.workload.onnx import SUPPORTED_OPS

from .helpers import check_float, const, model, rand, save

H = helper.make_node


def kinds(trace):
    return [op.kind for op in trace]


def conv_model(groups=1, c=4, k=8, pads=(1, 1, 1, 1), strides=(1, 1), bias=True,
               after=(), opset=18, auto_pad=None, kernel=3):
    w = rand(k, c // groups, kernel, kernel)
    inits = [const("w", w)] + ([const("b", rand(k))] if bias else [])
    attrs = {"group": groups, "strides": list(strides)}
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(pads)
    nodes = [H("Conv", ["x", "w"] + (["b"] if bias else []), ["c"], name="conv", **attrs)]
    last = "c"
    for i, (op, extra_inputs, extra_inits) in enumerate(after):
        nodes.append(H(op, [last, *extra_inputs], [f"t{i}"], name=f"{op.lower()}{i}"))
        inits += extra_inits
        last = f"t{i}"
    nodes[-1].output[0] = "y"
    return model(nodes, [1, c, 6, 6], None, inits, opset=opset)


def test_conv_dense_grouped_depthwise(tmp_path):
    t, w = check_float(save(conv_model(), tmp_path))
    op = t[0]
    assert kinds(t) == ["conv2d"] and op.bias and (op.h, op.w, op.c, op.k) == (6, 6, 4, 8)
    assert op.requant == "none" and op.out_bits == 32  # the graph output keeps int32
    assert w["0.weight"].shape == (8, 4, 3, 3) and w["0.bias"].shape == (8,)
    t, _ = check_float(save(conv_model(groups=2, strides=(2, 2)), tmp_path))
    assert t[0].kind == "conv2d" and t[0].groups == 2 and t[0].out_h == 3
    t, w = check_float(save(conv_model(groups=4, k=8, bias=False), tmp_path))
    assert t[0].kind == "dwconv2d" and t[0].k == 8 and not t[0].bias
    assert w["0.weight"].shape == (8, 1, 3, 3)


@pytest.mark.parametrize("auto_pad, out, pads", [("SAME_UPPER", 3, (0, 1)),
                                                 ("SAME_LOWER", 3, (1, 0)), ("VALID", 2, (0, 0))])
def test_conv_auto_pad(tmp_path, auto_pad, out, pads):
    t, _ = check_float(save(conv_model(auto_pad=auto_pad, strides=(2, 2)), tmp_path))
    op = t[0]
    assert op.out_h == out and (op.pad_top, op.pad_bottom) == pads


def test_relu_clip_batchnorm_fused(tmp_path):
    k = 8
    bn = [const(n, v) for n, v in (("g", rand(k) + 1), ("be", rand(k)), ("mu", rand(k)),
                                   ("var", np.abs(rand(k)) + 0.5))]
    m = conv_model(bias=False, after=[("BatchNormalization", ["g", "be", "mu", "var"], bn),
                                      ("Relu", [], [])])
    t, _ = check_float(save(m, tmp_path))
    assert kinds(t) == ["conv2d"] and t[0].act == "relu" and t[0].bias
    assert t[0].requant == "channel" and t[0].out_bits == 8
    m = conv_model(after=[("Clip", ["lo", "hi"], [const("lo", np.float32(0)),
                                                   const("hi", np.float32(6))])])
    t, _ = check_float(save(m, tmp_path), x=rand(1, 4, 6, 6, scale=3))
    assert t[0].act == "relu6"
    m = conv_model(after=[("Clip", ["lo"], [const("lo", np.float32(0))])])
    t, _ = check_float(save(m, tmp_path))
    assert t[0].act == "relu"


def test_conv_bias_add_and_channel_mul_fold(tmp_path):
    m = conv_model(bias=False, after=[("Mul", ["s"], [const("s", rand(1, 8, 1, 1) + 1)]),
                                      ("Add", ["b"], [const("b", rand(1, 8, 1, 1))])])
    t, w = check_float(save(m, tmp_path))
    assert kinds(t) == ["conv2d"] and t[0].bias and "0.bias" in w


def test_sub_of_a_constant(tmp_path):
    """``x - c`` is ``x + (-c)``: a bias of the conv before, or a constant add."""
    m = conv_model(after=[("Sub", ["c0"], [const("c0", rand(8, 1, 1))])])
    t, _ = check_float(save(m, tmp_path))
    assert kinds(t) == ["conv2d"] and t[0].bias
    m = model([H("Sub", ["x", "c0"], ["s"]), H("Softmax", ["s"], ["y"])], [1, 3, 4], None,
              [const("c0", rand(3, 4))])
    t, w = check_float(save(m, tmp_path))
    assert kinds(t) == ["add", "softmax"] and t[0].weights and w["0.weight"].shape == (3, 4)


def test_pools(tmp_path):
    for node, attrs, out in (
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 3),
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, 3),
        ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                         "count_include_pad": 1}, 6),
        ("GlobalAveragePool", {}, 1),
    ):
        m = model([H(node, ["x"], ["y"], name="p", **attrs)], [1, 4, 6, 6], None)
        t, _ = check_float(save(m, tmp_path))
        assert kinds(t) == ["maxpool" if node == "MaxPool" else "avgpool"]
        assert t[0].out_h == out
    m = model([H("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], [1, 4, 6, 6], None,
              [const("axes", np.asarray([2, 3], dtype=np.int64))])
    t, _ = check_float(save(m, tmp_path))
    assert kinds(t) == ["avgpool"] and (t[0].r, t[0].s) == (6, 6)


def test_gemm_and_matmul_weights(tmp_path):
    m = model([H("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)], [2, 6],
              None, [const("w", rand(5, 6)), const("b", rand(5))])
    t, w = check_float(save(m, tmp_path))
    op = t[0]
    assert kinds(t) == ["gemm"] and op.weights and (op.batch, op.m, op.k, op.n) == (2, 1, 6, 5)
    assert w["0.weight"].shape == (1, 6, 5) and w["0.bias"].shape == (1, 5)
    m = model([H("MatMul", ["x", "w"], ["t"]), H("Add", ["bias", "t"], ["y"])], [1, 3, 6],
              None, [const("w", rand(6, 5)), const("bias", rand(5))])
    t, _ = check_float(save(m, tmp_path))
    assert kinds(t) == ["gemm"] and t[0].m == 3 and t[0].bias


def test_scalar_mul_div_become_scale(tmp_path):
    m = model([H("MatMul", ["x", "w"], ["t"]), H("Div", ["t", "d"], ["y"])], [1, 3, 6], None,
              [const("w", rand(6, 5)), const("d", np.float32(4.0))])
    t, _ = check_float(save(m, tmp_path))
    assert t[0].scale == pytest.approx(0.25)
    m = model([H("Mul", ["x", "s"], ["xs"]), H("MatMul", ["xs", "w"], ["y"])], [1, 3, 6], None,
              [const("w", rand(6, 5)), const("s", np.float32(3.0))])
    t, _ = check_float(save(m, tmp_path))
    assert t[0].scale == pytest.approx(3.0)


def attention(tmp_path, heads=2, tokens=5, dim=8, opset=18, use_split=False):
    """LayerNorm + QKV + per-head attention + projection + residual, as timm writes it."""
    d = dim // heads
    n = [
        H("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-6),
        H("MatMul", ["ln", "wqkv"], ["qkv0"]), H("Add", ["qkv0", "bqkv"], ["qkv"]),
        H("Reshape", ["qkv", "s5"], ["r5"]),
        H("Transpose", ["r5"], ["p5"], perm=[2, 0, 3, 1, 4]),
    ]
    if use_split:
        n += [H("Split", ["p5", "ones"], ["qs", "ks", "vs"], axis=0)]
        n += [H("Squeeze", [f"{a}s", "zero"], [a]) for a in "qkv"]
    else:
        n += [H("Gather", ["p5", f"i{j}"], [a], axis=0) for j, a in enumerate("qkv")]
    n += [
        H("Mul", ["q", "scale"], ["qsc"]),
        H("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        H("MatMul", ["qsc", "kt"], ["sc"]), H("Softmax", ["sc"], ["pr"], axis=-1),
        H("MatMul", ["pr", "v"], ["ctx"]), H("Transpose", ["ctx"], ["ctxt"], perm=[0, 2, 1, 3]),
        H("Reshape", ["ctxt", "s3"], ["ctx3"]), H("MatMul", ["ctx3", "wp"], ["pj"]),
        H("Add", ["x", "pj"], ["y"]),
    ]
    inits = [const("g", rand(dim) + 1), const("b", rand(dim)), const("wqkv", rand(dim, 3 * dim)),
             const("bqkv", rand(3 * dim)), const("wp", rand(dim, dim)),
             const("s5", np.asarray([1, tokens, 3, heads, d], dtype=np.int64)),
             const("s3", np.asarray([1, tokens, dim], dtype=np.int64)),
             const("scale", np.float32(d ** -0.5)), const("ones", np.ones(3, dtype=np.int64)),
             const("zero", np.zeros(1, dtype=np.int64))]
    inits += [const(f"i{j}", np.int64(j)) for j in range(3)]
    return save(model(n, [1, tokens, dim], None, inits, opset=opset), tmp_path)


@pytest.mark.parametrize("use_split", [False, True])
def test_attention_head_layouts(tmp_path, use_split):
    t, _ = check_float(attention(tmp_path, use_split=use_split))
    assert kinds(t) == ["layernorm", "gemm", "gemm", "softmax", "gemm", "gemm", "add"]
    scores, probs, context = t[2], t[3], t[4]
    assert (scores.count, scores.m, scores.k, scores.n) == (2, 5, 4, 5)
    assert (scores.a_heads, scores.b_heads, scores.b_transposed) == ("cols", "cols", True)
    assert scores.inputs[0].cols == (0, 8) and scores.inputs[1].cols == (8, 16)
    assert scores.requant == "none" and scores.out_bits == 32 and probs.in_bits == 32
    assert scores.scale == pytest.approx(0.5)
    assert (probs.rows, probs.cols) == (10, 5)
    assert (context.a_heads, context.b_heads, context.out_heads) == ("rows", "cols", "cols")
    assert context.inputs[1].cols == (16, 24)


def test_class_token_concat_slice_gather_head(tmp_path):
    n = [
        H("Conv", ["x", "wp", "bp"], ["pe"], kernel_shape=[2, 2], strides=[2, 2]),
        H("Reshape", ["pe", "s3"], ["f"]), H("Transpose", ["f"], ["tok"], perm=[0, 2, 1]),
        H("Concat", ["cls", "tok"], ["cat"], axis=1), H("Add", ["cat", "pos"], ["emb"]),
        H("Slice", ["emb", "s0", "s1", "ax"], ["first"]),
        H("Squeeze", ["first", "ax"], ["c0"]),
        H("Gemm", ["c0", "wh", "bh"], ["y"], transB=1),
    ]
    inits = [const("wp", rand(6, 1, 2, 2)), const("bp", rand(6)), const("cls", rand(1, 1, 6)),
             const("pos", rand(1, 5, 6)), const("wh", rand(3, 6)), const("bh", rand(3)),
             const("s0", np.asarray([0], np.int64)), const("s1", np.asarray([1], np.int64)),
             const("ax", np.asarray([1], np.int64)), const("s3", np.asarray([1, 6, 4], np.int64))]
    t, w = check_float(save(model(n, [1, 1, 4, 4], None, inits, opset=13), tmp_path))
    assert kinds(t) == ["conv2d", "concat", "add", "gemm"]
    assert t[1].const_rows == 1 and t[1].rows == (4,) and w["1.weight"].shape == (1, 6)
    assert t[2].weights and w["2.weight"].shape == (5, 6)
    assert t[3].inputs[0].rows == (0, 1)


def test_gelu_op_and_erf_pattern(tmp_path):
    inits = [const("w", rand(6, 8))]
    m = model([H("MatMul", ["x", "w"], ["h"]), H("Gelu", ["h"], ["y"])], [1, 3, 6], None, inits,
              opset=20)
    t, _ = check_float(save(m, tmp_path))
    assert kinds(t) == ["gemm", "gelu"] and t[0].out_bits == 32 and t[1].in_bits == 32
    for order in ("legacy", "dynamo", "half-first"):
        n = [H("MatMul", ["x", "w"], ["h"]), H("Div", ["h", "sqrt2"], ["hd"]),
             H("Erf", ["hd"], ["e"]), H("Add", ["e", "one"], ["e1"])]
        if order == "legacy":
            n += [H("Mul", ["h", "e1"], ["p"]), H("Mul", ["p", "half"], ["y"])]
        elif order == "dynamo":
            n += [H("Mul", ["half", "e1"], ["p"]), H("Mul", ["h", "p"], ["y"])]
        else:
            n += [H("Mul", ["h", "half"], ["p"]), H("Mul", ["p", "e1"], ["y"])]
        scalars = [const("sqrt2", np.float32(math.sqrt(2))), const("one", np.float32(1)),
                   const("half", np.float32(0.5))]
        t, _ = check_float(save(model(n, [1, 3, 6], None, inits + scalars, opset=14), tmp_path))
        assert kinds(t) == ["gemm", "gelu"], order


@pytest.mark.parametrize("square", ["Pow", "Mul"])
def test_layernorm_decomposed_pattern(tmp_path, square):
    opset = 13
    n = [H("ReduceMean", ["x"], ["m"], axes=[-1]), H("Sub", ["x", "m"], ["d"])]
    n += [H("Pow", ["d", "two"], ["d2"])] if square == "Pow" else [H("Mul", ["d", "d"], ["d2"])]
    n += [H("ReduceMean", ["d2"], ["v"], axes=[-1]), H("Add", ["v", "eps"], ["ve"]),
          H("Sqrt", ["ve"], ["sd"]), H("Div", ["d", "sd"], ["nrm"]),
          H("Mul", ["nrm", "g"], ["sc"]), H("Add", ["sc", "b"], ["y"])]
    inits = [const("two", np.float32(2)), const("eps", np.float32(1e-5)),
             const("g", rand(8) + 1), const("b", rand(8))]
    t, w = check_float(save(model(n, [1, 4, 8], None, inits, opset=opset), tmp_path))
    assert kinds(t) == ["layernorm"] and t[0].bias and float(w["0.eps"]) == pytest.approx(1e-5)


def test_flatten_of_a_feature_map_reorders_fc_rows(tmp_path):
    """NCHW flatten before a classifier: the trace reads NHWC, the import permutes rows."""
    n = [H("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), H("Relu", ["c"], ["r"]),
         H("Flatten", ["r"], ["f"]), H("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    inits = [const("w", rand(3, 2, 3, 3)), const("wf", rand(4, 3 * 4 * 4)), const("bf", rand(4))]
    t, _ = check_float(save(model(n, [1, 2, 4, 4], None, inits), tmp_path))
    assert kinds(t) == ["conv2d", "gemm"]


def test_identity_dropout_cast_expand_unsqueeze(tmp_path):
    n = [H("Identity", ["x"], ["a"]), H("Dropout", ["a"], ["b"]), H("Cast", ["b"], ["c"], to=1),
         H("Expand", ["c", "shape"], ["d"]), H("Unsqueeze", ["d", "ax"], ["e"]),
         H("Squeeze", ["e", "ax"], ["f"]), H("Softmax", ["f"], ["y"], axis=-1)]
    inits = [const("shape", np.asarray([1, 3, 5], np.int64)), const("ax", np.asarray([0],
                                                                                       np.int64))]
    t, _ = check_float(save(model(n, [1, 3, 5], None, inits), tmp_path))
    assert kinds(t) == ["softmax"] and (t[0].rows, t[0].cols) == (3, 5)


def test_every_supported_op_is_exercised():
    """Each op type the importer claims appears in a test graph of this module."""
    import inspect
    import sys

    text = inspect.getsource(sys.modules[__name__])
    missing = [op for op in SUPPORTED_OPS if f'"{op}"' not in text]
    assert not missing
