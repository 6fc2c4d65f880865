"""Residual add of two int8 tensors at different scales (the ``add`` unit).

Real-valued operation: ``y_real = a * S_a + b * S_b`` quantized at ``S_y``, i.e.
``y = saturate_int8(round(a * S_a / S_y + b * S_b / S_y))``.

Integer formula
---------------
Both real multipliers ``M_a = S_a / S_y`` and ``M_b = S_b / S_y`` are replaced
by dyadic numbers that share one shift ``s`` (:func:`residual_constants`)::

    p_a = a * m_a                       # int8 x uint31 -> 39-bit signed
    p_b = b * m_b                       # int8 x uint31 -> 39-bit signed
    t   = p_a + p_b                     # 40-bit signed, at scale S_y * 2**-s
    y   = saturate_int8((t + 2**(s-1)) >> s)    # round half up, arithmetic shift

Each input is rescaled by its own multiplier to the common scale
``S_y * 2**-s``; the sum is then requantized once, so there is a single
rounding (rescaling each input to int8 first and adding would round twice and
be off by one LSB in about a fifth of the cases; docs/quantization.md). This is
the dyadic style of I-BERT (Kim et al., ICML 2021) and the rescale-then-add
scheme of Jacob et al. (CVPR 2018, section 2.2), as in gemmlowp/TFLite's
quantized ADD, with one shift shared by both inputs instead of a pre-shift and
a third output multiplier.

Widths (derived below from the int8 and ``M_MAX`` limits): products
``RESIDUAL_PRODUCT_BITS`` = 39, sum ``RESIDUAL_SUM_BITS`` = 40; the rounding
addition ``t + 2**(s-1)`` needs ``max(40, s) + 1`` bits and fits int64 for every
``s <= 62``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .dyadic import dyadic, exact_ratio
from .intops import (
    INT8_MAX,
    INT8_MIN,
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
    int_range,
    round_shift,
    saturate,
    signed_bits,
)

__all__ = [
    "RESIDUAL_PRODUCT_BITS",
    "RESIDUAL_SUM_BITS",
    "ResidualConstants",
    "residual_add",
    "residual_constants",
]


_INT8_BITS = signed_bits(INT8_MIN, INT8_MAX)
#: Width of ``a * m_a``: int8 times an unsigned multiplier ``0 <= m <= M_MAX``.
RESIDUAL_PRODUCT_BITS = signed_bits(INT8_MIN * M_MAX, INT8_MAX * M_MAX)
#: Width of ``a * m_a + b * m_b``.
RESIDUAL_SUM_BITS = signed_bits(2 * INT8_MIN * M_MAX, 2 * INT8_MAX * M_MAX)


class ResidualConstants(NamedTuple):
    """Integer constants of one residual add: ``y = sat8((a*m_a + b*m_b + 2**(s-1)) >> s)``."""

    m_a: int
    m_b: int
    s: int


def residual_constants(scale_a, scale_b, scale_out) -> ResidualConstants:
    """Derive ``(m_a, m_b, s)`` from the three real scales.

    The shift is the largest one for which both multipliers fit 31 bits: the
    smaller of the two shifts :func:`~edgetron.golden.dyadic.dyadic` chooses for
    ``M_a = S_a / S_y`` and ``M_b = S_b / S_y`` on their own; each ``m`` is then
    ``floor(M * 2**s + 1/2)`` from the exact ratio of the float scales, so
    ``|m / 2**s - M| <= 2**-(s+1)`` for both.

    Parameters
    ----------
    scale_a, scale_b : positive finite real
        ``S_a`` and ``S_b``, the real scales of the two int8 inputs.
    scale_out : positive finite real
        ``S_y``, the real scale of the int8 output.

    Returns
    -------
    ResidualConstants
        ``(m_a, m_b, s)`` with ``0 <= m <= 2**31 - 1`` and ``1 <= s <= 62``.

    Raises
    ------
    TypeError, ValueError
        Non-real, non-positive or non-finite scales; a ratio too large or too
        small for a dyadic multiplier (including a ratio so small next to the
        other that it would round to ``m = 0`` at the shared shift), naming the
        input.
    """
    ratios = {
        name: exact_ratio((scale,), scale_out, (f"scale_{name}", "scale_out"))
        for name, scale in (("a", scale_a), ("b", scale_b))
    }
    shifts = {}
    for name, ratio in ratios.items():
        try:
            shifts[name] = dyadic(ratio)[1]
        except ValueError as exc:
            raise ValueError(f"residual input {name} (S_{name} / S_y): {exc}") from None
    s = min(shifts.values())
    ms = {}
    for name, ratio in ratios.items():
        try:
            ms[name] = dyadic(ratio, shift=s)[0]
        except ValueError as exc:
            raise ValueError(
                f"residual input {name} (S_{name} / S_y) at the shared shift: {exc}"
            ) from None
    return ResidualConstants(ms["a"], ms["b"], s)


def _scalar(v, name: str, lo: int, hi: int) -> np.ndarray:
    arr = as_int64(v, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar (per-tensor scales), got shape {arr.shape}")
    check_range(arr, lo, hi, name)
    return arr


def residual_add(a, b, m_a, m_b, s) -> np.ndarray:
    """``saturate_int8((a * m_a + b * m_b + 2**(s-1)) >> s)`` elementwise.

    Parameters
    ----------
    a, b : arrays of int8 values, same shape
        The two addends (e.g. the block input and the branch output).
    m_a, m_b : int
        Multipliers, ``0 <= m <= 2**31 - 1``, from :func:`residual_constants`.
    s : int
        Shared right shift, ``1 <= s <= 62``.

    Returns
    -------
    numpy.ndarray of int64, the shape of ``a``, values in int8.

    Raises
    ------
    TypeError
        Non-integer operands or constants.
    ValueError
        Shape mismatch, values outside int8, non-scalar constants, or ``m``/``s``
        out of range.
    """
    va = as_int64(a, "a")
    vb = as_int64(b, "b")
    if va.shape != vb.shape:
        raise ValueError(f"shape mismatch: a is {va.shape} but b is {vb.shape}")
    check_range(va, INT8_MIN, INT8_MAX, "a")
    check_range(vb, INT8_MIN, INT8_MAX, "b")
    ma = _scalar(m_a, "m_a", 0, M_MAX)
    mb = _scalar(m_b, "m_b", 0, M_MAX)
    ss = _scalar(s, "s", S_MIN, S_MAX)
    t = va * ma + vb * mb
    check_range(t, *int_range(RESIDUAL_SUM_BITS), "residual sum")
    return saturate(round_shift(t, ss), _INT8_BITS)
