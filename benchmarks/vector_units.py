"""Vector units (softmax, GELU, LayerNorm, residual add) in RTL simulation.

For each unit and lane count (8 and 16), in the Amaranth simulator:

* latency: cycles from the first input handshake to the last output handshake of one
  197-element row (GELU and add: of one beat), full-rate input, output always ready;
* steady state: elements per cycle on 197-element rows, measured as 197 over the extra
  cycles one more row costs (GELU and add: 16 more rows packed back to back, 16 * 197
  elements over the extra cycles);
* mismatches: random rows (extremes included) with random input gaps and output stalls,
  compared bit for bit with golden (0 expected).

Every measured cycle count is also compared with the ``edgetron.hw`` cycle function.
Prints one ``name: value unit`` line per figure.

Usage: ``python benchmarks/vector_units.py [--rows N] [--lanes 8 16]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edgetron.golden.add import residual_add, residual_constants
from edgetron.golden.gelu import gelu_int8_apply, gelu_int8_constants
from edgetron.golden.layernorm import layernorm_constants, layernorm_int
from edgetron.golden.softmax import softmax_apply, softmax_constants
from edgetron.hw.add import add_cycles
from edgetron.hw.gelu import gelu_cycles
from edgetron.hw.layernorm import layernorm_cycles
from edgetron.hw.softmax import softmax_cycles
from edgetron.rtl import add, gelu, layernorm, softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.rtl.vector_streams import run_streams

ROW = 197


def _softmax(unit, segs, **kw):
    items, counts = [], []
    for q, c in segs:
        items.append(("c", softmax.encode_softmax_consts(unit, c, q.shape[1])))
        words = softmax.encode_softmax(unit, q)
        items += [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    bad, o0 = 0, 0
    for (q, c), nb in zip(segs, counts, strict=True):
        got = softmax.decode_softmax(unit, run.out[o0:o0 + nb], *q.shape)
        bad += int((got != softmax_apply(q, c)).any(axis=1).sum())
        o0 += nb
    return run, counts, bad


def _layernorm(unit, segs, **kw):
    items, counts = [], []
    for q, c in segs:
        cw = layernorm.encode_layernorm_consts(unit, c)
        words = layernorm.encode_layernorm(unit, q)
        items += [("c", cw[0])] + [("p", w) for w in cw[1:]] + [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    bad, o0 = 0, 0
    for (q, c), nb in zip(segs, counts, strict=True):
        got = layernorm.decode_layernorm(unit, run.out[o0:o0 + nb], *q.shape)
        bad += int((got != layernorm_int(q, c)).any(axis=1).sum())
        o0 += nb
    return run, counts, bad


def _gelu(unit, segs, **kw):
    items, counts = [], []
    for q, c in segs:
        items.append(("c", gelu.encode_gelu_consts(unit, c)))
        words = gelu.encode_gelu(unit, q)
        items += [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    bad, o0 = 0, 0
    for (q, c), nb in zip(segs, counts, strict=True):
        got = gelu.decode_gelu(unit, run.out[o0:o0 + nb], q.size)
        bad += int((got != gelu_int8_apply(q, c)).any())
        o0 += nb
    return run, counts, bad


def _add(unit, segs, **kw):
    items, counts = [], []
    for (a, b), c in segs:
        items.append(("c", add.encode_add_consts(unit.layouts, c)))
        words = add.encode_add(unit.layouts, a, b)
        items += [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    bad, o0 = 0, 0
    for ((a, b), c), nb in zip(segs, counts, strict=True):
        got = add.decode_add(unit.layouts, run.out[o0:o0 + nb], a.size)
        bad += int((got != residual_add(a, b, *c)).any())
        o0 += nb
    return run, counts, bad


def _cycles(run, counts):
    return run.out_cycles[sum(counts) - 1] - run.in_cycles["i"][0] + 1


def _ln_consts(rng, c):
    return layernorm_constants(rng.normal(1, 0.3, c), rng.normal(0, 0.3, c), 0.05, 0.03, 1e-5)


def timing(lanes: int, rng) -> dict[str, tuple[int, float]]:
    """Latency and steady-state elements per cycle of every unit, measured and checked."""
    res = {}
    sm_c = softmax_constants(2.0 ** -10)
    sm = softmax.SoftmaxUnit(lanes, 256)
    ln = layernorm.LayerNormUnit(lanes, 768)
    measured = {}
    for rows in (1, 8, 9):
        q = rng.integers(-60000, 60000, (rows, ROW))
        run, counts, _ = _softmax(sm, [(q, sm_c)])
        measured["softmax", rows] = _cycles(run, counts)
        assert measured["softmax", rows] == softmax_cycles(lanes, rows, ROW)
        run, counts, _ = _layernorm(ln, [(rng.integers(-128, 128, (rows, ROW)),
                                          _ln_consts(rng, ROW))])
        measured["layernorm", rows] = _cycles(run, counts)
        assert measured["layernorm", rows] == layernorm_cycles(lanes, rows, ROW)
    for name in ("softmax", "layernorm"):
        res[name] = (measured[name, 1], ROW / (measured[name, 9] - measured[name, 8]))
    gu = gelu.GeluUnit(lanes)
    au = add.AddUnit(lanes)
    g_c = gelu_int8_constants(1e-3, 0.02)
    a_c = residual_constants(0.05, 0.03, 0.04)
    # element-wise: 197-element rows packed back to back; one more block of 16 rows
    for n in (lanes, 16 * ROW, 32 * ROW):
        run, counts, _ = _gelu(gu, [(rng.integers(-(1 << 20), 1 << 20, n), g_c)])
        measured["gelu", n] = _cycles(run, counts)
        assert measured["gelu", n] == gelu_cycles(lanes, n)
        ab = (rng.integers(-128, 128, n), rng.integers(-128, 128, n))
        run, counts, _ = _add(au, [(ab, a_c)])
        measured["add", n] = _cycles(run, counts)
        assert measured["add", n] == add_cycles(lanes, n)
    for name in ("gelu", "add"):
        extra = measured[name, 32 * ROW] - measured[name, 16 * ROW]
        res[name] = (measured[name, lanes], 16 * ROW / extra)
    return res


def random_rows(count: int, rng) -> dict[str, tuple[int, int]]:
    """``(rows, mismatching rows)`` per unit over ``count`` random rows with gaps, 4 lanes."""
    out = {}
    lo, hi = -(1 << 31), (1 << 31) - 1
    sm = softmax.SoftmaxUnit(4, 32)
    segs, n_rows = [], 0
    while n_rows < count:
        n, r = int(rng.integers(1, 33)), int(rng.integers(1, 10))
        kind = len(segs) % 3
        q = (rng.integers(lo, hi, (r, n), endpoint=True) if kind == 0
             else rng.integers(-30000, 30000, (r, n)) if kind == 1
             else np.full((r, n), int(rng.integers(lo, hi))))
        segs.append((q, softmax_constants(float(2.0 ** rng.uniform(-40, 10)))))
        n_rows += r
    out["softmax"] = (n_rows, _softmax(sm, segs, p_gap=0.1, p_stall=0.2)[2])
    ln = layernorm.LayerNormUnit(4, 32)
    segs, n_rows = [], 0
    while n_rows < count:
        c, r = int(rng.integers(2, 33)), int(rng.integers(1, 10))
        q = rng.integers(-128, 128, (r, c)) if len(segs) % 2 else np.full((r, c), -128)
        segs.append((q, _ln_consts(rng, c)))
        n_rows += r
    out["layernorm"] = (n_rows, _layernorm(ln, segs, p_gap=0.1, p_stall=0.2)[2])
    gu = gelu.GeluUnit(4)
    segs = [(rng.integers(lo, hi, int(rng.integers(1, 40)), endpoint=True),
             gelu_int8_constants(float(2.0 ** rng.uniform(-30, 0)), 0.02))
            for _ in range(count)]
    out["gelu"] = (count, _gelu(gu, segs, p_gap=0.1, p_stall=0.2)[2])
    au = add.AddUnit(4)
    segs = []
    for _ in range(count):
        n = int(rng.integers(1, 40))
        segs.append(((rng.integers(-128, 128, n), rng.integers(-128, 128, n)),
                     residual_constants(*(float(2.0 ** rng.uniform(-10, 0)) for _ in range(3)))))
    out["add"] = (count, _add(au, segs, p_gap=0.1, p_stall=0.2)[2])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000, help="random rows (vectors) per unit")
    ap.add_argument("--lanes", type=int, nargs="+", default=[8, 16])
    args = ap.parse_args(argv)
    rng = np.random.default_rng(2026)
    start = time.monotonic()
    for lanes in args.lanes:
        for name, (lat, rate) in timing(lanes, rng).items():
            what = "197-element row" if name in ("softmax", "layernorm") else "beat"
            print(f"{name}_latency_lanes{lanes}: {lat} cycles ({what}, measured = hw model)")
            target = lanes / 2 if name in ("softmax", "layernorm") else lanes
            print(f"{name}_steady_state_lanes{lanes}: {rate:.2f} elements/cycle "
                  f"(197-element rows; target {target:g})")
    for name, (rows, bad) in random_rows(args.rows, rng).items():
        print(f"{name}_random_rows: {rows} rows")
        print(f"{name}_mismatches: {bad} rows")
    print(f"vector_units_benchmark_time: {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
