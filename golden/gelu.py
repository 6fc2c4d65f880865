"""Integer-only GELU (I-BERT i-GELU).

Follows I-BERT (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021,
section 3.3): ``GELU(x) = x/2 * (1 + erf(x / sqrt2))`` with the clipped second
order fit ``erf(t) ~ sgn(t) * (a * (min(|t|, -b) + b)**2 + 1)``,
``a = GELU_A = -0.2888``, ``b = GELU_B = -1.769``. This module is the
specification of ``rtl/gelu.py:GeluUnit``; :func:`gelu_constants` derives every
integer constant from the real input scale.

Datapath (input ``q`` of ``in_bits`` bits at real scale ``S``; widths in bits)
------------------------------------------------------------------------------
====  ====================================================  ===========================
step  integer operation                                     width
====  ====================================================  ===========================
1     ``mag = |q|``                                         ``in_bits`` unsigned
2     ``u = min(pre(min(mag, clamp_in)), clip)``            ``u_bits`` unsigned
3     ``w = (clip - u)**2``  (= ``(min(|t|, -b) + b)**2``)  ``w_bits`` unsigned
4     ``erf = sgn(q) * (q_one - w)``; ``r = q_one + erf``   ``r_bits`` unsigned
5     ``rt = r >> erf_shift``                               ``ERF_BITS`` (16) unsigned
6     ``prod = q * rt``                                     ``in_bits + ERF_BITS`` signed
7     ``y = round_shift(prod, out_shift)``                  32 signed
====  ====================================================  ===========================

``pre`` rescales ``|q|`` exactly to the internal scale ``S_i = S / 2**f`` in
``(2**-(F+1), 2**-F]`` (``F = GELU_FRAC_BITS``; left shift for ``f >= 0``,
round-half-up right shift otherwise); in units of ``t = x / sqrt2`` the
internal scale is ``S_t = S_i / sqrt2``. As in I-BERT, ``q_b = floor(b / S_t)``
(negative; ``clip = -q_b``) and ``c_int = floor(1 / (a * S_t**2))`` (negative);
here the sign is folded so every intermediate is unsigned: ``q_one = -c_int``
represents 1 at the positive scale ``-a * S_t**2``. ``r = 1 + erf`` lies in
``[0, 2 q_one]``; it is truncated to ``ERF_BITS`` bits before the one
multiplication by ``q``. The int32 output is at the real scale
``S * (-a) * S_t**2 * 2**(erf_shift + out_shift - 1)``; ``out_shift`` is 0
for inputs of up to 16 bits (an int8 input's output scale is then about
``S * 2**-16``) and 16 for int32 inputs (output scale about ``S``).
:func:`gelu_int8` requantizes the int32 result to int8 with a dyadic
multiplier.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .dyadic import dyadic, exact_ratio, internal_shift, positive_scale
from .intops import (
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
    check_signed,
    check_unsigned,
    int_param,
    int_range,
    pow2_rescale,
    pow2_rescale_limit,
    requantize,
    round_shift,
)

__all__ = [
    "ERF_BITS",
    "GELU_A",
    "GELU_B",
    "GELU_FRAC_BITS",
    "OUT_BITS",
    "GeluConstants",
    "GeluInt8Constants",
    "gelu_apply",
    "gelu_constants",
    "gelu_int",
    "gelu_int8",
    "gelu_int8_apply",
    "gelu_int8_constants",
]

#: I-BERT's clipped fit ``erf(t) ~ sgn(t) * (GELU_A * (min(|t|, -GELU_B) + GELU_B)**2 + 1)``.
GELU_A, GELU_B = -0.2888, -1.769
#: The erf polynomial runs at an internal scale ``S_i`` in ``(2**-(F+1), 2**-F]``.
#: ``F = 10`` keeps the integer i-GELU within 0.0183 of GELU on [-4, 4] (the float
#: approximation alone is 0.0182 off); larger F only widens the squarer.
GELU_FRAC_BITS = 10
#: Width of ``1 + erf`` after truncation (the multiplier operand next to ``q``).
ERF_BITS = 16
#: Width of the i-GELU output.
OUT_BITS = 32
_IN_BITS_MIN, _IN_BITS_MAX = 2, 32


class GeluConstants(NamedTuple):
    """Integer constants of :func:`gelu_int` for one input scale and width."""

    in_scale: float  #: S, real scale of the input
    in_bits: int  #: width of the signed input
    pre_shift: int  #: f: internal magnitude = |q| << f (f >= 0) or round_shift(|q|, -f)
    int_scale: float  #: S_i = S / 2**f, in (2**-(F+1), 2**-F]
    q_b: int  #: floor(GELU_B / S_t) with S_t = S_i / sqrt2 (negative)
    clip: int  #: -q_b: |t| is clipped here
    q_one: int  #: -floor(1 / (GELU_A * S_t**2)): the integer 1 at scale -GELU_A * S_t**2
    clamp_in: int  #: clamp of |q| before rescaling (every larger |q| clips too)
    erf_scale: float  #: -GELU_A * S_t**2, real scale of erf and of r = 1 + erf
    erf_shift: int  #: bits(2 q_one) - ERF_BITS: rt = r >> erf_shift
    out_shift: int  #: final round-half-up shift so the output fits int32
    out_scale: float  #: S * erf_scale * 2**(erf_shift + out_shift) / 2
    u_bits: int  #: width of u (unsigned)
    w_bits: int  #: width of w = (clip - u)**2 (unsigned)
    r_bits: int  #: width of r = 1 + erf (unsigned)
    prod_bits: int  #: width of q * rt (signed)


def gelu_constants(scale, in_bits: int = 32) -> GeluConstants:
    """Derive every integer constant of :func:`gelu_int` from the real input scale.

    Parameters
    ----------
    scale : float
        Real value of one input LSB; finite and > 0, and within ``(2**-73, 2**20]``
        (the range of :func:`~edgetron.golden.dyadic.internal_shift` for ``F = 10``).
    in_bits : int
        Signed input width, 2 to 32 (8 for int8 activations, 32 for an int32
        accumulator).

    Returns
    -------
    GeluConstants

    Raises
    ------
    TypeError
        ``scale`` not a real number or ``in_bits`` not an integer.
    ValueError
        ``scale`` not finite and positive or outside the supported range, or
        ``in_bits`` outside [2, 32].
    """
    s = positive_scale(scale)
    bits = int_param(in_bits, "in_bits", _IN_BITS_MIN, _IN_BITS_MAX)
    f = internal_shift(s, GELU_FRAC_BITS)
    s_int = math.ldexp(s, -f)
    s_t = s_int / math.sqrt(2.0)
    q_b = math.floor(GELU_B / s_t)
    clip = -q_b
    q_one = -math.floor(1.0 / (GELU_A * s_t * s_t))
    clamp_in = pow2_rescale_limit(clip, f)  # pre(clamp_in) >= clip
    r_max = 2 * q_one
    erf_shift = max(0, r_max.bit_length() - ERF_BITS)
    out_shift = max(0, bits + ERF_BITS - OUT_BITS)
    erf_scale = -GELU_A * s_t * s_t
    return GeluConstants(
        in_scale=s,
        in_bits=bits,
        pre_shift=f,
        int_scale=s_int,
        q_b=q_b,
        clip=clip,
        q_one=q_one,
        clamp_in=min(clamp_in, 1 << (bits - 1)),
        erf_scale=erf_scale,
        erf_shift=erf_shift,
        out_shift=out_shift,
        out_scale=s * erf_scale * 2.0 ** (erf_shift + out_shift - 1),
        u_bits=clip.bit_length(),
        w_bits=(clip * clip).bit_length(),
        r_bits=r_max.bit_length(),
        prod_bits=bits + ERF_BITS,
    )


def _gelu(x: np.ndarray, c: GeluConstants) -> np.ndarray:
    """Steps 1-7 of the datapath on validated input ``x``."""
    mag = np.minimum(np.abs(x), c.clamp_in)
    u = np.minimum(pow2_rescale(mag, c.pre_shift), c.clip)
    check_unsigned(u, c.u_bits, "i-GELU magnitude u")
    w = (c.clip - u) ** 2
    check_range(w, 0, c.q_one, "i-GELU square w")
    erf = np.sign(x) * (c.q_one - w)
    r = c.q_one + erf
    check_unsigned(r, c.r_bits, "i-GELU 1 + erf")
    rt = np.right_shift(r, c.erf_shift)
    check_unsigned(rt, ERF_BITS, "i-GELU truncated 1 + erf")
    prod = x * rt
    check_signed(prod, c.prod_bits, "i-GELU product q * (1 + erf)")
    y = round_shift(prod, c.out_shift)
    check_signed(y, OUT_BITS, "i-GELU output")
    return y


def _input(q, c: GeluConstants) -> np.ndarray:
    x = as_int64(q, "q")
    lo, hi = int_range(c.in_bits)
    check_range(x, lo, hi, f"q (int{c.in_bits} input)")
    return x


def gelu_int(q, scale, in_bits: int = 32) -> np.ndarray:
    """Integer GELU, element-wise (I-BERT i-GELU).

    Parameters
    ----------
    q : array of int, any shape
        Inputs in the signed ``in_bits`` range.
    scale : float
        Real value of one input LSB.
    in_bits : int
        Declared input width (2 to 32); sets the output shift.

    Returns
    -------
    numpy.ndarray of int64
        int32 values at the real scale ``gelu_constants(scale, in_bits).out_scale``.

    Raises
    ------
    TypeError
        Non-integer ``q``, non-real ``scale`` or non-integer ``in_bits``.
    ValueError
        Values outside the ``in_bits`` range, a scale that is not finite and
        positive, or ``in_bits`` outside [2, 32].
    """
    return gelu_apply(q, gelu_constants(scale, in_bits))


def gelu_apply(q, consts: GeluConstants) -> np.ndarray:
    """:func:`gelu_int` with constants derived ahead of time (integers only at run time).

    Parameters
    ----------
    q : array of int, any shape
        Inputs in the signed ``consts.in_bits`` range.
    consts : GeluConstants
        From :func:`gelu_constants`.

    Returns
    -------
    numpy.ndarray of int64
        As :func:`gelu_int`.

    Raises
    ------
    TypeError
        Non-integer ``q``, or ``consts`` that is not a GeluConstants.
    ValueError
        Values outside the ``consts.in_bits`` range.
    """
    if not isinstance(consts, GeluConstants):
        raise TypeError(f"consts must be GeluConstants, got {type(consts).__name__}")
    return _gelu(_input(q, consts), consts)


class GeluInt8Constants(NamedTuple):
    """Constants of :func:`gelu_int8`: i-GELU, then a dyadic requantization to int8."""

    gelu: GeluConstants  #: constants of the int32 i-GELU
    out_scale: float  #: real scale of the int8 output
    m: int  #: dyadic multiplier of gelu.out_scale / out_scale
    s: int  #: its shift


def gelu_int8_constants(scale, out_scale, in_bits: int = 32) -> GeluInt8Constants:
    """Derive the constants of :func:`gelu_int8` from the real input and output scales.

    ``(m, s)`` is :func:`edgetron.golden.dyadic.dyadic` of the exact ratio
    ``gelu_constants(scale, in_bits).out_scale / out_scale``
    (``2**30 <= m < 2**31`` for every ratio of at least ``2**-32``).

    Parameters
    ----------
    scale : float
        Real value of one input LSB, as for :func:`gelu_constants`.
    out_scale : float
        Real scale of the int8 output; finite and > 0.
    in_bits : int
        Declared input width, 2 to 32.

    Returns
    -------
    GeluInt8Constants

    Raises
    ------
    TypeError, ValueError
        As :func:`gelu_constants`; ``out_scale`` not finite and positive; a
        ratio that no dyadic ``m / 2**s`` with ``1 <= s <= 62`` represents.
    """
    c = gelu_constants(scale, in_bits)
    target = positive_scale(out_scale, "out_scale")
    ratio = exact_ratio((c.out_scale,), target, ("i-GELU output scale", "out_scale"))
    try:
        m, s = dyadic(ratio)
    except ValueError as exc:
        raise ValueError(
            f"requantization ratio {float(ratio):.6g} (int32 output scale / out_scale) needs "
            f"shift outside [{S_MIN}, {S_MAX}]: {exc}"
        ) from None
    return GeluInt8Constants(gelu=c, out_scale=target, m=m, s=s)


def gelu_int8(q, scale, out_scale, in_bits: int = 32) -> np.ndarray:
    """:func:`gelu_int` requantized to int8 at the real scale ``out_scale``.

    The int32 result is multiplied by the dyadic ``m / 2**s`` of
    ``gelu_constants(scale, in_bits).out_scale / out_scale``
    (:func:`gelu_int8_constants`), rounded half up and saturated to [-128, 127]
    (:func:`edgetron.golden.intops.requantize`).

    Parameters
    ----------
    q : array of int, any shape
        Inputs in the signed ``in_bits`` range.
    scale, out_scale, in_bits
        As :func:`gelu_int8_constants`.

    Returns
    -------
    numpy.ndarray of int64
        int8 values at the real scale ``out_scale``, the shape of ``q``.

    Raises
    ------
    TypeError, ValueError
        As :func:`gelu_int` and :func:`gelu_int8_constants`.
    """
    return gelu_int8_apply(q, gelu_int8_constants(scale, out_scale, in_bits))


def gelu_int8_apply(q, consts: GeluInt8Constants) -> np.ndarray:
    """:func:`gelu_int8` with constants derived ahead of time (integers only at run time).

    Parameters
    ----------
    q : array of int, any shape
        Inputs in the signed ``consts.gelu.in_bits`` range.
    consts : GeluInt8Constants
        From :func:`gelu_int8_constants`.

    Returns
    -------
    numpy.ndarray of int64
        As :func:`gelu_int8`.

    Raises
    ------
    TypeError
        Non-integer ``q``, or ``consts`` that is not a GeluInt8Constants.
    ValueError
        Values outside the input range.
    """
    if not isinstance(consts, GeluInt8Constants):
        raise TypeError(f"consts must be GeluInt8Constants, got {type(consts).__name__}")
    return requantize(gelu_apply(q, consts.gelu), consts.m, consts.s)
