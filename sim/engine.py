"""Run a trace on a config: per-op and total cycles, stalls, MACs, utilization, traffic, energy.

The trace is flattened once (:func:`flatten`) into an int64 array with one row per op
(the fields in :data:`FIELDS`); a Numba kernel then costs every op with the unit timing
models (:mod:`.units.gemm` through :mod:`.memory` for matrix ops, :mod:`.vector` and
:mod:`.conv` for the vector unit) and writes one float64 row of :data:`.memory.COLUMNS`
per op. Nothing on the hot path loops over cycles or folds: every op is a closed form
over at most eight tile shapes. :func:`simulate` is the one-config entry point;
:func:`sweep` evaluates many configs on one trace inside a single Numba call.

Ops run one after the other; a matrix op (``gemm``, ``conv2d``, ``dwconv2d``) occupies
the GEMM unit, the others the vector unit (``unit`` of the op). Cycles of an op are
``compute`` (GEMM unit busy) + ``vector`` (vector unit busy) + ``stall`` (waiting for
DRAM); latency is the sum over ops at ``clock_mhz``. Utilization is
``MACs / (rows * cols * cycles)``. Energy is the dot product of the op's event counts
with :func:`edgetron.sim.energy.energy_table` (pJ).
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numba import njit

from edgetron.config import ENERGY_EVENTS, AcceleratorConfig, SimParams
from edgetron.golden.gemm import accumulator_bound
from edgetron.jitcache import is_compiled
from edgetron.workload import (
    AvgPool,
    Conv2d,
    DwConv2d,
    LayerNorm,
    MaxPool,
    Op,
    Softmax,
    Trace,
)

from . import memory as mem
from .conv import avgpool_cycles, maxpool_cycles, pool_keeps_input_rows, pool_line_buffer_bytes
from .energy import EVENT_INDEX, energy_table, energy_vector
from .units.gemm import element_bytes
from .vector import (
    ADD_ADDS_PER_ELEMENT,
    ADD_MULS_PER_ELEMENT,
    GELU_ADDS_PER_ELEMENT,
    GELU_MULS_PER_ELEMENT,
    LAYERNORM_ADDS_PER_ELEMENT,
    LAYERNORM_ADDS_PER_ROW,
    LAYERNORM_MULS_PER_ELEMENT,
    SOFTMAX_ADDS_PER_ELEMENT,
    SOFTMAX_ADDS_PER_ROW,
    SOFTMAX_MULS_PER_ELEMENT,
    add_cycles,
    beats,
    concat_cycles,
    gelu_cycles,
    layernorm_cycles,
    softmax_cycles,
)

__all__ = [
    "FIELDS",
    "KIND_CODES",
    "SWEEP_COLUMNS",
    "FlatTrace",
    "OpResult",
    "SimResult",
    "flatten",
    "kernels_compiled",
    "simulate",
    "sweep",
]

#: Kind codes of the flat records; every matrix op is code 0.
KIND_CODES = {
    "gemm": 0, "conv2d": 0, "dwconv2d": 0, "softmax": 1, "layernorm": 2, "gelu": 3,
    "add": 4, "maxpool": 5, "avgpool": 6, "concat": 7,
}
_K_ARRAY = KIND_CODES["gemm"]
_K_SOFTMAX = KIND_CODES["softmax"]
_K_LAYERNORM = KIND_CODES["layernorm"]
_K_GELU = KIND_CODES["gelu"]
_K_ADD = KIND_CODES["add"]
_K_MAXPOOL = KIND_CODES["maxpool"]
_K_AVGPOOL = KIND_CODES["avgpool"]
_K_CONCAT = KIND_CODES["concat"]

#: Fields of a flat op record (int64), in column order.
FIELDS = (
    "kind", "count", "m", "k", "n", "out32", "a_bytes", "b_bytes_each", "out_bytes_each", "macs",
    "is_conv", "img", "h", "w", "cg", "out_h", "out_w", "r", "s", "stride_h",
    "rows", "cols", "elements", "in_bytes", "b_bytes", "param_bytes", "out_bytes",
)
(F_KIND, F_COUNT, F_M, F_K, F_N, F_OUT32, F_A_B, F_W_B, F_OUT_B, F_MACS,
 F_IS_CONV, F_IMG, F_H, F_W, F_CG, F_OH, F_OW, F_R, F_S, F_SH,
 F_ROWS, F_COLS, F_ELEMS, F_IN_BYTES, F_B_BYTES, F_PARAM_BYTES, F_OUT_BYTES) = range(len(FIELDS))
_NF = len(FIELDS)

_E_MAC = EVENT_INDEX["mac_int8"]
_E_ADD = EVENT_INDEX["add_int32"]
_E_MUL = EVENT_INDEX["mul_int32"]
_E_REG = EVENT_INDEX["reg_byte"]
_E_SRAM_RD = EVENT_INDEX["sram_read_byte"]
_E_SRAM_WR = EVENT_INDEX["sram_write_byte"]
_E_DRAM = EVENT_INDEX["dram_byte"]
_EVENT_COLUMN = {
    "mac_int8": mem.C_EV_MAC, "add_int32": mem.C_EV_ADD, "mul_int32": mem.C_EV_MUL,
    "reg_byte": mem.C_EV_REG, "sram_read_byte": mem.C_SRAM_RD,
    "sram_write_byte": mem.C_SRAM_WR,
}

#: ``ceil(bits / 8)`` for the records, in plain Python (the compiled helper's own source).
_nbytes = element_bytes.py_func


@dataclasses.dataclass(frozen=True)
class FlatTrace:
    """A trace as Numba-ready records.

    Attributes
    ----------
    name : str
        The trace's name.
    records : int64 array [n_ops, len(FIELDS)]
    ops : tuple of Op
        The trace's ops (names, kinds and shapes for reports).
    macs : int
        Exact MAC total (``Trace.macs``).
    """

    name: str
    records: np.ndarray
    ops: tuple[Op, ...]
    macs: int


def _array_record(rec: list[int], op: Op) -> None:
    mm = op.gemm
    rec[F_COUNT], rec[F_M], rec[F_K], rec[F_N] = mm.count, mm.m, mm.k, mm.n
    rec[F_OUT32] = int(op.requant == "none")
    rec[F_W_B] = _nbytes(op.weight_bits if mm.b_const else op.in_bits)
    if isinstance(op, (Conv2d, DwConv2d)):
        rec[F_IS_CONV] = 1
        rec[F_IMG], rec[F_H], rec[F_W] = op.n, op.h, op.w
        rec[F_CG] = 1 if isinstance(op, DwConv2d) else op.c // op.groups
        rec[F_OH], rec[F_OW], rec[F_R], rec[F_S], rec[F_SH] = (
            op.out_h, op.out_w, op.r, op.s, op.stride_h)


#: Flat records of recently used traces, by identity (traces are immutable).
_FLAT_CACHE: dict[int, tuple[weakref.ref, FlatTrace]] = {}


def flatten(trace: Trace) -> FlatTrace:
    """Convert a validated trace into flat records (config-independent).

    The conversion is done once per trace object: the result is kept while the trace
    lives (traces are frozen, so it cannot go stale).
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"expected an edgetron.workload.Trace, got {type(trace).__name__}")
    key = id(trace)
    hit = _FLAT_CACHE.get(key)
    if hit is not None and hit[0]() is trace:
        return hit[1]
    flat = _flatten(trace)
    _FLAT_CACHE[key] = (weakref.ref(trace, lambda _, k=key: _FLAT_CACHE.pop(k, None)), flat)
    return flat


def _flatten(trace: Trace) -> FlatTrace:
    rows = []
    for i, op in enumerate(trace):
        rec = [0] * _NF
        rec[F_MACS] = op.macs
        rec[F_ELEMS] = op.out_elements
        rec[F_IN_BYTES] = op.in_bytes
        rec[F_B_BYTES] = op.weight_bytes
        rec[F_PARAM_BYTES] = op.bias_bytes
        rec[F_OUT_BYTES] = op.out_bytes
        rec[F_A_B] = _nbytes(op.in_bits)
        rec[F_OUT_B] = _nbytes(op.out_bits)
        if op.kind not in KIND_CODES:
            raise TypeError(f"op {i} ({op.name!r}): the simulator has no model of kind "
                            f"{op.kind!r}")
        rec[F_KIND] = KIND_CODES[op.kind]
        if op.unit == "array":
            _array_record(rec, op)
        elif isinstance(op, (Softmax, LayerNorm)):
            rec[F_ROWS], rec[F_COLS] = op.batch * op.rows, op.cols
        elif isinstance(op, (MaxPool, AvgPool)):
            rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG] = op.n, op.h, op.w, op.c
            rec[F_OH], rec[F_OW], rec[F_R], rec[F_S] = op.out_h, op.out_w, op.r, op.s
            rec[F_SH] = op.stride_h
        rows.append(rec)
    recs = np.array(rows, dtype=np.int64).reshape(len(rows), _NF)
    return FlatTrace(trace.name, recs, tuple(trace.ops), trace.macs)


def _check_fits_config(flat: FlatTrace, cfg: AcceleratorConfig) -> None:
    """Operand widths and accumulator range of every matrix op against the config."""
    for i, op in enumerate(flat.ops):
        if op.unit != "array":
            continue
        where = f"op {i} ({op.name!r}, {op.kind})"
        mm = op.gemm
        b_bits = op.weight_bits if mm.b_const else op.in_bits
        if op.in_bits > cfg.input_bits:
            raise ValueError(
                f"{where}: in_bits {op.in_bits} exceeds the array's input_bits "
                f"{cfg.input_bits}"
            )
        b_limit = cfg.weight_bits if mm.b_const else cfg.input_bits
        b_field = "weight_bits" if mm.b_const else "input_bits"
        if b_bits > b_limit:
            raise ValueError(
                f"{where}: operand B is {b_bits} bits, more than the array's {b_field} "
                f"{b_limit}"
            )
        bound = accumulator_bound(mm.k, 0, op.in_bits, b_bits)
        limit = (1 << (cfg.acc_bits - 1)) - 1
        if bound > limit:
            raise ValueError(
                f"{where}: K={mm.k} products could reach {bound}, beyond the "
                f"{cfg.acc_bits}-bit accumulator (acc_bits) limit {limit}"
            )


# ------------------------------------------------------------------------------------------
# Numba kernels
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _finish(energy, row):
    """Energy of the row's events (pJ) into its energy column."""
    dram = row[mem.C_DRAM_RD] + row[mem.C_DRAM_WR]
    row[mem.C_ENERGY] = (
        row[mem.C_EV_MAC] * energy[_E_MAC]
        + row[mem.C_EV_ADD] * energy[_E_ADD]
        + row[mem.C_EV_MUL] * energy[_E_MUL]
        + row[mem.C_EV_REG] * energy[_E_REG]
        + row[mem.C_SRAM_RD] * energy[_E_SRAM_RD]
        + row[mem.C_SRAM_WR] * energy[_E_SRAM_WR]
        + dram * energy[_E_DRAM]
    )


@njit(cache=True)
def _vector_op(p, rec, row):
    """Cost a vector-unit op into ``row``."""
    kind = rec[F_KIND]
    elems = rec[F_ELEMS]
    in_b = rec[F_A_B]
    lanes = p.vector_lanes
    in_bytes = float(rec[F_IN_BYTES] + rec[F_B_BYTES] + rec[F_PARAM_BYTES])
    out_bytes = float(rec[F_OUT_BYTES])
    need = 0
    rows = rec[F_ROWS]
    cols = rec[F_COLS]
    passes_first = 0.0
    passes_last = 0.0
    single_pass = 1
    if kind == _K_SOFTMAX:
        vec = softmax_cycles(p, rows, cols)
        need = cols * (in_b + mem.SOFTMAX_EXP_BYTES)
        single_pass = 0
        passes_first = float(rows * beats(cols, lanes))
        passes_last = passes_first
        row[mem.C_OFMAP_WR] = float(rows * need)
        row[mem.C_OFMAP_RD] = float(rows * need)
        row[mem.C_EV_MUL] = float(elems * SOFTMAX_MULS_PER_ELEMENT)
        row[mem.C_EV_ADD] = float(elems * SOFTMAX_ADDS_PER_ELEMENT + rows * SOFTMAX_ADDS_PER_ROW)
    elif kind == _K_LAYERNORM:
        vec = layernorm_cycles(p, rows, cols)
        need = cols * in_b
        single_pass = 0
        passes_first = float(rows * beats(cols, lanes))
        passes_last = passes_first
        row[mem.C_OFMAP_WR] = float(rows * need)
        row[mem.C_OFMAP_RD] = float(rows * need)
        row[mem.C_EV_MUL] = float(elems * LAYERNORM_MULS_PER_ELEMENT)
        row[mem.C_EV_ADD] = float(elems * LAYERNORM_ADDS_PER_ELEMENT
                                  + rows * LAYERNORM_ADDS_PER_ROW)
    elif kind == _K_GELU:
        vec = gelu_cycles(p, elems)
        row[mem.C_EV_MUL] = float(elems * GELU_MULS_PER_ELEMENT)
        row[mem.C_EV_ADD] = float(elems * GELU_ADDS_PER_ELEMENT)
    elif kind == _K_ADD:
        vec = add_cycles(p, elems)
        row[mem.C_EV_MUL] = float(elems * ADD_MULS_PER_ELEMENT)
        row[mem.C_EV_ADD] = float(elems * ADD_ADDS_PER_ELEMENT)
    elif kind == _K_CONCAT:
        vec = concat_cycles(p, elems)
    else:
        n, oh, ow, c = rec[F_IMG], rec[F_OH], rec[F_OW], rec[F_CG]
        r, s = rec[F_R], rec[F_S]
        if kind == _K_MAXPOOL:
            vec = maxpool_cycles(p, n, oh, ow, c, r, s)
        else:
            vec = avgpool_cycles(p, n, oh, ow, c, r, s)
            row[mem.C_EV_MUL] = float(elems)
        need = pool_line_buffer_bytes(rec[F_W], c, r, rec[F_SH], oh, ow, in_b,
                                      element_bytes(p.acc_bits))
        row[mem.C_OFMAP_WR] = float(rec[F_IN_BYTES])
        row[mem.C_OFMAP_RD] = float(elems * r * s * in_b)
        row[mem.C_EV_ADD] = float(elems * r * s)
    if need > p.ofmap_sram_bytes:
        row[mem.C_ERR] = mem.ERR_ROW_BUFFER
        row[mem.C_ERR_NEED] = need
        row[mem.C_ERR_HAVE] = p.ofmap_sram_bytes
        return
    overlap = 1
    if single_pass == 0 and not (p.double_buffer == 1 and 2 * need <= p.ofmap_sram_bytes):
        overlap = 0
    stall = mem.vector_stall(p, overlap, float(vec), passes_first, passes_last, in_bytes,
                             out_bytes)
    total = np.ceil(vec + stall)
    row[mem.C_VECTOR] = vec
    row[mem.C_CYCLES] = total
    row[mem.C_STALL] = total - vec
    row[mem.C_DRAM_A] = float(rec[F_IN_BYTES])
    row[mem.C_DRAM_B] = float(rec[F_B_BYTES])
    row[mem.C_DRAM_PARAM] = float(rec[F_PARAM_BYTES])
    row[mem.C_DRAM_OUT] = out_bytes
    row[mem.C_DRAM_RD] = in_bytes
    row[mem.C_DRAM_WR] = out_bytes
    row[mem.C_SRAM_RD] = row[mem.C_OFMAP_RD]
    row[mem.C_SRAM_WR] = row[mem.C_OFMAP_WR]
    row[mem.C_DB] = overlap


@njit(cache=True)
def _op_costs(p, energy, rec, row):
    """Cost one op (a flat record) into ``row`` (zeroed first)."""
    row[:] = 0.0
    if rec[F_KIND] == _K_ARRAY:
        geom = (rec[F_IS_CONV], rec[F_IMG], rec[F_H], rec[F_W], rec[F_CG], rec[F_OH],
                rec[F_OW], rec[F_R], rec[F_SH])
        mem.plan_gemm(p, rec[F_COUNT], rec[F_M], rec[F_K], rec[F_N], rec[F_OUT32],
                      rec[F_A_B], rec[F_W_B], rec[F_OUT_B], geom, row)
        row[mem.C_EV_MAC] = float(rec[F_MACS])
    else:
        _vector_op(p, rec, row)
    row[mem.C_MACS] = float(rec[F_MACS])
    _finish(energy, row)


@njit(cache=True)
def _run(p, energy, recs, start, stop, out):
    for i in range(start, stop):
        _op_costs(p, energy, recs[i], out[i])


#: Columns of :func:`sweep`'s result, per config.
SWEEP_COLUMNS = ("cycles", "compute_cycles", "vector_cycles", "stall_cycles", "energy_pj",
                 "dram_bytes", "sram_bytes", "error_op")
_S_CYCLES, _S_COMPUTE, _S_VECTOR, _S_STALL, _S_ENERGY, _S_DRAM, _S_SRAM, _S_ERR = range(
    len(SWEEP_COLUMNS))
#: Column of the clock in :func:`sweep`'s float64 array of ``SimParams`` rows.
_P_CLOCK = SimParams._fields.index("clock_mhz")


@njit(cache=True)
def _params(a):
    """``SimParams`` from one row of :func:`sweep`'s parameter array (fields in order).

    Every field is an integer except ``dram_bytes_per_cycle`` and ``clock_mhz`` (9, 10).
    """
    return SimParams(np.int64(a[0]), np.int64(a[1]), np.int64(a[2]), np.int64(a[3]),
                     np.int64(a[4]), np.int64(a[5]), np.int64(a[6]), np.int64(a[7]),
                     np.int64(a[8]), a[9], a[10], np.int64(a[11]), np.int64(a[12]))


@njit(cache=True)
def _sweep(params, energies, recs, totals):
    row = np.zeros(mem.NCOL)
    for j in range(params.shape[0]):
        p = _params(params[j])
        totals[j, _S_ERR] = -1.0
        for i in range(recs.shape[0]):
            _op_costs(p, energies[j], recs[i], row)
            if row[mem.C_ERR] != mem.ERR_NONE:
                totals[j, _S_ERR] = i
                break
            totals[j, _S_CYCLES] += row[mem.C_CYCLES]
            totals[j, _S_COMPUTE] += row[mem.C_COMPUTE]
            totals[j, _S_VECTOR] += row[mem.C_VECTOR]
            totals[j, _S_STALL] += row[mem.C_STALL]
            totals[j, _S_ENERGY] += row[mem.C_ENERGY]
            totals[j, _S_DRAM] += row[mem.C_DRAM_RD] + row[mem.C_DRAM_WR]
            totals[j, _S_SRAM] += row[mem.C_SRAM_RD] + row[mem.C_SRAM_WR]


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OpResult:
    """Costs of one op (cycles, bytes, events as counts; energy in pJ).

    ``values`` maps every column of :data:`edgetron.sim.memory.COLUMNS` (except the
    error columns) to its value; integers for counts.
    """

    index: int
    name: str
    kind: str
    unit: str
    shape: str
    values: dict[str, float]

    def __getitem__(self, key: str) -> float:
        return self.values[key]


_ERROR_COLUMNS = ("error", "error_need", "error_have")
_FLOAT_COLUMNS = ("energy_pj", "ev_reg_byte")


@dataclasses.dataclass(frozen=True)
class SimResult:
    """The result of :func:`simulate`: per-op rows and totals for one trace on one config.

    Attributes
    ----------
    trace_name : str
    config : AcceleratorConfig
    table : float64 array [n_ops, len(COLUMNS)]
        The raw per-op rows (columns :data:`edgetron.sim.memory.COLUMNS`).
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
            for j, col in enumerate(mem.COLUMNS):
                if col in _ERROR_COLUMNS:
                    continue
                v = float(row[j])
                values[col] = v if col in _FLOAT_COLUMNS else round(v)
            out.append(OpResult(i, op.name, op.kind, op.unit, op.describe(), values))
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
        for j, col in enumerate(mem.COLUMNS):
            if col in _ERROR_COLUMNS or col.startswith("tile_") or col in (
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
                count = sums[mem.C_DRAM_RD] + sums[mem.C_DRAM_WR]
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
                "shape": r.shape, **values}

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


#: Error code of a matrix op that no GEMM-unit call fits -> (buffer, config field, the
#: word it cannot hold).
_TILE_ERRORS = {
    mem.ERR_TILE_IFMAP: ("ifmap", "ifmap_sram_bytes", "operand-A word"),
    mem.ERR_TILE_WEIGHT: ("weight", "weight_sram_bytes", "operand-B word"),
    mem.ERR_TILE_OFMAP: ("ofmap", "ofmap_sram_bytes", "int32 accumulator word"),
}


def _raise_error(flat: FlatTrace, i: int, row: np.ndarray) -> None:
    op = flat.ops[i]
    code = int(row[mem.C_ERR])
    need, have = int(row[mem.C_ERR_NEED]), int(row[mem.C_ERR_HAVE])
    where = f"op {i} ({op.name!r}, {op.kind})"
    if code in _TILE_ERRORS:
        buf, field, word = _TILE_ERRORS[code]
        raise ValueError(
            f"{where}: a tile cannot fit the {buf} buffer: the smallest GEMM-unit call "
            f"(1 x 1 x 1) needs one {need}-byte {word} of it, and {field} is {have}"
        )
    if isinstance(op, Softmax):
        what = (f"a softmax row of {op.cols} {op.in_bits}-bit logits and their "
                f"{mem.SOFTMAX_EXP_BYTES}-byte exponentials")
    elif isinstance(op, LayerNorm):
        what = f"a LayerNorm row of {op.cols} {op.in_bits}-bit values"
    elif pool_keeps_input_rows(op.r, op.stride_h, op.out_h):
        what = f"the {op.r}-row line buffer of the pool ({op.r} x {op.w} x {op.c} values)"
    else:
        what = f"the running values of one output row of the pool ({op.out_w} x {op.c})"
    raise ValueError(
        f"{where}: {what} needs {need} bytes of the ofmap buffer, "
        f"which holds {have} bytes (ofmap_sram_bytes); this tile cannot fit at all"
    )


def kernels_compiled() -> bool:
    """Whether Numba's on-disk cache holds the kernel :func:`simulate` runs, fresh.

    Returns
    -------
    bool
        False when the first :func:`simulate` of the process will compile it and every
        kernel it calls (tens of seconds; :func:`edgetron.jitcache.is_compiled`).
    """
    return is_compiled(_run)


def simulate(
    trace: Trace | FlatTrace,
    cfg: AcceleratorConfig,
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> SimResult:
    """Cost ``trace`` on ``cfg`` (timing, traffic and energy; no data).

    Parameters
    ----------
    trace : Trace or FlatTrace
        The workload (a :class:`FlatTrace` skips the conversion).
    cfg : AcceleratorConfig
        The hardware.
    progress : callable, optional
        Called with the number of ops just costed, after every ``chunk`` ops.
    chunk : int
        Ops per kernel call when ``progress`` is given.

    Raises
    ------
    TypeError
        ``trace`` or ``cfg`` of the wrong type.
    ValueError
        An op the config cannot run: operand wider than the array, an accumulator that
        could overflow, a row / line buffer or a GEMM-unit tile that cannot fit (naming
        the op and the buffer).
    """
    if not isinstance(cfg, AcceleratorConfig):
        raise TypeError(f"expected an AcceleratorConfig, got {type(cfg).__name__}")
    flat = trace if isinstance(trace, FlatTrace) else flatten(trace)
    _check_fits_config(flat, cfg)
    p = cfg.sim_params()
    energy = energy_vector(cfg)
    n = flat.records.shape[0]
    table = np.zeros((n, mem.NCOL))
    step = n if progress is None else max(1, chunk)
    for start in range(0, n, step):
        stop = min(n, start + step)
        _run(p, energy, flat.records, start, stop, table)
        if progress is not None:
            progress(stop - start)
    bad = np.flatnonzero(table[:, mem.C_ERR] != mem.ERR_NONE)
    if bad.size:
        _raise_error(flat, int(bad[0]), table[bad[0]])
    return SimResult(flat.name, cfg, table, flat.ops)


def sweep(trace: Trace | FlatTrace, configs: Sequence[AcceleratorConfig]) -> dict[str, np.ndarray]:
    """Totals of ``trace`` on every config of ``configs``, in one Numba call.

    Returns
    -------
    dict
        One float64 array per name of :data:`SWEEP_COLUMNS` (length ``len(configs)``);
        ``error_op`` is -1, or the index of the first op the config cannot run (its
        totals are then partial). Latency (ms) is added as ``latency_ms``.
    """
    flat = trace if isinstance(trace, FlatTrace) else flatten(trace)
    configs = list(configs)
    if not configs:
        raise ValueError("sweep: configs is empty")
    checked: set[tuple[int, int, int]] = set()
    for j, cfg in enumerate(configs):
        if not isinstance(cfg, AcceleratorConfig):
            raise TypeError(f"configs[{j}]: expected an AcceleratorConfig, got "
                            f"{type(cfg).__name__}")
        widths = (cfg.input_bits, cfg.weight_bits, cfg.acc_bits)  # all the check depends on
        if widths in checked:
            continue
        try:
            _check_fits_config(flat, cfg)
        except ValueError as exc:
            raise ValueError(f"configs[{j}] ({cfg.name}): {exc}") from None
        checked.add(widths)
    params = np.array([list(c.sim_params()) for c in configs], dtype=np.float64)
    energies = np.array([energy_vector(c) for c in configs])
    totals = np.zeros((len(configs), len(SWEEP_COLUMNS)))
    _sweep(params, energies, flat.records, totals)
    out = {name: totals[:, j].copy() for j, name in enumerate(SWEEP_COLUMNS)}
    out["latency_ms"] = out["cycles"] / (params[:, _P_CLOCK] * 1e3)
    return out
