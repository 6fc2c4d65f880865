"""int8 2-D convolution (stride, padding, groups, depthwise) and integer pooling.

This is the specification of the convolution mapping (``sim/conv.py``,
``rtl/conv.py``) and of the CNN blocks in ``golden/models.py``. Layout is NCHW
for activations and (K, C/groups, R, S) for weights, as in PyTorch, so that
float reference weights can be used unchanged.

Widths
------
``x``: int8 (N, C, H, W); ``w``: int8 (K, C/groups, R, S); ``bias``: int32 (K,);
accumulator: int32. One output sums ``C/groups * R * S`` int8 x int8 products,
each of magnitude at most ``2**14``, plus the bias; shapes and biases for which
``C/groups * R * S * 2**14 + max|bias|`` could exceed ``2**31 - 1`` are rejected
(:func:`edgetron.golden.gemm.check_accumulator`), never wrapped.

Padding
-------
Every function with a ``padding`` argument (the convolutions and the windowed
pools) takes it as an int (all four sides), a pair ``(ph, pw)``
(``ph`` zeros above and below, ``pw`` left and right) or four ints ``(top,
bottom, left, right)``: asymmetric padding, as TensorFlow's ``SAME`` on even
sizes and SCALE-Sim's partial last window produce (the trace's ``pad_top``,
``pad_bottom``, ``pad_left``, ``pad_right``). The output height is
``(H + top + bottom - R) // sh + 1`` (only whole windows), likewise the width.
Each side is at most ``max(R, sh) - 1`` (``max(S, sw) - 1`` left and right):
"same" and "full" padding need at most ``R - 1``, SCALE-Sim's partial last
window at most ``sh - 1``; larger padding only adds windows that see little
or no input, and is rejected (:func:`conv2d_out_size`) before any padded
array is allocated. The windowed pools allow at most half the kernel.

Max pooling keeps the input scale and ignores padding (a padded element never
wins). Average pooling sums each window (zeros for padding, and ``n = R * S``
always: PyTorch's ``count_include_pad=True``) and requantizes the sum with the
dyadic requantizer, ``y = saturate_int8((sum * mult + 2**(shift-1)) >> shift)``,
where ``mult / 2**shift`` is the dyadic of ``S_x / (n * S_y)`` (:func:`avgpool_constants`;
by default ``S_y = S_x``, i.e. ``1 / n``). No divider is needed. With
``S_y = S_x`` this equals the exact ``floor(sum / n + 1/2)`` for every sum when
``n`` is odd or a power of two (the dyadic error, below ``128 / (2**31 - 1)``,
is smaller than the ``1 / (2 n)`` distance from ``sum / n`` to a rounding tie,
for ``n < (2**31 - 1) / 256``); for other even ``n`` it differs only at exact
ties ``sum / n = k + 1/2``, which then round the way the dyadic error points.
The sum of ``n`` int8 values needs ``8 + ceil(log2 n)`` bits; windows whose sum
could leave int32 are rejected.

Speed
-----
The convolution is an exact im2col GEMM in floating-point BLAS, float32 when
the reduction length ``C/groups * R * S`` is at most 1024 and float64 otherwise
(:func:`edgetron.golden.gemm.exact_float_dtype`): every product and partial
sum is then an integer the float type represents exactly, so no rounding can
occur and the result is bit exact.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .dyadic import dyadic, exact_ratio
from .gemm import channel_vector, check_accumulator, check_bias, exact_float_dtype
from .intops import INT8_MAX, INT8_MIN, INT32_MAX, as_int64, check_range, requantize

__all__ = [
    "avgpool2d",
    "avgpool_constants",
    "conv2d_int",
    "conv2d_out_size",
    "conv2d_requant",
    "global_avgpool2d",
    "maxpool2d",
]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pair(value, name: str, lo: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``lo``, as a pair (height, width)."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    return pair


def _int8_nchw(x, name: str) -> np.ndarray:
    v = as_int64(x, name)
    if v.ndim != 4:
        raise ValueError(f"{name} must be 4-D, got shape {v.shape}")
    check_range(v, INT8_MIN, INT8_MAX, name)
    return v


def _padding(value) -> tuple[int, int, int, int]:
    """``padding`` (int, ``(ph, pw)`` or ``(top, bottom, left, right)``) as four sides."""
    if _is_int(value):
        sides = (int(value),) * 4
    elif (isinstance(value, (tuple, list)) and len(value) in (2, 4)
          and all(_is_int(v) for v in value)):
        v = [int(p) for p in value]
        sides = (v[0], v[0], v[1], v[1]) if len(v) == 2 else (v[0], v[1], v[2], v[3])
    else:
        raise TypeError(
            f"padding must be an int or a pair of ints (ph, pw), or four ints (top, bottom, "
            f"left, right); got {value!r}"
        )
    if min(sides) < 0:
        raise ValueError(f"padding must be >= 0, got {value!r}")
    return sides


def _padding_text(pad: tuple[int, int, int, int]) -> str:
    """``(ph, pw)`` for symmetric padding, ``(top, bottom, left, right) = (...)`` otherwise."""
    top, bottom, left, right = pad
    if top == bottom and left == right:
        return f"({top}, {left})"
    return f"(top, bottom, left, right) = {pad}"


def conv2d_out_size(size: int, kernel: int, stride: int, pad, what: str = "height") -> int:
    """Output length ``(size + before + after - kernel) // stride + 1`` of one spatial axis.

    Parameters
    ----------
    size, kernel, stride : int
        Input length (``>= 0``), kernel length (``>= 1``) and stride (``>= 1``)
        of the axis.
    pad : int or (before, after)
        Zeros on both sides (an int), or on each side (top and bottom, or left
        and right); each side in ``[0, max(kernel, stride) - 1]`` (module
        docstring).
    what : str
        The axis, for the message.

    Returns
    -------
    int
        The number of whole windows, ``>= 1``.

    Raises
    ------
    TypeError
        A size, kernel, stride or padding that is not an integer.
    ValueError
        A value below its minimum, padding beyond ``max(kernel, stride) - 1``
        on a side, or a kernel that does not fit the padded input.
    """
    for value, label, lo in ((size, "size", 0), (kernel, "kernel", 1), (stride, "stride", 1)):
        if not _is_int(value):
            raise TypeError(f"{label} ({what}) must be an integer, got {value!r}")
        if value < lo:
            raise ValueError(f"{label} ({what}) must be >= {lo}, got {value}")
    if _is_int(pad):
        before = after = int(pad)
    elif isinstance(pad, (tuple, list)) and len(pad) == 2 and all(_is_int(v) for v in pad):
        before, after = int(pad[0]), int(pad[1])
    else:
        raise TypeError(f"padding ({what}) must be an int or a pair of ints, got {pad!r}")
    limit = max(kernel, stride) - 1
    if min(before, after) < 0 or max(before, after) > limit:
        raise ValueError(
            f"padding {what} ({before}, {after}) must lie in [0, {limit}] on each side: "
            f"at most max(kernel {what} {kernel}, stride {stride}) - 1"
        )
    padded = size + before + after
    if padded < kernel:
        shown = f"2*{before}" if before == after else f"{before} + {after}"
        raise ValueError(
            f"kernel {what} {kernel} exceeds the padded input {what} {padded} "
            f"({size} + {shown})"
        )
    return (padded - kernel) // stride + 1


def conv2d_int(x, w, bias=None, stride=1, padding=0, groups: int = 1) -> np.ndarray:
    """2-D convolution of int8 tensors with int32 accumulation.

    ``y[n, k, i, j] = bias[k] + sum_{c, r, s} x_pad[n, g*Cg + c, i*sh + r, j*sw + s]
    * w[k, c, r, s]`` with ``g = k // (K / groups)`` and ``Cg = C / groups``
    (cross-correlation, as every framework computes "convolution").

    Parameters
    ----------
    x : array of int8 values, shape (N, C, H, W)
    w : array of int8 values, shape (K, C/groups, R, S)
    bias : array of int32 values, shape (K,), optional
    stride : int or (sh, sw), each >= 1
    padding : int, (ph, pw) or (top, bottom, left, right), each >= 0
        Zeros around the input: on all sides, on both sides of each axis, or per
        side; each side at most ``max(R, sh) - 1`` (top, bottom) or
        ``max(S, sw) - 1`` (left, right).
    groups : int >= 1 dividing C and K; ``groups == C`` with ``K = C * mult``
        is the depthwise convolution (channel multiplier ``mult``).

    Returns
    -------
    numpy.ndarray of int64, shape (N, K, Ho, Wo), values in the int32 range;
    ``Ho = (H + top + bottom - R) // sh + 1`` and likewise ``Wo``.

    Raises
    ------
    TypeError
        Non-integer tensors, or stride/padding/groups not integers.
    ValueError
        Wrong ranks, values outside int8/int32, channels not divisible by
        ``groups``, weights whose C/groups does not match ``x``, a kernel larger
        than the padded input, stride < 1, padding < 0 or beyond
        ``max(kernel, stride) - 1`` on a side, or a reduction length
        ``C/groups * R * S`` (with this bias) that could overflow int32.
    """
    vx = _int8_nchw(x, "x")
    vw = _int8_nchw(w, "w")
    sh, sw = _pair(stride, "stride", 1)
    pt, pb, pl, pr = _padding(padding)
    if not _is_int(groups):
        raise TypeError(f"groups must be an integer, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    n, c, h, wd = vx.shape
    k, cg, r, s = vw.shape
    if c % groups:
        raise ValueError(f"input channels C={c} are not divisible by groups={groups}")
    if k % groups:
        raise ValueError(f"output channels K={k} are not divisible by groups={groups}")
    if cg != c // groups:
        raise ValueError(
            f"shape mismatch: w has {cg} input channels per group but x has C={c} with "
            f"groups={groups} (expected {c // groups})"
        )
    if r < 1 or s < 1:
        raise ValueError(f"kernel size must be at least 1x1, got {r}x{s}")
    vb, max_bias = (None, 0) if bias is None else check_bias(bias, k)
    check_accumulator(cg * r * s, max_bias)
    ho = conv2d_out_size(h, r, sh, (pt, pb), "height")
    wo = conv2d_out_size(wd, s, sw, (pl, pr), "width")

    dtype = exact_float_dtype(cg * r * s)  # exact: see the module docstring
    xf = vx.astype(dtype)
    if pt or pb or pl or pr:
        xf = np.pad(xf, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    # (N, G, Cg, Ho, Wo, R, S) view of every window; columns are built one image at a
    # time so that memory stays at one image's (G, Ho*Wo, Cg*R*S) im2col matrix.
    win = sliding_window_view(xf, (r, s), axis=(2, 3))[:, :, ::sh, ::sw]
    win = win.reshape(n, groups, cg, ho, wo, r, s)
    kg = k // groups
    wm = vw.astype(dtype).reshape(groups, kg, cg * r * s).transpose(0, 2, 1)
    acc = np.empty((n, k, ho, wo), dtype=np.int64)
    for i in range(n):
        cols = win[i].transpose(0, 2, 3, 1, 4, 5).reshape(groups, ho * wo, cg * r * s)
        out = np.matmul(cols, wm)  # (G, Ho*Wo, K/G): exact, every partial sum is an integer
        acc[i] = out.transpose(0, 2, 1).reshape(k, ho, wo)
    if vb is not None:
        acc += vb.reshape(k, 1, 1)
    return acc


def _channel_axis(v, k: int, name: str) -> np.ndarray:
    """:func:`~edgetron.golden.gemm.channel_vector` shaped to broadcast along NCHW's C axis."""
    arr = channel_vector(v, k, name)
    return arr.reshape(k, 1, 1) if arr.ndim else arr


def conv2d_requant(x, w, bias, mult, shift, stride=1, padding=0, groups: int = 1) -> np.ndarray:
    """:func:`conv2d_int` followed by per-output-channel dyadic requantization to int8.

    The result is ``saturate_int8((acc * mult[k] + 2**(shift[k]-1)) >> shift[k])``
    (:func:`edgetron.golden.intops.requantize`).

    Parameters
    ----------
    x, w, bias, stride, padding, groups
        As :func:`conv2d_int`.
    mult : int or array of int, shape (K,)
        Dyadic multipliers, ``0 <= mult <= 2**31 - 1``: one for all channels or
        one per output channel.
    shift : int or array of int, shape (K,)
        Right shifts, ``1 <= shift <= 62``, likewise.

    Returns
    -------
    numpy.ndarray of int64, shape (N, K, Ho, Wo), values in int8.

    Raises
    ------
    TypeError
        As :func:`conv2d_int`, or non-integer ``mult`` / ``shift``.
    ValueError
        As :func:`conv2d_int`; ``mult`` or ``shift`` neither a scalar nor of shape
        ``(K,)``, or out of range.
    """
    acc = conv2d_int(x, w, bias, stride, padding, groups)
    k = acc.shape[1]
    return requantize(acc, _channel_axis(mult, k, "mult"), _channel_axis(shift, k, "shift"))


def _pool_setup(x, kernel, stride, padding):
    vx = _int8_nchw(x, "x")
    kr, ks = _pair(kernel, "kernel", 1)
    sh, sw = _pair(kernel if stride is None else stride, "stride", 1)
    pad = _padding(padding)
    pt, pb, pl, pr = pad
    if max(pt, pb) > kr // 2 or max(pl, pr) > ks // 2:
        raise ValueError(
            f"padding {_padding_text(pad)} must be at most half the kernel {(kr, ks)} on "
            f"each side (each window must overlap the input)"
        )
    # Raise when the kernel does not fit the padded input (the sizes follow from the view).
    conv2d_out_size(vx.shape[2], kr, sh, (pt, pb), "height")
    conv2d_out_size(vx.shape[3], ks, sw, (pl, pr), "width")
    return vx, (kr, ks), (sh, sw), pad


def _windows(v: np.ndarray, kernel, stride, pad, fill: int) -> np.ndarray:
    """(N, C, Ho, Wo, R, S) view of every pooling window of the padded ``v``."""
    (kr, ks), (sh, sw), (pt, pb, pl, pr) = kernel, stride, pad
    if pt or pb or pl or pr:
        v = np.pad(v, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    return sliding_window_view(v, (kr, ks), axis=(2, 3))[:, :, ::sh, ::sw]


def maxpool2d(x, kernel, stride=None, padding=0) -> np.ndarray:
    """Max pooling of an int8 NCHW tensor (same scale in and out).

    Parameters
    ----------
    x : array of int8 values, shape (N, C, H, W)
    kernel : int or (R, S)
    stride : int or (sh, sw), optional
        Defaults to the kernel (non-overlapping windows).
    padding : int, (ph, pw) or (top, bottom, left, right)
        Each side at most half the kernel (``top, bottom <= R // 2``,
        ``left, right <= S // 2``, as PyTorch requires of symmetric padding), so
        that every window overlaps the input; padded positions never win (as if
        -inf).

    Returns
    -------
    numpy.ndarray of int64, shape (N, C, Ho, Wo), values in int8.

    Raises
    ------
    TypeError
        Non-integer ``x``, or a kernel, stride or padding that is not an int or
        a tuple of ints.
    ValueError
        ``x`` not 4-D or outside int8, a kernel or stride below 1, padding
        beyond half the kernel, or a kernel larger than the padded input.
    """
    vx, kern, strd, pad = _pool_setup(x, kernel, stride, padding)
    # Every window overlaps the input (with each side's padding <= kernel // 2 < kernel,
    # the first window ends inside the input and the last one starts inside it, at most
    # at H + bottom - R < H), so padding with the smallest int8 value is the same as
    # ignoring the padded positions.
    return _windows(vx, kern, strd, pad, INT8_MIN).max(axis=(-2, -1))


def avgpool_constants(n: int, in_scale=1, out_scale=1) -> tuple[int, int]:
    """Dyadic ``(mult, shift)`` of ``S_x / (n * S_y)``: window sum of ``n`` int8 values -> average.

    With the default scales (output at the input scale) this is the dyadic of
    ``1 / n``; see the module docstring for when it equals exact division.

    Parameters
    ----------
    n : int
        Window size (elements summed), ``>= 1``.
    in_scale, out_scale : positive finite real
        ``S_x`` and ``S_y`` (only their ratio matters).

    Returns
    -------
    (mult, shift) : tuple of int
        As :func:`edgetron.golden.dyadic.dyadic`.

    Raises
    ------
    TypeError, ValueError
        ``n`` not a positive integer, or bad scales (as
        :func:`edgetron.golden.dyadic.dyadic`).
    """
    if not _is_int(n):
        raise TypeError(f"n must be an integer (the window size), got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return dyadic(exact_ratio((in_scale,), out_scale, ("in_scale", "out_scale")) / int(n))


def _average(total: np.ndarray, n: int, mult, shift) -> np.ndarray:
    """Requantize window sums of ``n`` elements by ``(mult, shift)`` (default: ``1 / n``)."""
    bound = -INT8_MIN * n
    if bound > INT32_MAX:
        raise ValueError(
            f"pooling window of {n} elements could reach {bound}, beyond the int32 "
            f"sum limit {INT32_MAX}"
        )
    if (mult is None) != (shift is None):
        raise ValueError("give both mult and shift, or neither (then the average is taken at "
                         "the input scale)")
    if mult is None:
        mult, shift = avgpool_constants(n)
    vm, vs = as_int64(mult, "mult"), as_int64(shift, "shift")
    if vm.ndim or vs.ndim:
        raise ValueError(
            f"mult and shift must be scalars (one per-tensor scale), got shapes {vm.shape} "
            f"and {vs.shape}"
        )
    return requantize(total, vm, vs)


def avgpool2d(x, kernel, stride=None, padding=0, mult=None, shift=None) -> np.ndarray:
    """Average pooling of an int8 NCHW tensor: window sum, then dyadic requantization.

    ``y = saturate_int8((sum * mult + 2**(shift-1)) >> shift)`` over windows of
    ``n = R * S`` elements; padding counts as zeros in the sum and in ``n``
    (PyTorch's ``count_include_pad=True``).

    Parameters
    ----------
    x, kernel, stride, padding
        As :func:`maxpool2d`.
    mult, shift : int, optional
        Dyadic multiplier and shift of ``S_x / (n * S_y)`` from
        :func:`avgpool_constants`; by default the output keeps the input scale
        (``mult / 2**shift ~ 1 / n``).

    Returns
    -------
    numpy.ndarray of int64, shape (N, C, Ho, Wo), values in int8.

    Raises
    ------
    TypeError
        As :func:`maxpool2d`, or non-integer ``mult`` / ``shift``.
    ValueError
        As :func:`maxpool2d`; only one of ``mult`` and ``shift`` given, non-scalar
        or out-of-range ``mult`` / ``shift``, or a window whose sum could leave int32.
    """
    vx, kern, strd, pad = _pool_setup(x, kernel, stride, padding)
    total = _windows(vx, kern, strd, pad, 0).sum(axis=(-2, -1))
    return _average(total, kern[0] * kern[1], mult, shift)


def global_avgpool2d(x, mult=None, shift=None) -> np.ndarray:
    """Global average pooling: int8 (N, C, H, W) -> int8 (N, C).

    :func:`avgpool2d` with one window of ``n = H * W`` elements per channel.

    Parameters
    ----------
    x : array of int8 values, shape (N, C, H, W)
        Input with ``H * W >= 1``.
    mult, shift : int, optional
        As :func:`avgpool2d` (default: the output keeps the input scale).

    Returns
    -------
    numpy.ndarray of int64, shape (N, C), values in int8.

    Raises
    ------
    TypeError
        Non-integer ``x``, ``mult`` or ``shift``.
    ValueError
        ``x`` not 4-D, outside int8 or spatially empty; a window whose sum could
        leave int32; or bad ``mult`` / ``shift`` (as :func:`avgpool2d`).
    """
    vx = _int8_nchw(x, "x")
    hw = vx.shape[2] * vx.shape[3]
    if hw == 0:
        raise ValueError(f"x has an empty spatial extent, shape {vx.shape}")
    return _average(vx.sum(axis=(2, 3)), hw, mult, shift)
