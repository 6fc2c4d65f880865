"""Constant folding: the shape arithmetic exporters emit, checked against onnx's reference
evaluator, and a symbolic batch resolved through a Shape -> Gather -> Concat -> Reshape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from edgetron.workload.onnx.fold import FOLDABLE, fold_constants
from edgetron.workload.onnx.graph import read_graph

from .helpers import check_float, const, model, rand, save

H = helper.make_node
I64 = np.int64

#: (node, constant inputs) per folded op type, evaluated by both folders.
CASES = [
    (H("Gather", ["a", "i"], ["y"], axis=0), {"a": np.arange(5, dtype=I64), "i": I64(2)}),
    (H("Gather", ["a", "i"], ["y"], axis=1), {"a": np.arange(12.0).reshape(3, 4),
                                               "i": np.asarray([-1, 0], I64)}),
    (H("Unsqueeze", ["a", "i"], ["y"]), {"a": I64(7), "i": np.asarray([0], I64)}),
    (H("Squeeze", ["a", "i"], ["y"]), {"a": np.ones((1, 3, 1)), "i": np.asarray([2], I64)}),
    (H("Concat", ["a", "b"], ["y"], axis=0), {"a": np.asarray([1], I64),
                                              "b": np.asarray([-1, 4], I64)}),
    (H("Slice", ["a", "s", "e"], ["y"]), {"a": np.arange(6, dtype=I64),
                                          "s": np.asarray([-1], I64),
                                          "e": np.asarray([2**63 - 1], I64)}),
    (H("Slice", ["a", "s", "e", "ax", "t"], ["y"]), {"a": np.arange(10.0),
                                                     "s": np.asarray([8], I64),
                                                     "e": np.asarray([1], I64),
                                                     "ax": np.asarray([0], I64),
                                                     "t": np.asarray([-3], I64)}),
    (H("Reshape", ["a", "s"], ["y"]), {"a": np.arange(12.0).reshape(3, 4),
                                       "s": np.asarray([0, -1, 2], I64)}),
    (H("Transpose", ["a"], ["y"], perm=[1, 0]), {"a": np.arange(6.0).reshape(2, 3)}),
    (H("Cast", ["a"], ["y"], to=TensorProto.FLOAT), {"a": np.asarray([3, 64], I64)}),
    (H("ConstantOfShape", ["a"], ["y"], value=helper.make_tensor("v", TensorProto.INT64, [1],
                                                                  [1])),
     {"a": np.asarray([3], I64)}),
    (H("Equal", ["a", "b"], ["y"]), {"a": np.asarray([1, -1, -1], I64), "b": I64(-1)}),
    (H("Where", ["c", "a", "b"], ["y"]), {"c": np.asarray([True, False, True]),
                                          "a": np.asarray([1, 1, 1], I64),
                                          "b": np.asarray([1, 197, 192], I64)}),
    (H("Expand", ["a", "s"], ["y"]), {"a": np.arange(3.0).reshape(1, 1, 3),
                                      "s": np.asarray([2, 1, 1], I64)}),
    (H("Sqrt", ["a"], ["y"]), {"a": np.asarray([64.0, 2.0])}),
    (H("Div", ["a", "b"], ["y"]), {"a": np.asarray([7, -7], I64), "b": np.asarray([2, 2], I64)}),
    (H("Div", ["a", "b"], ["y"]), {"a": np.asarray([1.0], np.float32),
                                   "b": np.asarray([8.0], np.float32)}),
    (H("Mul", ["a", "b"], ["y"]), {"a": np.asarray([3], I64), "b": I64(-1)}),
    (H("Range", ["a", "b", "c"], ["y"]), {"a": I64(0), "b": I64(7), "c": I64(2)}),
    (H("Split", ["a", "s"], ["y", "z"], axis=0), {"a": np.arange(5.0),
                                                  "s": np.asarray([2, 3], I64)}),
    (H("ReduceProd", ["a"], ["y"], keepdims=0), {"a": np.asarray([3, 4], I64)}),
    (H("Tile", ["a", "r"], ["y"]), {"a": np.arange(2.0), "r": np.asarray([3], I64)}),
    (H("Flatten", ["a"], ["y"], axis=1), {"a": np.ones((2, 3, 4))}),
]


def _fold_one(node, inputs: dict, tmp_path: Path) -> list[np.ndarray]:
    """Run our folder on a graph whose only non-constant part is an unused input."""
    inits = [const(k, np.asarray(v)) for k, v in inputs.items()]
    outs = [o for o in node.output]
    g = helper.make_graph([node, H("Identity", ["x"], ["x_out"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                           for o in outs] + [helper.make_tensor_value_info(
                               "x_out", TensorProto.FLOAT, [1])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    graph = read_graph(save(m, tmp_path))
    fold_constants(tmp_path, graph)
    return [graph.consts[o].value for o in outs]


@pytest.mark.parametrize("node, inputs", CASES, ids=[f"{c[0].op_type}{i}" for i, c in
                                                     enumerate(CASES)])
def test_folding_matches_onnx_reference(tmp_path, node, inputs):
    inits = [const(k, np.asarray(v)) for k, v in inputs.items()]
    g = helper.make_graph([node], "g", [], [helper.make_tensor_value_info(o, TensorProto.UNDEFINED,
                                                                          None)
                                            for o in node.output], initializer=inits)
    want = ReferenceEvaluator(helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 18)])).run(None, {})
    got = _fold_one(node, inputs, tmp_path)
    for w, v in zip(want, got, strict=True):
        assert v.shape == w.shape and v.dtype == w.dtype
        np.testing.assert_array_equal(v, w)


def test_folded_ops_are_covered():
    tested = {node.op_type for node, _ in CASES}
    core = {"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape", "Cast",
            "ConstantOfShape", "Equal", "Where", "Expand", "Sqrt", "Div", "Mul", "Range"}
    assert core <= tested <= set(FOLDABLE)


def test_symbolic_batch_through_a_shape_subgraph(tmp_path):
    """``x.reshape(x.shape[0], -1)`` with a symbolic batch, as TorchScript exports it."""
    nodes = [
        H("Shape", ["x"], ["s"]), H("Gather", ["s", "zero"], ["n"], axis=0),
        H("Unsqueeze", ["n", "ax"], ["n1"]), H("Concat", ["n1", "minus1"], ["target"], axis=0),
        H("Reshape", ["x", "target"], ["flat"]), H("MatMul", ["flat", "w"], ["y"]),
    ]
    inits = [const("zero", I64(0)), const("ax", np.asarray([0], I64)),
             const("minus1", np.asarray([-1], I64)), const("w", rand(12, 5))]
    p = save(model(nodes, ["N", 3, 4], None, inits, opset=14), tmp_path)
    from edgetron.workload.onnx import import_onnx

    trace, _ = import_onnx(p, batch=2)
    assert trace.batch == 2 and (trace[0].m, trace[0].k) == (1, 12)
    fixed = save(model(nodes, [2, 3, 4], None, inits, opset=14), tmp_path, "fixed.onnx")
    check_float(fixed)
