"""Deployment of an ONNX model on its integer datapath, measured on real data (docs/deploy.md).

:func:`deploy` imports the model, calibrates its scales on the user's samples, quantizes
its weights, runs the integer model through the simulator's functional mode in the tile
order of an accelerator config (every op checked bit for bit against golden), and reports
integer against float top-1 accuracy, their agreement, the per-layer cosine and the cost.

The modules, each using only those above it:

* :mod:`.data` -- samples and labels from ``.npy`` files or arrays, checked;
* :mod:`.model` -- :class:`Model`: the imported model, its float references (per op, and
  onnxruntime), a trace rebatched for blocks of samples;
* :mod:`.calibration` -- :func:`calibrate`: the :class:`~edgetron.sim.opdata.Quantization`
  (real scales, int8 weights) from calibration samples;
* :mod:`.evaluate` -- :func:`evaluate`: functional runs, predictions and cosines;
* :mod:`.report` -- :class:`DeployReport`: text and JSON;
* :mod:`.pipeline` -- :func:`deploy`, all of the above.
"""

from .calibration import DEFAULT_PERCENTILE, calibrate, sets_scale
from .data import MAX_SAMPLES, Samples, load_labels, load_samples
from .evaluate import Evaluation, OpFailure, evaluate
from .model import Model, rebatch
from .pipeline import deploy
from .report import DeployReport

__all__ = [
    "DEFAULT_PERCENTILE",
    "MAX_SAMPLES",
    "DeployReport",
    "Evaluation",
    "Model",
    "OpFailure",
    "Samples",
    "calibrate",
    "deploy",
    "evaluate",
    "load_labels",
    "load_samples",
    "rebatch",
    "sets_scale",
]
