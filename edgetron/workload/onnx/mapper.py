"""The state of an import: ONNX values as constants or views of trace ops, and matching.

Every ONNX value is either a :class:`~.graph.Const` or an :class:`Act`: a view
(:class:`~.view.View`) of the stored output of a :class:`Source` -- a trace op under
construction, or the graph input. A source may leave its stored layout open until a
reader decides it: the graph input (NHWC for a convolution, as given otherwise) and a
product of two activations with several heads (``out_heads`` ``rows`` or ``cols``).

:meth:`Mapper.match` finds the trace operand (a :class:`~edgetron.workload.Ref`, possibly
a row or column slice) whose row-major reading, in the shape the trace op expects and
then permuted into ONNX's axis order, visits exactly the elements of the ONNX tensor in
order. When there is none the graph needs a data movement the trace cannot express, and
the node is named in the error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgetron.errors import TraceError
from edgetron.workload import Op, Ref

from .graph import Const, Graph, Node
from .view import View, ViewError

__all__ = ["Act", "Mapper", "Source"]

#: Longest op name taken from an ONNX node name.
_NAME_CHARS = 200


@dataclasses.dataclass
class Source:
    """A trace op under construction (``index`` None: the graph input).

    ``layouts`` maps each possible stored layout to the stored shape (``out_shape``);
    ``layout`` is the one chosen (None while open). ``direct`` is the ONNX value that is
    the op's own output while later nodes may still fuse into the op (a ReLU, a bias, a
    BatchNormalization, a scalar factor); None once that is no longer possible.
    """

    index: int | None
    cls: type[Op] | None
    fields: dict[str, Any]
    layouts: dict[str, tuple[int, ...]]
    node: Node | None
    weights: dict[str, Const] = dataclasses.field(default_factory=dict)
    layout: str | None = None
    direct: str | None = None

    def stored(self, key: str) -> tuple[int, ...]:
        return self.layouts[key]


@dataclasses.dataclass(frozen=True)
class Act:
    """An ONNX activation: ``factor`` times the elements of ``src`` that ``views[key]``
    picks, for the layout ``key`` of the source."""

    src: Source
    views: dict[str, View]
    factor: float = 1.0

    @property
    def shape(self) -> tuple[int, ...]:
        return next(iter(self.views.values())).shape

    def choices(self) -> list[tuple[str, View]]:
        if self.src.layout is not None:
            view = self.views.get(self.src.layout)
            return [] if view is None else [(self.src.layout, view)]
        return list(self.views.items())

    def map(self, fn: Callable[[View], View]) -> Act | None:
        """The act with ``fn`` applied to every layout's view (None if none survives)."""
        views = {}
        for key, view in self.choices():
            try:
                views[key] = fn(view)
            except ViewError:
                continue
        return dataclasses.replace(self, views=views) if views else None


def _per_sample(stored: tuple[int, ...]) -> tuple[int, int, int]:
    return stored[0], math.prod(stored[1:-1]), stored[-1]


class Mapper:
    """Values, sources and trace ops of one import (see the module docstring)."""

    def __init__(self, path: Path, graph: Graph, nodes: list[Node]) -> None:
        self.path = path
        self.graph = graph
        self.opset = graph.opset
        self.values: dict[str, Const | Act] = dict(graph.consts)
        self.sources: list[Source] = []
        self.users: dict[str, int] = {}
        for n in nodes:
            for x in n.inputs:
                if x:
                    self.users[x] = self.users.get(x, 0) + 1
        for out in graph.outputs:
            self.users[out] = self.users.get(out, 0) + 1
        name, shape = graph.inputs[0]
        if not shape:
            raise self.error(None, f"graph input {name!r} is a scalar; expected a batch "
                                   "of samples")
        self.batch = shape[0]
        if len(shape) == 4:
            n, c, h, w = shape
            layouts = {"nhwc": (n, h, w, c), "nchw": shape}
            views = {"nhwc": View.row_major((n, h, w, c)).transpose((0, 3, 1, 2)),
                     "nchw": View.row_major(shape)}
        else:
            layouts, views = {"": shape}, {"": View.row_major(shape)}
        self.input = Source(None, None, {}, layouts, None)
        self.values[name] = Act(self.input, views)

    # ---- messages ----
    def error(self, node: Node | None, message: str) -> TraceError:
        where = f"{node.where()}: " if node is not None else ""
        return TraceError(f"{self.path}: {where}{message}")

    # ---- values ----
    def act(self, node: Node, i: int) -> Act:
        v = self.values.get(node.inputs[i]) if i < len(node.inputs) else None
        if not isinstance(v, Act):
            what = "missing" if v is None else "a constant"
            raise self.error(node, f"input {i} ({self._input_name(node, i)}) is {what}; "
                                   "expected an activation")
        return v

    def const(self, node: Node, i: int, *, optional: bool = False) -> Const | None:
        name = node.inputs[i] if i < len(node.inputs) else ""
        if not name and optional:
            return None
        v = self.values.get(name)
        if not isinstance(v, Const):
            what = "missing" if v is None else "an activation"
            raise self.error(node, f"input {i} ({self._input_name(node, i)}) is {what}; "
                                   "expected a constant (weights)")
        return v

    @staticmethod
    def _input_name(node: Node, i: int) -> str:
        return repr(node.inputs[i]) if i < len(node.inputs) else "absent"

    def set(self, node: Node, out: str, value: Const | Act) -> None:
        inferred = self.graph.shapes.get(out)
        shape = value.shape
        if inferred is not None and tuple(inferred) != tuple(shape):
            raise self.error(node, f"output {out!r}: the importer derives shape "
                                   f"{list(shape)} but shape inference gives {list(inferred)}")
        self.values[out] = value

    def single_use(self, value: str) -> bool:
        return self.users.get(value, 0) == 1 and value not in self.graph.outputs

    # ---- sources ----
    def add_op(self, node: Node, cls: type[Op], fields: dict[str, Any],
               layouts: dict[str, tuple[int, ...]], weights: dict[str, Const],
               direct: str | None) -> Source:
        """A new trace op from ``node`` (validated now, so errors name the node)."""
        name = node.name if node.name and node.name.isprintable() else \
            f"{node.op_type}_{node.index}"
        fields = {"name": name[:_NAME_CHARS], **fields}
        src = Source(len(self.sources), cls, fields, layouts, node, weights,
                     next(iter(layouts)) if len(layouts) == 1 else None, direct)
        self.build(src, next(iter(layouts)))
        self.sources.append(src)
        return src

    def build(self, src: Source, layout: str | None = None, **extra: Any) -> Op:
        fields = {**src.fields, **extra}
        if layout and layout in ("rows", "cols"):
            fields["out_heads"] = layout
        try:
            return src.cls(**fields)
        except TraceError as exc:
            raise self.error(src.node, f"cannot be a trace {src.cls.kind} op: {exc}") from None

    # ---- matching ----
    def _candidates(self, src: Source, key: str, view: View, want: tuple[int, ...]
                    ) -> list[tuple[Ref, View]]:
        stored = src.stored(key)
        if src.index is None:
            base = View.row_major(stored)
            return [(Ref(None), base)]
        b, rows, cols = _per_sample(stored)
        per = view.size // b if b else 0
        start = view.offset
        r0, c0 = divmod(start, cols)
        out: list[tuple[Ref, View]] = []
        widths = [cols, want[-1] if want else cols, per]
        for w in dict.fromkeys(widths):
            if w <= 0 or per % w or c0 + w > cols or (w == cols and c0):
                continue
            nrows = per // w
            if r0 + nrows > rows:
                continue
            r = None if (r0, nrows) == (0, rows) else (r0, r0 + nrows)
            c = None if w == cols else (c0, c0 + w)
            base = View.row_major((b, nrows, w), offset=r0 * cols + c0,
                                  strides=(rows * cols, cols, 1))
            out.append((Ref(src.index, r, c), base))
        return out

    def match(self, node: Node, act: Act, want: tuple[int, ...],
              to_logical: Callable[[View], View] | None = None, what: str = "input 0"
              ) -> Ref:
        """The trace operand for ``act``: read row-major as ``want`` (the op's stored
        operand shape), then ``to_logical`` (e.g. NHWC -> NCHW), it equals ``act``."""
        for key, view in act.choices():
            for ref, base in self._candidates(act.src, key, view, want):
                try:
                    expected = base.reshape(want)
                    if to_logical is not None:
                        expected = to_logical(expected)
                except ViewError:
                    continue
                if expected.same_elements(view):
                    act.src.layout = key
                    return ref
        producer = "the graph input" if act.src.index is None else \
            f"op {act.src.index} ({act.src.fields['name']!r})"
        raise self.error(node, f"{what}: the tensor {list(act.shape)} is not a row-major "
                               f"reading of {producer}'s output as the trace op's operand "
                               f"{list(want)} (it would need a data movement the trace "
                               "cannot express)")

    def whole(self, node: Node, act: Act, what: str = "input 0") -> tuple[str, View]:
        """Layout and view of an act that visits the whole stored output of its source,
        each element once (element-wise ops keep that layout)."""
        for key, view in act.choices():
            if view.is_permutation_of(math.prod(act.src.stored(key))):
                act.src.layout = key
                return key, view
        raise self.error(node, f"{what}: an element-wise op must read a whole op output; "
                               f"the tensor {list(act.shape)} is a part of one")

    def fused_into(self, act: Act, name: str, kinds: tuple[str, ...]) -> Source | None:
        """The source ``act`` is the direct, single-use output of, if of one of ``kinds``."""
        src = act.src
        if src.index is None or src.direct != name or not self.single_use(name) \
                or src.cls.kind not in kinds:
            return None
        return src

    # ---- results ----
    def weights(self) -> dict[str, np.ndarray] | None:
        out: dict[str, np.ndarray] = {}
        for src in self.sources:
            for role, c in src.weights.items():
                if c.value is None:
                    return None
                out[f"{src.index}.{role}"] = c.value
        return out
