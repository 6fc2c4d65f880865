"""``import_onnx``: an ONNX model as a trace and its float weights.

The steps: read and check the file (:mod:`.graph`), fold constants (:mod:`.fold`), drop
nodes no output depends on, fuse decomposed LayerNorm and GELU (:mod:`.patterns`), map
node by node (:mod:`.ops`, :mod:`.movement`), then set the widths the way the builders do
and validate the whole trace.

Widths (as in ``vit()``, ``resnet18()``, ``mobilenetv2()``): int8 activations and weights,
int32 accumulators; a matrix op whose every reader is a softmax or a GELU, or that is the
graph output, keeps its int32 accumulator (``requant`` ``none``); otherwise weight products
requantize per channel and products of two activations per tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgetron.errors import TraceError
from edgetron.workload import ACC_BITS, Trace

from .fold import fold_constants, live_nodes
from .graph import Const, read_graph
from .mapper import Act, Mapper
from .movement import MOVEMENT
from .ops import MATRIX_OPS
from .patterns import fuse_patterns
from .vector_ops import VECTOR_OPS

__all__ = ["SUPPORTED_OPS", "Imported", "import_onnx"]

#: ONNX op types the importer maps (besides those folded as constants).
SUPPORTED_OPS = tuple(sorted({*MATRIX_OPS, *VECTOR_OPS, *MOVEMENT}))
_HANDLERS = {**MATRIX_OPS, **VECTOR_OPS, **MOVEMENT}

_WIDE_READERS = ("softmax", "gelu")


class Imported(NamedTuple):
    """The result of :func:`import_onnx`: the trace and its weights.

    ``weights`` is None for a shape-only model (a tensor's data left out, see
    ``docs/onnx.md``); otherwise float arrays keyed ``"<op>.<role>"`` plus the ``input.*``
    and ``output.*`` entries that say how the ONNX input and output map to the trace.
    """

    trace: Trace
    weights: dict[str, np.ndarray] | None


def _map(m: Mapper, nodes) -> None:
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            raise m.error(node, f"op {node.op_type!r} of domain {node.domain!r} is not "
                                "supported (only the default ONNX domain)")
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            raise m.error(node, f"unsupported ONNX op {node.op_type!r} (docs/onnx.md lists "
                                "the supported ops and patterns)")
        handler(m, node)


def _widths(m: Mapper, outputs: set[int]) -> None:
    """Set requant/out_bits/in_bits as the builders do (see the module docstring)."""
    readers: dict[int, list[str]] = {s.index: [] for s in m.sources}
    for s in m.sources:
        for ref in s.fields["inputs"]:
            op = ref if isinstance(ref, int) else getattr(ref, "op", None)
            if isinstance(op, int):
                readers[op].append(s.cls.kind)
    for s in m.sources:
        kind = s.cls.kind
        if kind not in ("gemm", "conv2d", "dwconv2d") or s.fields.get("act", "none") != "none":
            continue
        kinds = readers[s.index]
        wide = (kinds and all(k in _WIDE_READERS for k in kinds)) or \
            (not kinds and s.index in outputs)
        if wide:
            s.fields.update(requant="none", out_bits=ACC_BITS)
    for s in m.sources:
        widths = set()
        for ref in s.fields["inputs"]:
            op = ref if isinstance(ref, int) else getattr(ref, "op", None)
            widths.add(m.sources[op].fields.get("out_bits", 8) if isinstance(op, int) else 8)
        if len(widths) > 1:
            raise m.error(s.node, f"its inputs have different widths {sorted(widths)}")
        s.fields["in_bits"] = widths.pop()


def _io(m: Mapper, output: str) -> dict[str, np.ndarray]:
    name, shape = m.graph.inputs[0]
    layout = m.input.layout or next(iter(m.input.layouts))
    perm = (0, 2, 3, 1) if layout == "nhwc" else tuple(range(len(shape)))
    value = m.values.get(output)
    if not isinstance(value, Act) or value.src.index is None:
        raise m.error(None, f"graph output {output!r} is not computed by any op")
    view = value.views.get(value.src.layout or next(iter(value.views)))
    strides = None if view is None else view.strides()
    if strides is None:
        raise m.error(None, f"graph output {output!r} is a rearrangement of op "
                            f"{value.src.index}'s output that no strides describe")
    return {
        "input.name": np.asarray(name), "input.shape": np.asarray(shape, dtype=np.int64),
        "input.perm": np.asarray(perm, dtype=np.int64),
        "output.name": np.asarray(output), "output.op": np.asarray(value.src.index),
        "output.shape": np.asarray(view.shape, dtype=np.int64),
        "output.strides": np.asarray(strides, dtype=np.int64),
        "output.offset": np.asarray(view.offset, dtype=np.int64),
    }


def import_onnx(path: str | Path, *, batch: int | None = None, name: str | None = None
                ) -> Imported:
    """Import the ONNX model ``path`` as a trace (see ``docs/onnx.md``).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (data inside; no external data files).
    batch : int, optional
        Value of a symbolic batch dimension of the graph input. A model with a fixed
        batch keeps it (a different ``batch`` is an error).
    name : str, optional
        Trace name; default the file's stem.

    Returns
    -------
    Imported
        ``(trace, weights)``.

    Raises
    ------
    TraceError
        Naming the file and, for a node, its index, name and op type: unsupported ops or
        patterns, bad or truncated files, unsupported opsets, symbolic shapes, oversized
        tensors, cycles.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    graph = read_graph(path, batch=batch)
    if len(graph.outputs) != 1:
        raise TraceError(f"{path}: the graph has {len(graph.outputs)} outputs; edgetron "
                         "imports models of one output")
    nodes = live_nodes(fold_constants(path, graph), graph.outputs)
    nodes = fuse_patterns(nodes, graph.consts, graph.outputs, graph.shapes, graph.opset)
    m = Mapper(path, graph, nodes)
    if not nodes or isinstance(m.values.get(graph.outputs[0]), Const):
        raise TraceError(f"{path}: the graph output is a constant; nothing to compute")
    _map(m, nodes)
    out = m.values[graph.outputs[0]]
    outputs = {out.src.index} if isinstance(out, Act) and out.src.index is not None else set()
    _widths(m, outputs)
    ops = [m.build(s, s.layout or next(iter(s.layouts))) for s in m.sources]
    weights = m.weights()
    io = _io(m, graph.outputs[0])
    opset = f"opset {graph.opset}" + (f", {graph.producer}" if graph.producer else "")
    try:
        trace = Trace(name=name or path.stem or "onnx", batch=m.batch, ops=tuple(ops),
                      description=f"imported from {path.name} ({opset})"[:10_000])
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None
    if weights is not None:
        weights.update(io)
    return Imported(trace, weights)
