"""Speed of the golden integer models next to NumPy float, measured side by side in one run.

Two ratios (issue 2, item 6), each the median of 5 interleaved samples:

* int8 GEMM 197x192x768 (:func:`edgetron.golden.gemm.gemm_int`: int8 activations
  as the kernels produce them (int64 arrays), ``np.int8`` weights, int32 bias)
  over a float32 NumPy matmul of the same shape; target <= 3x. A sample is the
  mean of 50 calls.
* the whole 12-block integer ViT-Tiny forward
  (:func:`edgetron.golden.models.forward_int`, one 224x224 image) over the
  float64 reference forward (:func:`edgetron.golden.reference.vit_forward`);
  target <= 5x.

Measurement conditions. By default the run pins OpenBLAS to one thread
(``OPENBLAS_NUM_THREADS=1``, set before NumPy loads, unless already set) and
turns off glibc's heap trimming (``mallopt``), because on a small shared
machine (2 cores, other jobs running) a second BLAS thread that busy-waits
between calls and the page faults of re-mapping freed arrays dominate both
sides and make the ratios a measure of the machine's load. ``--no-pin``
measures with the process defaults instead. Both sides of each ratio always
run under the same conditions; the output says which.

Usage::

    python benchmarks/golden_speed.py [--no-pin]

The output ends with one ``name: value unit`` line per figure.
"""

from __future__ import annotations

import os
import sys

_PIN = "--no-pin" not in sys.argv[1:]
if _PIN and __name__ == "__main__":  # must happen before NumPy loads OpenBLAS
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from edgetron.golden import models, reference  # noqa: E402
from edgetron.golden.dyadic import requant_constants  # noqa: E402
from edgetron.golden.gemm import gemm_int, gemm_requant  # noqa: E402

__all__ = ["Ratio", "main", "measure", "pin_allocator"]

REPEATS = 5
GEMM_SHAPE = (197, 192, 768)  # M, K, N: ViT-Tiny fc1
GEMM_CALLS = 50
#: glibc mallopt parameters (malloc.h) and the largest mmap threshold glibc accepts (64-bit).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20


@dataclass(frozen=True)
class Ratio:
    """One side-by-side measurement: integer time / float time against a target."""

    name: str  #: prefix of the ``name: value unit`` lines
    what: str
    int_s: float  #: median seconds, integer golden
    float_s: float  #: median seconds, float baseline
    target: float

    @property
    def ratio(self) -> float:
        return self.int_s / self.float_s

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


def pin_allocator() -> str:
    """Stop glibc from returning freed heap memory to the OS (no re-faulting of pages).

    Returns a description of what was done, for the output.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
    except (OSError, AttributeError, TypeError):
        ok = False
    return "heap trimming off (glibc mallopt)" if ok else "allocator defaults (no glibc mallopt)"


def _median_times(fns: list[Callable[[], object]], calls: int) -> list[float]:
    """Median over REPEATS samples of the mean time per call, samples interleaved."""
    for fn in fns:
        fn()  # warm-up: caches, BLAS threads, allocator
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(REPEATS):
        for fn, out in zip(fns, samples, strict=True):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            out.append((time.perf_counter() - t0) / calls)
    return [statistics.median(s) for s in samples]


def measure() -> tuple[list[Ratio], dict[str, float]]:
    """Measure both ratios; also return informational timings (seconds)."""
    rng = np.random.default_rng(0)
    m_, k_, n_ = GEMM_SHAPE
    a = rng.integers(-128, 128, size=(m_, k_))  # int64, as the kernels return activations
    w = rng.integers(-128, 128, size=(k_, n_)).astype(np.int8)
    bias = rng.integers(-(2**20), 2**20, size=n_)
    mq, sq = requant_constants(0.03, np.full(n_, 0.002), 0.05)
    a32, w32 = a.astype(np.float32), w.astype(np.float32)
    t_int, t_f32, t_req = _median_times(
        [lambda: gemm_int(a, w, bias), lambda: np.matmul(a32, w32),
         lambda: gemm_requant(a, w, bias, mq, sq)],
        GEMM_CALLS,
    )
    gemm = Ratio("gemm", f"int8 GEMM {m_}x{k_}x{n_} (gemm_int, int32 bias) / float32 matmul",
                 t_int, t_f32, 3.0)

    p = reference.random_vit(np.random.default_rng(1))  # ViT-Tiny, 12 blocks
    img = np.random.default_rng(2).normal(size=(1, 3, 224, 224))
    t0 = time.perf_counter()
    model = models.calibrate(p, img)
    t_cal = time.perf_counter() - t0
    q = models.quantize_input(model, img)
    t_vi, t_vf = _median_times(
        [lambda: models.forward_int(model, q), lambda: reference.vit_forward(p, img)], 1
    )
    vit = Ratio("vit_forward", "ViT-Tiny 12-block forward, 1 image (forward_int) / float64 "
                "reference (vit_forward)", t_vi, t_vf, 5.0)
    return [gemm, vit], {"gemm_requant": t_req, "calibrate": t_cal}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    """Print both ratios and the absolute times; exit status 1 if a target is missed."""
    args = sys.argv[1:] if argv is None else argv
    if [a for a in args if a != "--no-pin"]:
        print("usage: python benchmarks/golden_speed.py [--no-pin]", file=sys.stderr)
        return 2
    pin = "--no-pin" not in args
    alloc = pin_allocator() if pin else "allocator defaults"
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default (unset)")
    ratios, info = measure()
    print(f"golden speed: integer golden vs NumPy float, side by side, median of {REPEATS}")
    print(f"conditions: OPENBLAS_NUM_THREADS={threads}; {alloc}; {os.cpu_count()} CPUs\n")
    print("| measure | integer | float | ratio | target | verdict |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in ratios:
        print(f"| {r.what} | {_ms(r.int_s)} | {_ms(r.float_s)} | {r.ratio:.2f}x | "
              f"<= {r.target:g}x | {'PASS' if r.passed else 'FAIL'} |")
    print(f"\ninfo: gemm_requant (GEMM + per-channel requantization to int8) "
          f"{_ms(info['gemm_requant'])}; ViT-Tiny calibration (float forward + constants) "
          f"{info['calibrate']:.2f} s\n")
    for r in ratios:
        print(f"{r.name}_int_time: {r.int_s * 1e3:.4g} ms")
        print(f"{r.name}_float_time: {r.float_s * 1e3:.4g} ms")
        print(f"{r.name}_ratio: {r.ratio:.3g} x")
    print(f"gemm_requant_time: {info['gemm_requant'] * 1e3:.4g} ms")
    return 0 if all(r.passed for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
