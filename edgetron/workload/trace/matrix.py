"""Matrix ops and their windows: the matrix product :class:`Gemm`, the convolutions
:class:`Conv2d` and :class:`DwConv2d`, and the pools :class:`MaxPool` and
:class:`AvgPool`, which share the convolutions' sliding window over an NHWC feature map
(:class:`_Window`) but run on the vector unit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from edgetron.errors import TraceError
from edgetron.workload.trace.limits import (
    ACC_BITS,
    BITS_RANGE,
    HEAD_LAYOUTS,
    check_bool,
    check_choice,
    check_int,
    check_mac_options,
    conv_out,
    show_value,
)
from edgetron.workload.trace.op import GemmShape, Op

__all__ = ["AvgPool", "Conv2d", "DwConv2d", "Gemm", "MaxPool"]


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
            check_int(getattr(self, field), field)
        check_bool(self.weights, "weights")
        for field in ("a_heads", "b_heads", "out_heads"):
            check_choice(getattr(self, field), field, HEAD_LAYOUTS)
        check_bool(self.b_transposed, "b_transposed")
        if self.weights:
            for field in self._LAYOUT_FIELDS:
                if getattr(self, field) != _GEMM_LAYOUT_DEFAULTS[field]:
                    raise TraceError(
                        f"{field}: {getattr(self, field)!r} is only for a product of two "
                        "activations (weights false); a gemm with weights has the "
                        "default layout"
                    )
        check_int(self.weight_bits, "weight_bits", *BITS_RANGE)
        check_mac_options(self)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise TraceError(f"scale: expected a positive number, got {show_value(self.scale)}")
        try:
            scale = float(self.scale)
        except OverflowError:  # an int beyond the float range
            raise TraceError(
                f"scale: expected a positive finite number, got {show_value(self.scale)}, which "
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
            check_int(getattr(self, field), field)
        sides = (("pad_top", "r", "stride_h"), ("pad_bottom", "r", "stride_h"),
                 ("pad_left", "s", "stride_w"), ("pad_right", "s", "stride_w"))
        for field, kernel, stride in sides:
            # golden.conv's bound: a window never lies wholly in the padding, except the
            # partial last window a stride longer than the kernel leaves.
            limit = max(getattr(self, kernel), getattr(self, stride)) - 1
            check_int(getattr(self, field), field, 0, limit)
        conv_out(self.h, self.r, self.stride_h, self.pad_top + self.pad_bottom, "r")
        conv_out(self.w, self.s, self.stride_w, self.pad_left + self.pad_right, "s")

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
        check_int(self.weight_bits, "weight_bits", *BITS_RANGE)
        check_mac_options(self)

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
        check_int(self.k, "k")
        check_int(self.groups, "groups")
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
        check_int(self.k, "k")
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
