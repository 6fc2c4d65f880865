"""Functional mode: execute a trace in the hardware's own tile order and check it against golden.

:func:`prepare` builds the data of a run once per trace and seed (it does not depend on
the config): int8 inputs (given or seeded random), per-op int8 weights, int32 biases
within the accumulator bound, real scales and the integer constants derived from them
with golden's own constant functions (``requant_constants``, ``softmax_constants``,
``gelu_int8_constants``, ``layernorm_constants``, ``residual_constants``,
``avgpool_constants``), and every op's golden output (``golden/``), each op computed on
the golden outputs of its producers.

:func:`run_functional` then executes every op with the simulator's Numba kernels, in
the order the hardware runs it on one config, and compares each output with golden bit
for bit:

* matrix ops (gemm, conv2d by im2col, dwconv2d per channel) are cut into exactly the
  GEMM-unit calls :func:`edgetron.sim.memory.plan_gemm` chose for the timing model;
  inside a call the array folds follow the dataflow (``ws``: per column tile, per
  reduction fold of ``rows`` PEs down a column, partial sums added into the int32
  accumulator buffer; ``os``: per output tile, each PE accumulating over the whole
  reduction; ``is``: the transposed ``ws``), the bias is added and the requantizer runs
  after the last fold; with a K split the calls emit int32 partial sums that the vector
  unit adds before requantizing. The number of calls is checked against the timing model.
* the vector ops run their passes (softmax: max, exp + sum, normalize; LayerNorm: the
  statistics pass, the per-row square root and reciprocal, the normalize pass; GELU,
  residual add, pools, concat).

Every accumulation is checked against the int32 range, never wrapped.

Operands follow the trace exactly (docs/trace-format.md): every operand is the row-major
reshape of its producer's (sliced) output into the op's ``in_shapes`` entry; a product
of two activations takes its per-head matrices from the declared layout
(:meth:`edgetron.workload.Gemm.product_view`: ``a_heads``, ``b_heads``, ``b_transposed``,
``out_heads``). Fused activations are golden's :func:`~edgetron.golden.quant.activation_clamp`
(the Numba requantizer clamps to golden's :func:`~edgetron.golden.quant.activation_bounds`),
and pools and convolutions take the trace's four paddings as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numba import njit

from edgetron.config import AcceleratorConfig
from edgetron.golden.conv import avgpool2d, avgpool_constants, conv2d_int, maxpool2d
from edgetron.golden.gelu import gelu_constants, gelu_int, gelu_int8_apply, gelu_int8_constants
from edgetron.golden.gemm import accumulator_bound, gemm_int, matmul_int
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    int_range,
    requantize,
)
from edgetron.golden.layernorm import (
    ISQRT_BITS,
    NORM_FRAC_BITS,
    RECIP_K,
    layernorm_constants,
    layernorm_int,
)
from edgetron.golden.quant import (
    activation_bounds,
    activation_clamp,
    activation_scale,
    requant_constants,
)
from edgetron.golden.residual import residual_add, residual_constants
from edgetron.golden.softmax import OUT_MAX, softmax_apply, softmax_constants
from edgetron.jitcache import is_compiled
from edgetron.workload import (
    Add,
    AvgPool,
    Concat,
    DwConv2d,
    Gelu,
    Gemm,
    LayerNorm,
    MaxPool,
    Op,
    Ref,
    Softmax,
    Trace,
)

from .conv import conv_weight_matrix, im2col_rows
from .engine import simulate
from .units.gemm import DATAFLOW_IS, DATAFLOW_OS, cdiv

__all__ = [
    "FunctionalData",
    "FunctionalResult",
    "OpCheck",
    "OpData",
    "kernels_compiled",
    "prepare",
    "run_functional",
]

#: Scale of seeded random external inputs (int8 values ~ N(0, INPUT_STD) are N(0, 1) reals).
INPUT_STD = 32.0
#: Range of the random per-channel weight scales, relative to ``1 / (127 sqrt(K))``.
_WSCALE_LO, _WSCALE_HI = 0.5, 1.5
#: Percentile of |real output| mapped to the int8 maximum when calibrating an output
#: scale: a few values saturate, so the saturation path is exercised too.
CALIBRATION_PERCENTILE = 99.9
#: Largest |bias| drawn (also bounded by the accumulator limit for the op's K).
_BIAS_MAX = 1 << 14
#: LayerNorm epsilon (timm's ViT).
_LN_EPS = 1e-6
#: Largest |normalized value| used to set a LayerNorm output scale (|x - mean| / std).
_LN_RANGE = 4.0


# ------------------------------------------------------------------------------------------
# Numba kernels: the GEMM unit
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _in_int32(v):
    """True when ``v`` fits the int32 accumulator (golden ``check_accumulator``'s range)."""
    return INT32_MIN <= v <= INT32_MAX


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
                    ok = ok and _in_int32(v)
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
                        ok = ok and _in_int32(v)
                    acc[i0 + i, j0 + c] = v
    return ok


@njit(cache=True)
def _call_is(a, w, m0, mt, k0, kt, n0, nt, rows, cols, acc):
    """One input-stationary call: the weight-stationary call of ``C^T = W^T A^T``.

    ``A^T`` is held in the array (tiles of ``cols`` rows of A, per fold of ``rows`` PEs)
    and the ``nt`` rows of ``W^T`` stream through it, as ``sim/units/gemm.py`` times it.
    """
    return _call_ws(w.T, a.T, n0, nt, k0, kt, m0, mt, rows, cols, acc.T)


@njit(cache=True)
def _requant(v, m, s, lo, hi):
    y = (v * m + (np.int64(1) << (s - 1))) >> s
    return min(max(y, lo), hi)


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
                            # A K split: the vector unit adds the int32 partial sums.
                            v += total[i, j]
                            ok = ok and _in_int32(v)
                            total[i, j] = v
                for i in range(msz):
                    for j in range(nsz):
                        v = total[i, j]
                        if out32 == 0:
                            v = _requant(v, mq[pi, n0 + j], sq[pi, n0 + j], lo, hi)
                        out[pi, m0 + i, n0 + j] = v
    return calls, ok


# ------------------------------------------------------------------------------------------
# Numba kernels: the vector unit
# ------------------------------------------------------------------------------------------
@njit(cache=True)
def _round_shift(x, s):
    if s <= 0:
        return x
    return (x + (np.int64(1) << (s - 1))) >> s


@njit(cache=True)
def _pow2_rescale(x, f):
    if f >= 0:
        return x << f
    return _round_shift(x, -f)


@njit(cache=True)
def softmax_rows(q, f, clamp_in, u_max, m_ln2, s_ln2, q_ln2, q_b, q_c, z_cap, exp_shift, k,
                 out_shift, out_max, out):
    """Softmax of every row of ``q`` in the unit's three passes (golden/softmax.py steps)."""
    rows, n = q.shape
    e = np.empty(n, dtype=np.int64)
    for i in range(rows):
        mx = q[i, 0]
        for j in range(1, n):  # pass 1: row maximum
            if q[i, j] > mx:
                mx = q[i, j]
        total = 0
        for j in range(n):  # pass 2: i-exp and the row sum
            u = min(_pow2_rescale(min(mx - q[i, j], clamp_in), f), u_max)
            z = (u * m_ln2) >> s_ln2
            t = q_b - (u - z * q_ln2)
            e[j] = (t * t + q_c) >> (min(z, z_cap) + exp_shift)
            total += e[j]
        factor = (np.int64(1) << k) // total  # one reciprocal per row
        for j in range(n):  # pass 3: normalize
            out[i, j] = min(_round_shift(e[j] * factor, out_shift), out_max)


@njit(cache=True)
def gelu_elems(x, f, clamp_in, clip, q_one, erf_shift, out_shift, out32, m, s, out):
    """i-GELU of every element (golden/gelu.py steps 1-7), then the int8 requantization."""
    flat = x.reshape(x.size)
    res = out.reshape(out.size)
    for i in range(flat.size):
        q = flat[i]
        u = min(_pow2_rescale(min(abs(q), clamp_in), f), clip)
        w = (clip - u) * (clip - u)
        sgn = 1 if q > 0 else (-1 if q < 0 else 0)
        r = q_one + sgn * (q_one - w)
        y = _round_shift(q * (r >> erf_shift), out_shift)
        if out32 == 0:
            y = _requant(y, m, s, INT8_MIN, INT8_MAX)
        res[i] = y


@njit(cache=True)
def _bit_length(v):
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@njit(cache=True)
def _isqrt(n):
    if n == 0:
        return 0
    x = np.int64(1) << ((_bit_length(n) + 1) // 2)
    while True:
        nxt = (x + n // x) >> 1
        if nxt >= x:
            return x
        x = nxt


@njit(cache=True)
def layernorm_rows(q, q_eps, gamma_int, beta_int, gamma_shift, out):
    """LayerNorm of every row: statistics pass, per-row isqrt and reciprocal, normalize pass."""
    rows, c = q.shape
    for i in range(rows):
        s1 = 0
        s2 = 0
        for j in range(c):  # pass 1: statistics
            s1 += q[i, j]
            s2 += q[i, j] * q[i, j]
        var = c * s2 - s1 * s1 + q_eps  # per-row scalar work
        p = (ISQRT_BITS - _bit_length(var)) // 2
        var_n = var << (2 * p) if p >= 0 else var >> (-2 * p)
        std = _isqrt(var_n)
        factor = (np.int64(1) << RECIP_K) // std if std > 0 else 0
        for j in range(c):  # pass 2: normalize and affine
            dev = c * q[i, j] - s1
            norm = _round_shift(dev * factor, RECIP_K - p - NORM_FRAC_BITS)
            acc = norm * gamma_int[j] + beta_int[j]
            out[i, j] = min(max(_round_shift(acc, gamma_shift + NORM_FRAC_BITS), INT8_MIN),
                            INT8_MAX)


@njit(cache=True)
def residual_elems(a, b, m_a, m_b, s, lo, hi, out):
    """``clamp(round_shift(a * m_a + b * m_b, s), lo, hi)`` element-wise."""
    fa = a.reshape(a.size)
    fb = b.reshape(b.size)
    res = out.reshape(out.size)
    for i in range(fa.size):
        res[i] = min(max(_round_shift(fa[i] * m_a + fb[i] * m_b, s), lo), hi)


@njit(cache=True)
def pool_nhwc(x, r, s, sh, sw, pt, pl, oh, ow, is_max, m, sq, out):
    """Max or average pool of an NHWC map, lanes over channels, one window element per beat."""
    n, h, w, c = x.shape
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    acc = INT8_MIN if is_max else 0  # golden pads max pools with INT8_MIN
                    for ry in range(r):
                        y = oy * sh + ry - pt
                        if y < 0 or y >= h:
                            continue
                        for sx in range(s):
                            xx = ox * sw + sx - pl
                            if xx < 0 or xx >= w:
                                continue
                            v = x[b, y, xx, ch]
                            if is_max:
                                acc = max(acc, v)
                            else:
                                acc += v
                    if not is_max:
                        acc = _requant(acc, m, sq, INT8_MIN, INT8_MAX)
                    out[b, oy, ox, ch] = acc


@njit(cache=True)
def copy_rows(src, dst, row0):
    """Copy ``src`` [batch, rows, cols] into ``dst`` rows ``row0 ..`` (the concat unit)."""
    bsz, rows, cols = src.shape
    for b in range(bsz):
        for i in range(rows):
            for j in range(cols):
                dst[b, row0 + i, j] = src[b, i, j]


# ------------------------------------------------------------------------------------------
# Data preparation (config-independent) and golden outputs
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class OpData:
    """Everything one op needs: operands, constants and its golden output.

    Attributes
    ----------
    operands : list of int64 arrays
        The op's activation operands in its own ``in_shapes``.
    params : dict
        Weights, biases and integer constants (kind-specific keys).
    golden : int64 array
        The golden output, shape ``op.out_shape``.
    out_scale : float
        Real scale of the output.
    """

    operands: list[np.ndarray]
    params: dict[str, Any]
    golden: np.ndarray
    out_scale: float


@dataclasses.dataclass
class FunctionalData:
    """Inputs, weights, constants and golden outputs of one trace (see :func:`prepare`)."""

    trace: Trace
    seed: int
    ops: list[OpData]


def _matrix(x: np.ndarray) -> np.ndarray:
    """Per-sample matrix view ``[batch, prod(shape[1:-1]), shape[-1]]``."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


def _slice(x: np.ndarray, ref: Ref) -> np.ndarray:
    if ref.rows is None and ref.cols is None:
        return x
    mat = _matrix(x)
    r0, r1 = ref.rows or (0, mat.shape[1])
    c0, c1 = ref.cols or (0, mat.shape[2])
    return mat[:, r0:r1, c0:c1]


def _products(op: Gemm, operand: str, x: np.ndarray) -> np.ndarray:
    """A stored activation operand (``"a"`` or ``"b"``) as ``[batch * count, rows, cols]``."""
    shape, axes = op.product_view(operand)
    p = x.reshape(shape).transpose(axes)
    return np.ascontiguousarray(p.reshape(-1, p.shape[2], p.shape[3]))


def _stored(op: Gemm, y: np.ndarray) -> np.ndarray:
    """Products ``[batch, count, m, n]`` (any leading split) in the op's ``out_shape``."""
    _, axes = op.product_view("out")
    return y.reshape(op.batch, op.count, op.m, op.n).transpose(np.argsort(axes)).reshape(
        op.out_shape)


def _operands(trace: Trace, i: int, outputs: list, external: Callable) -> list[np.ndarray]:
    """The operands of op ``i``: each producer's (sliced) output reshaped to ``in_shapes``."""
    op = trace[i]
    result = []
    for j, ref in enumerate(op.inputs):
        want = op.in_shapes[j]
        if ref.op is None:
            result.append(external(i, j, want))
            continue
        view = _slice(outputs[ref.op], ref).reshape(want)
        result.append(np.array(view, dtype=np.int64, order="C"))  # a copy, never a view
    return result


def _calibrate(real: np.ndarray) -> float:
    """Output scale mapping the CALIBRATION_PERCENTILE of |real| to 127 (1.0 if all zero)."""
    try:
        return activation_scale(real, percentile=CALIBRATION_PERCENTILE)
    except ValueError:
        return activation_scale(real) if np.any(real) else 1.0


def _bias(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    """Seeded int32 biases, ``|bias| <= _BIAS_MAX`` and within the accumulator bound for ``k``."""
    limit = min(_BIAS_MAX, INT32_MAX - accumulator_bound(k))
    return rng.integers(-limit, limit + 1, size=size).astype(np.int64)


def _weight_scales(rng: np.random.Generator, n: int, k: int, per_channel: bool) -> np.ndarray:
    """Random weight scales ``U(0.5, 1.5) / (127 sqrt(k))``: real outputs stay O(inputs)."""
    base = INT8_MAX * np.sqrt(k)
    if per_channel:
        return rng.uniform(_WSCALE_LO, _WSCALE_HI, size=n) / base
    return np.full(n, rng.uniform(_WSCALE_LO, _WSCALE_HI) / base)


def _int8(rng: np.random.Generator, size) -> np.ndarray:
    """Seeded uniform int8 values (weights, constant operands) as int64."""
    return rng.integers(INT8_MIN, INT8_MAX + 1, size=size).astype(np.int64)


def _prepare_gemm(op: Op, ops_in: list[np.ndarray], scales: list[float],
                    rng: np.random.Generator) -> OpData:
    """Gemm, conv2d and dwconv2d: weights, bias, (m, s) and the golden output."""
    per_channel = op.requant == "channel"
    # A product of two activations has one per-tensor scale for its whole output.
    activations = isinstance(op, Gemm) and not op.weights
    x = ops_in[0]
    if isinstance(op, Gemm):
        if op.weights:
            w = _int8(rng, (op.count, op.k, op.n))
            sw = _weight_scales(rng, op.count * op.n, op.k, per_channel).reshape(op.count, op.n)
            a = x.reshape(op.batch, op.count, op.m, op.k)
            acc = np.stack([gemm_int(a[:, c].reshape(-1, op.k), w[c])
                            for c in range(op.count)])  # [count, batch*m, n]
        else:
            w = None
            sw = np.full((op.count, op.n), scales[1])
            acc = matmul_int(_products(op, "a", x),
                             _products(op, "b", ops_in[1]))  # [batch*count, m, n]
        bias = (_bias(rng, op.k, op.count * op.n).reshape(op.count, op.n) if op.bias
                else np.zeros((op.count, op.n), dtype=np.int64))
        acc = acc + (np.tile(bias, (op.batch, 1)) if activations else bias)[:, None, :]
        gemm_w = w
        real_mult = scales[0] * op.scale
    else:
        groups = op.c if isinstance(op, DwConv2d) else op.groups
        cg = op.c // groups
        w = _int8(rng, (op.k, cg, op.r, op.s))
        sw_flat = _weight_scales(rng, op.k, cg * op.r * op.s, per_channel)
        bias_flat = _bias(rng, cg * op.r * op.s, op.k) if op.bias else np.zeros(
            op.k, dtype=np.int64)
        pad = (op.pad_top, op.pad_bottom, op.pad_left, op.pad_right)
        accn = conv2d_int(x.transpose(0, 3, 1, 2), w, bias_flat, (op.stride_h, op.stride_w),
                          pad, groups)
        acc_nhwc = accn.transpose(0, 2, 3, 1)  # [n, oh, ow, k]
        kg = op.k // groups
        acc = acc_nhwc.reshape(-1, groups, kg).transpose(1, 0, 2)  # [groups, M, kg]
        sw = sw_flat.reshape(groups, kg)
        bias = bias_flat.reshape(groups, kg)
        gemm_w = conv_weight_matrix(w, groups)
        real_mult = scales[0]
    if op.requant == "none":
        mq = np.zeros_like(bias)
        sq = np.ones_like(bias)
        out_scale = real_mult * float(sw.flat[0])
        y = acc
        lo, hi = int_range(op.out_bits)
    elif activations:
        real = acc.astype(np.float64) * (real_mult * float(sw[0, 0]))
        out_scale = _calibrate(real)
        m1, s1 = requant_constants(real_mult, float(sw[0, 0]), out_scale)
        mq = np.full_like(bias, m1)
        sq = np.full_like(bias, s1)
        y = activation_clamp(requantize(acc, m1, s1, op.out_bits), op.act, out_scale,
                             op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    else:
        real = acc.astype(np.float64) * (real_mult * sw)[:, None, :]
        out_scale = _calibrate(real)
        mflat, sflat = requant_constants(real_mult, sw.ravel(), out_scale)
        mq = mflat.reshape(bias.shape)
        sq = sflat.reshape(bias.shape)
        y = activation_clamp(requantize(acc, mq[:, None, :], sq[:, None, :], op.out_bits),
                             op.act, out_scale, op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    # Back to the op's output layout.
    if isinstance(op, Gemm):
        if op.weights:
            y = y.reshape(op.count, op.batch, op.m, op.n).transpose(1, 0, 2, 3)
        golden = _stored(op, y)
    else:
        golden = y.transpose(1, 0, 2).reshape(op.out_shape)
    params = {"w": gemm_w, "bias": bias, "m": mq, "s": sq, "lo": lo, "hi": hi}
    return OpData(ops_in, params, np.ascontiguousarray(golden), out_scale)


def _prepare_vector(op: Op, ops_in: list[np.ndarray], scales: list[float],
                    rng: np.random.Generator) -> OpData:
    x = ops_in[0]
    s_in = scales[0] if scales else 1.0
    if isinstance(op, Softmax):
        consts = softmax_constants(s_in)
        return OpData(ops_in, {"c": consts}, softmax_apply(x, consts), consts.out_scale)
    if isinstance(op, LayerNorm):
        gamma = rng.uniform(0.5, 1.5, size=op.cols)
        beta = rng.normal(0.0, 0.2, size=op.cols) if op.bias else np.zeros(op.cols)
        out_scale = (np.abs(gamma).max() * _LN_RANGE + np.abs(beta).max()) / INT8_MAX
        consts = layernorm_constants(gamma, beta, s_in, out_scale, _LN_EPS, op.in_bits)
        return OpData(ops_in, {"c": consts}, layernorm_int(x, consts), out_scale)
    if isinstance(op, Gelu):
        if op.requant == "none":
            consts = gelu_constants(s_in, op.in_bits)
            return OpData(ops_in, {"c": consts, "int8": None}, gelu_int(x, s_in, op.in_bits),
                          consts.out_scale)
        real = x.astype(np.float64) * s_in
        out_scale = _calibrate(np.maximum(real, 0.0))
        c8 = gelu_int8_constants(s_in, out_scale, op.in_bits)
        return OpData(ops_in, {"c": c8.gelu, "int8": c8}, gelu_int8_apply(x, c8), out_scale)
    if isinstance(op, Add):
        if op.requant == "none":
            raise ValueError("functional mode: an add with requant 'none' has no golden kernel")
        if op.weights:
            const = _int8(rng, op.shape[1:])
            b = np.broadcast_to(const, x.shape).copy()
            s_b = s_in
        else:
            b = ops_in[1]
            s_b = scales[1]
        real = x * s_in + b * s_b
        out_scale = _calibrate(real)
        rc = residual_constants(s_in, s_b, out_scale)
        y = activation_clamp(residual_add(x, b, rc.m_a, rc.m_b, rc.s), op.act, out_scale,
                             op.out_bits)
        lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
        return OpData(ops_in, {"b": b, "rc": rc, "lo": lo, "hi": hi}, y, out_scale)
    if isinstance(op, (MaxPool, AvgPool)):
        xn = x.transpose(0, 3, 1, 2)
        pad = (op.pad_top, op.pad_bottom, op.pad_left, op.pad_right)
        stride = (op.stride_h, op.stride_w)
        if isinstance(op, MaxPool):
            y = maxpool2d(xn, (op.r, op.s), stride, pad)
            return OpData(ops_in, {"m": 0, "s": 1}, y.transpose(0, 2, 3, 1), s_in)
        m, s = avgpool_constants(op.r * op.s)
        y = avgpool2d(xn, (op.r, op.s), stride, pad, m, s)
        return OpData(ops_in, {"m": m, "s": s}, y.transpose(0, 2, 3, 1), s_in)
    if isinstance(op, Concat):
        const = _int8(rng, (op.const_rows, op.cols))
        parts = [np.broadcast_to(const, (op.batch, op.const_rows, op.cols))]
        parts += [v.reshape(op.batch, -1, op.cols) for v in ops_in]
        return OpData(ops_in, {"const": const}, np.concatenate(parts, axis=1), s_in)
    raise ValueError(f"functional mode: unsupported kind {op.kind!r}")  # pragma: no cover


def prepare(trace: Trace, *, seed: int = 0,
            inputs: Mapping[int, np.ndarray] | np.ndarray | None = None,
            progress: Callable[[int], None] | None = None) -> FunctionalData:
    """Data, constants and golden outputs of every op of ``trace`` (config-independent).

    Parameters
    ----------
    trace : Trace
    seed : int
        Seed of every random tensor (inputs, weights, biases, weight scales).
    inputs : array or mapping, optional
        int8 data for the ops' external inputs (``"input"``): one array for every external
        input (each must have its shape), or ``{op index: array}`` for some ops. Missing
        ones are seeded random int8 (``~ N(0, INPUT_STD)``, rounded and clipped).
    progress : callable, optional
        Called with 1 after each op.

    Raises
    ------
    TypeError
        ``trace`` is not a Trace.
    ValueError
        A negative or non-integer seed, given inputs of the wrong shape or outside int8, or
        an op functional mode cannot check (named).
    """
    if not isinstance(trace, Trace):
        raise TypeError(f"expected an edgetron.workload.Trace, got {type(trace).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)

    def external(i: int, j: int, shape: tuple[int, ...]) -> np.ndarray:
        given = inputs.get(i) if isinstance(inputs, Mapping) else inputs
        if given is not None:
            arr = np.asarray(given)
            if not np.issubdtype(arr.dtype, np.integer) or arr.shape != tuple(shape):
                raise ValueError(
                    f"op {i} ({trace[i].name!r}): inputs[{j}] must be integers of shape "
                    f"{list(shape)}, got {arr.dtype} {list(arr.shape)}"
                )
            if arr.size and (arr.min() < INT8_MIN or arr.max() > INT8_MAX):
                raise ValueError(f"op {i} ({trace[i].name!r}): inputs[{j}] must be int8 values")
            return arr.astype(np.int64)
        return np.clip(np.rint(rng.normal(0.0, INPUT_STD, size=shape)), INT8_MIN,
                       INT8_MAX).astype(np.int64)

    outputs: list[np.ndarray] = []
    out_scales: list[float] = []
    ops: list[OpData] = []
    for i, op in enumerate(trace):
        operands = _operands(trace, i, outputs, external)
        scales = [1.0 / INPUT_STD if ref.op is None else out_scales[ref.op]
                  for ref in op.inputs]
        try:
            if op.unit == "array":
                data = _prepare_gemm(op, operands, scales, rng)
            else:
                data = _prepare_vector(op, operands, scales, rng)
        except ValueError as exc:
            raise ValueError(f"op {i} ({op.name!r}, {op.kind}): {exc}") from None
        ops.append(data)
        outputs.append(data.golden)
        out_scales.append(data.out_scale)
        if progress is not None:
            progress(1)
    return FunctionalData(trace, seed, ops)


# ------------------------------------------------------------------------------------------
# Running the simulator's kernels
# ------------------------------------------------------------------------------------------
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
                f"  op {c.index} ({c.name!r}, {c.kind}): {c.mismatches} of {c.elements} values "
                f"differ, first at {c.first_mismatch}; GEMM-unit calls {c.calls} "
                f"(timing model {c.expected_calls})"
            )
        return "\n".join(lines)


def _run_gemm(op: Op, d: OpData, p: Any,
                tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run a matrix op as the GEMM-unit calls of ``tile``: ``(output, calls, ok)``.

    ``ok`` is False when an accumulation left the int32 range.
    """
    x = d.operands[0]
    prm = d.params
    mt, kt, nt = tile
    out32 = int(op.requant == "none")
    if isinstance(op, Gemm):
        if op.weights:
            a = np.ascontiguousarray(
                x.reshape(op.batch, op.count, op.m, op.k).transpose(1, 0, 2, 3)
                .reshape(op.count, op.batch * op.m, op.k))
            w = prm["w"]
            bias, mq, sq = prm["bias"], prm["m"], prm["s"]
        else:
            a = _products(op, "a", x)
            w = _products(op, "b", d.operands[1])
            reps = (op.batch, 1)
            bias, mq, sq = (np.tile(prm[key], reps) for key in ("bias", "m", "s"))
        out = np.empty((a.shape[0], a.shape[1], w.shape[2]), dtype=np.int64)
        calls, ok = gemm_tiled(a, w, bias, mq, sq, out32, prm["lo"], prm["hi"], mt, kt, nt,
                               p.rows, p.cols, p.dataflow, out)
        if op.weights:
            out = out.reshape(op.count, op.batch, op.m, op.n).transpose(1, 0, 2, 3)
        result = _stored(op, out)
    else:
        groups = op.c if isinstance(op, DwConv2d) else op.groups
        cg = op.c // groups
        xpad = np.ascontiguousarray(np.pad(
            x, ((0, 0), (op.pad_top, op.pad_bottom), (op.pad_left, op.pad_right), (0, 0))))
        mdim = op.n * op.out_h * op.out_w
        kdim = cg * op.r * op.s
        a = np.empty((groups, mdim, kdim), dtype=np.int64)
        for g in range(groups):
            a[g] = im2col_rows(xpad, g, cg, op.r, op.s, op.stride_h, op.stride_w, op.out_h,
                               op.out_w, 0, mdim, 0, kdim)
        out = np.empty((groups, mdim, op.k // groups), dtype=np.int64)
        calls, ok = gemm_tiled(a, prm["w"], prm["bias"], prm["m"], prm["s"], out32, prm["lo"],
                               prm["hi"], mt, kt, nt, p.rows, p.cols, p.dataflow, out)
        result = out.transpose(1, 0, 2).reshape(op.out_shape)
    return result, calls, ok


def _run_vector(op: Op, d: OpData) -> np.ndarray:
    x = d.operands[0]
    prm = d.params
    out = np.empty(op.out_shape, dtype=np.int64)
    if isinstance(op, Softmax):
        c = prm["c"]
        e = c.iexp
        softmax_rows(x.reshape(-1, op.cols), e.pre_shift, e.clamp_in, e.u_max, e.m_ln2,
                     e.s_ln2, e.q_ln2, e.q_b, e.q_c, c.z_cap, c.exp_shift, c.k, c.out_shift,
                     OUT_MAX, out.reshape(-1, op.cols))
    elif isinstance(op, LayerNorm):
        c = prm["c"]
        layernorm_rows(x.reshape(-1, op.cols), c.q_eps, c.gamma_int, c.beta_int,
                       c.gamma_shift, out.reshape(-1, op.cols))
    elif isinstance(op, Gelu):
        c = prm["c"]
        c8 = prm["int8"]
        gelu_elems(x, c.pre_shift, c.clamp_in, c.clip, c.q_one, c.erf_shift, c.out_shift,
                   int(c8 is None), 0 if c8 is None else c8.m, 1 if c8 is None else c8.s, out)
    elif isinstance(op, Add):
        rc = prm["rc"]
        residual_elems(x, prm["b"], rc.m_a, rc.m_b, rc.s, prm["lo"], prm["hi"], out)
    elif isinstance(op, (MaxPool, AvgPool)):
        pool_nhwc(x, op.r, op.s, op.stride_h, op.stride_w, op.pad_top, op.pad_left, op.out_h,
                  op.out_w, isinstance(op, MaxPool), prm["m"], prm["s"], out)
    else:
        const = np.ascontiguousarray(
            np.broadcast_to(prm["const"], (op.batch, op.const_rows, op.cols)))
        copy_rows(const, out, 0)
        row0 = op.const_rows
        for v in d.operands:
            src = np.ascontiguousarray(v.reshape(op.batch, -1, op.cols))
            copy_rows(src, out, row0)
            row0 += src.shape[1]
    return out


def kernels_compiled() -> bool:
    """Whether Numba's on-disk cache holds :func:`gemm_tiled`, fresh.

    Returns
    -------
    bool
        False when the first :func:`run_functional` of the process will compile
        ``gemm_tiled``, which runs every matrix op and is the bulk of functional mode's
        compile time (:func:`edgetron.jitcache.is_compiled`).
    """
    return is_compiled(gemm_tiled)


def run_functional(
    data: FunctionalData | Trace,
    cfg: AcceleratorConfig,
    *,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> FunctionalResult:
    """Execute every op in the hardware's tile order on ``cfg`` and compare with golden.

    Parameters
    ----------
    data : FunctionalData or Trace
        From :func:`prepare` (reusable across configs), or a trace to prepare with
        ``seed``.
    cfg : AcceleratorConfig
    seed : int
        Used when ``data`` is a trace.
    progress : callable, optional
        Called with 1 after each op.

    Returns
    -------
    FunctionalResult
        ``ok`` when every op is bit-exact and every matrix op made exactly the GEMM-unit
        calls the timing model counts.
    """
    if isinstance(data, Trace):
        data = prepare(data, seed=seed)
    if not isinstance(data, FunctionalData):
        raise TypeError(f"expected FunctionalData or a Trace, got {type(data).__name__}")
    timing = simulate(data.trace, cfg)
    p = cfg.sim_params()
    checks = []
    for i, (op, d) in enumerate(zip(data.trace, data.ops, strict=True)):
        row = timing.ops[i].values
        calls = expected = 0
        if op.unit == "array":
            tile = (row["tile_m"], row["tile_k"], row["tile_n"])
            got, calls, ok = _run_gemm(op, d, p, tile)
            if not ok:
                raise ValueError(f"op {i} ({op.name!r}, {op.kind}): an int32 accumulation "
                                 "left the int32 range")
            expected = row["calls"]
        else:
            got = _run_vector(op, d)
        diff = np.flatnonzero(got.ravel() != d.golden.ravel())
        first = None
        if diff.size:
            first = tuple(int(v) for v in np.unravel_index(int(diff[0]), got.shape))
        checks.append(OpCheck(i, op.name, op.kind, int(got.size), int(diff.size), first,
                              int(calls), int(expected)))
        if progress is not None:
            progress(1)
    return FunctionalResult(data.trace.name, cfg.name, cfg.dataflow, tuple(checks))

