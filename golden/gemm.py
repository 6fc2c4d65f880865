"""int8 x int8 -> int32 GEMM with bias, and per-channel dyadic requantization to int8.

This is the specification of the GEMM unit (``rtl/matmul.py:MatmulUnit``) and of
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
    requantize,
)

__all__ = [
    "accumulator_bound",
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


def accumulator_bound(k: int, max_abs_bias: int = 0) -> int:
    """Worst-case magnitude of an int32 accumulator summing ``k`` int8 products plus a bias."""
    return k * _MAX_PRODUCT + max_abs_bias


def check_accumulator(k: int, max_abs_bias: int = 0, acc_bits: int = 32) -> None:
    """Raise ValueError if ``k`` products plus the bias could overflow the accumulator."""
    limit = (1 << (acc_bits - 1)) - 1
    bound = accumulator_bound(k, max_abs_bias)
    if bound > limit:
        raise ValueError(
            f"K={k} with |bias| up to {max_abs_bias} could reach {bound}, beyond the "
            f"int{acc_bits} accumulator limit {limit}; split K or narrow the bias"
        )


def check_bias(bias, n: int) -> tuple[np.ndarray, int]:
    """Validate an int32 bias of shape ``(n,)``; return it as int64 and its largest magnitude."""
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


def exact_float_dtype(k: int) -> type:
    """float32 if int8 dot products of length ``k`` are exact in it, else float64."""
    return np.float32 if k <= _F32_EXACT_K else np.float64


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of validated int8-valued arrays, exactly, as int64 (module docstring).

    The caller has checked the values and the accumulator bound
    (:func:`check_accumulator`); this picks float32 BLAS when the reduction
    length allows it and float64 otherwise.
    """
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
        Values fit int32 (checked by K).
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


def gemm_requant(a, w, bias, m, s) -> np.ndarray:
    """int8 GEMM followed by per-output-channel requantization to int8.

    ``m`` and ``s`` are scalars or vectors of length N (see
    :func:`edgetron.golden.intops.requantize`).
    """
    acc = gemm_int(a, w, bias)
    return requantize(acc, m, s)
