"""Vector and memory ops: row-wise :class:`Softmax` and :class:`LayerNorm`, element-wise
:class:`Gelu` and :class:`Add`, and the data movement :class:`Concat`. (The pools, which
share the convolutions' window, are in :mod:`.matrix`.)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from edgetron.errors import TraceError
from edgetron.workload.trace.limits import (
    BITS_RANGE,
    MAX_DIM,
    check_act,
    check_bool,
    check_int,
    check_ints,
    num_elements,
)
from edgetron.workload.trace.op import Op

__all__ = ["Add", "Concat", "Gelu", "LayerNorm", "Softmax"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Rows(Op):
    """Fields shared by row-wise ops: ``batch`` samples of ``rows`` rows of ``cols`` elements."""

    unit: ClassVar[str] = "vector"
    _REQUIRED: ClassVar[tuple[str, ...]] = ("batch", "rows", "cols")
    _RESHAPES: ClassVar[bool] = True

    batch: int
    rows: int
    cols: int

    def _validate_rows(self) -> None:
        for field in ("batch", "rows", "cols"):
            check_int(getattr(self, field), field)

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.batch, self.rows, self.cols),)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.batch, self.rows, self.cols)

    def describe(self) -> str:
        return f"{self.rows} rows x {self.cols}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Softmax(_Rows):
    """Softmax along each row of ``cols`` elements (one max, one sum, one reciprocal per row).

    Operand and output ``[batch, rows, cols]``; for attention ``rows = heads * tokens``.
    """

    kind: ClassVar[str] = "softmax"
    _FIELDS: ClassVar[tuple[str, ...]] = ("batch", "rows", "cols", "in_bits", "out_bits", "requant")

    def _validate(self) -> None:
        self._validate_rows()
        if self.requant == "channel":
            raise TraceError("requant: softmax has no per-channel scales; use 'tensor' or 'none'")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerNorm(_Rows):
    """Layer normalization of each row of ``cols`` features, then a per-feature affine.

    The scale gamma (``cols`` weights, ``weight_bits`` wide) is always present; the
    shift beta is an int32 bias when ``bias`` is true. Operand and output
    ``[batch, rows, cols]``.
    """

    kind: ClassVar[str] = "layernorm"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "batch", "rows", "cols", "in_bits", "weight_bits", "out_bits", "bias", "requant",
    )

    weight_bits: int = 8
    bias: bool = False

    def _validate(self) -> None:
        self._validate_rows()
        check_int(self.weight_bits, "weight_bits", *BITS_RANGE)
        check_bool(self.bias, "bias")

    @property
    def weight_count(self) -> int:
        return self.cols

    @property
    def bias_count(self) -> int:
        return self.cols if self.bias else 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Elementwise(Op):
    """Fields shared by element-wise ops: a ``shape`` (batch first) kept from input to output."""

    unit: ClassVar[str] = "vector"
    _REQUIRED: ClassVar[tuple[str, ...]] = ("shape",)
    _BATCH_FIELD: ClassVar[str] = "shape[0]"

    shape: tuple[int, ...]

    def _validate_shape(self) -> None:
        object.__setattr__(self, "shape", check_ints(self.shape, "shape", 2, 6))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    def describe(self) -> str:
        return "x".join(map(str, self.shape[1:]))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gelu(_Elementwise):
    """GELU of every element; operand and output have ``shape``."""

    kind: ClassVar[str] = "gelu"
    _FIELDS: ClassVar[tuple[str, ...]] = ("shape", "in_bits", "out_bits", "requant")

    def _validate(self) -> None:
        self._validate_shape()
        if self.requant == "channel":
            raise TraceError("requant: GELU has no per-channel scales; use 'tensor' or 'none'")

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.shape,)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Add(_Elementwise):
    """Element-wise sum of two operands of ``shape`` (residual), or of one and a constant.

    Parameters
    ----------
    shape : tuple of int
        Operand and output shape, batch first.
    weights : bool
        False (default): two activation inputs, each rescaled to a common scale before
        the sum. True: one activation input plus a learned constant of ``shape[1:]``
        (e.g. a position embedding), shared by the batch.
    weight_bits : int
        Width of the constant when ``weights`` is true.
    act : {"none", "relu", "relu6"}
        Activation clamp fused after the requantization (ResNet's ReLU after the sum).
    """

    kind: ClassVar[str] = "add"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "shape", "weights", "in_bits", "weight_bits", "out_bits", "requant", "act",
    )

    weights: bool = False
    weight_bits: int = 8
    act: str = "none"

    def _validate(self) -> None:
        self._validate_shape()
        check_bool(self.weights, "weights")
        check_int(self.weight_bits, "weight_bits", *BITS_RANGE)
        check_act(self)
        if self.requant == "channel":
            raise TraceError("requant: an add has no per-channel scales; use 'tensor' or 'none'")

    @property
    def arity(self) -> int:
        return 1 if self.weights else 2

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        return (self.shape,) * self.arity

    @property
    def weight_count(self) -> int:
        return num_elements(self.shape[1:]) if self.weights else 0

    def describe(self) -> str:
        return super().describe() + (" + const" if self.weights else "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Concat(Op):
    """Rows of the inputs stacked after ``const_rows`` learned rows (ViT's class token).

    Parameters
    ----------
    batch : int
        Samples.
    rows : tuple of int
        Rows each input contributes per sample, one entry per input.
    cols : int
        Columns (features) of every input and of the output.
    const_rows : int
        Learned constant rows placed first (default 0), ``const_rows * cols`` weights.
    weight_bits : int
        Width of the constant rows.

    Notes
    -----
    A data movement: ``requant`` must be ``none`` and ``out_bits`` equal ``in_bits``.
    Output ``[batch, const_rows + sum(rows), cols]``.
    """

    kind: ClassVar[str] = "concat"
    unit: ClassVar[str] = "memory"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "batch", "rows", "cols", "const_rows", "in_bits", "weight_bits", "out_bits", "requant",
    )
    _REQUIRED: ClassVar[tuple[str, ...]] = ("batch", "rows", "cols")
    _RESHAPES: ClassVar[bool] = True

    batch: int
    rows: tuple[int, ...]
    cols: int
    const_rows: int = 0
    weight_bits: int = 8
    requant: str = "none"

    def _validate(self) -> None:
        check_int(self.batch, "batch")
        object.__setattr__(self, "rows", check_ints(self.rows, "rows", 1, 64))
        check_int(self.cols, "cols")
        check_int(self.const_rows, "const_rows", 0, MAX_DIM)
        check_int(self.weight_bits, "weight_bits", *BITS_RANGE)
        if self.const_rows + sum(self.rows) > MAX_DIM:
            raise TraceError(
                f"rows: {self.const_rows + sum(self.rows)} output rows exceed {MAX_DIM}"
            )
        if self.requant != "none":
            raise TraceError("requant: a concat moves values unchanged; use 'none'")
        if self.out_bits != self.in_bits:
            raise TraceError(
                f"out_bits: a concat keeps its input width; expected {self.in_bits}, "
                f"got {self.out_bits}"
            )

    @property
    def arity(self) -> int:
        return len(self.rows)

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple((self.batch, r, self.cols) for r in self.rows)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.batch, self.const_rows + sum(self.rows), self.cols)

    @property
    def weight_count(self) -> int:
        return self.const_rows * self.cols

    def describe(self) -> str:
        parts = ([str(self.const_rows)] if self.const_rows else []) + [str(r) for r in self.rows]
        return f"{'+'.join(parts)} rows x {self.cols}"
