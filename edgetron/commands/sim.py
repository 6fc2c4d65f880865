"""``edgetron sim``: cost a model on an accelerator config (cycles, stalls, traffic, energy).

MODEL is a preset name (``vit-tiny``, ``deit-small``, ``deit-base``, ``resnet18``,
``mobilenetv2``), a trace JSON file or a SCALE-Sim topology CSV. ``--functional`` also
executes the trace on seeded random int8 data in the hardware's tile order and checks
every op against the golden kernels bit for bit (exit status 1 on any difference).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from edgetron.config import DEFAULT_PRESET, PRESETS, load_config
from edgetron.report import format_result, result_dict, write_json
from edgetron.sim.engine import simulate
from edgetron.sim.functional import prepare, run_functional
from edgetron.workload import MODELS, load_workload

__all__ = ["CONFIG_HELP", "MODEL_HELP", "progress_bar", "register"]

MODEL_HELP = f"preset ({', '.join(MODELS)}), trace JSON file or SCALE-Sim CSV"
CONFIG_HELP = f"preset ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sim`` subcommand."""
    p = sub.add_parser("sim", help="cost a model on an accelerator config (timing, energy)",
                       description=__doc__)
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--config", default=None, help=CONFIG_HELP)
    p.add_argument("--per-op", action="store_true", help="print every op, not only totals")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the results (totals and every op) as JSON ('-' = stdout)")
    p.add_argument("--functional", action="store_true",
                   help="also run on seeded random int8 data and check every op against "
                        "golden bit for bit")
    p.add_argument("--seed", type=int, default=0, help="seed of the functional data (0)")
    p.add_argument("--batch", type=int, help="batch size for presets and CSVs (default 1)")
    p.set_defaults(func=_run)


@contextmanager
def progress_bar(total: int, desc: str):
    """A tqdm bar that appears only when the work takes more than a second."""
    bar = tqdm(total=total, desc=desc, unit="op", delay=1.0, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def _run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    trace = load_workload(args.model, batch=args.batch)
    with progress_bar(len(trace), f"sim {trace.name}") as update:
        result = simulate(trace, cfg, progress=update, chunk=16)
    functional = None
    if args.functional:
        with progress_bar(len(trace), f"golden {trace.name}") as update:
            data = prepare(trace, seed=args.seed, progress=update)
        with progress_bar(len(trace), f"functional {trace.name}") as update:
            functional = run_functional(data, cfg, progress=update)
    if args.json is not None and str(args.json) == "-":
        write_json(result_dict(result, functional=functional), "-")
    else:
        print(format_result(result, per_op=args.per_op))
        if functional is not None:
            print(functional.summary())
        if args.json is not None:
            write_json(result_dict(result, functional=functional), args.json)
            print(f"wrote {args.json}")
    return 0 if functional is None or functional.ok else 1
