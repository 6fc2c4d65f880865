"""Workload traces: the format (load, save, validate), model builders, SCALE-Sim import/export.

The public API (see ``docs/trace-format.md``):

* :class:`Trace` and the op classes :class:`Gemm`, :class:`Conv2d`, :class:`DwConv2d`,
  :class:`MaxPool`, :class:`AvgPool`, :class:`Softmax`, :class:`LayerNorm`,
  :class:`Gelu`, :class:`Add`, :class:`Concat` (all frozen, validated dataclasses),
  :class:`Ref` (an op input), :class:`GemmShape` (an op's view for a matrix unit);
  :func:`load_trace`, :func:`save_trace`; :class:`TraceError`; the constants
  :data:`KINDS`, :data:`HEAD_LAYOUTS`, :data:`ACTIVATIONS`, :data:`ACC_BITS`,
  :data:`BIAS_BITS` and the limits :data:`MAX_DIM`, :data:`MAX_ELEMENTS`,
  :data:`MAX_OPS`, :data:`MAX_FILE_BYTES`.
* Builders :func:`vit`, :func:`resnet18`, :func:`mobilenetv2`; presets :data:`MODELS`,
  :func:`build_model`; :func:`load_workload` for a preset name, trace file or CSV.
* SCALE-Sim: :func:`read_scalesim`, :func:`parse_scalesim`, :func:`to_scalesim`,
  :func:`write_scalesim`; :class:`ScaleSimError`.
"""

from edgetron.workload.cnn import mobilenetv2, resnet18
from edgetron.workload.presets import MODELS, build_model, load_workload
from edgetron.workload.scalesim import (
    ScaleSimError,
    parse_scalesim,
    read_scalesim,
    to_scalesim,
    write_scalesim,
)
from edgetron.workload.trace import (
    ACC_BITS,
    ACTIVATIONS,
    BIAS_BITS,
    FORMAT,
    HEAD_LAYOUTS,
    KINDS,
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_FILE_BYTES,
    MAX_OPS,
    VERSION,
    Add,
    AvgPool,
    Concat,
    Conv2d,
    DwConv2d,
    Gelu,
    Gemm,
    GemmShape,
    LayerNorm,
    MaxPool,
    Op,
    Ref,
    Softmax,
    Trace,
    TraceError,
    load_trace,
    save_trace,
)
from edgetron.workload.vit import VIT_PRESETS, vit

__all__ = [
    "ACC_BITS",
    "ACTIVATIONS",
    "BIAS_BITS",
    "FORMAT",
    "HEAD_LAYOUTS",
    "KINDS",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_OPS",
    "MODELS",
    "VERSION",
    "VIT_PRESETS",
    "Add",
    "AvgPool",
    "Concat",
    "Conv2d",
    "DwConv2d",
    "Gelu",
    "Gemm",
    "GemmShape",
    "LayerNorm",
    "MaxPool",
    "Op",
    "Ref",
    "ScaleSimError",
    "Softmax",
    "Trace",
    "TraceError",
    "build_model",
    "load_trace",
    "load_workload",
    "mobilenetv2",
    "parse_scalesim",
    "read_scalesim",
    "resnet18",
    "save_trace",
    "to_scalesim",
    "vit",
    "write_scalesim",
]
