"""Reading an ONNX file safely: size bounds, opset, tensors, nodes in order, inferred shapes.

Everything a user's file declares is checked before it is used: the file size before it
is read, the opset before any node is interpreted, every tensor's declared dimensions
before its data is converted (a tensor that declares 10^12 elements is refused from its
dimensions alone), and the node order (a cycle is named). Shapes come from
``onnx.shape_inference`` with the graph input's symbolic batch dimension set when the
caller gives one; any other symbolic dimension is an error.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper

from edgetron.errors import TraceError
from edgetron.workload import MAX_ELEMENTS

__all__ = [
    "MAX_MODEL_BYTES",
    "OPSETS",
    "STRIPPED",
    "Const",
    "Graph",
    "Node",
    "read_graph",
]

#: Largest ONNX file read, in bytes (protobuf's own limit is 2 GiB).
MAX_MODEL_BYTES = 1 << 30
#: Default-domain opsets whose op semantics the importer implements.
OPSETS = (11, 21)
#: ``location`` of an external-data reference that marks a tensor as shape-only: its
#: dimensions are real but its data was left out (the committed exporter fixtures).
STRIPPED = "edgetron:stripped"

_DTYPES = {
    TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16, TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32, TensorProto.INT16: np.int16, TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8, TensorProto.BOOL: np.bool_,
}
_TYPED_FIELDS = ("float_data", "double_data", "int32_data", "int64_data")


@dataclasses.dataclass(frozen=True)
class Const:
    """A constant tensor: its shape and, unless shape-only, its value."""

    shape: tuple[int, ...]
    value: np.ndarray | None

    @classmethod
    def of(cls, value: Any) -> Const:
        value = np.asarray(value)
        return cls(tuple(int(d) for d in value.shape), value)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def scalar(self) -> float | None:
        """The value as a Python float when it is one known element, else None."""
        if self.value is None or self.value.size != 1:
            return None
        return float(self.value.reshape(()))


@dataclasses.dataclass
class Node:
    """One ONNX node (or a pattern of nodes the importer fused into one).

    ``index`` is the node's position in the file's graph (the first node of a fused
    pattern), used in every message.
    """

    index: int
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    domain: str = ""

    def where(self) -> str:
        """``node 17 ('/attn/MatMul', MatMul)`` for messages."""
        label = self.name or (f"output {self.outputs[0]!r}" if self.outputs else "unnamed")
        return f"node {self.index} ({label!r}, {self.op_type})" if self.name else \
            f"node {self.index} ({self.op_type}, {label})"


@dataclasses.dataclass
class Graph:
    """The parts of a model the importer uses."""

    opset: int
    nodes: list[Node]
    consts: dict[str, Const]
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]]
    producer: str


def _err(path: Path, message: str) -> TraceError:
    return TraceError(f"{path}: {message}")


def _parse(path: Path) -> onnx.ModelProto:
    with path.open("rb") as file:
        data = file.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise _err(path, f"the file exceeds the limit of {MAX_MODEL_BYTES} bytes")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _err(path, f"not a valid ONNX model (truncated or corrupt file: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise _err(path, "not a valid ONNX model (no graph, or a graph without nodes; "
                         "truncated file?)")
    return model


def _opset(path: Path, model: onnx.ModelProto) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    lo, hi = OPSETS
    if version is None:
        raise _err(path, "the model imports no default-domain (ai.onnx) opset; truncated "
                         "or not an ONNX model")
    if not lo <= version <= hi:
        raise _err(path, f"opset {version} is not supported; edgetron reads opsets {lo} to "
                         f"{hi} (re-export with opset_version in that range)")
    return version


def _dims(path: Path, t: TensorProto, what: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise _err(path, f"{what}: negative dimension in {list(dims)}")
    n = math.prod(dims)
    if n > MAX_ELEMENTS:
        raise _err(path, f"{what}: declares {n} elements (dims {list(dims)}), over the "
                         f"limit of {MAX_ELEMENTS} per tensor")
    return dims


def tensor_const(path: Path, t: TensorProto, what: str) -> Const:
    """A checked :class:`Const` from a TensorProto: dims bounded before any data is read."""
    dims = _dims(path, t, what)
    n = math.prod(dims)
    if t.data_location == TensorProto.EXTERNAL:
        where = {e.key: e.value for e in t.external_data}.get("location")
        if where == STRIPPED:
            return Const(dims, None)
        raise _err(path, f"{what}: data in an external file ({where!r}) is not supported; "
                         "save the model with its data inside (onnx.save(model, path, "
                         "save_as_external_data=False))")
    dtype = _DTYPES.get(t.data_type)
    if dtype is None:
        name = TensorProto.DataType.Name(t.data_type) if t.data_type in \
            TensorProto.DataType.values() else str(t.data_type)
        raise _err(path, f"{what}: element type {name} is not supported")
    if t.HasField("raw_data") or t.raw_data:
        held = len(t.raw_data) // np.dtype(dtype).itemsize
    else:
        held = sum(len(getattr(t, f)) for f in _TYPED_FIELDS)
    if held != n:
        raise _err(path, f"{what}: declares {n} elements (dims {list(dims)}) but holds {held}")
    try:
        value = onnx.numpy_helper.to_array(t)
    except (ValueError, TypeError) as exc:
        raise _err(path, f"{what}: unreadable tensor data: {exc}") from None
    if value.dtype == np.float16:
        value = value.astype(np.float32)
    return Const(dims, value)


def _attrs(path: Path, node: onnx.NodeProto, index: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            attrs[a.name] = tensor_const(path, a.t, f"node {index} attribute {a.name!r}")
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[a.name] = None  # control flow: refused by op type later
        else:
            value = helper.get_attribute_value(a)
            attrs[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) \
                else value
    return attrs


def _order(path: Path, nodes: list[Node], known: set[str]) -> list[Node]:
    """``nodes`` in a topological order (the file's order where valid); a cycle is an error."""
    producer: dict[str, Node] = {}
    for n in nodes:
        for out in n.outputs:
            if out and (out in producer or out in known):
                raise _err(path, f"{n.where()}: output {out!r} is defined twice")
            if out:
                producer[out] = n
    waiting = {id(n): sum(1 for x in set(n.inputs) if x and x in producer) for n in nodes}
    users: dict[str, list[Node]] = {}
    for n in nodes:
        for x in set(n.inputs):
            if x and x in producer:
                users.setdefault(x, []).append(n)
    for n in nodes:
        for x in n.inputs:
            if x and x not in producer and x not in known:
                raise _err(path, f"{n.where()}: input {x!r} is not produced by any node, "
                                 "initializer or graph input")
    ready = [n for n in nodes if waiting[id(n)] == 0]
    ordered: list[Node] = []
    position = {id(n): i for i, n in enumerate(nodes)}
    heap = [(position[id(n)], id(n), n) for n in ready]
    heapq.heapify(heap)
    while heap:
        _, _, n = heapq.heappop(heap)
        ordered.append(n)
        for out in n.outputs:
            for user in users.get(out, ()):
                waiting[id(user)] -= 1
                if waiting[id(user)] == 0:
                    heapq.heappush(heap, (position[id(user)], id(user), user))
    if len(ordered) < len(nodes):
        stuck = min((n for n in nodes if waiting[id(n)] > 0), key=lambda n: n.index)
        raise _err(path, f"{stuck.where()}: the graph has a cycle through this node "
                         "(its inputs depend on its own output)")
    return ordered


def _value_shape(t: onnx.TypeProto) -> tuple[int | str | None, ...] | None:
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return tuple(dims)


def _set_batch(path: Path, inputs: list[onnx.ValueInfoProto], batch: int | None
               ) -> list[tuple[str, tuple[int, ...]]]:
    shapes = []
    for vi in inputs:
        shape = _value_shape(vi.type)
        if shape is None:
            raise _err(path, f"graph input {vi.name!r}: no tensor shape declared")
        dims = []
        for j, d in enumerate(shape):
            if isinstance(d, int):
                dims.append(d)
                continue
            label = f"'{d}'" if d else "unnamed"
            if j == 0 and batch is not None:
                vi.type.tensor_type.shape.dim[0].dim_value = batch
                dims.append(batch)
                continue
            hint = " (give the batch: --batch N)" if j == 0 else \
                " (re-export the model with a fixed input shape)"
            raise _err(path, f"graph input {vi.name!r}: dimension {j} is symbolic ({label}); "
                             f"dynamic shapes need values{hint}")
        if batch is not None and dims and dims[0] != batch:
            raise _err(path, f"graph input {vi.name!r}: the model fixes batch {dims[0]}; "
                             f"--batch {batch} applies only to a symbolic batch dimension")
        shapes.append((vi.name, tuple(dims)))
    return shapes


def _infer(path: Path, model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError,
            RuntimeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        raise _err(path, f"shape inference failed: {text[:400]}") from None
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        shape = _value_shape(vi.type)
        if shape is not None and all(isinstance(d, int) for d in shape):
            shapes[vi.name] = shape  # type: ignore[assignment]
    return shapes


def read_graph(path: str | Path, *, batch: int | None = None) -> Graph:
    """Read, check and order the graph of the ONNX file ``path``.

    Raises
    ------
    TraceError
        Naming the file and what is wrong: size, truncation, opset, a tensor's declared
        size or data, a symbolic dimension, a cycle, failed shape inference.
    """
    path = Path(path)
    model = _parse(path)
    opset = _opset(path, model)
    g = model.graph
    if g.sparse_initializer:
        raise _err(path, "sparse initializers are not supported")
    consts: dict[str, Const] = {}
    for t in g.initializer:
        consts[t.name] = tensor_const(path, t, f"initializer {t.name!r}")
    real_inputs = [vi for vi in g.input if vi.name not in consts]
    if len(real_inputs) != 1:
        raise _err(path, f"the graph has {len(real_inputs)} inputs "
                         f"({', '.join(repr(v.name) for v in real_inputs)}); edgetron imports "
                         "models of one input")
    inputs = _set_batch(path, real_inputs, batch)
    nodes = [
        Node(i, n.name, n.op_type, list(n.input), list(n.output), _attrs(path, n, i), n.domain)
        for i, n in enumerate(g.node)
    ]
    nodes = _order(path, nodes, set(consts) | {name for name, _ in inputs})
    shapes = _infer(path, model)
    for name, shape in inputs:
        shapes[name] = shape
    producer = f"{model.producer_name} {model.producer_version}".strip()
    return Graph(opset, nodes, consts, inputs, [o.name for o in g.output], shapes, producer)
