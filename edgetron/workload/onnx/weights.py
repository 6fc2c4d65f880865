"""The weights file beside a trace: ``TRACE.weights.npz`` (format in ``docs/onnx.md``).

A NumPy ``.npz`` (a zip of ``.npy`` members, no pickles) with one array per key:

* ``<i>.weight``, ``<i>.bias``, ``<i>.eps`` -- op ``i``'s float parameters, in the shapes
  :func:`expected_shapes` gives for the op;
* ``input.*`` / ``output.*`` -- how the ONNX input and output map to the trace.

:func:`load_weights` reads every member's ``.npy`` header first and refuses a member whose
key, dtype or shape is not the one the trace implies, before any data is read; the
trace's own limits therefore bound every allocation.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from edgetron.errors import TraceError
from edgetron.workload import Add, Concat, Conv2d, DwConv2d, Gemm, LayerNorm, Op, Trace

__all__ = ["expected_shapes", "load_weights", "save_weights", "weights_path"]

_FLOAT = ("float32", "float64")
_MAX_NAME = 1000
_KEY = re.compile(r"^(\d+)\.(weight|bias|eps)$")


def weights_path(trace_path: str | Path) -> Path:
    """``TRACE.weights.npz`` for the trace file ``TRACE.json``."""
    p = Path(trace_path)
    return p.with_name(p.stem + ".weights.npz")


def expected_shapes(op: Op) -> dict[str, tuple[int, ...]]:
    """The parameter arrays of ``op`` and their shapes (role -> shape)."""
    out: dict[str, tuple[int, ...]] = {}
    if isinstance(op, Gemm) and op.weights:
        out["weight"] = (op.count, op.k, op.n)
        if op.bias:
            out["bias"] = (op.count, op.n)
    elif isinstance(op, (Conv2d, DwConv2d)):
        groups = op.c if isinstance(op, DwConv2d) else op.groups
        out["weight"] = (op.k, op.c // groups, op.r, op.s)
        if op.bias:
            out["bias"] = (op.k,)
    elif isinstance(op, LayerNorm):
        out["weight"], out["eps"] = (op.cols,), ()
        if op.bias:
            out["bias"] = (op.cols,)
    elif isinstance(op, Add) and op.weights:
        out["weight"] = op.shape[1:]
    elif isinstance(op, Concat) and op.const_rows:
        out["weight"] = (op.const_rows, op.cols)
    return out


def _io_shapes(rank_in: int, rank_out: int) -> dict[str, tuple[tuple, tuple]]:
    """Meta keys: key -> (shape, allowed dtype kinds)."""
    return {
        "input.name": ((), ("U",)), "input.shape": ((rank_in,), ("i",)),
        "input.perm": ((rank_in,), ("i",)), "output.name": ((), ("U",)),
        "output.op": ((), ("i",)), "output.shape": ((rank_out,), ("i",)),
        "output.strides": ((rank_out,), ("i",)), "output.offset": ((), ("i",)),
    }


def save_weights(path: str | Path, weights: dict[str, np.ndarray]) -> None:
    """Write ``weights`` (an import's) as an uncompressed ``.npz``."""
    arrays = {k: np.asarray(v) for k, v in weights.items()}
    with Path(path).open("wb") as f:
        np.savez(f, **arrays)


def _header(zf: zipfile.ZipFile, member: str, path: Path):
    with zf.open(member) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                return np.lib.format.read_array_header_1_0(f)
            if version == (2, 0):
                return np.lib.format.read_array_header_2_0(f)
        except ValueError as exc:
            raise TraceError(f"{path}: {member}: not a .npy array: {exc}") from None
    raise TraceError(f"{path}: {member}: unsupported .npy version {version}")


def load_weights(path: str | Path, trace: Trace) -> dict[str, np.ndarray]:
    """Read and check the weights file of ``trace``.

    Raises
    ------
    TraceError
        Naming the file and the member: not a zip of ``.npy`` arrays, an unknown or
        missing key, a dtype or shape that is not the one the trace implies, or an object
        (pickled) array.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    want: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}
    for i, op in enumerate(trace):
        for role, shape in expected_shapes(op).items():
            want[f"{i}.{role}"] = (shape, ("f",))
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError) as exc:
        raise TraceError(f"{path}: not a weights file (.npz): {exc}") from None
    with zf:
        headers = {}
        for member in zf.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            if key in headers or not member.endswith(".npy"):
                raise TraceError(f"{path}: unexpected member {member!r}")
            headers[key] = _header(zf, member, path)
        rank_in = headers.get("input.shape", ((0,),))[0]
        rank_out = headers.get("output.shape", ((0,),))[0]
        if len(rank_in) != 1 or len(rank_out) != 1:
            raise TraceError(f"{path}: input.shape/output.shape must be 1-D")
        want.update(_io_shapes(rank_in[0], rank_out[0]))
        for key, (shape, _fortran, dtype) in headers.items():
            if key not in want:
                why = "no such op" if _KEY.match(key) and int(_KEY.match(key)[1]) >= len(trace) \
                    else "not a parameter of the trace"
                raise TraceError(f"{path}: {key}: unexpected array ({why})")
            expect, kinds = want[key]
            if dtype.hasobject or dtype.kind not in kinds or \
                    (kinds == ("f",) and dtype.name not in _FLOAT) or \
                    (dtype.kind == "U" and dtype.itemsize > 4 * _MAX_NAME):
                raise TraceError(f"{path}: {key}: dtype {dtype} is not allowed here")
            if tuple(shape) != tuple(expect):
                raise TraceError(f"{path}: {key}: shape {list(shape)} but the trace needs "
                                 f"{list(expect)}")
        missing = sorted(set(want) - set(headers))
        if missing:
            raise TraceError(f"{path}: missing arrays: {', '.join(missing[:5])}"
                             + (" ..." if len(missing) > 5 else ""))
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in headers}
    _check_io(path, trace, out)
    return out


def _check_io(path: Path, trace: Trace, w: dict[str, np.ndarray]) -> None:
    """The input permutation is one, and the output view lies inside its op's output."""
    perm = [int(p) for p in w["input.perm"]]
    if sorted(perm) != list(range(len(perm))) or np.any(w["input.shape"] < 1):
        raise TraceError(f"{path}: input.perm/input.shape: not a permutation of the input's "
                         "axes and a shape")
    op = int(w["output.op"])
    if not 0 <= op < len(trace):
        raise TraceError(f"{path}: output.op: {op} is not an op of the trace")
    shape, strides = w["output.shape"], w["output.strides"]
    offset = int(w["output.offset"])
    size = int(np.prod(trace[op].out_shape))
    if np.any(shape < 1) or np.any(strides < 0) or offset < 0 or \
            offset + int(np.sum((shape - 1) * strides)) >= size:
        raise TraceError(f"{path}: output.shape/strides/offset: the view leaves op {op}'s "
                         f"output of {size} elements")
