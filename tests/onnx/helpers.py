"""Small ONNX graphs built with onnx.helper, and the float check against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgetron.workload.onnx import import_onnx, output_of, run_float

DATA = Path(__file__).resolve().parents[1] / "data" / "onnx"
RNG = np.random.default_rng(1234)


def const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def rand(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def model(nodes, x_shape, y_shape, inits=(), opset: int = 18, x_name: str = "x",
          y_name: str = "y", ir: int = 9) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, y_shape)],
        initializer=list(inits),
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def save(m: onnx.ModelProto, tmp_path: Path, name: str = "m.onnx") -> Path:
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


def check_float(path: Path, *, rtol: float = 1e-4, x: np.ndarray | None = None):
    """Import ``path``, run the trace in float64 and compare with onnxruntime.

    Returns the trace and weights.
    """
    trace, weights = import_onnx(path)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = s.get_inputs()[0]
    if x is None:
        x = RNG.standard_normal(inp.shape).astype(np.float32)
    want = s.run(None, {inp.name: x})[0]
    got = output_of(weights, run_float(trace, weights, x))
    assert got.shape == want.shape
    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-6)
    assert err < rtol, f"relative error {err}"
    return trace, weights
