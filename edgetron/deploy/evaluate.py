"""The integer model on real data: functional runs checked against golden, predictions, cosines.

:func:`evaluate` runs the deployed model on every sample, one inference (the model's own
batch) at a time, exactly as ``edgetron sim --functional`` runs one:
:func:`~edgetron.sim.prepare.prepare` with the model's
:class:`~edgetron.sim.opdata.Quantization` (its weights, calibrated scales and golden's
constants; each op's golden output), then
:func:`~edgetron.sim.functional.run_functional` in the tile order of the config's plan,
which checks every op bit for bit against golden. Beside it, per block of samples, the
float reference (:meth:`~edgetron.deploy.model.Model.float_outputs`) and onnxruntime's
output give the float predictions and the per-op cosine between the dequantized integer
output (``q * S``) and the float one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from edgetron.golden.quant import quantize
from edgetron.sim.functional import run_functional
from edgetron.sim.opdata import Quantization
from edgetron.sim.prepare import prepare
from edgetron.sim.results import SimResult

from .calibration import BLOCK
from .data import Samples
from .model import Model

__all__ = ["Evaluation", "OpFailure", "evaluate"]


@dataclasses.dataclass(frozen=True)
class OpFailure:
    """An op that differed from golden in some functional runs."""

    index: int
    name: str
    kind: str
    runs: int  #: runs (inferences) in which it differed
    mismatches: int  #: differing values, over all runs
    calls_differ: bool  #: it made other GEMM-unit calls than the timing model counts


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The integer model's run on a data set.

    Attributes
    ----------
    int_pred, float_pred : int64 arrays [N]
        Top-1 class of the integer model and of onnxruntime's float model, per sample.
    cosine : float64 array [ops]
        Cosine similarity of each op's dequantized integer output with the float
        reference's, over all samples (1.0 when both are zero).
    out_scales : tuple of float
        Each op's real output scale.
    runs : int
        Functional runs (inferences of the model's batch).
    values : int
        Output values compared with golden, over all runs and ops.
    failures : tuple of OpFailure
        The ops that were not bit-exact (empty when all were).
    """

    int_pred: np.ndarray
    float_pred: np.ndarray
    cosine: np.ndarray
    out_scales: tuple[float, ...]
    runs: int
    values: int
    failures: tuple[OpFailure, ...]

    @property
    def bit_exact(self) -> bool:
        """Every op of every run equal to golden bit for bit."""
        return not self.failures


def _external(trace, xq: np.ndarray) -> dict[int, np.ndarray]:
    """The int8 input of every op reading the model input, in its operand shape."""
    out = {}
    for i, op in enumerate(trace):
        for j, ref in enumerate(op.inputs):
            if ref.op is None:
                out[i] = xq.reshape(op.in_shapes[j])
                break
    return out


def evaluate(model: Model, quant: Quantization, samples: Samples, plan: SimResult, *,
             progress: Callable[[int], None] | None = None) -> Evaluation:
    """Run the integer model on ``samples`` (module docstring).

    Parameters
    ----------
    model : Model
    quant : Quantization
        From :func:`~edgetron.deploy.calibrate.calibrate`.
    samples : Samples
    plan : SimResult
        :func:`~edgetron.sim.engine.simulate` of ``model.trace`` on the config: the tile
        order of every functional run.
    progress : callable, optional
        Called with the number of samples done after each block.

    Raises
    ------
    SimulationError
        NaN or infinite samples, or what functional mode raises (an accumulation that left
        int32, naming the op).
    """
    trace, b = model.trace, model.batch
    nops = len(trace)
    dot, nf, ni = (np.zeros(nops) for _ in range(3))
    int_pred, float_pred = [], []
    scales: tuple[float, ...] = ()
    runs = values = 0
    failed: dict[int, list] = {}
    step = b * math.ceil(BLOCK / b)
    for start in range(0, len(samples), step):
        x = samples.block(start, start + step)
        n = len(x)
        x = np.concatenate([x, np.repeat(x[:1], -n % b, axis=0)])  # whole inferences
        floats = model.float_outputs(x)
        float_pred.append(np.argmax(model.onnx_scores(x)[:n], axis=1))
        xq = quantize(model.stored(x), quant.input_scale)
        for c in range(0, len(x), b):
            data = prepare(trace, inputs=_external(trace, xq[c:c + b]), quant=quant,
                           max_gib=None)
            checked = run_functional(data, plan, max_gib=None)
            runs += 1
            values += sum(ch.elements for ch in checked.checks)
            for ch in checked.failures:
                f = failed.setdefault(ch.index, [0, 0, False])
                f[0] += 1
                f[1] += ch.mismatches
                f[2] |= ch.calls != ch.expected_calls
            scales = tuple(d.out_scale for d in data.ops)
            keep = min(b, n - c)  # the padding's results are dropped
            if keep <= 0:
                continue
            goldens = [d.golden for d in data.ops]
            int_pred.append(np.argmax(model.predictions(goldens)[:keep], axis=1))
            for i, (g, s) in enumerate(zip(goldens, scales, strict=True)):
                q = g[:keep].astype(np.float64).ravel() * s
                f = floats[i][c:c + keep].ravel()
                dot[i] += q @ f
                ni[i] += q @ q
                nf[i] += f @ f
        if progress is not None:
            progress(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where((nf == 0) & (ni == 0), 1.0,
                          np.nan_to_num(dot / np.sqrt(nf * ni), nan=0.0))
    failures = tuple(OpFailure(i, trace[i].name, trace[i].kind, *failed[i])
                     for i in sorted(failed))
    return Evaluation(np.concatenate(int_pred), np.concatenate(float_pred), cosine, scales,
                      runs, values, failures)
