"""``edgetron trace``: show a workload's ops and totals, or save it as a trace or SCALE-Sim CSV.

MODEL is a preset name (``vit-tiny``, ``deit-small``, ``deit-base``, ``resnet18``,
``mobilenetv2``), a trace JSON file or a SCALE-Sim topology CSV.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgetron.commands import MODEL_HELP
from edgetron.workload import Trace, load_workload, save_trace, to_scalesim

__all__ = ["register", "trace_summary"]

_FORMATS = ("json", "scalesim", "scalesim-gemm")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``trace`` subcommand with its ``show`` and ``save`` actions."""
    p = sub.add_parser(
        "trace", help="show or save a workload trace (preset, trace JSON, SCALE-Sim CSV or ONNX)",
        description="Show a workload's ops and totals, or save it as a trace JSON or a "
                    f"SCALE-Sim topology CSV. MODEL is a {MODEL_HELP}. "
                    "Format: docs/trace-format.md.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    batch_help = "batch size for presets and CSVs (default 1; a trace file fixes its own)"

    show = actions.add_parser("show", help="table of ops with shapes, MACs, bytes and totals")
    show.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    show.add_argument("--batch", type=int, help=batch_help)
    show.add_argument("--json", action="store_true", help="print the table as JSON")
    show.set_defaults(func=_show)

    save = actions.add_parser("save", help="write the workload as a trace or SCALE-Sim CSV")
    save.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    save.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    save.add_argument("--batch", type=int, help=batch_help)
    save.add_argument(
        "--format", choices=_FORMATS, default=None,
        help="json (trace), scalesim (conv-form CSV) or scalesim-gemm (GEMM-form CSV); "
             "default: scalesim for a .csv output, json otherwise",
    )
    save.set_defaults(func=_save)


def trace_summary(trace: Trace) -> dict[str, Any]:
    """Per-op rows and totals of ``trace`` as plain data (what ``show --json`` prints).

    Bytes: ``params`` = weights + biases; ``in``/``out`` = activation operands/output.
    """
    ops = [
        {
            "index": i, "name": op.name, "kind": op.kind, "unit": op.unit,
            "shape": op.describe(), "macs": op.macs, "params": op.params,
            "param_bytes": op.param_bytes, "in_bytes": op.in_bytes, "out_bytes": op.out_bytes,
        }
        for i, op in enumerate(trace)
    ]
    totals = {
        key: sum(row[key] for row in ops)
        for key in ("macs", "params", "param_bytes", "in_bytes", "out_bytes")
    }
    return {"name": trace.name, "batch": trace.batch, "ops": ops,
            "totals": {"ops": len(ops), **totals}}


def _show(args: argparse.Namespace) -> int:
    summary = trace_summary(load_workload(args.model, batch=args.batch))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rows = summary["ops"]
    name_w = max(4, *(len(r["name"]) for r in rows))
    shape_w = max(5, *(len(r["shape"]) for r in rows))
    print(f"{summary['name']}: {len(rows)} ops, batch {summary['batch']} "
          "(shapes per sample; bytes for the whole batch)")
    head = (f"{'#':>4}  {'name':<{name_w}}  {'kind':<9}  {'shape':<{shape_w}}  "
            f"{'MACs':>15}  {'param B':>11}  {'in B':>12}  {'out B':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['index']:>4}  {r['name']:<{name_w}}  {r['kind']:<9}  {r['shape']:<{shape_w}}  "
              f"{r['macs']:>15,}  {r['param_bytes']:>11,}  {r['in_bytes']:>12,}  "
              f"{r['out_bytes']:>12,}")
    print("-" * len(head))
    t = summary["totals"]
    print(f"{'':>4}  {'total':<{name_w}}  {'':<9}  {'':<{shape_w}}  {t['macs']:>15,}  "
          f"{t['param_bytes']:>11,}  {t['in_bytes']:>12,}  {t['out_bytes']:>12,}")
    print(f"{t['macs'] / 1e6:.1f} M MACs, {t['params'] / 1e6:.3f} M parameters "
          f"({t['param_bytes']:,} bytes)")
    return 0


def _save(args: argparse.Namespace) -> int:
    trace = load_workload(args.model, batch=args.batch)
    fmt = args.format or ("scalesim" if args.output.suffix.lower() == ".csv" else "json")
    if fmt == "json":
        save_trace(trace, args.output)
        what = f"{len(trace)} ops"
    else:
        text = to_scalesim(trace, form="gemm" if fmt == "scalesim-gemm" else "conv")
        args.output.write_text(text, encoding="utf-8")
        dropped = sum(op.gemm is None for op in trace)
        what = f"{text.count(chr(10)) - 1} layer rows"
        if dropped:
            what += f"; {dropped} vector and memory ops dropped"
    print(f"wrote {args.output} ({fmt}: {what}; {trace.macs:,} MACs)")
    return 0
