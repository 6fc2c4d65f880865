"""GEMM unit: simulator cycles of whole networks against the MAC-bound ideal.

For each model, the GEMM unit's own cycles (``compute_cycles`` of its matrix ops: the
RTL's cycles for their calls back to back, DRAM and vector units aside) divided by
``MACs / (rows * cols)``, the cycles of an array that never idles. 1.00 is a unit that
never waits for its operands and never pads a tile; the figures include the partial
tiles of shapes that are not multiples of the array (ViT's 197 tokens, ResNet's
147-deep first convolution). Prints the worst ops too, then ``name: value unit`` lines.

Usage: ``python benchmarks/gemm_efficiency.py [--config PRESET|FILE] [--models ...]``
(default edge-16; vit-tiny, resnet18, mobilenetv2) after ``source scripts/setup.sh``.
"""

from __future__ import annotations

import argparse
import sys

from edgetron.config_file import load_config
from edgetron.sim.engine import simulate
from edgetron.sim.units import KIND_CODES, ON_ARRAY
from edgetron.workload import build_model

#: Ops listed per model, the least efficient first.
WORST = 4


def gemm_efficiency(model: str, cfg) -> tuple[float, float, list[tuple[float, str]]]:
    """``(cycles / ideal, utilization of the whole model, worst ops)`` of ``model``."""
    res = simulate(build_model(model), cfg)
    pes = cfg.rows * cfg.cols
    cycles = macs = 0.0
    ops = []
    for op, row in zip(res.ops, res.op_dicts(), strict=True):
        if ON_ARRAY[KIND_CODES[op.kind]]:
            cycles += row["compute_cycles"]
            macs += row["macs"]
            ops.append((row["compute_cycles"] * pes / row["macs"], op.name))
    ops.sort(reverse=True)
    return cycles * pes / macs, res.totals["utilization"], ops[:WORST]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="edge-16", help="preset or TOML file (edge-16)")
    parser.add_argument("--models", nargs="+", default=["vit-tiny", "resnet18", "mobilenetv2"])
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    print(f"GEMM unit on {cfg.name}: {cfg.rows}x{cfg.cols} {cfg.dataflow}, "
          f"double_buffer={cfg.double_buffer}")
    lines = []
    for model in args.models:
        ratio, util, worst = gemm_efficiency(model, cfg)
        print(f"{model}: GEMM-unit cycles = {ratio:.3f} x MACs/(R*C); whole model "
              f"{100 * util:.1f} % of the array; least efficient ops: "
              + ", ".join(f"{name} {r:.2f}x" for r, name in worst))
        key = model.replace("-", "_")
        lines += [f"gemm_cycles_over_ideal_{key}: {ratio:.3f} x",
                  f"utilization_{key}: {100 * util:.1f} %"]
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
