"""``edgetron sim``: cost a model on an accelerator config (cycles, stalls, traffic, energy).

MODEL is a preset name (``vit-tiny``, ``deit-small``, ``deit-base``, ``resnet18``,
``mobilenetv2``), a trace JSON file or a SCALE-Sim topology CSV. ``--functional`` also
executes the trace on int8 data (seeded random, or ``--input``) in the hardware's tile
order and checks every op against the golden kernels bit for bit (exit status 1 on any
difference). A functional run keeps every tensor of the model in memory: it is refused,
with its estimated memory and time, when the estimate exceeds ``--functional-max-gib``.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgetron.commands import CONFIG_HELP, MODEL_HELP
from edgetron.config_file import load_config
from edgetron.errors import SimulationError
from edgetron.report import format_result, result_dict, write_json
from edgetron.sim import engine, functional
from edgetron.sim.engine import simulate
from edgetron.sim.functional import run_functional
from edgetron.sim.prepare import DEFAULT_MAX_GIB, check_seed, check_size, prepare
from edgetron.workload import load_workload

__all__ = ["COMPILE_NOTICE", "compile_notice", "progress_bar", "register"]

#: Printed to stderr before a run that compiles the Numba kernels (cold on-disk cache).
COMPILE_NOTICE = "compiling simulator kernels (first run only, about 30 s)..."


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
    p.add_argument("--input", type=Path, metavar="FILE.npy",
                   help="with --functional: int8 values for the model's external input, a "
                        "NumPy .npy array of its shape (default: seeded random)")
    p.add_argument("--functional-max-gib", type=float, default=DEFAULT_MAX_GIB, metavar="GIB",
                   help="with --functional: refuse a run whose estimated peak memory "
                        f"exceeds GIB (default {DEFAULT_MAX_GIB:g}); the refusal gives the "
                        "memory and time estimates")
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


def compile_notice(*, functional_mode: bool = False) -> None:
    """Print :data:`COMPILE_NOTICE` to stderr when the coming run compiles kernels.

    Parameters
    ----------
    functional_mode : bool
        The run also executes functional mode: its kernels are checked too.

    Notes
    -----
    Checked against Numba's on-disk cache (:func:`edgetron.sim.engine.kernels_compiled`,
    :func:`edgetron.sim.functional.kernels_compiled`). Standard error keeps ``--json -``
    output clean.
    """
    cold = not engine.kernels_compiled() or (functional_mode
                                             and not functional.kernels_compiled())
    if cold:
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)


def _load_input(path: Path) -> np.ndarray:
    """The ``--input`` array: a .npy file, memory-mapped (its shape is checked first)."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError):
        raise SimulationError(f"--input {path}: not a .npy file of plain numbers (pickled "
                              "and object arrays are refused)") from None
    if not isinstance(data, np.ndarray):
        data.close()
        raise SimulationError(f"--input {path}: expected one array (.npy), got an .npz "
                              "archive")
    return data


def _run(args: argparse.Namespace) -> int:
    if args.input is not None and not args.functional:
        raise SimulationError("--input is the data of --functional; add --functional")
    max_gib = args.functional_max_gib
    if not max_gib > 0:
        raise SimulationError(f"--functional-max-gib: expected a positive number of GiB, "
                              f"got {max_gib:g}")
    cfg = load_config(args.config)
    trace = load_workload(args.model, batch=args.batch)
    inputs = None if args.input is None else _load_input(args.input)
    # Refusals first: before any compilation, simulation or allocation.
    flat = engine.check(trace, cfg)
    if args.functional:
        check_seed(args.seed)
        check_size(trace, max_gib)
    compile_notice(functional_mode=args.functional)
    with progress_bar(len(trace), f"sim {trace.name}") as update:
        result = simulate(flat, cfg, progress=update, chunk=16)
    checked = None
    if args.functional:
        with progress_bar(len(trace), f"golden {trace.name}") as update:
            data = prepare(trace, seed=args.seed, inputs=inputs, progress=update,
                           max_gib=max_gib)
        with progress_bar(len(trace), f"functional {trace.name}") as update:
            checked = run_functional(data, result, progress=update, max_gib=max_gib)
    if args.json is not None and str(args.json) == "-":
        write_json(result_dict(result, functional=checked), "-")
    else:
        print(format_result(result, per_op=args.per_op))
        if checked is not None:
            print(checked.summary())
        if args.json is not None:
            write_json(result_dict(result, functional=checked), args.json)
            print(f"wrote {args.json}")
    return 0 if checked is None or checked.ok else 1
