"""Reading what the tools wrote: Yosys ``stat -json``, nextpnr's ``--report`` JSON and log;
and the text report of a result (:func:`format_result`).

Pure functions over text and parsed JSON, so that they are tested on recorded snippets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .targets import CATEGORIES, Target

__all__ = ["critical_path", "fit_error", "fmax", "format_result", "pin_fed_inputs", "resource_rows",
           "slow_endpoints", "synth_cells", "unit_name"]

#: One line of nextpnr's "Device utilisation" block: ``Info:     MULT18X18D:   200/  156  128%``.
_UTIL_LINE = re.compile(r"^Info:\s+(\S+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$", re.M)
#: A primitive-type token that Yosys and nextpnr append to a signal name when they name
#: the cells built from it (``core.a_cnt_TRELLIS_FF_Q_9``, ``core.x_LUT4_Z``).
_GENERATED_SUFFIX = re.compile(r"_[A-Z][A-Z0-9]+(?:_|$)")
#: What nextpnr appends to the cells it splits while packing (``x$CCU2_COMB0``).
_NEXTPNR_SUFFIX = re.compile(r"\$(?=[A-Z])")


def synth_cells(stat: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """Cell counts by type of the whole design from Yosys ``stat -json`` output.

    Yosys's bookkeeping cells (``$scopeinfo``) and the types named in ``exclude`` (a
    black box) are left out.
    """
    try:
        by_type = stat["design"]["num_cells_by_type"]
    except (KeyError, TypeError):
        raise ValueError("yosys stat -json output has no design.num_cells_by_type") from None
    return {k: int(v) for k, v in sorted(by_type.items())
            if not k.startswith("$") and k not in exclude}


def _weights(target: Target, category: str, util: Mapping[str, Any]) -> dict[str, float]:
    weights = dict(target.resources.get(category, {}))
    if target.family == "gowin" and category == "dsp":
        # A Gowin DSP bel type counts as the number of MULT18X18 sites it takes: the
        # ratio of the site counts (MULT9X9 half, MULT36X36 four, ...).
        base = util.get("MULT18X18", {}).get("available", 0)
        weights = {k: base / util[k]["available"] for k in weights
                   if util.get(k, {}).get("available")}
    return weights


def resource_rows(target: Target, util: Mapping[str, Any],
                  cells: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """The categories of :data:`~.targets.CATEGORIES` from nextpnr's utilisation.

    Parameters
    ----------
    target : Target
    util : mapping
        The ``utilization`` object of nextpnr's JSON report (bel type -> used, available).
    cells : mapping
        Synthesised cell counts, for the iCE40 flip-flops that nextpnr does not count.

    Returns
    -------
    dict
        Category -> ``{"used", "available", "percent", "source"}``; ``source`` names the
        bel types summed (or ``synthesis``).
    """
    rows: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        cap_type = target.capacity.get(category)
        if cap_type is None:
            continue
        available = int(util.get(cap_type, {}).get("available", 0))
        if category == "ff" and target.family == "ice40":
            used = sum(n for k, n in cells.items() if k.startswith("SB_DFF"))
            source = "synthesis (SB_DFF*)"
        else:
            weights = _weights(target, category, util)
            used = sum(util.get(k, {}).get("used", 0) * w for k, w in weights.items())
            source = " + ".join(k for k in weights if util.get(k, {}).get("used"))
            source = source or cap_type
        used = round(used, 2) if used != int(used) else int(used)
        rows[category] = {
            "used": used, "available": available,
            "percent": round(100.0 * used / available, 1) if available else None,
            "source": source,
        }
    return rows


def fmax(report: Mapping[str, Any]) -> tuple[float, float | None]:
    """``(achieved MHz, constraint MHz)`` of the slowest clock in a nextpnr report.

    Raises
    ------
    ValueError
        The report has no clock (a design without registers).
    """
    clocks = report.get("fmax") or {}
    if not clocks:
        raise ValueError("nextpnr report has no clock in 'fmax' (no clocked path?)")
    slowest = min(clocks.values(), key=lambda c: c["achieved"])
    return float(slowest["achieved"]), slowest.get("constraint")


def unit_name(cell: str) -> str:
    """The RTL signal a tool-generated cell name comes from.

    ``core.a_cnt_TRELLIS_FF_Q_9`` -> ``core.a_cnt``; ``core.x$CCU2_COMB0`` -> ``core.x``.
    Names are cut at the first all-caps primitive token (Amaranth names are lower case;
    its internal names such as ``$signature__addr$26`` keep their ``$``).
    """
    name = _NEXTPNR_SUFFIX.split(cell, 1)[0]
    match = _GENERATED_SUFFIX.search(name)
    return name[:match.start()] if match else name


def _cell_type(cell: str, netlist_types: Mapping[str, str]) -> str | None:
    """The synthesised type of a placed cell: its own name, or the name before the part
    nextpnr adds when it packs (``$CCU2_COMB0`` on ECP5, ``_LC`` on iCE40); a cell nextpnr
    creates (``$nextpnr_ICESTORM_LC_2``) is of the type it names."""
    base = _NEXTPNR_SUFFIX.split(cell, 1)[0]
    for name in (cell, base, base.removesuffix("_LC")):
        if name in netlist_types:
            return netlist_types[name]
    created = re.match(r"\$nextpnr_([A-Z][A-Z0-9_]*?)(?:_\d+)?$", cell)
    return created.group(1) if created else None


def critical_path(report: Mapping[str, Any],
                  netlist_types: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Summary of the worst register-to-register path in a nextpnr report.

    Parameters
    ----------
    report : mapping
        nextpnr's ``--report`` JSON.
    netlist_types : mapping, optional
        Cell name -> cell type of the synthesised netlist, to name the primitive types
        the path goes through.

    Returns
    -------
    dict or None
        ``start`` and ``end`` (cell, port, and the RTL ``signal`` it comes from), total
        ``delay_ns`` split into ``logic_ns`` and ``routing_ns``, ``levels`` (logic cells
        traversed) and ``through`` (primitive type -> count, when ``netlist_types`` is
        given); None when the report has no clock-to-clock path.
    """
    paths = [p for p in report.get("critical_paths", [])
             if p.get("from", "").startswith("posedge") and p.get("to", "").startswith("posedge")
             and p.get("path")]
    if not paths:
        return None
    segs = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))["path"]
    first, last = segs[0], segs[-1]
    logic = sum(s["delay"] for s in segs if s["type"] != "routing")
    routing = sum(s["delay"] for s in segs if s["type"] == "routing")
    logic_cells = [s["from"]["cell"] for s in segs if s["type"] == "logic"]
    out: dict[str, Any] = {
        "start": {"cell": first["from"]["cell"], "port": first["from"]["port"],
                  "signal": unit_name(first["from"]["cell"])},
        "end": {"cell": last["to"]["cell"], "port": last["to"]["port"],
                "signal": unit_name(last["to"]["cell"])},
        "delay_ns": round(logic + routing, 3),
        "logic_ns": round(logic, 3),
        "routing_ns": round(routing, 3),
        "levels": len(logic_cells),
    }
    # The net driven by the start register adds the bit index, when Yosys kept the
    # register's name on it (it may name the net after a sink instead).
    nets = [s.get("net") for s in segs if s["type"] == "routing" and s.get("net")]
    if nets and unit_name(nets[0]).split("[", 1)[0] == out["start"]["signal"]:
        out["start"]["signal"] = _NEXTPNR_SUFFIX.split(nets[0], 1)[0]
    if netlist_types is not None:
        kinds = Counter(_cell_type(c, netlist_types) or "?" for c in logic_cells)
        out["through"] = dict(kinds.most_common())
    return out


#: Bit and element indices in a signal name (``acc_q_d1[3]``, ``shifted_3``, ``pe_2_4``),
#: folded so that the endpoints of one register, lane or PE row count as one group.
_INDEX = re.compile(r"\[\d+\]|(?<=_)\d+(?=_|$)|(?<=\.)\d+(?=\.|$)")


#: Combinational cell types of the synthesised netlists (ECP5, iCE40, Gowin): a signal from
#: an input pin passes them on the same cycle.
_COMB_TYPES = frozenset({"LUT4", "PFUMX", "L6MUX21", "CCU2C", "SB_LUT4", "SB_CARRY", "LUT1",
                         "LUT2", "LUT3", "MUX2_LUT5", "MUX2_LUT6", "MUX2_LUT7", "MUX2_LUT8",
                         "ALU"})


def pin_fed_inputs(module: Mapping[str, Any], clock: str = "clk") -> set[tuple[str, str]]:
    """The inputs ``(cell, port)`` of the clocked cells that an input pin of ``module`` (a
    synthesised Yosys JSON module; the clock excepted) reaches through logic alone.

    nextpnr times a pin's paths as starting from ``<async>``, but its per-endpoint report
    does not say whether an arrival comes from a pin or a register, so those endpoints
    are told apart here (the wrapper's ``rst`` reaches every register's reset through
    the logic Yosys merges into it).
    """
    ports = module.get("ports", {})
    reached = {b for name, port in ports.items()
               if port.get("direction") == "input" and name != clock
               for b in port.get("bits", []) if isinstance(b, int)}
    cells = module.get("cells", {})
    sinks: dict[int, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        for port, bits in cell.get("connections", {}).items():
            if cell.get("port_directions", {}).get(port) == "input":
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, port))
    fed: set[tuple[str, str]] = set()
    todo = list(reached)
    while todo:
        for name, port in sinks.get(todo.pop(), ()):
            cell = cells[name]
            if cell.get("type") not in _COMB_TYPES:
                fed.add((name, port))
                continue
            for out, bits in cell.get("connections", {}).items():
                if cell.get("port_directions", {}).get(out) != "output":
                    continue
                for b in bits:
                    if isinstance(b, int) and b not in reached:
                        reached.add(b)
                        todo.append(b)
    return fed


def slow_endpoints(report: Mapping[str, Any], constraint_mhz: float | None,
                   top: int = 12,
                   pin_fed: set[tuple[str, str]] = frozenset()) -> dict[str, Any] | None:
    """The register inputs whose clock-to-clock arrival exceeds the clock period.

    nextpnr gives one critical path per clock; with ``--detailed-timing-report`` its
    report also holds the arrival time at every endpoint (``detailed_net_timings``).
    This counts the endpoints later than ``1000 / constraint_mhz`` ns and groups them by
    the RTL signal they belong to, indices folded (``shifted_3[14]`` -> ``shifted_#``),
    so that the paths to fix next are all in one list. Endpoints in ``pin_fed``
    (:func:`pin_fed_inputs`) are counted apart, as ``pin_fed``: their arrival may be an
    input pin's.

    Returns
    -------
    dict or None
        ``period_ns``, ``endpoints`` (clocked endpoints in the report), ``over``
        (endpoints later than the period), ``pin_fed`` and ``groups``: the ``top`` worst
        groups, each ``{"signal", "port", "endpoints", "worst_ns"}``, worst first. None
        when the report has no detailed timing or there is no constraint.
    """
    nets = report.get("detailed_net_timings")
    if not nets or not constraint_mhz:
        return None
    period = 1000.0 / constraint_mhz
    total = 0
    from_pins: set[tuple[str, str]] = set()
    groups: dict[str, dict[str, Any]] = {}
    for net in nets:
        if not str(net.get("event", "")).startswith("posedge"):
            continue
        for ep in net.get("endpoints", []):
            if not str(ep.get("event", "")).startswith("posedge"):
                continue
            if (ep["cell"], ep["port"]) in pin_fed:
                from_pins.add((ep["cell"], ep["port"]))
                continue
            total += 1
            arrival = float(ep["delay"][-1])
            if arrival <= period:
                continue
            signal = _INDEX.sub("#", unit_name(ep["cell"]))
            g = groups.setdefault(signal, {"signal": signal, "port": ep["port"],
                                           "endpoints": 0, "worst_ns": 0.0})
            g["endpoints"] += 1
            if arrival > g["worst_ns"]:
                g["worst_ns"], g["port"] = round(arrival, 3), ep["port"]
    worst = sorted(groups.values(), key=lambda g: -g["worst_ns"])
    return {"period_ns": round(period, 3), "endpoints": total, "pin_fed": len(from_pins),
            "over": sum(g["endpoints"] for g in worst), "groups": worst[:top]}


def fit_error(log_text: str, target: Target) -> str | None:
    """What does not fit, from nextpnr's log: the resource, used, available, and excess.

    Reads the "Device utilisation" block nextpnr prints after packing, before placing.
    Returns None when every bel type fits.
    """
    over = [(name, int(used), int(avail)) for name, used, avail in _UTIL_LINE.findall(log_text)
            if int(used) > int(avail)]
    if not over:
        return None
    parts = [f"{name} {used} used, {avail} available ({used - avail} too many, "
             f"{100.0 * used / avail if avail else float('inf'):.0f} %)"
             for name, used, avail in over]
    return f"the design does not fit {target.name} ({target.device}): " + "; ".join(parts)


def _fmt_count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


def format_result(r) -> str:
    """Human-readable report of one :class:`~.flow.FpgaResult` (what ``edgetron fpga``
    prints)."""
    lines = [f"{r.unit} ({r.top}) for {r.config['name']} on {r.target}: {r.device}"]
    if r.place_and_route:
        met = ("met" if r.constraint_mhz and r.fmax_mhz >= r.constraint_mhz else "NOT met")
        lines.append(f"  Fmax       {r.fmax_mhz:.1f} MHz (constraint {r.constraint_mhz:g} MHz "
                     f"{met}; router {r.options['router']}, seed {r.options['seed']})")
    else:
        lines.append("  synthesis estimate only (no place and route for this target)")
    lines.append(f"  {'resource':<10} {'used':>10} {'available':>10} {'%':>6}  "
                 f"{'unit alone':>10}  source")
    for cat, row in r.resources.items():
        avail = _fmt_count(row["available"]) if row["available"] else "-"
        pct = f"{row['percent']:.1f}" if row["percent"] is not None else "-"
        alone = r.unit_resources.get(cat, "-")
        alone = _fmt_count(alone) if alone != "-" else alone
        lines.append(f"  {cat:<10} {_fmt_count(row['used']):>10} {avail:>10} {pct:>6}  "
                     f"{alone:>10}  {row['source']}")
    if r.wrapper is not None:
        w = r.wrapper
        lines.append(f"  wrapped:   {w['input_bits']} input bits shifted in from one pin, "
                     f"{w['output_bits']} output bits registered and XOR-reduced to one; "
                     f"wrapper cost {w['logic']} logic, {w['ff']} FF (subtracted in "
                     "'unit alone')")
    if r.options.get("lut_multipliers"):
        lines.append(f"  DSP budget {r.options['dsp_budget']} blocks: "
                     f"{r.options['lut_multipliers']} multipliers built from LUTs")
    packed = r.options.get("dsp_output_registers")
    if packed:
        lines.append(f"  DSP regs   {packed['multipliers']} multipliers took the register "
                     f"after them ({packed['flip_flops']} flip-flops); {packed['left']} "
                     "left bypassed")
    packed = r.options.get("bram_output_registers")
    if packed:
        lines.append(f"  BRAM regs  {packed['ports']} block-RAM read ports took the register "
                     f"after them ({packed['flip_flops']} flip-flops); {packed['left']} "
                     "left bypassed")
    copies = r.options.get("register_copies")
    if copies and copies["registers"]:
        lines.append(f"  fan-out    {copies['registers']:,} flip-flops with more than "
                     f"{r.options['max_fanout']} loads got {copies['copies']:,} copies")
    if r.options.get("placer_density"):
        lines.append(f"  placement  spread to {r.options['placer_density']:g} of each region "
                     "(a large design, flow.SPREAD_ABOVE)")
    if r.critical_path is not None:
        p = r.critical_path
        through = ", ".join(f"{n} {k}" for k, n in p.get("through", {}).items())
        lines.append(f"  critical   {p['start']['signal']} -> {p['end']['signal']} "
                     f"({p['end']['port']}): {p['delay_ns']:.2f} ns = {p['logic_ns']:.2f} logic "
                     f"+ {p['routing_ns']:.2f} routing, {p['levels']} cells")
        if through:
            lines.append(f"             through {through}")
    if r.slow_endpoints:
        s = r.slow_endpoints
        over = f"{s['over']:,}" if s["over"] else "none"
        lines.append(f"  slow       {over} of {s['endpoints']:,} endpoints later "
                     f"than {s['period_ns']:g} ns ({s['pin_fed']:,} fed from a pin not counted)"
                     + ("; worst signals:" if s["groups"] else ""))
        lines += [f"             {g['worst_ns']:6.2f} ns  {g['endpoints']:5,}  {g['signal']} "
                  f"({g['port']})" for g in s["groups"]]
    lines.append("  time       " + ", ".join(f"{k} {v:.1f} s" for k, v in r.steps.items()))
    for name, version in r.tools.items():
        lines.append(f"  {name:<10} {version}")
    return "\n".join(lines)
