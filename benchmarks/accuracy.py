"""Accuracy of the golden integer kernels against float64 references.

Measures every row of the accuracy-target table of ``docs/integer-kernels.md``
("Accuracy targets") and prints it with its target and PASS/FAIL, then one
``name: value unit`` line per headline figure (for scripts). Deterministic: every
random draw has a fixed seed.

Usage::

    python benchmarks/accuracy.py            # the whole table (3 to 15 s, with the load)

From a script, load this file and call :func:`measure` (a list of :class:`Row`)
or :func:`main`; it depends only on NumPy and ``edgetron.golden``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgetron.golden import models, reference
from edgetron.golden.gelu import gelu_constants, gelu_int
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    M_MAX,
    S_MAX,
    S_MIN,
    requantize,
)
from edgetron.golden.layernorm import isqrt, layernorm_constants, layernorm_int
from edgetron.golden.softmax import EXP_A, EXP_B, EXP_C, i_exp, iexp_constants, softmax_int

__all__ = ["Figure", "Row", "format_table", "main", "measure"]

_LN2 = math.log(2.0)
_erf = np.vectorize(math.erf, otypes=[np.float64])  # independent of reference.erf


@dataclass(frozen=True)
class Figure:
    """One headline figure: printed as ``name: value unit``."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True)
class Row:
    """One row of the accuracy table."""

    kernel: str
    measure: str
    result: str  #: the measured value(s), formatted
    target: str
    passed: bool | None  #: None for an informational row without a target
    figures: tuple[Figure, ...]


# ---- float references --------------------------------------------------------------------
def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    return x / 2 * (1 + _erf(x / math.sqrt(2.0)))


def _layernorm(x: np.ndarray, gamma, beta, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- rows -----------------------------------------------------------------------------
#: Input scales for the i-exp sweep: 64 internal scales across the octave (2**-13, 2**-12]
#: that every input scale is mapped into, plus typical int8 / int32 input scales.
_IEXP_SCALES = [2.0**-12 * 2.0 ** (-i / 64) for i in range(64)] + [4 / 127, 14 / 127, 1e-4,
                                                                    7.3e-5, 1e-6]


def row_iexp() -> Row:
    worst = 0.0
    for scale in _IEXP_SCALES:
        c = iexp_constants(scale)
        q = np.arange(-math.ceil(_LN2 / scale) + 1, 1)  # q * scale in (-ln2, 0]
        err = np.abs(i_exp(q, scale) * c.out_scale - np.exp(q * scale))
        worst = max(worst, float(err.max()))
    p = np.linspace(-_LN2, 0.0, 100_001)[1:]
    poly = float(np.abs(EXP_A * (p + EXP_B) ** 2 + EXP_C - np.exp(p)).max())
    return Row(
        "i-exp polynomial",
        f"max abs error on (-ln2, 0], {len(_IEXP_SCALES)} input scales "
        f"(float polynomial alone: {poly:.3e})",
        f"{worst:.3e}", "<= 2.2e-3", worst <= 2.2e-3,
        (Figure("iexp_max_abs_error", worst, "abs"),),
    )


def row_softmax(sigma: float) -> Row:
    rng = np.random.default_rng(100 + int(sigma))
    x = rng.normal(0.0, sigma, size=(2000, 197))
    worst, per = 0.0, []
    for kind, full in (("int8", INT8_MAX), ("int16", 2**15 - 1), ("int32", 2**30)):
        scale = float(np.abs(x).max()) / full
        q = np.round(x / scale).astype(np.int64)
        err = float(np.abs(softmax_int(q, scale) / 128 - _softmax(q * scale)).max())
        per.append(f"{kind} {err:.2e}")
        worst = max(worst, err)
    target = 1 / 128 + 2.5e-3
    return Row(
        f"softmax, 2000 rows of 197 logits ~ N(0, {sigma:g}^2)",
        "max abs error of probabilities vs float64 softmax of the same logits ("
        + ", ".join(per) + ")",
        f"{worst:.2e}", f"<= {target:.2e}", worst <= target,
        (Figure(f"softmax_max_abs_error_sigma{sigma:g}", worst, "abs"),),
    )


def row_gelu() -> Row:
    linf = rms = 0.0
    per = []
    for scale, bits in ((4 / 127, 8), (4 / 32767, 16), (1e-4, 32)):
        n = math.floor(4 / scale)
        q = np.arange(-n, n + 1, dtype=np.int64)  # every representable input in [-4, 4]
        y = gelu_int(q, scale, bits) * gelu_constants(scale, bits).out_scale
        err = y - _gelu(q * scale)
        e_inf, e_rms = float(np.abs(err).max()), float(np.sqrt(np.mean(err**2)))
        per.append(f"int{bits}: {e_inf:.4f} / {e_rms:.4f}")
        linf, rms = max(linf, e_inf), max(rms, e_rms)
    return Row(
        "i-GELU on [-4, 4]",
        "L-inf / RMS error vs exact GELU, every input of the grid (" + "; ".join(per) + ")",
        f"{linf:.4f} / {rms:.4f}", "<= 0.02 / <= 0.009", linf <= 0.02 and rms <= 0.009,
        (Figure("gelu_linf_error", linf, "abs"), Figure("gelu_rms_error", rms, "abs")),
    )


def _floor_sqrt_mismatches(n: np.ndarray, r: np.ndarray) -> int:
    return int(np.count_nonzero((r * r > n) | ((r + 1) * (r + 1) <= n)))


def row_isqrt() -> Row:
    n = np.arange(1 << 20, dtype=np.int64)
    r, it_a = isqrt(n, return_iterations=True)
    bad = _floor_sqrt_mismatches(n, r)
    rnd = np.random.default_rng(2021).integers(0, 1 << 32, size=10**6, dtype=np.int64)
    r2, it_b = isqrt(rnd, return_iterations=True)
    bad += _floor_sqrt_mismatches(rnd, r2)
    total = n.size + rnd.size
    return Row(
        "isqrt",
        f"exact floor(sqrt(n)): all n < 2^20 and 10^6 random 32-bit n ({total:,} values; "
        f"Newton updates at most {int(it_a.max())} / {int(it_b.max())})",
        f"{bad} wrong", "0 wrong", bad == 0,
        (Figure("isqrt_mismatches", bad, "values"),),
    )


def row_layernorm() -> Row:
    rng = np.random.default_rng(7)
    eps, total, over1, worst = 1e-6, 0, 0, 0
    for spread, offset in ((20, 0), (2, 30), (45, -10), (0.7, 5), (8, 0)):
        for _ in range(4):
            q = np.clip(np.round(rng.normal(offset, spread, (1000, 192))), INT8_MIN, INT8_MAX)
            q[:, :2] = np.clip(q[:, :2] * 4, INT8_MIN, INT8_MAX)  # outlier channels
            q = q.astype(np.int64)
            gamma, beta = rng.normal(1.0, 0.3, 192), rng.normal(0.0, 0.3, 192)
            s_in = float(rng.uniform(0.005, 0.2))
            y = _layernorm(q * s_in, gamma, beta, eps)
            s_out = float(np.abs(y).max()) / INT8_MAX
            c = layernorm_constants(gamma, beta, s_in, s_out, eps=eps)
            want = np.clip(np.round(y / s_out), INT8_MIN, INT8_MAX)
            diff = np.abs(layernorm_int(q, c) - want)
            total += diff.size
            over1 += int(np.count_nonzero(diff > 1))
            worst = max(worst, int(diff.max()))
    within = 100.0 * (total - over1) / total
    return Row(
        "LayerNorm, int8 output (192 channels)",
        f"vs float64 LayerNorm quantized at the same scale, {total:,} elements",
        f"{within:.3f} % within 1 LSB, max {worst} LSB",
        ">= 99.9 % within 1 LSB, max <= 2 LSB", within >= 99.9 and worst <= 2,
        (Figure("layernorm_within_1lsb", within, "%"),
         Figure("layernorm_max_error", worst, "lsb")),
    )


def _requant_cases(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (acc, m, s): uniform, in the non-saturating region, exact ties, and extremes."""
    n = 1_000_000
    acc = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
    m = rng.integers(0, M_MAX, size=n, endpoint=True)
    s = rng.integers(S_MIN, S_MAX, size=n, endpoint=True)
    # Half of them with a shift that lands the result within about +-2**8 (rounding region).
    half = n // 2
    prod_bits = np.array([abs(int(a) * int(b)).bit_length() for a, b in zip(acc[:half], m[:half],
                                                                          strict=True)])
    s[:half] = np.clip(prod_bits - rng.integers(0, 9, size=half), S_MIN, S_MAX)
    # Exact ties: acc * m = (2k + 1) * 2**(s-1).
    t = 50_000
    st_ = rng.integers(S_MIN, 31, size=t)
    k = rng.integers(-200, 200, size=t)
    tie_acc = (2 * k + 1) << (st_ - 1)
    ok = (tie_acc >= INT32_MIN) & (tie_acc <= INT32_MAX)
    ext_acc = np.array([INT32_MIN, INT32_MIN + 1, -(2**30), -1, 0, 1, 2**30, INT32_MAX - 1,
                        INT32_MAX])
    ext_m = np.array([0, 1, 2, 2**30, M_MAX - 1, M_MAX])
    ext_s = np.array([S_MIN, 2, 30, 31, 32, 61, S_MAX])
    ea, em, es = (g.ravel() for g in np.meshgrid(ext_acc, ext_m, ext_s, indexing="ij"))
    return (np.concatenate([acc, tie_acc[ok], ea]),
            np.concatenate([m, np.ones(int(ok.sum()), dtype=np.int64), em]),
            np.concatenate([s, st_[ok], es]))


def row_requantize() -> Row:
    acc, m, s = _requant_cases(np.random.default_rng(31))
    got = requantize(acc, m, s).tolist()
    bad = inside = 0
    for a, mm, ss, y in zip(acc.tolist(), m.tolist(), s.tolist(), got, strict=True):
        exact = (2 * a * mm + (1 << ss)) // (1 << (ss + 1))  # floor(a*m/2**s + 1/2), rational
        inside += INT8_MIN <= exact <= INT8_MAX
        bad += y != min(INT8_MAX, max(INT8_MIN, exact))
    return Row(
        "requantize",
        f"vs exact rational round-half-up + saturation, {len(got):,} (acc, m, s) incl. "
        f"{inside:,} unsaturated, exact ties and all extremes",
        f"{bad} wrong", "0 wrong", bad == 0,
        (Figure("requantize_mismatches", bad, "cases"),),
    )


def row_vit_block() -> Row:
    rng = np.random.default_rng(2024)
    p = reference.random_encoder_block(rng)  # ViT-Tiny: embed 192, 3 heads, MLP 768
    m = models.calibrate(p, rng.normal(size=(197, 192)))
    cos = []
    for _ in range(4):  # fresh N(0, 1) inputs, not the calibration sample
        x = rng.normal(size=(197, 192))
        y = models.dequantize_output(m, models.forward_int(m, models.quantize_input(m, x)))
        cos.append(_cosine(y, reference.encoder_block(p, x)))
    worst = min(cos)
    return Row(
        "integer ViT-Tiny encoder block",
        "cosine similarity of the dequantized output vs the float64 block; random Xavier "
        "weights, scales calibrated on one N(0,1) input, min over 4 other N(0,1) inputs",
        f"{worst:.5f}", ">= 0.99", worst >= 0.99,
        (Figure("vit_block_cosine", worst, "cosine"),),
    )


def row_vit_model() -> Row:
    rng = np.random.default_rng(7)
    p = reference.random_vit(rng)
    m = models.calibrate(p, rng.normal(size=(1, 3, 224, 224)))
    x = rng.normal(size=(2, 3, 224, 224))
    y = models.dequantize_output(m, models.forward_int(m, models.quantize_input(m, x)))
    cos = min(_cosine(y[i], reference.vit_forward(p, x[i:i + 1])) for i in range(2))
    return Row(
        "integer ViT-Tiny, 12 blocks (info)",
        "cosine similarity of the dequantized logits vs the float64 model; random weights, "
        "calibrated on one N(0,1) image, min over 2 other images (no target in the spec)",
        f"{cos:.4f}", "-", None,
        (Figure("vit_model_logits_cosine", cos, "cosine"),),
    )


ROWS: tuple[Callable[[], Row], ...] = (
    row_iexp,
    lambda: row_softmax(1),
    lambda: row_softmax(2),
    lambda: row_softmax(4),
    row_gelu,
    row_isqrt,
    row_layernorm,
    row_requantize,
    row_vit_block,
    row_vit_model,
)


def measure() -> list[Row]:
    """Measure every row of the accuracy table (deterministic; 3 to 15 s)."""
    return [row() for row in ROWS]


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table followed by the ``name: value unit`` lines."""
    lines = ["| kernel | measure | result | target | verdict |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        verdict = "info" if r.passed is None else ("PASS" if r.passed else "FAIL")
        lines.append(f"| {r.kernel} | {r.measure} | {r.result} | {r.target} | {verdict} |")
    lines.append("")
    for r in rows:
        for f in r.figures:
            value = f"{f.value:.6g}" if isinstance(f.value, float) else str(f.value)
            lines.append(f"{f.name}: {value} {f.unit}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table; exit status 1 if any target is missed."""
    if argv:
        print("usage: python benchmarks/accuracy.py (no arguments)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = measure()
    print(f"golden kernel accuracy (float64 references; {time.perf_counter() - start:.1f} s)\n")
    print(format_table(rows))
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
