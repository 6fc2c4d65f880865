"""The data of a functional run: inputs, weights, constants and golden outputs, and their size.

:func:`prepare` builds the data of a run once per trace and seed (it does not depend on
the config): int8 inputs (given or seeded random), per-op int8 weights, int32 biases
within the accumulator bound, real scales and the integer constants derived from them
with golden's own constant functions (``requant_constants``, ``softmax_constants``,
``gelu_int8_constants``, ``layernorm_constants``, ``residual_constants``,
``avgpool_constants``), and every op's golden output (``golden/``), each op computed on
the golden outputs of its producers. Each op's data is made by the ``prepare`` of its
unit module (:data:`edgetron.sim.units.REGISTRY`), with the seeded helpers of
:mod:`edgetron.sim.opdata`.

A deployed model (``edgetron.deploy``) passes a :class:`~edgetron.sim.opdata.Quantization`
(``quant``): its real weights, biases, constants and calibrated scales take the place of
the seeded ones and its inputs are required; without it the seeded path draws exactly the
values it always drew (``tests/sim/test_snapshot.py``).

Operands follow the trace exactly (docs/trace-format.md): every operand is the row-major
reshape of its producer's (sliced) output into the op's ``in_shapes`` entry; a product
of two activations takes its per-head matrices from the declared layout
(:meth:`edgetron.workload.Gemm.product_view`: ``a_heads``, ``b_heads``, ``b_transposed``,
``out_heads``). Fused activations are golden's :func:`~edgetron.golden.quant.activation_clamp`
(the Numba requantizer clamps to golden's :func:`~edgetron.golden.quant.activation_bounds`),
and pools and convolutions take the trace's four paddings as they are.

Size (:func:`estimate`)
-----------------------
A run keeps every op's operands, weights, parameters and golden output (int64) for the
whole run, and each op allocates temporaries while golden and the kernels compute it (the
``scratch_bytes`` of its unit). Before allocating anything, :func:`prepare` and
:func:`edgetron.sim.functional.run_functional` estimate the peak memory and the time and
refuse a run above ``max_gib`` (:data:`DEFAULT_MAX_GIB`) with a
:class:`~edgetron.errors.SimulationError` that gives both estimates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from edgetron.errors import SimulationError
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.workload import Ref, Trace
from edgetron.workload.trace.limits import op_label

from .opdata import INPUT_STD, OpData, Quantization
from .units import REGISTRY

__all__ = [
    "DEFAULT_MAX_GIB",
    "FunctionalData",
    "FunctionalEstimate",
    "check_seed",
    "check_size",
    "estimate",
    "prepare",
]

#: Default limit of a functional run's estimated peak memory, GiB.
DEFAULT_MAX_GIB = 8.0
#: Memory of the process before the run's data (Python, NumPy, Numba and the compiled
#: kernels), bytes: the resident size measured after importing and warming the kernels.
BASE_BYTES = 300 << 20
#: Throughput of a whole functional run (golden and kernels): MACs per second, and output
#: elements (of every op) per second. Fitted to runs on one core of the reference machine
#: (ResNet-18 at batch 4, ViT-Tiny, MobileNetV2 and DeiT-Small on edge-16, 4 to 41 s),
#: rounded down so that the estimate errs long (docs/simulator.md).
MACS_PER_SECOND = 1.8e8
ELEMENTS_PER_SECOND = 5.0e6


class FunctionalEstimate(NamedTuple):
    """Estimated peak memory (bytes) and time (seconds) of a functional run."""

    peak_bytes: int
    seconds: float

    @property
    def gib(self) -> float:
        """``peak_bytes`` in GiB."""
        return self.peak_bytes / (1 << 30)

    def describe(self) -> str:
        """``about 1.2 GiB and 40 s``."""
        return f"about {_gib_text(self.gib)} and {_time_text(self.seconds)}"


def _gib_text(gib: float) -> str:
    return f"{gib:,.1f} GiB" if gib < 1e6 else f"{gib:.2g} GiB"


def _time_text(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            value = seconds / size
            if value < 10:
                return f"{value:.1f} {unit}"
            return f"{value:,.0f} {unit}" if value < 1e9 else f"{value:.2g} {unit}"
    return f"{math.ceil(seconds)} s"


def estimate(trace: Trace) -> FunctionalEstimate:
    """Peak memory and time of :func:`prepare` plus a functional run of ``trace``.

    Memory: :data:`BASE_BYTES`, every op's kept data (int64 operands, weights, biases and
    golden output, 8 bytes per element), and the largest ``scratch_bytes`` of one op. Time:
    the trace's MACs at :data:`MACS_PER_SECOND` plus every op's output elements at
    :data:`ELEMENTS_PER_SECOND`. Exact integers; the time is a float.
    """
    kept = 0
    scratch = 0
    elements = 0
    for op in trace:
        kept += 8 * (sum(op.in_elements) + op.out_elements + op.weight_count + op.bias_count)
        scratch = max(scratch, REGISTRY[op.kind].scratch_bytes(op))
        elements += op.out_elements
    return FunctionalEstimate(BASE_BYTES + kept + scratch,
                              trace.macs / MACS_PER_SECOND + elements / ELEMENTS_PER_SECOND)


def check_size(trace: Trace, max_gib: float | None) -> FunctionalEstimate:
    """:func:`estimate`, refused above ``max_gib`` (``None``: no limit).

    Raises
    ------
    SimulationError
        The estimated peak memory exceeds ``max_gib``; the message gives both estimates
        and how to run it anyway.
    """
    est = estimate(trace)
    if max_gib is not None and est.gib > max_gib:
        need = math.ceil(est.gib)
        raise SimulationError(
            f"functional mode of {trace.name!r} would need {est.describe()}: more memory "
            f"than the limit of {max_gib:g} GiB (max_gib; --functional-max-gib on the "
            f"command line), which must be at least {need:,} to run it anyway"
        )
    return est


@dataclasses.dataclass
class FunctionalData:
    """Inputs, weights, constants and golden outputs of one trace (see :func:`prepare`)."""

    trace: Trace
    seed: int
    ops: list[OpData]


def _matrix(x: np.ndarray) -> np.ndarray:
    """Per-sample matrix view ``[batch, prod(shape[1:-1]), shape[-1]]``."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


def _slice(x: np.ndarray, ref: Ref) -> np.ndarray:
    if ref.rows is None and ref.cols is None:
        return x
    mat = _matrix(x)
    r0, r1 = ref.rows or (0, mat.shape[1])
    c0, c1 = ref.cols or (0, mat.shape[2])
    return mat[:, r0:r1, c0:c1]


def _operands(trace: Trace, i: int, outputs: list, external: Callable) -> list[np.ndarray]:
    """The operands of op ``i``: each producer's (sliced) output reshaped to ``in_shapes``."""
    op = trace[i]
    result = []
    for j, ref in enumerate(op.inputs):
        want = op.in_shapes[j]
        if ref.op is None:
            result.append(external(i, j, want))
            continue
        view = _slice(outputs[ref.op], ref).reshape(want)
        result.append(np.array(view, dtype=np.int64, order="C"))  # a copy, never a view
    return result


def check_seed(seed: int) -> None:
    """Raise SimulationError unless ``seed`` is a non-negative integer (a run's data seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulationError(f"seed: expected a non-negative integer, got {seed!r}")


def _check_quant(trace: Trace, quant: Quantization | None, inputs) -> None:
    """A deployed model's quantization fits the trace, and its inputs are given."""
    if quant is None:
        return
    if not isinstance(quant, Quantization):
        raise TypeError(f"quant: expected an edgetron.sim.opdata.Quantization, got "
                        f"{type(quant).__name__}")
    if len(quant.ops) != len(trace):
        raise SimulationError(f"quant: {len(quant.ops)} ops' parameters for the "
                              f"{len(trace)} ops of trace {trace.name!r}")
    scale = quant.input_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) or \
            not math.isfinite(scale) or scale <= 0:
        raise SimulationError(f"quant: input_scale: expected a positive finite number, got "
                              f"{scale!r}")
    if inputs is None:
        raise SimulationError("quant: a deployed model runs on its own data; give the "
                              "inputs (int8 at quant.input_scale)")


def prepare(trace: Trace, *, seed: int = 0,
            inputs: Mapping[int, np.ndarray] | np.ndarray | None = None,
            progress: Callable[[int], None] | None = None,
            max_gib: float | None = DEFAULT_MAX_GIB,
            quant: Quantization | None = None) -> FunctionalData:
    """Data, constants and golden outputs of every op of ``trace`` (config-independent).

    Parameters
    ----------
    trace : Trace
    seed : int
        Seed of every random tensor (inputs, weights, biases, weight scales).
    inputs : array or mapping, optional
        int8 data for the ops' external inputs (``"input"``): one array for every external
        input (each must have its shape), or ``{op index: array}`` for some ops. Missing
        ones are seeded random int8 (``~ N(0, INPUT_STD)``, rounded and clipped).
    progress : callable, optional
        Called with 1 after each op.
    max_gib : float or None
        Refuse a run whose estimated peak memory (:func:`estimate`) is larger, GiB;
        ``None`` for no limit.
    quant : Quantization, optional
        A deployed model's parameters and scales (one entry per op), used instead of the
        seeded ones; ``inputs`` must then be given (at ``quant.input_scale``).

    Raises
    ------
    TypeError
        ``trace`` is not a Trace, or ``quant`` not a Quantization (a programming error of
        the caller).
    SimulationError
        A negative or non-integer seed, given inputs of the wrong shape or outside int8, an
        op functional mode cannot check (named), a ``quant`` that does not fit the trace
        (the op and the field named), or a run above ``max_gib``.
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"expected an edgetron.workload.Trace, got {type(trace).__name__}")
    check_seed(seed)
    _check_quant(trace, quant, inputs)
    check_size(trace, max_gib)
    rng = np.random.default_rng(seed)

    def external(i: int, j: int, shape: tuple[int, ...]) -> np.ndarray:
        given = inputs.get(i) if isinstance(inputs, Mapping) else inputs
        if given is not None:
            arr = np.asarray(given)
            if not np.issubdtype(arr.dtype, np.integer) or arr.shape != tuple(shape):
                raise SimulationError(
                    f"{op_label(i, trace[i].name)}: inputs[{j}] must be integers of shape "
                    f"{list(shape)}, got {arr.dtype} {list(arr.shape)}"
                )
            if arr.size and (arr.min() < INT8_MIN or arr.max() > INT8_MAX):
                raise SimulationError(
                    f"{op_label(i, trace[i].name)}: inputs[{j}] must be int8 values")
            return arr.astype(np.int64)
        return np.clip(np.rint(rng.normal(0.0, INPUT_STD, size=shape)), INT8_MIN,
                       INT8_MAX).astype(np.int64)

    outputs: list[np.ndarray] = []
    out_scales: list[float] = []
    ops: list[OpData] = []
    for i, op in enumerate(trace):
        operands = _operands(trace, i, outputs, external)
        in_scale = 1.0 / INPUT_STD if quant is None else quant.input_scale
        scales = [in_scale if ref.op is None else out_scales[ref.op] for ref in op.inputs]
        try:
            data = REGISTRY[op.kind].prepare(op, operands, scales, rng,
                                             None if quant is None else quant.ops[i])
        except ValueError as exc:
            raise SimulationError(f"{op_label(i, op.name)}: {exc}") from None
        ops.append(data)
        outputs.append(data.golden)
        out_scales.append(data.out_scale)
        if progress is not None:
            progress(1)
    return FunctionalData(trace, seed, ops)
