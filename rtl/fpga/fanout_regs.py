"""Copies of a flip-flop per group of its loads (register replication) on an ECP5 netlist.

A register that drives many cells (a block-RAM address into 16 DP16KD, a FIFO's read
pointer into 256 multiplexers, a bank select into a whole anti-diagonal of PEs) reaches
the farthest of them across the die: on the edge-8 GEMM unit such nets cost 8-9 ns of
routing with no logic on them (docs/fpga.md). The RTL cannot keep copies of a register:
Yosys merges flip-flops with the same inputs (``opt_merge``), ``keep`` attributes
included. :func:`replicate_registers` copies them after synthesis, where nothing merges
them again: a flip-flop with more than ``max_loads`` loads gets ``ceil(loads /
max_loads) - 1`` copies (same data input, clock, enable, reset, parameters), and its
loads are split among the original and the copies in groups of neighbouring cells,
neighbouring by name: Yosys names every cell after the net it drives, so the loads of one
PE, of one memory column or of one output word sort together. The placer then puts each
copy beside its group. The circuit is the same: every copy holds the original's value in
every cycle.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .dsp_regs import net_loads

__all__ = ["DEFAULT_MAX_LOADS", "check_max_loads", "replicate_registers"]

_FF = "TRELLIS_FF"
#: Loads per flip-flop above which the flow copies it (``edgetron fpga``'s default).
DEFAULT_MAX_LOADS = 16


def _natural(name: str) -> tuple:
    """Sort key of a cell name with its numbers compared as numbers (``pe_2`` < ``pe_10``)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _groups(loads: list[tuple[str, str]], max_loads: int) -> list[list[tuple[str, str]]]:
    """``loads`` (cell, port) in name order, split into equal runs of at most
    ``max_loads`` cells; the ports of one cell stay in one run."""
    by_cell: dict[str, list[tuple[str, str]]] = {}
    for cell, port in loads:
        by_cell.setdefault(cell, []).append((cell, port))
    names = sorted(by_cell, key=_natural)
    n = -(-len(names) // max_loads)
    runs = [names[len(names) * i // n:len(names) * (i + 1) // n] for i in range(n)]
    return [[lp for cell in run for lp in by_cell[cell]] for run in runs]


def check_max_loads(max_loads) -> None:
    """Raise ValueError unless ``max_loads`` is an integer >= 2."""
    if isinstance(max_loads, bool) or not isinstance(max_loads, int) or max_loads < 2:
        raise ValueError(f"--max-fanout {max_loads!r}: expected an integer >= 2, or 0 "
                         f"(no copies)")


def _max_bit(module: dict[str, Any]) -> int:
    """The highest net bit number used in ``module`` (cells, ports and net names)."""
    lists = [bits for c in module.get("cells", {}).values()
             for bits in c.get("connections", {}).values()]
    lists += [p.get("bits", []) for p in module.get("ports", {}).values()]
    lists += [n.get("bits", []) for n in module.get("netnames", {}).values()]
    return max((b for bits in lists for b in bits if isinstance(b, int)), default=1)


def replicate_registers(netlist_path: str | Path,
                        max_loads: int = DEFAULT_MAX_LOADS) -> dict[str, int]:
    """Give every flip-flop of a synthesised ECP5 netlist (Yosys JSON, rewritten in place)
    that drives more than ``max_loads`` cells a copy per further ``max_loads`` of them.

    Loads on module ports stay with the original. Returns ``{"registers": flip-flops
    copied, "copies": flip-flops added}``.

    Raises
    ------
    ValueError
        ``max_loads`` below 2.
    """
    check_max_loads(max_loads)
    path = Path(netlist_path)
    netlist = json.loads(path.read_text(encoding="utf-8"))
    registers = copies = 0
    for module in netlist.get("modules", {}).values():
        cells: dict[str, Any] = module.get("cells", {})
        ffs = [n for n, c in cells.items() if c.get("type") == _FF]
        if not ffs:
            continue
        loads = net_loads(module)
        netnames = module.setdefault("netnames", {})
        next_bit = _max_bit(module) + 1
        for name in ffs:
            q = cells[name]["connections"]["Q"][0]
            cell_loads = [lp for lp in loads.get(q, []) if lp[0]]
            if len({cell for cell, _ in cell_loads}) <= max_loads:
                continue
            registers += 1
            for k, group in enumerate(_groups(cell_loads, max_loads)[1:], start=1):
                copy = json.loads(json.dumps(cells[name]))
                copy["connections"]["Q"] = [next_bit]
                cells[f"{name}$copy{k}"] = copy
                netnames[f"{name}$copy{k}.Q"] = {"hide_name": 0, "bits": [next_bit],
                                                  "attributes": {}}
                for cell, port in group:
                    bits = cells[cell]["connections"][port]
                    cells[cell]["connections"][port] = [next_bit if b == q else b
                                                        for b in bits]
                next_bit += 1
                copies += 1
    path.write_text(json.dumps(netlist), encoding="utf-8")
    return {"registers": registers, "copies": copies}
