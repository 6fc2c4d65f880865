"""``edgetron rtl``: export the hardware units as Verilog with manifests, and lint them."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgetron.config import DEFAULT_PRESET, PRESETS
from edgetron.config_file import load_config
from edgetron.errors import ConfigError, EdgetronError

__all__ = ["register"]

#: Longest lint output echoed per failing tool, in lines.
_MAX_LINT_LINES = 40


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``rtl`` subcommand (``rtl export``)."""
    p = sub.add_parser("rtl", help="export the RTL units as Verilog (+ JSON manifests)")
    rsub = p.add_subparsers(dest="rtl_command", metavar="ACTION", required=True)
    e = rsub.add_parser(
        "export",
        help="write <top>.v and <top>.json per unit",
        description="Write Verilog (amaranth.back.verilog) and a JSON manifest (ports, "
                    "parameters, config, latencies and timing model) for each unit; "
                    "optionally lint them. Every unit is elaborated before any file is "
                    "written, so a unit that rejects the config leaves nothing behind.",
    )
    e.add_argument(
        "--config", default=None, metavar="PRESET|FILE",
        help=f"preset ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}",
    )
    e.add_argument("--unit", default="all", metavar="NAME|all",
                   help="unit to export (see --list), or all (default)")
    e.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="output directory (created if needed)")
    e.add_argument("--lint", action="store_true",
                   help="run verilator --lint-only -Wall and yosys check (every input bit "
                        "read) on each file")
    e.add_argument("--list", action="store_true", help="list the units and exit")
    e.set_defaults(func=_export)


def _config_source(spec: str | None) -> str:
    """How the user named the config, for error messages."""
    if spec is None:
        return f"preset {DEFAULT_PRESET!r} (the default)"
    if spec in PRESETS:
        return f"preset {spec!r}"
    return f"config file {spec}"


def _export(args: argparse.Namespace) -> int:
    # Amaranth is imported only when the command runs, so `edgetron --help` stays fast.
    from edgetron.rtl.export import UNITS, build_unit, write_units
    from edgetron.rtl.lint import lint_verilator, lint_yosys

    if args.list:
        for name, spec in UNITS.items():
            print(f"{name:<10} bit-exact with {spec.golden}; timing: {spec.timing}")
        return 0
    if args.output is None:
        raise EdgetronError("rtl export: -o/--output DIR is required")
    if args.unit != "all" and args.unit not in UNITS:
        raise EdgetronError(
            f"rtl export: --unit: unknown unit {args.unit!r}; known: all, {', '.join(UNITS)}"
        )
    cfg = load_config(args.config)
    names = list(UNITS) if args.unit == "all" else [args.unit]
    # Elaborate every requested unit before writing anything: a unit that rejects the
    # config leaves no partial export behind.
    built = []
    for name in names:
        try:
            built.append(build_unit(name, cfg))
        except ValueError as exc:  # a ConfigError, or a unit's own parameter check
            raise ConfigError(
                f"rtl export: unit {name!r} rejects {_config_source(args.config)}: {exc} "
                f"(nothing written to {args.output})"
            ) from None
    failed = 0
    for res in write_units(built, args.output):
        lat = res.manifest_data["latency_cycles"]
        lat_text = f"latency {lat} cycles" if lat is not None else res.manifest_data["timing"]
        print(f"{res.unit}: wrote {res.verilog}, {res.rtlil} and {res.manifest} ({lat_text})")
        if not args.lint:
            continue
        for report in (lint_verilator(res.verilog, res.top), lint_yosys(res.verilog, res.top)):
            print(f"  {report.tool}: {'clean' if report.ok else 'FAILED'}")
            if not report.ok:
                failed += 1
                lines = report.output.splitlines()
                for line in lines[:_MAX_LINT_LINES]:
                    print(f"    {line}")
                if len(lines) > _MAX_LINT_LINES:
                    print(f"    ... {len(lines) - _MAX_LINT_LINES} more lines")
    if failed:
        print(f"lint: {failed} check(s) failed")
        return 1
    return 0
