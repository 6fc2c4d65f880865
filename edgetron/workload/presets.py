"""Named workloads, and one entry point that resolves a preset name, a trace file or a CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgetron.workload.cnn import mobilenetv2, resnet18
from edgetron.workload.scalesim import read_scalesim
from edgetron.workload.trace import Trace, TraceError, load_trace
from edgetron.workload.trace.limits import brief
from edgetron.workload.vit import VIT_PRESETS, vit

__all__ = ["MODELS", "build_model", "load_workload"]


def _vit_preset(name: str) -> Callable[..., Trace]:
    def build(*, batch: int = 1) -> Trace:
        return vit(**VIT_PRESETS[name], batch=batch, name=name)

    build.__doc__ = f"The {name} trace ({VIT_PRESETS[name]}, 224x224, patch 16, depth 12)."
    return build


#: Preset workloads: name -> builder taking ``batch``.
MODELS: dict[str, Callable[..., Trace]] = {
    **{name: _vit_preset(name) for name in VIT_PRESETS},
    "resnet18": resnet18,
    "mobilenetv2": mobilenetv2,
}


def build_model(name: str, *, batch: int = 1) -> Trace:
    """The trace of preset ``name`` (see :data:`MODELS`) at ``batch``."""
    if name not in MODELS:
        raise TraceError(f"model {brief(name)} is not a preset; presets: {', '.join(MODELS)}")
    return MODELS[name](batch=batch)


def load_workload(spec: str | Path, *, batch: int | None = None) -> Trace:
    """A trace from a preset name, a SCALE-Sim topology CSV (``.csv``), an ONNX model
    (``.onnx``, docs/onnx.md) or a trace JSON file.

    Parameters
    ----------
    spec : str or Path
        Preset name (:data:`MODELS`) or file path.
    batch : int, optional
        Batch for presets and CSVs (default 1), and the value of an ONNX model's symbolic
        batch. A trace file fixes its own batch, and so does an ONNX model with a fixed
        one: giving a different one is an error.

    Raises
    ------
    TraceError
        If ``spec`` is neither a preset nor a file, or the file is invalid.
    """
    if isinstance(spec, str) and spec in MODELS:
        return build_model(spec, batch=1 if batch is None else batch)
    path = Path(spec)
    if not path.is_file():
        raise TraceError(
            f"model {brief(str(spec))} is neither a preset ({', '.join(MODELS)}) nor a file"
        )
    if path.suffix.lower() == ".csv":
        return read_scalesim(path, batch=1 if batch is None else batch)
    if path.suffix.lower() == ".onnx":
        from edgetron.workload.onnx import import_onnx  # loads onnx only for .onnx files

        return import_onnx(path, batch=batch).trace
    trace = load_trace(path)
    if batch is not None and batch != trace.batch:
        raise TraceError(
            f"{path}: batch: the trace is for batch {trace.batch}; a trace file fixes its "
            f"batch (rebuild it from its preset or CSV for batch {batch})"
        )
    return trace
