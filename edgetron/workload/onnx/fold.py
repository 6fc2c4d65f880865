"""Constant folding: evaluate every node whose inputs are known before mapping the graph.

Exporters emit shape arithmetic (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``,
``ConstantOfShape``/``Equal``/``Where`` for ``expand(-1)``, ``Cast``/``Sqrt`` for the
attention scale) next to the network. A node is folded when all its inputs are constants,
or when it reads only the *shape* of an activation whose shape inference made static
(``Shape``, ``Size``). The kernels below follow the ONNX operator definitions with NumPy;
every result's size is bounded (:data:`MAX_FOLD_ELEMENTS`) before it is allocated.

A constant that depends on a shape-only tensor (see :data:`~.graph.STRIPPED`) stays
shape-only: its shape comes from shape inference, its value is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgetron.errors import TraceError

from .graph import Const, Graph, Node

__all__ = ["FOLDABLE", "MAX_FOLD_ELEMENTS", "fold_constants", "live_nodes"]

#: Largest constant the folder computes, in elements.
MAX_FOLD_ELEMENTS = 1 << 26


class _FoldError(Exception):
    pass


def _check_size(shape: tuple[int, ...]) -> tuple[int, ...]:
    n = math.prod(shape)
    if n > MAX_FOLD_ELEMENTS:
        raise _FoldError(f"the constant result would have {n} elements, over the limit of "
                         f"{MAX_FOLD_ELEMENTS}")
    return shape


def _bcast(*values: np.ndarray) -> None:
    try:
        shape = np.broadcast_shapes(*(v.shape for v in values))
    except ValueError as exc:
        raise _FoldError(f"operands do not broadcast: {exc}") from None
    _check_size(shape)


def _axes(node: Node, args: list[Any], opset: int, since: int, position: int = 1):
    """The ``axes`` of a node: an attribute before opset ``since``, an input from it on."""
    if opset < since:
        return node.attrs.get("axes")
    if len(args) > position and args[position] is not None:
        return [int(a) for a in np.asarray(args[position]).ravel()]
    return None


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        if np.any(b == 0):
            raise _FoldError("integer division by zero")
        return (np.trunc(a / b)).astype(a.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b).astype(a.dtype)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def run(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
        a, b = (np.asarray(x) for x in args[:2])
        _bcast(a, b)
        out = fn(a, b)
        return [np.asarray(out).astype(a.dtype) if node.op_type not in _PREDICATES else out]
    return run


def _unary(fn: Callable[[np.ndarray], np.ndarray]):
    def run(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
        a = np.asarray(args[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            return [np.asarray(fn(a)).astype(a.dtype)]
    return run


_PREDICATES = ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor")


def _reshape_target(shape_in: tuple[int, ...], target: np.ndarray, allowzero: int
                    ) -> tuple[int, ...]:
    dims = [int(d) for d in target.ravel()]
    out = []
    for j, d in enumerate(dims):
        if d == 0 and not allowzero:
            if j >= len(shape_in):
                raise _FoldError(f"reshape target {dims}: 0 copies a missing dimension")
            d = shape_in[j]
        out.append(d)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise _FoldError(f"invalid reshape target {dims}")
    n = math.prod(shape_in)
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or n % known:
            raise _FoldError(f"cannot reshape {list(shape_in)} to {dims}")
        out[out.index(-1)] = n // known
    if math.prod(out) != n:
        raise _FoldError(f"cannot reshape {list(shape_in)} to {dims}")
    return tuple(out)


def reshape_target(shape_in: tuple[int, ...], target: np.ndarray, allowzero: int = 0
                   ) -> tuple[int, ...]:
    """ONNX Reshape's output shape (``0`` copies, ``-1`` infers); ValueError when invalid."""
    try:
        return _reshape_target(shape_in, target, allowzero)
    except _FoldError as exc:
        raise ValueError(str(exc)) from None


def slice_params(shape: tuple[int, ...], starts, ends, axes, steps
                 ) -> list[tuple[int, int, int, int]]:
    """ONNX Slice's ``(axis, start, stop, step)`` per sliced axis, clamped as the spec says."""
    starts = [int(s) for s in np.asarray(starts).ravel()]
    ends = [int(e) for e in np.asarray(ends).ravel()]
    axes = list(range(len(starts))) if axes is None else [int(a) for a in np.asarray(axes).ravel()]
    steps = [1] * len(starts) if steps is None else [int(s) for s in np.asarray(steps).ravel()]
    out = []
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = a + len(shape) if a < 0 else a
        if not 0 <= a < len(shape) or st == 0:
            raise ValueError(f"invalid slice axis {a} or step {st}")
        d = shape[a]
        if st > 0:
            s = min(max(s + d if s < 0 else s, 0), d)
            e = min(max(e + d if e < 0 else e, 0), d)
        else:
            s = min(max(s + d if s < 0 else s, -1), d - 1)
            e = min(max(e + d if e < 0 else e, -1), d - 1)
        out.append((a, s, e, st))
    return out


def _slice(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    def get(i: int) -> Any:
        return args[i] if len(args) > i and args[i] is not None else None

    index = [slice(None)] * x.ndim
    for a, s, e, st in slice_params(x.shape, args[1], args[2], get(3), get(4)):
        index[a] = slice(s, None if e < 0 else e, st)
    return [x[tuple(index)]]


def _gather(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x, idx = np.asarray(args[0]), np.asarray(args[1]).astype(np.int64)
    axis = int(node.attrs.get("axis", 0))
    d = x.shape[axis]
    if np.any((idx < -d) | (idx >= d)):
        raise _FoldError(f"Gather index out of range for an axis of {d}")
    _check_size(x.shape[:axis] + idx.shape + x.shape[axis + 1:])
    return [np.take(x, np.where(idx < 0, idx + d, idx), axis=axis)]


def _concat(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    return [np.concatenate([np.asarray(a) for a in args], axis=int(node.attrs["axis"]))]


def _squeeze(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axes = _axes(node, args, opset, 13)
    return [np.squeeze(x, axis=None if axes is None else tuple(axes))]


def _unsqueeze(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axes = _axes(node, args, opset, 13)
    rank = x.ndim + len(axes)
    for a in sorted(a + rank if a < 0 else a for a in axes):
        x = np.expand_dims(x, a)
    return [x]


def _reshape(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    return [x.reshape(_reshape_target(x.shape, np.asarray(args[1]),
                                      int(node.attrs.get("allowzero", 0))))]


def _flatten(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axis = int(node.attrs.get("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


def _transpose(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    perm = node.attrs.get("perm")
    return [np.transpose(x, None if perm is None else tuple(perm))]


def _cast(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    from .graph import _DTYPES
    to = _DTYPES.get(int(node.attrs["to"]))
    if to is None:
        raise _FoldError(f"Cast to element type {node.attrs['to']} is not supported")
    return [np.asarray(args[0]).astype(to)]


def _constant_of_shape(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    shape = _check_size(tuple(int(d) for d in np.asarray(args[0]).ravel()))
    value = node.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else value.value.ravel()
    return [np.full(shape, fill[0], dtype=fill.dtype)]


def _expand(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    shape = tuple(int(d) for d in np.asarray(args[1]).ravel())
    try:
        out = np.broadcast_shapes(x.shape, shape)
    except ValueError as exc:
        raise _FoldError(f"Expand: {exc}") from None
    _check_size(out)
    return [np.broadcast_to(x, out).copy()]


def _tile(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    reps = tuple(int(r) for r in np.asarray(args[1]).ravel())
    _check_size(tuple(d * r for d, r in zip(x.shape, reps, strict=True)))
    return [np.tile(x, reps)]


def _range(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(a).reshape(()) for a in args[:3])
    if delta == 0:
        raise _FoldError("Range with delta 0")
    n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    _check_size((n,))
    return [(start + delta * np.arange(n)).astype(start.dtype)]


def _where(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    c, a, b = (np.asarray(x) for x in args[:3])
    _bcast(c, a, b)
    return [np.where(c, a, b)]


def _split(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(args[0])
    axis = int(node.attrs.get("axis", 0))
    sizes = split_sizes(node, args, opset, x.shape[axis])
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def split_sizes(node: Node, args: list[Any], opset: int, dim: int) -> list[int]:
    """The part sizes of a Split node along an axis of ``dim`` (all opset forms)."""
    if opset < 13:
        split = node.attrs.get("split")
    else:
        split = args[1] if len(args) > 1 and args[1] is not None else None
    parts = len(node.outputs)
    if split is None:
        parts = int(node.attrs.get("num_outputs", parts))
        step = -(-dim // parts)
        sizes = [min(step, dim - i * step) for i in range(parts)]
    else:
        sizes = [int(s) for s in np.asarray(split).ravel()]
    if sum(sizes) != dim or len(sizes) != len(node.outputs) or min(sizes) < 0:
        raise ValueError(f"split sizes {sizes} do not divide an axis of {dim} into "
                         f"{len(node.outputs)} parts")
    return sizes


def _reduce(fn: Callable[..., np.ndarray]):
    def run(node: Node, args: list[Any], opset: int) -> list[np.ndarray]:
        x = np.asarray(args[0])
        since = 13 if node.op_type == "ReduceSum" else 18
        axes = _axes(node, args, opset, since)
        keep = bool(node.attrs.get("keepdims", 1))
        return [np.asarray(fn(x, axis=None if not axes else tuple(axes), keepdims=keep))
                .astype(x.dtype)]
    return run


_Kernel = Callable[[Node, list[Any], int], list[np.ndarray]]

#: Op types the folder evaluates when their inputs are constants.
FOLDABLE: dict[str, _Kernel] = {
    "Identity": lambda n, a, o: [np.asarray(a[0])],
    "Gather": _gather, "Concat": _concat, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Reshape": _reshape, "Flatten": _flatten, "Transpose": _transpose, "Cast": _cast,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand, "Tile": _tile,
    "Range": _range, "Where": _where, "Slice": _slice, "Split": _split,
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": _binary(_int_div), "Pow": _binary(np.power), "Mod": _binary(np.fmod),
    "Min": _binary(np.minimum), "Max": _binary(np.maximum),
    "Equal": _binary(np.equal), "Less": _binary(np.less), "Greater": _binary(np.greater),
    "LessOrEqual": _binary(np.less_equal), "GreaterOrEqual": _binary(np.greater_equal),
    "And": _binary(np.logical_and), "Or": _binary(np.logical_or),
    "Xor": _binary(np.logical_xor),
    "Not": lambda n, a, o: [np.logical_not(np.asarray(a[0]))],
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Sqrt": _unary(np.sqrt),
    "Reciprocal": _unary(np.reciprocal), "Floor": _unary(np.floor), "Ceil": _unary(np.ceil),
    "ReduceProd": _reduce(np.prod), "ReduceSum": _reduce(np.sum),
    "ReduceMin": _reduce(np.min), "ReduceMax": _reduce(np.max),
}


def _constant_node(path: Path, node: Node) -> Const:
    a = node.attrs
    if isinstance(a.get("value"), Const):
        return a["value"]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return Const.of(np.asarray(a[key], dtype=dtype))
    raise TraceError(f"{path}: {node.where()}: unsupported Constant attribute "
                     f"({', '.join(a) or 'none'})")


def fold_constants(path: Path, graph: Graph) -> list[Node]:
    """Fold every constant node into ``graph.consts``; return the nodes left to map."""
    consts = graph.consts
    left: list[Node] = []
    for node in graph.nodes:
        try:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                consts[node.outputs[0]] = _constant_node(path, node)
                continue
            if node.op_type in ("Shape", "Size") and node.inputs[0] not in consts:
                shape = graph.shapes.get(node.inputs[0])
                if shape is None:
                    raise _FoldError(f"the shape of {node.inputs[0]!r} is not static")
                value = np.asarray(shape, dtype=np.int64)
                if node.op_type == "Size":
                    value = np.asarray(math.prod(shape), dtype=np.int64)
                else:
                    rank = len(shape)
                    start, end = node.attrs.get("start", 0), node.attrs.get("end", rank)
                    value = value[slice(start, end)]
                consts[node.outputs[0]] = Const.of(value)
                continue
            present = [x for x in node.inputs if x]
            if node.domain not in ("", "ai.onnx") or node.op_type not in FOLDABLE \
                    or not present or any(x not in consts for x in present):
                if node.op_type in ("Shape", "Size"):
                    consts[node.outputs[0]] = _fold_shape(node, consts)
                    continue
                left.append(node)
                continue
            _fold(node, consts, graph)
        except _FoldError as exc:
            raise TraceError(f"{path}: {node.where()}: constant folding: {exc}") from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise TraceError(f"{path}: {node.where()}: constant folding: {exc}") from None
    return left


def _fold_shape(node: Node, consts: dict[str, Const]) -> Const:
    shape = consts[node.inputs[0]].shape
    if node.op_type == "Size":
        return Const.of(np.asarray(math.prod(shape), dtype=np.int64))
    start, end = node.attrs.get("start", 0), node.attrs.get("end", len(shape))
    return Const.of(np.asarray(shape, dtype=np.int64)[slice(start, end)])


def _fold(node: Node, consts: dict[str, Const], graph: Graph) -> None:
    args = [consts[x] if x else None for x in node.inputs]
    if any(a is not None and a.value is None for a in args):
        # Depends on a shape-only tensor: keep the output shapes, not the values. They come
        # from shape inference, or from the kernel run on zeros in place of the unknown data.
        shapes = [graph.shapes.get(out) for out in node.outputs if out]
        if any(shape is None for shape in shapes):
            zeros = [None if a is None else a.value if a.value is not None
                     else np.zeros(_check_size(a.shape), dtype=np.float32) for a in args]
            shapes = [v.shape for v in FOLDABLE[node.op_type](node, zeros, graph.opset)]
        for out, shape in zip((o for o in node.outputs if o), shapes, strict=False):
            consts[out] = Const(_check_size(tuple(shape)), None)
        return
    values = FOLDABLE[node.op_type](node, [None if a is None else a.value for a in args],
                                    graph.opset)
    for out, value in zip(node.outputs, values, strict=False):
        if out:
            value = np.asarray(value)  # (ascontiguousarray would make a scalar 1-D)
            consts[out] = Const.of(value if value.flags.c_contiguous else value.copy())


def live_nodes(nodes: list[Node], outputs: list[str]) -> list[Node]:
    """The nodes some graph output depends on, in order (dead branches dropped)."""
    needed = set(outputs)
    keep: list[Node] = []
    for node in reversed(nodes):
        if any(o in needed for o in node.outputs if o):
            keep.append(node)
            needed.update(x for x in node.inputs if x)
    return keep[::-1]
