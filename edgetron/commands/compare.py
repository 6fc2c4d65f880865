"""``edgetron compare``: several models side by side on one accelerator config.

Each MODEL is a preset name, a trace JSON file or a SCALE-Sim topology CSV. The table
puts MACs, cycles (GEMM unit, vector unit, DRAM stall), utilization, latency, energy and
traffic of every model in adjacent columns, with the share of cycles per op kind;
``--plot`` saves the per-op-kind cycle and energy breakdown as an image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgetron.commands import CONFIG_HELP, MODEL_HELP
from edgetron.commands.sim import compile_notice, progress_bar
from edgetron.config import load_config
from edgetron.report import (
    comparison_dict,
    format_comparison,
    plot_breakdown,
    plot_path,
    write_json,
)
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
                   help="save the per-op-kind cycle and energy breakdown; the suffix gives "
                        "the format (.png, .svg, .pdf, ...; .png added when there is none)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write totals and every op of every model as JSON ('-' = stdout)")
    p.add_argument("--batch", type=int, help="batch size for presets and CSVs (default 1)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # Every argument is checked before the models are simulated.
    plot = None if args.plot is None else plot_path(args.plot)
    cfg = load_config(args.config)
    traces = [load_workload(m, batch=args.batch) for m in args.models]
    results = []
    compile_notice()
    with progress_bar(sum(len(t) for t in traces), "compare") as update:
        for trace in traces:
            results.append(simulate(trace, cfg, progress=update, chunk=16))
    json_out = args.json is not None and str(args.json) == "-"
    # With --json -, standard output is the JSON document alone; notes go to stderr.
    notes = sys.stderr if json_out else sys.stdout
    if json_out:
        write_json(comparison_dict(results), "-")
    else:
        print(format_comparison(results))
    if plot is not None:
        print(f"wrote {plot_breakdown(results, plot)}", file=notes)
    if args.json is not None and not json_out:
        write_json(comparison_dict(results), args.json)
        print(f"wrote {args.json}")
    return 0
