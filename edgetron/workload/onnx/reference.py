"""Float64 execution of an imported trace with its weights: the real-valued reference.

:func:`run_float` runs every op of the trace as the trace defines it (operands read as the
row-major reshape of the producer's sliced output, NHWC feature maps, the head layouts of
products of two activations, ``scale`` times ``A @ W + bias``, fused activation clamps)
with the float weights of :func:`~.importer.import_onnx`. Its output equals the ONNX
model's (onnxruntime's) up to float rounding, which is how the tests check that an
import means what the ONNX graph means; its per-op outputs are the float activations that
calibration and per-layer comparisons need.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from edgetron.errors import TraceError
from edgetron.golden.reference import gelu as _gelu
from edgetron.workload import (
    Add,
    AvgPool,
    Concat,
    Conv2d,
    DwConv2d,
    Gelu,
    Gemm,
    LayerNorm,
    MaxPool,
    Op,
    Ref,
    Softmax,
    Trace,
)

__all__ = ["output_of", "run_float", "stored_input"]


def stored_input(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The ONNX input ``x`` in the layout the trace stores it (NHWC for images)."""
    shape = tuple(int(d) for d in weights["input.shape"])
    x = np.asarray(x, dtype=np.float64)
    if x.shape != shape:
        raise TraceError(f"input: expected shape {list(shape)}, got {list(x.shape)}")
    return np.ascontiguousarray(x.transpose(tuple(int(p) for p in weights["input.perm"])))


def output_of(weights: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
    """The ONNX output (its logical shape) from the per-op outputs of :func:`run_float`."""
    flat = np.ascontiguousarray(outputs[int(weights["output.op"])]).ravel()
    item = flat.itemsize
    view = as_strided(flat[int(weights["output.offset"]):],
                      shape=tuple(int(d) for d in weights["output.shape"]),
                      strides=tuple(int(s) * item for s in weights["output.strides"]),
                      writeable=False)
    return view.copy()


def _operand(op: Op, j: int, ref: Ref, stored_in: np.ndarray, outs: list[np.ndarray]
             ) -> np.ndarray:
    if ref.op is None:
        return stored_in.reshape(op.in_shapes[j])
    y = outs[ref.op]
    b = y.shape[0]
    mat = y.reshape(b, math.prod(y.shape[1:-1]), y.shape[-1])
    r0, r1 = ref.rows or (0, mat.shape[1])
    c0, c1 = ref.cols or (0, mat.shape[2])
    return np.ascontiguousarray(mat[:, r0:r1, c0:c1]).reshape(op.in_shapes[j])


def _clamp(y: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def _windows(x: np.ndarray, op, fill: float) -> np.ndarray:
    """``[n, out_h, out_w, c, r, s]`` windows of an NHWC input with the op's padding."""
    xp = np.pad(x, ((0, 0), (op.pad_top, op.pad_bottom), (op.pad_left, op.pad_right), (0, 0)),
                constant_values=fill)
    win = sliding_window_view(xp, (op.r, op.s), axis=(1, 2))
    return win[:, ::op.stride_h, ::op.stride_w][:, :op.out_h, :op.out_w]


def _conv(op, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    groups = op.c if isinstance(op, DwConv2d) else op.groups
    win = _windows(x, op, 0.0)  # n, oh, ow, c, r, s
    n, oh, ow = win.shape[:3]
    cg, kg = op.c // groups, op.k // groups
    win = win.reshape(n, oh, ow, groups, cg, op.r, op.s)
    wg = w.reshape(groups, kg, cg, op.r, op.s)
    y = np.einsum("nhwgcrs,gkcrs->nhwgk", win, wg, optimize=True).reshape(n, oh, ow, op.k)
    return y if bias is None else y + bias


def _gemm(op: Gemm, ins: list[np.ndarray], w: dict[str, np.ndarray]) -> np.ndarray:
    if op.weights:
        a = ins[0].reshape(op.batch, op.count, op.m, op.k)
        y = np.einsum("bcmk,ckn->bcmn", a, w["weight"].astype(np.float64))
        if op.bias:
            y = y + w["bias"].astype(np.float64)[None, :, None, :]
        y = y * op.scale
        return y.reshape(op.out_shape)
    shape, axes = op.product_view("a")
    a = ins[0].reshape(shape).transpose(axes)
    shape, axes = op.product_view("b")
    b = ins[1].reshape(shape).transpose(axes)
    y = (a @ b) * op.scale
    shape, axes = op.product_view("out")
    return y.transpose(np.argsort(axes)).reshape(op.out_shape)


def _run(op: Op, ins: list[np.ndarray], w: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(op, Gemm):
        return _clamp(_gemm(op, ins, w), op.act)
    if isinstance(op, (Conv2d, DwConv2d)):
        bias = w["bias"].astype(np.float64) if op.bias else None
        return _clamp(_conv(op, ins[0], w["weight"].astype(np.float64), bias), op.act)
    if isinstance(op, MaxPool):
        return _windows(ins[0], op, -np.inf).max(axis=(4, 5))
    if isinstance(op, AvgPool):
        return _windows(ins[0], op, 0.0).sum(axis=(4, 5)) / (op.r * op.s)
    if isinstance(op, Softmax):
        e = np.exp(ins[0] - ins[0].max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if isinstance(op, LayerNorm):
        x = ins[0]
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + float(w["eps"])) * w["weight"].astype(np.float64)
        return y + w["bias"].astype(np.float64) if op.bias else y
    if isinstance(op, Gelu):
        return _gelu(ins[0])
    if isinstance(op, Add):
        other = w["weight"].astype(np.float64)[None] if op.weights else ins[1]
        return _clamp(ins[0] + other, op.act)
    if isinstance(op, Concat):
        parts = [np.broadcast_to(w["weight"].astype(np.float64),
                                 (op.batch, op.const_rows, op.cols))] if op.const_rows else []
        return np.concatenate(parts + list(ins), axis=1)
    raise TraceError(f"run_float: unsupported kind {op.kind!r}")  # pragma: no cover


def run_float(trace: Trace, weights: dict[str, np.ndarray], x: np.ndarray
              ) -> list[np.ndarray]:
    """Every op's output (stored shape, float64) for the ONNX input ``x``.

    Parameters
    ----------
    trace, weights
        An import's result (:func:`~.importer.import_onnx`) or a trace with its loaded
        weights file.
    x : array
        The model's input in ONNX's shape (e.g. NCHW).

    Returns
    -------
    list of ndarray
        Output of each op in order; :func:`output_of` gives the model output.
    """
    stored_in = stored_input(weights, x)
    outs: list[np.ndarray] = []
    for i, op in enumerate(trace):
        ins = [_operand(op, j, ref, stored_in, outs) for j, ref in enumerate(op.inputs)]
        w = {key.split(".", 1)[1]: v for key, v in weights.items()
             if key.split(".", 1)[0] == str(i)}
        outs.append(np.asarray(_run(op, ins, w), dtype=np.float64).reshape(op.out_shape))
    return outs
