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

Deployed models
---------------
A real model (``edgetron.deploy``) replaces the seeded values by its own: a
:class:`Quantization` gives the scale of the external input and, per op, an
:class:`OpQuant` with the int8 weights and their scales, the real biases (quantized by
the unit with golden's :func:`~edgetron.golden.quant.quantize_bias` at the op's actual
input scale), LayerNorm's gain, shift and epsilon, the learned constants, and the output
scale calibrated on real data. Each unit's ``prepare`` takes it as its last argument;
without it (``None``) the seeded path runs, drawing exactly the values it always drew.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from edgetron.golden.gemm import accumulator_bound
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, int_range, requantize
from edgetron.golden.quant import (
    activation_bounds,
    activation_clamp,
    activation_scale,
    quantize,
    quantize_bias,
    requant_constants,
)
from edgetron.workload import Op

__all__ = [
    "CALIBRATION_PERCENTILE",
    "INPUT_STD",
    "OpData",
    "OpQuant",
    "Quantization",
    "calibrate",
    "deployed_bias",
    "deployed_const",
    "deployed_scale",
    "int8_values",
    "matrix_output",
    "quant_array",
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


@dataclasses.dataclass(frozen=True)
class OpQuant:
    """The real parameters of one op of a deployed model, used instead of the seeded ones.

    Each field is used by the kinds named and left None by the others.

    Attributes
    ----------
    out_scale : float or None
        Calibrated real scale of the output of an op that requantizes: a matrix op with
        ``requant`` ``tensor`` or ``channel``, ``avgpool``, ``layernorm``, ``gelu`` to
        int8, ``add``. None where the inputs fix the scale (an int32 output, softmax's
        2^-7, a max pool, a concat).
    weight : integer array or None
        int8 weight values: gemm ``[count, k, n]``, ``conv2d``/``dwconv2d``
        ``[k, c/groups, r, s]``, ``add`` ``shape[1:]`` (the learned addend).
    weight_scale : float array or None
        Real scale of the weights of each output channel: gemm ``[count, n]``, conv
        ``[k]``; ``add`` ``[]`` (one).
    bias : float array or None
        Real bias: gemm ``[count, n]``, conv ``[k]`` (the unit quantizes it to int32 at
        ``S_x * S_w``); LayerNorm's shift beta ``[cols]``.
    gamma : float array or None
        LayerNorm's gain ``[cols]``.
    eps : float or None
        LayerNorm's epsilon.
    const : float array or None
        A concat's learned rows ``[const_rows, cols]``, real; quantized at the concat's
        input scale (a concat moves values: its output has its input's scale).
    """

    out_scale: float | None = None
    weight: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    gamma: np.ndarray | None = None
    eps: float | None = None
    const: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Quantization:
    """A deployed model's quantization: the input scale and one :class:`OpQuant` per op.

    Attributes
    ----------
    input_scale : float
        Real scale of the int8 external input.
    ops : tuple of OpQuant
        In the order of the trace's ops.
    """

    input_scale: float
    ops: tuple[OpQuant, ...]


def quant_array(q: OpQuant, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """Field ``field`` of ``q`` as an array of ``shape``.

    Raises
    ------
    ValueError
        The field is missing or of another shape (naming both shapes).
    """
    value = getattr(q, field)
    if value is None:
        raise ValueError(f"deployed parameters: {field}: missing")
    arr = np.asarray(value)
    if arr.shape != tuple(shape):
        raise ValueError(f"deployed parameters: {field}: expected shape {list(shape)}, "
                         f"got {list(arr.shape)}")
    return arr


def deployed_scale(q: OpQuant) -> float:
    """The calibrated output scale of a deployed op that requantizes.

    Raises
    ------
    ValueError
        ``q.out_scale`` is missing (a deployed op's scale never comes from its own data).
    """
    if q.out_scale is None:
        raise ValueError("deployed parameters: out_scale: missing (an op that requantizes "
                         "needs its calibrated output scale)")
    return float(q.out_scale)


def deployed_bias(q: OpQuant, shape: tuple[int, ...], input_scale: float,
                  sw: np.ndarray) -> np.ndarray:
    """A deployed op's int32 bias: golden's ``quantize_bias`` of ``q.bias`` at ``S_x * S_w``.

    ``sw`` holds one weight scale per bias value (``shape``).
    """
    real = quant_array(q, "bias", shape)
    return quantize_bias(real.ravel(), input_scale, np.ravel(sw)).reshape(shape)


def deployed_const(q: OpQuant, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """A deployed op's learned constant ``q.const`` quantized to int8 at ``scale``
    (golden's ``quantize``: round half up, saturate), as int64."""
    return quantize(quant_array(q, "const", shape), scale).astype(np.int64)


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


@functools.lru_cache(maxsize=1024)
def _requant_once(real_mult: float, sw: bytes, out_scale: float) -> tuple[np.ndarray, ...]:
    return requant_constants(real_mult, np.frombuffer(sw), out_scale)


def _deployed_requant(real_mult: float, sw: np.ndarray,
                      out_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Golden's per-channel ``requant_constants`` of a deployed op's fixed scales, derived
    once per set of scales (a deployed model runs many inputs on the same scales; the
    exact rational arithmetic dominates a run otherwise). Fresh copies each call."""
    m, s = _requant_once(float(real_mult),
                         np.ascontiguousarray(sw, dtype=np.float64).ravel().tobytes(),
                         float(out_scale))
    return m.copy(), s.copy()


def matrix_output(op: Op, acc: np.ndarray, bias: np.ndarray, sw: np.ndarray,
                  real_mult: float, per_tensor: bool, out_scale: float | None = None
                  ) -> tuple[np.ndarray, dict[str, Any], float]:
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
    out_scale : float, optional
        The output scale of a requantizing op (a deployed model's); by default calibrated
        on the real output (:func:`calibrate`).

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
        if np.any(sw != sw.flat[0]):
            raise ValueError("an int32 output (requant 'none') has one scale: its weights "
                             "need one scale for the whole tensor")
        mq = np.zeros_like(bias)
        sq = np.ones_like(bias)
        out_scale = real_mult * float(sw.flat[0])
        y = acc
        lo, hi = int_range(op.out_bits)
    elif per_tensor:
        if out_scale is None:
            out_scale = calibrate(acc.astype(np.float64) * (real_mult * float(sw[0, 0])))
        m1, s1 = requant_constants(real_mult, float(sw[0, 0]), out_scale)
        mq = np.full_like(bias, m1)
        sq = np.full_like(bias, s1)
        y = activation_clamp(requantize(acc, m1, s1, op.out_bits), op.act, out_scale,
                             op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    else:
        if out_scale is None:
            out_scale = calibrate(acc.astype(np.float64) * (real_mult * sw)[:, None, :])
            mflat, sflat = requant_constants(real_mult, sw.ravel(), out_scale)
        else:
            mflat, sflat = _deployed_requant(real_mult, sw, out_scale)
        mq = mflat.reshape(bias.shape)
        sq = sflat.reshape(bias.shape)
        y = activation_clamp(requantize(acc, mq[:, None, :], sq[:, None, :], op.out_bits),
                             op.act, out_scale, op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    return y, {"m": mq, "s": sq, "lo": lo, "hi": hi}, out_scale
