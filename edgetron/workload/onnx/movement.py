"""ONNX nodes that only move data: new views of the same stored elements, no trace op.

Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Slice (step 1), Gather of one index,
Split, Identity, Dropout (inference) and float-to-float Cast re-index an activation. The
trace reads operands as row-major reshapes and row/column slices, so these cost nothing
as long as the op that finally reads the tensor can address it; the view records where
each element is (:mod:`.view`) and :meth:`~.mapper.Mapper.match` checks that.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .fold import reshape_target, slice_params, split_sizes
from .graph import Node
from .mapper import Act, Mapper
from .view import View

__all__ = ["MOVEMENT"]

_FLOATS = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _apply(m: Mapper, node: Node, x: Act, fn: Callable[[View], View], out: str,
           what: str) -> None:
    moved = x.map(fn)
    if moved is None:
        raise m.error(node, f"{what} of {list(x.shape)} would move data in a way the trace "
                            "cannot express")
    m.set(node, out, moved)


def _axes(m: Mapper, node: Node) -> list[int] | None:
    if m.opset < 13:
        axes = node.attrs.get("axes")
        return None if axes is None else [int(a) for a in axes]
    if len(node.inputs) < 2 or not node.inputs[1]:
        return None
    return [int(a) for a in np.asarray(m.const(node, 1).value).ravel()]


def reshape(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    op = node.op_type
    try:
        if op == "Reshape":
            target = m.const(node, 1).value
            shape = reshape_target(x.shape, np.asarray(target),
                                   int(node.attrs.get("allowzero", 0)))
        elif op == "Flatten":
            axis = int(node.attrs.get("axis", 1))
            axis = axis + len(x.shape) if axis < 0 else axis
            shape = (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))
        elif op == "Squeeze":
            axes = _axes(m, node)
            rank = len(x.shape)
            drop = {a % rank for a in axes} if axes is not None else \
                {j for j, d in enumerate(x.shape) if d == 1}
            if any(x.shape[a] != 1 for a in drop):
                raise ValueError(f"cannot squeeze axes {sorted(drop)} of {list(x.shape)}")
            shape = tuple(d for j, d in enumerate(x.shape) if j not in drop)
        else:  # Unsqueeze
            axes = _axes(m, node) or []
            rank = len(x.shape) + len(axes)
            shape = list(x.shape)
            for a in sorted(a % rank for a in axes):
                shape.insert(a, 1)
            shape = tuple(shape)
    except ValueError as exc:
        raise m.error(node, str(exc)) from None
    _apply(m, node, x, lambda v: v.reshape(shape), node.outputs[0], op)


def transpose(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    perm = node.attrs.get("perm") or list(range(len(x.shape)))[::-1]
    _apply(m, node, x, lambda v: v.transpose(perm), node.outputs[0], "Transpose")


def slice_(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    def get(i: int) -> np.ndarray | None:
        return m.const(node, i).value if len(node.inputs) > i and node.inputs[i] else None

    try:
        params = slice_params(x.shape, get(1), get(2), get(3), get(4))
    except ValueError as exc:
        raise m.error(node, str(exc)) from None
    for _, start, stop, step in params:
        if step != 1 or stop <= start:
            raise m.error(node, f"slice {start}:{stop}:{step}: only non-empty slices of step 1 "
                                "are supported")

    def fn(v: View) -> View:
        for axis, start, stop, _ in params:
            v = v.slice(axis, start, stop)
        return v

    _apply(m, node, x, fn, node.outputs[0], "Slice")


def gather(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    index = m.const(node, 1)
    axis = int(node.attrs.get("axis", 0)) % len(x.shape)
    d = x.shape[axis]
    if index.value is None:
        raise m.error(node, "the indices are a shape-only constant")
    idx = np.asarray(index.value).astype(np.int64).ravel()
    idx = np.where(idx < 0, idx + d, idx)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= d:
        raise m.error(node, f"indices out of range for an axis of {d}")
    if index.shape == ():
        _apply(m, node, x, lambda v: v.select(axis, int(idx[0])), node.outputs[0], "Gather")
        return
    if len(index.shape) != 1 or not np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
        raise m.error(node, "only a scalar index or a run of consecutive indices can be "
                            "gathered from an activation")
    _apply(m, node, x, lambda v: v.slice(axis, int(idx[0]), int(idx[0]) + idx.size),
           node.outputs[0], "Gather")


def split(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    axis = int(node.attrs.get("axis", 0)) % len(x.shape)
    args = [None] + [m.const(node, i).value if node.inputs[i] else None
                     for i in range(1, len(node.inputs))]
    try:
        sizes = split_sizes(node, args, m.opset, x.shape[axis])
    except ValueError as exc:
        raise m.error(node, str(exc)) from None
    start = 0
    for out, size in zip(node.outputs, sizes, strict=True):
        if out:
            _apply(m, node, x, lambda v, a=start, b=start + size: v.slice(axis, a, b), out,
                   "Split")
        start += size


def identity(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    if node.op_type == "Cast" and int(node.attrs.get("to", 0)) not in _FLOATS:
        raise m.error(node, "a cast of an activation to a non-float type is not supported")
    if node.op_type == "Dropout" and len([o for o in node.outputs if o]) > 1 and \
            m.users.get(node.outputs[1], 0):
        raise m.error(node, "the mask output of Dropout is not supported")
    m.set(node, node.outputs[0], x)


def expand(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    shape = tuple(int(d) for d in np.asarray(m.const(node, 1).value).ravel())
    try:
        out = np.broadcast_shapes(x.shape, shape)
    except ValueError as exc:
        raise m.error(node, f"Expand: {exc}") from None
    if tuple(out) != x.shape:
        raise m.error(node, f"expanding an activation {list(x.shape)} to {list(out)} is not "
                            "supported (it would copy data)")
    m.set(node, node.outputs[0], x)


#: Handlers of the data-movement op types.
MOVEMENT: dict[str, Callable[[Mapper, Node], None]] = {
    "Reshape": reshape, "Flatten": reshape, "Squeeze": reshape, "Unsqueeze": reshape,
    "Transpose": transpose, "Slice": slice_, "Gather": gather, "Split": split,
    "Identity": identity, "Dropout": identity, "Cast": identity, "Expand": expand,
}
