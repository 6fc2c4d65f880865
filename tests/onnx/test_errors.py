"""Bad ONNX input: each gives one clear TraceError naming the file and, for a node, its
index, name and op type -- never a traceback, a silent drop or an allocation first."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgetron.errors import TraceError
from edgetron.workload.onnx import MAX_MODEL_BYTES, import_onnx

from .helpers import const, model, rand, save

H = helper.make_node


def small(tmp_path, opset=18):
    m = model([H("MatMul", ["x", "w"], ["h"], name="mm"), H("Relu", ["h"], ["y"], name="r")],
              [1, 4, 6], [1, 4, 5], [const("w", rand(6, 5))], opset=opset)
    return save(m, tmp_path)


def test_unsupported_op_is_named(tmp_path):
    m = model([H("Conv", ["x", "w"], ["c"], name="conv"),
               H("LRN", ["c"], ["y"], name="norm1", size=3)],
              [1, 2, 5, 5], None, [const("w", rand(4, 2, 3, 3))])
    with pytest.raises(TraceError, match=r"node 1 \('norm1', LRN\): unsupported ONNX op 'LRN'"):
        import_onnx(save(m, tmp_path))


def test_unmappable_pattern_is_named(tmp_path):
    """A ReLU whose input is also read elsewhere cannot be fused: an error, not a drop."""
    m = model([H("MatMul", ["x", "w"], ["h"], name="mm"), H("Relu", ["h"], ["r"], name="act"),
               H("Add", ["h", "r"], ["y"], name="sum")], [1, 4, 6], None,
              [const("w", rand(6, 6))])
    with pytest.raises(TraceError, match=r"node 1 \('act', Relu\): Relu must directly follow"):
        import_onnx(save(m, tmp_path))
    m = model([H("Conv", ["x", "w"], ["c"], name="conv"),
               H("Concat", ["c", "c"], ["y"], name="cat", axis=1)],
              [1, 2, 5, 5], None, [const("w", rand(4, 2, 3, 3))])
    with pytest.raises(TraceError, match=r"node 1 \('cat', Concat\): concat along axis 1 of "
                                         r"rank-4"):
        import_onnx(save(m, tmp_path))


def test_foreign_domain_is_named(tmp_path):
    m = model([H("FusedGemm", ["x", "w"], ["y"], name="fg", domain="com.microsoft")],
              [2, 6], None, [const("w", rand(6, 5))])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(TraceError, match=r"node 0 \('fg', FusedGemm\): .*domain "
                                         r"'com.microsoft'"):
        import_onnx(save(m, tmp_path))


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, fraction):
    data = small(tmp_path).read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(TraceError, match=r"cut.onnx: (not a valid ONNX model|the model imports "
                                         r"no default-domain)"):
        import_onnx(p)


def test_not_onnx_and_empty(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\xff" * 100)
    with pytest.raises(TraceError, match=r"junk\.onnx: not a valid ONNX model"):
        import_onnx(p)
    p.write_bytes(b"")
    with pytest.raises(TraceError, match="not a valid ONNX model"):
        import_onnx(p)


@pytest.mark.parametrize("opset", [7, 10, 22, 99])
def test_unsupported_opset(tmp_path, opset):
    with pytest.raises(TraceError, match=f"opset {opset} is not supported; edgetron reads "
                                         "opsets 11 to 21"):
        import_onnx(small(tmp_path, opset=opset))


def test_dynamic_shapes_without_values(tmp_path):
    m = model([H("MatMul", ["x", "w"], ["y"])], ["N", 4, 6], None, [const("w", rand(6, 5))])
    p = save(m, tmp_path)
    with pytest.raises(TraceError, match=r"graph input 'x': dimension 0 is symbolic \('N'\); "
                                         r"dynamic shapes need values \(give the batch"):
        import_onnx(p)
    trace, _ = import_onnx(p, batch=3)
    assert trace.batch == 3 and trace[0].batch == 3
    m = model([H("MatMul", ["x", "w"], ["y"])], [1, "tokens", 6], None, [const("w", rand(6, 5))])
    with pytest.raises(TraceError, match=r"dimension 1 is symbolic \('tokens'\); dynamic "
                                         r"shapes need values \(re-export"):
        import_onnx(save(m, tmp_path), batch=1)
    with pytest.raises(TraceError, match="the model fixes batch 1; --batch 2"):
        import_onnx(small(tmp_path), batch=2)


def test_huge_initializer_refused_from_its_dims(tmp_path):
    """10^12 declared elements and no data: refused before anything is allocated."""
    m = model([H("MatMul", ["x", "w"], ["y"])], [1, 4, 1_000_000], None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1_000_000, 1_000_000])
    m.graph.initializer.append(w)
    with pytest.raises(TraceError, match=r"initializer 'w': declares 1000000000000 elements "
                                         r"\(dims \[1000000, 1000000\]\), over the limit"):
        import_onnx(save(m, tmp_path))
    # The same size as an external-data reference: refused from the dims as well.
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    with pytest.raises(TraceError, match="declares 1000000000000 elements"):
        import_onnx(save(m, tmp_path))


def test_initializer_data_must_match_its_dims(tmp_path):
    m = model([H("MatMul", ["x", "w"], ["y"])], [1, 4, 6], None)
    m.graph.initializer.append(TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[6, 5],
                                           raw_data=b"\0" * 8))
    with pytest.raises(TraceError, match=r"initializer 'w': declares 30 elements .* holds 2"):
        import_onnx(save(m, tmp_path))


def test_external_data_refused(tmp_path):
    m = model([H("MatMul", ["x", "w"], ["y"])], [1, 4, 6], None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[6, 5],
                    data_location=TensorProto.EXTERNAL)
    w.external_data.add(key="location", value="w.bin")
    m.graph.initializer.append(w)
    with pytest.raises(TraceError, match=r"data in an external file \('w.bin'\) is not "
                                         "supported"):
        import_onnx(save(m, tmp_path))


def test_graph_cycle(tmp_path):
    nodes = [H("Add", ["x", "b"], ["a"], name="first"), H("Relu", ["a"], ["b"], name="loop"),
             H("Relu", ["a"], ["y"], name="out")]
    m = model(nodes, [1, 4], None)
    with pytest.raises(TraceError, match=r"node 0 \('first', Add\): the graph has a cycle"):
        import_onnx(save(m, tmp_path))


def test_file_size_bound(tmp_path, monkeypatch):
    from edgetron.workload.onnx import graph

    p = small(tmp_path)
    monkeypatch.setattr(graph, "MAX_MODEL_BYTES", p.stat().st_size - 1)
    with pytest.raises(TraceError, match="the file exceeds the limit of"):
        import_onnx(p)
    assert MAX_MODEL_BYTES == 1 << 30


def test_folding_refuses_a_huge_constant(tmp_path):
    m = model([H("ConstantOfShape", ["shape"], ["big"], name="cos"),
               H("Add", ["x", "big"], ["y"], name="add")], [100_000, 100_000], None,
              [const("shape", np.asarray([100_000, 100_000], dtype=np.int64))])
    with pytest.raises(TraceError, match=r"node 0 \('cos', ConstantOfShape\): .*10000000000 "
                                         "elements, over the limit"):
        import_onnx(save(m, tmp_path))


def test_shape_disagreement_and_bad_shapes(tmp_path):
    m = model([H("MatMul", ["x", "w"], ["y"])], [1, 4, 6], None, [const("w", rand(7, 5))])
    with pytest.raises(TraceError, match="shape inference failed"):
        import_onnx(save(m, tmp_path))


def test_multiple_inputs_or_outputs(tmp_path):
    g = helper.make_graph(
        [H("Add", ["a", "b"], ["y"])], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(TraceError, match="the graph has 2 inputs"):
        import_onnx(save(m, tmp_path))


def test_constant_output_and_data_movement(tmp_path):
    m = model([H("Transpose", ["x"], ["t"], perm=[0, 2, 1]), H("Softmax", ["t"], ["y"])],
              [1, 3, 4], None)
    with pytest.raises(TraceError, match=r"node 1 \(Softmax, output 'y'\): input 0: the "
                                         r"tensor \[1, 4, 3\] is not a row-major reading"):
        import_onnx(save(m, tmp_path))


def test_semantics_not_supported_are_refused(tmp_path):
    cases = [
        (H("Gelu", ["x"], ["y"], approximate="tanh"), 20, "approximate 'tanh'"),
        (H("Softmax", ["x"], ["y"], axis=1), 18, "only the last axis"),
        (H("Clip", ["x", "lo", "hi"], ["y"]), 18, r"Clip to \[-1.0, 1.0\] is not supported"),
        (H("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]), 18,
         "count_include_pad 1"),
        (H("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2]), 18,
         "dilations other than 1"),
    ]
    inits = [const("lo", np.float32(-1)), const("hi", np.float32(1))]
    for node, opset, message in cases:
        node.name = "n"
        m = model([node], [1, 2, 6, 6], None, inits if node.op_type == "Clip" else [],
                  opset=opset)
        with pytest.raises(TraceError, match=message):
            import_onnx(save(m, tmp_path))


def test_onnx_file_loads_as_onnx_model(tmp_path):
    """The hand-built models are valid ONNX (checker), so errors above come from edgetron."""
    onnx.checker.check_model(onnx.load(str(small(tmp_path))))
