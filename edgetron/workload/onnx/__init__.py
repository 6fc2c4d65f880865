"""ONNX import: a model file as a trace plus its float weights (``docs/onnx.md``).

* :func:`import_onnx` -- ``(trace, weights)`` from an ``.onnx`` file;
* :func:`save_weights`, :func:`load_weights`, :func:`weights_path` -- the weights file
  beside a trace (``TRACE.weights.npz``), read with sizes checked before loading;
* :func:`run_float`, :func:`output_of`, :func:`stored_input` -- the float64 reference run
  of an imported trace (equal to onnxruntime's output up to rounding);
* :data:`SUPPORTED_OPS`, :data:`OPSETS`, :data:`MAX_MODEL_BYTES`, :data:`STRIPPED`.
"""

from .graph import MAX_MODEL_BYTES, OPSETS, STRIPPED
from .importer import SUPPORTED_OPS, Imported, import_onnx
from .reference import output_of, run_float, stored_input
from .weights import expected_shapes, load_weights, save_weights, weights_path

__all__ = [
    "MAX_MODEL_BYTES",
    "OPSETS",
    "STRIPPED",
    "SUPPORTED_OPS",
    "Imported",
    "expected_shapes",
    "import_onnx",
    "load_weights",
    "output_of",
    "run_float",
    "save_weights",
    "stored_input",
    "weights_path",
]
