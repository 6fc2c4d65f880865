"""``edgetron config``: list presets, show or write a configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetron.config import DEFAULT_PRESET, PRESETS, load_config

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``config`` subcommand."""
    p = sub.add_parser("config", help="list presets, show or save an accelerator configuration")
    p.add_argument(
        "spec", nargs="?", default=None,
        help=f"preset name ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}",
    )
    p.add_argument("--list", action="store_true", help="list the presets")
    p.add_argument("-o", "--output", type=Path, help="write the configuration as TOML to this file")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list:
        print(f"{'preset':<10} {'array':>7} {'dataflow':>8} {'ifmap':>8} {'weight':>8} "
              f"{'ofmap':>8} {'DRAM B/cyc':>10} {'MHz':>6}")
        for name, c in PRESETS.items():
            print(f"{name:<10} {c.rows:>3}x{c.cols:<3} {c.dataflow:>8} "
                  f"{c.ifmap_sram_bytes // 1024:>6}Ki {c.weight_sram_bytes // 1024:>6}Ki "
                  f"{c.ofmap_sram_bytes // 1024:>6}Ki {c.dram_bytes_per_cycle:>10g} "
                  f"{c.clock_mhz:>6g}")
        return 0
    cfg = load_config(args.spec)
    if args.output:
        cfg.save(args.output)
        print(f"wrote {args.output}")
    else:
        print(cfg.to_toml(), end="")
    return 0
