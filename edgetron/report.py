"""Reports of simulator results: text tables, JSON, and a per-op-kind breakdown plot.

Everything here formats :class:`edgetron.sim.engine.SimResult` objects; nothing is
recomputed. :func:`format_result` is the table of ``edgetron sim``,
:func:`format_comparison` the side-by-side table of ``edgetron compare`` (with the
accuracy rows of deployed models, ``edgetron compare --data``, and the clock behind its
milliseconds), :func:`comparison_rows` that table's rows for other formats,
:func:`plot_breakdown` the matplotlib figure of ``compare --plot`` (cycles and energy per
op kind, one bar per model). The costing report of ``compare --out`` is
:mod:`edgetron.costing`, its plots :mod:`edgetron.plots`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetron.clock import Clock, config_clock
from edgetron.config import AcceleratorConfig
from edgetron.errors import EdgetronError
from edgetron.sim.engine import SimResult
from edgetron.sim.functional import FunctionalResult
from edgetron.workload import KINDS

if TYPE_CHECKING:  # the deploy package loads onnx; reports of plain runs do not need it
    from edgetron.deploy import DeployReport

__all__ = [
    "accuracy_rows",
    "comparison_dict",
    "comparison_rows",
    "config_line",
    "format_comparison",
    "format_result",
    "kind_breakdown",
    "plot_breakdown",
    "plot_path",
    "present_kinds",
    "result_dict",
    "write_json",
]


def kind_breakdown(result: SimResult) -> dict[str, dict[str, float]]:
    """Per op kind: ``ops``, ``macs``, ``cycles``, ``stall_cycles``, ``energy_uj``, ``dram_bytes``.

    Kinds appear in the order of the registry :data:`edgetron.workload.KINDS` (matrix ops
    first); absent kinds are left out.
    """
    out: dict[str, dict[str, float]] = {}
    for r in result.ops:
        v = r.values
        d = out.setdefault(r.kind, {"ops": 0, "macs": 0, "cycles": 0, "stall_cycles": 0,
                                    "energy_uj": 0.0, "dram_bytes": 0})
        d["ops"] += 1
        d["macs"] += v["macs"]
        d["cycles"] += v["cycles"]
        d["stall_cycles"] += v["stall_cycles"]
        d["energy_uj"] += v["energy_pj"] / 1e6
        d["dram_bytes"] += v["dram_read_bytes"] + v["dram_write_bytes"]
    return {k: out[k] for k in KINDS if k in out}


def result_dict(result: SimResult, *,
                functional: FunctionalResult | None = None) -> dict[str, Any]:
    """The JSON document of one run: ``trace``, ``config``, ``totals``, ``ops``, ``by_kind``.

    With ``functional`` also ``functional``: ``ok``, ``ops_checked`` and the failing ops.
    """
    d = result.to_dict()
    d["by_kind"] = kind_breakdown(result)
    if functional is not None:
        d["functional"] = {
            "ok": functional.ok,
            "ops_checked": len(functional.checks),
            "failures": [
                {"index": c.index, "name": c.name, "kind": c.kind, "mismatches": c.mismatches,
                 "elements": c.elements, "calls": c.calls, "expected_calls": c.expected_calls}
                for c in functional.failures
            ],
        }
    return d


def comparison_dict(results: Sequence[SimResult], *,
                    deployments: Sequence[DeployReport] | None = None) -> dict[str, Any]:
    """The config and one entry per model (the core of ``edgetron compare``'s JSON
    document, :func:`edgetron.costing.report_dict`).

    Each entry has ``trace``, ``totals``, ``by_kind`` and ``ops``; with ``deployments``
    also ``deploy``, the model's :meth:`~edgetron.deploy.DeployReport.to_dict`.
    """
    if not results:
        raise ValueError("comparison_dict: no results")
    models = [{"trace": r.trace_name, "totals": r.totals, "by_kind": kind_breakdown(r),
               "ops": r.op_dicts()} for r in results]
    for entry, d in zip(models, deployments or (), strict=False):
        entry["deploy"] = d.to_dict()
    return {"config": results[0].config.to_dict(), "models": models}


def write_json(data: Any, path: str | Path) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-`` for standard output)."""
    text = json.dumps(data, indent=2) + "\n"
    if str(path) == "-":
        print(text, end="")
    else:
        Path(path).write_text(text, encoding="utf-8")


def _percent(part: float, whole: float) -> float:
    """``100 * part / whole``, 0 when ``whole`` is 0 (e.g. an all-zero energy table)."""
    return 100 * part / whole if whole else 0.0


def present_kinds(breakdowns: Sequence[dict[str, Any]]) -> list[str]:
    """The op kinds of :data:`edgetron.workload.KINDS` that occur in any of ``breakdowns``."""
    return [k for k in KINDS if any(k in b for b in breakdowns)]


def _si(v: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f}{unit}"
    return f"{v:.0f}"


def _sram_sizes(sizes: Sequence[int]) -> str:
    """Buffer sizes as ``128/128/64 KiB`` when all are whole KiB, else each with its unit.

    A size that is not a whole number of KiB is given in bytes (``512 B``,
    ``1,536 B``), never rounded.
    """
    if all(b % 1024 == 0 for b in sizes):
        return "/".join(str(b // 1024) for b in sizes) + " KiB"
    return "/".join(f"{b // 1024} KiB" if b % 1024 == 0 else f"{b:,} B" for b in sizes)


def config_line(c: AcceleratorConfig) -> str:
    """One line of the config: name, array, dataflow, clock, buffers, DRAM, vector lanes."""
    sram = _sram_sizes((c.ifmap_sram_bytes, c.weight_sram_bytes, c.ofmap_sram_bytes))
    return (f"{c.name}: {c.rows}x{c.cols} {c.dataflow}, {c.clock_mhz:g} MHz, "
            f"SRAM {sram}, DRAM {c.dram_bytes_per_cycle:g} B/cycle, "
            f"{c.vector_lanes} vector lanes, double buffer {'on' if c.double_buffer else 'off'}")


def _totals_lines(result: SimResult) -> list[str]:
    t = result.totals
    return [
        f"MACs {t['macs']:,}  cycles {t['cycles']:,} (GEMM unit {t['compute_cycles']:,}, "
        f"vector {t['vector_cycles']:,}, DRAM stall {t['stall_cycles']:,})",
        f"utilization {100 * t['utilization']:.1f} %  latency {t['latency_ms']:.3f} ms  "
        f"energy {t['energy_uj']:,.1f} uJ  DRAM {t['dram_bytes'] / 1e6:,.2f} MB  "
        f"SRAM {t['sram_bytes'] / 1e6:,.2f} MB",
    ]


def format_result(result: SimResult, *, per_op: bool = False) -> str:
    """A readable table: config, per-kind breakdown, totals (and every op with ``per_op``)."""
    lines = [f"{result.trace_name} on {config_line(result.config)}"]
    if per_op:
        name_w = max(4, *(len(r.name) for r in result.ops))
        head = (f"{'#':>4}  {'name':<{name_w}}  {'kind':<9}  {'MACs':>9}  {'cycles':>10}  "
                f"{'stall':>9}  {'util %':>6}  {'DRAM B':>9}  {'energy uJ':>10}  tile")
        lines += [head, "-" * len(head)]
        for i, r in enumerate(result.ops):
            d = result.op_dict(i)
            tile = (f"{d['tile_m']}x{d['tile_k']}x{d['tile_n']} x{d['calls']}"
                    if r.unit == "array" else "")
            lines.append(
                f"{i:>4}  {r.name:<{name_w}}  {r.kind:<9}  {_si(d['macs']):>9}  "
                f"{d['cycles']:>10,}  {d['stall_cycles']:>9,}  {100 * d['utilization']:>6.1f}  "
                f"{_si(d['dram_bytes']):>9}  {d['energy_uj']:>10.2f}  {tile}"
            )
        lines.append("")
    total_cycles = result.totals["cycles"]
    total_energy = result.totals["energy_uj"]
    lines.append(f"{'kind':<10} {'ops':>4} {'MACs':>9} {'cycles':>12} {'% cyc':>6} "
                 f"{'stall':>10} {'energy uJ':>11} {'% E':>5}")
    for kind, d in kind_breakdown(result).items():
        lines.append(
            f"{kind:<10} {d['ops']:>4} {_si(d['macs']):>9} {d['cycles']:>12,} "
            f"{_percent(d['cycles'], total_cycles):>6.1f} {d['stall_cycles']:>10,} "
            f"{d['energy_uj']:>11,.1f} {_percent(d['energy_uj'], total_energy):>5.1f}"
        )
    lines += _totals_lines(result)
    return "\n".join(lines)


def _top1(d, which: str) -> str:
    v = d.top1(which)
    return "-" if v is None else f"{100 * v:.2f} %"


def accuracy_rows(deployments: Sequence[DeployReport]) -> list[tuple[str, list[str]]]:
    """The accuracy rows of :func:`format_comparison` for deployed models, one cell each."""
    return [
        ("samples", [f"{d.samples:,}" for d in deployments]),
        ("float top-1", [_top1(d, "float") for d in deployments]),
        ("integer top-1", [_top1(d, "int") for d in deployments]),
        ("agreement", [f"{100 * d.agreement:.2f} %" for d in deployments]),
        ("min layer cosine", [f"{d.cosine_summary()['min']:.4f}" for d in deployments]),
        ("bit-exact", ["yes" if d.bit_exact else "NO" for d in deployments]),
    ]


def comparison_rows(results: Sequence[SimResult], *,
                    deployments: Sequence[DeployReport] | None = None,
                    ) -> list[tuple[str, list[str]]]:
    """The rows of :func:`format_comparison`: ``(label, one cell per model)``.

    Accuracy rows first when ``deployments`` are given (:func:`accuracy_rows`), then the
    cost rows and the share of cycles per op kind. A label indented by two spaces is a
    part of the row above it.
    """
    tots = [r.totals for r in results]
    breakdowns = [kind_breakdown(r) for r in results]
    rows: list[tuple[str, list[str]]] = [] if deployments is None else accuracy_rows(
        deployments)
    rows += [
        ("MACs", [f"{t['macs'] / 1e6:,.1f} M" for t in tots]),
        ("cycles", [f"{t['cycles']:,}" for t in tots]),
        ("  GEMM unit", [f"{t['compute_cycles']:,}" for t in tots]),
        ("  vector unit", [f"{t['vector_cycles']:,}" for t in tots]),
        ("  DRAM stall", [f"{t['stall_cycles']:,}" for t in tots]),
        ("utilization", [f"{100 * t['utilization']:.1f} %" for t in tots]),
        ("latency", [f"{t['latency_ms']:.3f} ms" for t in tots]),
        ("inferences/s", [f"{1e3 / t['latency_ms']:,.1f}" for t in tots]),
        ("energy", [f"{t['energy_uj']:,.1f} uJ" for t in tots]),
        ("  of it DRAM", [f"{_percent(t['energy_by_event_uj']['dram_byte'], t['energy_uj']):.1f} %"
                          for t in tots]),
        ("DRAM traffic", [f"{t['dram_bytes'] / 1e6:,.2f} MB" for t in tots]),
        ("SRAM traffic", [f"{t['sram_bytes'] / 1e6:,.2f} MB" for t in tots]),
    ]
    for k in present_kinds(breakdowns):
        cells = [f"{_percent(b.get(k, {}).get('cycles', 0), t['cycles']):.1f} %"
                 for t, b in zip(tots, breakdowns, strict=True)]
        rows.append((f"cycles in {k}", cells))
    return rows


def format_comparison(results: Sequence[SimResult], *,
                      deployments: Sequence[DeployReport] | None = None,
                      clock: Clock | None = None) -> str:
    """Side-by-side table of several models on one config (metrics as rows).

    With ``deployments`` (one :class:`~edgetron.deploy.DeployReport` per result, from
    ``edgetron compare --data``) the table starts with their accuracy rows
    (:func:`accuracy_rows`) and says what data they were measured on. The second line
    says which clock the milliseconds are at: ``clock`` (:class:`edgetron.clock.Clock`),
    by default the config's ``clock_mhz``.
    """
    if not results:
        raise ValueError("format_comparison: no results")
    names = [r.trace_name for r in results]
    width = max(14, *(len(n) for n in names))
    rows = comparison_rows(results, deployments=deployments)
    clock = clock or config_clock(results[0].config)
    label_w = max(len(label) for label, _ in rows)
    lines = [f"on {config_line(results[0].config)}", f"clock {clock.text}"]
    if deployments:
        d = deployments[0]
        lines.append(f"accuracy on {d.eval_name} ({d.samples:,} samples), calibrated on "
                     f"{d.calib_samples:,} samples of {d.calib_name}; cost per inference")
    lines.append(f"{'':<{label_w}}  " + "  ".join(f"{n:>{width}}" for n in names))
    lines.append("-" * len(lines[-1]))
    for label, cells in rows:
        lines.append(f"{label:<{label_w}}  " + "  ".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def plot_path(path: str | Path) -> Path:
    """The file :func:`plot_breakdown` writes for ``path``: its suffix names the format.

    A path without a suffix gets ``.png`` (what matplotlib would write, made explicit so
    that the caller can say where the plot went).

    Raises
    ------
    EdgetronError
        The suffix is not an image format matplotlib writes (the message lists them).
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    if not path.suffix.strip("."):
        return path.with_name(path.name.rstrip(".") + ".png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise EdgetronError(
            f"{path}: {path.suffix!r} is not an image format matplotlib writes; use one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )
    return path


def plot_breakdown(results: Sequence[SimResult], path: str | Path) -> Path:
    """Save a figure of cycles and energy per op kind, one stacked bar per model.

    Drawn on a standalone :class:`matplotlib.figure.Figure` (no pyplot, no change of the
    caller's backend); the format follows the suffix of ``path`` (``.png`` when it has
    none, see :func:`plot_path`). Returns the path written.
    """
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("plot_breakdown: no results")
    path = plot_path(path)
    names = [r.trace_name for r in results]
    breakdowns = [kind_breakdown(r) for r in results]
    kinds = present_kinds(breakdowns)
    fig = Figure(figsize=(4 + 2.2 * len(results), 4.5))
    axes = fig.subplots(1, 2)
    # (breakdown key, axis label, divisor from the breakdown's unit to the label's)
    for ax, key, label, scale in ((axes[0], "cycles", "cycles (M)", 1e6),
                                  (axes[1], "energy_uj", "energy (mJ)", 1e3)):
        bottom = [0.0] * len(results)
        for kind in kinds:
            vals = [b.get(kind, {}).get(key, 0) / scale for b in breakdowns]
            ax.bar(names, vals, bottom=bottom, label=kind)
            bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
        ax.set_ylabel(label)
        ax.set_title(label.split(" ")[0] + " by op kind")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.suptitle(f"on {results[0].config.name}")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format=path.suffix[1:].lower())
    return path
