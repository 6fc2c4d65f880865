"""The user's data: samples and labels from ``.npy`` files or arrays, checked before use.

A file is read with ``allow_pickle=False`` and memory-mapped, so only its header is read
before the checks: one array (not an ``.npz``), a plain numeric dtype, the model's
per-sample shape, at most :data:`MAX_SAMPLES` samples. Samples are then read block by
block (:meth:`Samples.block`), each block converted to float64 and checked for NaN and
infinity, so that no more than a block is ever held as floats. Labels are a 1-D integer
array, one per sample, each a class of the model's output.

Every problem is a :class:`~edgetron.errors.SimulationError` naming the file (or the
argument) and the problem, e.g. ``calib.npy: shape [100, 8, 8]: expected [N, 1, 8, 8]
(N samples of the model input [1, 1, 8, 8])``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgetron.errors import SimulationError

__all__ = ["MAX_SAMPLES", "Samples", "load_labels", "load_samples"]

#: Most samples a data set may hold (calibration or evaluation).
MAX_SAMPLES = 1 << 24


def _open(source, what: str) -> tuple[np.ndarray, str]:
    """The array of ``source`` (a path or an array) and the name used in messages."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError):
            raise SimulationError(f"{path}: not a .npy array of plain numbers (pickled and "
                                  "object arrays are refused)") from None
        if not isinstance(arr, np.ndarray):
            arr.close()
            raise SimulationError(f"{path}: expected one array (.npy), got an .npz archive")
        return arr, str(path)
    if not isinstance(source, np.ndarray):
        raise SimulationError(f"{what}: expected a NumPy array or a .npy file, got "
                              f"{type(source).__name__}")
    return source, what


class Samples:
    """Model inputs, ``[N, *input_shape[1:]]``: the ONNX input with the batch axis as N.

    Parameters
    ----------
    source : path or array
        A ``.npy`` file or an array of real numbers.
    input_shape : tuple of int
        The model's ONNX input shape; its first axis is the batch.
    what : str
        Name of the data in messages when ``source`` is an array (``"calib"``).

    Raises
    ------
    SimulationError
        Not a ``.npy`` array, an object, boolean or complex dtype, a shape that is not N
        samples of the input, no samples or more than :data:`MAX_SAMPLES`.
    """

    def __init__(self, source, input_shape: tuple[int, ...], what: str) -> None:
        arr, self.name = _open(source, what)
        sample = tuple(int(d) for d in input_shape[1:])
        want = f"[N, {', '.join(map(str, sample))}]" if sample else "[N]"
        if arr.dtype.kind not in "fiu":
            raise SimulationError(f"{self.name}: dtype {arr.dtype}: expected real numbers "
                                  "(float or integer)")
        if arr.ndim != 1 + len(sample) or tuple(arr.shape[1:]) != sample:
            raise SimulationError(
                f"{self.name}: shape {list(arr.shape)}: expected {want} (N samples of the "
                f"model input {list(input_shape)})")
        if not 1 <= arr.shape[0] <= MAX_SAMPLES:
            raise SimulationError(f"{self.name}: {arr.shape[0]} samples; expected 1 to "
                                  f"{MAX_SAMPLES}")
        self.array = arr
        self.sample_shape = sample

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def sample_elements(self) -> int:
        """Elements of one sample."""
        return math.prod(self.sample_shape)

    def block(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` as float64, checked finite.

        Raises
        ------
        SimulationError
            A NaN or infinite value (the first sample holding one is named).
        """
        x = np.asarray(self.array[start:stop], dtype=np.float64)
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise SimulationError(f"{self.name}: sample {start + int(np.argmax(bad))} holds "
                                  "NaN or infinite values")
        return x


def load_samples(source, input_shape: tuple[int, ...], what: str) -> Samples:
    """:class:`Samples` of ``source`` (an already loaded :class:`Samples` is returned)."""
    if isinstance(source, Samples):
        if source.sample_shape != tuple(int(d) for d in input_shape[1:]):
            raise SimulationError(f"{source.name}: samples of shape {list(source.sample_shape)}"
                                  f", the model input is {list(input_shape)}")
        return source
    return Samples(source, input_shape, what)


def load_labels(source, samples: Samples, classes: int, what: str = "labels") -> np.ndarray:
    """The labels of ``samples``: int64 ``[N]``, each in ``[0, classes)``.

    Raises
    ------
    SimulationError
        Not a ``.npy`` array, not 1-D integers, a length other than the samples', or a
        label outside ``[0, classes)`` (the first one named).
    """
    arr, name = _open(source, what)
    if arr.dtype.kind not in "iu":
        raise SimulationError(f"{name}: dtype {arr.dtype}: expected integer class labels")
    if arr.ndim != 1:
        raise SimulationError(f"{name}: shape {list(arr.shape)}: expected one label per "
                              "sample, [N]")
    if len(arr) != len(samples):
        raise SimulationError(f"{name}: {len(arr)} labels for the {len(samples)} samples of "
                              f"{samples.name}")
    labels = np.asarray(arr)
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        i = int(bad[0])
        raise SimulationError(f"{name}: label {i} is {int(labels[i])}; the model has "
                              f"{classes} classes (0 to {classes - 1})")
    return labels.astype(np.int64)
