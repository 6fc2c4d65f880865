"""FPGA resources, Fmax and tool run time of every unit per config and target.

Runs ``edgetron fpga``'s flow (:func:`edgetron.rtl.fpga.run_unit`) on:

- ECP5-85k: the GEMM unit at 2x2, 4x4, edge-8 (8x8) and edge-16 (16x16: more multipliers
  than the device's 156 MULT18X18D, so the flow's DSP budget builds the excess PE
  multipliers from LUTs), the requantizer at 2, 4, 8 and 16 lanes, the softmax,
  LayerNorm, GELU, add and pool units at edge-8 and edge-16, the depthwise conv unit
  (``conv``) and the ConvUnit (``conv_dense``) at edge-8;
- iCE40UP5K and Gowin GW2AR-18 (Tang Nano 20K): the configs small enough to fit, with
  1 KiB buffers (``small``), with DSP multipliers and with LUT multipliers (``--nodsp``)
  (on iCE40 only a 1x1 GEMM unit fits: the requantizer takes four SB_MAC16 per lane);
- a ``synth_xilinx`` estimate of the GEMM unit at every size;
- one processing element (an int8 x int8 multiply-accumulate) synthesised alone on each
  family, with and without DSPs: what the MAC maps to;
- the edge-8 systolic array alone (no control, no buffers) on ECP5-85k: the Fmax of the
  MAC datapath.

2x2 and 4x4 are edge-8 with ``rows`` and ``cols`` changed (edge-8's buffers). From the
three GEMM sizes it solves ``cost(N) = p*N^2 + e*N + k`` for the per-PE cost ``p`` (the
marginal cost of one PE), the per-edge cost ``e`` (one requantizer lane and one
array column/row of control) and the fixed part ``k``, for logic cells and multipliers;
and the marginal cost per PE between 4x4 and edge-8 and between edge-8 and edge-16.

Prints a Markdown table (``--markdown FILE`` also writes it) and ends with one
``name: value unit`` line per figure. ``--json FILE`` keeps every result; rows already
in that file are not run again (delete it to start over). A full run takes about an
hour on one core.

Usage: ``python benchmarks/fpga.py [--only SUBSTRING...] [--skip SUBSTRING...] [--json FILE]
[--markdown FILE]`` after ``source scripts/setup.sh``. Rows are keyed
``target|unit|config[|nodsp]`` (and ``mac_probe``); two runs with disjoint ``--only`` sets
and their own ``--json`` use both cores of a 2-core machine; ``--merge`` then joins
their files into one table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgetron.config import PRESETS, AcceleratorConfig
from edgetron.rtl.fpga import (
    FpgaFlowError,
    get_target,
    run_component,
    run_unit,
    synth_component,
)
from edgetron.rtl.fpga.tools import YOSYS, tool_version
from edgetron.rtl.pe import PE
from edgetron.rtl.systolic import SystolicArray

#: Seconds each flow step may take: edge-16's placement and routing (58,000 logic cells)
#: takes well over the flow's default 1800 s on a shared machine.
STEP_TIMEOUT = 4 * 3600.0
#: Buffer bytes of the ``small`` configs (iCE40UP5K has 15 KiB of block RAM).
SMALL_BUFFER = 1024
GOWIN = "gowin-GW2AR-LV18QN88C8/I7"
EDGE8 = PRESETS["edge-8"]


def config(size: str) -> AcceleratorConfig:
    """``2x2``/``4x4`` (edge-8 buffers), ``edge-8``, ``edge-16``, or ``small-NxN``."""
    if size in PRESETS:
        return PRESETS[size]
    small = size.startswith("small-")
    n = int(size.removeprefix("small-").split("x")[0])
    changes: dict[str, Any] = {"rows": n, "cols": n}
    if small:
        changes.update(ifmap_sram_bytes=SMALL_BUFFER, weight_sram_bytes=SMALL_BUFFER,
                       ofmap_sram_bytes=SMALL_BUFFER)
    name = "edge-8+" + ",".join(f"{k}={v}" for k, v in changes.items())
    return EDGE8.replace(name=name, **changes)


#: (target, unit, config, nodsp) in the order they run.
ROWS: list[tuple[str, str, str, bool]] = [
    *[("ecp5-85k", "gemm", s, False) for s in ("2x2", "4x4", "edge-8", "edge-16")],
    *[("ecp5-85k", "requant", s, False) for s in ("2x2", "4x4", "edge-8", "edge-16")],
    # The other units at the presets: the vector units and the pool unit (sized by
    # vector_lanes), the array's depthwise mode and the ConvUnit (sized like the array).
    *[("ecp5-85k", u, s, False) for u in ("softmax", "layernorm", "gelu", "add", "pool")
      for s in ("edge-8", "edge-16")],
    *[("ecp5-85k", u, "edge-8", False) for u in ("conv", "conv_dense")],
    ("ice40-up5k", "requant", "small-2x2", False),
    ("ice40-up5k", "gemm", "small-2x2", False),
    ("ice40-up5k", "gemm", "small-2x2", True),
    ("ice40-up5k", "gemm", "small-1x1", False),
    (GOWIN, "requant", "small-2x2", False),
    (GOWIN, "gemm", "small-2x2", False),
    (GOWIN, "gemm", "small-4x4", False),
    *[("xilinx", "gemm", s, False) for s in ("2x2", "4x4", "edge-8", "edge-16")],
    # The systolic array alone (PEs and their skew, no control, no buffers): the Fmax the
    # MAC datapath allows once the control paths are out of the way.
    ("ecp5-85k", "array", "edge-8", False),
    # ... and with Booth LUT multipliers: the placed cost of a PE without a MULT18X18D.
    ("ecp5-85k", "array", "edge-8", True),
]
#: Targets of the MAC probe (one PE synthesised alone).
PROBE_TARGETS = ("ecp5-85k", "ice40-up5k", GOWIN, "xilinx")


def row_key(target: str, unit: str, size: str, nodsp: bool) -> str:
    return f"{target}|{unit}|{size}" + ("|nodsp" if nodsp else "")


def run_row(target: str, unit: str, size: str, nodsp: bool) -> dict[str, Any]:
    def progress(step, elapsed, status):
        print(f"\r  {step} {elapsed:5.0f} s {status[:70]:<70}", end="", file=sys.stderr)

    cfg = config(size)
    try:
        if unit == "array":
            res = run_component(SystolicArray(cfg), "array", get_target(target),
                                config=cfg.to_dict(), nodsp=nodsp, progress=progress)
        else:
            res = run_unit(unit, cfg, get_target(target), nodsp=nodsp, progress=progress,
                           timeout=STEP_TIMEOUT)
        out = {"ok": True, **res.to_dict()}
    except FpgaFlowError as exc:
        out = {"ok": False, "error": str(exc)}
    print(file=sys.stderr)
    return out


def mac_probe() -> dict[str, Any]:
    out = {}
    for target in PROBE_TARGETS:
        for nodsp in (False, True):
            pe = PE("ws", row=0, rows=8)
            out[f"{target}|{'lut' if nodsp else 'dsp'}"] = synth_component(
                pe, "edgetron_pe", get_target(target), nodsp=nodsp)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


def table(results: dict[str, Any]) -> list[str]:
    lines = ["| target | unit | config | logic (unit) | FF (unit) | DSP | BRAM | Fmax MHz "
             "| critical path | synth s | P&R s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in (row_key(*r) for r in ROWS):
        if key not in results:
            continue
        target, unit, size, *rest = key.split("|")
        label = size + (" LUT-mult" if rest else "")
        r = results[key]
        if not r["ok"]:
            err = r["error"]
            if "does not fit" in err:  # the resource and the excess, without the names
                err = "does not fit: " + err.rsplit("): ", 1)[-1]
            lines.append(f"| {target} | {unit} | {label} | {err} | | | | | | | |")
            continue
        res, alone = r["resources"], r["unit_resources"]
        if r["options"].get("lut_multipliers"):
            label += f" ({r['options']['lut_multipliers']} LUT multipliers)"

        def cell(cat, res=res, alone=alone):
            row = res.get(cat)
            if row is None:
                return "-"
            text = _fmt(row["used"])
            if cat in alone and alone[cat] != row["used"]:
                text += f" ({_fmt(alone[cat])})"
            return text + (f", {row['percent']:.0f} %" if row["percent"] is not None else "")

        path = r["critical_path"]
        ptext = (f"{path['start']['signal']} -> {path['end']['signal']}; "
                 f"{path['routing_ns'] / path['delay_ns']:.0%} routing" if path else "-")
        lines.append(
            f"| {target} | {unit} | {label} | {cell('logic')} | {cell('ff')} | {cell('dsp')} "
            f"| {cell('bram')} | {_fmt(r['fmax_mhz'])} | {ptext} | {r['steps']['synth']:.0f} "
            f"| {_fmt(r['steps'].get('place and route'))} |")
    return lines


def marginal(results: dict[str, Any], target: str, category: str) -> tuple[float, ...] | None:
    """Solve ``cost(N) = p*N^2 + e*N + k`` through the 2x2, 4x4 and 8x8 GEMM results."""
    ys = []
    for size in ("2x2", "4x4", "edge-8"):
        r = results.get(row_key(target, "gemm", size, False))
        if r is None or not r["ok"] or category not in r["unit_resources"]:
            return None
        ys.append(r["unit_resources"][category])
    a = np.array([[n * n, n, 1] for n in (2, 4, 8)], dtype=float)
    return tuple(float(x) for x in np.linalg.solve(a, np.array(ys, dtype=float)))


#: Array edge of each GEMM config of the ECP5 rows.
EDGE = {"2x2": 2, "4x4": 4, "edge-8": 8, "edge-16": 16}


def per_pe(results: dict[str, Any], target: str, small: str, large: str,
           category: str) -> float | None:
    """Marginal cost of one PE between two GEMM sizes, ``(cost(large) - cost(small)) /
    (PEs(large) - PEs(small))`` (unit alone; it includes the per-edge costs, a requantizer
    lane and a column's control, spread over the PEs added)."""
    rs = [results.get(row_key(target, "gemm", size, False)) for size in (small, large)]
    if any(r is None or not r["ok"] or category not in r["unit_resources"] for r in rs):
        return None
    return ((rs[1]["unit_resources"][category] - rs[0]["unit_resources"][category])
            / (EDGE[large] ** 2 - EDGE[small] ** 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=[""], metavar="SUBSTRING",
                        help="run only rows whose key contains one of these")
    parser.add_argument("--skip", nargs="+", default=[], metavar="SUBSTRING",
                        help="do not run rows whose key contains one of these (e.g. "
                        "'ecp5-85k|gemm|edge-16', whose routing takes hours)")
    parser.add_argument("--json", type=Path, default=Path("build/fpga-benchmark.json"))
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--merge", nargs="+", type=Path, default=[], metavar="JSON",
                        help="take the rows of these result files (e.g. of parallel runs) "
                        "into --json first")
    args = parser.parse_args()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(args.json.read_text()) if args.json.is_file() else {"results": {}}
    results = doc["results"]
    for path in args.merge:
        other = json.loads(path.read_text())
        results.update(other["results"])
        if "mac_probe" in other:
            doc.setdefault("mac_probe", other["mac_probe"])

    def selected(key: str) -> bool:
        """``key`` matches one of ``--only`` and none of ``--skip``."""
        return any(o in key for o in args.only) and not any(x in key for x in args.skip)

    for row in ROWS:
        key = row_key(*row)
        if key in results or not selected(key):
            continue
        print(f"{key}", file=sys.stderr)
        results[key] = run_row(*row)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if "mac_probe" not in doc and selected("mac_probe"):
        doc["mac_probe"] = mac_probe()
    doc["date"] = datetime.date.today().isoformat()
    doc["tools"] = {"yosys": tool_version(*YOSYS)}
    for t in ("ecp5-85k", "ice40-up5k", GOWIN):
        doc["tools"][t] = tool_version(*get_target(t).pnr)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")

    lines = [f"Measured {doc['date']}; {doc['tools']['yosys']}; "
             + "; ".join(f"{t}: {v}" for t, v in doc["tools"].items() if t != "yosys"), "",
             *table(results)]
    if "mac_probe" in doc:
        lines += ["", "| one PE (int8 x int8 MAC + int32 add), synthesised alone | cells |",
                  "| --- | --- |"]
        for key, r in doc["mac_probe"].items():
            cells = ", ".join(f"{n} {k}" for k, n in r["cells"].items()
                              if k not in ("IBUF", "OBUF", "GND", "VCC", "BUFG"))
            lines.append(f"| {key.replace('|', ', ')} | {cells} |")
    print("\n".join(lines))
    if args.markdown is not None:
        args.markdown.write_text("\n".join(lines) + "\n")

    for key, r in results.items():
        name = "fpga." + key.replace("|", ".").replace("/", "_")
        if not r["ok"]:
            print(f"{name}.fits: 0 bool")
            continue
        for cat, row in r["resources"].items():
            print(f"{name}.{cat}: {row['used']} cells")
        if r["fmax_mhz"] is not None:
            print(f"{name}.fmax: {r['fmax_mhz']} MHz")
        if r.get("slow_endpoints"):
            print(f"{name}.late_endpoints: {r['slow_endpoints']['over']} endpoints")
        print(f"{name}.synth_time: {r['steps']['synth']} s")
        if "place and route" in r["steps"]:
            print(f"{name}.pnr_time: {r['steps']['place and route']} s")
    for target in ("ecp5-85k", "xilinx"):
        for cat in ("logic", "dsp", "ff"):
            fit = marginal(results, target, cat)
            if fit is not None:
                print(f"fpga.{target}.gemm.per_pe.{cat}: {fit[0]:.1f} cells")
                print(f"fpga.{target}.gemm.per_edge.{cat}: {fit[1]:.1f} cells")
            for small, large in (("4x4", "edge-8"), ("edge-8", "edge-16")):
                cost = per_pe(results, target, small, large, cat)
                if cost is not None:
                    print(f"fpga.{target}.gemm.per_pe_{small}_to_{large}.{cat}: {cost:.1f} cells")
    for key, r in results.items():
        if r["ok"] and r["options"].get("lut_multipliers"):
            name = "fpga." + key.replace("|", ".").replace("/", "_")
            print(f"{name}.lut_multipliers: {r['options']['lut_multipliers']} multipliers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
