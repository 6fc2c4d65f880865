"""Calibration: float tensors -> scales -> integers, and the fused activation clamps.

Quantization scheme (the contract of ``docs/quantization.md``)
-------------------------------------------------------------
* Activations: signed ``bits``-bit (int8), symmetric per tensor, zero point 0,
  ``real = q * S``. Calibration maps ``amax = max|x|`` (or a percentile of
  ``|x|``) to ``qmax = 2**(bits-1) - 1``: ``S = amax / qmax``.
* Weights: the same, with one scale per output channel.
* Bias: int32 at scale ``S_x * S_w[c]`` (the scale of the accumulator).
* Requantization: the real multiplier ``M = S_x * S_w[c] / S_y`` is replaced by
  a dyadic number ``m / 2**s`` (:func:`~edgetron.golden.dyadic.dyadic`, whose
  module gives the error bound), so that at run time only
  :func:`edgetron.golden.intops.requantize` is needed (Jacob et al., CVPR 2018,
  section 2.2; I-BERT, Kim et al., ICML 2021, "dyadic requantization").
* Fused activation (:data:`ACTIVATIONS`): after requantizing to ``S_y`` an op may
  clamp its output to ``[lo, hi]`` (:func:`activation_bounds`,
  :func:`activation_clamp`): ``relu`` has ``lo = 0``, ``relu6`` also
  ``hi = min(qmax, floor(6 / S_y + 1/2))``, the images of the real bounds 0 and 6
  under the quantizer (Jacob et al., section 2.4: the clamp is folded into the
  output range).

Every float -> integer rounding here is *round half up*, ``floor(v + 1/2)``, as
in :mod:`edgetron.golden.dyadic`. The exact-constant functions of that module
(:func:`~edgetron.golden.dyadic.dyadic`, :func:`~edgetron.golden.dyadic.requant_constants`,
...) are re-exported here, so ``from edgetron.golden.quant import dyadic`` keeps working.
"""

from __future__ import annotations

import numpy as np

from .dyadic import (
    dyadic,
    dyadic_per_channel,
    exact_positive,
    exact_ratio,
    exact_reciprocal,
    internal_shift,
    positive_scale,
    real_scalar,
    requant_constants,
    round_half_up,
)
from .intops import INT32_MAX, INT32_MIN, as_int64, check_signed, int_param, int_range

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
    scale = exact_positive(out_scale, "out_scale")
    lo, hi = int_range(int_param(bits, "bits", 2, _ACT_MAX_BITS))
    if act == "none":
        return lo, hi
    if act == "relu6":
        hi = min(hi, round_half_up(RELU6_BOUND / scale))
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
    sx = float(exact_positive(input_scale, "input_scale"))
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
