"""``edgetron import``: an ONNX model as a trace JSON and its weights file.

``edgetron import MODEL.onnx -o TRACE.json`` writes the trace and, beside it,
``TRACE.weights.npz`` (float weights and biases, ``docs/onnx.md``). A shape-only model
(its tensors' data left out) gives the trace alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetron.workload import save_trace

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    p = sub.add_parser(
        "import", help="import an ONNX model as a trace (and its weights)",
        description="Import an ONNX model (.onnx, opsets 11-21) as a trace JSON, with its "
                    "float weights in TRACE.weights.npz beside it. Supported ops, patterns "
                    "and the weights format: docs/onnx.md.",
    )
    p.add_argument("model", metavar="MODEL.onnx", type=Path, help="the ONNX file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="TRACE.json",
                   help="trace file to write (the weights go to TRACE.weights.npz)")
    p.add_argument("--batch", type=int,
                   help="value of a symbolic batch dimension (a fixed one is kept)")
    p.add_argument("--name", help="trace name (default: the model file's stem)")
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from edgetron.workload.onnx import import_onnx, save_weights, weights_path

    trace, weights = import_onnx(args.model, batch=args.batch, name=args.name)
    save_trace(trace, args.output)
    what = f"{len(trace)} ops, {trace.macs:,} MACs, {trace.params:,} parameters"
    if weights is None:
        print(f"wrote {args.output} ({what}); shape-only model: no weights file")
        return 0
    wpath = weights_path(args.output)
    save_weights(wpath, weights)
    print(f"wrote {args.output} ({what}) and {wpath}")
    return 0
