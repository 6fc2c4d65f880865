""":func:`deploy`: import, calibrate, run the integer model on real data, cost it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from edgetron.config import AcceleratorConfig
from edgetron.config_file import load_config
from edgetron.sim import engine
from edgetron.sim.engine import simulate
from edgetron.sim.prepare import DEFAULT_MAX_GIB, check_size

from .calibration import (
    DEFAULT_PERCENTILE,
    calibrate,
    check_calibration_size,
    check_percentile,
)
from .data import load_labels, load_samples
from .evaluate import evaluate
from .model import Model
from .report import DeployReport

__all__ = ["deploy"]


def deploy(model: str | Path | Model, calib, *, data=None, labels=None,
           config: AcceleratorConfig | str | Path | None = None, batch: int | None = None,
           percentile: float | None = DEFAULT_PERCENTILE,
           max_gib: float | None = DEFAULT_MAX_GIB,
           progress: Callable[[int], None] | None = None) -> DeployReport:
    """Deploy an ONNX model on its integer datapath and measure it (``docs/deploy.md``).

    Parameters
    ----------
    model : path or Model
        The ``.onnx`` file (weights inside), or a :class:`~edgetron.deploy.model.Model`.
    calib : path or array
        Calibration samples ``[N, *input[1:]]`` (a ``.npy`` file or an array).
    data : path or array, optional
        Evaluation samples; by default the calibration samples.
    labels : path or array, optional
        One integer class per evaluation sample: gives the top-1 accuracies.
    config : AcceleratorConfig, preset name or TOML path, optional
        The accelerator (default preset when None).
    batch : int, optional
        Value of the model's symbolic batch dimension.
    percentile : float or None
        Calibration percentile of ``|x|`` (None: the maximum).
    max_gib : float or None
        Refuse an inference whose functional-mode estimate exceeds it (GiB).
    progress : callable, optional
        Called with the number of evaluation samples done, after each block.

    Returns
    -------
    DeployReport

    Raises
    ------
    TraceError
        The model cannot be imported or deployed.
    SimulationError
        Bad data (file, dtype, shape, NaN, labels), a config that cannot run the model, a
        run above ``max_gib``, or a calibration too large to record.
    ConfigError
        A bad config.
    """
    t0 = time.perf_counter()
    check_percentile(percentile)
    cfg = config if isinstance(config, AcceleratorConfig) else load_config(config)
    m = model if isinstance(model, Model) else Model(model, batch=batch)
    cal = load_samples(calib, m.input_shape, "calib")
    ev = cal if data is None else load_samples(data, m.input_shape, "data")
    lab = None if labels is None else load_labels(labels, ev, m.classes)
    # Refusals before the long work.
    flat = engine.check(m.trace, cfg)
    check_size(m.trace, max_gib)
    check_calibration_size(m, cal)
    plan = simulate(flat, cfg)
    t1 = time.perf_counter()
    quant = calibrate(m, cal, percentile=percentile)
    t2 = time.perf_counter()
    result = evaluate(m, quant, ev, plan, progress=progress)
    t3 = time.perf_counter()
    return DeployReport(
        model=m.name, path=str(m.path), batch=m.batch, calib_name=cal.name,
        eval_name=ev.name, calib_samples=len(cal), percentile=percentile,
        input_scale=quant.input_scale, evaluation=result, labels=lab, cost=plan,
        seconds={"import": t1 - t0, "calibrate": t2 - t1, "evaluate": t3 - t2,
                 "total": t3 - t0},
    )
