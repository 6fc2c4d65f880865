"""One op's data in functional mode, and the seeded values and layouts the units build it from.

:func:`edgetron.sim.prepare.prepare` gives every op an :class:`OpData`, made by the
``prepare`` function of the op's unit module: its operands, its weights, biases and
integer constants, and its golden output. The unit modules draw their random values with
the helpers here, so that every unit draws them the same way:

* weights and constant operands: uniform int8 (:func:`int8_values`);
* per-channel weight scales ``U(0.5, 1.5) / (127 sqrt(K))``, so that real outputs stay of
  the order of the inputs (:func:`weight_scales`);
* int32 biases with ``|bias| <= min(2**14, 2**31 - 1 - accumulator_bound(K))``
  (:func:`seeded_bias`), so that no accumulation leaves int32;
* output scales calibrated on the real outputs: the 99.9th percentile of ``|x|`` maps to
  127, so that a few values saturate and the saturation path is exercised
  (:func:`calibrate`).

A matrix op's output (requantized per tensor or per channel, or left int32, then clamped
by its fused activation) is :func:`matrix_output`, shared by ``gemm`` and ``conv``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgetron.golden.gemm import accumulator_bound
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, int_range, requantize
from edgetron.golden.quant import (
    activation_bounds,
    activation_clamp,
    activation_scale,
    requant_constants,
)
from edgetron.workload import Op

__all__ = [
    "CALIBRATION_PERCENTILE",
    "INPUT_STD",
    "OpData",
    "calibrate",
    "int8_values",
    "matrix_output",
    "seeded_bias",
    "weight_scales",
]

#: Scale of seeded random external inputs (int8 values ~ N(0, INPUT_STD) are N(0, 1) reals).
INPUT_STD = 32.0
#: Range of the random per-channel weight scales, relative to ``1 / (127 sqrt(K))``.
_WSCALE_LO, _WSCALE_HI = 0.5, 1.5
#: Percentile of |real output| mapped to the int8 maximum when calibrating an output
#: scale: a few values saturate, so the saturation path is exercised too.
CALIBRATION_PERCENTILE = 99.9
#: Largest |bias| drawn (also bounded by the accumulator limit for the op's K).
_BIAS_MAX = 1 << 14


@dataclasses.dataclass
class OpData:
    """Everything one op needs: operands, constants and its golden output.

    Attributes
    ----------
    operands : list of int64 arrays
        The op's activation operands in its own ``in_shapes``.
    params : dict
        Weights, biases and integer constants (keys of the op's unit module).
    golden : int64 array
        The golden output, shape ``op.out_shape``.
    out_scale : float
        Real scale of the output.
    """

    operands: list[np.ndarray]
    params: dict[str, Any]
    golden: np.ndarray
    out_scale: float


def calibrate(real: np.ndarray) -> float:
    """Output scale mapping the CALIBRATION_PERCENTILE of |real| to 127 (1.0 if all zero)."""
    try:
        return activation_scale(real, percentile=CALIBRATION_PERCENTILE)
    except ValueError:
        return activation_scale(real) if np.any(real) else 1.0


def seeded_bias(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    """Seeded int32 biases, ``|bias| <= 2**14`` and within the accumulator bound for ``k``."""
    limit = min(_BIAS_MAX, INT32_MAX - accumulator_bound(k))
    return rng.integers(-limit, limit + 1, size=size).astype(np.int64)


def weight_scales(rng: np.random.Generator, n: int, k: int, per_channel: bool) -> np.ndarray:
    """Random weight scales ``U(0.5, 1.5) / (127 sqrt(k))``: real outputs stay O(inputs)."""
    base = INT8_MAX * np.sqrt(k)
    if per_channel:
        return rng.uniform(_WSCALE_LO, _WSCALE_HI, size=n) / base
    return np.full(n, rng.uniform(_WSCALE_LO, _WSCALE_HI) / base)


def int8_values(rng: np.random.Generator, size) -> np.ndarray:
    """Seeded uniform int8 values (weights, constant operands) as int64."""
    return rng.integers(INT8_MIN, INT8_MAX + 1, size=size).astype(np.int64)


def matrix_output(op: Op, acc: np.ndarray, bias: np.ndarray, sw: np.ndarray,
                  real_mult: float, per_tensor: bool) -> tuple[np.ndarray, dict[str, Any], float]:
    """The output of a matrix op from its int32 accumulators (bias included).

    Parameters
    ----------
    op : Op
        The gemm, conv2d or dwconv2d op (``requant``, ``act``, ``out_bits``).
    acc : int64 array [P, M, N]
        Accumulators of the op's ``P`` products.
    bias : int64 array [Q, N]
        Per-product channel biases (``Q`` is ``P``, or the products' weight sets).
    sw : float array [Q, N]
        Weight scales.
    real_mult : float
        The input scale times the op's own scale.
    per_tensor : bool
        One scale for the whole output (a product of two activations).

    Returns
    -------
    y : int64 array [P, M, N]
        Golden's output: ``activation_clamp(requantize(acc, m, s), act, S_y)``, or ``acc``
        for ``requant = "none"``.
    params : dict
        ``m``, ``s`` (int64 ``[Q, N]``, shaped as ``bias``) and the output clamp ``lo``,
        ``hi`` (golden's ``activation_bounds``, or the int range of ``out_bits``).
    out_scale : float
    """
    if op.requant == "none":
        mq = np.zeros_like(bias)
        sq = np.ones_like(bias)
        out_scale = real_mult * float(sw.flat[0])
        y = acc
        lo, hi = int_range(op.out_bits)
    elif per_tensor:
        real = acc.astype(np.float64) * (real_mult * float(sw[0, 0]))
        out_scale = calibrate(real)
        m1, s1 = requant_constants(real_mult, float(sw[0, 0]), out_scale)
        mq = np.full_like(bias, m1)
        sq = np.full_like(bias, s1)
        y = activation_clamp(requantize(acc, m1, s1, op.out_bits), op.act, out_scale,
                             op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    else:
        real = acc.astype(np.float64) * (real_mult * sw)[:, None, :]
        out_scale = calibrate(real)
        mflat, sflat = requant_constants(real_mult, sw.ravel(), out_scale)
        mq = mflat.reshape(bias.shape)
        sq = sflat.reshape(bias.shape)
        y = activation_clamp(requantize(acc, mq[:, None, :], sq[:, None, :], op.out_bits),
                             op.act, out_scale, op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    return y, {"m": mq, "s": sq, "lo": lo, "hi": hi}, out_scale
