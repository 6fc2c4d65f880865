"""Host-side model of the GEMM unit: buffer limits, the shape check and the timing model.

Everything here is plain Python over an :class:`~edgetron.config.AcceleratorConfig`; it
builds no hardware. The numbers come from :mod:`edgetron.hw.gemm` (buffer words, fit
rules, fixed latencies), the definitions the simulator uses too; the hardware
(:mod:`.unit`, :mod:`.ws_core`, :mod:`.os_core`) asserts its structure against the same
latencies at elaboration.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.golden.gemm import accumulator_k_limit
from edgetron.golden.intops import INT8_MAX
from edgetron.hw import gemm as hw

from ..common import MAX_BUFFER_WORDS, check_array_size, check_config_type, check_dataflow
from ..systolic import array_timing

__all__ = [
    "OUT_BITS",
    "GemmLimits",
    "check_config",
    "check_dims",
    "check_shape",
    "gemm_limits",
    "gemm_timing",
    "shape_fits",
]

#: Width of the requantized results: int8, as :func:`edgetron.golden.gemm.gemm_requant`.
OUT_BITS = INT8_MAX.bit_length() + 1
_cdiv = hw.cdiv.py_func


class GemmLimits(NamedTuple):
    """Buffer words and per-dimension maxima of one :class:`~edgetron.rtl.gemm.GemmUnit`
    invocation.

    ``a_words``, ``w_words``, ``param_words``: the words of one slot (half of each memory
    with ``double_buffer``, which has ``slots = 2``); ``acc_words``: the accumulator buffer,
    shared by the slots. ``m_max``, ``k_max``, ``n_max`` are each reached with the other
    two dimensions at 1; whether a shape fits is decided by :func:`check_shape` (the
    buffers hold products).
    """

    a_words: int
    w_words: int
    acc_words: int
    param_words: int
    m_max: int
    k_max: int
    n_max: int
    slots: int


def gemm_limits(config: AcceleratorConfig) -> GemmLimits:
    """Buffer sizes and shape limits of the GEMM unit for ``config`` (``ws`` or ``os``).

    :func:`edgetron.hw.gemm.gemm_buffer_words`, :func:`edgetron.hw.gemm.gemm_max_shape` and
    :func:`edgetron.hw.gemm.gemm_slots`, the definitions the simulator uses too.
    """
    p = config.sim_params()
    return GemmLimits(*hw.gemm_buffer_words(p), *hw.gemm_max_shape(p), hw.gemm_slots(p))


def check_config(config: AcceleratorConfig) -> GemmLimits:
    """Raise unless the RTL can build a GEMM unit for ``config``; return its limits.

    TypeError for a non-config; ConfigError naming the field for ``dataflow = "is"``, an
    array beyond ``common.MAX_PES``, a buffer beyond ``common.MAX_BUFFER_WORDS`` words and
    an ``acc_bits`` that the largest K of the buffers could overflow.
    """
    check_config_type(config)
    check_dataflow(config.dataflow)
    check_array_size("GemmUnit", config.rows, config.cols)
    lim = gemm_limits(config)
    if min(lim.a_words, lim.w_words) < 1:
        field = "ifmap_sram_bytes" if lim.a_words < 1 else "weight_sram_bytes"
        raise ConfigError(
            f"{field}: {getattr(config, field)} bytes hold less than one word per half of a "
            "double-buffered buffer; double the buffer or set double_buffer = false")
    k_acc = accumulator_k_limit(config.acc_bits, 0, config.input_bits, config.weight_bits)
    if lim.k_max > k_acc:
        raise ConfigError(
            f"acc_bits: a {config.acc_bits}-bit accumulator is too narrow for K up to "
            f"{lim.k_max} (allowed by ifmap_sram_bytes/weight_sram_bytes) with "
            f"{config.input_bits}x{config.weight_bits}-bit operands; it holds K <= {k_acc}. "
            "Widen acc_bits or shrink the buffers"
        )
    r, c, slots = config.rows, config.cols, lim.slots
    for field, words, what in (
        ("ifmap_sram_bytes", slots * lim.a_words,
         f"an A buffer of {slots * lim.a_words} words of {r} operands"),
        ("weight_sram_bytes", slots * lim.w_words,
         f"a W buffer of {slots * lim.w_words} words of {c} operands"),
        ("ofmap_sram_bytes", lim.acc_words,
         f"an accumulator buffer of {lim.acc_words} words of {c} sums"),
    ):
        if words > MAX_BUFFER_WORDS:
            raise ConfigError(
                f"{field}: {getattr(config, field)} bytes make {what}; the RTL elaborates at "
                f"most {MAX_BUFFER_WORDS} words per buffer (elaboration time and memory grow "
                "with the words, docs/rtl.md). Shrink the buffer or widen the array"
            )
    return lim


def _misfit(config: AcceleratorConfig, lim: GemmLimits, m: int, k: int, n: int) -> str | None:
    """None if the shape fits (:func:`edgetron.hw.gemm.gemm_fit_failure`), else the reason."""
    r, c = config.rows, config.cols
    half = "" if lim.slots == 1 else "half of "
    failure = hw.gemm_fit_failure(config.sim_params(), m, k, n)
    if failure == hw.FIT_A:
        if config.dataflow == "ws":
            a_what = f"M * ceil(K/{r}) = {m * _cdiv(k, r)}"
        else:
            a_what = f"ceil(M/{r}) * K = {_cdiv(m, r) * k}"
        return (f"{half}the A buffer holds {lim.a_words} words of {r} operands, the shape "
                f"needs {a_what}")
    if failure == hw.FIT_W:
        return (f"{half}the W buffer holds {lim.w_words} words of {c} operands, the shape "
                f"needs ceil(N/{c}) * K = {_cdiv(n, c) * k}")
    if failure == hw.FIT_ACC:
        return f"the accumulator buffer holds {lim.acc_words} rows, the shape needs M = {m}"
    if failure == hw.FIT_PARAM:
        return f"the parameter memory holds {lim.param_words * c} channels, the shape needs N = {n}"
    return None


def check_dims(**dims) -> None:
    """Raise ValueError naming the first dimension that is not a positive integer."""
    for name, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_shape(config: AcceleratorConfig, m: int, k: int, n: int) -> None:
    """Raise ValueError unless one invocation accepts ``M x K x N`` (the RTL sets ``err``)."""
    check_dims(M=m, K=k, N=n)
    reason = _misfit(config, gemm_limits(config), int(m), int(k), int(n))
    if reason is not None:
        raise ValueError(f"shape M={m}, K={k}, N={n} does not fit the GEMM unit: {reason}")


def shape_fits(config: AcceleratorConfig, m: int, k: int, n: int) -> bool:
    """Whether one invocation accepts ``M x K x N`` (:func:`check_shape` without raising)."""
    try:
        check_shape(config, m, k, n)
    except ValueError:
        return False
    return True


def gemm_timing(config: AcceleratorConfig) -> dict[str, Any]:
    """The cycle model of one :class:`~edgetron.rtl.gemm.GemmUnit` invocation from an idle
    unit, as data (export manifest).

    The fixed latencies of the unit's parts (``constants``: the :mod:`edgetron.hw.gemm`
    values the components assert their structure against at elaboration) and the
    formulas of its phases (strings over ``M``, ``K``, ``N``, ``out32`` and those
    constants), the same as ``sim.units.gemm.gemm_phases`` and docs/rtl.md (a test
    evaluates them against the simulator). Formulas use integers, ``+``, ``-``, ``*``,
    ``max(...)`` and ``ceil(x / y)`` (integer ceiling division); ``derived``, ``phases``
    and ``total`` are evaluated in order, each name available to the ones after it.
    ``sequence`` says how consecutive calls overlap (``sim.units.gemm.gemm_sequence``).
    """
    check_config(config)
    arr = array_timing(config)
    p = config.sim_params()
    constants = {
        "R": config.rows,
        "C": config.cols,
        "slots": hw.gemm_slots(p),
        "cmd_cycles": hw.GEMM_CMD_CYCLES,
        "buffer_read_cycles": hw.GEMM_BUFFER_READ_CYCLES,
        "array_latency": arr.latency,
        "epilogue_cycles": hw.GEMM_EPILOGUE_CYCLES,
        "requant_latency": hw.REQUANT_LATENCY,
        "out_fifo_cycles": hw.GEMM_OUT_FIFO_CYCLES,
        "channels_first": int(hw.gemm_channels_first(p)),
        "out_fifo_beats": hw.gemm_out_fifo_beats(config.rows, config.cols, config.dataflow),
    }
    # CC0: the channels the first issue waits for, N or min(N, C) (min(x, y) = x + y -
    # max(x, y)).
    cc0 = "channels_first * N + (1 - channels_first) * (N + C - max(N, C))"
    out = "requant_latency + out_fifo_cycles"
    if config.dataflow == "ws":
        derived = {"KF": "ceil(K / R)", "NT": "ceil(N / C)", "S": "NT * KF",
                   "P": "max(M, R)", "CC0": cc0}
        a_beats = "M * KF"
        fill = "max(R + 1, CC0)"
        compute = "(S - 1) * P + M"
        drain = f"buffer_read_cycles + array_latency + epilogue_cycles + {out}"
    else:
        constants |= {"drain_delay": arr.drain_delay, "min_tile_gap": arr.min_tile_gap}
        derived = {"MT": "ceil(M / R)", "NT": "ceil(N / C)", "P": "max(K, min_tile_gap)",
                   "r_last": "M - (MT - 1) * R - 1", "CC0": cc0}
        a_beats = "MT * K"
        fill = "max(1, CC0)"
        compute = "(NT * MT - 1) * P + K"
        drain = (f"buffer_read_cycles + drain_delay + r_last + array_latency + "
                 f"epilogue_cycles + {out}")
    return {
        "model": "edgetron.sim.units.gemm.gemm_phases",
        "counts": "cycles from the cmd handshake to the last o handshake, both included, "
                  "of one call on an idle unit, with every input valid on every cycle and "
                  "o.ready always high",
        "sequence": "calls overlap (edgetron.sim.units.gemm.gemm_sequence): a command is "
                    "taken when one of the `slots` operand slots is free; each operand "
                    "stream loads the next call's beats right after the current call's; "
                    "a call's first issue waits for its first fold's operands and for the "
                    "previous call's last issue; drains overlap the next calls",
        "input_gaps": "delay the issue of the rows (pairs) whose operands they delay",
        "output_backpressure": "fills the output FIFO (out_fifo_beats), then holds back "
                               "the issue of rows: the core issues against the FIFO's "
                               "credits and nothing after the issue point stalls; o.ready "
                               "only reaches the FIFO's read side",
        "variables": {"M": "rows of A", "K": "reduction length", "N": "columns of W",
                      "out32": "1: int32 results, 0: requantized int8 (same cycles)"},
        "constants": constants,
        "derived": derived,
        "phases": {
            "cmd": "cmd_cycles",
            "a_beats": a_beats,
            "w_beats": "NT * K",
            "ch_beats": "N",
            "fill": fill,
            "compute": compute,
            "drain": drain,
            "out_beats": "NT * M",
        },
        "total": "cmd + fill + compute + drain",
    }
