"""Calibration: float tensors -> scales -> the integer constants the kernels use.

Quantization scheme (the contract of ``docs/quantization.md``)
-------------------------------------------------------------
* Activations: signed ``bits``-bit (int8), symmetric per tensor, zero point 0,
  ``real = q * S``. Calibration maps ``amax = max|x|`` (or a percentile of
  ``|x|``) to ``qmax = 2**(bits-1) - 1``: ``S = amax / qmax``.
* Weights: the same, with one scale per output channel.
* Bias: int32 at scale ``S_x * S_w[c]`` (the scale of the accumulator).
* Requantization: the real multiplier ``M = S_x * S_w[c] / S_y`` is replaced by
  a dyadic number ``m / 2**s`` (:func:`dyadic`), so that at run time only
  :func:`edgetron.golden.intops.requantize` is needed (Jacob et al., CVPR 2018,
  section 2.2; I-BERT, Kim et al., ICML 2021, "dyadic requantization").
* Fused activation (:data:`ACTIVATIONS`): after requantizing to ``S_y`` an op may
  clamp its output to ``[lo, hi]`` (:func:`activation_bounds`,
  :func:`activation_clamp`): ``relu`` has ``lo = 0``, ``relu6`` also
  ``hi = min(qmax, floor(6 / S_y + 1/2))``, the images of the real bounds 0 and 6
  under the quantizer (Jacob et al., section 2.4: the clamp is folded into the
  output range).

Rounding
--------
Every float -> integer rounding here is *round half up*, ``floor(v + 1/2)``, the
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

from .intops import (
    INT32_MAX,
    INT32_MIN,
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_signed,
    int_param,
    int_range,
)

__all__ = [
    "ACTIVATIONS",
    "QUANT_BITS_MAX",
    "RELU6_BOUND",
    "activation_bounds",
    "activation_clamp",
    "activation_scale",
    "dequantize",
    "dyadic",
    "dyadic_per_channel",
    "exact_ratio",
    "exact_reciprocal",
    "internal_shift",
    "positive_scale",
    "quantize",
    "quantize_bias",
    "real_array",
    "real_scalar",
    "requant_constants",
    "weight_scales",
]

#: Activation functions an op may fuse after its requantization (a clamp of the output).
ACTIVATIONS = ("none", "relu", "relu6")
#: Upper bound of ReLU6 in real units: ``relu6(x) = min(max(x, 0), 6)``.
RELU6_BOUND = 6
#: Widest output an activation clamp is defined for (``int_range`` allows up to 63 bits).
_ACT_MAX_BITS = 63
#: Widest output of :func:`quantize` (int32 biases); its float64 rounding and clamp are exact.
QUANT_BITS_MAX = 32

#: Bits of the unsigned dyadic multiplier m (31 for M_MAX = 2**31 - 1).
_M_BITS = M_MAX.bit_length()
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
_SHIFT_MIN, _SHIFT_MAX = -S_MAX, 30


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
    if not _SHIFT_MIN <= f <= _SHIFT_MAX:
        raise ValueError(
            f"scale {scale!r} is outside the supported range "
            f"(2**{_SHIFT_MIN - 1 - frac_bits}, 2**{_SHIFT_MAX - frac_bits}]"
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


def _positive(value, name: str) -> Fraction:
    v = _exact(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return v


def _round_half_up(v: Fraction) -> int:
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
    exact = [_positive(sc, label) for sc, label in zip(scales, labels, strict=True)]
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
    mult = _positive(multiplier, "multiplier")
    if shift is not None:
        if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, np.integer)):
            raise TypeError(f"shift must be an integer, got {type(shift).__name__} {shift!r}")
        if not S_MIN <= shift <= S_MAX:
            raise ValueError(f"shift s must lie in [{S_MIN}, {S_MAX}], got {shift}")
        s = int(shift)
        m = _round_half_up(mult * (1 << s))
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
    # mult in [2**e, 2**(e+1)) -> mult * 2**(_M_BITS - 1 - e) in [2**30, 2**31).
    s = min(S_MAX, _M_BITS - 1 - _floor_log2(mult))
    if s >= S_MIN and _round_half_up(mult * (1 << s)) > M_MAX:
        s -= 1  # rounding carried into bit 31: one bit less of shift
    if s < S_MIN:
        raise ValueError(
            f"multiplier {float(mult):.6g} is too large: the largest dyadic m / 2**s "
            f"has m = {M_MAX} and s = {S_MIN} ({M_MAX / (1 << S_MIN):.6g})"
        )
    m = _round_half_up(mult * (1 << s))
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


# ---- fused activations ------------------------------------------------------------------
def activation_bounds(act: str, out_scale, bits: int = 8) -> tuple[int, int]:
    """Integer clamp ``[lo, hi]`` of an activation fused after requantization to ``S_y``.

    The bounds are the images of the real activation's bounds under the output
    quantizer ``q = saturate(floor(x / S_y + 1/2), bits)`` (:func:`quantize`); since
    quantizing is monotone, clamping a quantized value to them equals quantizing
    the clamped real value:

    * ``none``: ``(lo, hi) = (-2**(bits-1), 2**(bits-1) - 1)``, the saturation range;
    * ``relu``: ``lo = 0`` (the real 0 is exactly ``q = 0``: zero point 0);
    * ``relu6``: ``lo = 0``, ``hi = min(2**(bits-1) - 1, floor(6 / S_y + 1/2))``,
      round half up, evaluated in exact rational arithmetic on the float ``S_y``
      (no float division, so a tie ``6 / S_y = t + 1/2`` rounds up to ``t + 1``).
      ``hi`` is 0 when ``S_y > 12``.

    Parameters
    ----------
    act : {"none", "relu", "relu6"}
        The fused activation (:data:`ACTIVATIONS`; the trace's ``act``).
    out_scale : positive finite real
        ``S_y``, the real scale of the requantized output (checked for every ``act``).
    bits : int
        Output width, 2..63 (8 for int8).

    Returns
    -------
    (lo, hi) : tuple of int
        ``int_range(bits)[0] <= lo <= hi <= int_range(bits)[1]``.

    Raises
    ------
    TypeError, ValueError
        An unknown ``act``, a scale that is not a positive finite real, or a bad
        ``bits`` (each named).
    """
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
    scale = _positive(out_scale, "out_scale")
    lo, hi = int_range(int_param(bits, "bits", 2, _ACT_MAX_BITS))
    if act == "none":
        return lo, hi
    if act == "relu6":
        hi = min(hi, _round_half_up(RELU6_BOUND / scale))
    return 0, hi


def activation_clamp(q, act: str, out_scale, bits: int = 8) -> np.ndarray:
    """Apply a fused activation to requantized values: ``clip(q, *activation_bounds(...))``.

    This is the last stage of a requantizing op (after
    :func:`~edgetron.golden.intops.requantize`, whose saturation range contains
    ``[lo, hi]``, so the two together are one clamp to ``[lo, hi]``).

    Parameters
    ----------
    q : array of int
        Requantized values, each in the signed ``bits`` range.
    act, out_scale, bits
        As :func:`activation_bounds`.

    Returns
    -------
    numpy.ndarray of int64
        Values in ``[lo, hi]``, the shape of ``q``.

    Raises
    ------
    TypeError
        Non-integer ``q``, or as :func:`activation_bounds`.
    ValueError
        ``q`` outside the signed ``bits`` range (it was not requantized to ``bits``),
        or as :func:`activation_bounds`.
    """
    lo, hi = activation_bounds(act, out_scale, bits)
    v = as_int64(q, "q")
    check_signed(v, bits, "q")
    return np.clip(v, lo, hi)


# ---- scales ---------------------------------------------------------------------------
def real_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array of finite reals.

    Parameters
    ----------
    x : array_like of int or float
        Real data of any shape.
    name : str
        Name of ``x`` for the messages.

    Returns
    -------
    numpy.ndarray of float64
        ``x`` itself when it already is a float64 array (no copy).

    Raises
    ------
    TypeError
        ``x`` holds bools, complex numbers, strings or objects.
    ValueError
        ``x`` contains nan or inf.
    """
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains nan or inf")
    return arr


def _scale(amax, bits: int, name: str):
    """``amax / qmax``; rejects magnitudes whose scale would not be a normal float64."""
    qmax = int_range(bits)[1]
    if qmax < 1:
        raise ValueError(f"bits must be >= 2 for a symmetric scale, got {bits}")
    sc = amax / qmax
    smallest = float(np.finfo(np.float64).tiny)
    if np.min(sc) < smallest:
        raise ValueError(
            f"{name} is too small to calibrate: max |{name}| = {float(np.min(amax)):.3g} gives "
            f"a scale below the smallest normal float64 {smallest:.3g}"
        )
    return sc


def activation_scale(x, bits: int = 8, percentile: float | None = None) -> float:
    """Per-tensor symmetric scale ``S = amax / (2**(bits-1) - 1)`` of a float tensor.

    Parameters
    ----------
    x : array of float
        Calibration samples of the activation (any shape).
    bits : int
        Quantized width (8: the scale maps ``amax`` to 127).
    percentile : float, optional
        Use this percentile of ``|x|`` (in (0, 100]; a Python or NumPy real) as
        ``amax`` instead of the maximum, which clips rare outliers (useful for
        ViT activations).

    Returns
    -------
    float
        ``S > 0``.

    Raises
    ------
    TypeError
        Non-numeric ``x``.
    ValueError
        Empty, non-finite or all-zero ``x`` (the scale is undefined), or a
        percentile outside (0, 100].
    """
    arr = real_array(x, "x")
    if arr.size == 0:
        raise ValueError("x is empty; cannot calibrate a scale")
    mag = np.abs(arr)
    if percentile is None:
        amax = float(mag.max())
    else:
        if isinstance(percentile, (bool, np.bool_)) or not isinstance(
            percentile, (int, float, np.integer, np.floating)
        ):
            raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")
        if not 0 < float(percentile) <= 100:  # False for nan
            raise ValueError(f"percentile must be a number in (0, 100], got {float(percentile)}")
        amax = float(np.percentile(mag, percentile))
    if amax == 0:
        raise ValueError("x is all zeros (at the chosen percentile); the scale is undefined")
    return float(_scale(amax, bits, "x"))


def weight_scales(w, axis: int, bits: int = 8) -> np.ndarray:
    """Per-output-channel symmetric scales ``S_w[c] = max|w[c]| / (2**(bits-1) - 1)``.

    Parameters
    ----------
    w : array of float
        Weights; ``axis`` indexes the output channels (0 for conv weights
        (K, C, R, S), 1 for GEMM weights (K, N)).
    axis : int
        The output-channel axis.
    bits : int
        Quantized width.

    Returns
    -------
    numpy.ndarray of float64, shape (w.shape[axis],)
        A channel whose weights are all zero is represented exactly by any
        positive scale; it gets the largest scale of the tensor, which keeps its
        requantization multiplier in the range of the other channels.

    Raises
    ------
    ValueError
        Non-finite or all-zero weights, a 0-D array or a bad axis.
    """
    arr = real_array(w, "w")
    if arr.ndim == 0:
        raise ValueError("w must have at least one axis (the output channels)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not (
        -arr.ndim <= axis < arr.ndim
    ):
        raise ValueError(f"axis must be an integer in [{-arr.ndim}, {arr.ndim - 1}], got {axis!r}")
    if arr.size == 0:
        raise ValueError(f"w is empty (shape {arr.shape}); cannot calibrate scales")
    others = tuple(i for i in range(arr.ndim) if i != axis % arr.ndim)
    amax = np.abs(arr).max(axis=others) if others else np.abs(arr)
    top = float(amax.max())
    if top == 0:
        raise ValueError("w is all zeros; the scales are undefined")
    return _scale(np.where(amax > 0, amax, top), bits, "w")


def _broadcast_scale(scale, shape: tuple, axis: int | None) -> np.ndarray:
    sc = real_array(scale, "scale")
    if sc.size and (sc <= 0).any():
        raise ValueError("scale must be positive")
    if axis is None:
        if sc.ndim != 0:
            raise ValueError(f"scale must be a scalar without axis, got shape {sc.shape}")
        return sc
    ndim = len(shape)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not (
        -ndim <= axis < ndim
    ):
        raise ValueError(f"axis must be an integer in [{-ndim}, {ndim - 1}], got {axis!r}")
    ax = axis % ndim
    if sc.shape != (shape[ax],):
        raise ValueError(
            f"scale must have shape ({shape[ax]},) to match axis {axis} of shape {shape}, "
            f"got {sc.shape}"
        )
    view = [1] * ndim
    view[ax] = shape[ax]
    return sc.reshape(view)


def quantize(x, scale, axis: int | None = None, bits: int = 8) -> np.ndarray:
    """``q = saturate(floor(x / S + 1/2), bits)``: float tensor -> integers.

    The rounding and the clamp run in float64. ``bits`` is limited to
    ``QUANT_BITS_MAX = 32``, every tensor of the scheme (int8 activations and
    weights, int32 biases): values below ``2**31`` are far inside float64's
    53-bit significand, so the clamp bounds are exact and ``x / S + 1/2`` keeps
    its fraction (from 55 bits up, ``2**(bits-1) - 1`` is no float64 and the
    clamp would return values outside the range).

    Parameters
    ----------
    x : array of float
        Real values of any shape.
    scale : positive float, or 1-D array of them for per-channel quantization
        ``S``; a vector has one scale per index of ``x``'s axis ``axis``.
    axis : int, optional
        Axis of ``x`` that ``scale`` runs along (required for a vector scale).
    bits : int
        Output width, 2 to ``QUANT_BITS_MAX`` (32); values are saturated to its
        signed range.

    Returns
    -------
    numpy.ndarray of int64
        The shape of ``x``, values in ``int_range(bits)``.

    Raises
    ------
    TypeError
        Non-numeric ``x`` or ``scale``, or a non-integer ``bits``.
    ValueError
        Non-finite ``x``; a scale that is not positive and finite; a vector
        scale without ``axis`` or of the wrong length; a bad ``axis``; ``bits``
        outside ``[2, 32]``.
    """
    arr = real_array(x, "x")
    sc = _broadcast_scale(scale, arr.shape, axis)
    lo, hi = int_range(int_param(bits, "bits", 2, QUANT_BITS_MAX))
    q = np.floor(arr / sc + 0.5)
    return np.clip(q, lo, hi).astype(np.int64)


def dequantize(q, scale, axis: int | None = None) -> np.ndarray:
    """``real = q * S`` as float64.

    Parameters
    ----------
    q : array of int
        Quantized values of any shape.
    scale, axis
        As in :func:`quantize`.

    Returns
    -------
    numpy.ndarray of float64
        The shape of ``q``.

    Raises
    ------
    TypeError
        Non-integer ``q`` or non-numeric ``scale``.
    ValueError
        A bad scale or axis, as in :func:`quantize`.
    """
    v = as_int64(q, "q")
    return v.astype(np.float64) * _broadcast_scale(scale, v.shape, axis)


def quantize_bias(bias, input_scale, weight_scales) -> np.ndarray:
    """int32 bias ``b_q[c] = floor(b[c] / (S_x * S_w[c]) + 1/2)`` at the accumulator scale.

    Parameters
    ----------
    bias : 1-D array of float, shape (N,)
        Real bias per output channel.
    input_scale : positive real
        ``S_x``.
    weight_scales : positive real or 1-D array of shape (N,)
        ``S_w`` (one per channel, or one for all).

    Returns
    -------
    numpy.ndarray of int64, values in the int32 range.

    Raises
    ------
    TypeError
        Non-numeric inputs.
    ValueError
        A bias that quantizes outside int32 (it is rejected, never saturated:
        a saturated bias is a silently wrong layer), with the channel index;
        an accumulator scale ``S_x * S_w[c]`` that is not a finite normal
        float64 (below about ``2.2e-308`` it underflows and the quotient is
        meaningless), with the channel index; or non-finite / mis-shaped inputs.
    """
    b = real_array(bias, "bias")
    if b.ndim != 1:
        raise ValueError(f"bias must be 1-D, got shape {b.shape}")
    sx = float(_positive(input_scale, "input_scale"))
    sw = real_array(weight_scales, "weight_scales")
    if sw.ndim not in (0, 1) or (sw.ndim == 1 and sw.shape != b.shape):
        raise ValueError(f"weight_scales must be a scalar or have shape {b.shape}, got {sw.shape}")
    if sw.size and (sw <= 0).any():
        raise ValueError("weight_scales must be positive")
    with np.errstate(over="ignore", under="ignore"):  # inf and 0 are rejected just below
        acc_scale = np.broadcast_to(sx * sw, b.shape)
    smallest = float(np.finfo(np.float64).tiny)
    bad = np.flatnonzero(~np.isfinite(acc_scale) | (acc_scale < smallest))
    if bad.size:
        c = int(bad[0])
        raise ValueError(
            f"accumulator scale input_scale * weight_scales[{c}] = {sx:.6g} * "
            f"{float(np.broadcast_to(sw, b.shape)[c]):.6g} = {float(acc_scale[c]):.6g} is not "
            f"a finite normal float64 (in [{smallest:.3g}, {float(np.finfo(np.float64).max):.3g}])"
        )
    q = np.floor(b / acc_scale + 0.5)
    bad = np.flatnonzero((q < INT32_MIN) | (q > INT32_MAX))
    if bad.size:
        c = int(bad[0])
        raise ValueError(
            f"bias[{c}] = {b[c]:.6g} quantizes to {q[c]:.6g} at scale S_x*S_w = "
            f"{float(acc_scale[c]):.6g}, outside the int32 range "
            f"[{INT32_MIN}, {INT32_MAX}]"
        )
    return q.astype(np.int64)
