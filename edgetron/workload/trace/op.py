"""The op base: an op's inputs (:class:`Ref`), the fields and derived sizes common to every
kind (:class:`Op`), and its view as matrix products (:class:`GemmShape`).

An op validates itself on construction: the common fields here, then the kind's own
fields (``_validate``), the number of operands, and the size of every tensor against
:data:`~.limits.MAX_ELEMENTS` before anything is computed from it. The kinds are in
:mod:`.matrix` and :mod:`.vector`, the registry of kinds in :mod:`.kinds`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from edgetron.errors import TraceError
from edgetron.workload.trace.limits import (
    BIAS_BITS,
    BITS_RANGE,
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_OPS,
    REQUANT,
    check_choice,
    check_int,
    check_name,
    num_bytes,
    num_elements,
    op_label,
    show_value,
)

__all__ = ["GemmShape", "Op", "Ref", "append_op"]


class GemmShape(NamedTuple):
    """How an op maps onto a matrix unit: ``count`` independent ``(m x k) @ (k x n)`` products.

    The batch is already folded in: weights shared across the batch go into ``m``
    (weight-stationary reuse), products whose both operands are activations are counted
    per sample in ``count``.

    Attributes
    ----------
    count : int
        Number of independent products (heads x batch for attention, groups for
        grouped or depthwise convolutions, 1 otherwise).
    m, k, n : int
        Rows of A, reduction length, columns of B.
    b_const : bool
        True if B is a constant weight matrix (loaded from memory, reusable);
        False if both A and B are activations produced at run time (attention).
    """

    count: int
    m: int
    k: int
    n: int
    b_const: bool

    @property
    def macs(self) -> int:
        """Multiply-accumulates, ``count * m * k * n``."""
        return self.count * self.m * self.k * self.n


@dataclasses.dataclass(frozen=True)
class Ref:
    """One input of an op: an earlier op's output (optionally a slice of it) or external data.

    Parameters
    ----------
    op : int or None
        Index of the producing op, which must come earlier in the trace; None for data
        from outside the trace (the network input, or a layer imported without
        dependency information). External data has no shape to check against.
    rows, cols : (int, int) or None
        Half-open slice ``[start, stop)`` of the producer's output seen, per sample, as
        a matrix of ``prod(shape[1:-1])`` rows by ``shape[-1]`` columns. ``cols`` picks
        e.g. Q, K or V out of a fused QKV projection, ``rows`` the class token.
    """

    op: int | None = None
    rows: tuple[int, int] | None = None
    cols: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.op is not None:
            check_int(self.op, "op", 0, MAX_OPS - 1)
        for field in ("rows", "cols"):
            value = getattr(self, field)
            if value is None:
                continue
            if self.op is None:
                raise TraceError(f"{field}: external input cannot be sliced")
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise TraceError(f"{field}: expected [start, stop], got {show_value(value)}")
            start = check_int(value[0], f"{field}[0]", 0, MAX_DIM - 1)
            stop = check_int(value[1], f"{field}[1]", 1, MAX_DIM)
            if start >= stop:
                raise TraceError(f"{field}: empty slice {start}:{stop}; need start < stop")
            object.__setattr__(self, field, (start, stop))

    @classmethod
    def coerce(cls, value: Any) -> Ref:
        """A Ref from its JSON form: ``"input"``, an op index, or ``{"op", "rows", "cols"}``."""
        if isinstance(value, Ref):
            return value
        if value == "input":
            return cls(None)
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"op", "rows", "cols"})
            if unknown:
                raise TraceError(
                    f"unknown key(s) {', '.join(map(str, unknown))}; allowed op, rows, cols"
                )
            if "op" not in value:
                raise TraceError("a sliced input needs the key 'op'")
            op = value["op"]
            if isinstance(op, bool) or not isinstance(op, int):
                raise TraceError(f"op: expected an op index, got {show_value(op)}")
            return cls(op, value.get("rows"), value.get("cols"))
        raise TraceError(
            f'expected "input", an op index or {{"op": i, "rows"/"cols": [start, stop]}}, '
            f"got {show_value(value)}"
        )

    def to_json(self) -> Any:
        """The JSON form (see :meth:`coerce`)."""
        if self.op is None:
            return "input"
        if self.rows is None and self.cols is None:
            return self.op
        d: dict[str, Any] = {"op": self.op}
        if self.rows is not None:
            d["rows"] = list(self.rows)
        if self.cols is not None:
            d["cols"] = list(self.cols)
        return d

    def slice_text(self) -> str:
        """The slice as text, e.g. `` cols 0:192`` (empty when the whole output is used)."""
        text = ""
        if self.rows is not None:
            text += f" rows {self.rows[0]}:{self.rows[1]}"
        if self.cols is not None:
            text += f" cols {self.cols[0]}:{self.cols[1]}"
        return text


@dataclasses.dataclass(frozen=True, kw_only=True)
class Op(abc.ABC):
    """Fields and derived quantities common to every op kind (abstract).

    Parameters
    ----------
    name : str
        Label used in reports (need not be unique).
    inputs : tuple of Ref
        Activation operands, in the order the kind defines; ints and ``"input"`` are
        accepted and converted.
    in_bits : int
        Width of every activation operand, bits (2..32). Must equal the ``out_bits`` of
        each producing op.
    out_bits : int
        Width of the output elements, bits (2..32).
    requant : {"none", "tensor", "channel"}
        Where the op's wide internal value is rescaled to ``out_bits`` (see
        :data:`REQUANT`); always at the op's output, after bias and before the fused
        activation clamp and the final saturation.
    """

    kind: ClassVar[str]
    #: The hardware unit the op naturally runs on: "array", "vector" or "memory".
    unit: ClassVar[str]
    #: JSON fields after id, name, kind and inputs, in canonical order.
    _FIELDS: ClassVar[tuple[str, ...]]
    #: The fields of ``_FIELDS`` a JSON op must give (the others have defaults).
    _REQUIRED: ClassVar[tuple[str, ...]]
    #: Derived fields written to JSON for readers; checked (not required) when loading.
    _DERIVED_FIELDS: ClassVar[tuple[str, ...]] = ()
    #: Whether an operand may be any same-size reshaping of what its producer makes.
    _RESHAPES: ClassVar[bool] = False
    #: The field that holds the batch size, for messages.
    _BATCH_FIELD: ClassVar[str] = "batch"

    name: str
    inputs: tuple[Ref, ...]
    in_bits: int = 8
    out_bits: int = 8
    requant: str = "tensor"

    def __post_init__(self) -> None:
        check_name(self.name, "name")
        if isinstance(self.inputs, (str, bytes)) or not isinstance(self.inputs, Sequence):
            raise TraceError(f"inputs: expected a list of operands, got {show_value(self.inputs)}")
        check_int(self.in_bits, "in_bits", *BITS_RANGE)
        check_int(self.out_bits, "out_bits", *BITS_RANGE)
        check_choice(self.requant, "requant", REQUANT)
        self._validate()
        # The number of operands first (the kind's fields fix it), then each operand.
        arity = self.arity
        if len(self.inputs) != arity:
            raise TraceError(
                f"inputs: a {self.kind} op with these fields takes {arity} operand(s), "
                f"got {len(self.inputs)}"
            )
        refs = []
        for j, value in enumerate(self.inputs):
            try:
                refs.append(Ref.coerce(value))
            except TraceError as exc:
                raise TraceError(f"inputs[{j}]: {exc}") from None
        object.__setattr__(self, "inputs", tuple(refs))
        tensors = [(f"inputs[{j}]", s) for j, s in enumerate(self.in_shapes)]
        tensors.append(("output", self.out_shape))
        for what, shape in tensors:
            if num_elements(shape) > MAX_ELEMENTS:
                raise TraceError(
                    f"{what}: {num_elements(shape)} elements exceed the limit of "
                    f"{MAX_ELEMENTS} per tensor"
                )
        if self.weight_count > MAX_ELEMENTS:
            raise TraceError(
                f"weights: {self.weight_count} elements exceed the limit of "
                f"{MAX_ELEMENTS} per tensor"
            )

    @abc.abstractmethod
    def _validate(self) -> None:
        """Check the kind's own fields (raise TraceError naming the field)."""

    @property
    @abc.abstractmethod
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shape of each activation operand, batch first, in the order of ``inputs``."""

    @property
    @abc.abstractmethod
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the output, batch first."""

    @property
    def arity(self) -> int:
        """Number of activation operands the op takes."""
        return 1

    # ---- derived quantities (units in the names: counts are elements, bytes are bytes) ----
    @property
    def macs(self) -> int:
        """Multiply-accumulates (0 for ops that are not matrix products)."""
        return 0

    @property
    def gemm(self) -> GemmShape | None:
        """The matrix-product view for the array, or None for vector and memory ops."""
        return None

    @property
    def weight_count(self) -> int:
        """Constant (learned) elements of width ``weight_bits`` the op reads."""
        return 0

    @property
    def bias_count(self) -> int:
        """Constant int32 bias elements (width :data:`BIAS_BITS`) the op reads."""
        return 0

    @property
    def params(self) -> int:
        """``weight_count + bias_count``."""
        return self.weight_count + self.bias_count

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights, ``ceil(weight_count * weight_bits / 8)``."""
        return num_bytes(self.weight_count, getattr(self, "weight_bits", 0))

    @property
    def bias_bytes(self) -> int:
        """Bytes of biases, ``bias_count * BIAS_BITS / 8``."""
        return num_bytes(self.bias_count, BIAS_BITS)

    @property
    def param_bytes(self) -> int:
        """``weight_bytes + bias_bytes``."""
        return self.weight_bytes + self.bias_bytes

    @property
    def in_elements(self) -> tuple[int, ...]:
        """Elements of each activation operand."""
        return tuple(num_elements(s) for s in self.in_shapes)

    @property
    def out_elements(self) -> int:
        """Elements of the output."""
        return num_elements(self.out_shape)

    @property
    def in_bytes(self) -> int:
        """Bytes of all activation operands together (each ``in_bits`` wide)."""
        return sum(num_bytes(e, self.in_bits) for e in self.in_elements)

    @property
    def out_bytes(self) -> int:
        """Bytes of the output (``out_bits`` wide)."""
        return num_bytes(self.out_elements, self.out_bits)

    @abc.abstractmethod
    def describe(self) -> str:
        """Compact per-sample shape text for tables, e.g. ``197x192 @ 192x576``."""

    # ---- JSON ----
    def to_dict(self, index: int) -> dict[str, Any]:
        """The op's JSON object in canonical key order (``index`` is its position)."""
        d: dict[str, Any] = {
            "id": index,
            "name": self.name,
            "kind": self.kind,
            "inputs": [r.to_json() for r in self.inputs],
        }
        for field in self._FIELDS:
            if self._unused(field):
                continue
            value = getattr(self, field)
            d[field] = list(value) if isinstance(value, tuple) else value
        return d

    def _unused(self, field: str) -> str | None:
        """Why ``field`` does not apply to this op, or None if it does.

        A field that does not apply is not written to JSON and is an error when given.
        """
        if field == "weight_bits" and self.weight_count == 0:
            return "given for an op without weights"
        return None



def append_op(ops: list[Op], model: str, cls: type[Op], **fields: Any) -> int:
    """Build a ``cls`` op from ``fields``, append it to ``ops``; returns its index.

    For the builders: a TraceError names ``model`` (e.g. ``vit-tiny (batch 2)``), the op's
    index and name, then the field.
    """
    try:
        op = cls(**fields)
    except TraceError as exc:
        raise TraceError(f"{model}: {op_label(len(ops), fields['name'])}: {exc}") from None
    ops.append(op)
    return len(ops) - 1

