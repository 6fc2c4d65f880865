"""The result of a simulation: per-op rows, totals, energy per event, JSON-ready dicts.

:class:`SimResult` holds the float64 result table the engine's kernels wrote (one row of
:data:`edgetron.sim.records.COLUMNS` per op) and derives everything else from it on
demand: per-op :class:`OpResult` objects, totals, utilization, latency and energy per
event. Nothing is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from edgetron.config import ENERGY_EVENTS, AcceleratorConfig
from edgetron.workload import Op

from .energy import energy_table
from .records import (
    ARRAY_UNITS,
    C_ARRAY_UNIT,
    C_DRAM_RD,
    C_DRAM_WR,
    C_EV_ADD,
    C_EV_MAC,
    C_EV_MUL,
    C_EV_REG,
    C_SRAM_RD,
    C_SRAM_WR,
    COLUMNS,
)
from .units import REGISTRY

__all__ = ["OpResult", "SimResult"]

#: The result column of each energy event's count (DRAM bytes are read plus write).
_EVENT_COLUMN = {
    "mac_int8": C_EV_MAC, "add_int32": C_EV_ADD, "mul_int32": C_EV_MUL,
    "reg_byte": C_EV_REG, "sram_read_byte": C_SRAM_RD,
    "sram_write_byte": C_SRAM_WR,
}


@dataclasses.dataclass(frozen=True)
class OpResult:
    """Costs of one op (cycles, bytes, events as counts; energy in pJ).

    ``values`` maps every column of :data:`edgetron.sim.records.COLUMNS` (except the
    error columns and ``array_unit``) to its value; integers for counts. ``unit`` is the
    op's class of unit (``array`` or ``vector``), ``hw_unit`` the hardware unit that ran
    it, by its one name (an op of the array: the GEMM unit ``gemm``, the depthwise mode
    ``conv`` or the ConvUnit ``conv_dense``, as the simulator chose; a vector op: its
    kind's unit module, e.g. ``pool`` for both pools).
    """

    index: int
    name: str
    kind: str
    unit: str
    hw_unit: str
    shape: str
    values: dict[str, float]

    def __getitem__(self, key: str) -> float:
        return self.values[key]


_ERROR_COLUMNS = ("error", "error_need", "error_have")
#: Columns that are not counts (left out of the values; ``array_unit`` is ``hw_unit``).
_NOT_VALUES = (*_ERROR_COLUMNS, "array_unit")
_FLOAT_COLUMNS = ("energy_pj", "ev_reg_byte")


@dataclasses.dataclass(frozen=True)
class SimResult:
    """The result of :func:`simulate`: per-op rows and totals for one trace on one config.

    Attributes
    ----------
    trace_name : str
    config : AcceleratorConfig
    table : float64 array [n_ops, len(COLUMNS)]
        The raw per-op rows (columns :data:`edgetron.sim.records.COLUMNS`).
    trace_ops : tuple of Op
        The ops, for names, kinds and shapes.
    """

    trace_name: str
    config: AcceleratorConfig
    table: np.ndarray
    trace_ops: tuple[Op, ...]

    @functools.cached_property
    def ops(self) -> tuple[OpResult, ...]:
        """Per-op results (built on first use)."""
        out = []
        for i, op in enumerate(self.trace_ops):
            row = self.table[i]
            values: dict[str, float] = {}
            for j, col in enumerate(COLUMNS):
                if col in _NOT_VALUES:
                    continue
                v = float(row[j])
                values[col] = v if col in _FLOAT_COLUMNS else round(v)
            model = REGISTRY[op.kind]
            hw_unit = ARRAY_UNITS[int(row[C_ARRAY_UNIT])] if model.on_array else model.unit
            out.append(OpResult(i, op.name, op.kind, op.unit, hw_unit, op.describe(), values))
        return tuple(out)

    @property
    def peak_macs_per_cycle(self) -> int:
        """``rows * cols``."""
        return self.config.rows * self.config.cols

    def _derived(self, values: dict[str, Any]) -> dict[str, Any]:
        cycles = values["cycles"]
        peak = self.peak_macs_per_cycle
        return {
            "utilization": values["macs"] / (peak * cycles) if cycles else 0.0,
            "latency_ms": cycles / (self.config.clock_mhz * 1e3),
            "energy_uj": values["energy_pj"] / 1e6,
            "dram_bytes": values["dram_read_bytes"] + values["dram_write_bytes"],
            "sram_bytes": values["sram_read_bytes"] + values["sram_write_bytes"],
        }

    @functools.cached_property
    def totals(self) -> dict[str, Any]:
        """Sums over ops plus utilization, latency (ms), energy (uJ), DRAM and SRAM bytes."""
        sums = self.table.sum(axis=0)
        values: dict[str, Any] = {}
        for j, col in enumerate(COLUMNS):
            if col in _NOT_VALUES or col.startswith("tile_") or col in (
                    "double_buffered", "k_chunks"):
                continue
            values[col] = float(sums[j]) if col in _FLOAT_COLUMNS else round(float(sums[j]))
        values.update(self._derived(values))
        values["energy_by_event_uj"] = self.energy_by_event()
        return values

    def energy_by_event(self, op: int | None = None) -> dict[str, float]:
        """Energy per event kind (uJ), of one op or (``None``) of the whole trace."""
        table = energy_table(self.config)
        rows = self.table if op is None else self.table[op:op + 1]
        sums = rows.sum(axis=0)
        out = {}
        for name in ENERGY_EVENTS:
            if name == "dram_byte":
                count = sums[C_DRAM_RD] + sums[C_DRAM_WR]
            else:
                count = sums[_EVENT_COLUMN[name]]
            out[name] = float(count * table[name] / 1e6)
        return out

    def op_dict(self, i: int) -> dict[str, Any]:
        """One op's row as plain data (the per-op JSON object)."""
        r = self.ops[i]
        values = dict(r.values)
        values.update(self._derived(values))
        return {"index": r.index, "name": r.name, "kind": r.kind, "unit": r.unit,
                "hw_unit": r.hw_unit, "shape": r.shape, **values}

    def op_dicts(self) -> list[dict[str, Any]]:
        """Every op's :meth:`op_dict`, in trace order."""
        return [self.op_dict(i) for i in range(len(self.trace_ops))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``trace``, ``config``, ``totals`` and ``ops``."""
        return {
            "trace": self.trace_name,
            "config": self.config.to_dict(),
            "totals": self.totals,
            "ops": self.op_dicts(),
        }
