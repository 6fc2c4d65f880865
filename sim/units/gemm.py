"""The GEMM unit (systolic array + requantizer): call timing, events, functional kernel.

What the simulator knows about one GEMM-unit call: its cycles (:func:`gemm_cycles`, the
timing contract of the RTL ``GemmUnit``), its SRAM, register and adder events
(:func:`call_counts`) and its functional Numba kernel (:func:`gemm_tiled`). How a matrix
op is cut into calls is :mod:`edgetron.sim.tiling`; the convolution front end (im2col)
is :mod:`edgetron.sim.units.conv`. The numbers this model shares with the RTL (command
cycles, requantizer latency, array timing, buffer words, fit rules, dataflow codes) are
defined once in :mod:`edgetron.hw.gemm`.

Timing
------
The cycles of one call and of a sequence of calls are :mod:`edgetron.sim.units.gemm_timing`
(re-exported here: :func:`gemm_phases`, :func:`gemm_cycles`, :func:`gemm_utilization`,
:func:`gemm_step`, :func:`gemm_sequence`, :func:`gemm_sequence_cycles`): the timing
contract of the RTL ``GemmUnit`` for ``ws`` and ``os`` (tests/rtl/test_gemm.py and the
cocotb testbenches measure it), with ``is`` modelled as the transposed ``ws`` and *not*
RTL-verified. Consecutive calls overlap: loads, compute and drain of neighbouring calls
run at once, and a sequence costs less than the sum of its calls.

Events (:func:`call_counts`)
----------------------------
Per call and dataflow (``R, C`` array, ``KF = ceil(k/R)``): bytes of the A (ifmap), B
(weight) and accumulator (ofmap) buffers read and written, in the words the unit moves;
bytes moved between PE registers; int32 additions outside the PEs (accumulator-buffer
updates and the bias). One output channel's parameter word (bias, ``m``, ``s``) is
:func:`ch_bytes` bytes.

Functional kernel (:func:`gemm_tiled`)
--------------------------------------
A matrix op's products run as exactly the calls the planner chose; inside a call the
array folds follow the dataflow (``ws``: per column tile, per reduction fold of ``rows``
PEs down a column, partial sums added into the int32 accumulator buffer; ``os``: per
output tile, each PE accumulating over the whole reduction; ``is``: the transposed
``ws``), the bias is added and the requantizer runs after the last fold; with a K split
the calls emit int32 partial sums that the add unit sums before requantizing. Every
accumulation is checked against the int32 range, never wrapped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import AcceleratorConfig, SimParams
from edgetron.golden.gemm import accumulator_bound, gemm_int, matmul_int
from edgetron.golden.intops import MULT_BITS, SHIFT_BITS
from edgetron.hw.gemm import (
    DATAFLOW_IS,
    DATAFLOW_OS,
    REQUANT_LATENCY,
    cdiv,
    element_bytes,
    gemm_stream_beats,
)
from edgetron.workload import Gemm, Op

from ..opdata import (
    OpData,
    OpQuant,
    deployed_bias,
    deployed_scale,
    int8_values,
    matrix_output,
    quant_array,
    seeded_bias,
    weight_scales,
)
from ..records import F_COUNT, F_K, F_M, F_N, F_OUT32, F_W_B
from .gemm_timing import (
    SEQ_COLUMNS,
    GemmPhases,
    gemm_cycles,
    gemm_phases,
    gemm_sequence,
    gemm_sequence_cycles,
    gemm_step,
    gemm_utilization,
)
from .pipeline import in_int32, requantize

__all__ = [
    "MS_BYTES",
    "REQUANT_LATENCY",
    "SEQ_COLUMNS",
    "GemmPhases",
    "call_counts",
    "ch_bytes",
    "check_config",
    "gemm_cycles",
    "gemm_phases",
    "gemm_sequence",
    "gemm_sequence_cycles",
    "gemm_step",
    "gemm_tiled",
    "gemm_utilization",
    "int64_bounds",
    "matrix_record",
    "prepare",
    "products",
    "run",
    "scratch_bytes",
    "stored",
]

#: Bytes of one channel's requantization constants ``(m, s)`` fetched on their own (the
#: add unit's requantization after a K split).
MS_BYTES = element_bytes.py_func(MULT_BITS + SHIFT_BITS)


# ------------------------------------------------------------------------------------------
# Events
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def ch_bytes(p):
    """Bytes of one output channel's parameters: bias (``acc_bits``), ``m`` and ``s``."""
    return element_bytes(p.acc_bits + MULT_BITS + SHIFT_BITS)


@njit(cache=True)
def call_counts(p, m, k, n, a_b, w_b):
    """SRAM, register and adder counts of one GEMM-unit call.

    Returns ``(if_rd, if_wr, w_rd, w_wr, of_rd, of_wr, reg, add32)``: bytes of the A
    (ifmap), B (weight) and accumulator (ofmap) buffers read and written; bytes moved
    between PE registers; int32 additions outside the PEs (accumulator-buffer updates and
    the bias). Its cycles are :func:`gemm_cycles` (alone) or :func:`gemm_step` (in a
    sequence).

    Per dataflow (``R, C`` array, ``KF = ceil(k/R)``, words as in
    :func:`edgetron.hw.gemm.gemm_buffer_words`):

    * ``ws``: ``S = ceil(n/C) * KF`` steps; A words (R lanes) written once, read once per
      step (``m`` words); W written and read once; the accumulator buffer read and
      written ``m`` words of C lanes per step; registers: per step ``m`` rows of
      activations cross ``C`` PEs and partial sums cross ``R`` PEs, and a weight tile
      shifts down its columns (``R (R + 1) / 2`` register hops per column).
    * ``os``: ``ceil(m/R) * ceil(n/C)`` tiles each stream ``k`` A words and ``k`` W words;
      no accumulator buffer; registers: operands cross the array, results shift out.
    * ``is``: the transposed ``ws`` (A^T stationary, W^T streamed).
    """
    a_beats, w_beats, _, _ = gemm_stream_beats(p, m, k, n)
    r, c = p.rows, p.cols
    acc_b = element_bytes(p.acc_bits)
    kf = cdiv(k, r)
    preload = r * c * (r + 1) / 2.0
    if p.dataflow == DATAFLOW_OS:
        tiles = cdiv(m, r) * cdiv(n, c)
        if_wr = a_beats * r * a_b
        if_rd = tiles * k * r * a_b
        w_wr = w_beats * c * w_b
        w_rd = tiles * k * c * w_b
        of_rd = 0
        of_wr = 0
        reg = tiles * (k * r * c * (a_b + w_b) + preload * acc_b)
        add32 = m * n
    elif p.dataflow == DATAFLOW_IS:
        steps = cdiv(m, c) * kf
        if_wr = a_beats * c * a_b
        if_rd = if_wr
        w_wr = w_beats * r * w_b
        w_rd = steps * n * r * w_b
        of_wr = steps * n * c * acc_b
        of_rd = of_wr
        reg = steps * (n * r * c * (w_b + acc_b) + preload * a_b)
        add32 = kf * m * n
    else:
        steps = cdiv(n, c) * kf
        if_wr = a_beats * r * a_b
        if_rd = steps * m * r * a_b
        w_wr = w_beats * c * w_b
        w_rd = w_wr
        of_wr = steps * m * c * acc_b
        of_rd = of_wr
        reg = steps * (m * r * c * (a_b + acc_b) + preload * w_b)
        add32 = kf * m * n
    return if_rd, if_wr, w_rd, w_wr, of_rd, of_wr, reg, add32


# ------------------------------------------------------------------------------------------
# Functional kernel
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _call_ws(a, w, m0, mt, k0, kt, n0, nt, rows, cols, acc):
    """One weight-stationary call: per column tile, per fold of ``rows`` PEs down a column.

    ``acc[i, j] += sum_k a[m0 + i, k] * w[k, n0 + j]`` over the call's ``kt`` columns from
    ``k0``, fold by fold; returns False if any accumulator left the int32 range.
    """
    ok = True
    for j0 in range(0, nt, cols):
        cw = min(cols, nt - j0)
        for r0 in range(0, kt, rows):
            rw = min(rows, kt - r0)
            for i in range(mt):
                for c in range(cw):
                    psum = 0
                    for r in range(rw):
                        psum += a[m0 + i, k0 + r0 + r] * w[k0 + r0 + r, n0 + j0 + c]
                    v = acc[i, j0 + c] + psum
                    ok = ok and in_int32(v)
                    acc[i, j0 + c] = v
    return ok


@njit(cache=True)
def _call_os(a, w, m0, mt, k0, kt, n0, nt, rows, cols, acc):
    """One output-stationary call: per ``rows x cols`` output tile, each PE sums the whole K."""
    ok = True
    for i0 in range(0, mt, rows):
        rh = min(rows, mt - i0)
        for j0 in range(0, nt, cols):
            cw = min(cols, nt - j0)
            for i in range(rh):
                for c in range(cw):
                    v = 0
                    for kk in range(kt):
                        v += a[m0 + i0 + i, k0 + kk] * w[k0 + kk, n0 + j0 + c]
                        ok = ok and in_int32(v)
                    acc[i0 + i, j0 + c] = v
    return ok


@njit(cache=True)
def _call_is(a, w, m0, mt, k0, kt, n0, nt, rows, cols, acc):
    """One input-stationary call: the weight-stationary call of ``C^T = W^T A^T``.

    ``A^T`` is held in the array (tiles of ``cols`` rows of A, per fold of ``rows`` PEs)
    and the ``nt`` rows of ``W^T`` stream through it, as :func:`gemm_phases` times it.
    """
    return _call_ws(w.T, a.T, n0, nt, k0, kt, m0, mt, rows, cols, acc.T)


@njit(cache=True)
def gemm_tiled(a, w, bias, mq, sq, out32, lo, hi, mt, kt, nt, rows, cols, dataflow, out):
    """Run ``P`` products ``a[p] @ w[p] + bias[p]`` as GEMM-unit calls of ``mt x kt x nt``.

    ``a`` [P, M, K], ``w`` [P, K, N], ``bias``/``mq``/``sq`` [P, N] (int64); ``out``
    [P, M, N] receives int32 accumulators (``out32``) or requantized values clamped to
    ``[lo, hi]`` (output range and fused activation). Returns ``(calls, ok)``; ``ok`` is
    False if any accumulation left the int32 range.
    """
    n_prod, m, k = a.shape
    n = w.shape[2]
    nk = cdiv(k, kt)
    calls = 0
    ok = True
    for pi in range(n_prod):
        ap = a[pi]
        wp = w[pi]
        for n0 in range(0, n, nt):
            nsz = min(nt, n - n0)
            for m0 in range(0, m, mt):
                msz = min(mt, m - m0)
                total = np.zeros((msz, nsz), dtype=np.int64)
                for kc in range(nk):
                    k0 = kc * kt
                    ksz = min(kt, k - k0)
                    acc = np.zeros((msz, nsz), dtype=np.int64)
                    if dataflow == DATAFLOW_OS:
                        good = _call_os(ap, wp, m0, msz, k0, ksz, n0, nsz, rows, cols, acc)
                    elif dataflow == DATAFLOW_IS:
                        good = _call_is(ap, wp, m0, msz, k0, ksz, n0, nsz, rows, cols, acc)
                    else:
                        good = _call_ws(ap, wp, m0, msz, k0, ksz, n0, nsz, rows, cols, acc)
                    ok = ok and good
                    calls += 1
                    for i in range(msz):
                        for j in range(nsz):
                            v = acc[i, j]
                            if kc == 0:
                                v += bias[pi, n0 + j]
                            # A K split: the add unit sums the int32 partial sums.
                            v += total[i, j]
                            ok = ok and in_int32(v)
                            total[i, j] = v
                for i in range(msz):
                    for j in range(nsz):
                        v = total[i, j]
                        if out32 == 0:
                            v = requantize(v, mq[pi, n0 + j], sq[pi, n0 + j], lo, hi)
                        out[pi, m0 + i, n0 + j] = v
    return calls, ok


# ------------------------------------------------------------------------------------------
# The gemm op kind: flat record, limits, functional data and run
# ------------------------------------------------------------------------------------------


def matrix_record(op: Op, rec: list[int]) -> None:
    """The fields every matrix op (gemm, conv2d, dwconv2d) sets in its flat record."""
    mm = op.gemm
    rec[F_COUNT], rec[F_M], rec[F_K], rec[F_N] = mm.count, mm.m, mm.k, mm.n
    rec[F_OUT32] = int(op.requant == "none")
    rec[F_W_B] = element_bytes.py_func(op.weight_bits if mm.b_const else op.in_bits)


def int64_bounds(op: Op, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Upper bounds of the integers the simulator forms for a matrix op, exact.

    ``16 * count * (M + E) * (K + E) * (N + E)`` for the op's GEMM view and ``E`` the
    larger array edge: every integer the GEMM-unit timing, the planner and the traffic
    accounting form for the op (cycles, beats, buffer bytes, calls, partial sums) is a
    product of at most ``count``, one tile of each of ``M``, ``K``, ``N`` rounded up to
    the array, and at most 16 bytes.
    """
    mm = op.gemm
    return (("its traffic and event counts",
             f"16*count*(M+E)*(K+E)*(N+E) with count={mm.count}, M={mm.m}, K={mm.k}, "
             f"N={mm.n} (its GEMM view) and E={edge} (the larger array edge)",
             16 * mm.count * (mm.m + edge) * (mm.k + edge) * (mm.n + edge)),)


def check_config(op: Op, cfg: AcceleratorConfig) -> str | None:
    """Why the config's array cannot run matrix op ``op``, or None.

    Operand widths against the array's ``input_bits`` / ``weight_bits``, and the worst
    accumulation against ``acc_bits`` (golden's
    :func:`~edgetron.golden.gemm.accumulator_bound` for the operand widths).
    """
    mm = op.gemm
    b_bits = op.weight_bits if mm.b_const else op.in_bits
    if op.in_bits > cfg.input_bits:
        return f"in_bits {op.in_bits} exceeds the array's input_bits {cfg.input_bits}"
    b_limit = cfg.weight_bits if mm.b_const else cfg.input_bits
    b_field = "weight_bits" if mm.b_const else "input_bits"
    if b_bits > b_limit:
        return f"operand B is {b_bits} bits, more than the array's {b_field} {b_limit}"
    bound = accumulator_bound(mm.k, 0, op.in_bits, b_bits)
    limit = (1 << (cfg.acc_bits - 1)) - 1
    if bound > limit:
        return (f"K={mm.k} products could reach {bound}, beyond the {cfg.acc_bits}-bit "
                f"accumulator (acc_bits) limit {limit}")
    return None


def products(op: Gemm, operand: str, x: np.ndarray) -> np.ndarray:
    """A stored activation operand (``"a"`` or ``"b"``) as ``[batch * count, rows, cols]``.

    The per-head matrices of a product of two activations, from its declared layout
    (:meth:`edgetron.workload.Gemm.product_view`).
    """
    shape, axes = op.product_view(operand)
    p = x.reshape(shape).transpose(axes)
    return np.ascontiguousarray(p.reshape(-1, p.shape[2], p.shape[3]))


def stored(op: Gemm, y: np.ndarray) -> np.ndarray:
    """Products ``[batch, count, m, n]`` (any leading split) in the op's ``out_shape``."""
    _, axes = op.product_view("out")
    return y.reshape(op.batch, op.count, op.m, op.n).transpose(np.argsort(axes)).reshape(
        op.out_shape)


def prepare(op: Gemm, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """Weights, bias, requantization constants and the golden output of a gemm op.

    Seeded, or a deployed model's (``q``: int8 weights, their scales, real bias, output
    scale).
    """
    x = ops_in[0]
    # A product of two activations has one per-tensor scale for its whole output.
    activations = not op.weights
    if op.weights:
        if q is None:
            w = int8_values(rng, (op.count, op.k, op.n))
            sw = weight_scales(rng, op.count * op.n, op.k, op.requant == "channel").reshape(
                op.count, op.n)
        else:
            w = quant_array(q, "weight", (op.count, op.k, op.n)).astype(np.int64)
            sw = quant_array(q, "weight_scale", (op.count, op.n)).astype(np.float64)
        a = x.reshape(op.batch, op.count, op.m, op.k)
        acc = np.stack([gemm_int(a[:, c].reshape(-1, op.k), w[c])
                        for c in range(op.count)])  # [count, batch*m, n]
    else:
        w = None
        sw = np.full((op.count, op.n), scales[1])
        acc = matmul_int(products(op, "a", x),
                         products(op, "b", ops_in[1]))  # [batch*count, m, n]
    if op.bias and q is not None:
        bias = deployed_bias(q, (op.count, op.n), scales[0], sw)
    elif op.bias:
        bias = seeded_bias(rng, op.k, op.count * op.n).reshape(op.count, op.n)
    else:
        bias = np.zeros((op.count, op.n), dtype=np.int64)
    acc = acc + (np.tile(bias, (op.batch, 1)) if activations else bias)[:, None, :]
    out = None if q is None or op.requant == "none" else deployed_scale(q)
    y, params, out_scale = matrix_output(op, acc, bias, sw, scales[0] * op.scale, activations,
                                         out)
    if op.weights:
        y = y.reshape(op.count, op.batch, op.m, op.n).transpose(1, 0, 2, 3)
    params.update(w=w, bias=bias)
    return OpData(ops_in, params, np.ascontiguousarray(stored(op, y)), out_scale)


def run(op: Gemm, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run a gemm op as the GEMM-unit calls of ``tile``: ``(output, calls, ok)``.

    ``ok`` is False when an accumulation left the int32 range.
    """
    x = d.operands[0]
    prm = d.params
    if op.weights:
        a = np.ascontiguousarray(
            x.reshape(op.batch, op.count, op.m, op.k).transpose(1, 0, 2, 3)
            .reshape(op.count, op.batch * op.m, op.k))
        w = prm["w"]
        bias, mq, sq = prm["bias"], prm["m"], prm["s"]
    else:
        a = products(op, "a", x)
        w = products(op, "b", d.operands[1])
        reps = (op.batch, 1)
        bias, mq, sq = (np.tile(prm[key], reps) for key in ("bias", "m", "s"))
    out = np.empty((a.shape[0], a.shape[1], w.shape[2]), dtype=np.int64)
    calls, ok = gemm_tiled(a, w, bias, mq, sq, int(op.requant == "none"), prm["lo"],
                           prm["hi"], *tile, p.rows, p.cols, p.dataflow, out)
    if op.weights:
        out = out.reshape(op.count, op.batch, op.m, op.n).transpose(1, 0, 2, 3)
    return stored(op, out), calls, ok


def scratch_bytes(op: Op) -> int:
    """Peak bytes :func:`prepare` and :func:`run` allocate for ``op`` beyond its kept data.

    int64 copies: the products' operands in golden and in the run (and golden's float
    copies), accumulators, their real values, the requantized and the run's output.
    """
    mm = op.gemm
    a = mm.count * mm.m * mm.k
    b = mm.count * mm.k * mm.n
    out = mm.count * mm.m * mm.n
    return 8 * (3 * a + 2 * b + 6 * out)
