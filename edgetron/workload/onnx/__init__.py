"""ONNX import: a model file as a trace plus its float weights (``docs/onnx.md``).

* :func:`import_onnx` -- ``(trace, weights)`` from an ``.onnx`` file;
* :func:`save_weights`, :func:`load_weights`, :func:`weights_path` -- the weights file
  beside a trace (``TRACE.weights.npz``), read with sizes checked before loading;
* :data:`SUPPORTED_OPS`, :data:`OPSETS`, :data:`MAX_MODEL_BYTES`, :data:`STRIPPED`.
"""

from .graph import MAX_MODEL_BYTES, OPSETS, STRIPPED
from .importer import SUPPORTED_OPS, Imported, import_onnx

__all__ = [
    "MAX_MODEL_BYTES",
    "OPSETS",
    "STRIPPED",
    "SUPPORTED_OPS",
    "Imported",
    "import_onnx",
]
