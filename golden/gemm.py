"""int8 x int8 -> int32 GEMM with bias, and per-channel dyadic requantization to int8.

This is the specification of the GEMM unit (``rtl/gemm/unit.py:GemmUnit``) and of
every linear layer of the integer models.

Widths
------
``a``: int8 (M, K); ``w``: int8 (K, N); ``bias``: int32 (N,); accumulator: int32.
A product of two int8 values has magnitude at most ``128 * 128 = 2**14``, so the
accumulator cannot overflow when ``K * 2**14 + max|bias| <= 2**31 - 1``; shapes
and biases that could break that bound are rejected (never wrapped).

Speed
-----
The products are summed by BLAS in floating point, which is exact here: every
product and every partial sum (in any summation order, with or without fused
multiply-add) is an integer of magnitude at most ``K * 2**14``, and every
integer up to ``2**(p+1)`` is representable with ``p`` stored fraction bits (a
``p + 1``-bit significand). So float32 (``p = 23``) is exact for
``K * 2**14 <= 2**24``, i.e. ``K <= 1024``
(every ViT-Tiny GEMM), and float64 (``p = 52``) for every ``K`` the int32
accumulator allows. The bias is added afterwards in int64. Operands that are
already ``np.int8`` skip the range check (their dtype guarantees it).
"""

from __future__ import annotations

import numpy as np

from .intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    as_int64,
    check_range,
    int_param,
    requantize,
)

__all__ = [
    "accumulator_bound",
    "accumulator_k_limit",
    "channel_vector",
    "check_accumulator",
    "check_bias",
    "exact_float_dtype",
    "exact_matmul",
    "gemm_int",
    "gemm_requant",
    "matmul_int",
]

#: Largest magnitude of one int8 x int8 product: (-128) * (-128).
_MAX_PRODUCT = (-INT8_MIN) * (-INT8_MIN)
#: Largest K whose int8 dot products are exact in float32: every integer up to
#: 2**(nmant + 1) is a float32, and |partial sum| <= K * _MAX_PRODUCT.
_F32_EXACT_K = (1 << (np.finfo(np.float32).nmant + 1)) // _MAX_PRODUCT


#: Largest reduction length or bias magnitude the bound functions accept (int64 range).
_COUNT_MAX = (1 << 63) - 1


def _max_product(a_bits: int, b_bits: int) -> int:
    """Largest magnitude of a product of signed ``a_bits`` and ``b_bits`` operands."""
    a_bits = int_param(a_bits, "a_bits", 2, 32)
    b_bits = int_param(b_bits, "b_bits", 2, 32)
    return (1 << (a_bits - 1)) * (1 << (b_bits - 1))


def accumulator_bound(k: int, max_abs_bias: int = 0, a_bits: int = 8, b_bits: int = 8) -> int:
    """Worst-case magnitude of an accumulator summing ``k`` products plus a bias.

    Parameters
    ----------
    k : int
        Reduction length (number of products), ``k >= 0``.
    max_abs_bias : int
        Largest bias magnitude, ``>= 0``.
    a_bits, b_bits : int
        Signed operand widths, 2 to 32 (8: int8 operands, the golden GEMM's).

    Returns
    -------
    int
        ``k * 2**(a_bits-1) * 2**(b_bits-1) + max_abs_bias`` (a Python int): for int8
        operands ``k * 2**14 + max_abs_bias``, the largest product being (-128) * (-128).

    Raises
    ------
    TypeError
        A non-integer argument.
    ValueError
        A negative argument or a width out of range.
    """
    k = int_param(k, "k", 0, _COUNT_MAX)
    return k * _max_product(a_bits, b_bits) + int_param(max_abs_bias, "max_abs_bias", 0,
                                                         _COUNT_MAX)


def accumulator_k_limit(acc_bits: int = 32, max_abs_bias: int = 0, a_bits: int = 8,
                        b_bits: int = 8) -> int:
    """Largest K whose sum of products plus a bias cannot overflow the accumulator.

    The inverse of :func:`accumulator_bound`: the largest ``k`` with
    ``accumulator_bound(k, max_abs_bias, a_bits, b_bits) <= 2**(acc_bits - 1) - 1``
    (0 when even the bias alone does not fit).

    Parameters
    ----------
    acc_bits : int
        Signed accumulator width, 2 to 63.
    max_abs_bias, a_bits, b_bits : int
        As :func:`accumulator_bound`.
    """
    acc_bits = int_param(acc_bits, "acc_bits", 2, 63)
    bias = int_param(max_abs_bias, "max_abs_bias", 0, _COUNT_MAX)
    room = (1 << (acc_bits - 1)) - 1 - bias
    return max(0, room // _max_product(a_bits, b_bits))


def check_accumulator(k: int, max_abs_bias: int = 0, acc_bits: int = 32) -> None:
    """Raise ValueError if ``k`` int8 products plus the bias could overflow the accumulator.

    Parameters
    ----------
    k, max_abs_bias : int
        As :func:`accumulator_bound`.
    acc_bits : int
        Signed accumulator width, 2 to 63 (32 for the int32 accumulator).

    Raises
    ------
    TypeError
        A non-integer argument.
    ValueError
        ``accumulator_bound(k, max_abs_bias)`` exceeds ``2**(acc_bits - 1) - 1``
        (the message suggests splitting K or narrowing the bias), or an argument
        out of range.
    """
    acc_bits = int_param(acc_bits, "acc_bits", 2, 63)
    limit = (1 << (acc_bits - 1)) - 1
    bound = accumulator_bound(k, max_abs_bias)
    if bound > limit:
        raise ValueError(
            f"K={k} with |bias| up to {max_abs_bias} could reach {bound}, beyond the "
            f"int{acc_bits} accumulator limit {limit}; split K or narrow the bias"
        )


def check_bias(bias, n: int) -> tuple[np.ndarray, int]:
    """Validate an int32 bias of shape ``(n,)``; return it as int64 and its largest magnitude.

    Parameters
    ----------
    bias : array_like of int
        The bias, one value per output channel.
    n : int
        Number of output channels.

    Returns
    -------
    (bias, max_abs) : (numpy.ndarray of int64, int)
        The bias and ``max|bias|`` (0 for ``n = 0``).

    Raises
    ------
    TypeError
        Non-integer ``bias``.
    ValueError
        A shape other than ``(n,)`` or values outside int32.
    """
    vb = as_int64(bias, "bias")
    if vb.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {vb.shape}")
    check_range(vb, INT32_MIN, INT32_MAX, "bias")
    return vb, int(np.abs(vb).max()) if vb.size else 0


def _integers(x, name: str) -> np.ndarray:
    """``x`` as an integer array: ``np.int8`` kept as is, any other integer dtype as int64."""
    v = np.asarray(x)
    return v if v.dtype == np.int8 else as_int64(v, name)


def _check_int8(v: np.ndarray, name: str) -> None:
    if v.dtype != np.int8:  # an int8 dtype guarantees the range
        check_range(v, INT8_MIN, INT8_MAX, name)


def _int8_operand(x, name: str, ndim: int) -> np.ndarray:
    v = _integers(x, name)
    if v.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {v.shape}")
    _check_int8(v, name)
    return v


def channel_vector(v, n: int, name: str) -> np.ndarray:
    """A per-output-channel requantization constant: a scalar or a vector of ``n`` values.

    Parameters
    ----------
    v : int or array_like of int
        The constant (``mult`` or ``shift`` of :func:`~edgetron.golden.intops.requantize`),
        one for all channels or one per channel.
    n : int
        Number of output channels.
    name : str
        Name of ``v`` for the messages.

    Returns
    -------
    numpy.ndarray of int64
        0-d, or of shape ``(n,)`` (it then broadcasts along the last axis).

    Raises
    ------
    TypeError
        Non-integer ``v``.
    ValueError
        ``v`` neither a scalar nor of shape ``(n,)``: a vector of another
        length, or a 2-D array that would broadcast along the wrong axis.
    """
    arr = as_int64(v, name)
    if arr.ndim and arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    return arr


def exact_float_dtype(k: int) -> type:
    """The float type in which int8 dot products of length ``k`` are exact.

    Parameters
    ----------
    k : int
        Reduction length.

    Returns
    -------
    type
        ``numpy.float32`` for ``k <= 1024``, ``numpy.float64`` otherwise.
    """
    return np.float32 if k <= _F32_EXACT_K else np.float64


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of validated int8-valued arrays, exactly, as int64 (module docstring).

    The caller has checked the values and the accumulator bound
    (:func:`check_accumulator`); this picks float32 BLAS when the reduction
    length allows it and float64 otherwise.

    Parameters
    ----------
    a : numpy.ndarray of int, shape (..., M, K)
        int8 values.
    b : numpy.ndarray of int, shape (..., K, N)
        int8 values; the batch axes broadcast against ``a``'s.

    Returns
    -------
    numpy.ndarray of int64, shape (..., M, N)

    Raises
    ------
    TypeError
        Operands that are not integer arrays (a float array would be truncated).
    """
    for v, name in ((a, "a"), (b, "b")):
        if not isinstance(v, np.ndarray) or not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, got {type(v).__name__}")
    dtype = exact_float_dtype(a.shape[-1])
    return np.matmul(a.astype(dtype), b.astype(dtype)).astype(np.int64)


def matmul_int(a, b) -> np.ndarray:
    """Exact integer product of int8 tensors ``a @ b`` (batched over leading axes).

    Parameters
    ----------
    a : array of int8 values, shape (..., M, K)
    b : array of int8 values, shape (..., K, N)

    Returns
    -------
    numpy.ndarray of int64, shape (..., M, N)
        Values fit int32 (checked by K). The batch axes ``...`` of ``a`` and
        ``b`` must be equal or broadcast (NumPy's rules).

    Raises
    ------
    TypeError
        Non-integer operands.
    ValueError
        Operands below 2-D, mismatched K, batch axes that do not broadcast (both
        shapes named), values outside int8, or a K that could overflow int32.
    """
    va = _integers(a, "a")
    vb = _integers(b, "b")
    if va.ndim < 2 or vb.ndim < 2:
        raise ValueError(
            f"matmul needs 2-D or batched operands, got shapes {va.shape} and {vb.shape}"
        )
    if va.shape[-1] != vb.shape[-2]:
        raise ValueError(
            f"shape mismatch: a is {va.shape} (K={va.shape[-1]}) but b is {vb.shape} "
            f"(K={vb.shape[-2]})"
        )
    try:
        np.broadcast_shapes(va.shape[:-2], vb.shape[:-2])
    except ValueError:
        raise ValueError(
            f"batch shape mismatch: a is {va.shape} (batch {va.shape[:-2]}) but b is "
            f"{vb.shape} (batch {vb.shape[:-2]}); batch axes must be equal or broadcast"
        ) from None
    _check_int8(va, "a")
    _check_int8(vb, "b")
    check_accumulator(va.shape[-1])
    return exact_matmul(va, vb)


def gemm_int(a, w, bias=None) -> np.ndarray:
    """``a @ w + bias`` with int32 accumulation.

    Parameters
    ----------
    a : array of int8 values, shape (M, K)
    w : array of int8 values, shape (K, N)
    bias : array of int32 values, shape (N,), optional

    Returns
    -------
    numpy.ndarray of int64, shape (M, N), values in int32 range.

    Raises
    ------
    TypeError
        Non-integer operands.
    ValueError
        Wrong ranks, mismatched K or N, values outside int8/int32, or a K
        (with this bias) that could overflow the int32 accumulator.
    """
    va = _int8_operand(a, "a", 2)
    vw = _int8_operand(w, "w", 2)
    if va.shape[1] != vw.shape[0]:
        raise ValueError(
            f"shape mismatch: a is {va.shape} (K={va.shape[1]}) but w is {vw.shape} "
            f"(K={vw.shape[0]})"
        )
    vb, max_bias = (None, 0) if bias is None else check_bias(bias, vw.shape[1])
    check_accumulator(va.shape[1], max_bias)
    acc = exact_matmul(va, vw)
    if vb is not None:
        acc += vb
    return acc


def gemm_requant(a, w, bias, mult, shift) -> np.ndarray:
    """int8 GEMM followed by per-output-channel requantization to int8.

    ``y[:, n] = saturate_int8((acc[:, n] * mult[n] + 2**(shift[n]-1)) >> shift[n])``
    with ``acc = gemm_int(a, w, bias)`` (:func:`edgetron.golden.intops.requantize`).

    Parameters
    ----------
    a, w, bias
        As :func:`gemm_int`.
    mult : int or array of int, shape (N,)
        Dyadic multipliers, ``0 <= mult <= 2**31 - 1``: one for all channels or
        one per output channel.
    shift : int or array of int, shape (N,)
        Right shifts, ``1 <= shift <= 62``, likewise.

    Returns
    -------
    numpy.ndarray of int64, shape (M, N), values in int8.

    Raises
    ------
    TypeError
        Non-integer operands or constants.
    ValueError
        As :func:`gemm_int`; ``mult`` or ``shift`` neither a scalar nor of shape
        ``(N,)`` (:func:`channel_vector`), or out of range.
    """
    acc = gemm_int(a, w, bias)
    n = acc.shape[1]
    return requantize(acc, channel_vector(mult, n, "mult"), channel_vector(shift, n, "shift"))
