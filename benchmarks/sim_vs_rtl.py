"""GEMM unit and depthwise mode: RTL cycles (Verilator, cocotb) against the simulator's
timing model.

Runs ``tests/cocotb/tb_gemm.py``'s ``gemm_sweep`` on Verilator for a sweep of
shapes (M, K, N not multiples of the array, both output modes) and for large-K
shapes with M, K, N multiples of the array, every result checked bit for bit
against golden and every cycle count against the simulator: each shape alone
(``gemm_cycles``) and :data:`REPEAT` times back to back (``gemm_sequence``). Prints
one table row per shape (RTL and sim cycles, alone and back to back), the
utilization of the large-K shapes, and ends with one ``name: value unit`` line per
headline figure.

Utilization is measured on the RTL, MACs / (rows * cols * cycles), with the cycles
from the first command handshake to the last output handshake (both included):

* one call: a call on an idle unit, its fill and drain exposed;
* back to back: :data:`REPEAT` calls sent back to back at full input rate (the next
  call loads while the current one computes, the drain of one overlaps the next:
  one fill and one drain exposed in all).

Vector units (:func:`vector_section`): softmax, GELU, LayerNorm, add and pool, RTL cycles
measured in the Amaranth simulator (the bench of tests/rtl/vector_streams.py, random data
checked against golden) against ``edgetron.sim.units.<unit>``'s cycle functions, for
several lane counts, row lengths and row counts (element counts for GELU and add), full
rate; the pool unit (:func:`pool_rows`) against the simulator engine on one-op traces
(ResNet-18's max pool and the global average heads at reduced size, 2x2 and 3x3).

``--unit vector`` runs only this section.

Depthwise mode (``--unit conv``, rtl/conv/depthwise.py): MobileNetV2-like 3x3 layers
(stride 1 and 2, padding 1) on a 16x16 array, all calls back to back at full rate
(:func:`depthwise_main`); every output checked against golden and every output
handshake against ``sim.units.conv.dw_schedule``. Prints the RTL's steady-state PE
utilization of a 3x3 stride-1 layer (MACs per cycle over ``rows * cols`` while its rows
are swept) and the end-to-end utilization of the sequence.

Usage: ``python benchmarks/sim_vs_rtl.py [--config PRESET|FILE] [--unit gemm|conv|vector|all]``
(default edge-8 and all), after ``source scripts/setup.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgetron.config import PRESETS
from edgetron.config_file import load_config
from edgetron.rtl.gemm import shape_fits

# The cocotb runner helper lives with the testbenches.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cocotb"))
from simrun import run_tb

#: Random sweep shapes (in addition to the fixed ones) and the seed that draws them.
RANDOM_SHAPES = 24
SEED = 2024
#: A utilization shape needs at least this many K folds (K >= LARGE_K_FOLDS * rows), so
#: that the fill and drain of the array are small against the compute phase.
LARGE_K_FOLDS = 64
#: Calls back to back per shape.
REPEAT = 3


def sweep_shapes(cfg) -> list[tuple[int, int, int, int]]:
    """Fixed corner shapes plus random ones, ``(M, K, N, out32)``, all fitting the unit."""
    r, c = cfg.rows, cfg.cols
    fixed = [
        (1, 1, 1, 0), (1, 1, 1, 1), (r, r, c, 0), (r, r, c, 1), (r - 1, r + 1, c + 1, 0),
        (2 * r, 3 * r, 2 * c, 1), (3 * r + 1, 2 * r - 1, c - 1, 0), (1, 4 * r, 3 * c, 1),
        (4 * r, 1, 1, 0), (2 * r + 3, 5, 2 * c + 5, 1),
    ]
    rng = np.random.default_rng(SEED)
    shapes = [s for s in fixed if shape_fits(cfg, *s[:3])]
    while len(shapes) < len(fixed) + RANDOM_SHAPES:
        m, k, n = (int(x) for x in rng.integers(1, [6 * r, 8 * r, 6 * c]))
        if shape_fits(cfg, m, k, n):
            shapes.append((m, k, n, int(rng.integers(0, 2))))
    return shapes


def utilization_shapes(cfg) -> list[tuple[int, int, int, int]]:
    """M, K, N multiples of the array with the largest K that fits (int32 output)."""
    r, c = cfg.rows, cfg.cols
    out = []
    for m, n in ((r, c), (2 * r, 2 * c), (4 * r, c)):
        k = r
        while shape_fits(cfg, m, k + r, n):
            k += r
        if k >= LARGE_K_FOLDS * r:
            out.append((m, k, n, 1))
    return out


#: Depthwise layers ``(h, w, r, s, sh, sw, pt, pb, pl, pr, calls)``: 56 x 56 x 32 at stride
#: 1 and 2 (TensorFlow SAME padding) and 14 x 14 x 32, two groups of 16 channels each.
DW_LAYERS = ((56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 2), (56, 56, 3, 3, 2, 2, 0, 1, 0, 1, 2),
             (14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 2))
#: Output rows of the first stride-1 call that count as steady state (the rows swept after
#: the line fill and before the drain).
DW_STEADY_ROWS = (8, 48)


def depthwise_main() -> int:
    """Run :data:`DW_LAYERS` on the depthwise mode (Verilator) and print the figures."""
    cfg = PRESETS["edge-16"].replace(name="edge-16-dw", ifmap_sram_bytes=32 * 1024)
    calls = [list(layer[:10]) for layer in DW_LAYERS for _ in range(layer[10])]
    with tempfile.TemporaryDirectory() as tmp:
        calls_file, out_file = Path(tmp) / "calls.json", Path(tmp) / "cycles.json"
        calls_file.write_text(json.dumps({"calls": calls}))
        os.environ["EDGETRON_TB_FILTER"] = "conv_sweep"
        t0 = time.perf_counter()
        run_tb("conv", "verilator", cfg, tag=f"bench-{cfg.name}", extra_env={
            "EDGETRON_TB_SWEEP": str(calls_file), "EDGETRON_TB_SWEEP_OUT": str(out_file)})
        wall = time.perf_counter() - t0
        got = json.loads(out_file.read_text())
    pes = cfg.rows * cfg.cols
    out = got["out_cycles"]
    wo = DW_LAYERS[0][1]
    a, b = (row * wo for row in DW_STEADY_ROWS)
    steady = (b - a) * 9 * cfg.cols / (pes * (out[b] - out[a]))
    macs = 0
    for h, w, r, s, sh, sw, pt, pb, pl, pr, n in DW_LAYERS:
        ho, wo_ = (h + pt + pb - r) // sh + 1, (w + pl + pr - s) // sw + 1
        macs += n * ho * wo_ * r * s * cfg.cols
    print(f"Depthwise mode {cfg.name}: {cfg.rows}x{cfg.cols}, Verilator (build + run "
          f"{wall:.1f} s); {len(calls)} calls back to back, every output handshake at the "
          "simulator's cycle")
    print(f"dw_rtl_cycles: {got['rtl_cycles']} cycles")
    print(f"dw_sim_cycles: {got['sim_cycles']} cycles")
    print(f"dw_utilization_steady_3x3_stride1: {100 * steady:.1f} %")
    print(f"dw_utilization_end_to_end: {100 * macs / (pes * got['rtl_cycles']):.1f} %")
    return 0 if got["rtl_cycles"] == got["sim_cycles"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="edge-8", help="preset or TOML file (edge-8)")
    parser.add_argument("--unit", default="all", choices=("gemm", "conv", "vector", "all"),
                        help="which units to run (all)")
    args = parser.parse_args(argv)
    status = 0
    if args.unit in ("conv", "all"):
        status |= depthwise_main()
        os.environ.pop("EDGETRON_TB_FILTER", None)
    if args.unit in ("gemm", "all"):
        status |= gemm_main(load_config(args.config))
    if args.unit in ("vector", "all"):
        print()
        status |= vector_section()
    return status


def gemm_main(cfg) -> int:
    """The GEMM unit's sweep (module docstring)."""
    sweep = sweep_shapes(cfg)
    util = utilization_shapes(cfg)
    if not util:
        raise SystemExit(f"{cfg.name}: the buffers hold no K >= {LARGE_K_FOLDS} * rows for a "
                         "utilization run")
    with tempfile.TemporaryDirectory() as tmp:
        shapes_file, out_file = Path(tmp) / "shapes.json", Path(tmp) / "cycles.json"
        shapes_file.write_text(json.dumps({"shapes": sweep + util, "repeat": REPEAT}))
        os.environ["EDGETRON_TB_FILTER"] = "gemm_sweep"
        t0 = time.perf_counter()
        run_tb("gemm", "verilator", cfg, tag=f"bench-{cfg.name}", extra_env={
            "EDGETRON_TB_SWEEP": str(shapes_file), "EDGETRON_TB_SWEEP_OUT": str(out_file)})
        wall = time.perf_counter() - t0
        rows = json.loads(out_file.read_text())
    pes = cfg.rows * cfg.cols
    print(f"GEMM unit {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.dataflow}, double_buffer="
          f"{cfg.double_buffer}, Verilator (build + run {wall:.1f} s)")
    print(f"{'M':>5} {'K':>6} {'N':>5} {'out':>5} {'RTL 1 call':>11} {'sim 1 call':>11} "
          f"{f'RTL {REPEAT} calls':>12} {f'sim {REPEAT} calls':>12}")
    mismatches = 0
    for row in rows:
        mismatches += (row["rtl_cycles"] != row["sim_cycles"]) + (
            row["rtl_sequence_cycles"] != row["sim_sequence_cycles"])
        print(f"{row['m']:>5} {row['k']:>6} {row['n']:>5} "
              f"{'int32' if row['out32'] else 'int8':>5} {row['rtl_cycles']:>11} "
              f"{row['sim_cycles']:>11} {row['rtl_sequence_cycles']:>12} "
              f"{row['sim_sequence_cycles']:>12}")
    print()
    print("Utilization, M, K, N multiples of the array: MACs / (rows * cols * cycles), RTL,")
    print("first command handshake to last output handshake")
    print(f"{'M':>5} {'K':>6} {'N':>5} {'one call':>9} {'back to back':>13}")
    one_utils, b2b_utils = [], []
    for row in rows[len(sweep):]:
        macs = row["m"] * row["k"] * row["n"]
        one = macs / (pes * row["rtl_cycles"])
        b2b = REPEAT * macs / (pes * row["rtl_sequence_cycles"])
        one_utils.append(one)
        b2b_utils.append(b2b)
        print(f"{row['m']:>5} {row['k']:>6} {row['n']:>5} {100 * one:>7.1f} % "
              f"{100 * b2b:>11.1f} %")
    print()
    print(f"rtl_shapes_checked: {len(rows)} shapes")
    print(f"rtl_sequences_checked: {len(rows)} sequences of {REPEAT} calls")
    print(f"cycle_mismatches: {mismatches} counts")
    print(f"utilization_one_call_large_k: {100 * min(one_utils):.1f} %")
    print(f"utilization_end_to_end_back_to_back: {100 * min(b2b_utils):.1f} %")
    print(f"rtl_run_time: {wall:.1f} s")
    return 1 if mismatches else 0


#: Vector-unit shapes: (lanes, rows, row length) for softmax and LayerNorm, (lanes,
#: elements) for GELU and add.
VECTOR_ROWS = [(lanes, rows, n) for lanes in (1, 4, 8, 16) for rows, n in
               ((1, 2), (3, 9), (8, 64), (4, 197), (2, 768))]
VECTOR_ELEMENTS = [(lanes, e) for lanes in (1, 4, 8, 16) for e in (1, 17, 197, 3000)]


def vector_section() -> int:
    """RTL (Amaranth simulator) against simulator cycles of every vector unit; prints a
    table and ``name: value unit`` lines; fails unless every count is equal."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from edgetron.config import AcceleratorConfig
    from edgetron.rtl.add import AddUnit
    from edgetron.rtl.gelu import GeluUnit
    from edgetron.rtl.layernorm import LayerNormUnit
    from edgetron.rtl.softmax import SoftmaxUnit
    from edgetron.sim.units import add, gelu, layernorm, softmax
    from tests.models.add import AddModel
    from tests.models.gelu import GeluModel
    from tests.models.layernorm import LayerNormModel
    from tests.models.softmax import SoftmaxModel
    from tests.models.vector import Segment
    from tests.rtl.vector_streams import run_segments

    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    print("Vector units: RTL (Amaranth simulator, full rate, checked against golden) vs "
          "sim.units cycles")
    print(f"{'unit':>9} {'lanes':>5} {'rows':>5} {'n':>5} {'RTL cycles':>11} "
          f"{'sim cycles':>11} {'equal':>6}")
    count, unequal = 0, 0
    for lanes, rows, n in VECTOR_ROWS:
        p = AcceleratorConfig(vector_lanes=lanes).sim_params()
        for name, cls, model, sim in (
                ("softmax", SoftmaxUnit, SoftmaxModel(lanes, 768), softmax.softmax_cycles),
                ("layernorm", LayerNormUnit, LayerNormModel(lanes, 768),
                 layernorm.layernorm_cycles)):
            seg = model.segment(rng, "random", rows, n)
            board = run_segments(cls(lanes, 768), model, [seg])
            rtl, want = board.done[0].cycles, int(sim(p, rows, n))
            count, unequal = count + 1, unequal + (rtl != want)
            print(f"{name:>9} {lanes:>5} {rows:>5} {n:>5} {rtl:>11} {want:>11} "
                  f"{'yes' if rtl == want else 'NO':>6}", flush=True)
    for lanes, e in VECTOR_ELEMENTS:
        p = AcceleratorConfig(vector_lanes=lanes).sim_params()
        gm, am = GeluModel(lanes), AddModel(lanes)
        cases = (("gelu", GeluUnit(lanes), gm, gelu.gelu_cycles,
                  Segment("random", gm.consts(rng, False), (gm.vector(rng, "random", e),))),
                 ("add", AddUnit(lanes), am, add.add_cycles,
                  Segment("random", am.consts(rng, 1), am.pair(rng, "random", e))))
        for name, unit, model, sim, seg in cases:
            rtl, want = run_segments(unit, model, [seg]).done[0].cycles, int(sim(p, e))
            count, unequal = count + 1, unequal + (rtl != want)
            print(f"{name:>9} {lanes:>5} {'':>5} {e:>5} {rtl:>11} {want:>11} "
                  f"{'yes' if rtl == want else 'NO':>6}", flush=True)
    pool_count, pool_unequal = pool_rows(rng)
    count, unequal = count + pool_count, unequal + pool_unequal
    print(f"vector_shapes_checked: {count} shapes")
    print(f"vector_cycle_mismatches: {unequal} shapes")
    print(f"vector_rtl_run_time: {time.perf_counter() - t0:.1f} s")
    return 1 if unequal else 0


#: Pool shapes: (kind, (r, s), stride, (pt, pb, pl, pr), (n, h, w, c)): ResNet-18's max pool
#: and the global average heads at reduced size, and the 2x2 and 3x3 classes.
POOL_SHAPES = [
    ("max", (3, 3), 2, (1, 1, 1, 1), (1, 14, 14, 64)),
    ("avg", (7, 7), 1, (0, 0, 0, 0), (1, 7, 7, 64)),
    ("max", (2, 2), 2, (0, 0, 0, 0), (2, 8, 8, 16)),
    ("avg", (3, 3), 1, (1, 1, 1, 1), (1, 6, 6, 20)),
    ("avg", (2, 2), 1, (0, 1, 0, 1), (1, 5, 7, 3)),
]


def pool_rows(rng) -> tuple[int, int]:
    """The pool unit in the Amaranth simulator against the simulator engine's cycles of the
    same one-op trace (``vector_cycles``); prints the rows and the input elements per cycle.
    Returns (shapes, mismatches)."""
    from edgetron.config import AcceleratorConfig
    from edgetron.golden.pool import pool_constants
    from edgetron.rtl.pool import PoolUnit
    from edgetron.sim.engine import simulate
    from edgetron.workload import AvgPool, MaxPool, Trace
    from tests.models.pool import PoolModel
    from tests.models.vector import Segment
    from tests.rtl.vector_streams import run_segments

    print(f"{'pool':>9} {'lanes':>5} {'shape':>22} {'RTL cycles':>11} {'sim cycles':>11} "
          f"{'equal':>6} {'elems/cycle':>11}")
    count, unequal = 0, 0
    for lanes in (4, 16):
        model = PoolModel(lanes, 256, 16)
        cfg = AcceleratorConfig(vector_lanes=lanes)
        for kind, win, stride, pads, shape in POOL_SHAPES:
            k = pool_constants(kind, win, (stride, stride), pads)
            seg = Segment("random", k, (model.map(rng, "random", shape),))
            rtl = run_segments(PoolUnit(lanes, 256, 16), model, [seg]).done[0].cycles
            n, h, w, c = shape
            cls = MaxPool if kind == "max" else AvgPool
            op = cls(name="pool", inputs=("input",), n=n, h=h, w=w, c=c, r=win[0], s=win[1],
                     stride_h=stride, stride_w=stride, pad_top=pads[0], pad_bottom=pads[1],
                     pad_left=pads[2], pad_right=pads[3])
            sim = int(simulate(Trace(name="p", batch=n, ops=(op,)), cfg).ops[0]["vector_cycles"])
            count, unequal = count + 1, unequal + (rtl != sim)
            label = f"{kind}{win[0]}x{win[1]}/{stride} {n}x{h}x{w}x{c}"
            print(f"{'pool':>9} {lanes:>5} {label:>22} {rtl:>11} {sim:>11} "
                  f"{'yes' if rtl == sim else 'NO':>6} {n * h * w * c / rtl:>11.2f}", flush=True)
    return count, unequal


if __name__ == "__main__":
    sys.exit(main())
