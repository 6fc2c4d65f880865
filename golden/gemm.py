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
The products are summed in float64 BLAS, which is exact here: every partial sum
is an integer of magnitude below ``2**31 < 2**53``, so no rounding can occur.
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

__all__ = ["accumulator_bound", "check_accumulator", "gemm_int", "gemm_requant", "matmul_int"]

#: Largest magnitude of one int8 x int8 product: (-128) * (-128).
_MAX_PRODUCT = (-INT8_MIN) * (-INT8_MIN)


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


def _int8_operand(x, name: str, ndim: int) -> np.ndarray:
    v = as_int64(x, name)
    if v.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {v.shape}")
    check_range(v, INT8_MIN, INT8_MAX, name)
    return v


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
    va = as_int64(a, "a")
    vb = as_int64(b, "b")
    if va.ndim < 2 or vb.ndim < 2:
        raise ValueError(
            f"matmul needs 2-D or batched operands, got shapes {va.shape} and {vb.shape}"
        )
    if va.shape[-1] != vb.shape[-2]:
        raise ValueError(
            f"shape mismatch: a is {va.shape} (K={va.shape[-1]}) but b is {vb.shape} "
            f"(K={vb.shape[-2]})"
        )
    check_range(va, INT8_MIN, INT8_MAX, "a")
    check_range(vb, INT8_MIN, INT8_MAX, "b")
    check_accumulator(va.shape[-1])
    prod = np.matmul(va.astype(np.float64), vb.astype(np.float64))
    return prod.astype(np.int64)


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
    n = vw.shape[1]
    max_bias = 0
    if bias is not None:
        vb = as_int64(bias, "bias")
        if vb.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {vb.shape}")
        check_range(vb, INT32_MIN, INT32_MAX, "bias")
        max_bias = int(np.abs(vb).max()) if vb.size else 0
    check_accumulator(va.shape[1], max_bias)
    acc = np.matmul(va.astype(np.float64), vw.astype(np.float64)).astype(np.int64)
    if bias is not None:
        acc += vb
    return acc


def gemm_requant(a, w, bias, m, s) -> np.ndarray:
    """int8 GEMM followed by per-output-channel requantization to int8.

    ``m`` and ``s`` are scalars or vectors of length N (see
    :func:`edgetron.golden.intops.requantize`).
    """
    acc = gemm_int(a, w, bias)
    return requantize(acc, m, s)
