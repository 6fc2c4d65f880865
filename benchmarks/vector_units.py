"""Vector units (softmax, GELU, LayerNorm, residual add): timing in RTL and long random runs.

Timing, for each unit and lane count (8 and 16), in the Amaranth simulator:

* latency: cycles from the first input handshake to the last output handshake of one
  197-element row (GELU and add: of one beat), full-rate input, output always ready;
* steady state: elements per cycle on 197-element rows, measured as 197 over the extra
  cycles one more row costs (GELU and add: 16 more rows packed back to back, 16 * 197
  elements over the extra cycles).

Every measured cycle count is also compared with the ``edgetron.hw`` cycle function.

Random runs (``--vectors N``): the exported Verilog on Verilator (4 lanes, rows of up to
24) with a compiled C++ bench (benchmarks/verilator_bench.py) and the testbenches' unit
models, input monitor, scoreboard and coverage bins in Python: the coverage extremes,
then ``N`` random **rows** for softmax and LayerNorm (up to 48 rows per segment), ``N``
random **elements** for GELU and add (vectors of 1 to 100 elements), with random input
gaps (15 %) and output stalls (20 %), every result compared bit for bit with golden.
Prints the mismatches (rows or elements; 0 expected), the cycles and the coverage bins.
``--vectors 1000000`` is the slow regression.

Prints one ``name: value unit`` line per figure.

Usage: ``python benchmarks/vector_units.py [--lanes 8 16] [--vectors N] [--units ...]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "cocotb"))

from edgetron.config import AcceleratorConfig  # noqa: E402
from edgetron.rtl.add import AddUnit  # noqa: E402
from edgetron.rtl.gelu import GeluUnit  # noqa: E402
from edgetron.rtl.layernorm import LayerNormUnit  # noqa: E402
from edgetron.rtl.softmax import SoftmaxUnit  # noqa: E402
from tests.models.add import AddModel  # noqa: E402
from tests.models.gelu import GeluModel  # noqa: E402
from tests.models.layernorm import LayerNormModel  # noqa: E402
from tests.models.softmax import SoftmaxModel  # noqa: E402
from tests.models.vector import Segment  # noqa: E402
from tests.rtl.vector_streams import run_segments  # noqa: E402

ROW = 197
UNITS = ("softmax", "gelu", "layernorm", "add")
MODELS = {"softmax": SoftmaxModel, "gelu": GeluModel, "layernorm": LayerNormModel,
          "add": AddModel}
#: The config of the random runs: 4 lanes, rows of up to 24.
RANDOM_CFG = AcceleratorConfig(name="bench-vector", vector_lanes=4, vector_row_max=24)


def _cycles(board) -> int:
    return board.done[-1].out_cycles[-1] - board.done[0].in_cycles[0] + 1


def timing(lanes: int, rng) -> dict[str, tuple[int, float]]:
    """Latency and steady-state elements per cycle of every unit, measured and checked."""
    res = {}
    row_units = {"softmax": (SoftmaxUnit, SoftmaxModel(lanes, 256)),
                 "layernorm": (LayerNormUnit, LayerNormModel(lanes, 768))}
    for name, (cls, model) in row_units.items():
        measured = {}
        for rows in (1, 8, 9):
            seg = model.segment(rng, "random", rows, ROW)
            board = run_segments(cls(lanes, model.row_max), model, [seg])
            measured[rows] = _cycles(board)
            assert measured[rows] == model.cycles(seg), (name, rows)
        res[name] = (measured[1], ROW / (measured[9] - measured[8]))
    flat = {"gelu": (GeluUnit, GeluModel(lanes)), "add": (AddUnit, AddModel(lanes))}
    for name, (cls, model) in flat.items():
        measured = {}
        for n in (lanes, 16 * ROW, 32 * ROW):
            base = model.full_rate_segments(rng)[0]
            if name == "gelu":
                seg = Segment("random", base.consts, (model.vector(rng, "random", n),))
            else:
                seg = Segment("random", base.consts, model.pair(rng, "random", n))
            board = run_segments(cls(lanes), model, [seg])
            measured[n] = _cycles(board)
            assert measured[n] == model.cycles(seg), (name, n)
        res[name] = (measured[lanes], 16 * ROW / (measured[32 * ROW] - measured[16 * ROW]))
    return res


def random_run(unit: str, vectors: int) -> dict:
    """``vectors`` random rows (softmax, LayerNorm) or elements (GELU, add) of ``unit`` on
    Verilator (benchmarks/verilator_bench.py), after the model's coverage extremes: counts
    of vectors, mismatches, cycles and coverage."""
    from simrun import build_root
    from verilator_bench import LongRun, build_bench

    cls = MODELS[unit]
    binary, manifest = build_bench(unit, RANDOM_CFG, cls.inputs,
                                   build_root() / "bench" / f"{unit}-verilator")
    model = cls.from_parameters(manifest["parameters"])
    run = LongRun(model, binary)
    rng = np.random.default_rng(2026)
    rows = unit in ("softmax", "layernorm")
    segs = model.coverage_segments(rng)
    done = 0
    while done < vectors:
        segs += (model.random_segments(rng, min(20000, vectors - done), max_rows=48) if rows
                 else model.random_segments(rng, 2000))
        run.run(segs)
        done += sum(s.rows if rows else s.data[0].size for s in segs)
        segs = []
    return {"vectors": done, "mismatches": run.mismatches, "cycles": run.cycles,
            "coverage": run.coverage.hits, "empty_bins": run.coverage.empty()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, nargs="*", default=[8, 16],
                    help="lane counts of the timing figures (none: skip them)")
    ap.add_argument("--vectors", type=int, default=0,
                    help="random rows (softmax, LayerNorm) / elements (GELU, add) per unit "
                         "on Verilator (0: no random runs)")
    ap.add_argument("--units", nargs="+", choices=UNITS, default=list(UNITS))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(2026)
    start = time.monotonic()
    for lanes in args.lanes:
        for name, (lat, rate) in timing(lanes, rng).items():
            if name not in args.units:
                continue
            what = "197-element row" if name in ("softmax", "layernorm") else "beat"
            print(f"{name}_latency_lanes{lanes}: {lat} cycles ({what}, measured = hw model)")
            target = lanes / 2 if name in ("softmax", "layernorm") else lanes
            print(f"{name}_steady_state_lanes{lanes}: {rate:.2f} elements/cycle "
                  f"(197-element rows; target {target:g})", flush=True)
    if args.vectors:
        for unit in args.units:
            t0 = time.monotonic()
            res = random_run(unit, args.vectors)
            kind = "rows" if unit in ("softmax", "layernorm") else "elements"
            print(f"{unit}_random_{kind}: {res['vectors']} {kind}")
            print(f"{unit}_mismatches: {res['mismatches']} {kind}")
            print(f"{unit}_rtl_cycles: {res['cycles']} cycles")
            for point, bins in res["coverage"].items():
                hits = ", ".join(f"{b} {n}" for b, n in bins.items())
                print(f"{unit}_coverage_{point}: {sum(1 for n in bins.values() if n)} of "
                      f"{len(bins)} bins ({hits})")
            print(f"{unit}_empty_bins: {len(res['empty_bins'])} bins")
            print(f"{unit}_random_run_time: {time.monotonic() - t0:.0f} s", flush=True)
    print(f"vector_units_benchmark_time: {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
