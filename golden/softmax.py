"""Integer-only softmax with I-BERT's polynomial exponential (i-exp).

Follows I-BERT (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021,
section 3.4): the row maximum is subtracted, ``exp`` is evaluated with a second
order polynomial on ``(-ln2, 0]`` plus a right shift, the row is summed and
divided **once** (one reciprocal per row, no divider per element). This module
is the specification of ``rtl/softmax.py:SoftmaxUnit``; every integer constant
comes from :func:`iexp_constants` / :func:`softmax_constants`, which derive
them from the real-valued input scale, so RTL and simulator use the very same
numbers.

Datapath (one row of ``n`` logits ``q`` at real scale ``S``; widths in bits)
------------------------------------------------------------------------------
====  ===================================================  ==========================
step  integer operation                                    width
====  ===================================================  ==========================
1     ``d = q - max(q)``  (``q`` int32)                    33 signed, ``d <= 0``
2     ``u = min(pre(min(-d, clamp_in)), u_max)``           ``u_bits`` unsigned
3     ``z = (u * m_ln2) >> s_ln2`` (= ``floor(u/q_ln2)``)  ``z_bits`` unsigned
4     ``r = u - z * q_ln2``, ``t = q_b - r``               ``t_bits`` unsigned
5     ``L = t * t + q_c``                                  ``l_bits`` unsigned
6     ``e = L >> (min(z, E) + g)``                         ``exp_bits`` (16) unsigned
7     ``sum = sum(e)``                                     ``sum_bits`` (32) unsigned
8     ``factor = floor(2**k / sum)``  (one per row)        ``exp_bits`` (16) unsigned
9     ``y = min((e * factor + 2**(k-8)) >> (k-7), 127)``   product ``2*exp_bits - 1``
====  ===================================================  ==========================

``pre`` is the exact rescaling to the internal i-exp scale ``S' = S / 2**f``
(left shift by ``f`` when ``f >= 0``, round-half-up right shift by ``-f``
otherwise) chosen so that ``S'`` lies in ``(2**-(F+1), 2**-F]`` with
``F = EXP_FRAC_BITS``: I-BERT's ``q_ln2 = floor(ln2 / S)`` and
``floor(b / S)`` are only accurate when ``S`` is fine, so a coarse int8 scale
is refined (losslessly) and a very fine int32 scale is coarsened to what the
polynomial needs. Steps 2-5 are :func:`i_exp`; its output ``L >> z`` is at the
real scale ``a * S'**2``. The output is int8 in ``[0, 127]`` at scale
``2**-7``; the exact value 128 (a row with a single non-zero term) saturates
to 127.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .dyadic import exact_reciprocal, internal_shift, positive_scale
from .intops import (
    INT32_MAX,
    INT32_MIN,
    as_int64,
    check_range,
    check_unsigned,
    pow2_rescale,
    pow2_rescale_limit,
    round_shift,
)

__all__ = [
    "EXP_A",
    "EXP_B",
    "EXP_BITS",
    "EXP_C",
    "EXP_FRAC_BITS",
    "OUT_FRAC_BITS",
    "OUT_MAX",
    "ROW_MAX",
    "IExpConstants",
    "SoftmaxConstants",
    "i_exp",
    "iexp_constants",
    "softmax_apply",
    "softmax_constants",
    "softmax_int",
]

#: I-BERT's fit ``exp(p) ~ EXP_A * (p + EXP_B)**2 + EXP_C`` on ``(-ln2, 0]``.
EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344
_LN2 = math.log(2.0)
#: The polynomial runs at an internal scale ``S'`` in ``(2**-(F+1), 2**-F]``.
#: ``F = 12`` keeps the integer polynomial within 2.13e-3 of ``exp`` for every
#: such ``S'`` (the float polynomial itself is 2.128e-3 off).
EXP_FRAC_BITS = 12
#: Width of the per-element exponentials that are summed and multiplied.
EXP_BITS = 16
#: Longest row; the row sum then fits ``EXP_BITS + log2(ROW_MAX)`` bits.
ROW_MAX = 1 << 16
#: Output fraction bits: probabilities are int8 at scale ``2**-OUT_FRAC_BITS``.
OUT_FRAC_BITS = 7
OUT_MAX = (1 << OUT_FRAC_BITS) - 1
#: ``d = q - max(q)`` of int32 logits lies in ``[-_DIFF_MAG_MAX, 0]`` (the domain of
#: :func:`i_exp`), a 33-bit signed value.
_DIFF_MAG_MAX = INT32_MAX - INT32_MIN


def _rescale(mag: np.ndarray, f: int, clamp_in: int, clamp: int) -> np.ndarray:
    """``min(pre(min(mag, clamp_in)), clamp)``: the exact change to the internal scale."""
    return np.minimum(pow2_rescale(np.minimum(mag, clamp_in), f), clamp)


class IExpConstants(NamedTuple):
    """Integer constants of i-exp for one real input scale (see :func:`iexp_constants`)."""

    in_scale: float  #: S, real scale of the (non-positive) input
    pre_shift: int  #: f: internal magnitude = |q| << f (f >= 0) or round_shift(|q|, -f)
    int_scale: float  #: S' = S / 2**f, in (2**-(F+1), 2**-F]
    q_ln2: int  #: floor(ln2 / S')
    q_b: int  #: floor(EXP_B / S')
    q_c: int  #: floor(EXP_C / (EXP_A * S'**2))
    m_ln2: int  #: reciprocal multiplier: z = (u * m_ln2) >> s_ln2 == u // q_ln2
    s_ln2: int  #: reciprocal shift
    z_max: int  #: bits(l_max): L >> z_max == 0, so z is capped here
    u_max: int  #: z_max * q_ln2, clamp of the internal magnitude u
    clamp_in: int  #: clamp of |q| before rescaling (keeps the rescaled value bounded)
    l_max: int  #: q_b**2 + q_c, the polynomial at p = 0 (its maximum)
    out_scale: float  #: EXP_A * S'**2, real scale of the i-exp output
    u_bits: int  #: width of u (unsigned)
    z_bits: int  #: width of z (unsigned)
    t_bits: int  #: width of t = q_b - r (unsigned)
    l_bits: int  #: width of L (unsigned)
    recip_bits: int  #: width of the product u * m_ln2 (unsigned)


def iexp_constants(scale) -> IExpConstants:
    """Derive every integer constant of :func:`i_exp` from the real input scale.

    Parameters
    ----------
    scale : float
        Real value of one input LSB (``x = q * scale``); finite and > 0, and
        within ``(2**-75, 2**18]`` (the range of
        :func:`~edgetron.golden.dyadic.internal_shift` for ``F = 12``).

    Returns
    -------
    IExpConstants

    Raises
    ------
    TypeError
        ``scale`` is not a real number.
    ValueError
        ``scale`` is not finite and positive, or outside the supported range.
    """
    s = positive_scale(scale)
    f = internal_shift(s, EXP_FRAC_BITS)
    s_int = math.ldexp(s, -f)
    q_ln2 = math.floor(_LN2 / s_int)
    q_b = math.floor(EXP_B / s_int)
    q_c = math.floor(EXP_C / (EXP_A * s_int * s_int))
    l_max = q_b * q_b + q_c
    z_max = l_max.bit_length()
    u_max = z_max * q_ln2
    m_ln2, s_ln2 = exact_reciprocal(q_ln2, u_max)
    return IExpConstants(
        in_scale=s,
        pre_shift=f,
        int_scale=s_int,
        q_ln2=q_ln2,
        q_b=q_b,
        q_c=q_c,
        m_ln2=m_ln2,
        s_ln2=s_ln2,
        z_max=z_max,
        u_max=u_max,
        clamp_in=min(pow2_rescale_limit(u_max, f), _DIFF_MAG_MAX),
        l_max=l_max,
        out_scale=EXP_A * s_int * s_int,
        u_bits=u_max.bit_length(),
        z_bits=z_max.bit_length(),
        t_bits=q_b.bit_length(),
        l_bits=l_max.bit_length(),
        recip_bits=(u_max * m_ln2).bit_length(),
    )


def _i_exp(d: np.ndarray, c: IExpConstants) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-5 of the datapath on validated ``d <= 0``: returns ``(L, z)``."""
    u = _rescale(-d, c.pre_shift, c.clamp_in, c.u_max)
    check_unsigned(u, c.u_bits, "i-exp magnitude u")
    prod = u * c.m_ln2
    check_unsigned(prod, c.recip_bits, "i-exp reciprocal product u*m_ln2")
    z = np.right_shift(prod, c.s_ln2)
    check_unsigned(z, c.z_bits, "i-exp z")
    r = u - z * c.q_ln2
    t = c.q_b - r
    check_unsigned(t, c.t_bits, "i-exp polynomial input q_p + q_b")
    poly = t * t + c.q_c
    check_unsigned(poly, c.l_bits, "i-exp polynomial L")
    return poly, z


def i_exp(q, scale) -> np.ndarray:
    """Integer ``exp`` of non-positive inputs (I-BERT i-exp).

    ``x = q * scale`` is written as ``x = -z ln2 + p`` with ``p`` in
    ``(-ln2, 0]``; ``exp(x) ~ L(p) >> z`` with the integer polynomial
    ``L = (q_p + q_b)**2 + q_c``. ``z`` is capped at ``z_max``, where the shift
    already yields 0.

    Parameters
    ----------
    q : array of int
        Inputs in ``[-(2**32 - 1), 0]`` (a difference of two int32 values).
    scale : float
        Real value of one input LSB.

    Returns
    -------
    numpy.ndarray of int64
        ``exp(q * scale)`` at the real scale ``iexp_constants(scale).out_scale``,
        values in ``[0, l_max]``, the shape of ``q``.

    Raises
    ------
    TypeError
        Non-integer ``q`` or non-real ``scale``.
    ValueError
        ``q`` outside ``[-(2**32 - 1), 0]``, or a bad scale (as :func:`iexp_constants`).
    """
    c = iexp_constants(scale)
    d = as_int64(q, "q")
    check_range(d, -_DIFF_MAG_MAX, 0, "q")
    poly, z = _i_exp(d, c)
    return np.right_shift(poly, z)


class SoftmaxConstants(NamedTuple):
    """Integer constants of :func:`softmax_int` for one input scale."""

    iexp: IExpConstants  #: constants of the exponential
    exp_bits: int  #: E: width of each summed exponential e
    exp_shift: int  #: g = l_bits - E: e = L >> (z + g), so e(0) lies in [2**(E-1), 2**E)
    exp_scale: float  #: real scale of e: EXP_A * S'**2 * 2**g
    z_cap: int  #: e == 0 once z >= z_cap (= E), so the shifter needs z_cap + g positions
    sum_bits: int  #: width of the row sum: E + log2(ROW_MAX)
    k: int  #: factor = floor(2**k / sum); k = 2E - 2 so factor < 2**E
    factor_bits: int  #: width of factor (unsigned)
    product_bits: int  #: width of e * factor (unsigned; the product is <= 2**k)
    out_shift: int  #: k - OUT_FRAC_BITS, the final round-half-up shift
    out_scale: float  #: 2**-OUT_FRAC_BITS


def softmax_constants(scale) -> SoftmaxConstants:
    """Derive every integer constant of :func:`softmax_int` from the real input scale.

    Parameters
    ----------
    scale : float
        Real value of one logit LSB, as for :func:`iexp_constants`.

    Returns
    -------
    SoftmaxConstants

    Raises
    ------
    TypeError, ValueError
        A bad scale, as :func:`iexp_constants`.
    """
    c = iexp_constants(scale)
    g = c.l_bits - EXP_BITS  # >= 0: l_max >= 2**25 for every internal scale
    k = 2 * EXP_BITS - 2
    return SoftmaxConstants(
        iexp=c,
        exp_bits=EXP_BITS,
        exp_shift=g,
        exp_scale=c.out_scale * 2.0**g,
        z_cap=EXP_BITS,
        sum_bits=EXP_BITS + (ROW_MAX.bit_length() - 1),
        k=k,
        factor_bits=EXP_BITS,
        product_bits=k + 1,
        out_shift=k - OUT_FRAC_BITS,
        out_scale=2.0**-OUT_FRAC_BITS,
    )


def softmax_int(q, scale) -> np.ndarray:
    """Integer softmax over the last axis (I-BERT).

    Parameters
    ----------
    q : array of int, shape (..., n)
        Logits in the int32 range (e.g. attention scores straight from the
        int32 accumulator), ``1 <= n <= ROW_MAX``.
    scale : float
        Real value of one logit LSB (for attention scores
        ``S_q * S_k / sqrt(d_head)``).

    Returns
    -------
    numpy.ndarray of int64, shape (..., n)
        Probabilities as int8 values in ``[0, 127]`` at scale ``2**-7``.
        Each row sums to 128 within ``n/2 + n/128 + 1`` (one rounding of at most
        half an LSB per element, the truncation of the reciprocal, at most
        ``n/128``, and the saturation of 128 to 127).

    Raises
    ------
    TypeError
        Non-integer ``q`` or non-real ``scale``.
    ValueError
        ``q`` 0-d, empty or with rows longer than ``ROW_MAX``, values outside
        int32, or a scale that is not finite and positive.
    """
    return softmax_apply(q, softmax_constants(scale))


def softmax_apply(q, consts: SoftmaxConstants) -> np.ndarray:
    """:func:`softmax_int` with constants derived ahead of time (integers only at run time).

    ``softmax_apply(q, softmax_constants(scale)) == softmax_int(q, scale)``;
    the integer models derive the constants once at calibration.

    Parameters
    ----------
    q : array of int, shape (..., n)
        Logits, as for :func:`softmax_int`.
    consts : SoftmaxConstants
        From :func:`softmax_constants`.

    Returns
    -------
    numpy.ndarray of int64, shape (..., n)
        As :func:`softmax_int`.

    Raises
    ------
    TypeError
        Non-integer ``q``, or ``consts`` that is not a SoftmaxConstants.
    ValueError
        As :func:`softmax_int`.
    """
    if not isinstance(consts, SoftmaxConstants):
        raise TypeError(f"consts must be SoftmaxConstants, got {type(consts).__name__}")
    c = consts
    x = as_int64(q, "q")
    if x.ndim == 0:
        raise ValueError("q must have at least 1 dimension (rows along the last axis), got 0-d")
    n = x.shape[-1]
    if not 1 <= n <= ROW_MAX or x.size == 0:
        raise ValueError(f"softmax rows must have 1 to {ROW_MAX} elements, got shape {x.shape}")
    check_range(x, INT32_MIN, INT32_MAX, "q")
    d = x - x.max(axis=-1, keepdims=True)
    poly, z = _i_exp(d, c.iexp)
    e = np.right_shift(poly, np.minimum(z, c.z_cap) + c.exp_shift)
    check_unsigned(e, c.exp_bits, "softmax exponential e")
    total = e.sum(axis=-1, keepdims=True)
    check_unsigned(total, c.sum_bits, "softmax row sum")
    factor = (1 << c.k) // total
    check_unsigned(factor, c.factor_bits, "softmax reciprocal factor")
    prod = e * factor
    check_unsigned(prod, c.product_bits, "softmax product e*factor")
    return np.minimum(round_shift(prod, c.out_shift), OUT_MAX)
