"""The result of a deployment: accuracy beside cost, as text and as a JSON document."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgetron.sim.results import SimResult
from edgetron.workload.trace.limits import op_label

from .evaluate import Evaluation

__all__ = ["DeployReport"]


@dataclasses.dataclass(frozen=True)
class DeployReport:
    """What :func:`edgetron.deploy.deploy` measured (``docs/deploy.md``, "The report").

    Attributes
    ----------
    model, path : str
        The model's name and file.
    batch : int
        Samples per inference (the model's batch).
    calib_name, eval_name : str
        The calibration and evaluation data (file names, or the arguments' names).
    calib_samples : int
    percentile : float or None
        The calibration percentile (None: the maximum).
    input_scale : float
        Real scale of the int8 model input.
    evaluation : Evaluation
    labels : int64 array [N] or None
    cost : SimResult
        The timing model's result of one inference (the model's batch) on the config.
    seconds : dict
        Wall-clock seconds of ``import``, ``calibrate``, ``evaluate`` and ``total``.
    """

    model: str
    path: str
    batch: int
    calib_name: str
    eval_name: str
    calib_samples: int
    percentile: float | None
    input_scale: float
    evaluation: Evaluation
    labels: np.ndarray | None
    cost: SimResult
    seconds: dict[str, float]

    @property
    def samples(self) -> int:
        """Evaluation samples."""
        return len(self.evaluation.int_pred)

    @property
    def bit_exact(self) -> bool:
        """Every op of every functional run equal to golden."""
        return self.evaluation.bit_exact

    @property
    def agreement(self) -> float:
        """Fraction of samples whose integer top-1 equals onnxruntime's float top-1."""
        e = self.evaluation
        return float(np.mean(e.int_pred == e.float_pred))

    def top1(self, which: str) -> float | None:
        """Top-1 accuracy of the ``"float"`` or ``"int"`` model (None without labels)."""
        if self.labels is None:
            return None
        pred = self.evaluation.float_pred if which == "float" else self.evaluation.int_pred
        return float(np.mean(pred == self.labels))

    def cosine_summary(self) -> dict[str, Any]:
        """``min``, ``median`` of the per-op cosines and the op of the minimum."""
        cos = self.evaluation.cosine
        worst = int(np.argmin(cos))
        return {"min": float(cos[worst]), "median": float(np.median(cos)),
                "min_op": worst, "min_name": self.cost.trace_ops[worst].name}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``edgetron deploy --json`` (``docs/deploy.md``)."""
        e = self.evaluation
        t = self.cost.totals
        ops = self.cost.trace_ops
        return {
            "model": self.model, "path": self.path,
            "config": self.cost.config.name, "dataflow": self.cost.config.dataflow,
            "batch": self.batch,
            "calibration": {"data": self.calib_name, "samples": self.calib_samples,
                            "percentile": self.percentile, "input_scale": self.input_scale},
            "evaluation": {"data": self.eval_name, "samples": self.samples,
                           "labelled": self.labels is not None},
            "accuracy": {
                "float_top1": self.top1("float"), "int_top1": self.top1("int"),
                "agreement": self.agreement,
                "float_correct": None if self.labels is None
                else int(np.sum(e.float_pred == self.labels)),
                "int_correct": None if self.labels is None
                else int(np.sum(e.int_pred == self.labels)),
            },
            "functional": {
                "bit_exact": e.bit_exact, "runs": e.runs, "ops_checked": len(ops),
                "values_checked": e.values,
                "failures": [dataclasses.asdict(f) for f in e.failures],
            },
            "cosine": self.cosine_summary(),
            "ops": [{"index": i, "name": op.name, "kind": op.kind,
                     "out_scale": e.out_scales[i], "cosine": float(e.cosine[i])}
                    for i, op in enumerate(ops)],
            "cost": {"cycles": t["cycles"], "macs": t["macs"],
                     "latency_ms": t["latency_ms"], "energy_uj": t["energy_uj"],
                     "utilization": t["utilization"]},
            "seconds": dict(self.seconds),
        }

    def accuracy_lines(self) -> list[str]:
        """Top-1 and agreement, one line each."""
        lines = []
        f, i = self.top1("float"), self.top1("int")
        if f is not None and i is not None:
            lines.append(f"top-1 on {self.samples} samples: float (onnxruntime) "
                         f"{100 * f:.2f} %, integer {100 * i:.2f} % "
                         f"({100 * (i - f):+.2f} pp)")
        lines.append(f"agreement: {100 * self.agreement:.2f} % of samples give the float "
                     "model's top-1")
        return lines

    def format(self, *, per_op: bool = False) -> str:
        """A readable report (every op's scale and cosine with ``per_op``)."""
        e = self.evaluation
        c = self.cost.config
        t = self.cost.totals
        rule = "max |x|" if self.percentile is None else f"{self.percentile:g}th " \
            "percentile of |x|"
        cs = self.cosine_summary()
        lines = [
            f"{self.model} ({self.path}) on {c.name}: {c.rows}x{c.cols} {c.dataflow}, "
            f"{c.clock_mhz:g} MHz",
            f"calibrated on {self.calib_samples} samples of {self.calib_name} (activations: "
            f"{rule} per tensor; weights: int8, per channel where requantized per channel)",
            f"evaluated on {self.samples} samples of {self.eval_name}",
            *self.accuracy_lines(),
        ]
        if e.bit_exact:
            lines.append(f"functional: {e.runs} runs x {len(self.cost.trace_ops)} ops, "
                         f"{e.values:,} values bit-exact with golden (tile order of "
                         f"{c.name}, {c.dataflow})")
        else:
            lines.append(f"functional: {len(e.failures)} ops differ from golden")
            lines += [f"  {op_label(f.index, f.name)}: {f.mismatches} values in {f.runs} "
                      f"runs" + (", GEMM-unit calls differ" if f.calls_differ else "")
                      for f in e.failures]
        lines.append(f"per-layer cosine (integer vs float): min {cs['min']:.4f} "
                     f"({op_label(cs['min_op'], cs['min_name'])}), median {cs['median']:.4f}")
        if per_op:
            for i, op in enumerate(self.cost.trace_ops):
                lines.append(f"  {i:>4}  {op.name:<24} {op.kind:<9} scale "
                             f"{e.out_scales[i]:.4g}  cosine {e.cosine[i]:.4f}")
        lines.append(f"cost per inference (batch {self.batch}): "
                     f"latency {t['latency_ms'] * 1e3:,.2f} us, energy "
                     f"{t['energy_uj']:,.2f} uJ, utilization {100 * t['utilization']:.1f} %, "
                     f"{t['cycles']:,} cycles, {t['macs']:,} MACs")
        s = self.seconds
        lines.append(f"time: import {s['import']:.2f} s, calibrate {s['calibrate']:.2f} s, "
                     f"evaluate {s['evaluate']:.2f} s")
        return "\n".join(lines)
