"""Integer square root and integer-only LayerNorm.

Follows I-BERT (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021,
section 3.5): the standard deviation comes from an integer Newton square root
and one reciprocal per row, ``factor = floor(2**31 / std)``; the normalized
value is ``(x - mean) * factor`` shifted. This module is the specification of
``rtl/layernorm.py:LayerNormUnit``.

Integer square root
-------------------
:func:`isqrt` is Newton's iteration from ``x0 = 2**ceil(bits(n) / 2)``:
``x_{i+1} = floor((x_i + floor(n / x_i)) / 2)``, stopping at the first
``x_{i+1} >= x_i`` and returning ``x_i = floor(sqrt(n))``. ``x0 >= sqrt(n)``;
while ``x_i > floor(sqrt(n))`` every update strictly decreases and never goes
below ``floor(sqrt(n))`` (AM-GM), so the result is exact. The number of updates
is bounded by :func:`isqrt_iteration_bound` (6 for ``n < 2**32``). Unlike
I-ViT's fixed 10 iterations from ``2**16``, this converges for every ``n``.

LayerNorm datapath (row of ``C`` inputs ``x`` of ``in_bits`` bits; widths in bits)
----------------------------------------------------------------------------------
====  ==========================================================  ====================
step  integer operation                                           width
====  ==========================================================  ====================
1     ``s1 = sum(x)``, ``s2 = sum(x**2)``                         ``s1_bits`` signed,
                                                                  ``s2_bits`` unsigned
2     ``dev = C * x - s1``  (= ``C * (x - mean)``, exact)         ``dev_bits`` signed
3     ``D = C * s2 - s1**2 + q_eps``  (= ``C**2 (var + eps)``)    ``var_bits`` unsigned
4     ``p = (32 - bits(D)) // 2``; ``Dn = D * 4**p``              32 unsigned
5     ``std = isqrt(Dn)``                                         16 unsigned
6     ``factor = floor(2**31 / std)``  (one per row)              17 unsigned
7     ``n = round_shift(dev * factor, 31 - p - NORM_FRAC_BITS)``  ``norm_bits`` signed
8     ``acc = n * gamma_int[c] + beta_int[c]``                    ``acc_bits`` signed
9     ``y = saturate8(round_shift(acc, gamma_shift + NF))``       8 signed
====  ==========================================================  ====================

The mean is never rounded: ``x - mean`` is carried exactly as
``C * x - sum(x)`` (scale ``S_in / C``), and ``sqrt(D) = C * sqrt(var + eps)``
is at the same scale, so the two factors of ``C`` cancel in
``dev / sqrt(D)`` and no division by ``C`` exists anywhere (exact for every
``C``). Step 4 is a data-dependent even shift (a leading-zero count) that
puts ``Dn`` in ``[2**30, 2**32)``, so ``std`` always has 16 significant bits:
small variances are as accurate as large ones (a negative ``p`` is a floor
right shift by ``-2p``). ``n`` is the normalized value at scale
``2**-NORM_FRAC_BITS``. A row with ``D = 0`` (constant row and ``q_eps = 0``)
has ``dev = 0`` and uses ``factor = 0``; its output is ``beta``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .dyadic import positive_scale, real_scalar
from .intops import (
    as_int64,
    check_range,
    check_signed,
    check_unsigned,
    int_param,
    int_range,
    round_shift,
    saturate,
)
from .quant import real_array

__all__ = [
    "CHANNELS_MAX",
    "GAMMA_BITS",
    "IN_BITS_MAX",
    "IN_SCALE_MIN",
    "ISQRT_BITS",
    "NORM_FRAC_BITS",
    "RECIP_K",
    "LayerNormConstants",
    "bit_length",
    "isqrt",
    "isqrt_iteration_bound",
    "layernorm_constants",
    "layernorm_int",
]

#: Width of the normalized variance fed to the square root.
ISQRT_BITS = 32
#: ``factor = floor(2**RECIP_K / std)``; with ``std`` in ``[2**15, 2**16)`` it has 17 bits.
RECIP_K = 31
#: Fraction bits of the normalized value ``n``.
NORM_FRAC_BITS = 12
#: Width of the signed per-channel gamma multiplier.
GAMMA_BITS = 16
#: Largest supported row length and input width (all intermediates then fit int64).
CHANNELS_MAX = 4096
IN_BITS_MAX = 16
#: ``|beta| / out_scale`` must stay below this many output LSBs: the same magnitude range
#: as gamma's. Any offset beyond 127 LSBs saturates every int8 output anyway; the bound
#: keeps ``beta_int < 2**(2 * (GAMMA_BITS - 1) + NORM_FRAC_BITS) = 2**42``, so the affine
#: accumulator stays far inside int64.
_BETA_LSB_LIMIT = 1 << (GAMMA_BITS - 1)
#: Smallest ``in_scale``: its square (the scale of ``C**2 var``, which ``eps`` is divided
#: by) must be a normal float64; a smaller one would underflow to a subnormal or to 0.
IN_SCALE_MIN = math.sqrt(float(np.finfo(np.float64).tiny))
_POW2 = np.left_shift(np.int64(1), np.arange(63, dtype=np.int64))


def _round_half_up(v: np.ndarray) -> np.ndarray:
    """``floor(v + 1/2)`` in float64: the rounding of :func:`~edgetron.golden.quant.quantize`."""
    return np.floor(v + 0.5)


def bit_length(x) -> np.ndarray:
    """Element-wise ``int.bit_length`` of non-negative int64 values (exact, vectorised).

    Parameters
    ----------
    x : int or array_like of int
        Non-negative values in the int64 range.

    Returns
    -------
    numpy.ndarray of int64
        ``bits(x)`` (0 for 0), the shape of ``x``.

    Raises
    ------
    TypeError
        Non-integer ``x``.
    ValueError
        A negative element.
    """
    v = as_int64(x, "x")
    check_range(v, 0, np.iinfo(np.int64).max, "x")
    return np.searchsorted(_POW2, v, side="right").astype(np.int64)


def isqrt_iteration_bound(bits: int) -> int:
    """Largest number of Newton updates :func:`isqrt` makes for any ``n < 2**bits``.

    With ``x_i = sqrt(n) * (1 + e_i)``: ``e_0 <= 1`` (because
    ``n >= 2**(bits(n)-1)``) and ``e_{i+1} <= e_i**2 / (2 (1 + e_i))``; the floors
    only lower ``x``. Once ``sqrt(n) * e_i < 1``, ``x_i <= floor(sqrt(n)) + 1``;
    at most one more update reaches ``floor(sqrt(n))`` and one more detects the
    stop. Hence the bound is that ``i`` plus 2.

    Parameters
    ----------
    bits : int
        Width of ``n``, 1 to 63 (a Python or NumPy integer).

    Returns
    -------
    int
        The bound (6 for ``bits = 32``).

    Raises
    ------
    ValueError
        ``bits`` not an integer in ``[1, 63]``.
    """
    int_range(bits)  # validates bits: an integer in [1, 63] (ValueError naming it)
    bits = int(bits)
    err, i = 1.0, 0
    while math.ldexp(err, (bits + 1) // 2) >= 1.0:
        err = err * err / (2.0 * (1.0 + err))
        i += 1
    return i + 2


def isqrt(n, return_iterations: bool = False):
    """Exact ``floor(sqrt(n))`` by Newton's iteration, element-wise.

    Parameters
    ----------
    n : array of int
        Non-negative values (int64 range).
    return_iterations : bool
        Also return the number of Newton updates made per element (0 for
        ``n = 0``, which is answered directly; the update that detects the stop
        is counted).

    Returns
    -------
    numpy.ndarray of int64, or (root, iterations)
        ``floor(sqrt(n))`` of the shape of ``n``; with ``return_iterations`` also
        the int64 update counts, of the same shape.

    Raises
    ------
    TypeError
        Non-integer ``n``.
    ValueError
        A negative element.
    """
    v = as_int64(n, "n")
    check_range(v, 0, np.iinfo(np.int64).max, "n")
    flat = v.reshape(-1)
    root = np.zeros_like(flat)
    iters = np.zeros_like(flat)
    idx = np.flatnonzero(flat)
    x = np.left_shift(np.int64(1), (bit_length(flat[idx]) + 1) // 2)
    nn = flat[idx]
    while idx.size:  # terminates: iterates strictly decrease until the stop (module docstring)
        nxt = (x + nn // x) >> 1
        iters[idx] += 1
        stop = nxt >= x
        root[idx[stop]] = x[stop]
        go = ~stop
        idx, x, nn = idx[go], nxt[go], nn[go]
    root = root.reshape(v.shape)
    if return_iterations:
        return root, iters.reshape(v.shape)
    return root


def _channel_vector(x, name: str, channels: int | None) -> np.ndarray:
    arr = real_array(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per channel), got shape {arr.shape}")
    if channels is not None and arr.shape[0] != channels:
        raise ValueError(f"{name} must have {channels} values (like gamma), got {arr.shape[0]}")
    return arr


class LayerNormConstants(NamedTuple):
    """Integer constants of :func:`layernorm_int` (see :func:`layernorm_constants`)."""

    channels: int  #: C, row length
    in_bits: int  #: width of the signed input
    in_scale: float  #: S_in, real scale of the input
    out_scale: float  #: S_out, real scale of the int8 output
    eps: float  #: real epsilon added to the variance
    q_eps: int  #: floor(eps * C**2 / S_in**2 + 1/2), epsilon at the scale of D
    gamma_shift: int  #: G: gamma_int at scale S_out * 2**-G per unit of n
    gamma_int: np.ndarray  #: floor(gamma / S_out * 2**G + 1/2), int64 (C,), |.| < 2**(GAMMA_BITS-1)
    beta_int: np.ndarray  #: floor(beta / S_out * 2**(G + NORM_FRAC_BITS) + 1/2), int64 (C,)
    s1_bits: int  #: width of sum(x) (signed)
    s2_bits: int  #: width of sum(x**2) (unsigned)
    dev_bits: int  #: width of dev = C*x - sum(x) (signed)
    var_bits: int  #: width of D = C*s2 - s1**2 + q_eps (unsigned)
    norm_bits: int  #: width of n (signed)
    acc_bits: int  #: width of the affine accumulator (signed)


def layernorm_constants(
    gamma, beta, in_scale, out_scale, eps: float = 1e-6, in_bits: int = 8
) -> LayerNormConstants:
    """Derive every integer constant of :func:`layernorm_int` from real values.

    Parameters
    ----------
    gamma, beta : array of float, shape (C,)
        Real affine parameters; ``2 <= C <= CHANNELS_MAX``.
    in_scale : float
        Real value of one input LSB; finite and at least ``IN_SCALE_MIN``
        (about 1.49e-154, so that ``in_scale**2``, the scale of the variance, is
        a normal float64).
    out_scale : float
        Real value of one output (int8) LSB.
    eps : float
        Real epsilon added to the variance (timm's ViT uses 1e-6), ``>= 0``.
    in_bits : int
        Signed input width, 2 to ``IN_BITS_MAX``.

    Returns
    -------
    LayerNormConstants

    Raises
    ------
    TypeError
        Non-numeric ``gamma``, ``beta`` or scales, or a non-integer ``in_bits``.
    ValueError
        ``gamma`` / ``beta`` not 1-D of equal length ``C`` in ``[2, CHANNELS_MAX]``,
        non-finite values, a scale that is not finite and positive, ``in_scale``
        below ``IN_SCALE_MIN``, ``eps < 0``, ``in_bits`` outside its range, or
        ``gamma``, ``beta`` or ``eps`` too large for their widths (see Notes).

    Notes
    -----
    Every constant is rounded half up, ``floor(v + 1/2)`` in float64, as
    :func:`~edgetron.golden.quant.quantize` rounds. ``G`` is the largest shift
    in ``[0, GAMMA_BITS - 1]`` for which every ``floor(|gamma| / S_out * 2**G + 1/2)``
    fits ``GAMMA_BITS - 1`` magnitude bits; ``max|gamma| / S_out`` must therefore
    be below ``2**(GAMMA_BITS - 1) - 1`` and ``max|beta| / S_out`` below
    ``2**(GAMMA_BITS - 1)`` (beyond 127 output LSBs the offset saturates every
    output anyway). ``eps * C**2 / S_in**2`` plus the largest ``C**2 var`` must
    stay below ``2**62``.
    """
    g = _channel_vector(gamma, "gamma", None)
    c = g.shape[0]
    if not 2 <= c <= CHANNELS_MAX:
        raise ValueError(f"LayerNorm needs 2 to {CHANNELS_MAX} channels, got {c}")
    b = _channel_vector(beta, "beta", c)
    s_in = positive_scale(in_scale, "in_scale")
    if s_in < IN_SCALE_MIN:
        raise ValueError(
            f"in_scale = {s_in!r} is too small: it must be >= {IN_SCALE_MIN:.6g} so that "
            "in_scale**2 (the scale of the variance) is a normal float64"
        )
    s_out = positive_scale(out_scale, "out_scale")
    e = real_scalar(eps, "eps")
    if e < 0.0:
        raise ValueError(f"eps must be >= 0, got {e!r}")
    in_bits = int_param(in_bits, "in_bits", 2, IN_BITS_MAX)

    g_lim = (1 << (GAMMA_BITS - 1)) - 1
    ratio = np.abs(g) / s_out
    if ratio.max() >= g_lim:
        raise ValueError(
            f"max |gamma| / out_scale = {ratio.max():.6g} must be below {g_lim}; "
            "out_scale is too small for this gamma"
        )
    shift = GAMMA_BITS - 1
    while _round_half_up(ratio * 2.0**shift).max() > g_lim:
        shift -= 1
    beta_lsb = np.abs(b) / s_out
    if beta_lsb.max() >= _BETA_LSB_LIMIT:
        raise ValueError(
            f"max |beta| / out_scale = {beta_lsb.max():.6g} must be below {_BETA_LSB_LIMIT}; "
            "out_scale is too small for this beta"
        )
    gamma_int = _round_half_up(g / s_out * 2.0**shift).astype(np.int64)
    beta_int = _round_half_up(b / s_out * 2.0 ** (shift + NORM_FRAC_BITS)).astype(np.int64)

    q_eps_real = e * c * c / (s_in * s_in)
    lo, hi = int_range(in_bits)
    s2_max = c * lo * lo
    d_max = (c * (hi - lo)) ** 2 // 4  # C * sum((x - mean)**2) <= C**2 * range**2 / 4
    if q_eps_real + d_max >= 2.0**62:
        raise ValueError(
            f"eps / in_scale**2 = {e / (s_in * s_in):.6g} is too large: "
            "the variance plus epsilon would not fit 62 bits"
        )
    q_eps = math.floor(q_eps_real + 0.5)
    norm_max = (math.isqrt(c - 1) + 1) << NORM_FRAC_BITS
    acc_max = norm_max * int(np.abs(gamma_int).max()) + int(np.abs(beta_int).max())
    return LayerNormConstants(
        channels=c,
        in_bits=in_bits,
        in_scale=s_in,
        out_scale=s_out,
        eps=e,
        q_eps=q_eps,
        gamma_shift=shift,
        gamma_int=gamma_int,
        beta_int=beta_int,
        s1_bits=(c * -lo).bit_length() + 1,
        s2_bits=s2_max.bit_length(),
        dev_bits=(c * (hi - lo)).bit_length() + 1,
        var_bits=max(d_max + q_eps, c * s2_max).bit_length(),
        norm_bits=norm_max.bit_length() + 1,
        acc_bits=acc_max.bit_length() + 1,
    )


def layernorm_int(q, consts: LayerNormConstants) -> np.ndarray:
    """Integer LayerNorm over the last axis with per-channel affine and int8 output.

    Parameters
    ----------
    q : array of int, shape (..., C)
        Inputs in the signed ``consts.in_bits`` range at scale ``consts.in_scale``.
    consts : LayerNormConstants
        From :func:`layernorm_constants`.

    Returns
    -------
    numpy.ndarray of int64, shape (..., C)
        int8 values at scale ``consts.out_scale``.

    Raises
    ------
    TypeError
        Non-integer ``q`` or ``consts`` that is not a LayerNormConstants.
    ValueError
        A 0-d ``q``, a last axis that is not ``C`` long, or values outside the
        input range.
    """
    if not isinstance(consts, LayerNormConstants):
        raise TypeError(f"consts must be LayerNormConstants, got {type(consts).__name__}")
    x = as_int64(q, "q")
    c = consts.channels
    if x.ndim == 0 or x.shape[-1] != c:
        raise ValueError(f"q must have {c} channels on its last axis, got shape {x.shape}")
    lo, hi = int_range(consts.in_bits)
    check_range(x, lo, hi, f"q (int{consts.in_bits} input)")

    s1 = x.sum(axis=-1, keepdims=True)
    check_signed(s1, consts.s1_bits, "LayerNorm sum(x)")
    s2 = (x * x).sum(axis=-1, keepdims=True)
    check_unsigned(s2, consts.s2_bits, "LayerNorm sum(x**2)")
    dev = c * x - s1
    check_signed(dev, consts.dev_bits, "LayerNorm dev = C*x - sum(x)")
    var = c * s2 - s1 * s1 + consts.q_eps
    check_unsigned(var, consts.var_bits, "LayerNorm C**2 * variance")

    p = (ISQRT_BITS - bit_length(var)) // 2
    var_n = np.where(
        p >= 0, np.left_shift(var, 2 * np.maximum(p, 0)), np.right_shift(var, 2 * np.maximum(-p, 0))
    )
    check_unsigned(var_n, ISQRT_BITS, "LayerNorm normalized variance")
    std = isqrt(var_n)
    check_unsigned(std, ISQRT_BITS // 2, "LayerNorm std")
    factor = np.where(std > 0, (1 << RECIP_K) // np.maximum(std, 1), 0)
    check_unsigned(factor, RECIP_K - ISQRT_BITS // 2 + 2, "LayerNorm factor")

    norm = round_shift(dev * factor, RECIP_K - p - NORM_FRAC_BITS)
    check_signed(norm, consts.norm_bits, "LayerNorm normalized value")
    acc = norm * consts.gamma_int + consts.beta_int
    check_signed(acc, consts.acc_bits, "LayerNorm affine accumulator")
    return saturate(round_shift(acc, consts.gamma_shift + NORM_FRAC_BITS), 8)
