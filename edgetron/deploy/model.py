"""An imported ONNX model ready to deploy: its trace and float weights, its float references.

:class:`Model` imports the file once (:func:`edgetron.workload.onnx.import_onnx`) and
keeps what deployment needs around the trace:

* the **float reference per op**, :func:`edgetron.workload.onnx.run_float` on a block of
  samples at once: the trace is the same network for any batch (every op acts on each
  sample alone), so a block of ``n`` samples runs on the trace rebatched to ``n``
  (:func:`rebatch`), which is much faster than ``n`` runs of one sample;
* the **float output of the ONNX model itself**, from onnxruntime, in chunks of the
  model's own batch -- the float accuracy a user would measure without edgetron;
* the model output of a run of the trace at its own batch, per sample
  (:meth:`Model.predictions`).

The model's input must have the batch as its first axis (so must the trace's stored
input), and its output too: one row of class scores per sample.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from edgetron.errors import TraceError
from edgetron.workload import Trace
from edgetron.workload.onnx import import_onnx, output_of, run_float, stored_input

__all__ = ["Model", "rebatch"]

#: onnxruntime's input element types and the NumPy dtypes they take.
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
              "tensor(float16)": np.float16}


def _with_batch(op, n: int):
    """``op`` for a batch of ``n`` samples (its batch field: ``batch``, ``n`` or ``shape[0]``)."""
    names = {f.name for f in dataclasses.fields(op)}
    if "batch" in names:
        return dataclasses.replace(op, batch=n)
    if "n" in names:
        return dataclasses.replace(op, n=n)
    return dataclasses.replace(op, shape=(n, *op.shape[1:]))


def rebatch(trace: Trace, n: int) -> Trace:
    """``trace`` for ``n`` samples: the same ops and links, every batch dimension ``n``.

    Raises
    ------
    TraceError
        ``n`` outside the trace's limits (named as the trace would name it).
    """
    if n == trace.batch:
        return trace
    return Trace(name=trace.name, batch=n, ops=tuple(_with_batch(op, n) for op in trace),
                 description=trace.description)


class Model:
    """An ONNX model imported for deployment (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file, with its weights inside.
    batch : int, optional
        Value of a symbolic batch dimension (as ``edgetron import --batch``).

    Raises
    ------
    TraceError
        What :func:`~edgetron.workload.onnx.import_onnx` raises; a shape-only model (no
        weights); an input or output without a leading batch axis.
    """

    def __init__(self, path: str | Path, *, batch: int | None = None) -> None:
        self.path = Path(path)
        self.trace, weights = import_onnx(self.path, batch=batch)
        if weights is None:
            raise TraceError(f"{self.path}: a shape-only model (its weights left out) cannot "
                             "be deployed; export it with its weights")
        self.weights = weights
        self.input_shape = tuple(int(d) for d in weights["input.shape"])
        self.output_shape = tuple(int(d) for d in weights["output.shape"])
        b = self.trace.batch
        if int(weights["input.perm"][0]) != 0 or self.input_shape[0] != b:
            raise TraceError(f"{self.path}: the input {list(self.input_shape)} has no leading "
                             f"batch axis of {b}; deployment feeds samples along axis 0")
        if len(self.output_shape) < 2 or self.output_shape[0] != b:
            raise TraceError(f"{self.path}: the output {list(self.output_shape)} is not "
                             f"[{b}, classes]: deployment needs one row of class scores per "
                             "sample")
        self._batched: dict[int, tuple[Trace, dict]] = {}
        self._session = None

    @property
    def name(self) -> str:
        """The trace's name (the file's stem)."""
        return self.trace.name

    @property
    def batch(self) -> int:
        """Samples per inference of the model (the trace's batch)."""
        return self.trace.batch

    @property
    def classes(self) -> int:
        """Scores per sample in the model output."""
        return math.prod(self.output_shape[1:])

    def _at(self, n: int) -> tuple[Trace, dict]:
        """The trace and weights for a block of ``n`` samples (a multiple of the batch)."""
        if n not in self._batched:
            w = dict(self.weights)
            w["input.shape"] = np.asarray((n, *self.input_shape[1:]), dtype=np.int64)
            self._batched[n] = (rebatch(self.trace, n), w)
        return self._batched[n]

    def stored(self, x: np.ndarray) -> np.ndarray:
        """Samples ``x`` (ONNX layout, a multiple of the batch) as the trace stores its input."""
        return stored_input(self._at(len(x))[1], x)

    def float_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every op's float64 output for the samples ``x`` (stored shapes, batch ``len(x)``)."""
        trace, w = self._at(len(x))
        return run_float(trace, w, x)

    def predictions(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The model output ``[batch, classes]`` of a run of the trace at its own batch."""
        return output_of(self.weights, outputs).reshape(self.batch, self.classes)

    def onnx_scores(self, x: np.ndarray) -> np.ndarray:
        """onnxruntime's model output ``[len(x), classes]``, ``x`` a multiple of the batch."""
        import onnxruntime as ort  # a heavy import, only where a session is made

        if self._session is None:
            self._session = ort.InferenceSession(str(self.path),
                                                 providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        dtype = _ORT_TYPES.get(inp.type)
        if dtype is None:
            raise TraceError(f"{self.path}: input {inp.name!r} of type {inp.type}: deployment "
                             f"feeds real numbers ({', '.join(_ORT_TYPES)})")
        b = self.batch
        out = [self._session.run(None, {inp.name: x[i:i + b].astype(dtype)})[0]
               for i in range(0, len(x), b)]
        return np.concatenate(out).reshape(len(x), self.classes).astype(np.float64)
