"""``edgetron compare``: several models side by side on one accelerator config.

Each MODEL is a preset name, a trace JSON file or a SCALE-Sim topology CSV. The table
puts MACs, cycles (GEMM unit, vector unit, DRAM stall), utilization, latency, energy and
traffic of every model in adjacent columns, with the share of cycles per op kind;
``--plot`` saves the per-op-kind cycle and energy breakdown as an image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetron.commands.sim import CONFIG_HELP, MODEL_HELP, compile_notice, progress_bar
from edgetron.config import load_config
from edgetron.report import comparison_dict, format_comparison, plot_breakdown, write_json
from edgetron.sim.engine import simulate
from edgetron.workload import load_workload

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    p = sub.add_parser("compare", help="several models side by side on one config",
                       description=__doc__)
    p.add_argument("models", metavar="MODEL", nargs="+", help=MODEL_HELP)
    p.add_argument("--config", default=None, help=CONFIG_HELP)
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="save the per-op-kind cycle and energy breakdown (PNG, SVG, PDF)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write totals and every op of every model as JSON ('-' = stdout)")
    p.add_argument("--batch", type=int, help="batch size for presets and CSVs (default 1)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    traces = [load_workload(m, batch=args.batch) for m in args.models]
    results = []
    compile_notice()
    with progress_bar(sum(len(t) for t in traces), "compare") as update:
        for trace in traces:
            results.append(simulate(trace, cfg, progress=update, chunk=16))
    if args.json is not None and str(args.json) == "-":
        write_json(comparison_dict(results), "-")
        return 0
    print(format_comparison(results))
    if args.plot is not None:
        plot_breakdown(results, args.plot)
        print(f"wrote {args.plot}")
    if args.json is not None:
        write_json(comparison_dict(results), args.json)
        print(f"wrote {args.json}")
    return 0
