"""Calibration: a model's real scales from the user's data, and its int8 parameters.

:func:`calibrate` turns an imported model and calibration samples into the
:class:`~edgetron.sim.opdata.Quantization` that functional mode runs
(``docs/deploy.md``, "What is calibrated"):

* **Activations, per tensor, symmetric.** The float model runs on every calibration
  sample (:meth:`~edgetron.deploy.model.Model.float_outputs`); the scale of each tensor
  whose scale is free -- the model input and the output of every op that requantizes
  (:func:`sets_scale`) -- is golden's
  :func:`~edgetron.golden.quant.activation_scale` of all its calibration values: the
  ``percentile`` of ``|x|`` (the maximum with ``None``) mapped to 127. A concat moves
  values without rescaling, so the op (or input) feeding it is calibrated on the
  concat's whole output, learned rows included (ViT's class token). The other scales
  follow from their inputs: an int32 accumulator's is the product of its operands',
  softmax's is 2^-7, a max pool's and a concat's their input's (the inputs of a concat
  get one scale, the largest of theirs).
* **Weights, symmetric int8**: per output channel (golden's
  :func:`~edgetron.golden.quant.weight_scales`) where the op requantizes per channel,
  one scale per tensor where it requantizes per tensor or keeps its int32 accumulator
  (an int32 output has a single scale: the classifier's logits, the MLP's first layer
  before GELU). A learned addend (a position embedding) gets its own per-tensor scale.
* **Biases** stay real here: the unit quantizes each to int32 at ``S_x * S_w`` with
  golden's :func:`~edgetron.golden.quant.quantize_bias`, at the input scale the op
  actually gets; LayerNorm's gain, shift and epsilon stay real (golden's
  :func:`~edgetron.golden.layernorm.layernorm_constants` derives its integers).

Every integer constant (requantization multipliers and shifts, softmax, GELU,
LayerNorm, residual and average-pool constants) is then derived by the units' ``prepare``
with golden's constant functions, exactly as for seeded data.
"""

from __future__ import annotations

import math

import numpy as np

from edgetron.errors import SimulationError
from edgetron.golden.quant import activation_scale, quantize, weight_scales
from edgetron.sim.opdata import OpQuant, Quantization
from edgetron.workload import Add, AvgPool, Concat, Conv2d, DwConv2d, Gelu, Gemm, LayerNorm, Op

from .data import Samples
from .model import Model

__all__ = [
    "BLOCK",
    "DEFAULT_PERCENTILE",
    "MAX_CALIB_BYTES",
    "calibrate",
    "check_calibration_size",
    "check_percentile",
    "sets_scale",
]

#: Default percentile of ``|x|`` mapped to 127 (None: the maximum). See docs/deploy.md.
DEFAULT_PERCENTILE: float | None = None
#: Samples run through the float reference at once.
BLOCK = 64
#: Largest float32 record of the calibration activations kept for the percentiles, bytes.
MAX_CALIB_BYTES = 2 << 30


def sets_scale(op: Op) -> bool:
    """Whether the op's output scale is free (calibrated): it requantizes its output."""
    if isinstance(op, (Gemm, Conv2d, DwConv2d, Gelu)):
        return op.requant != "none"
    return isinstance(op, (AvgPool, LayerNorm, Add))


def _scale(values: list[np.ndarray], percentile: float | None) -> float:
    """activation_scale of all ``values``: their maximum where the percentile is zero, 1.0
    where every value is."""
    flat = np.concatenate([v.ravel() for v in values])
    if not np.any(flat):
        return 1.0  # every scale represents zeros exactly
    try:
        return activation_scale(flat, percentile=percentile)
    except ValueError:  # zero at the percentile (a mostly-zero ReLU output)
        return activation_scale(flat)


def _tensor_scale(w: np.ndarray) -> float:
    return activation_scale(w) if np.any(w) else 1.0


def _source(trace, ref) -> int | None:
    """The op (None: the model input) whose scale an operand ``ref`` carries."""
    i = ref.op
    while i is not None and trace[i].kind in ("maxpool", "concat"):  # values moved as they are
        i = trace[i].inputs[0].op
    return i


def _weights(op: Op, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and their scales: per output channel for ``requant`` ``channel``."""
    per_channel = op.requant == "channel"
    if isinstance(op, Gemm):  # [count, k, n], channels along n per product
        if per_channel:
            sw = np.stack([weight_scales(wc, axis=1) if np.any(wc)
                           else np.full(op.n, _tensor_scale(w)) for wc in w])
        else:
            sw = np.full((op.count, op.n), _tensor_scale(w))
        q = np.stack([quantize(wc, sc, axis=1) for wc, sc in zip(w, sw, strict=True)])
        return q, sw
    sw = weight_scales(w, axis=0) if per_channel and np.any(w) else \
        np.full(op.k, _tensor_scale(w))  # conv [k, c/groups, r, s]
    return quantize(w, sw, axis=0), sw


def _op_quant(i: int, op: Op, params: dict[str, np.ndarray],
              scale: float | None) -> OpQuant:
    def real(role: str) -> np.ndarray:
        return np.asarray(params[f"{i}.{role}"], dtype=np.float64)

    fields: dict = {"out_scale": scale}
    if isinstance(op, (Conv2d, DwConv2d)) or (isinstance(op, Gemm) and op.weights):
        fields["weight"], fields["weight_scale"] = _weights(op, real("weight"))
        if op.bias:
            fields["bias"] = real("bias")
    elif isinstance(op, LayerNorm):
        fields["gamma"], fields["eps"] = real("weight"), float(real("eps"))
        if op.bias:
            fields["bias"] = real("bias")
    elif isinstance(op, Add) and op.weights:
        const = real("weight")
        s_b = _tensor_scale(const)
        fields["weight"], fields["weight_scale"] = quantize(const, s_b), np.float64(s_b)
    elif isinstance(op, Concat) and op.const_rows:
        fields["const"] = real("weight")
    return OpQuant(**fields)


def check_percentile(percentile) -> None:
    """Raise SimulationError unless ``percentile`` is None or a number in (0, 100]."""
    if percentile is not None and (isinstance(percentile, bool) or not isinstance(
            percentile, (int, float)) or not 0 < percentile <= 100):
        raise SimulationError(f"percentile: expected a number in (0, 100] or None, got "
                              f"{percentile!r}")


def check_calibration_size(model: Model, samples: Samples) -> None:
    """Refuse a calibration whose record of activations would exceed :data:`MAX_CALIB_BYTES`.

    Raises
    ------
    SimulationError
        Naming the samples, the bytes needed and the limit.
    """
    per_sample = samples.sample_elements + sum(
        op.out_elements // model.batch for op in model.trace)
    need = 4 * len(samples) * per_sample
    if need > MAX_CALIB_BYTES:
        most = max(1, MAX_CALIB_BYTES // (4 * per_sample))
        raise SimulationError(
            f"{samples.name}: calibrating on {len(samples):,} samples would record "
            f"{need / (1 << 20):,.1f} MiB of activations, over the limit of "
            f"{MAX_CALIB_BYTES / (1 << 20):,.1f} MiB; calibrate on at most {most:,} samples")


def calibrate(model: Model, samples: Samples, *,
              percentile: float | None = DEFAULT_PERCENTILE) -> Quantization:
    """The quantization of ``model`` calibrated on ``samples`` (module docstring).

    Parameters
    ----------
    model : Model
    samples : Samples
        Calibration inputs.
    percentile : float or None
        Percentile of ``|x|`` mapped to 127 for every activation scale, in (0, 100];
        ``None`` for the maximum.

    Raises
    ------
    SimulationError
        A percentile outside (0, 100], a record of activations above
        :data:`MAX_CALIB_BYTES`, NaN or infinite samples, or a parameter golden cannot
        quantize (the op named).
    """
    check_percentile(percentile)
    check_calibration_size(model, samples)
    trace, b = model.trace, model.batch
    record: list[list[np.ndarray]] = [[] for _ in trace]
    inputs: list[np.ndarray] = []
    step = b * math.ceil(BLOCK / b)
    for start in range(0, len(samples), step):
        x = samples.block(start, start + step)
        n = len(x)
        x = np.concatenate([x, np.repeat(x[:1], -n % b, axis=0)])  # whole inferences
        inputs.append(model.stored(x)[:n].astype(np.float32))
        for i, y in enumerate(model.float_outputs(x)):
            record[i].append(y[:n].astype(np.float32))
    # Which values each free scale must cover: its own, and a concat's whole output.
    cover: dict[int | None, list[np.ndarray]] = {None: list(inputs)}
    for i, op in enumerate(trace):
        if sets_scale(op):
            cover[i] = list(record[i])
    for i, op in enumerate(trace):
        if isinstance(op, Concat):
            for ref in op.inputs:
                src = _source(trace, ref)
                if src in cover:
                    cover[src] += record[i]
    try:
        scales = {i: _scale(v, percentile) for i, v in cover.items()}
    except ValueError as exc:
        raise SimulationError(f"{model.path}: calibration: {exc}") from None
    for op in trace:  # the inputs of a concat share one scale: the largest covers each
        if isinstance(op, Concat):
            srcs = {_source(trace, ref) for ref in op.inputs} & scales.keys()
            top = max((scales[s] for s in srcs), default=None)
            scales.update({s: top for s in srcs})
    ops = []
    for i, op in enumerate(trace):
        try:
            ops.append(_op_quant(i, op, model.weights, scales.get(i) if sets_scale(op)
                                 else None))
        except ValueError as exc:
            raise SimulationError(f"{model.path}: op {i} ({op.name!r}): quantizing its "
                                  f"parameters: {exc}") from None
    return Quantization(input_scale=scales[None], ops=tuple(ops))
