"""ONNX nodes that become row, element-wise, pooling and concatenation trace ops.

LayerNormalization -> ``layernorm``; Softmax -> ``softmax``; Gelu -> ``gelu``;
MaxPool/AveragePool/GlobalAveragePool (and ReduceMean over H, W) -> ``maxpool`` /
``avgpool``; Concat of constant rows then activations -> ``concat`` with ``const_rows``
(the class token). The matrix ops are in :mod:`.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgetron.workload import AvgPool, Concat, Gelu, LayerNorm, MaxPool, Softmax

from .graph import Const, Node
from .mapper import Act, Mapper
from .ops import cmap, ints, nhwc_op, window
from .view import View

__all__ = ["VECTOR_OPS"]


def _rows_op(m: Mapper, node: Node, cls, x: Act, cols: int, fields: dict,
             weights: dict[str, Const]) -> None:
    batch = m.batch
    rows = math.prod(x.shape) // (batch * cols)
    ref = m.match(node, x, (batch, rows, cols))
    stored = (batch, rows, cols)
    src = m.add_op(node, cls, {"inputs": (ref,), "batch": batch, "rows": rows, "cols": cols,
                               **fields}, {"": stored}, weights, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, {"": View.row_major(stored).reshape(x.shape)}))


def softmax(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    rank = len(x.shape)
    axis = int(node.attrs.get("axis", -1 if m.opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    if m.opset >= 13 and axis != rank - 1:
        raise m.error(node, f"softmax over axis {axis} of {list(x.shape)}: only the last "
                            "axis is supported")
    if x.factor != 1.0:
        raise m.error(node, f"softmax of a scaled tensor (factor {x.factor}) whose producer "
                            "cannot take the factor")
    _rows_op(m, node, Softmax, x, math.prod(x.shape[axis:]), {"requant": "tensor"}, {})


def layernorm(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    rank = len(x.shape)
    axis = int(node.attrs.get("axis", -1))
    if axis not in (-1, rank - 1):
        raise m.error(node, f"normalization over axes {axis}.. of {list(x.shape)}: only the "
                            "last axis is supported")
    cols = x.shape[-1]
    gamma = m.const(node, 1, optional=True)
    beta = m.const(node, 2, optional=True)
    for what, c in (("scale", gamma), ("bias", beta)):
        if c is not None and math.prod(c.shape) not in (1, cols):
            raise m.error(node, f"{what} {list(c.shape)}: expected {cols} values")
    ones = Const((cols,), np.ones(cols, dtype=np.float32))
    weights = {"weight": cmap(lambda v: np.broadcast_to(v.reshape(-1), (cols,)), (cols,),
                               gamma or ones),
               "eps": Const((), np.asarray(float(node.attrs.get("epsilon", 1e-5)),
                                           dtype=np.float64))}
    if beta is not None:
        weights["bias"] = cmap(lambda v: np.broadcast_to(v.reshape(-1), (cols,)), (cols,),
                                beta)
    if x.factor != 1.0:
        raise m.error(node, f"layer normalization of a scaled tensor (factor {x.factor})")
    _rows_op(m, node, LayerNorm, x, cols, {"bias": beta is not None}, weights)


def gelu(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    if node.attrs.get("approximate", "none") != "none":
        raise m.error(node, "approximate 'tanh' GELU is not supported (the trace's gelu is "
                            "the erf form)")
    if x.factor != 1.0:
        raise m.error(node, f"GELU of a scaled tensor (factor {x.factor})")
    key, view = m.whole(node, x)
    stored = x.src.stored(key)
    ref = x.src.index if x.src.index is not None else "input"
    src = m.add_op(node, Gelu, {"inputs": (ref,), "shape": stored, "requant": "tensor"},
                   {"": stored}, {}, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, {"": view}))


def pool(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    if x.factor != 1.0:
        raise m.error(node, f"pooling of a scaled tensor (factor {x.factor})")
    op = node.op_type
    if op in ("GlobalAveragePool", "ReduceMean"):
        if op == "ReduceMean":
            axes = (node.attrs.get("axes") if m.opset < 18 else
                    (None if len(node.inputs) < 2 else m.const(node, 1).value))
            axes = sorted(int(a) % max(len(x.shape), 1) for a in np.asarray(axes).ravel()) \
                if axes is not None else []
            if len(x.shape) != 4 or axes != [2, 3]:
                raise m.error(node, f"ReduceMean over axes {axes} of {list(x.shape)}: only "
                                    "the spatial axes of NCHW (a global average pool) or the "
                                    "LayerNorm pattern are supported")
        kernel = tuple(x.shape[2:]) if len(x.shape) == 4 else (0, 0)
        fields = window(m, node, x, kernel)
        cls = AvgPool
    else:
        kernel = tuple(ints(node, "kernel_shape", []))
        if len(kernel) != 2:
            raise m.error(node, f"kernel_shape {list(kernel)}: only 2-D pools are supported")
        if len([o for o in node.outputs if o]) > 1:
            raise m.error(node, "the indices output of MaxPool is not supported")
        if node.attrs.get("storage_order", 0):
            raise m.error(node, "storage_order 1 is not supported")
        fields = window(m, node, x, kernel)
        cls = MaxPool if op == "MaxPool" else AvgPool
        pads = [fields[k] for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")]
        if cls is AvgPool and any(pads) and not node.attrs.get("count_include_pad", 0):
            raise m.error(node, "an average pool with padding must count the padding "
                                "(count_include_pad 1): the trace divides by r x s")
    fields["requant"] = "none" if cls is MaxPool else "tensor"
    keep = node.op_type != "ReduceMean" or node.attrs.get("keepdims", 1)
    nhwc_op(m, node, cls, x, fields, {}, x.shape[1], None if keep else x.shape[:2])


def concat(m: Mapper, node: Node) -> None:
    values = [m.values.get(x) for x in node.inputs]
    acts = [v for v in values if isinstance(v, Act)]
    rank = len(acts[0].shape)
    axis = int(node.attrs["axis"])
    axis = axis + rank if axis < 0 else axis
    if rank != 3 or axis != 1:
        raise m.error(node, f"concat along axis {axis} of rank-{rank} tensors: only rows "
                            "of [batch, rows, cols] token matrices (axis 1) are supported")
    first = next(i for i, v in enumerate(values) if isinstance(v, Act))
    if any(isinstance(v, Const) for v in values[first:]):
        raise m.error(node, "constant rows must come before every activation (the trace's "
                            "concat places its learned rows first)")
    batch, cols = m.batch, acts[0].shape[2]
    consts = values[:first]
    for c in consts:
        if len(c.shape) != 3 or c.shape[0] not in (1, batch) or c.shape[2] != cols:
            raise m.error(node, f"constant input {list(c.shape)} is not rows of {cols} "
                                "columns shared by the batch")
        if c.value is not None and not np.all(c.value == c.value[:1]):
            raise m.error(node, "the constant rows differ between samples")
    const_rows = sum(c.shape[1] for c in consts)
    refs, rows = [], []
    for j, a in enumerate(acts):
        if a.factor != 1.0:
            raise m.error(node, f"input {first + j}: concat of a scaled tensor")
        refs.append(m.match(node, a, (batch, a.shape[1], cols), what=f"input {first + j}"))
        rows.append(a.shape[1])
    weights = {}
    if consts:
        weights["weight"] = cmap(lambda *vs: np.concatenate([v[0] for v in vs], axis=0),
                                  (const_rows, cols), *consts)
    stored = (batch, const_rows + sum(rows), cols)
    src = m.add_op(node, Concat, {"inputs": tuple(refs), "batch": batch, "rows": tuple(rows),
                                  "cols": cols, "const_rows": const_rows},
                   {"": stored}, weights, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, {"": View.row_major(stored)}))


#: Handlers of the row, element-wise, pooling and concatenation op types.
VECTOR_OPS: dict[str, Callable[[Mapper, Node], None]] = {
    "Softmax": softmax, "LayerNormalization": layernorm, "Gelu": gelu,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": pool, "ReduceMean": pool,
    "Concat": concat,
}
