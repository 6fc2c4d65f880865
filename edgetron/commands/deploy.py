"""``edgetron deploy``: an ONNX model on the integer datapath, measured on real data.

Calibrates the model's activation scales on ``--calib`` samples (the float model run on
them), quantizes its weights per output channel, then runs the integer model on the
``--eval`` samples (default: the calibration samples) through functional mode in the tile
order of ``--config``, checking every op bit for bit against golden. Prints integer and
float (onnxruntime) top-1 accuracy when ``--labels`` are given, their agreement, the
per-layer cosine and the cost of one inference. Samples are a ``.npy`` array ``[N,
*input[1:]]`` (the model input with N samples on the batch axis); labels a ``.npy`` of N
integers. Exit status 1 when an op differs from golden. See docs/deploy.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from edgetron.commands import CONFIG_HELP
from edgetron.commands.sim import compile_notice
from edgetron.report import write_json

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``deploy`` subcommand."""
    p = sub.add_parser("deploy", help="deploy an ONNX model on real data: integer vs float "
                                      "accuracy beside cost", description=__doc__)
    p.add_argument("model", metavar="MODEL.onnx", type=Path, help="the ONNX model")
    p.add_argument("--calib", type=Path, required=True, metavar="X.npy",
                   help="calibration samples [N, *input[1:]]")
    p.add_argument("--eval", type=Path, metavar="X.npy",
                   help="evaluation samples (default: the calibration samples)")
    p.add_argument("--labels", type=Path, metavar="Y.npy",
                   help="integer class of each evaluation sample (gives top-1 accuracy)")
    p.add_argument("--config", default=None, help=CONFIG_HELP)
    p.add_argument("--batch", type=int, help="value of a symbolic batch dimension")
    p.add_argument("--percentile", type=float, default=None, metavar="P",
                   help="calibrate each activation scale on the P-th percentile of |x| "
                        "(default: the maximum)")
    p.add_argument("--per-op", action="store_true",
                   help="print every op's output scale and cosine")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the whole report as JSON ('-' = stdout)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edgetron.deploy import Model, deploy, load_samples

    model = Model(args.model, batch=args.batch)
    total = len(load_samples(args.eval or args.calib, model.input_shape, "eval"))
    compile_notice(functional_mode=True)
    with tqdm(total=total, desc=f"deploy {model.name}", unit="sample", delay=1.0,
              leave=False) as bar:
        report = deploy(model, args.calib, data=args.eval, labels=args.labels,
                        config=args.config, percentile=args.percentile, progress=bar.update)
    if args.json is not None and str(args.json) == "-":
        write_json(report.to_dict(), "-")
    else:
        print(report.format(per_op=args.per_op))
        if args.json is not None:
            write_json(report.to_dict(), args.json)
            print(f"wrote {args.json}")
    return 0 if report.bit_exact else 1
