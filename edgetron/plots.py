"""The plots of the costing report (matplotlib, without pyplot: the caller's backend is
kept).

- :func:`latency_figure`: per model, the latency of every op in trace order (coloured by
  kind, its DRAM stall on top) and the latency per op kind;
- :func:`energy_figure`: energy per model by event (MAC, SRAM, DRAM, ...) and by op kind;
- :func:`roofline_figure`: the config's roofline (peak ``rows * cols`` MACs per cycle,
  DRAM bandwidth roof) with every op that does MACs placed on it;

for :mod:`edgetron.costing` (docs/report.md). Each returns a
:class:`matplotlib.figure.Figure` in which every axes has a title, axis labels with units
and a legend; :func:`save` writes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgetron.config import ENERGY_EVENTS, AcceleratorConfig
from edgetron.report import kind_breakdown, plot_path, present_kinds
from edgetron.sim.engine import SimResult
from edgetron.workload import KINDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from edgetron.clock import Clock

__all__ = [
    "dram_roof",
    "energy_figure",
    "latency_figure",
    "roofline_figure",
    "roofline_points",
    "save",
]

#: A marker per op kind (KINDS order) on the roofline.
_MARKERS = ("o", "s", "^", "v", "<", "D", "P", "X", "*", "h")
#: The DRAM-stall part of a bar: hatched black on white (no op kind is white or hatched).
_STALL = {"facecolor": "white", "edgecolor": "0.15", "hatch": "////", "linewidth": 0}
#: Op kind colours: matplotlib's tab10 in KINDS order, its grey (the eighth) replaced by
#: gold so that no kind looks like the stall.
_KIND_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                 "tab:brown", "tab:pink", "gold", "tab:olive", "tab:cyan")


def _kind_colour(kind: str):
    return _KIND_COLOURS[list(KINDS).index(kind) % len(_KIND_COLOURS)]


def _model_colour(i: int):
    from matplotlib import colormaps

    return colormaps["Dark2"](i % 8)


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (format from its suffix, :func:`plot_path`)."""
    path = plot_path(path)
    fig.savefig(path, dpi=120, format=path.suffix[1:].lower())
    return path


# ---- latency ----------------------------------------------------------------------------


def _clock_text(clock: Clock | None, cfg: AcceleratorConfig) -> str:
    return clock.short_text if clock is not None else f"{cfg.clock_mhz:g} MHz"


def latency_figure(results: Sequence[SimResult], clock: Clock | None = None) -> Figure:
    """Per model (one row): latency of every op in trace order, and per op kind.

    Left: one bar per op, its busy time in its kind's colour and its DRAM stall (grey,
    hatched) on top, in microseconds at the results' clock (their config's
    ``clock_mhz``; ``clock`` only names it). Right: the same per op kind, in
    milliseconds, busy and stall stacked, with each kind's share of the total.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if not results:
        raise ValueError("latency_figure: no results")
    fig = Figure(figsize=(13, 3.4 * len(results) + 0.6), layout="constrained")
    axes = fig.subplots(len(results), 2, squeeze=False, width_ratios=(2.6, 1))
    for (ax_op, ax_kind), r in zip(axes, results, strict=True):
        us_per_cycle = 1.0 / r.config.clock_mhz
        kinds = [op.kind for op in r.ops]
        busy = [(op["cycles"] - op["stall_cycles"]) * us_per_cycle for op in r.ops]
        stall = [op["stall_cycles"] * us_per_cycle for op in r.ops]
        x = range(len(r.ops))
        ax_op.bar(x, busy, width=0.85, color=[_kind_colour(k) for k in kinds], linewidth=0)
        ax_op.bar(x, stall, bottom=busy, width=0.85, **_STALL)
        present = [k for k in KINDS if k in kinds]
        handles = [Patch(color=_kind_colour(k), label=k) for k in present]
        handles.append(Patch(**_STALL, label="DRAM stall"))
        # Headroom above the tallest bar for a legend of at most two rows.
        ax_op.set_ylim(0, 1.35 * max(b + s for b, s in zip(busy, stall, strict=True)) or 1)
        ax_op.legend(handles=handles, fontsize="small", ncols=(len(handles) + 1) // 2,
                     loc="upper center")
        total_ms = r.totals["latency_ms"]
        ax_op.set_title(f"{r.trace_name}: latency per op ({len(r.ops)} ops, "
                        f"{total_ms:.3f} ms in all)")
        ax_op.set_xlabel("op index (trace order)")
        ax_op.set_ylabel("latency (µs)")
        ax_op.set_xlim(-1, len(r.ops))

        b = kind_breakdown(r)
        names = list(b)
        ms_per_cycle = us_per_cycle / 1e3
        kb = [(b[k]["cycles"] - b[k]["stall_cycles"]) * ms_per_cycle for k in names]
        ks = [b[k]["stall_cycles"] * ms_per_cycle for k in names]
        y = range(len(names))
        ax_kind.barh(y, kb, color=[_kind_colour(k) for k in names], label="busy")
        ax_kind.barh(y, ks, left=kb, **_STALL)
        ax_kind.set_yticks(list(y), names)
        ax_kind.invert_yaxis()
        for i, k in enumerate(names):
            share = 100 * b[k]["cycles"] / r.totals["cycles"] if r.totals["cycles"] else 0
            ax_kind.annotate(f" {share:.1f} %", (kb[i] + ks[i], i), va="center",
                             fontsize="small")
        ax_kind.set_xlim(0, 1.25 * max(p + q for p, q in zip(kb, ks, strict=True)) or 1)
        ax_kind.set_title(f"{r.trace_name}: latency by op kind")
        ax_kind.set_xlabel("latency (ms)")
        ax_kind.set_ylabel("op kind")
        ax_kind.legend(handles=[Patch(color="0.3", label="busy (colour of the kind)"),
                                Patch(**_STALL, label="DRAM stall")],
                       fontsize="small", loc="lower right")
    fig.suptitle(f"Latency on {results[0].config.name} at {_clock_text(clock, results[0].config)}")
    return fig


# ---- energy -----------------------------------------------------------------------------


def energy_figure(results: Sequence[SimResult]) -> Figure:
    """Energy per inference: a stacked bar per model by event (left) and by op kind
    (right), in uJ (mJ when a model takes 1 mJ or more)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("energy_figure: no results")
    names = [r.trace_name for r in results]
    top = max(r.totals["energy_uj"] for r in results)
    unit, scale = ("mJ", 1e3) if top >= 1e3 else ("µJ", 1.0)
    fig = Figure(figsize=(5 + 2.6 * len(results), 4.8), layout="constrained")
    ax_ev, ax_kind = fig.subplots(1, 2)
    by_event = [r.totals["energy_by_event_uj"] for r in results]
    bottom = [0.0] * len(results)
    for i, event in enumerate(ENERGY_EVENTS):
        vals = [e[event] / scale for e in by_event]
        ax_ev.bar(names, vals, bottom=bottom, label=event, color=colormaps["Set2"](i % 8))
        bottom = [a + v for a, v in zip(bottom, vals, strict=True)]
    ax_ev.set_title("Energy by event")
    breakdowns = [kind_breakdown(r) for r in results]
    bottom = [0.0] * len(results)
    for kind in present_kinds(breakdowns):
        vals = [bd.get(kind, {}).get("energy_uj", 0) / scale for bd in breakdowns]
        ax_kind.bar(names, vals, bottom=bottom, label=kind, color=_kind_colour(kind))
        bottom = [a + v for a, v in zip(bottom, vals, strict=True)]
    ax_kind.set_title("Energy by op kind")
    for ax in (ax_ev, ax_kind):
        ax.set_xlabel("model")
        ax.set_ylabel(f"energy per inference ({unit})")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    cfg = results[0].config
    fig.suptitle(f"Energy on {cfg.name} ({cfg.energy_table} event energies"
                 + (", with overrides)" if cfg.energy_overrides else ")"))
    return fig


# ---- roofline ---------------------------------------------------------------------------


def dram_roof(cfg: AcceleratorConfig) -> float:
    """The DRAM bandwidth of the roofline, bytes per cycle (the config's one DRAM port)."""
    return cfg.dram_bytes_per_cycle


def roofline_points(result: SimResult) -> tuple[list[tuple[float, float, str]], int, int]:
    """The ops placed on the roofline, and what is left out.

    Returns
    -------
    points : list of (intensity, performance, kind, share)
        Per op that does MACs and moves DRAM bytes: MACs per DRAM byte, MACs per
        cycle, its kind and its share of the model's cycles.
    left_out : int
        Ops without MACs (vector and memory ops: no place on a MAC roofline) or
        without DRAM traffic (no operational intensity).
    left_out_cycles : int
        Their cycles.
    """
    points, left, left_cycles = [], 0, 0
    total = result.totals["cycles"] or 1
    for op in result.ops:
        dram = op["dram_read_bytes"] + op["dram_write_bytes"]
        if op["macs"] > 0 and dram > 0 and op["cycles"] > 0:
            points.append((op["macs"] / dram, op["macs"] / op["cycles"], op.kind,
                           op["cycles"] / total))
        else:
            left += 1
            left_cycles += op["cycles"]
    return points, left, left_cycles


def roofline_figure(results: Sequence[SimResult], clock: Clock | None = None) -> Figure:
    """The config's roofline with every op that does MACs placed on it.

    Log-log: operational intensity (MACs per DRAM byte) against performance (MACs per
    cycle). The roof is ``min(rows * cols, BW * intensity)``, ``BW`` the config's DRAM
    bytes per cycle (:func:`dram_roof`), with its ridge point marked; one colour per
    model, one marker per op kind, the marker's area proportional to the op's share of
    its model's cycles. The right axis gives GMAC/s at the results' clock.
    """
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not results:
        raise ValueError("roofline_figure: no results")
    cfg = results[0].config
    peak, bw = cfg.peak_macs_per_cycle, dram_roof(cfg)
    ridge = peak / bw
    fig = Figure(figsize=(9.5, 6.2), layout="constrained")
    ax = fig.add_subplot()
    handles: list = []
    xs: list[float] = [ridge]
    ys: list[float] = []
    kinds_seen: list[str] = []
    notes = []
    for i, r in enumerate(results):
        points, left, left_cycles = roofline_points(r)
        colour = _model_colour(i)
        for kind in KINDS:
            pts = [(x, y, share) for x, y, k, share in points if k == kind]
            if not pts:
                continue
            if kind not in kinds_seen:
                kinds_seen.append(kind)
            px, py, shares = zip(*pts, strict=True)
            ax.scatter(px, py, s=[12 + 1500 * sh for sh in shares], color=colour, alpha=0.6,
                       edgecolors="white", linewidths=0.4,
                       marker=_MARKERS[list(KINDS).index(kind) % len(_MARKERS)])
            xs += px
            ys += py
        handles.append(Line2D([], [], color=colour, marker="o", linestyle="",
                              label=f"{r.trace_name} ({len(points)} ops)"))
        if left:
            share = 100 * left_cycles / r.totals["cycles"] if r.totals["cycles"] else 0
            notes.append(f"{r.trace_name}: {left} ops without MACs or DRAM bytes not "
                         f"shown ({share:.0f} % of its cycles)")
    for kind in KINDS:
        if kind in kinds_seen:
            handles.append(Line2D([], [], color="0.3", linestyle="", label=kind,
                                  marker=_MARKERS[list(KINDS).index(kind) % len(_MARKERS)]))
    lo, hi = min(xs) / 4, max(xs) * 4
    grid = np.geomspace(lo, hi, 256)
    (roof,) = ax.plot(grid, np.minimum(peak, bw * grid), color="black", linewidth=1.6,
                      label=f"roof: min({peak:,} MACs/cycle, {bw:g} B/cycle x intensity)")
    ax.axvline(ridge, color="black", linestyle=":", linewidth=1)
    ax.annotate(f"ridge: {ridge:g} MACs per byte", (ridge, peak), textcoords="offset points",
                xytext=(6, 6), fontsize="small")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(min([*ys, peak]) / 4, peak * 2.5)
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("performance (MACs per cycle)")
    mhz = cfg.clock_mhz
    sec = ax.secondary_yaxis("right", functions=(lambda y: y * mhz / 1e3,
                                                 lambda g: g * 1e3 / mhz))
    sec.set_ylabel(f"GMAC/s at {mhz:g} MHz")
    ax.legend(handles=[roof, *handles], fontsize="small", loc="lower right")
    ax.grid(True, which="major", linewidth=0.4, alpha=0.5)
    ax.set_title(f"Roofline of {cfg.name}: {cfg.rows}x{cfg.cols} array, DRAM {bw:g} B/cycle, "
                 f"at {_clock_text(clock, cfg)}", fontsize="medium")
    notes.append("marker area: the op's share of its model's cycles")
    ax.text(0.01, 0.99, "\n".join(notes), transform=ax.transAxes, va="top", fontsize="x-small")
    return fig
