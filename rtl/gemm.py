"""GEMM unit: local buffers, a systolic array and a controller for any M x K x N that fits.

``GemmUnit(config)`` computes ``A @ W + bias`` with int32 accumulation and returns it
as int32 or requantized per output channel to int8, bit-exact with
:func:`edgetron.golden.gemm.gemm_int` and :func:`edgetron.golden.gemm.gemm_requant`.
:func:`encode_gemm` and :func:`decode_gemm` are the single definition of the stream
protocol: they turn matrices into the payload word of every input beat and the output
beats back into a matrix, for the Amaranth tests and the cocotb testbenches alike.
docs/rtl.md has the block diagram, the schedules and the latency derivation.

One invocation
--------------
1. ``cmd`` handshake (``m``, ``k``, ``n``, ``out32``), then one cycle to check the shape
   against the buffers. A shape that does not fit, or has a zero dimension, is
   *rejected*: ``err`` goes high until the next command handshake, no operand beat is
   accepted, nothing is output, and the unit takes the next command.
2. Load: ``a``, ``w`` and ``ch`` are accepted in parallel, one beat per cycle each, into
   the A buffer, the W buffer and the parameter memory.
3. Compute: the controller reads the buffers fold by fold; the results of the last fold
   stream out on ``o``. After the last output handshake the next command is accepted.

Beat order
----------
``R = rows``, ``C = cols``, ``x//^y = ceil(x / y)``. Lanes beyond the matrix are padding:
:func:`encode_gemm` sends 0 and the hardware ignores them.

* ``a`` (``R`` lanes), ``ws``: for each fold ``kf < K//^R``, for each row ``m < M``:
  lane ``r`` is ``A[m, kf*R + r]``. ``os``: for each row tile ``mt < M//^R``, for each
  ``k < K``: lane ``r`` is ``A[mt*R + r, k]``.
* ``w`` (``C`` lanes), both: for each column tile ``nt < N//^C``, for each ``k < K``:
  lane ``c`` is ``W[k, nt*C + c]``.
* ``ch``: channel ``n = 0 .. N-1``: ``{bias[n], m[n], s[n]}``.
* ``o`` (``C`` lanes of ``signed(acc_bits)``), both: for each column tile ``nt``, for each
  row ``m < M``: lane ``c`` is ``out[m, nt*C + c]`` (int8 results sign-extended); lanes
  with ``nt*C + c >= N`` carry unspecified values.

Buffers
-------
Sized from the config (:func:`gemm_limits`); an element takes ``ceil(bits/8)`` bytes.

* A buffer: ``ifmap_sram_bytes // (R * ceil(input_bits/8))`` words of ``R`` operands.
* W buffer: ``weight_sram_bytes // (C * ceil(weight_bits/8))`` words of ``C`` operands.
* Accumulator buffer (``ws`` only; ``os`` accumulates inside the PEs):
  ``ofmap_sram_bytes // (C * ceil(acc_bits/8))`` words of ``C`` partial sums.
* Parameter memory: ``R`` words of ``C`` channels (``acc_bits + 37`` bits each), so
  ``N <= R * C``; small, and not part of the three SRAM fields.

``double_buffer`` does not change the unit: one invocation uses the whole of every
buffer and the next invocation loads after the current one has finished (overlapping
them is future work, docs/rtl.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from amaranth.hdl import Const, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.utils import ceil_log2

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import accumulator_k_limit
from edgetron.golden.intops import (
    INT8_MAX,
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
    check_signed,
    int_range,
)
from edgetron.hw import gemm as hw

from .layouts import (
    MAX_BUFFER_WORDS,
    channel_layout,
    check_array_size,
    check_dataflow,
    gemm_layouts,
    gemm_signature_members,
    requant_layout,
    unsigned_for,
)
from .requant import Requantizer
from .systolic import SystolicArray, array_timing, delay

__all__ = [
    "GemmLimits",
    "GemmUnit",
    "check_shape",
    "decode_gemm",
    "encode_gemm",
    "gemm_limits",
    "gemm_timing",
    "shape_fits",
]

#: Width of the requantized results: int8, as :func:`edgetron.golden.gemm.gemm_requant`.
_OUT_BITS = INT8_MAX.bit_length() + 1
_cdiv = hw.cdiv.py_func


# ---- limits ------------------------------------------------------------------------------------
class GemmLimits(NamedTuple):
    """Buffer words and per-dimension maxima of one :class:`GemmUnit` invocation.

    ``m_max``, ``k_max``, ``n_max`` are each reached with the other two dimensions at 1;
    whether a shape fits is decided by :func:`check_shape` (the buffers hold products).
    """

    a_words: int
    w_words: int
    acc_words: int
    param_words: int
    m_max: int
    k_max: int
    n_max: int


def gemm_limits(config: AcceleratorConfig) -> GemmLimits:
    """Buffer sizes and shape limits of the GEMM unit for ``config`` (``ws`` or ``os``).

    :func:`edgetron.hw.gemm.gemm_buffer_words` and :func:`edgetron.hw.gemm.gemm_max_shape`,
    the definitions the simulator uses too.
    """
    p = config.sim_params()
    return GemmLimits(*hw.gemm_buffer_words(p), *hw.gemm_max_shape(p))


def _fits(config: AcceleratorConfig, lim: GemmLimits, m: int, k: int, n: int) -> str | None:
    """None if the shape fits (:func:`edgetron.hw.gemm.gemm_fit_failure`), else the reason."""
    r, c = config.rows, config.cols
    nt = _cdiv(n, c)
    failure = hw.gemm_fit_failure(config.sim_params(), m, k, n)
    if failure == hw.FIT_A:
        if config.dataflow == "ws":
            a_what = f"M * ceil(K/{r}) = {m * _cdiv(k, r)}"
        else:
            a_what = f"ceil(M/{r}) * K = {_cdiv(m, r) * k}"
        return f"the A buffer holds {lim.a_words} words of {r} operands, the shape needs {a_what}"
    if failure == hw.FIT_W:
        return (f"the W buffer holds {lim.w_words} words of {c} operands, the shape needs "
                f"ceil(N/{c}) * K = {nt * k}")
    if failure == hw.FIT_ACC:
        return f"the accumulator buffer holds {lim.acc_words} rows, the shape needs M = {m}"
    if failure == hw.FIT_PARAM:
        return f"the parameter memory holds {lim.param_words * c} channels, the shape needs N = {n}"
    return None


def _check_dims(**dims) -> None:
    for name, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_shape(config: AcceleratorConfig, m: int, k: int, n: int) -> None:
    """Raise ValueError unless one invocation accepts ``M x K x N`` (the RTL sets ``err``)."""
    _check_dims(M=m, K=k, N=n)
    reason = _fits(config, gemm_limits(config), int(m), int(k), int(n))
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
    """The cycle model of one :class:`GemmUnit` invocation, as data (export manifest).

    The fixed latencies of the unit's parts (``constants``, from the components
    themselves) and the formulas of its phases (strings over ``M``, ``K``, ``N``,
    ``out32`` and those constants), the same as ``sim.units.gemm.gemm_phases`` and
    docs/rtl.md (a test evaluates them against the simulator). Formulas use integers,
    ``+``, ``-``, ``*``, ``max(...)`` and ``ceil(x / y)`` (integer ceiling division);
    ``derived``, ``phases`` and ``total`` are evaluated in order, each name available to
    the ones after it.
    """
    _check_config(config)
    arr = array_timing(config)
    constants = {
        "R": config.rows,
        "C": config.cols,
        "cmd_cycles": hw.GEMM_CMD_CYCLES,
        "buffer_read_cycles": hw.GEMM_BUFFER_READ_CYCLES,
        "array_latency": arr.latency,
        "epilogue_cycles": hw.GEMM_EPILOGUE_CYCLES,
        "requant_latency": hw.REQUANT_LATENCY,
    }
    lat = "(1 - out32) * requant_latency"
    if config.dataflow == "ws":
        derived = {"KF": "ceil(K / R)", "NT": "ceil(N / C)", "S": "NT * KF",
                   "P": "max(M, R)", "LAT": lat}
        a_beats = "M * KF"
        compute = "R + (S - 1) * P + M"
        drain = "buffer_read_cycles + array_latency + epilogue_cycles + LAT"
    else:
        constants |= {"drain_delay": arr.drain_delay, "min_tile_gap": arr.min_tile_gap}
        derived = {"MT": "ceil(M / R)", "NT": "ceil(N / C)", "P": "max(K, min_tile_gap)",
                   "r_last": "M - (MT - 1) * R - 1", "LAT": lat}
        a_beats = "MT * K"
        compute = "(NT * MT - 1) * P + K"
        drain = "buffer_read_cycles + drain_delay + r_last + array_latency + epilogue_cycles + LAT"
    return {
        "model": "edgetron.sim.units.gemm.gemm_phases",
        "counts": "cycles from the cmd handshake to the last o handshake, both included, "
                  "with every input valid on every cycle and o.ready always high",
        "input_gaps": "lengthen only the load phase: with o.ready always high, the last o "
                      "handshake comes compute + drain cycles after the last operand handshake",
        "output_backpressure": "stalls the compute core and the requantizer as a whole",
        "variables": {"M": "rows of A", "K": "reduction length", "N": "columns of W",
                      "out32": "1: int32 results, 0: requantized int8"},
        "constants": constants,
        "derived": derived,
        "phases": {
            "cmd": "cmd_cycles",
            "a_beats": a_beats,
            "w_beats": "NT * K",
            "ch_beats": "N",
            "load": "max(a_beats, w_beats, ch_beats)",
            "compute": compute,
            "drain": drain,
            "out_beats": "NT * M",
        },
        "total": "cmd + load + compute + drain",
    }


def _check_config(config: AcceleratorConfig) -> GemmLimits:
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, got {type(config).__name__}")
    check_dataflow(config.dataflow)
    check_array_size("GemmUnit", config.rows, config.cols)
    lim = gemm_limits(config)
    k_acc = accumulator_k_limit(config.acc_bits, 0, config.input_bits, config.weight_bits)
    if lim.k_max > k_acc:
        raise ValueError(
            f"acc_bits: a {config.acc_bits}-bit accumulator is too narrow for K up to "
            f"{lim.k_max} (allowed by ifmap_sram_bytes/weight_sram_bytes) with "
            f"{config.input_bits}x{config.weight_bits}-bit operands; it holds K <= {k_acc}. "
            "Widen acc_bits or shrink the buffers"
        )
    r, c = config.rows, config.cols
    for field, words, what in (
        ("ifmap_sram_bytes", lim.a_words, f"an A buffer of {lim.a_words} words of {r} operands"),
        ("weight_sram_bytes", lim.w_words, f"a W buffer of {lim.w_words} words of {c} operands"),
        ("ofmap_sram_bytes", lim.acc_words,
         f"an accumulator buffer of {lim.acc_words} words of {c} sums"),
    ):
        if words > MAX_BUFFER_WORDS:
            raise ValueError(
                f"{field}: {getattr(config, field)} bytes make {what}; the RTL elaborates at "
                f"most {MAX_BUFFER_WORDS} words per buffer (elaboration time and memory grow "
                "with the words, docs/rtl.md). Shrink the buffer or widen the array"
            )
    return lim


# ---- driver-side protocol ----------------------------------------------------------------------
def _operand(x, name: str, shape, bits: int) -> np.ndarray:
    v = as_int64(x, name)
    if v.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
    check_signed(v, bits, name)
    return v


def _per_channel(x, name: str, n: int, lo: int, hi: int) -> np.ndarray:
    v = as_int64(x, name)
    if v.ndim == 0:
        v = np.full(n, int(v), dtype=np.int64)
    if v.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {v.shape}")
    check_range(v, lo, hi, name)
    return v


def encode_gemm(config: AcceleratorConfig, a, w, bias, m, s, out32: bool) -> dict[str, list[int]]:
    """Payload words of every input beat of one :class:`GemmUnit` invocation.

    Parameters
    ----------
    config : AcceleratorConfig
        The unit's configuration (``ws`` or ``os``).
    a : array of int, shape (M, K)
        Activations in the signed ``input_bits`` range.
    w : array of int, shape (K, N)
        Weights in the signed ``weight_bits`` range.
    bias : array of int, shape (N,), or None
        Per-channel bias in the signed ``acc_bits`` range (None: zeros).
    m, s : int or array of int, shape (N,), or None
        Requantization multipliers (``0 .. 2**31-1``) and shifts (``1 .. 62``); may be
        None when ``out32`` (sent as 0).
    out32 : bool
        True: the unit returns the int32 accumulators; False: requantized int8.

    Returns
    -------
    dict
        ``{"cmd": [1 word], "a": [...], "w": [...], "ch": [...]}``: unsigned integers, each
        the payload bit vector of one beat (LSB first, Amaranth layout order), in the beat
        order of the module docstring.

    Raises
    ------
    TypeError
        Non-integer data.
    ValueError
        Wrong shapes, values out of range, a shape the buffers cannot hold
        (:func:`check_shape`), or a K and bias that could overflow the accumulator.
    """
    lim = _check_config(config)
    va = as_int64(a, "a")
    vw = as_int64(w, "w")
    if va.ndim != 2 or vw.ndim != 2 or va.shape[1] != vw.shape[0]:
        raise ValueError(f"a must be (M, K) and w (K, N), got shapes {va.shape} and {vw.shape}")
    mm, kk = va.shape
    nn = vw.shape[1]
    check_shape(config, mm, kk, nn)
    va = _operand(va, "a", (mm, kk), config.input_bits)
    vw = _operand(vw, "w", (kk, nn), config.weight_bits)
    acc_lo, acc_hi = int_range(config.acc_bits)
    vb = np.zeros(nn, np.int64) if bias is None else _per_channel(bias, "bias", nn, acc_lo, acc_hi)
    if out32 and m is None and s is None:
        vm = np.zeros(nn, np.int64)
        vs = np.zeros(nn, np.int64)
    else:
        vm = _per_channel(m, "m", nn, 0, M_MAX)
        vs = _per_channel(s, "s", nn, S_MIN, S_MAX)
    max_bias = int(np.abs(vb).max())
    k_acc = accumulator_k_limit(config.acc_bits, max_bias, config.input_bits, config.weight_bits)
    if kk > k_acc:
        raise ValueError(
            f"K={kk} with |bias| up to {max_bias} could overflow the {config.acc_bits}-bit "
            f"accumulator (K <= {k_acc} is safe); split K or narrow the bias"
        )

    r, c = config.rows, config.cols
    lay = gemm_layouts(config, m_max=lim.m_max, k_max=lim.k_max, n_max=lim.n_max)
    if config.dataflow == "ws":
        kf = _cdiv(kk, r)
        ap = np.zeros((mm, kf * r), np.int64)
        ap[:, :kk] = va
        a_vecs = ap.reshape(mm, kf, r).transpose(1, 0, 2).reshape(-1, r)
    else:
        mt = _cdiv(mm, r)
        ap = np.zeros((mt * r, kk), np.int64)
        ap[:mm] = va
        a_vecs = ap.reshape(mt, r, kk).transpose(0, 2, 1).reshape(-1, r)
    nt = _cdiv(nn, c)
    wp = np.zeros((kk, nt * c), np.int64)
    wp[:, :nn] = vw
    w_vecs = wp.reshape(kk, nt, c).transpose(1, 0, 2).reshape(-1, c)

    def words(layout, rows):
        return [layout.const(row.tolist()).as_value().value for row in rows]

    return {
        "cmd": [lay.cmd.const({"m": mm, "k": kk, "n": nn, "out32": int(bool(out32))})
                .as_value().value],
        "a": words(lay.a, a_vecs),
        "w": words(lay.w, w_vecs),
        "ch": [lay.ch.const({"bias": int(vb[i]), "m": int(vm[i]), "s": int(vs[i])})
               .as_value().value for i in range(nn)],
    }


def decode_gemm(config: AcceleratorConfig, words, m: int, n: int, out32: bool) -> np.ndarray:
    """The (M, N) int64 result matrix from the ``o`` payload words of one invocation.

    Raises ValueError when the number of words is not ``ceil(N/C) * M``, or when an int8
    result (``out32`` false) lies outside the int8 range.
    """
    lim = _check_config(config)
    _check_dims(M=m, N=n)
    c = config.cols
    nt = _cdiv(n, c)
    words = list(words)
    if len(words) != nt * m:
        raise ValueError(f"expected ceil({n}/{c}) * {m} = {nt * m} output beats, got {len(words)}")
    lay = gemm_layouts(config, m_max=lim.m_max, k_max=lim.k_max, n_max=lim.n_max)
    vecs = np.array([list(lay.o.from_bits(int(x))) for x in words], np.int64).reshape(nt, m, c)
    out = vecs.transpose(1, 0, 2).reshape(m, nt * c)[:, :n]
    if not out32:
        check_signed(out, _OUT_BITS, "int8 result")
    return np.ascontiguousarray(out)


# ---- hardware helpers --------------------------------------------------------------------------
class _CoreIO(NamedTuple):
    """Signals the dataflow-specific compute cores share with the rest of the unit."""

    top: Module            # the unit's module (memories live there)
    core: Module           # the stalled compute core
    array: SystolicArray
    a_rd: memory.ReadPort  # A buffer read port (synchronous, enabled by run)
    w_rd: memory.ReadPort  # W buffer read port (synchronous, enabled by run)
    p_rd: memory.ReadPort  # parameter memory read port (asynchronous)
    out_reg: Signal        # epilogue register: {acc, m, s} of one output beat
    out_valid: Signal
    run: Signal            # clock enable of the core
    load: Signal           # operands loading: initialise the issue counters
    running: Signal        # RUN state: issue
    kf_last: Signal | None  # ws: last K fold, ceil(K / R) - 1 (None for os)
    nt_last: Signal        # last column tile, ceil(N / C) - 1
    mt_last: Signal | None  # os: last row tile, ceil(M / R) - 1 (None for ws)
    cmd: Signal            # the accepted command


def _ceil_div_const(x, d: int):
    """``ceil(x / d)`` of an unsigned value ``x`` by a constant ``d >= 1``, without a divider.

    With ``y = x + d - 1 < 2**nb``, ``sh = nb + ceil_log2(d)`` and ``mul = ceil(2**sh / d)``,
    ``floor(y / d) == (y * mul) >> sh`` for every such ``y``: ``mul * d = 2**sh + e`` with
    ``0 <= e < d <= 2**ceil_log2(d)``, so ``y * mul / 2**sh = y/d + y*e / (d * 2**sh)`` and
    the error term is below ``1/d``, too small to reach the next integer (Granlund &
    Montgomery, PLDI 1994, Thm. 4.2). ``nb`` covers every value ``x``'s width can carry.
    """
    y = x + (d - 1)
    nb = ((1 << len(x)) - 1 + d - 1).bit_length()
    sh = nb + ceil_log2(d)
    mul = _cdiv(1 << sh, d)
    return ((y * mul) >> sh)[:nb]


def _at_most(x, limit: int):
    """``x <= limit`` for an unsigned ``x``; constant true (no comparator) when no value of
    ``x``'s width exceeds ``limit``, as happens in the shape check of degenerate arrays."""
    return Const(1) if (1 << len(x)) - 1 <= limit else x <= limit


class GemmUnit(wiring.Component):
    """int8 GEMM unit on an ``R x C`` systolic array (``ws`` or ``os`` from the config).

    Parameters
    ----------
    config : AcceleratorConfig
        Array size, dataflow, widths and buffer sizes. Construction fails, before the
        component is created, with a ValueError naming the field for ``dataflow = "is"``,
        for an array of more than ``layouts.MAX_PES`` (4096) PEs, for a buffer of more
        than ``layouts.MAX_BUFFER_WORDS`` (65536) words and for an ``acc_bits`` that the
        largest K of the buffers could overflow; TypeError for a non-config.

    Members
    -------
    cmd : ``In(stream.Signature(StructLayout))``
        ``m`` (``bits(m_max)``), ``k`` (``bits(k_max)``), ``n`` (``bits(n_max)``), ``out32``
        (1: int32 results; 0: requantized int8), with the maxima of
        :meth:`max_shape`.
    a : ``In(stream.Signature(ArrayLayout(signed(input_bits), rows)))``
        Activation beats, ``rows * input_bits`` bits (order in the module docstring).
    w : ``In(stream.Signature(ArrayLayout(signed(weight_bits), cols)))``
        Weight beats, ``cols * weight_bits`` bits.
    ch : ``In(stream.Signature(channel_layout(acc_bits)))``
        One output channel per beat: ``bias`` signed(acc_bits), ``m`` unsigned(31),
        ``s`` unsigned(6); ``acc_bits + 37`` bits.
    o : ``Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))``
        One output row segment of ``cols`` channels per beat, ``cols * acc_bits`` bits.
    err : ``Out(1)``
        The last command was rejected (zero dimension, or the shape does not fit the
        buffers, see :func:`check_shape`); high from the cycle after the check until the
        next command handshake.

    Latency
    -------
    ``sim.units.gemm.gemm_cycles(config.sim_params(), M, K, N, out32)`` cycles from the
    command handshake to the last output handshake, both included, when the inputs are
    valid on every cycle and ``o.ready`` is always high (docs/rtl.md derives it). With
    input gaps and ``o.ready`` high, the last output handshake comes exactly ``compute +
    drain`` (``sim.units.gemm.gemm_phases``) cycles after the last operand handshake.
    :func:`gemm_timing` gives the model as data (the export manifest).

    Backpressure
    ------------
    Every stream honours valid/ready. Input gaps only lengthen the load phase. Output
    backpressure stalls the compute pipeline (buffer reads, array, accumulator stage)
    as a whole through a clock enable; no beat is lost or duplicated. A new command is
    accepted only after the last output beat of the previous one.

    Golden
    ------
    ``out32 = 1``: :func:`edgetron.golden.gemm.gemm_int` (``a @ w + bias``);
    ``out32 = 0``: :func:`edgetron.golden.gemm.gemm_requant`.
    """

    def __new__(cls, config: AcceleratorConfig):
        # The config is checked before the object exists: an elaboratable whose __init__
        # raised would be reported as "created but never used" when it is collected.
        _check_config(config)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, config: AcceleratorConfig):
        self._limits = gemm_limits(config)
        self._config = config
        lim = self._limits
        self._layouts = gemm_layouts(config, m_max=lim.m_max, k_max=lim.k_max, n_max=lim.n_max)
        super().__init__(gemm_signature_members(self._layouts))

    @staticmethod
    def max_shape(config: AcceleratorConfig) -> tuple[int, int, int]:
        """Largest ``(M, K, N)`` of one invocation, each with the other two at 1."""
        lim = _check_config(config)
        return lim.m_max, lim.k_max, lim.n_max

    @property
    def limits(self) -> GemmLimits:
        """Buffer sizes and shape limits of this unit."""
        return self._limits

    def elaborate(self, platform):
        m = Module()
        cfg, lim, lay = self._config, self._limits, self._layouts
        R, C = cfg.rows, cfg.cols
        ws = cfg.dataflow == "ws"

        # ---- buffers ----------------------------------------------------------------------
        m.submodules.a_mem = a_mem = memory.Memory(shape=lay.a, depth=lim.a_words, init=[])
        m.submodules.w_mem = w_mem = memory.Memory(shape=lay.w, depth=lim.w_words, init=[])
        param_layout = data.ArrayLayout(channel_layout(cfg.acc_bits), C)
        m.submodules.p_mem = p_mem = memory.Memory(shape=param_layout, depth=lim.param_words,
                                                   init=[])
        a_wr, a_rd = a_mem.write_port(), a_mem.read_port()
        w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
        p_wr, p_rd = p_mem.write_port(granularity=1), p_mem.read_port(domain="comb")

        # ---- command, check and load (not stalled) ----------------------------------------
        # The check registers every count as its last index (count - 1, the shape has no
        # zero dimension), so each "last beat / last tile" test compares equal widths.
        cmd = Signal(lay.cmd)
        nt_max = _cdiv(lim.n_max, C)
        nt_last = Signal(unsigned_for(nt_max))              # last column tile
        nt_c = _ceil_div_const(cmd.n, C)
        check = [nt_last.eq(nt_c - 1)]
        if ws:
            kf_last = Signal(unsigned_for(_cdiv(lim.k_max, R)))   # last K fold
            mt_last = None
            kf_c = _ceil_div_const(cmd.k, R)
            a_need = cmd.m * kf_c
            check.append(kf_last.eq(kf_c - 1))
        else:
            kf_last = None
            mt_last = Signal(unsigned_for(_cdiv(lim.m_max, R)))   # last row tile
            mt_c = _ceil_div_const(cmd.m, R)
            a_need = mt_c * cmd.k
            check.append(mt_last.eq(mt_c - 1))
        w_need = nt_c * cmd.k
        ok = ((cmd.m != 0) & (cmd.k != 0) & (cmd.n != 0) & _at_most(a_need, lim.a_words)
              & _at_most(w_need, lim.w_words) & _at_most(nt_c, lim.param_words))
        if ws:
            ok &= _at_most(cmd.m, lim.acc_words)

        # Beats accepted per stream (the A and W counts are the write addresses), output
        # beats handshaken, and the index of the last beat of each.
        a_cnt = Signal(unsigned_for(lim.a_words))
        w_cnt = Signal(unsigned_for(lim.w_words))
        ch_cnt = Signal(unsigned_for(lim.n_max))
        out_cnt = Signal(unsigned_for(nt_max * lim.m_max))
        a_end = Signal.like(a_cnt)
        w_end = Signal.like(w_cnt)
        ch_end = Signal.like(ch_cnt)
        out_end = Signal.like(out_cnt)
        ch_lane = Signal(range(C))          # channel of the ch beat within its word
        ch_word = Signal.like(p_wr.addr)    # parameter memory word of the ch beat
        a_done = Signal()
        w_done = Signal()
        ch_done = Signal()
        check += [a_end.eq(a_need - 1), w_end.eq(w_need - 1), ch_end.eq(cmd.n - 1),
                  out_end.eq(nt_c * cmd.m - 1)]

        a_hs = self.a.valid & self.a.ready
        w_hs = self.w.valid & self.w.ready
        ch_hs = self.ch.valid & self.ch.ready
        o_hs = self.o.valid & self.o.ready
        a_last = a_done | (a_hs & (a_cnt == a_end))
        w_last = w_done | (w_hs & (w_cnt == w_end))
        ch_last = ch_done | (ch_hs & (ch_cnt == ch_end))

        m.d.comb += [
            a_wr.addr.eq(a_cnt), a_wr.data.eq(self.a.payload), a_wr.en.eq(a_hs),
            w_wr.addr.eq(w_cnt), w_wr.data.eq(self.w.payload), w_wr.en.eq(w_hs),
            p_wr.addr.eq(ch_word),
        ]
        for c in range(C):
            m.d.comb += [p_wr.data[c].eq(self.ch.payload), p_wr.en[c].eq(ch_hs & (ch_lane == c))]

        load = Signal()      # operands loading: the compute core initialises its counters
        running = Signal()   # compute core active
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [cmd.eq(self.cmd.payload), self.err.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(ok):
                    m.d.sync += [
                        *check,
                        a_cnt.eq(0), w_cnt.eq(0), ch_cnt.eq(0), ch_lane.eq(0), ch_word.eq(0),
                        out_cnt.eq(0), a_done.eq(0), w_done.eq(0), ch_done.eq(0),
                    ]
                    m.next = "LOAD"
                with m.Else():
                    m.d.sync += self.err.eq(1)
                    m.next = "IDLE"
            with m.State("LOAD"):
                m.d.comb += [
                    load.eq(1),
                    self.a.ready.eq(~a_done), self.w.ready.eq(~w_done),
                    self.ch.ready.eq(~ch_done),
                ]
                with m.If(a_hs):
                    m.d.sync += a_cnt.eq(a_cnt + 1)
                with m.If(w_hs):
                    m.d.sync += w_cnt.eq(w_cnt + 1)
                with m.If(ch_hs):
                    m.d.sync += ch_cnt.eq(ch_cnt + 1)
                    with m.If(ch_lane == C - 1):
                        m.d.sync += [ch_lane.eq(0), ch_word.eq(ch_word + 1)]
                    with m.Else():
                        m.d.sync += ch_lane.eq(ch_lane + 1)
                m.d.sync += [a_done.eq(a_last), w_done.eq(w_last), ch_done.eq(ch_last)]
                with m.If(a_last & w_last & ch_last):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(o_hs):
                    m.d.sync += out_cnt.eq(out_cnt + 1)
                    with m.If(out_cnt == out_end):
                        m.next = "IDLE"

        # ---- compute core (stalled as a whole by ~run) ------------------------------------
        core = Module()
        run = Signal()
        core.submodules.array = array = SystolicArray(cfg)
        # The epilogue register: the accumulators of one output beat with their channels'
        # (m, s), ready for the requantizer.
        out_reg = Signal(requant_layout(C, cfg.acc_bits))
        out_valid = Signal()
        m.d.comb += [a_rd.en.eq(run), w_rd.en.eq(run)]
        io = _CoreIO(m, core, array, a_rd, w_rd, p_rd, out_reg, out_valid, run, load, running,
                     kf_last, nt_last, mt_last, cmd)
        if ws:
            self._ws_core(io)
        else:
            self._os_core(io)
        m.submodules.core = EnableInserter(run)(core)

        # ---- output: int32 straight from the epilogue register, or through the requantizer
        m.submodules.requant = rq = Requantizer(C, cfg.acc_bits, _OUT_BITS)
        sink_ready = Mux(cmd.out32, self.o.ready, rq.i.ready)
        m.d.comb += [
            run.eq(~out_valid | sink_ready),
            rq.i.payload.eq(out_reg),
            rq.i.valid.eq(out_valid & ~cmd.out32),
            rq.o.ready.eq(self.o.ready),
            self.o.valid.eq(Mux(cmd.out32, out_valid, rq.o.valid)),
        ]
        with m.If(cmd.out32):
            m.d.comb += self.o.payload.eq(out_reg.acc)
        with m.Else():
            for c in range(C):
                m.d.comb += self.o.payload[c].eq(rq.o.payload[c])
        return m

    # ---- weight-stationary controller --------------------------------------------------------
    def _ws_core(self, io: _CoreIO) -> None:
        cfg, lim = self._config, self._limits
        R, C = cfg.rows, cfg.cols
        M, K = io.cmd.m, io.cmd.k
        core, top, array = io.core, io.top, io.array
        a_rd, w_rd, p_rd, out_reg = io.a_rd, io.w_rd, io.p_rd, io.out_reg
        kf_last, nt_last, load, running = io.kf_last, io.nt_last, io.load, io.running
        period = Mux(M > R, M, R)        # cycles per fold step, max(M, R)

        # Issue state. A fold step (nt, kf) streams rows m = 0..M-1 of A's fold kf while the
        # weight rows of the *next* step are written into the other weight bank.
        steps = Signal()                 # 0: prologue (first weight tile), 1: fold steps
        busy = Signal()
        t = Signal(range(max(lim.m_max, R) + 1))
        kf = Signal.like(kf_last)
        nt = Signal.like(nt_last)
        a_base = Signal.like(a_rd.addr)  # kf * M
        sel = Signal()                   # weight bank of the current step
        # Weight-side counters describe the step whose weights are being written.
        wkf = Signal.like(kf_last)
        wk = Signal(range(_cdiv(lim.k_max, R) * R + 1))  # wkf * R
        w_addr = Signal.like(w_rd.addr)

        last_kf = kf == kf_last
        last_step = last_kf & (nt == nt_last)
        phase_len = Mux(steps, Mux(last_step, M, period), R)
        active = running & busy
        a_issue = active & steps & (t < M)
        w_issue = active & (t < R) & ~(steps & last_step)
        w_row_real = wk + t < K

        with core.If(load):
            core.d.sync += [steps.eq(0), busy.eq(1), t.eq(0), kf.eq(0), nt.eq(0),
                            a_base.eq(0), sel.eq(0), wkf.eq(0), wk.eq(0), w_addr.eq(0)]
        with core.Elif(active):
            with core.If(w_issue & w_row_real):
                core.d.sync += w_addr.eq(w_addr + 1)
            with core.If(t == phase_len - 1):
                core.d.sync += t.eq(0)
                # The weight side moves on to the step after the one it just loaded.
                with core.If(~(steps & last_step)):
                    with core.If(wkf == kf_last):
                        core.d.sync += [wkf.eq(0), wk.eq(0)]
                    with core.Else():
                        core.d.sync += [wkf.eq(wkf + 1), wk.eq(wk + R)]
                with core.If(~steps):
                    core.d.sync += steps.eq(1)
                with core.Elif(last_step):
                    core.d.sync += busy.eq(0)
                with core.Else():
                    core.d.sync += sel.eq(~sel)
                    with core.If(last_kf):
                        core.d.sync += [kf.eq(0), nt.eq(nt + 1), a_base.eq(0)]
                    with core.Else():
                        core.d.sync += [kf.eq(kf + 1), a_base.eq(a_base + M)]
            with core.Else():
                core.d.sync += t.eq(t + 1)

        # Buffer reads (one cycle); control registered alongside to meet the data.
        top.d.comb += [a_rd.addr.eq(a_base + t), w_rd.addr.eq(w_addr)]
        w_zero = Signal()
        w_ctl = Signal(array.w.shape())
        core.d.sync += [
            w_zero.eq(~w_row_real),
            w_ctl.valid.eq(w_issue),
            w_ctl.row.eq(t),
            w_ctl.bank.eq(Mux(steps, ~sel, sel)),
        ]
        a_sel = Signal()
        core.d.sync += a_sel.eq(sel)
        core.d.comb += [
            array.a.data.eq(a_rd.data), array.a.sel.eq(a_sel),
            array.w.valid.eq(w_ctl.valid), array.w.row.eq(w_ctl.row),
            array.w.bank.eq(w_ctl.bank),
            array.w.data.eq(Mux(w_zero, 0, w_rd.data)),
        ]

        # Tag of each issued row, delayed to meet its column sums at the array output
        # (1 cycle of buffer read + the array latency).
        tag = Signal(data.StructLayout({
            "valid": 1, "first": 1, "last": 1,
            "m": unsigned_for(lim.m_max), "nt": nt.shape(),
        }))
        core.d.comb += [tag.valid.eq(a_issue), tag.first.eq(kf == 0), tag.last.eq(last_kf),
                        tag.m.eq(t), tag.nt.eq(nt)]
        lat = hw.GEMM_BUFFER_READ_CYCLES + array.latency
        tag_pre = delay(core, tag, lat - 1, "tag")        # one cycle before the sums
        tag_out = delay(core, tag_pre, 1, "tag_out")

        # Accumulator stage: sum = (first fold ? bias : acc[m]) + column sums; write back
        # unless it is the last fold, in which case it goes to the epilogue register.
        acc_layout = data.ArrayLayout(signed(cfg.acc_bits), C)
        top.submodules.acc_mem = acc_mem = memory.Memory(shape=acc_layout, depth=lim.acc_words,
                                                         init=[])
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
        top.d.comb += [acc_rd.addr.eq(tag_pre.m), acc_rd.en.eq(io.run), p_rd.addr.eq(tag_out.nt)]
        total = Signal(acc_layout)
        for c in range(C):
            core.d.comb += total[c].eq(
                Mux(tag_out.first, p_rd.data[c].bias, acc_rd.data[c]) + array.p[c])
        top.d.comb += [
            acc_wr.addr.eq(tag_out.m),
            acc_wr.data.eq(total),
            acc_wr.en.eq(io.run & tag_out.valid & ~tag_out.last),
        ]
        core.d.sync += [io.out_valid.eq(tag_out.valid & tag_out.last), out_reg.acc.eq(total)]
        for c in range(C):
            core.d.sync += [out_reg.m[c].eq(p_rd.data[c].m), out_reg.s[c].eq(p_rd.data[c].s)]

    # ---- output-stationary controller --------------------------------------------------------
    def _os_core(self, io: _CoreIO) -> None:
        cfg, lim = self._config, self._limits
        R, C = cfg.rows, cfg.cols
        M, K = io.cmd.m, io.cmd.k
        core, array = io.core, io.array
        a_rd, w_rd, p_rd, out_reg = io.a_rd, io.w_rd, io.p_rd, io.out_reg
        mt_last, nt_last, load, running = io.mt_last, io.nt_last, io.load, io.running
        period = Mux(K > array.min_tile_gap, K, array.min_tile_gap)   # max(K, 2R - 1)

        # Issue state: tile (nt, mt) streams k = 0..K-1 of A's row tile mt and W's column
        # tile nt.
        busy = Signal()
        t = Signal(range(max(lim.k_max, array.min_tile_gap) + 1))
        mt = Signal.like(mt_last)
        nt = Signal.like(nt_last)
        a_base = Signal.like(a_rd.addr)  # mt * K
        w_base = Signal.like(w_rd.addr)  # nt * K
        last_tile = (mt == mt_last) & (nt == nt_last)
        tile_len = Mux(last_tile, K, period)
        active = running & busy
        issue = active & (t < K)
        with core.If(load):
            core.d.sync += [busy.eq(1), t.eq(0), mt.eq(0), nt.eq(0), a_base.eq(0),
                            w_base.eq(0)]
        with core.Elif(active):
            with core.If(t == tile_len - 1):
                core.d.sync += t.eq(0)
                with core.If(last_tile):
                    core.d.sync += busy.eq(0)
                with core.Elif(mt == mt_last):
                    core.d.sync += [mt.eq(0), a_base.eq(0), nt.eq(nt + 1), w_base.eq(w_base + K)]
                with core.Else():
                    core.d.sync += [mt.eq(mt + 1), a_base.eq(a_base + K)]
            with core.Else():
                core.d.sync += t.eq(t + 1)

        core.d.comb += [a_rd.addr.eq(a_base + t), w_rd.addr.eq(w_base + t)]
        first = Signal()
        last = Signal()
        core.d.sync += [first.eq(issue & (t == 0)), last.eq(issue & (t == K - 1))]
        core.d.comb += [
            array.a.data.eq(a_rd.data), array.a.first.eq(first), array.a.last.eq(last),
            array.w.data.eq(w_rd.data),
        ]

        # Drain: the last operand pair of a tile is read in cycle i and reaches the array in
        # i + 1; its R drain pulses start drain_delay cycles later, in i + 1 + drain_delay
        # (the trigger is delayed drain_delay cycles, the pulse counter adds one).
        rows_shape = range(R + 1)      # valid rows of a tile: R, or fewer in the last one
        trig = Signal(data.StructLayout({"go": 1, "rows": rows_shape, "nt": nt.shape()}))
        core.d.comb += [
            trig.go.eq(issue & (t == K - 1)),
            trig.rows.eq(Mux(mt == mt_last, M - mt_last * R, R)),
            trig.nt.eq(nt),
        ]
        trig_d = delay(core, trig, array.drain_delay, "drain_trig")
        d_active = Signal()
        d_row = Signal(range(R))
        d_rows = Signal(rows_shape)
        d_nt = Signal.like(nt)
        with core.If(trig_d.go):
            core.d.sync += [d_active.eq(1), d_row.eq(0), d_rows.eq(trig_d.rows),
                            d_nt.eq(trig_d.nt)]
        with core.Elif(d_active):
            with core.If(d_row == R - 1):
                core.d.sync += d_active.eq(0)
            with core.Else():
                core.d.sync += d_row.eq(d_row + 1)
        tag = Signal(data.StructLayout({"valid": 1, "nt": nt.shape()}))
        core.d.comb += [
            array.drain.eq(d_active),
            tag.valid.eq(d_active & (d_row < d_rows)),
            tag.nt.eq(d_nt),
        ]
        tag_out = delay(core, tag, array.latency, "tag")

        # Epilogue: add the bias of each channel and attach its (m, s).
        core.d.comb += p_rd.addr.eq(tag_out.nt)
        core.d.sync += io.out_valid.eq(tag_out.valid)
        for c in range(C):
            core.d.sync += [
                out_reg.acc[c].eq(array.o[c] + p_rd.data[c].bias),
                out_reg.m[c].eq(p_rd.data[c].m),
                out_reg.s[c].eq(p_rd.data[c].s),
            ]
