"""Vector units (softmax, GELU, LayerNorm, residual add): timing in RTL and long random runs.

Timing, for each unit and lane count (8 and 16), in the Amaranth simulator:

* latency: cycles from the first input handshake to the last output handshake of one
  197-element row (GELU and add: of one beat), full-rate input, output always ready;
* steady state: elements per cycle on 197-element rows, measured as 197 over the extra
  cycles one more row costs (GELU and add: 16 more rows packed back to back, 16 * 197
  elements over the extra cycles).

Every measured cycle count is also compared with the ``edgetron.hw`` cycle function.

Random runs (``--vectors N``): the cocotb testbench's random test of each unit on the
exported Verilog, on Verilator (``tests/cocotb/tb_<unit>.py``, 4 lanes, rows of up to 24),
with random input gaps and output backpressure, every result compared bit for bit with
golden: ``N`` random **rows** for softmax and LayerNorm, ``N`` random **elements** for GELU
and add (vectors of 1 to 100 elements). Prints the mismatches (rows or elements; 0
expected) and the coverage bins. ``--vectors 1000000`` is the slow regression (about an
hour per row unit on one core).

Prints one ``name: value unit`` line per figure.

Usage: ``python benchmarks/vector_units.py [--lanes 8 16] [--vectors N] [--units ...]``.
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
    """The cocotb random test of ``unit`` on Verilator for ``vectors`` rows / elements."""
    from simrun import run_tb

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        os.environ["EDGETRON_TB_FILTER"] = f"{unit}_random"
        try:
            run_tb(unit, "verilator", RANDOM_CFG, tag="bench-4lanes", extra_env={
                "EDGETRON_TB_VECTORS": str(vectors), "EDGETRON_TB_OUT": str(out)})
        finally:
            os.environ.pop("EDGETRON_TB_FILTER")
        return json.loads(out.read_text())


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
