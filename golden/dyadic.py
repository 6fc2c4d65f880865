"""Exact integer constants from real scales: dyadic multipliers, reciprocals, shifts.

Real-valued scales are used once, ahead of time, to derive the integer constants
every kernel runs on; this module holds that arithmetic. Calibration (float
tensors -> scales) is :mod:`edgetron.golden.quant`; the run-time requantizer is
:func:`edgetron.golden.intops.requantize`.

* :func:`real_scalar`, :func:`positive_scale`: the checks every kernel applies to
  a real scale before deriving its constants.
* :func:`exact_ratio`: the exact rational value of a ratio of float scales.
* :func:`dyadic`, :func:`dyadic_per_channel`, :func:`requant_constants`: the
  multiplier ``m`` and shift ``s`` with ``m / 2**s ~ M`` for a real multiplier
  ``M`` (``S_x * S_w[c] / S_y`` for an accumulator).
* :func:`exact_reciprocal`: ``(m, s)`` with ``(n * m) >> s == n // d`` for every
  ``n`` up to a bound (division by a constant).
* :func:`internal_shift`: the power of two that moves a scale to a fixed
  resolution (the polynomial kernels' internal scale).

Rounding
--------
Every real -> integer rounding here is *round half up*, ``floor(v + 1/2)``, the
same rule :func:`~edgetron.golden.intops.round_shift` applies to integers. The
dyadic constants are computed in exact rational arithmetic
(:class:`fractions.Fraction`) from the float scales, so ``(m, s)`` is the
correctly rounded dyadic value of the exact ratio of the stored scales.

Dyadic error bound
------------------
With the shift chosen by :func:`dyadic` (the largest ``s <= 62`` with
``m < 2**31``):

* ``|m / 2**s - M| <= 2**-(s+1)`` always (round to nearest);
* if ``2**-32 <= M < 2**30 - 1/4`` then ``2**30 <= m < 2**31`` and the relative
  error is at most ``1 / (2**31 - 1)``;
* if ``2**-63 <= M < 2**-32`` the shift is capped at 62 and the absolute error
  is at most ``2**-63``.

For an int32 accumulator the pre-rounding error of ``acc * m / 2**s`` against
``acc * M`` is therefore at most ``128.5 / (2**31 - 1) < 2**-23`` output LSB
whenever the output does not saturate (``|acc * M| <= 128.5``), so the requantized value equals the
correctly rounded real one except within ``2**-23`` of a rounding tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .intops import M_MAX, MULT_BITS, S_MAX, S_MIN, int_param

__all__ = [
    "INTERNAL_SHIFT_MAX",
    "INTERNAL_SHIFT_MIN",
    "dyadic",
    "dyadic_per_channel",
    "exact_positive",
    "exact_ratio",
    "exact_reciprocal",
    "internal_shift",
    "positive_scale",
    "real_scalar",
    "requant_constants",
    "round_half_up",
]

_HALF = Fraction(1, 2)


# ---- exact scalars ------------------------------------------------------------------------
def _exact(value, name: str) -> Fraction:
    """``value`` as an exact Fraction; TypeError for non-reals, ValueError for nan/inf."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, Fraction, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
        return Fraction(v)
    if isinstance(value, Fraction):
        return value
    return Fraction(int(value))


def _real_float(value, name: str) -> float:
    """``float(value)`` of a real scalar; an int beyond the float64 range becomes ``inf``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # a Python int above the float64 range
        return math.inf if value > 0 else -math.inf


def real_scalar(value, name: str) -> float:
    """``float(value)`` of a finite real scalar.

    Parameters
    ----------
    value : int, float or NumPy real scalar
        The value to check.
    name : str
        Its name, for the messages.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``value`` is not a real number (bools and strings included).
    ValueError
        ``value`` is nan or infinite.
    """
    v = _real_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def positive_scale(value, name: str = "scale") -> float:
    """``float(value)`` of a real scale, which must be finite and > 0.

    The check every kernel applies to a real-valued scale before deriving its
    integer constants.

    Parameters
    ----------
    value : int, float or NumPy real scalar
        The scale.
    name : str
        Its name, for the messages.

    Returns
    -------
    float
        ``value`` as a Python float (exact for float and NumPy float inputs).

    Raises
    ------
    TypeError
        ``value`` is not a real number (bools and strings included).
    ValueError
        ``value`` is nan, infinite, zero or negative.
    """
    v = _real_float(value, name)
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return v


#: Range of :func:`internal_shift`. ``f >= -S_MAX``: a right shift by ``-f`` is at most
#: :func:`~edgetron.golden.intops.round_shift`'s largest shift. ``f <= 30``: the left-shifted
#: magnitude ``pre(clamp_in) < clamp + 2**f`` (:func:`~edgetron.golden.intops.pow2_rescale_limit`)
#: stays within 32 bits, and scales up to ``2**(30 - frac_bits)`` are far coarser than any
#: calibrated int8 scale.
INTERNAL_SHIFT_MIN, INTERNAL_SHIFT_MAX = -S_MAX, 30


def internal_shift(scale: float, frac_bits: int) -> int:
    """Smallest integer ``f`` with ``scale / 2**f <= 2**-frac_bits``.

    The internal scale ``S / 2**f`` then lies in ``(2**-(frac_bits+1), 2**-frac_bits]``;
    ``f`` is exact (from the binary exponent, :func:`math.frexp`). Used by the
    polynomial kernels (i-exp, i-GELU) to run at a fixed resolution whatever
    the input scale (:func:`~edgetron.golden.intops.pow2_rescale`).

    Parameters
    ----------
    scale : positive finite real
        The input scale ``S``.
    frac_bits : int
        ``F``, the fraction bits of the internal scale, 0 to 62.

    Returns
    -------
    int
        ``f`` in ``[-62, 30]``.

    Raises
    ------
    TypeError
        ``scale`` not a real number or ``frac_bits`` not an integer.
    ValueError
        ``scale`` not finite and positive, ``frac_bits`` outside ``[0, 62]``, or
        ``f`` outside ``[-62, 30]``: the scale is outside
        ``(2**(-63 - frac_bits), 2**(30 - frac_bits)]``.
    """
    scale = positive_scale(scale)
    frac_bits = int_param(frac_bits, "frac_bits", 0, S_MAX)
    mant, exp2 = math.frexp(scale)  # scale = mant * 2**exp2, mant in [0.5, 1)
    f = frac_bits + (exp2 - 1 if mant == 0.5 else exp2)
    if not INTERNAL_SHIFT_MIN <= f <= INTERNAL_SHIFT_MAX:
        raise ValueError(
            f"scale {scale!r} is outside the supported range "
            f"(2**{INTERNAL_SHIFT_MIN - 1 - frac_bits}, 2**{INTERNAL_SHIFT_MAX - frac_bits}]"
        )
    return f


def exact_reciprocal(d: int, n_max: int) -> tuple[int, int]:
    """Multiplier and shift that replace division by the constant ``d``.

    Returns the smallest ``s >= 0`` and ``m = ceil(2**s / d)`` such that
    ``(n * m) >> s == n // d`` for every integer ``0 <= n <= n_max``.

    With ``err = m * d - 2**s`` (``0 <= err < d``) one has
    ``n * m / 2**s = n / d + n * err / (d * 2**s)``; the fractional part of
    ``n / d`` is at most ``(d - 1) / d``, so the floor is unchanged whenever
    ``n_max * err < 2**s``. That condition holds for
    ``s = bits(n_max) + bits(d)`` at the latest, so the search terminates.

    Parameters
    ----------
    d : int
        The constant divisor, ``d >= 1``.
    n_max : int
        Largest dividend the pair must be exact for, ``n_max >= 0``.

    Returns
    -------
    (m, s) : tuple of int
        Python ints: ``m = ceil(2**s / d)`` and the smallest such ``s >= 0``.

    Raises
    ------
    TypeError
        ``d`` or ``n_max`` is not an integer (bools included).
    ValueError
        ``d < 1`` or ``n_max < 0``.
    """
    for value, label in ((d, "d"), (n_max, "n_max")):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{label} must be an integer, got {type(value).__name__} {value!r}")
    d, n_max = int(d), int(n_max)
    if d < 1 or n_max < 0:
        raise ValueError(f"exact_reciprocal needs d >= 1 and n_max >= 0, got d={d}, n_max={n_max}")
    s = 0
    while True:
        m = -((-(1 << s)) // d)
        if n_max * (m * d - (1 << s)) < (1 << s):
            return m, s
        s += 1


def exact_positive(value, name: str) -> Fraction:
    """A positive finite real scalar as an exact :class:`~fractions.Fraction`.

    Parameters
    ----------
    value : int, float, Fraction or NumPy real scalar
        The value (a float is converted exactly, without rounding).
    name : str
        Its name, for the messages.

    Returns
    -------
    fractions.Fraction

    Raises
    ------
    TypeError
        ``value`` is not a real number (bools and strings included).
    ValueError
        ``value`` is nan, infinite, zero or negative.
    """
    v = _exact(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return v


def round_half_up(v: Fraction) -> int:
    """``floor(v + 1/2)`` of an exact rational: the rounding of every derived constant."""
    return math.floor(v + _HALF)


def _floor_log2(v: Fraction) -> int:
    """``floor(log2(v))`` of a positive Fraction, exactly."""
    p, q = v.numerator, v.denominator
    k = p.bit_length() - q.bit_length()
    if (p << max(-k, 0)) < (q << max(k, 0)):
        k -= 1
    return k


def exact_ratio(
    numerator_scales: Sequence, denominator_scale, names: Sequence[str] = ()
) -> Fraction:
    """Exact rational value of ``prod(numerator_scales) / denominator_scale``.

    Parameters
    ----------
    numerator_scales : sequence of positive finite reals
        E.g. ``(S_x, S_w[c])`` for a GEMM output channel or ``(S_a,)`` for one
        input of a residual add.
    denominator_scale : positive finite real
        The output scale ``S_y``.
    names : sequence of str, optional
        Names of the numerator scales and then of the denominator, used in
        error messages.

    Returns
    -------
    fractions.Fraction
        The ratio of the given (float) scales without any rounding.

    Raises
    ------
    TypeError, ValueError
        A scale that is not a positive finite real, named in the message.
    """
    scales = [*numerator_scales, denominator_scale]
    labels = list(names) or [f"scale {i}" for i in range(len(scales) - 1)] + ["output scale"]
    if len(labels) != len(scales):
        raise ValueError(f"names must give {len(scales)} labels, got {len(labels)}")
    exact = [exact_positive(sc, label) for sc, label in zip(scales, labels, strict=True)]
    num = Fraction(1)
    for v in exact[:-1]:
        num *= v
    return num / exact[-1]


# ---- dyadic multipliers -------------------------------------------------------------------
def dyadic(multiplier, shift: int | None = None) -> tuple[int, int]:
    """Best dyadic approximation ``m / 2**s`` of a positive real multiplier.

    Parameters
    ----------
    multiplier : positive finite real (int, float, numpy scalar or Fraction)
        The real-valued multiplier ``M``, e.g. ``S_x * S_w / S_y``.
    shift : int, optional
        Force this shift (``1 <= shift <= 62``) instead of choosing the most
        precise one; used when several multipliers must share one shift.

    Returns
    -------
    (m, s) : tuple of int
        ``1 <= m <= 2**31 - 1`` and ``1 <= s <= 62`` with
        ``m = floor(M * 2**s + 1/2)``. Without ``shift``, ``s`` is the largest
        shift for which ``m`` fits 31 bits, which minimises ``|m / 2**s - M|``
        (any value representable with a smaller shift is representable with a
        larger one). See the module docstring for the error bound.

    Raises
    ------
    TypeError
        ``multiplier`` is not a real number (bools and strings included).
    ValueError
        ``multiplier`` is nan, infinite, zero or negative; too large
        (``M >= 2**30 - 1/4``, which would need ``m >= 2**31`` at ``s = 1``);
        too small (``M < 2**-63``, which rounds to ``m = 0`` even at ``s = 62``);
        or, with ``shift``, out of range for that shift.
    """
    mult = exact_positive(multiplier, "multiplier")
    if shift is not None:
        if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, np.integer)):
            raise TypeError(f"shift must be an integer, got {type(shift).__name__} {shift!r}")
        if not S_MIN <= shift <= S_MAX:
            raise ValueError(f"shift s must lie in [{S_MIN}, {S_MAX}], got {shift}")
        s = int(shift)
        m = round_half_up(mult * (1 << s))
        if m > M_MAX:
            raise ValueError(
                f"multiplier {float(mult):.6g} is too large for shift s={s}: "
                f"m = {m} exceeds {M_MAX}"
            )
        if m == 0:
            raise ValueError(
                f"multiplier {float(mult):.6g} is too small for shift s={s}: it rounds to m = 0"
            )
        return m, s
    # mult in [2**e, 2**(e+1)) -> mult * 2**(MULT_BITS - 1 - e) in [2**30, 2**31).
    s = min(S_MAX, MULT_BITS - 1 - _floor_log2(mult))
    if s >= S_MIN and round_half_up(mult * (1 << s)) > M_MAX:
        s -= 1  # rounding carried into bit 31: one bit less of shift
    if s < S_MIN:
        raise ValueError(
            f"multiplier {float(mult):.6g} is too large: the largest dyadic m / 2**s "
            f"has m = {M_MAX} and s = {S_MIN} ({M_MAX / (1 << S_MIN):.6g})"
        )
    m = round_half_up(mult * (1 << s))
    if m == 0:
        raise ValueError(
            f"multiplier {float(mult):.6g} is too small: below 2**-{S_MAX + 1}, it rounds "
            f"to m = 0 even at the largest shift s = {S_MAX}"
        )
    return m, s


def _items(values, name: str) -> list:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
        return values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(values).__name__}")
    return list(values)


def dyadic_per_channel(multipliers, shift: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dyadic` applied to each channel of a vector of multipliers.

    Parameters
    ----------
    multipliers : 1-D sequence or array of positive finite reals
        One real multiplier per channel.
    shift : int, optional
        Force this shift on every channel, as for :func:`dyadic`.

    Returns
    -------
    (m, s) : pair of int64 arrays of the length of ``multipliers``

    Raises
    ------
    TypeError, ValueError
        As :func:`dyadic`, with the channel index in the message.
    """
    items = _items(multipliers, "multipliers")
    ms = np.zeros(len(items), dtype=np.int64)
    ss = np.zeros(len(items), dtype=np.int64)
    for c, value in enumerate(items):
        try:
            ms[c], ss[c] = dyadic(value, shift)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"channel {c}: {exc}") from None
    return ms, ss


def _is_vector(v) -> bool:
    return isinstance(v, (np.ndarray, Sequence)) and not isinstance(v, (str, bytes))


def requant_constants(input_scale, weight_scales, output_scale):
    """Dyadic ``(m, s)`` of ``M[c] = S_x * S_w[c] / S_y[c]`` for requantizing an accumulator.

    Parameters
    ----------
    input_scale : positive real
        ``S_x``, scale of the int8 input activation.
    weight_scales : positive real or 1-D sequence of positive reals
        ``S_w`` per output channel (a scalar for a per-tensor operand, e.g. the
        second activation of an attention GEMM).
    output_scale : positive real or 1-D sequence of positive reals
        ``S_y``, scale of the int8 output; a vector (one per channel, the length
        of ``weight_scales``) when the output columns form several tensors, e.g.
        the Q, K and V column groups of a fused QKV projection.

    Returns
    -------
    (m, s)
        Python ints for a scalar ``weight_scales``, int64 arrays otherwise.

    Raises
    ------
    TypeError, ValueError
        Bad scales (named, with the channel index), or a vector ``output_scale``
        whose length differs from that of ``weight_scales``.
    """
    if _is_vector(weight_scales):
        items = _items(weight_scales, "weight_scales")
        if _is_vector(output_scale):
            outs = _items(output_scale, "output_scale")
            if len(outs) != len(items):
                raise ValueError(
                    f"output_scale must have {len(items)} values (one per channel of "
                    f"weight_scales), got {len(outs)}"
                )
            out_names = [f"output_scale[{c}]" for c in range(len(items))]
        else:
            outs, out_names = [output_scale] * len(items), ["output_scale"] * len(items)
        ratios = [
            exact_ratio(
                (input_scale, sw), out, ("input_scale", f"weight_scales[{c}]", out_name),
            )
            for c, (sw, out, out_name) in enumerate(zip(items, outs, out_names, strict=True))
        ]
        return dyadic_per_channel(ratios)
    if _is_vector(output_scale):
        raise ValueError("a vector output_scale needs a vector of weight_scales of the same length")
    return dyadic(
        exact_ratio(
            (input_scale, weight_scales), output_scale,
            ("input_scale", "weight_scales", "output_scale"),
        )
    )
