"""The trace: one description of a network that the simulator, the RTL compiler and reports consume.

A trace is a versioned JSON document (``{"format": "edgetron-trace", "version": 1, ...}``)
listing ops in execution order. Each op has a kind (``gemm``, ``conv2d``, ``dwconv2d``,
``maxpool``, ``avgpool``, ``softmax``, ``layernorm``, ``gelu``, ``add``, ``concat``), its
shapes (batch included), its operand and output widths in bits, where its wide internal
value is requantized, and the earlier ops that feed it. ``docs/trace-format.md`` describes
every field.

In Python a trace is a frozen :class:`Trace` of frozen op dataclasses, one class per kind
(:class:`Gemm`, :class:`Conv2d`, ...). Construction validates everything: each op checks
its own fields (types, ranges, derived output sizes, size limits) and the trace checks the
links between ops (inputs refer to earlier ops, operand shapes and widths agree with what
the producer makes, one batch size throughout). Every error is a :class:`TraceError` (a
``ValueError``) whose message names the op index, the op name and the field.

User files are data: JSON is parsed with duplicate keys, ``NaN`` and ``Infinity``
rejected, no more than :data:`MAX_FILE_BYTES` bytes are read (a larger file is refused),
and every dimension and tensor size bounded (:data:`MAX_DIM`, :data:`MAX_ELEMENTS`) before
anything is computed from it. Nothing is ever evaluated or unpickled.

Saving is canonical (fixed key order, one op per line, trailing newline), so
save -> load -> save reproduces the file byte for byte.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from edgetron.errors import TraceError
from edgetron.golden.intops import INT32_MAX, INT32_MIN, signed_bits
from edgetron.golden.quant import ACTIVATIONS

__all__ = [
    "ACC_BITS",
    "ACTIVATIONS",
    "BIAS_BITS",
    "FORMAT",
    "HEAD_LAYOUTS",
    "KINDS",
    "MAX_DESCRIPTION",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_NAME",
    "MAX_OPS",
    "REQUANT",
    "VERSION",
    "Add",
    "AvgPool",
    "Concat",
    "Conv2d",
    "DwConv2d",
    "Gelu",
    "Gemm",
    "GemmShape",
    "LayerNorm",
    "MaxPool",
    "Op",
    "Ref",
    "Softmax",
    "Trace",
    "TraceError",
    "load_trace",
    "save_trace",
]

#: Value of the document's ``format`` field.
FORMAT = "edgetron-trace"
#: The trace format version this code reads and writes.
VERSION = 1
#: Largest value of any single dimension (2**24).
MAX_DIM = 1 << 24
#: Largest number of elements in any one tensor (input, output or weights) of an op.
MAX_ELEMENTS = 10**10
#: Largest number of ops in a trace.
MAX_OPS = 100_000
#: Largest trace or CSV file read, in bytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Longest op or trace name, in characters.
MAX_NAME = 200
#: Longest trace description, in characters.
MAX_DESCRIPTION = 10_000
#: Width of the int32 accumulator of every matrix product in the builders, bits (the
#: default ``acc_bits``; INTEGER_KERNELS.md: int8 operands, int32 accumulation).
ACC_BITS = signed_bits(INT32_MIN, INT32_MAX)
#: Width of every bias value in bits (biases are int32 at the accumulator scale).
BIAS_BITS = ACC_BITS
#: Where an op's wide internal value becomes its ``out_bits``-wide output:
#: ``none`` = no rescaling (the output is the exact internal value, e.g. an int32
#: accumulator or a max of int8 values), ``tensor`` = one dyadic multiplier for the whole
#: output, ``channel`` = one dyadic multiplier per output channel (per-channel weights).
REQUANT = ("none", "tensor", "channel")
#: How the ``count`` products of an activation x activation gemm lie in an operand's (or
#: the output's) per-sample matrix: ``rows`` = product h is the h-th block of rows
#: (``[count * rows, cols]``, a row-major ``[count, rows, cols]``), ``cols`` = the h-th
#: block of columns (``[rows, count * cols]``: attention heads side by side in the
#: features).
HEAD_LAYOUTS = ("rows", "cols")
# The activations an op may fuse into its requantization (a clamp, the ``act`` field) are
# golden's :data:`~edgetron.golden.quant.ACTIVATIONS`, re-exported here.

_BITS_RANGE = (2, 32)
_ACC_BITS_RANGE = (8, 64)


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


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's limit on digits converted to text
        text = f"of {value.bit_length()} bits"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _check_int(value: Any, field: str, lo: int = 1, hi: int = MAX_DIM) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(f"{field}: expected an integer in [{lo}, {hi}], got {_show(value)}")
    if not lo <= value <= hi:
        shown = value if abs(value) < 10**40 else _show(value)
        raise TraceError(f"{field}: {shown} is out of range; allowed [{lo}, {hi}]")
    return value


def _check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise TraceError(f"{field}: expected true or false, got {_show(value)}")
    return value


def _check_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise TraceError(f"{field}: {value!r} is not one of {', '.join(choices)}")
    return value


def _check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TraceError(f"{field}: expected a non-empty string, got {_show(value)}")
    if len(value) > MAX_NAME or not value.isprintable():
        raise TraceError(
            f"{field}: expected at most {MAX_NAME} printable characters, got {_show(value)}"
        )
    return value


def _check_ints(value: Any, field: str, lo_len: int, hi_len: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not lo_len <= len(value) <= hi_len:
        raise TraceError(
            f"{field}: expected a list of {lo_len} to {hi_len} integers, got {_show(value)}"
        )
    return tuple(_check_int(v, f"{field}[{i}]") for i, v in enumerate(value))


def _elements(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _bytes(elements: int, bits: int) -> int:
    return (elements * bits + 7) // 8


def _conv_out(size: int, kernel: int, stride: int, pad: int, field: str) -> int:
    padded = size + pad
    if kernel > padded:
        raise TraceError(
            f"{field}: kernel size {kernel} exceeds the padded input size {padded}"
        )
    return (padded - kernel) // stride + 1


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
            _check_int(self.op, "op", 0, MAX_OPS - 1)
        for field in ("rows", "cols"):
            value = getattr(self, field)
            if value is None:
                continue
            if self.op is None:
                raise TraceError(f"{field}: external input cannot be sliced")
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise TraceError(f"{field}: expected [start, stop], got {_show(value)}")
            start = _check_int(value[0], f"{field}[0]", 0, MAX_DIM - 1)
            stop = _check_int(value[1], f"{field}[1]", 1, MAX_DIM)
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
                raise TraceError(f"op: expected an op index, got {_show(op)}")
            return cls(op, value.get("rows"), value.get("cols"))
        raise TraceError(
            f'expected "input", an op index or {{"op": i, "rows"/"cols": [start, stop]}}, '
            f"got {_show(value)}"
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
        _check_name(self.name, "name")
        if isinstance(self.inputs, (str, bytes)) or not isinstance(self.inputs, Sequence):
            raise TraceError(f"inputs: expected a list of operands, got {_show(self.inputs)}")
        _check_int(self.in_bits, "in_bits", *_BITS_RANGE)
        _check_int(self.out_bits, "out_bits", *_BITS_RANGE)
        _check_choice(self.requant, "requant", REQUANT)
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
            if _elements(shape) > MAX_ELEMENTS:
                raise TraceError(
                    f"{what}: {_elements(shape)} elements exceed the limit of "
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
        return _bytes(self.weight_count, getattr(self, "weight_bits", 0))

    @property
    def bias_bytes(self) -> int:
        """Bytes of biases, ``bias_count * BIAS_BITS / 8``."""
        return _bytes(self.bias_count, BIAS_BITS)

    @property
    def param_bytes(self) -> int:
        """``weight_bytes + bias_bytes``."""
        return self.weight_bytes + self.bias_bytes

    @property
    def in_elements(self) -> tuple[int, ...]:
        """Elements of each activation operand."""
        return tuple(_elements(s) for s in self.in_shapes)

    @property
    def out_elements(self) -> int:
        """Elements of the output."""
        return _elements(self.out_shape)

    @property
    def in_bytes(self) -> int:
        """Bytes of all activation operands together (each ``in_bits`` wide)."""
        return sum(_bytes(e, self.in_bits) for e in self.in_elements)

    @property
    def out_bytes(self) -> int:
        """Bytes of the output (``out_bits`` wide)."""
        return _bytes(self.out_elements, self.out_bits)

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


# ------------------------------------------------------------------------------------------
# Matrix products
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class Gemm(Op):
    """Matrix product ``(m x k) @ (k x n)``, ``count`` independent ones per sample.

    Parameters
    ----------
    batch : int
        Samples.
    count : int
        Independent products per sample (attention heads); default 1.
    m, k, n : int
        Rows of A (tokens), reduction length, columns of B (output features).
    weights : bool
        True: B is a constant weight matrix (``count * k * n`` elements, shared by the
        batch) and the op has one input, A. False: B is an activation too (attention
        scores, attention x V) and the op has two inputs, A then B.
    a_heads, b_heads, out_heads : {"rows", "cols"}
        Only for ``weights`` false (products of two activations): where product ``h``
        lies in operand A's, operand B's and the output's per-sample matrix (see
        :data:`HEAD_LAYOUTS`): ``rows`` (default) stacks the ``count`` matrices,
        ``cols`` places them side by side (attention heads as column blocks of a
        ``[tokens, heads * head_dim]`` token matrix). Default ``rows``.
    b_transposed : bool
        Only for ``weights`` false: B is stored as each product's ``n x k`` matrix and
        used transposed (``Q K^T`` reads K as ``[tokens, head_dim]``). Default false.
    weight_bits : int
        Width of B when it is a weight, bits.
    acc_bits : int
        Accumulator width, bits (8..64).
    bias : bool
        Whether an int32 bias (``count * n`` values) is added to the accumulator.
    act : {"none", "relu", "relu6"}
        Activation clamp fused after the requantization.
    scale : float
        Real factor applied to the product (e.g. ``1/sqrt(head_dim)`` for attention
        scores), folded into the multiplier of whichever requantization next rescales
        this value (this op's own, or the consumer's if ``requant`` is ``none``).

    Notes
    -----
    Operand A is ``[batch, m, k]`` (``[batch, count, m, k]`` if ``count > 1``), B (when an
    activation) ``[batch, k, n]`` / ``[batch, count, k, n]``, the output ``[batch, m, n]`` /
    ``[batch, count, m, n]``, all in the ``rows`` layout; ``cols`` and ``b_transposed``
    change the stored shapes (``in_shapes``, ``out_shape``) and :meth:`product_view`
    maps each back to its products. MACs ``batch * count * m * k * n``.
    """

    kind: ClassVar[str] = "gemm"
    unit: ClassVar[str] = "array"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "batch", "count", "m", "k", "n", "weights", "a_heads", "b_heads", "b_transposed",
        "out_heads", "in_bits", "weight_bits", "acc_bits", "out_bits", "bias", "requant",
        "act", "scale",
    )
    #: Fields that describe two activation operands: only written (and accepted) when
    #: ``weights`` is false.
    _LAYOUT_FIELDS: ClassVar[tuple[str, ...]] = ("a_heads", "b_heads", "b_transposed",
                                                 "out_heads")
    _REQUIRED: ClassVar[tuple[str, ...]] = ("batch", "m", "k", "n", "weights")
    _RESHAPES: ClassVar[bool] = True

    batch: int
    m: int
    k: int
    n: int
    weights: bool
    count: int = 1
    a_heads: str = "rows"
    b_heads: str = "rows"
    b_transposed: bool = False
    out_heads: str = "rows"
    weight_bits: int = 8
    acc_bits: int = ACC_BITS
    bias: bool = False
    act: str = "none"
    scale: float = 1.0

    def _validate(self) -> None:
        for field in ("batch", "count", "m", "k", "n"):
            _check_int(getattr(self, field), field)
        _check_bool(self.weights, "weights")
        for field in ("a_heads", "b_heads", "out_heads"):
            _check_choice(getattr(self, field), field, HEAD_LAYOUTS)
        _check_bool(self.b_transposed, "b_transposed")
        if self.weights:
            for field in self._LAYOUT_FIELDS:
                if getattr(self, field) != _GEMM_LAYOUT_DEFAULTS[field]:
                    raise TraceError(
                        f"{field}: {getattr(self, field)!r} is only for a product of two "
                        "activations (weights false); a gemm with weights has the "
                        "default layout"
                    )
        _check_int(self.weight_bits, "weight_bits", *_BITS_RANGE)
        _check_mac_options(self)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise TraceError(f"scale: expected a positive number, got {_show(self.scale)}")
        try:
            scale = float(self.scale)
        except OverflowError:  # an int beyond the float range
            raise TraceError(
                f"scale: expected a positive finite number, got {_show(self.scale)}, which "
                "exceeds the floating-point range"
            ) from None
        if not (math.isfinite(scale) and scale > 0):
            raise TraceError(f"scale: expected a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        if self.requant == "channel" and not self.weights:
            raise TraceError(
                "requant: 'channel' needs per-channel weights; a product of two "
                "activations is requantized per 'tensor'"
            )

    @property
    def arity(self) -> int:
        return 1 if self.weights else 2

    def _stored(self, layout: str, rows: int, cols: int) -> tuple[int, ...]:
        """Shape of ``count`` ``rows x cols`` matrices per sample stored in ``layout``."""
        if self.count == 1:
            return (self.batch, rows, cols)
        if layout == "cols":
            return (self.batch, rows, self.count * cols)
        return (self.batch, self.count, rows, cols)

    def _b_dims(self) -> tuple[int, int]:
        """Rows and columns of one product's B as stored (``n x k`` when transposed)."""
        return (self.n, self.k) if self.b_transposed else (self.k, self.n)

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        a = self._stored(self.a_heads, self.m, self.k)
        if self.weights:
            return (a,)
        return (a, self._stored(self.b_heads, *self._b_dims()))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self._stored(self.out_heads, self.m, self.n)

    def product_view(self, operand: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """How a stored operand holds the products: ``(shape, axes)``.

        ``x.reshape(shape).transpose(axes)`` of an operand ``x`` in its stored shape (an
        entry of ``in_shapes``, or ``out_shape``) is ``[batch, count, rows, cols]``, the
        ``count`` matrices of each sample: A's ``m x k``, B's ``k x n`` (transposed back
        when ``b_transposed``), the output's ``m x n``. For the output, the inverse
        permutation of ``axes`` then ``reshape(out_shape)`` stores the products.

        Parameters
        ----------
        operand : {"a", "b", "out"}
            ``"b"`` only when ``weights`` is false (weights are not an operand).

        Returns
        -------
        shape : tuple of 4 ints
        axes : tuple of 4 ints
            A permutation of ``(0, 1, 2, 3)``.

        Raises
        ------
        ValueError
            An unknown ``operand``, or ``"b"`` of a gemm with weights.
        """
        if operand == "a":
            layout, rows, cols, transposed = self.a_heads, self.m, self.k, False
        elif operand == "b" and not self.weights:
            layout, transposed = self.b_heads, self.b_transposed
            rows, cols = self._b_dims()
        elif operand == "out":
            layout, rows, cols, transposed = self.out_heads, self.m, self.n, False
        else:
            raise ValueError(
                f"operand must be 'a', 'b' (weights false) or 'out', got {operand!r}"
            )
        if layout == "cols":
            shape, axes = (self.batch, rows, self.count, cols), (0, 2, 1, 3)
        else:
            shape, axes = (self.batch, self.count, rows, cols), (0, 1, 2, 3)
        if transposed:
            axes = (*axes[:2], axes[3], axes[2])
        return shape, axes

    @property
    def macs(self) -> int:
        return self.batch * self.count * self.m * self.k * self.n

    @property
    def gemm(self) -> GemmShape:
        if self.weights:
            return GemmShape(self.count, self.batch * self.m, self.k, self.n, True)
        return GemmShape(self.batch * self.count, self.m, self.k, self.n, False)

    @property
    def weight_count(self) -> int:
        return self.count * self.k * self.n if self.weights else 0

    @property
    def bias_count(self) -> int:
        return self.count * self.n if self.bias else 0

    def describe(self) -> str:
        text = f"{self.m}x{self.k} @ {self.k}x{self.n}"
        if self.count > 1:
            text = f"{self.count} x {text}"
        return text if self.weights else text + " (act x act)"

    def _unused(self, field: str) -> str | None:
        if self.weights and field in self._LAYOUT_FIELDS:
            return "given for a gemm with weights; operand layouts describe two activations"
        return super()._unused(field)


#: Defaults of the gemm layout fields (a gemm with weights must keep them).
_GEMM_LAYOUT_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Gemm) if f.name in Gemm._LAYOUT_FIELDS
}


def _check_act(op: Any) -> None:
    _check_choice(op.act, "act", ACTIVATIONS)
    if op.act != "none" and op.requant == "none":
        raise TraceError(
            f"act: {op.act!r} is a clamp fused into the requantization, but requant is "
            "'none'; requantize ('tensor' or 'channel') or use act 'none'"
        )


def _check_mac_options(op: Any) -> None:
    _check_int(op.acc_bits, "acc_bits", *_ACC_BITS_RANGE)
    _check_bool(op.bias, "bias")
    _check_act(op)
    if op.requant == "none" and op.out_bits != op.acc_bits:
        raise TraceError(
            f"out_bits: {op.out_bits} needs a requantization; with requant 'none' the "
            f"output is the accumulator itself (out_bits = acc_bits = {op.acc_bits})"
        )
    if op.out_bits > op.acc_bits:
        raise TraceError(f"out_bits: {op.out_bits} exceeds acc_bits {op.acc_bits}")


# ------------------------------------------------------------------------------------------
# Sliding-window ops (NHWC feature maps)
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class _Window(Op):
    """Fields shared by convolutions and pools: an ``[n, h, w, c]`` input and an r x s window."""

    _BATCH_FIELD: ClassVar[str] = "n"
    _DERIVED_FIELDS: ClassVar[tuple[str, ...]] = ("out_h", "out_w")

    n: int
    h: int
    w: int
    c: int
    r: int
    s: int
    stride_h: int = 1
    stride_w: int = 1
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0

    def _validate_window(self) -> None:
        for field in ("n", "h", "w", "c", "r", "s", "stride_h", "stride_w"):
            _check_int(getattr(self, field), field)
        sides = (("pad_top", "r", "stride_h"), ("pad_bottom", "r", "stride_h"),
                 ("pad_left", "s", "stride_w"), ("pad_right", "s", "stride_w"))
        for field, kernel, stride in sides:
            # golden.conv's bound: a window never lies wholly in the padding, except the
            # partial last window a stride longer than the kernel leaves.
            limit = max(getattr(self, kernel), getattr(self, stride)) - 1
            _check_int(getattr(self, field), field, 0, limit)
        _conv_out(self.h, self.r, self.stride_h, self.pad_top + self.pad_bottom, "r")
        _conv_out(self.w, self.s, self.stride_w, self.pad_left + self.pad_right, "s")

    @property
    def out_h(self) -> int:
        """Output height, ``(h + pad_top + pad_bottom - r) // stride_h + 1``."""
        return (self.h + self.pad_top + self.pad_bottom - self.r) // self.stride_h + 1

    @property
    def out_w(self) -> int:
        """Output width, ``(w + pad_left + pad_right - s) // stride_w + 1``."""
        return (self.w + self.pad_left + self.pad_right - self.s) // self.stride_w + 1

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.n, self.h, self.w, self.c),)

    def _window_text(self, out_c: int, suffix: str = "") -> str:
        text = (
            f"{self.h}x{self.w}x{self.c} -> {self.out_h}x{self.out_w}x{out_c} "
            f"k{self.r}x{self.s}"
        )
        text += (
            f" s{self.stride_h}" if self.stride_h == self.stride_w
            else f" s{self.stride_h}x{self.stride_w}"
        )
        pads = (self.pad_top, self.pad_bottom, self.pad_left, self.pad_right)
        if len(set(pads)) == 1 and pads[0]:
            text += f" p{pads[0]}"
        elif any(pads):
            text += " p" + ",".join(map(str, pads))
        return text + suffix


_GEOMETRY = ("stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right")
_CONV_REQUIRED = ("n", "h", "w", "c", "k", "r", "s")
_MAC_OPTIONS = ("in_bits", "weight_bits", "acc_bits", "out_bits", "bias", "requant", "act")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Conv(_Window):
    """Fields shared by :class:`Conv2d` and :class:`DwConv2d`: filters, accumulator, bias.

    ``k`` output channels of ``weight_bits``-wide weights, an ``acc_bits`` accumulator, an
    optional int32 bias (one per output channel), per-channel requantization by default
    and a fused activation clamp.
    """

    unit: ClassVar[str] = "array"
    _REQUIRED: ClassVar[tuple[str, ...]] = _CONV_REQUIRED

    k: int
    weight_bits: int = 8
    acc_bits: int = ACC_BITS
    bias: bool = False
    act: str = "none"
    requant: str = "channel"

    def _validate_weights(self) -> None:
        _check_int(self.weight_bits, "weight_bits", *_BITS_RANGE)
        _check_mac_options(self)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n, self.out_h, self.out_w, self.k)

    @property
    def bias_count(self) -> int:
        return self.k if self.bias else 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Conv2d(_Conv):
    """2-D convolution (dense or grouped) on NHWC feature maps, weights ``[k, c/groups, r, s]``.

    Parameters
    ----------
    n, h, w, c : int
        Input batch, height, width, channels.
    k : int
        Output channels.
    r, s : int
        Kernel height and width.
    stride_h, stride_w : int
        Strides (default 1).
    pad_top, pad_bottom, pad_left, pad_right : int
        Zero padding per side (default 0); asymmetric padding covers TensorFlow's
        'SAME' and SCALE-Sim's implicit padding of a partial last window.
    groups : int
        Channel groups (default 1); must divide c and k. A convolution with one group
        per input channel is a :class:`DwConv2d`.
    weight_bits, acc_bits, bias, act :
        As for :class:`Gemm`.

    Notes
    -----
    Output ``[n, out_h, out_w, k]``; MACs ``n * out_h * out_w * k * (c/groups) * r * s``.
    """

    kind: ClassVar[str] = "conv2d"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        *_CONV_REQUIRED, *_GEOMETRY, "groups", "out_h", "out_w", *_MAC_OPTIONS,
    )

    groups: int = 1

    def _validate(self) -> None:
        self._validate_window()
        _check_int(self.k, "k")
        _check_int(self.groups, "groups")
        self._validate_weights()
        if self.c % self.groups or self.k % self.groups:
            raise TraceError(
                f"groups: {self.groups} must divide both c ({self.c}) and k ({self.k})"
            )
        if self.groups > 1 and self.groups == self.c:
            raise TraceError(
                f"groups: {self.groups} groups of one channel each is a depthwise "
                "convolution; use kind 'dwconv2d'"
            )

    @property
    def macs(self) -> int:
        return self.n * self.out_h * self.out_w * self.k * (self.c // self.groups) * self.r * self.s

    @property
    def gemm(self) -> GemmShape:
        return GemmShape(
            self.groups, self.n * self.out_h * self.out_w,
            (self.c // self.groups) * self.r * self.s, self.k // self.groups, True,
        )

    @property
    def weight_count(self) -> int:
        return self.k * (self.c // self.groups) * self.r * self.s

    def describe(self) -> str:
        return self._window_text(self.k, f" g{self.groups}" if self.groups > 1 else "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DwConv2d(_Conv):
    """Depthwise convolution: each input channel convolved with its own ``k/c`` filters.

    Fields as :class:`Conv2d` without ``groups`` (one group per input channel); ``k``
    must be a multiple of ``c`` (``k = c`` for the usual channel multiplier of 1).
    Weights ``[k, 1, r, s]``; MACs ``n * out_h * out_w * k * r * s``. On a systolic array
    each channel is its own ``(out_h*out_w) x (r*s) @ (r*s) x (k/c)`` product, which is
    why depthwise layers use so little of the array.
    """

    kind: ClassVar[str] = "dwconv2d"
    _FIELDS: ClassVar[tuple[str, ...]] = (
        *_CONV_REQUIRED, *_GEOMETRY, "out_h", "out_w", *_MAC_OPTIONS,
    )

    def _validate(self) -> None:
        self._validate_window()
        _check_int(self.k, "k")
        self._validate_weights()
        if self.k % self.c:
            raise TraceError(
                f"k: {self.k} output channels must be a multiple of the {self.c} input "
                "channels (channel multiplier)"
            )

    @property
    def multiplier(self) -> int:
        """Output channels per input channel, ``k // c``."""
        return self.k // self.c

    @property
    def macs(self) -> int:
        return self.n * self.out_h * self.out_w * self.k * self.r * self.s

    @property
    def gemm(self) -> GemmShape:
        return GemmShape(
            self.c, self.n * self.out_h * self.out_w, self.r * self.s, self.multiplier, True
        )

    @property
    def weight_count(self) -> int:
        return self.k * self.r * self.s

    def describe(self) -> str:
        return self._window_text(self.k, " dw")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Pool(_Window):
    """Fields shared by the pools: output ``[n, out_h, out_w, c]``, no weights."""

    unit: ClassVar[str] = "vector"
    _REQUIRED: ClassVar[tuple[str, ...]] = ("n", "h", "w", "c", "r", "s")
    _FIELDS: ClassVar[tuple[str, ...]] = (
        *_REQUIRED, *_GEOMETRY, "out_h", "out_w", "in_bits", "out_bits", "requant",
    )

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n, self.out_h, self.out_w, self.c)

    def describe(self) -> str:
        return self._window_text(self.c)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaxPool(_Pool):
    """Max pooling over r x s windows of an ``[n, h, w, c]`` map; output ``[n, out_h, out_w, c]``.

    A comparison, not arithmetic: ``requant`` must be ``none`` and ``out_bits`` equal
    ``in_bits``. Padding never wins a max.
    """

    kind: ClassVar[str] = "maxpool"

    requant: str = "none"

    def _validate(self) -> None:
        self._validate_window()
        if self.requant != "none":
            raise TraceError("requant: a max pool passes values through; use 'none'")
        if self.out_bits != self.in_bits:
            raise TraceError(
                f"out_bits: a max pool keeps its input width; expected {self.in_bits}, "
                f"got {self.out_bits}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class AvgPool(_Pool):
    """Average pooling over r x s windows (global average pooling when r x s = h x w).

    Sums each window in a wide accumulator; the division by ``r * s`` is folded into the
    requantization (``requant`` ``tensor``, the default).
    """

    kind: ClassVar[str] = "avgpool"

    def _validate(self) -> None:
        self._validate_window()
        if self.requant == "channel":
            raise TraceError("requant: an average pool has no per-channel scales; use 'tensor'")


# ------------------------------------------------------------------------------------------
# Vector (non-linear and element-wise) ops
# ------------------------------------------------------------------------------------------
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
            _check_int(getattr(self, field), field)

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
        _check_int(self.weight_bits, "weight_bits", *_BITS_RANGE)
        _check_bool(self.bias, "bias")

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
        object.__setattr__(self, "shape", _check_ints(self.shape, "shape", 2, 6))

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
        _check_bool(self.weights, "weights")
        _check_int(self.weight_bits, "weight_bits", *_BITS_RANGE)
        _check_act(self)
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
        return _elements(self.shape[1:]) if self.weights else 0

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
        _check_int(self.batch, "batch")
        object.__setattr__(self, "rows", _check_ints(self.rows, "rows", 1, 64))
        _check_int(self.cols, "cols")
        _check_int(self.const_rows, "const_rows", 0, MAX_DIM)
        _check_int(self.weight_bits, "weight_bits", *_BITS_RANGE)
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


def _append_op(ops: list[Op], model: str, cls: type[Op], **fields: Any) -> int:
    """Build a ``cls`` op from ``fields``, append it to ``ops``; returns its index.

    For the builders: a TraceError names ``model`` (e.g. ``vit-tiny (batch 2)``), the op's
    index and name, then the field.
    """
    try:
        op = cls(**fields)
    except TraceError as exc:
        raise TraceError(f"{model}: op {len(ops)} ({fields['name']!r}): {exc}") from None
    ops.append(op)
    return len(ops) - 1


#: Op classes by kind, in the order the docs list them.
KINDS: dict[str, type[Op]] = {
    cls.kind: cls
    for cls in (Gemm, Conv2d, DwConv2d, MaxPool, AvgPool, Softmax, LayerNorm, Gelu, Add, Concat)
}


# ------------------------------------------------------------------------------------------
# The trace
# ------------------------------------------------------------------------------------------
def _matrix_view(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return shape[0], _elements(shape[1:-1]), shape[-1]


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
    if _elements(want[1:-1]) == 1:
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
        _check_name(self.name, "name")
        _check_int(self.batch, "batch", 1, MAX_DIM)
        if not isinstance(self.description, str) or len(self.description) > MAX_DESCRIPTION:
            raise TraceError(
                f"description: expected a string of at most {MAX_DESCRIPTION} characters"
            )
        if isinstance(self.ops, (str, bytes, Mapping)) or not isinstance(self.ops, Sequence):
            raise TraceError(f"ops: expected a list of ops, got {_show(self.ops)}")
        if not 1 <= len(self.ops) <= MAX_OPS:
            raise TraceError(f"ops: expected 1 to {MAX_OPS} ops, got {len(self.ops)}")
        object.__setattr__(self, "ops", tuple(self.ops))
        for i, op in enumerate(self.ops):
            if not isinstance(op, Op):
                raise TraceError(f"op {i}: expected an op, got {_show(op)}")
            try:
                self._check_links(i, op)
            except TraceError as exc:
                raise TraceError(f"op {i} ({op.name!r}): {exc}") from None

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
            given = src.out_shape
            sliced = ref.rows is not None or ref.cols is not None
            if sliced:
                b, nrows, ncols = _matrix_view(given)
                r0, r1 = ref.rows or (0, nrows)
                c0, c1 = ref.cols or (0, ncols)
                if r1 > nrows:
                    raise TraceError(
                        f"inputs[{j}].rows: slice {r0}:{r1} exceeds the {nrows} rows of "
                        f"op {ref.op} ({src.name!r})"
                    )
                if c1 > ncols:
                    raise TraceError(
                        f"inputs[{j}].cols: slice {c0}:{c1} exceeds the {ncols} columns of "
                        f"op {ref.op} ({src.name!r})"
                    )
                given = (b, r1 - r0, c1 - c0)
            want = op.in_shapes[j]
            if op._RESHAPES:
                # Same batch and size here; which reshapes keep the meaning: below.
                same = given[0] == want[0] and _elements(given[1:]) == _elements(want[1:])
            elif sliced:
                # A slice is a per-sample matrix; compare with the operand's matrix view.
                same = given == _matrix_view(want)
            else:
                same = given == want
            if not same:
                raise TraceError(
                    f"inputs[{j}]: expects a {_fmt_shape(want)} operand "
                    f"({_elements(want[1:])} elements per sample) but op {ref.op} "
                    f"({src.name!r}){ref.slice_text()} provides {_fmt_shape(given)} "
                    f"({_elements(given[1:])} elements per sample)"
                )
            if op._RESHAPES and not _reshape_allowed(op, j, src, given, want):
                raise TraceError(
                    f"inputs[{j}]: expects a {_fmt_shape(want)} operand but op {ref.op} "
                    f"({src.name!r}){ref.slice_text()} provides {_fmt_shape(given)}: the same "
                    f"{_elements(want[1:])} elements per sample, but {want[-1]} features "
                    f"per row instead of {given[-1]} (a reshape keeps the last dimension)"
                )
            if src.out_bits != op.in_bits:
                raise TraceError(
                    f"in_bits: {op.in_bits} differs from the out_bits {src.out_bits} of its "
                    f"inputs[{j}], op {ref.op} ({src.name!r})"
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
            return cls._from_dict(data)
        except TraceError as exc:
            raise TraceError(f"{source}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> Trace:
        if not isinstance(data, Mapping):
            raise TraceError(f"expected a JSON object, got {_show(data)}")
        allowed = ("format", "version", "name", "batch", "description", "ops")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise TraceError(
                f"unknown key(s) {', '.join(unknown)}; allowed keys are {', '.join(allowed)}"
            )
        for key in ("format", "version", "name", "batch", "ops"):
            if key not in data:
                raise TraceError(f"{key}: missing")
        if data["format"] != FORMAT:
            raise TraceError(f"format: expected {FORMAT!r}, got {_show(data['format'])}")
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise TraceError(f"version: expected an integer, got {_show(version)}")
        if version != VERSION:
            raise TraceError(
                f"version: unsupported trace version {version}; this edgetron reads "
                f"version {VERSION}"
            )
        raw_ops = data["ops"]
        if not isinstance(raw_ops, list):
            raise TraceError(f"ops: expected a list, got {_show(raw_ops)}")
        if len(raw_ops) > MAX_OPS:
            raise TraceError(f"ops: {len(raw_ops)} ops exceed the limit of {MAX_OPS}")
        ops = [_op_from_dict(i, d) for i, d in enumerate(raw_ops)]
        return cls(
            name=data["name"], batch=data["batch"], ops=tuple(ops),
            description=data.get("description", ""),
        )

    @classmethod
    def from_json(cls, text: str, *, source: str = "trace") -> Trace:
        """Parse and validate JSON text (duplicate keys, NaN and Infinity are errors)."""
        try:
            data = json.loads(text, object_pairs_hook=_mark_duplicates,
                              parse_constant=_no_constant)
            _check_duplicates(data)
        except TraceError as exc:
            raise TraceError(f"{source}: {exc}") from None
        except RecursionError:
            raise TraceError(f"{source}: not valid JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
            raise TraceError(f"{source}: not valid JSON: {exc}") from None
        return cls.from_dict(data, source=source)

    def save(self, path: str | Path) -> None:
        """Write the canonical JSON to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")


class _Duplicates(dict):
    """A parsed JSON object that repeats a key (``repeated``, the first one repeated)."""

    repeated: str


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The JSON object of ``pairs``, a :class:`_Duplicates` if a key repeats.

    Marked rather than raised at once: the parser does not say where the object is, and
    :func:`_check_duplicates` names the op that holds it.
    """
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    marked = _Duplicates(d)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.repeated = key
            break
        seen.add(key)
    return marked


def _repeated_key(value: Any) -> str | None:
    """The repeated key of some JSON object within ``value``, or None.

    Iterative: a document may nest deeper than Python's recursion limit.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Duplicates):
            return item.repeated
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _check_duplicates(data: Any) -> None:
    """Raise TraceError for a repeated key, naming the op (index and name) that holds it."""
    ops = data.get("ops") if isinstance(data, dict) else None
    for i, op in enumerate(ops if isinstance(ops, list) else ()):
        key = _repeated_key(op)
        if key is not None:
            raise TraceError(f"{_op_where(i, op)}: duplicate key {key!r}")
    key = _repeated_key(data)
    if key is not None:
        raise TraceError(f"duplicate key {key!r}")


def _no_constant(name: str) -> Any:
    raise TraceError(f"not valid JSON: {name} is not a number")


def _op_where(i: int, d: Any) -> str:
    """``op i ('name')`` for messages about the JSON op ``d`` (``op i`` without a name)."""
    name = d.get("name") if isinstance(d, Mapping) else None
    return f"op {i} ({name!r})" if isinstance(name, str) else f"op {i}"


def _op_from_dict(i: int, d: Any) -> Op:
    if not isinstance(d, Mapping):
        raise TraceError(f"op {i}: expected a JSON object, got {_show(d)}")
    where = _op_where(i, d)
    try:
        if "kind" not in d:
            raise TraceError("kind: missing")
        kind = d["kind"]
        if not isinstance(kind, str) or kind not in KINDS:
            raise TraceError(f"kind: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
        cls = KINDS[kind]
        allowed = ("id", "name", "kind", "inputs", *cls._FIELDS)
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise TraceError(
                f"{unknown[0]}: unknown field for kind {kind!r}; allowed fields are "
                f"{', '.join(allowed)}"
            )
        for key in ("id", "name", "inputs", *cls._REQUIRED):
            if key not in d:
                raise TraceError(f"{key}: missing (required for kind {kind!r})")
        if type(d["id"]) is not int or d["id"] != i:
            raise TraceError(
                f"id: expected {i} (the op's position in the list), got {_show(d['id'])}"
            )
        if not isinstance(d["inputs"], list):
            raise TraceError(f"inputs: expected a list, got {_show(d['inputs'])}")
        kwargs = {
            k: d[k] for k in cls._FIELDS if k in d and k not in cls._DERIVED_FIELDS
        }
        op = cls(name=d["name"], inputs=tuple(d["inputs"]), **kwargs)
        for key in cls._DERIVED_FIELDS:
            if key in d and _check_int(d[key], key) != getattr(op, key):
                raise TraceError(
                    f"{key}: {_show(d[key])} does not match the value {getattr(op, key)} "
                    "derived from the other fields"
                )
        for key in cls._FIELDS:
            reason = op._unused(key) if key in d else None
            if reason:
                raise TraceError(f"{key}: {reason}")
    except TraceError as exc:
        raise TraceError(f"{where}: {exc}") from None
    return op


def _read_user_text(path: Path, *, limit: int, encoding: str, error: type[TraceError]) -> str:
    """The text of a user file (trace or CSV), refused when larger than ``limit`` bytes.

    At most ``limit + 1`` bytes are read, whatever size the file system reports (pipes,
    ``/proc`` files and files still growing report none or too little). Raises ``error``
    naming ``path`` for a file that is too large or not UTF-8 text (``encoding`` is
    ``utf-8`` or ``utf-8-sig``), and OSError if it cannot be read.
    """
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise error(f"{path}: the file exceeds the limit of {limit} bytes")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text: {exc}") from None


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace JSON file.

    Raises
    ------
    TraceError
        If the file is too large (:data:`MAX_FILE_BYTES`), not UTF-8 JSON, or invalid.
    OSError
        If it cannot be read.
    """
    path = Path(path)
    text = _read_user_text(path, limit=MAX_FILE_BYTES, encoding="utf-8", error=TraceError)
    return Trace.from_json(text, source=str(path))


def save_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` as canonical JSON (see :meth:`Trace.to_json`)."""
    trace.save(path)
