"""The costing report of ``edgetron compare --out DIR`` (docs/report.md).

:func:`write_report` writes into DIR:

- ``report.json`` (:func:`report_dict`): what ``edgetron compare --json`` writes, the
  config, the clock and where it came from (with the FPGA results behind a measured
  clock), the roofline's numbers, and per model the totals (those of ``edgetron sim
  --json``), the per-kind breakdown, every op, and its deployment with ``--data``;
- ``latency.png``, ``energy.png``, ``roofline.png`` (:mod:`edgetron.plots`);
- ``report.md`` (:func:`markdown`): the same in Markdown, the plots embedded, a table per
  model of every op.
"""

from __future__ import annotations

import datetime
import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetron import plots
from edgetron.clock import Clock, config_clock
from edgetron.errors import EdgetronError
from edgetron.report import comparison_dict, comparison_rows, config_line, write_json
from edgetron.sim.engine import SimResult

if TYPE_CHECKING:
    from edgetron.deploy import DeployReport

__all__ = ["FORMAT", "PLOTS", "markdown", "report_dict", "roofline_numbers", "write_report"]

#: Name and version of the JSON document (bump the version on incompatible changes).
FORMAT = ("edgetron-report", 1)
#: The report's plots: name -> (file, what it shows).
PLOTS: dict[str, tuple[str, str]] = {
    "latency": ("latency.png", "Latency per op and per op kind"),
    "energy": ("energy.png", "Energy by event and by op kind"),
    "roofline": ("roofline.png", "Roofline of the config with every op that does MACs"),
}


def _version() -> str:
    try:
        return importlib.metadata.version("edgetron")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def roofline_numbers(results: Sequence[SimResult]) -> dict[str, Any]:
    """The roofline's numbers, and per model the share of the MAC ops' cycles spent in
    ops left of the ridge (operational intensity below it: bound by DRAM bandwidth)."""
    cfg = results[0].config
    peak, bw = cfg.peak_macs_per_cycle, plots.dram_roof(cfg)
    ridge = peak / bw
    shares = {}
    for r in results:
        below = total = 0
        for op in r.ops:
            dram = op["dram_read_bytes"] + op["dram_write_bytes"]
            if op["macs"] > 0 and dram > 0:
                total += op["cycles"]
                if op["macs"] / dram < ridge:
                    below += op["cycles"]
        shares[r.trace_name] = below / total if total else 0.0
    return {"peak_macs_per_cycle": peak, "dram_bytes_per_cycle": bw,
            "ridge_macs_per_byte": ridge, "memory_bound_share_of_mac_cycles": shares}


def report_dict(results: Sequence[SimResult], *, clock: Clock | None = None,
                deployments: Sequence[DeployReport] | None = None,
                plot_files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON document of ``edgetron compare`` (``--json`` and ``report.json``).

    Keys: ``format``, ``version``, ``generator`` (edgetron version, date), ``config``
    (the config the models were costed on: ``clock_mhz`` is the clock's), ``clock``
    (:meth:`edgetron.clock.Clock.to_dict`), ``roofline`` (:func:`roofline_numbers`),
    ``plots`` (name -> file, with ``--out``), and ``models``, one entry per model with
    ``trace``, ``totals``, ``by_kind``, ``ops`` and, with ``deployments``, ``deploy``.
    """
    if not results:
        raise ValueError("report_dict: no results")
    clock = clock or config_clock(results[0].config)
    fmt, version = FORMAT
    core = comparison_dict(results, deployments=deployments)
    return {
        "format": fmt,
        "version": version,
        "generator": {"edgetron": _version(), "date": _now()},
        "config": core["config"],
        "clock": clock.to_dict(),
        "roofline": roofline_numbers(results),
        "plots": dict(plot_files or {}),
        "models": core["models"],
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ---- Markdown ---------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks removed."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(head) - 1)
    marks = {"l": "---", "r": "---:"}
    out = ["| " + " | ".join(_cell(h) for h in head) + " |",
           "| " + " | ".join(marks[a] for a in align) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


def _fpga_lines(clock: Clock) -> list[str]:
    lines = ["", "### FPGA resources", "",
             f"Each unit the models run on, synthesised, placed and routed on {clock.target} "
             "by `edgetron fpga` (docs/fpga.md), inside the four-pin wrapper that keeps its "
             "logic live (the wrapper's cost is included; `report.json` has the unit alone).",
             ""]
    rows = []
    for u in clock.units:
        r = u.result
        res = r.resources

        def cell(cat, res=res):
            if cat not in res:
                return "-"
            row = res[cat]
            pct = f" ({row['percent']:.1f} %)" if row.get("percent") is not None else ""
            return f"{_count(row['used'])} of {_count(row['available'])}{pct}"

        path = r.critical_path or {}
        crit = "-"
        if path:
            routing = 100 * path["routing_ns"] / path["delay_ns"] if path["delay_ns"] else 0
            crit = (f"{path['start']['signal']} -> {path['end']['signal']}: "
                    f"{path['delay_ns']:.2f} ns, {routing:.0f} % routing")
        when = f"{u.measured_at[:10]}, {r.steps.get('total', 0):.0f} s" if u.measured_at else (
            f"{r.steps.get('total', 0):.0f} s")
        rows.append([u.unit, ", ".join(u.kinds), f"{r.fmax_mhz:.1f} MHz",
                     cell("logic"), cell("ff"), cell("dsp"), cell("bram"), crit,
                     when + (" (cached)" if u.cached else "")])
    lines += _table(["unit", "runs", "Fmax", "logic", "FF", "DSP", "BRAM",
                     "critical path", "measured"], rows, "llrrrrrll")
    first = clock.units[0].result
    lines += ["", f"Device: {first.device}. Tools: " + "; ".join(
        f"{v}" for v in first.tools.values()) + "."]
    if clock.unmeasured_kinds:
        lines += ["", f"Not measured (no RTL export yet): {', '.join(clock.unmeasured_kinds)}; "
                  "the clock assumes they are not slower than the units above."]
    return lines


def _op_table(r: SimResult) -> list[str]:
    us = 1.0 / r.config.clock_mhz
    rows = []
    for i, d in enumerate(r.op_dicts()):
        intensity = d["macs"] / d["dram_bytes"] if d["macs"] and d["dram_bytes"] else None
        rows.append([i, d["name"], d["kind"], d["hw_unit"], d["shape"], f"{d['macs']:,}",
                     f"{d['cycles']:,}", f"{d['stall_cycles']:,}",
                     f"{100 * d['utilization']:.1f}", f"{d['dram_bytes']:,}",
                     "-" if intensity is None else f"{intensity:,.1f}",
                     f"{d['energy_uj']:,.2f}", f"{d['cycles'] * us:,.2f}"])
    return _table(["#", "op", "kind", "unit", "shape", "MACs", "cycles", "DRAM stall",
                   "util %", "DRAM bytes", "MACs/B", "energy µJ", "latency µs"], rows,
                  "rllllrrrrrrrr")


def markdown(results: Sequence[SimResult], *, clock: Clock | None = None,
             deployments: Sequence[DeployReport] | None = None,
             plot_files: dict[str, str] | None = None) -> str:
    """The Markdown report: clock (and FPGA resources), config, summary table, the
    plots with how to read them, and every op of every model."""
    if not results:
        raise ValueError("markdown: no results")
    cfg = results[0].config
    clock = clock or config_clock(cfg)
    names = [r.trace_name for r in results]
    plot_files = plot_files or {}
    lines = [f"# Costing report: {', '.join(names)} on {cfg.name}", "",
             f"Written by edgetron {_version()} on {_now()[:16].replace('T', ' ')} UTC "
             "(docs/report.md explains every part).", "",
             "## Clock", "", f"**{clock.text}**.", "",
             "Every millisecond below is at this clock; cycles, traffic and energy per "
             "inference do not depend on it."]
    if clock.source == "config":
        lines += ["`--clock fpga:TARGET` takes the clock from the measured Fmax of the "
                  "units on an FPGA instead."]
    else:
        lines += [f"The config assumes {clock.config_mhz:g} MHz (an ASIC-style clock)."]
        lines += _fpga_lines(clock)
    lines += ["", "## Configuration", "", config_line(cfg), ""]
    lines += _table(["field", "value"], [[k, v] for k, v in cfg.to_dict().items()], "ll")
    lines += ["", "## Summary", ""]
    if deployments:
        d = deployments[0]
        lines += [f"Accuracy on {d.eval_name} ({d.samples:,} samples), calibrated on "
                  f"{d.calib_samples:,} samples of {d.calib_name}; cost per inference.", ""]
    rows = comparison_rows(results, deployments=deployments)
    lines += _table(["", *names], [[label.strip() if not label.startswith("  ")
                                    else "&nbsp;&nbsp;" + label.strip(), *cells]
                                   for label, cells in rows])
    roof = roofline_numbers(results)
    for name, (_, title) in PLOTS.items():
        if name not in plot_files:
            continue
        lines += ["", f"## {title}", "", f"![{title}]({plot_files[name]})", ""]
        lines += _PLOT_NOTES[name](roof)
    for r in results:
        lines += ["", f"## Every op of {r.trace_name}", "", *_op_table(r)]
    return "\n".join(lines) + "\n"


_PLOT_NOTES = {
    "latency": lambda roof: [
        "Left, per model: one bar per op in trace order, its height the op's latency at "
        "the clock above, coloured by op kind; the hatched top is the time the op "
        "waits for DRAM (stall). Right: the same summed per op kind, with each kind's "
        "share of the model's cycles."],
    "energy": lambda roof: [
        "Left: energy per inference by event (MACs, int32 adds and multiplies, register, "
        "SRAM and DRAM bytes; docs/simulator.md, section Energy). Right: the same energy "
        "by op kind."],
    "roofline": lambda roof: [
        f"Peak {roof['peak_macs_per_cycle']:,} MACs per cycle (rows x cols), DRAM "
        f"{roof['dram_bytes_per_cycle']:g} bytes per cycle: the ridge is at "
        f"{roof['ridge_macs_per_byte']:g} MACs per DRAM byte. An op left of it cannot "
        "beat the DRAM bandwidth however well the array is used; right of it, only the "
        "array limits it. The distance below the roof is lost to tiling, array fill and "
        "drain, and loads that do not overlap compute. Ops without MACs (vector and "
        "memory ops) have no place on it. Share of the MAC ops' cycles spent left of "
        "the ridge: " + ", ".join(f"{n} {100 * s:.0f} %" for n, s in
                                  roof["memory_bound_share_of_mac_cycles"].items()) + "."],
}


def write_report(out_dir: str | Path, results: Sequence[SimResult], *,
                 clock: Clock | None = None,
                 deployments: Sequence[DeployReport] | None = None) -> list[Path]:
    """Write ``report.md``, ``report.json`` and the PNG plots into ``out_dir`` (created
    if needed; files of the same names are replaced). Returns the paths written.

    Raises
    ------
    EdgetronError
        ``out_dir`` exists and is not a folder.
    """
    if not results:
        raise ValueError("write_report: no results")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EdgetronError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    clock = clock or config_clock(results[0].config)
    figures = {"latency": lambda: plots.latency_figure(results, clock),
               "energy": lambda: plots.energy_figure(results),
               "roofline": lambda: plots.roofline_figure(results, clock)}
    written = []
    files = {}
    for name, (file, _) in PLOTS.items():
        written.append(plots.save(figures[name](), out / file))
        files[name] = file
    write_json(report_dict(results, clock=clock, deployments=deployments, plot_files=files),
               out / "report.json")
    (out / "report.md").write_text(markdown(results, clock=clock, deployments=deployments,
                                            plot_files=files), encoding="utf-8")
    return [out / "report.md", out / "report.json", *written]
