"""Import time of each committed ONNX graph: the exporter fixtures and the digits models.

Prints one ``name: value unit`` line per graph with the best of ``--repeat`` imports
(wall-clock seconds, file read to validated trace) and its MAC total, then the digits
models' float top-1 accuracy recorded by ``scripts/train_digits.py``.

Usage::

    python benchmarks/onnx_import.py [--repeat 5]
    python benchmarks/onnx_import.py --dir OUT    # also time the .onnx files in OUT, e.g.
        # full-weight exports from `python scripts/export_onnx_fixtures.py OUT` (train extra)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgetron.workload.onnx import import_onnx

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "onnx"


def measure(path: Path, repeat: int) -> tuple[float, int, int]:
    """Best import time over ``repeat`` runs, the MACs and the op count."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        trace, _ = import_onnx(path)
        best = min(best, time.perf_counter() - start)
    return best, trace.macs, len(trace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="also time every .onnx file in this folder")
    args = parser.parse_args(argv)
    paths = sorted((DATA / "exporters").glob("*.onnx")) + sorted(DATA.glob("digits_*.onnx"))
    extra = sorted(args.dir.glob("*.onnx")) if args.dir else []
    for path in paths + extra:
        label = f"full.{path.stem}" if path in extra else path.stem
        seconds, macs, ops = measure(path, args.repeat)
        print(f"onnx_import.{label}.time: {seconds:.3f} s")
        print(f"onnx_import.{label}.macs: {macs} MACs ({ops} ops, "
              f"{path.stat().st_size} bytes)")
    results = DATA / "digits.json"
    if results.exists():
        data = json.loads(results.read_text())
        for name in ("digits_cnn", "digits_vit"):
            if name in data:
                print(f"onnx_import.{name}.float_top1: {100 * data[name]['top1']:.2f} % "
                      f"({data[name]['correct']}/{data['held_out']} held out, onnxruntime)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
