"""Functional mode: execute a trace in the hardware's own tile order and check it against golden.

:func:`edgetron.sim.prepare.prepare` builds the data of a run once per trace and seed
(inputs, weights, constants, golden outputs; it does not depend on the config).
:func:`run_functional` then executes every op with the simulator's Numba kernels, in the
order the hardware runs it on one config, and compares each output with golden bit for
bit. It takes the plan :func:`edgetron.sim.engine.simulate` made (a
:class:`~edgetron.sim.results.SimResult`), or a config to make one:

* matrix ops (gemm, conv2d by im2col, dwconv2d per channel) are cut into exactly the
  GEMM-unit calls of the plan (the tiles :func:`edgetron.sim.tiling.plan_gemm` chose for
  the timing model) and run by the GEMM unit's kernel
  (:func:`edgetron.sim.units.gemm.gemm_tiled`, whose docstring has the fold order); the
  number of calls is checked against the plan's.
* the vector ops run their units' kernels (softmax: max, exp + sum, normalize;
  LayerNorm: the statistics pass, the per-row square root and reciprocal, the normalize
  pass; GELU, residual add, pools, concat).

Each op runs through the ``run`` of its unit module (:data:`edgetron.sim.units.REGISTRY`).
Every accumulation is checked against the int32 range, never wrapped; one that leaves it
is a :class:`~edgetron.errors.SimulationError` naming the op.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.errors import SimulationError
from edgetron.jitcache import is_compiled
from edgetron.workload import Trace
from edgetron.workload.trace.limits import op_label

from .engine import simulate
from .prepare import DEFAULT_MAX_GIB, FunctionalData, check_size, prepare
from .records import C_CALLS, C_TILE_K, C_TILE_M, C_TILE_N
from .results import SimResult
from .units import REGISTRY
from .units.gemm import gemm_tiled

__all__ = [
    "FunctionalResult",
    "OpCheck",
    "kernels_compiled",
    "run_functional",
]


@dataclasses.dataclass(frozen=True)
class OpCheck:
    """The comparison of one op's simulated output with golden."""

    index: int
    name: str
    kind: str
    elements: int
    mismatches: int
    first_mismatch: tuple[int, ...] | None
    calls: int
    expected_calls: int

    @property
    def ok(self) -> bool:
        """Bit-exact, and the matrix op made the calls the timing model counts."""
        return self.mismatches == 0 and self.calls == self.expected_calls


@dataclasses.dataclass(frozen=True)
class FunctionalResult:
    """Per-op checks of one functional run."""

    trace_name: str
    config_name: str
    dataflow: str
    checks: tuple[OpCheck, ...]

    @property
    def ok(self) -> bool:
        """Every op bit-exact with golden."""
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[OpCheck, ...]:
        """The ops that differ from golden."""
        return tuple(c for c in self.checks if not c.ok)

    def summary(self) -> str:
        """One line per failing op, or a one-line success message."""
        if self.ok:
            elems = sum(c.elements for c in self.checks)
            return (f"functional: {len(self.checks)} ops, {elems:,} output values bit-exact "
                    f"with golden ({self.trace_name} on {self.config_name}, "
                    f"{self.dataflow})")
        lines = [f"functional: {len(self.failures)} of {len(self.checks)} ops differ from "
                 f"golden ({self.trace_name} on {self.config_name}, {self.dataflow})"]
        for c in self.failures:
            lines.append(
                f"  {op_label(c.index, c.name)}: {c.mismatches} of {c.elements} values "
                f"differ, first at {c.first_mismatch}; GEMM-unit calls {c.calls} "
                f"(timing model {c.expected_calls})"
            )
        return "\n".join(lines)


def kernels_compiled() -> bool:
    """Whether Numba's on-disk cache holds the GEMM unit's kernel, fresh.

    Returns
    -------
    bool
        False when the first :func:`run_functional` of the process will compile
        :func:`~edgetron.sim.units.gemm.gemm_tiled`, which runs every matrix op and is the
        bulk of functional mode's compile time (:func:`edgetron.jitcache.is_compiled`).
    """
    return is_compiled(gemm_tiled)


def _plan(data: FunctionalData, plan: SimResult | AcceleratorConfig) -> SimResult:
    """The timing model's plan of ``data.trace``: ``plan`` itself, or simulated on it."""
    if isinstance(plan, AcceleratorConfig):
        return simulate(data.trace, plan)
    if not isinstance(plan, SimResult):
        raise TypeError(f"expected a SimResult or an AcceleratorConfig, got "
                        f"{type(plan).__name__}")
    if plan.trace_ops != tuple(data.trace.ops):
        raise SimulationError(
            f"the plan is of trace {plan.trace_name!r} ({len(plan.trace_ops)} ops), the data "
            f"of trace {data.trace.name!r} ({len(data.trace)} ops): simulate the trace the "
            "data was prepared for"
        )
    return plan


def run_functional(
    data: FunctionalData | Trace,
    plan: SimResult | AcceleratorConfig,
    *,
    seed: int = 0,
    inputs: Mapping[int, np.ndarray] | np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
    max_gib: float | None = DEFAULT_MAX_GIB,
) -> FunctionalResult:
    """Execute every op in the hardware's tile order and compare with golden.

    Parameters
    ----------
    data : FunctionalData or Trace
        From :func:`~edgetron.sim.prepare.prepare` (reusable across configs), or a trace
        to prepare with ``seed`` and ``inputs``.
    plan : SimResult or AcceleratorConfig
        The result of :func:`~edgetron.sim.engine.simulate` for ``data``'s trace, whose
        tiles and call counts the run follows; or a config, which is simulated first.
    seed : int
        Used when ``data`` is a trace.
    inputs : array or mapping, optional
        Used when ``data`` is a trace (as :func:`~edgetron.sim.prepare.prepare` takes it).
    progress : callable, optional
        Called with 1 after each op.
    max_gib : float or None
        Refuse a run whose estimated peak memory
        (:func:`~edgetron.sim.prepare.estimate`) is larger, GiB; ``None`` for no limit.

    Returns
    -------
    FunctionalResult
        ``ok`` when every op is bit-exact and every matrix op made exactly the GEMM-unit
        calls the timing model counts.

    Raises
    ------
    TypeError
        ``data`` or ``plan`` of the wrong type (a programming error of the caller).
    SimulationError
        A plan of another trace, a run above ``max_gib``, an accumulation that left the
        int32 range (naming the op), or what :func:`~edgetron.sim.engine.simulate` and
        :func:`~edgetron.sim.prepare.prepare` raise.
    """
    if isinstance(data, Trace):
        data = prepare(data, seed=seed, inputs=inputs, max_gib=max_gib)
    elif not isinstance(data, FunctionalData):
        raise TypeError(f"expected FunctionalData or a Trace, got {type(data).__name__}")
    else:
        check_size(data.trace, max_gib)
    timing = _plan(data, plan)
    p = timing.config.sim_params()
    checks = []
    for i, (op, d) in enumerate(zip(data.trace, data.ops, strict=True)):
        row = timing.table[i]
        tile = (int(row[C_TILE_M]), int(row[C_TILE_K]), int(row[C_TILE_N]))
        got, calls, ok = REGISTRY[op.kind].run(op, d, p, tile)
        if not ok:
            raise SimulationError(f"{op_label(i, op.name)}: an int32 accumulation "
                                  "left the int32 range")
        diff = np.flatnonzero(got.ravel() != d.golden.ravel())
        first = None
        if diff.size:
            first = tuple(int(v) for v in np.unravel_index(int(diff[0]), got.shape))
        checks.append(OpCheck(i, op.name, op.kind, int(got.size), int(diff.size), first,
                              int(calls), round(float(row[C_CALLS]))))
        if progress is not None:
            progress(1)
    cfg = timing.config
    return FunctionalResult(data.trace.name, cfg.name, cfg.dataflow, tuple(checks))
