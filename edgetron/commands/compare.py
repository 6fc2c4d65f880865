"""``edgetron compare``: several models side by side on one accelerator config.

Each MODEL is a preset name, a trace JSON file, a SCALE-Sim topology CSV or an ONNX
model. The table puts MACs, cycles (GEMM unit, vector unit, DRAM stall), utilization,
latency, energy and traffic of every model in adjacent columns, with the share of cycles
per op kind; ``--plot`` saves the per-op-kind cycle and energy breakdown as an image, and
``--out DIR`` writes the costing report: report.md and report.json with latency, energy
and roofline plots (docs/report.md).

The milliseconds are at the config's clock_mhz, an ASIC-style assumption, unless
``--clock fpga:TARGET`` takes the clock from the measured Fmax of the units the models run
on (synthesis, place and route on that FPGA target; minutes per unit, then cached).

With ``--data X.npy`` every MODEL must be an ONNX model with its weights: each is
deployed as ``edgetron deploy`` does (calibrated on ``--calib``, default the ``--data``
samples themselves; run bit-exact through functional mode) and the table starts with
its accuracy on ``--data`` (top-1 with ``--labels``, agreement with the float model,
smallest per-layer cosine). Exit status 1 when an op differs from golden.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgetron.clock import CLOCK_HELP, Clock, config_clock, fpga_clock, parse_clock
from edgetron.commands import CONFIG_HELP, MODEL_HELP
from edgetron.commands.sim import compile_notice, progress_bar
from edgetron.config_file import load_config
from edgetron.costing import report_dict, write_report
from edgetron.errors import EdgetronError, SimulationError
from edgetron.report import format_comparison, plot_breakdown, plot_path, write_json
from edgetron.sim import engine
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
                   help="write the config, the clock, totals and every op of every model as "
                        "JSON ('-' = stdout)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write the costing report into DIR: report.md, report.json and PNG "
                        "plots of latency, energy and the roofline (docs/report.md)")
    p.add_argument("--clock", default="config", metavar="config|fpga:TARGET", help=CLOCK_HELP)
    p.add_argument("--batch", type=int, help="batch size for presets and CSVs (default 1)")
    p.add_argument("--data", type=Path, metavar="X.npy",
                   help="evaluation samples of the ONNX models [N, *input[1:]]: deploy each "
                        "and add its accuracy (docs/deploy.md)")
    p.add_argument("--labels", type=Path, metavar="Y.npy",
                   help="with --data: the integer class of each sample (gives top-1)")
    p.add_argument("--calib", type=Path, metavar="X.npy",
                   help="with --data: calibration samples (default: the --data samples)")
    p.add_argument("--percentile", type=float, metavar="P",
                   help="with --data: calibrate on the P-th percentile of |x| (default: "
                        "the maximum)")
    p.set_defaults(func=_run)


def _load_models(args: argparse.Namespace) -> list:
    """``--data``: every model (each must be an ONNX model) and its data, all checked."""
    from edgetron.deploy import Model, load_labels, load_samples
    from edgetron.deploy.calibration import check_percentile

    for m in args.models:
        if Path(m).suffix.lower() != ".onnx":
            raise SimulationError(f"--data: model {m!r} is not an ONNX model (.onnx); "
                                  "accuracy needs a model with its weights")
    check_percentile(args.percentile)
    models = [Model(m, batch=args.batch) for m in args.models]
    # Every model's data is checked before the first one is deployed.
    loaded = []
    for model in models:
        x = load_samples(args.data, model.input_shape, "data")
        calib = x if args.calib is None else load_samples(args.calib, model.input_shape,
                                                          "calib")
        labels = None if args.labels is None else load_labels(args.labels, x, model.classes)
        loaded.append((model, calib, x, labels))
    return loaded


def _deploy_all(args: argparse.Namespace, loaded: list, cfg) -> list:
    """Deploy every model of :func:`_load_models` on its data (``edgetron deploy``)."""
    from tqdm import tqdm

    from edgetron.deploy import deploy

    reports = []
    compile_notice(functional_mode=True)
    for model, calib, x, labels in loaded:
        with tqdm(total=len(x), desc=f"deploy {model.name}", unit="sample", delay=1.0,
                  leave=False) as bar:
            reports.append(deploy(model, calib, data=x, labels=labels, config=cfg,
                                  percentile=args.percentile, progress=bar.update))
    return reports


def _clock(args: argparse.Namespace, target: str | None, cfg, traces) -> Clock:
    """The config's clock, or the measured one (progress on stderr while the flow runs)."""
    if target is None:
        return config_clock(cfg)
    from edgetron.commands.fpga import Progress

    progress = Progress(f"clock on {target}")
    try:
        return fpga_clock(cfg, target, traces, progress=progress)
    finally:
        progress.done()


def _run(args: argparse.Namespace) -> int:
    # Every argument is checked before the models are simulated.
    plot = None if args.plot is None else plot_path(args.plot)
    target = parse_clock(args.clock)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise EdgetronError(f"--out {args.out}: exists and is not a folder")
    if args.data is None:
        for flag in ("labels", "calib", "percentile"):
            if getattr(args, flag) is not None:
                raise SimulationError(f"--{flag} goes with --data (the samples to deploy "
                                      "the models on); add --data")
    cfg = load_config(args.config)
    loaded = None
    if args.data is not None:
        loaded = _load_models(args)
        traces = [model.trace for model, *_ in loaded]
    else:
        traces = [load_workload(m, batch=args.batch) for m in args.models]
        # A model the config cannot run is refused before any FPGA run or simulation.
        traces = [engine.check(t, cfg) for t in traces]
    clock = _clock(args, target, cfg, traces)
    run_cfg = clock.apply(cfg)
    deployments = None
    if loaded is not None:
        deployments = _deploy_all(args, loaded, run_cfg)
        results = [d.cost for d in deployments]
    else:
        results = []
        compile_notice()
        with progress_bar(sum(len(t.ops) for t in traces), "compare") as update:
            for trace in traces:
                results.append(simulate(trace, run_cfg, progress=update, chunk=16))
    json_out = args.json is not None and str(args.json) == "-"
    # With --json -, standard output is the JSON document alone; notes go to stderr.
    notes = sys.stderr if json_out else sys.stdout
    doc = report_dict(results, clock=clock, deployments=deployments)
    if json_out:
        write_json(doc, "-")
    else:
        print(format_comparison(results, deployments=deployments, clock=clock))
    if plot is not None:
        print(f"wrote {plot_breakdown(results, plot)}", file=notes)
    if args.json is not None and not json_out:
        write_json(doc, args.json)
        print(f"wrote {args.json}")
    if args.out is not None:
        written = write_report(args.out, results, clock=clock, deployments=deployments)
        print(f"wrote {', '.join(str(p) for p in written)}", file=notes)
    return 0 if deployments is None or all(d.bit_exact for d in deployments) else 1
