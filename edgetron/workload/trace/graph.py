"""The trace: ops in execution order, the links between them checked, totals, the
canonical JSON text, and the trace file functions :func:`load_trace` and :func:`save_trace`.

:class:`Trace` checks what no single op can: each input refers to an earlier op, a
slice lies within its producer's output, operand shapes and widths agree with what the
producer makes, and one batch size holds throughout. Reading a document is
:mod:`.jsonio`'s (strict JSON, document keys, each op's JSON object).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgetron.errors import TraceError
from edgetron.workload.trace.jsonio import document_fields, parse_json, read_user_text
from edgetron.workload.trace.limits import (
    FORMAT,
    MAX_DESCRIPTION,
    MAX_DIM,
    MAX_FILE_BYTES,
    MAX_OPS,
    VERSION,
    check_int,
    check_name,
    num_elements,
    op_label,
    show_value,
)
from edgetron.workload.trace.matrix import Gemm
from edgetron.workload.trace.op import Op

__all__ = ["Trace", "load_trace", "save_trace"]


def _matrix_view(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return shape[0], num_elements(shape[1:-1]), shape[-1]


def _fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _stacked_heads(op: Op, operand: str) -> int:
    """The heads stacked in ``operand`` (``"a"``, ``"b"``, ``"out"``) of ``op``, or 0.

    Nonzero (``count``) only for a product of two activations whose operand or output is
    in the ``rows`` layout with ``count > 1``, stored ``[batch, count, rows, cols]``.
    """
    if not isinstance(op, Gemm) or op.weights or op.count == 1:
        return 0
    layout = {"a": op.a_heads, "b": op.b_heads, "out": op.out_heads}[operand]
    return op.count if layout == "rows" else 0


def _reshape_allowed(op: Op, j: int, src: Op, given: tuple[int, ...],
                     want: tuple[int, ...]) -> bool:
    """Whether operand ``j`` of ``op`` may read ``src``'s (sliced) output ``given`` as ``want``.

    Both have the same batch and elements per sample. Allowed: the same last (feature)
    dimension, the leading ones merged or split (a feature map's pixels as tokens, stacked
    attention heads as rows); a gemm operand of one row per sample (flattening a whole
    sample for a classifier); and, for version-1 documents from before the head layout
    fields, the plain row-major reshapes of a gemm between stacked heads and a token
    matrix whose feature dimension is ``count`` times a per-product dimension.
    """
    if given[-1] == want[-1]:
        return True
    if not isinstance(op, Gemm):
        return False
    if num_elements(want[1:-1]) == 1:
        return True
    count = _stacked_heads(op, "ab"[j])  # a gemm has at most two operands
    if count and given[-1] in (count * want[-1], count * want[-2]):
        return True
    count = _stacked_heads(src, "out")
    return bool(count) and want[-1] == count * given[-1]


@dataclasses.dataclass(frozen=True)
class Trace:
    """A network as ops in execution order, validated on construction.

    Parameters
    ----------
    name : str
        Label (preset name, file stem, ...).
    batch : int
        Samples per inference; every op's batch dimension must equal it.
    ops : tuple of Op
        The ops in execution order; an op's inputs refer to earlier ops by index.
    description : str
        Free text (optional; written to JSON only when non-empty).

    Notes
    -----
    The links are checked here: each input refers to an earlier op; a slice lies within
    the producer's output; the operand shape matches the producer's (sliced) output
    exactly, except that gemm, softmax, layernorm and concat operands may be a
    reshaping with the same batch, the same number of elements per sample and the same
    last (feature) dimension (stacked attention heads' rows, a feature map's pixels as
    tokens), and a gemm operand of one row per sample may flatten the whole sample (a
    classifier on a feature map); stacked heads of version-1 documents from before the
    head layout fields keep their plain reshapes (see ``docs/trace-format.md``). Each
    operand's ``in_bits`` equals the producer's ``out_bits``. An operand's values are
    always the row-major reshape of the producer's (sliced) output into the op's
    ``in_shapes`` entry; how attention heads are split and merged is the gemm's head layout
    (:meth:`Gemm.product_view`), never inferred from shapes.
    """

    name: str
    batch: int
    ops: tuple[Op, ...]
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "name")
        check_int(self.batch, "batch", 1, MAX_DIM)
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION:
            raise TraceError(
                f"description: expected a string of at most {MAX_DESCRIPTION} characters"
            )
        if isinstance(self.ops, (str, bytes, Mapping)) or not isinstance(self.ops, Sequence):
            raise TraceError(f"ops: expected a list of ops, got {show_value(self.ops)}")
        if not 1 <= len(self.ops) <= MAX_OPS:
            raise TraceError(f"ops: expected 1 to {MAX_OPS} ops, got {len(self.ops)}")
        object.__setattr__(self, "ops", tuple(self.ops))
        for i, op in enumerate(self.ops):
            if not isinstance(op, Op):
                raise TraceError(f"op {i}: expected an op, got {show_value(op)}")
            try:
                self._check_links(i, op)
            except TraceError as exc:
                raise TraceError(f"{op_label(i, op.name)}: {exc}") from None

    def _check_links(self, i: int, op: Op) -> None:
        if op.out_shape[0] != self.batch:
            raise TraceError(
                f"{op._BATCH_FIELD}: batch {op.out_shape[0]} differs from the trace's "
                f"batch {self.batch}"
            )
        for j, ref in enumerate(op.inputs):
            if ref.op is None:
                continue
            if ref.op >= i:
                raise TraceError(
                    f"inputs[{j}]: refers to op {ref.op}, which does not come before op {i} "
                    "(ops are listed in execution order)"
                )
            src = self.ops[ref.op]
            source = op_label(ref.op, src.name)
            given = src.out_shape
            sliced = ref.rows is not None or ref.cols is not None
            if sliced:
                b, nrows, ncols = _matrix_view(given)
                r0, r1 = ref.rows or (0, nrows)
                c0, c1 = ref.cols or (0, ncols)
                if r1 > nrows:
                    raise TraceError(
                        f"inputs[{j}].rows: slice {r0}:{r1} exceeds the {nrows} rows of "
                        f"{source}"
                    )
                if c1 > ncols:
                    raise TraceError(
                        f"inputs[{j}].cols: slice {c0}:{c1} exceeds the {ncols} columns of "
                        f"{source}"
                    )
                given = (b, r1 - r0, c1 - c0)
            want = op.in_shapes[j]
            if op._RESHAPES:
                # Same batch and size here; which reshapes keep the meaning: below.
                same = given[0] == want[0] and num_elements(given[1:]) == num_elements(want[1:])
            elif sliced:
                # A slice is a per-sample matrix; compare with the operand's matrix view.
                same = given == _matrix_view(want)
            else:
                same = given == want
            if not same:
                raise TraceError(
                    f"inputs[{j}]: expects a {_fmt_shape(want)} operand "
                    f"({num_elements(want[1:])} elements per sample) but {source}"
                    f"{ref.slice_text()} provides {_fmt_shape(given)} "
                    f"({num_elements(given[1:])} elements per sample)"
                )
            if op._RESHAPES and not _reshape_allowed(op, j, src, given, want):
                raise TraceError(
                    f"inputs[{j}]: expects a {_fmt_shape(want)} operand but {source}"
                    f"{ref.slice_text()} provides {_fmt_shape(given)}: the same "
                    f"{num_elements(want[1:])} elements per sample, but {want[-1]} features "
                    f"per row instead of {given[-1]} (a reshape keeps the last dimension)"
                )
            if src.out_bits != op.in_bits:
                raise TraceError(
                    f"in_bits: {op.in_bits} differs from the out_bits {src.out_bits} of its "
                    f"inputs[{j}], {source}"
                )

    # ---- container protocol ----
    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __getitem__(self, index: int) -> Op:
        return self.ops[index]

    @functools.cached_property
    def _consumers(self) -> tuple[tuple[int, ...], ...]:
        users: list[list[int]] = [[] for _ in self.ops]
        for i, op in enumerate(self.ops):
            for ref in op.inputs:
                if ref.op is not None and i not in users[ref.op]:
                    users[ref.op].append(i)
        return tuple(tuple(u) for u in users)

    def consumers(self, index: int) -> tuple[int, ...]:
        """Indices of the ops reading op ``index``'s output, ascending; empty for an output."""
        return self._consumers[index]

    # ---- totals ----
    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole trace."""
        return sum(op.macs for op in self.ops)

    @property
    def params(self) -> int:
        """Constant elements (weights and biases) of the whole trace."""
        return sum(op.params for op in self.ops)

    @property
    def param_bytes(self) -> int:
        """Bytes of all weights and biases."""
        return sum(op.param_bytes for op in self.ops)

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        """The JSON document as a dict, keys in canonical order."""
        d: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "name": self.name, "batch": self.batch,
        }
        if self.description:
            d["description"] = self.description
        d["ops"] = [op.to_dict(i) for i, op in enumerate(self.ops)]
        return d

    def to_json(self) -> str:
        """Canonical JSON text: fixed key order, one op per line, trailing newline."""
        d = self.to_dict()
        ops = d.pop("ops")
        lines = ["{"]
        lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in d.items()]
        lines.append('  "ops": [')
        lines.append(",\n".join("    " + json.dumps(op) for op in ops))
        lines += ["  ]", "}"]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "trace") -> Trace:
        """Validate a parsed JSON document and build the trace.

        Raises
        ------
        TraceError
            Naming ``source``, the op index and the field.
        """
        try:
            return cls(**document_fields(data))
        except TraceError as exc:
            raise TraceError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, source: str = "trace") -> Trace:
        """Parse and validate JSON text (duplicate keys, NaN and Infinity are errors)."""
        try:
            data = parse_json(text)
        except TraceError as exc:
            raise TraceError(f"{source}: {exc}") from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | Path) -> None:
        """Write the canonical JSON to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace JSON file.

    Raises
    ------
    TraceError
        If the file is too large (:data:`~.limits.MAX_FILE_BYTES`), not UTF-8 JSON, or
        invalid.
    OSError
        If it cannot be read.
    """
    path = Path(path)
    text = read_user_text(path, limit=MAX_FILE_BYTES, encoding="utf-8", error=TraceError)
    return Trace.from_json(text, source=str(path))


def save_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` as canonical JSON (see :meth:`Trace.to_json`)."""
    trace.save(path)
