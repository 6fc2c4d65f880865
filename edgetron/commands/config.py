"""``edgetron config``: list presets, show or write a configuration.

``--list`` prints the preset table and nothing else: combined with a SPEC or with
``-o/--output`` it is an error rather than an option silently ignored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetron.config import DEFAULT_PRESET, PRESETS
from edgetron.config_file import load_config
from edgetron.errors import EdgetronError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``config`` subcommand."""
    p = sub.add_parser("config", help="list presets, show or save an accelerator configuration")
    p.add_argument(
        "spec", nargs="?", default=None,
        help=f"preset name ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}",
    )
    p.add_argument("--list", action="store_true",
                   help="list the presets (takes no SPEC and no -o)")
    p.add_argument("-o", "--output", type=Path, help="write the configuration as TOML to this file")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.list and (args.spec is not None or args.output is not None):
        given = " and ".join(what for what, value in (("SPEC", args.spec),
                                                       ("-o/--output", args.output))
                             if value is not None)
        raise EdgetronError(f"--list prints the preset table and takes no {given}; to write "
                            "a preset as TOML: edgetron config PRESET -o FILE")
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
