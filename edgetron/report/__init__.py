"""Reports of simulator results: text tables, JSON, plots and the costing report.

Everything here formats :class:`edgetron.sim.engine.SimResult` objects; nothing is
recomputed.

- :mod:`.tables`: the tables of ``edgetron sim`` (:func:`format_result`) and ``edgetron
  compare`` (:func:`format_comparison`), their JSON (:func:`result_dict`,
  :func:`comparison_dict`);
- :mod:`.plots`: the per-op-kind breakdown of ``compare --plot`` (:func:`plot_breakdown`)
  and the report's latency, energy and roofline figures;
- :mod:`.costing`: the costing report of ``compare --out DIR`` (:func:`write_report`:
  ``report.md``, ``report.json``, the plots; docs/report.md).
"""

from .costing import report_dict, write_report
from .plots import plot_breakdown, plot_path
from .tables import (
    accuracy_rows,
    comparison_dict,
    comparison_rows,
    config_line,
    format_comparison,
    format_result,
    kind_breakdown,
    result_dict,
    write_json,
)

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
    "report_dict",
    "result_dict",
    "write_json",
    "write_report",
]
