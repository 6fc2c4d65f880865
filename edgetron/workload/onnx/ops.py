"""ONNX nodes that become matrix products and adds, or fuse into the op before them.

Mapping (as the builders do it): Conv -> ``conv2d`` (``dwconv2d`` with one group per
channel); MatMul/Gemm with a constant right operand -> ``gemm`` with weights, of two
activations -> ``gemm`` with ``weights`` false and the head layout found by matching; Add
of two activations -> ``add``, of a constant -> ``add`` with ``weights`` (a position
embedding) unless it is the bias of the op before. Fused into the op before: Relu and Clip
(``act``), a bias Add, BatchNormalization and per-channel Mul (into the weights), and a
scalar Mul/Div (into the gemm's ``scale``, the requantization's real factor). The row,
element-wise, pooling and concatenation ops are in :mod:`.vector_ops`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from edgetron.errors import TraceError
from edgetron.workload import Add, Conv2d, DwConv2d, Gemm

from .graph import Const, Node
from .mapper import Act, Mapper
from .view import View

__all__ = ["MATRIX_OPS", "cmap", "ints", "nhwc_op", "window"]

_NCHW = (0, 3, 1, 2)
_MATRIX = ("gemm", "conv2d", "dwconv2d")


def _nchw(v: View) -> View:
    return v.transpose(_NCHW)


def _f32(value: np.ndarray | None) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float32)


def cmap(fn: Callable[..., np.ndarray], shape: tuple[int, ...], *consts: Const | None
          ) -> Const:
    """``fn`` of the consts' values, or a shape-only Const of ``shape`` if one is unknown."""
    if any(c is not None and c.value is None for c in consts):
        return Const(shape, None)
    value = fn(*(None if c is None else c.value.astype(np.float64) for c in consts))
    return Const(shape, _f32(value))


def ints(node: Node, key: str, default: list[int]) -> list[int]:
    return [int(v) for v in node.attrs.get(key, default)]


def window(m: Mapper, node: Node, x: Act, kernel: tuple[int, int]) -> dict[str, int]:
    """Geometry fields (strides, pads) of a 2-D conv or pool node on input ``x``."""
    if len(x.shape) != 4:
        raise m.error(node, f"input 0: a 2-D window needs an NCHW input, got {list(x.shape)}")
    if any(d != 1 for d in ints(node, "dilations", [1, 1])):
        raise m.error(node, "dilations other than 1 are not supported")
    sh, sw = ints(node, "strides", [1, 1])
    r, s = kernel
    h, w = x.shape[2:]
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        top, left, bottom, right = ints(node, "pads", [0, 0, 0, 0])
    elif auto == "VALID":
        top = left = bottom = right = 0
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, st in ((h, r, sh), (w, s, sw)):
            total = max((-(-size // st) - 1) * st + k - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        (top, bottom), (left, right) = pads
    else:
        raise m.error(node, f"auto_pad {auto!r} is not supported")
    if node.attrs.get("ceil_mode", 0):
        floor_out = [(size + p - k) // st + 1 for size, p, k, st in
                     ((h, top + bottom, r, sh), (w, left + right, s, sw))]
        ceil_out = [-(-(size + p - k) // st) + 1 for size, p, k, st in
                    ((h, top + bottom, r, sh), (w, left + right, s, sw))]
        if floor_out != ceil_out:
            raise m.error(node, "ceil_mode 1 with a partial last window is not supported")
    n, c = x.shape[:2]
    return {"n": n, "h": h, "w": w, "c": c, "r": r, "s": s, "stride_h": sh, "stride_w": sw,
            "pad_top": top, "pad_bottom": bottom, "pad_left": left, "pad_right": right}


def nhwc_op(m: Mapper, node: Node, cls, x: Act, fields: dict, weights: dict[str, Const],
             out_c: int, logical: tuple[int, ...] | None = None) -> None:
    ref = m.match(node, x, (fields["n"], fields["h"], fields["w"], fields["c"]), _nchw)
    src = m.add_op(node, cls, {"inputs": (ref,), **fields}, {"": (0, 0, 0, 0)}, weights,
                   node.outputs[0])
    op = m.build(src)
    stored = (op.n, op.out_h, op.out_w, out_c)
    src.layouts = {"": stored}
    view = _nchw(View.row_major(stored))
    m.set(node, node.outputs[0], Act(src, {"": view if logical is None else
                                           view.reshape(logical)}))


def conv(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    w = m.const(node, 1)
    b = m.const(node, 2, optional=True)
    if len(w.shape) != 4:
        raise m.error(node, f"input 1: expected 4-D weights [k, c/groups, r, s], got "
                            f"{list(w.shape)}")
    k, cg, r, s = w.shape
    fields = window(m, node, x, (r, s))
    groups = int(node.attrs.get("group", 1))
    c = fields["c"]
    if groups < 1 or c % groups or cg * groups != c:
        raise m.error(node, f"weights {list(w.shape)} with group {groups} do not fit "
                            f"{c} input channels")
    if b is not None and b.shape != (k,):
        raise m.error(node, f"input 2: expected a bias of {k} values, got {list(b.shape)}")
    if x.factor != 1.0:
        w = cmap(lambda v: v * x.factor, w.shape, w)
    weights = {"weight": cmap(lambda v: v, w.shape, w)}
    if b is not None:
        weights["bias"] = cmap(lambda v: v, b.shape, b)
    fields.update(k=k, bias=b is not None, requant="channel")
    if groups > 1 and groups == c:
        cls = DwConv2d
    else:
        cls = Conv2d
        fields["groups"] = groups
    nhwc_op(m, node, cls, x, fields, weights, k)


def _weight_gemm(m: Mapper, node: Node, a: Act, w: Const, bias: Const | None) -> None:
    """``a @ w (+ bias)`` with ``w`` a constant ``[K, N]``."""
    if len(w.shape) != 2:
        raise m.error(node, f"weights: expected a 2-D [K, N] matrix, got {list(w.shape)}")
    k, n = w.shape
    if not a.shape or a.shape[-1] != k:
        raise m.error(node, f"input 0 {list(a.shape)} does not end in the weights' K = {k}")
    batch = m.batch
    rows = math.prod(a.shape) // (batch * k)
    if rows * batch * k != math.prod(a.shape):
        raise m.error(node, f"input 0 {list(a.shape)} is not a whole number of rows per "
                            f"sample (batch {batch})")
    try:
        ref = m.match(node, a, (batch, rows, k))
    except TraceError:
        if rows != 1:
            raise
        ref, w = _flattened(m, node, a, w)
    scale = 1.0
    if a.factor > 0:
        scale = a.factor
    elif a.factor != 1.0:
        w = cmap(lambda v: v * a.factor, w.shape, w)
    weights = {"weight": cmap(lambda v: v.reshape(1, k, n), (1, k, n), w)}
    if bias is not None:
        weights["bias"] = cmap(lambda v: (v / scale).reshape(1, n), (1, n), bias)
    fields = {"inputs": (ref,), "batch": batch, "m": rows, "k": k, "n": n, "weights": True,
              "bias": bias is not None, "requant": "channel", "scale": scale}
    stored = (batch, rows, n)
    src = m.add_op(node, Gemm, fields, {"": stored}, weights, node.outputs[0])
    out_shape = (*a.shape[:-1], n)
    m.set(node, node.outputs[0], Act(src, {"": View.row_major(stored).reshape(out_shape)}))


def _flattened(m: Mapper, node: Node, a: Act, w: Const) -> tuple[object, Const]:
    """A classifier reading a whole sample in another order (NCHW flatten of an NHWC map):
    the weights' rows are permuted so that the trace reads the stored sample as it is."""
    _, view = m.whole(node, a)
    k = w.shape[0]
    pos = view.positions().reshape(m.batch, k)[0]
    if pos.min() != 0 or pos.max() != k - 1:
        raise m.error(node, "input 0: the rows of a sample are not one stored sample")

    def permute(v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        out[pos] = v
        return out

    ref = a.src.index if a.src.index is not None else "input"
    return ref, cmap(permute, w.shape, w)


def _head_views(shape4: tuple[int, int, int, int], transposed: bool
                ) -> list[tuple[str, tuple[int, ...], Callable[[View], View]]]:
    """The stored layouts of one operand of ``count`` products ``[b, count, rows, cols]``
    (logical): ``(layout, stored shape, stored view -> logical view)``."""
    b, count, rows, cols = shape4
    if transposed:  # stored per product as cols x rows
        rows_shape = (b, count, cols, rows) if count > 1 else (b, cols, rows)
        out = [("rows", rows_shape, lambda v: v.reshape((b, count, cols, rows))
                .transpose((0, 1, 3, 2)))]
        if count > 1:
            out.append(("cols", (b, cols, count * rows),
                        lambda v: v.reshape((b, cols, count, rows)).transpose((0, 2, 3, 1))))
        return out
    rows_shape = (b, count, rows, cols) if count > 1 else (b, rows, cols)
    out = [("rows", rows_shape, lambda v: v.reshape((b, count, rows, cols)))]
    if count > 1:
        out.append(("cols", (b, rows, count * cols),
                    lambda v: v.reshape((b, rows, count, cols)).transpose((0, 2, 1, 3))))
    return out


def _act_gemm(m: Mapper, node: Node, a: Act, b: Act) -> None:
    """A product of two activations (attention): heads as ``count``, layouts matched."""
    la, lb = a.shape, b.shape
    if len(la) < 2 or len(lb) < 2 or la[:-2] != lb[:-2] or la[-1] != lb[-2]:
        raise m.error(node, f"operands {list(la)} and {list(lb)}: expected [..., m, k] and "
                            "[..., k, n] with the same leading dimensions (no broadcasting)")
    rows, k = la[-2:]
    n = lb[-1]
    products = math.prod(la[:-2])
    batch = m.batch
    if products % batch:
        raise m.error(node, f"the {products} products are not a multiple of the batch {batch}")
    count = products // batch
    refs = {}
    layouts = {}
    for what, act, shape4, options in (
        ("a", a, (batch, count, rows, k), (False,)),
        ("b", b, (batch, count, k, n), (False, True)),
    ):
        found = None
        for transposed in options:
            for layout, want, to_logical in _head_views(shape4, transposed):
                try:
                    ref = m.match(node, act, want, to_logical, what=f"operand {what}")
                except TraceError:
                    continue
                found = (ref, layout, transposed)
                break
            if found:
                break
        if found is None:
            raise m.error(node, f"operand {what} {list(act.shape)}: no head layout of the "
                                f"trace (rows or cols, {count} heads) reads it without a "
                                "data movement")
        refs[what] = found
    scale = a.factor * b.factor
    if not scale > 0:
        raise m.error(node, f"the product's real factor {scale} is not positive")
    fields = {"inputs": (refs["a"][0], refs["b"][0]), "batch": batch, "count": count,
              "m": rows, "k": k, "n": n, "weights": False, "a_heads": refs["a"][1],
              "b_heads": refs["b"][1], "b_transposed": refs["b"][2], "requant": "tensor",
              "scale": scale}
    out4 = (batch, count, rows, n)
    views = {}
    for layout, stored, to_logical in _head_views(out4, False):
        layouts[layout] = stored
        views[layout] = to_logical(View.row_major(stored)).reshape((*la[:-2], rows, n))
    src = m.add_op(node, Gemm, fields, layouts, {}, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, views))


def matmul(m: Mapper, node: Node) -> None:
    a = m.act(node, 0)
    b = m.values.get(node.inputs[1])
    if isinstance(b, Const):
        _weight_gemm(m, node, a, b, None)
    else:
        _act_gemm(m, node, a, m.act(node, 1))


def gemm(m: Mapper, node: Node) -> None:
    a = m.act(node, 0)
    w = m.const(node, 1)
    c = m.const(node, 2, optional=True)
    if node.attrs.get("transA", 0):
        raise m.error(node, "transA 1 (a transposed activation) is not supported")
    if len(a.shape) != 2 or len(w.shape) != 2:
        raise m.error(node, f"expected 2-D operands, got {list(a.shape)} and {list(w.shape)}")
    alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
    if node.attrs.get("transB", 0):
        w = cmap(lambda v: v.T, w.shape[::-1], w)
    if alpha != 1.0:
        w = cmap(lambda v: v * alpha, w.shape, w)
    n = w.shape[1]
    if c is not None:
        squeezed = tuple(d for d in c.shape)
        while squeezed and squeezed[0] == 1 and len(squeezed) > 1:
            squeezed = squeezed[1:]
        if squeezed not in ((), (1,), (n,)):
            raise m.error(node, f"input 2: the bias {list(c.shape)} is not one value per "
                                f"output column ({n})")
        c = cmap(lambda v: np.broadcast_to(v.reshape(-1), (n,)) * beta, (n,), c)
    _weight_gemm(m, node, a, w, c)


def _channel(c: Const, logical: tuple[int, ...], axis: int) -> Const | None:
    """``c`` as one value per channel (``logical[axis]``), if it broadcasts that way."""
    if len(c.shape) > len(logical):
        return None
    full = (1,) * (len(logical) - len(c.shape)) + c.shape
    axis = axis % len(logical)
    channels = logical[axis]
    if any(d != 1 and (j != axis or d != channels) for j, d in enumerate(full)):
        return None
    return cmap(lambda v: np.broadcast_to(v.reshape(-1), (channels,)) if v.size > 1
                 else np.full(channels, v.reshape(())), (channels,), c)


def _channel_axis(src) -> int:
    return 1 if src.cls.kind in ("conv2d", "dwconv2d") else -1


def _scale_op(m: Mapper, node: Node, src, vec: Const | None, scalar: float | None) -> None:
    """Multiply a fused op's output by ``scalar`` (into ``scale`` where it has one) or by a
    per-channel ``vec`` (into its weights and bias)."""
    if scalar is not None and src.cls.kind == "gemm" and scalar > 0:
        src.fields["scale"] = src.fields.get("scale", 1.0) * scalar
        return
    if "weight" not in src.weights:
        raise m.error(node, "a product of two activations can only be scaled by a positive "
                            "constant")
    if scalar is not None:
        vec = Const((), np.asarray(scalar, dtype=np.float32))
    w = src.weights["weight"]
    axes = (1, 1, -1) if src.cls.kind == "gemm" else (-1, 1, 1, 1)
    src.weights["weight"] = cmap(lambda v, s: v * s.reshape(axes), w.shape, w, vec)
    if "bias" in src.weights:
        b = src.weights["bias"]
        src.weights["bias"] = cmap(lambda v, s: v * s.reshape(-1 if s.size > 1 else ()),
                                    b.shape, b, vec)


def _add_bias(src, vec: Const) -> None:
    n = vec.shape[0]
    shape = (1, n) if src.cls.kind == "gemm" else (n,)
    scale = src.fields.get("scale", 1.0)
    old = src.weights.get("bias")
    if old is None:
        src.weights["bias"] = cmap(lambda v: (v / scale).reshape(shape), shape, vec)
    else:
        src.weights["bias"] = cmap(lambda o, v: o + (v / scale).reshape(shape), shape, old,
                                    vec)
    src.fields["bias"] = True


def add(m: Mapper, node: Node, negate: bool = False) -> None:
    values = [m.values.get(x) for x in node.inputs[:2]]
    is_act = [isinstance(v, Act) for v in values]
    if all(is_act):
        if negate:
            raise m.error(node, "a difference of two activations is not supported")
        _add_acts(m, node, *values)
        return
    if is_act[0] and isinstance(values[1], Const):
        a, const, name = values[0], values[1], node.inputs[0]
    elif is_act[1] and isinstance(values[0], Const) and not negate:
        a, const, name = values[1], values[0], node.inputs[1]
    else:
        raise m.error(node, "expected an activation and a constant (activation first for Sub)")
    if negate:
        const = cmap(lambda v: -v, const.shape, const)
    if a.factor != 1.0:
        raise m.error(node, f"adding a constant to a scaled activation (factor {a.factor}) "
                            "is not supported")
    src = m.fused_into(a, name, _MATRIX)
    if src is not None and (src.cls.kind != "gemm" or src.fields["weights"]):
        vec = _channel(const, a.shape, _channel_axis(src))
        if vec is not None:
            _add_bias(src, vec)
            src.direct = node.outputs[0]
            m.set(node, node.outputs[0], a)
            return
    _add_const(m, node, a, const)


def _add_const(m: Mapper, node: Node, a: Act, const: Const) -> None:
    """An ``add`` with ``weights``: a learned constant shared by the batch."""
    logical = a.shape
    if len(const.shape) > len(logical) or (len(const.shape) == len(logical)
                                           and const.shape[0] != 1):
        raise m.error(node, f"the constant {list(const.shape)} must be shared by the batch "
                            f"of the activation {list(logical)}")
    try:
        np.broadcast_shapes(const.shape, logical)
    except ValueError:
        raise m.error(node, f"the constant {list(const.shape)} does not broadcast to "
                            f"{list(logical)}") from None
    key, view = m.whole(node, a)
    stored = a.src.stored(key)
    per = math.prod(stored[1:])

    def layout(v: np.ndarray) -> np.ndarray:
        flat = np.empty(math.prod(stored), dtype=np.float64)
        flat[view.positions().ravel()] = np.broadcast_to(v, logical).ravel()
        return flat[:per].reshape(stored[1:])

    weight = cmap(layout, stored[1:], const)
    ref = a.src.index if a.src.index is not None else "input"
    src = m.add_op(node, Add, {"inputs": (ref,), "shape": stored, "weights": True},
                   {"": stored}, {"weight": weight}, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, {"": view}))


def _add_acts(m: Mapper, node: Node, a: Act, b: Act) -> None:
    if a.shape != b.shape:
        raise m.error(node, f"operands {list(a.shape)} and {list(b.shape)}: broadcasting "
                            "between activations is not supported")
    if a.factor != 1.0 or b.factor != 1.0:
        raise m.error(node, "an add of scaled activations is not supported")
    (ka, va), (kb, vb) = m.whole(node, a), m.whole(node, b, "input 1")
    sa, sb = a.src.stored(ka), b.src.stored(kb)
    if sa != sb or va.canonical() != vb.canonical():
        raise m.error(node, f"the operands are stored differently ({list(sa)} and "
                            f"{list(sb)} in different orders); the trace adds stored tensors "
                            "element by element")
    refs = tuple(s.index if s.index is not None else "input" for s in (a.src, b.src))
    src = m.add_op(node, Add, {"inputs": refs, "shape": sa}, {"": sa}, {}, node.outputs[0])
    m.set(node, node.outputs[0], Act(src, {"": va}))


def mul(m: Mapper, node: Node, divide: bool = False) -> None:
    values = [m.values.get(x) for x in node.inputs[:2]]
    if divide:
        if not (isinstance(values[0], Act) and isinstance(values[1], Const)):
            raise m.error(node, "only an activation divided by a constant is supported")
        a, c, name = values[0], values[1], node.inputs[0]
        if c.value is not None and np.any(c.value == 0):
            raise m.error(node, "division by zero")
        c = cmap(lambda v: 1.0 / v, c.shape, c)
    else:
        order = [i for i in (0, 1) if isinstance(values[i], Act)]
        if len(order) != 1 or not isinstance(values[1 - order[0]], Const):
            raise m.error(node, "a product of two activations is only supported as a matrix "
                                "product (MatMul) or inside a GELU pattern")
        a, c, name = values[order[0]], values[1 - order[0]], node.inputs[order[0]]
    scalar = c.scalar()
    if c.value is None and c.size == 1:
        raise m.error(node, "the factor is a shape-only constant; its value is needed")
    src = m.fused_into(a, name, _MATRIX)
    if src is not None and scalar is not None:
        _scale_op(m, node, src, None, scalar * a.factor)
        src.direct = node.outputs[0]
        m.set(node, node.outputs[0], dataclasses.replace(a, factor=1.0))
        return
    if scalar is not None:
        m.set(node, node.outputs[0], dataclasses.replace(a, factor=a.factor * scalar))
        return
    vec = _channel(c, a.shape, _channel_axis(src)) if src is not None else None
    if vec is None:
        raise m.error(node, f"a product with the constant {list(c.shape)} is only supported "
                            "as a scalar or as per-channel scaling right after a conv or gemm")
    _scale_op(m, node, src, vec, None)
    src.direct = node.outputs[0]
    m.set(node, node.outputs[0], a)


def batchnorm(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    if node.attrs.get("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        raise m.error(node, "BatchNormalization in training mode is not supported")
    gamma, beta, mean, var = (m.const(node, i) for i in range(1, 5))
    eps = float(node.attrs.get("epsilon", 1e-5))
    src = m.fused_into(x, node.inputs[0], _MATRIX)
    if src is None or (src.cls.kind == "gemm" and not src.fields["weights"]) or x.factor != 1:
        raise m.error(node, "BatchNormalization must directly follow a Conv or a Gemm/MatMul "
                            "with weights (it is folded into them)")
    axis = _channel_axis(src)
    k = x.shape[axis]
    if any(c.shape != (k,) for c in (gamma, beta, mean, var)):
        raise m.error(node, f"expected {k} values per parameter")
    s = cmap(lambda g, v: g / np.sqrt(v + eps), (k,), gamma, var)
    _scale_op(m, node, src, s, None)
    shift = cmap(lambda b, mu, sv: b - mu * sv, (k,), beta, mean, s)
    _add_bias(src, shift)
    src.direct = node.outputs[0]
    m.set(node, node.outputs[0], x)


def activation(m: Mapper, node: Node) -> None:
    x = m.act(node, 0)
    act = "relu"
    if node.op_type == "Clip":
        lo = m.const(node, 1, optional=True)
        hi = m.const(node, 2, optional=True)
        lo_v = None if lo is None else lo.scalar()
        hi_v = None if hi is None else hi.scalar()
        if lo_v != 0.0 or hi_v not in (None, 6.0, math.inf):
            raise m.error(node, f"Clip to [{lo_v}, {hi_v}] is not supported; only [0, 6] "
                                "(ReLU6) and [0, inf) (ReLU)")
        act = "relu6" if hi_v == 6.0 else "relu"
    src = m.fused_into(x, node.inputs[0], (*_MATRIX, "add"))
    if src is None or src.fields.get("act", "none") != "none" or x.factor != 1.0:
        raise m.error(node, f"{node.op_type} must directly follow a conv, gemm or add whose "
                            "output nothing else reads (it is fused into that op's "
                            "requantization)")
    src.fields["act"] = act
    src.direct = None
    m.set(node, node.outputs[0], x)


#: Handlers of the matrix op types and the ops fused into them.
MATRIX_OPS: dict[str, Callable[[Mapper, Node], None]] = {
    "Conv": conv, "MatMul": matmul, "Gemm": gemm,
    "Add": add, "Sub": lambda m, n: add(m, n, negate=True),
    "Mul": mul, "Div": lambda m, n: mul(m, n, divide=True),
    "BatchNormalization": batchnorm, "Relu": activation, "Clip": activation,
}
