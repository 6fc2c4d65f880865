"""Run a trace on a config: per-op and total cycles, stalls, MACs, utilization, traffic, energy.

The trace is flattened once (:func:`flatten`) into an int64 array with one record per op
(:data:`edgetron.sim.records.FIELDS`; each kind's unit module fills its own fields). A
Numba kernel then costs every op and writes one float64 row of
:data:`edgetron.sim.records.COLUMNS` per op: a matrix op (``gemm``, ``conv2d``,
``dwconv2d``) occupies the GEMM unit and is planned into calls by
:func:`edgetron.sim.tiling.matrix_costs`; any other op occupies its vector unit, whose
``work`` (:func:`edgetron.sim.units.vector_work`) :func:`edgetron.sim.memory.vector_costs`
accounts. Which path an op takes, and its kind code, come from the one registry
:data:`edgetron.sim.units.REGISTRY`. Nothing on the hot path loops over cycles or folds:
every op is a closed form over at most eight tile shapes. :func:`simulate` is the
one-config entry point; :func:`sweep` evaluates many configs on one trace inside a single
Numba call.

Ops run one after the other. Cycles of an op are ``compute`` (GEMM unit busy) +
``vector`` (vector unit busy) + ``stall`` (waiting for DRAM); latency is the sum over
ops at ``clock_mhz``. Utilization is ``MACs / (rows * cols * cycles)``. Energy is the dot
product of the op's event counts with :func:`edgetron.sim.energy.energy_table` (pJ).

Every integer the kernels form is an int64, which Numba does not check. Before any kernel
runs, :func:`flatten` checks that every record field fits, and :func:`simulate` and
:func:`sweep` check each op's exact upper bounds (``int64_bounds`` of its unit module)
against ``2**63 - 1``: a trace too large to simulate is a
:class:`~edgetron.errors.SimulationError` naming the op and the quantity, never a wrapped
count.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from edgetron.config import AcceleratorConfig, SimParams
from edgetron.errors import SimulationError
from edgetron.hw.gemm import element_bytes
from edgetron.jitcache import is_compiled
from edgetron.workload import Op, Trace
from edgetron.workload.trace.limits import op_label

from . import tiling
from .energy import EVENT_INDEX, energy_vector
from .memory import vector_costs
from .records import (
    C_COMPUTE,
    C_CYCLES,
    C_DRAM_RD,
    C_DRAM_WR,
    C_ENERGY,
    C_ERR,
    C_ERR_HAVE,
    C_ERR_NEED,
    C_EV_ADD,
    C_EV_MAC,
    C_EV_MUL,
    C_EV_REG,
    C_MACS,
    C_SRAM_RD,
    C_SRAM_WR,
    C_STALL,
    C_VECTOR,
    ERR_NO_MODEL,
    ERR_NONE,
    ERR_ROW_BUFFER,
    ERR_TILE_IFMAP,
    ERR_TILE_OFMAP,
    ERR_TILE_WEIGHT,
    F_A_B,
    F_B_BYTES,
    F_ELEMS,
    F_IN_BYTES,
    F_KIND,
    F_MACS,
    F_OUT_B,
    F_OUT_BYTES,
    F_PARAM_BYTES,
    FIELDS,
    NCOL,
    NFIELD,
)
from .results import SimResult
from .units import KIND_CODES, ON_ARRAY, REGISTRY, vector_work

__all__ = [
    "INT64_MAX",
    "SWEEP_COLUMNS",
    "FlatTrace",
    "check",
    "flatten",
    "kernels_compiled",
    "simulate",
    "sweep",
]

#: The largest value of the kernels' integers.
INT64_MAX = int(np.iinfo(np.int64).max)

_E_MAC = EVENT_INDEX["mac_int8"]
_E_ADD = EVENT_INDEX["add_int32"]
_E_MUL = EVENT_INDEX["mul_int32"]
_E_REG = EVENT_INDEX["reg_byte"]
_E_SRAM_RD = EVENT_INDEX["sram_read_byte"]
_E_SRAM_WR = EVENT_INDEX["sram_write_byte"]
_E_DRAM = EVENT_INDEX["dram_byte"]



def _where(i: int, op: Op) -> str:
    """How messages name op ``i``: the trace's own label (docs/trace-format.md, "Error
    messages")."""
    return op_label(i, op.name)


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
    #: Array edges whose int64 bounds every op satisfies (:func:`_check_int64`).
    _edges_checked: set[int] = dataclasses.field(default_factory=set, compare=False,
                                                 repr=False)


#: Flat records of recently used traces, by identity (traces are immutable).
_FLAT_CACHE: dict[int, tuple[weakref.ref, FlatTrace]] = {}


def flatten(trace: Trace) -> FlatTrace:
    """Convert a validated trace into flat records (config-independent).

    The conversion is done once per trace object: the result is kept while the trace
    lives (traces are frozen, so it cannot go stale).

    Raises
    ------
    TypeError
        ``trace`` is not a Trace (a programming error of the caller).
    SimulationError
        A record field of an op (its MACs, say) beyond the kernels' 64-bit integers.
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
        rec = [0] * NFIELD
        rec[F_KIND] = KIND_CODES[op.kind]
        rec[F_MACS] = op.macs
        rec[F_ELEMS] = op.out_elements
        rec[F_IN_BYTES] = op.in_bytes
        rec[F_B_BYTES] = op.weight_bytes
        rec[F_PARAM_BYTES] = op.bias_bytes
        rec[F_OUT_BYTES] = op.out_bytes
        rec[F_A_B] = element_bytes.py_func(op.in_bits)
        rec[F_OUT_B] = element_bytes.py_func(op.out_bits)
        REGISTRY[op.kind].record(op, rec)
        for field, value in zip(FIELDS, rec, strict=True):
            if value > INT64_MAX:
                raise SimulationError(
                    f"{_where(i, op)}: its {field} = {value:,} exceeds the simulator's "
                    f"64-bit integers (at most {INT64_MAX:,}); the trace is valid, but too "
                    "large to simulate"
                )
        rows.append(rec)
    recs = np.array(rows, dtype=np.int64).reshape(len(rows), NFIELD)
    return FlatTrace(trace.name, recs, tuple(trace.ops), trace.macs)


def _check_int64(flat: FlatTrace, edge: int) -> None:
    """Every op's exact int64 bounds (its unit's ``int64_bounds``) for array edge ``edge``."""
    if edge in flat._edges_checked:
        return
    for i, op in enumerate(flat.ops):
        for what, formula, value in REGISTRY[op.kind].int64_bounds(op, edge):
            if value > INT64_MAX:
                raise SimulationError(
                    f"{_where(i, op)}: {what}, up to {formula} = {value:,}, exceed the "
                    f"simulator's 64-bit integers (at most {INT64_MAX:,}); the trace is "
                    "valid, but too large to simulate"
                )
    flat._edges_checked.add(edge)


def _check_config(flat: FlatTrace, cfg: AcceleratorConfig) -> None:
    """Each op against the config (operand widths, accumulator range), and the int64 bounds."""
    for i, op in enumerate(flat.ops):
        check = REGISTRY[op.kind].check_config
        problem = None if check is None else check(op, cfg)
        if problem is not None:
            raise SimulationError(f"{_where(i, op)}: {problem}")
    _check_int64(flat, max(cfg.rows, cfg.cols))


def check(trace: Trace | FlatTrace, cfg: AcceleratorConfig) -> FlatTrace:
    """What :func:`simulate` checks before any kernel runs, on its own (no compilation).

    Returns
    -------
    FlatTrace
        The flat records of ``trace``, to pass on to :func:`simulate`.

    Raises
    ------
    SimulationError
        An op whose operands are wider than the array, whose accumulation could overflow
        ``acc_bits``, or whose counts would leave the kernels' 64-bit integers.
    """
    flat = trace if isinstance(trace, FlatTrace) else flatten(trace)
    _check_config(flat, cfg)
    return flat


# ------------------------------------------------------------------------------------------
# Numba kernels
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _finish(energy, row):
    """Energy of the row's events (pJ) into its energy column."""
    dram = row[C_DRAM_RD] + row[C_DRAM_WR]
    row[C_ENERGY] = (
        row[C_EV_MAC] * energy[_E_MAC]
        + row[C_EV_ADD] * energy[_E_ADD]
        + row[C_EV_MUL] * energy[_E_MUL]
        + row[C_EV_REG] * energy[_E_REG]
        + row[C_SRAM_RD] * energy[_E_SRAM_RD]
        + row[C_SRAM_WR] * energy[_E_SRAM_WR]
        + dram * energy[_E_DRAM]
    )


@njit(cache=True)
def _op_costs(p, energy, rec, row):
    """Cost one op (a flat record) into ``row`` (zeroed first), on the unit of its kind."""
    row[:] = 0.0
    if ON_ARRAY[rec[F_KIND]] == 1:
        tiling.matrix_costs(p, rec, row)
    else:
        vector_costs(p, rec, vector_work(p, rec), row)
    row[C_MACS] = float(rec[F_MACS])
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

    Every field is an integer except ``dram_bytes_per_cycle`` and ``clock_mhz`` (9, 10)
    and the bandwidths of the DRAM ports (14 to 18).
    """
    return SimParams(np.int64(a[0]), np.int64(a[1]), np.int64(a[2]), np.int64(a[3]),
                     np.int64(a[4]), np.int64(a[5]), np.int64(a[6]), np.int64(a[7]),
                     np.int64(a[8]), a[9], a[10], np.int64(a[11]), np.int64(a[12]),
                     np.int64(a[13]), a[14], a[15], a[16], a[17], a[18])


@njit(cache=True)
def _sweep(params, energies, recs, totals):
    row = np.zeros(NCOL)
    for j in range(params.shape[0]):
        p = _params(params[j])
        totals[j, _S_ERR] = -1.0
        for i in range(recs.shape[0]):
            _op_costs(p, energies[j], recs[i], row)
            if row[C_ERR] != ERR_NONE:
                totals[j, _S_ERR] = i
                break
            totals[j, _S_CYCLES] += row[C_CYCLES]
            totals[j, _S_COMPUTE] += row[C_COMPUTE]
            totals[j, _S_VECTOR] += row[C_VECTOR]
            totals[j, _S_STALL] += row[C_STALL]
            totals[j, _S_ENERGY] += row[C_ENERGY]
            totals[j, _S_DRAM] += row[C_DRAM_RD] + row[C_DRAM_WR]
            totals[j, _S_SRAM] += row[C_SRAM_RD] + row[C_SRAM_WR]


# ------------------------------------------------------------------------------------------
# Errors the kernels flag
# ------------------------------------------------------------------------------------------
#: Error code of a matrix op that no GEMM-unit call fits -> (buffer, config field, the
#: word it cannot hold).
_TILE_ERRORS = {
    ERR_TILE_IFMAP: ("ifmap", "ifmap_sram_bytes", "operand-A word"),
    ERR_TILE_WEIGHT: ("weight", "weight_sram_bytes", "operand-B word"),
    ERR_TILE_OFMAP: ("ofmap", "ofmap_sram_bytes", "int32 accumulator word"),
}


def _raise_error(flat: FlatTrace, i: int, row: np.ndarray, cfg: AcceleratorConfig) -> None:
    op = flat.ops[i]
    code = int(row[C_ERR])
    need, have = int(row[C_ERR_NEED]), int(row[C_ERR_HAVE])
    where = _where(i, op)
    if code in _TILE_ERRORS:
        buf, field, word = _TILE_ERRORS[code]
        if cfg.double_buffer and code != ERR_TILE_OFMAP:
            # The A and W buffers are ping-pong pairs: a call uses one half.
            what = f"one {need // 2}-byte {word} in each half of it (double_buffer), {need} bytes"
        else:
            what = f"one {need}-byte {word} of it"
        raise SimulationError(
            f"{where}: a tile cannot fit the {buf} buffer: the smallest GEMM-unit call "
            f"(1 x 1 x 1) needs {what}, and {field} is {have}"
        )
    text = REGISTRY[op.kind].buffer_text
    if code == ERR_ROW_BUFFER and text is not None:
        raise SimulationError(
            f"{where}: {text(op)} needs {need} bytes of the ofmap buffer, which holds "
            f"{have} bytes (ofmap_sram_bytes); this tile cannot fit at all"
        )
    if code == ERR_NO_MODEL:
        raise SimulationError(f"{where}: the simulator has no cost model of kind {op.kind!r} "
                              "(edgetron.sim.units.vector_work)")
    raise SimulationError(f"{where}: the cost kernel flagged error code {code}")


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
        ``trace`` or ``cfg`` of the wrong type (a programming error of the caller).
    SimulationError
        An op the config cannot run: operand wider than the array, an accumulator that
        could overflow, a row / line buffer or a GEMM-unit tile that cannot fit, or
        counts beyond the kernels' 64-bit integers (naming the op and the buffer, field
        or quantity).
    """
    if not isinstance(cfg, AcceleratorConfig):
        raise TypeError(f"expected an AcceleratorConfig, got {type(cfg).__name__}")
    flat = trace if isinstance(trace, FlatTrace) else flatten(trace)
    _check_config(flat, cfg)
    p = cfg.sim_params()
    energy = energy_vector(cfg)
    n = flat.records.shape[0]
    table = np.zeros((n, NCOL))
    step = n if progress is None else max(1, chunk)
    for start in range(0, n, step):
        stop = min(n, start + step)
        _run(p, energy, flat.records, start, stop, table)
        if progress is not None:
            progress(stop - start)
    bad = np.flatnonzero(table[:, C_ERR] != ERR_NONE)
    if bad.size:
        _raise_error(flat, int(bad[0]), table[bad[0]], cfg)
    return SimResult(flat.name, cfg, table, flat.ops)


def sweep(trace: Trace | FlatTrace, configs: Sequence[AcceleratorConfig]) -> dict[str, np.ndarray]:
    """Totals of ``trace`` on every config of ``configs``, in one Numba call.

    Returns
    -------
    dict
        One float64 array per name of :data:`SWEEP_COLUMNS` (length ``len(configs)``);
        ``error_op`` is -1, or the index of the first op the config cannot run (its
        totals are then partial). Latency (ms) is added as ``latency_ms``.

    Raises
    ------
    TypeError
        A config that is not an AcceleratorConfig (naming its index).
    SimulationError
        ``configs`` empty, or an op a config's widths or accumulator cannot run, or counts
        beyond the kernels' 64-bit integers (naming the config and the op).
    """
    flat = trace if isinstance(trace, FlatTrace) else flatten(trace)
    configs = list(configs)
    if not configs:
        raise SimulationError("sweep: configs is empty")
    checked: set[tuple[int, int, int, int]] = set()
    for j, cfg in enumerate(configs):
        if not isinstance(cfg, AcceleratorConfig):
            raise TypeError(f"configs[{j}]: expected an AcceleratorConfig, got "
                            f"{type(cfg).__name__}")
        # Everything the checks depend on.
        key = (cfg.input_bits, cfg.weight_bits, cfg.acc_bits, max(cfg.rows, cfg.cols))
        if key in checked:
            continue
        try:
            _check_config(flat, cfg)
        except SimulationError as exc:
            raise SimulationError(f"configs[{j}] ({cfg.name}): {exc}") from None
        checked.add(key)
    params = np.array([list(c.sim_params()) for c in configs], dtype=np.float64)
    energies = np.array([energy_vector(c) for c in configs])
    totals = np.zeros((len(configs), len(SWEEP_COLUMNS)))
    _sweep(params, energies, flat.records, totals)
    out = {name: totals[:, j].copy() for j, name in enumerate(SWEEP_COLUMNS)}
    out["latency_ms"] = out["cycles"] / (params[:, _P_CLOCK] * 1e3)
    return out
