"""Packing the register after an ECP5 multiplier into the multiplier block.

Yosys 0.70's ``synth_ecp5`` maps every ``$mul`` onto a MULT18X18D with all its registers
bypassed, and leaves the product register of the RTL (the PE's ``prod``, the
requantizer's partial products, ...) in fabric flip-flops after it: the product then
leaves the block combinationally and crosses the routing to those flip-flops within
the multiplier's cycle. The block has an output register of its own (``REG_OUTPUT_CLK``)
that nextpnr-ecp5 times as such: with it, the multiplier's cycle ends inside the block.

:func:`pack_output_registers` does on the synthesised netlist what a DSP-aware mapper
would: where *every* used product bit of a MULT18X18D drives exactly one flip-flop and
nothing else, and those flip-flops share one clock (rising edge), one clock enable or
one synchronous reset to zero (not both: Amaranth's ``sync`` domain resets every
register synchronously) and zero initial values, it moves them into the block's output
register (``REG_OUTPUT_CLK = CLK0``, ``CE0`` their enable, ``RST0`` their reset,
``RESETMODE = SYNC``) and deletes them. The circuit is the same: the register the RTL
describes, in the block instead of beside it. Blocks whose outputs go anywhere else keep
their registers bypassed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["ff_control", "net_loads", "pack_output_registers", "param", "rewrite_cells",
           "sole_flip_flops"]

_MULT = "MULT18X18D"
_FF = "TRELLIS_FF"
#: The product bits of a MULT18X18D.
_P_PORTS = tuple(f"P{i}" for i in range(36))
#: Parameters of a MULT18X18D that must still be at their default (no register used).
_REG_PARAMS = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_INPUTC_CLK", "REG_PIPELINE_CLK",
               "REG_OUTPUT_CLK")


def param(cell: dict[str, Any], name: str, default: str = "") -> str:
    """A cell parameter as text (Yosys appends a space to strings that look like bits)."""
    return str(cell.get("parameters", {}).get(name, default)).strip()


def net_loads(module: dict[str, Any]) -> dict[Any, list[tuple[str, str]]]:
    """Every net bit's loads: ``(cell name, input port)``, or ``("", port)`` for a module
    output."""
    loads: dict[Any, list[tuple[str, str]]] = {}
    for name, cell in module.get("cells", {}).items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            if dirs.get(port) != "output":
                for b in bits:
                    loads.setdefault(b, []).append((name, port))
    for port, info in module.get("ports", {}).items():
        if info.get("direction") != "input":
            for b in info.get("bits", []):
                loads.setdefault(b, []).append(("", port))
    return loads


def ff_control(ff: dict[str, Any]) -> tuple | None:
    """The clock, enable, reset and power-up value of a flip-flop that an output register
    can take over, or None: a falling edge, a set initial value, an inverted enable or
    reset, an asynchronous reset, or a reset together with an enable (whose priority the
    block might not share)."""
    conn = ff.get("connections", {})
    if param(ff, "CLKMUX", "CLK") != "CLK" or param(ff, "REGSET", "RESET") != "RESET":
        return None
    cemux = param(ff, "CEMUX", "1")
    if cemux == "1":
        ce = ("1",)
    elif cemux == "CE":
        ce = tuple(conn["CE"])
    else:
        return None
    rst = tuple(conn.get("LSR", ["0"]))
    if rst != ("0",) and (param(ff, "LSRMUX", "LSR") != "LSR" or ce != ("1",)
                          or param(ff, "SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE"):
        return None
    return tuple(conn["CLK"]), ce, rst, param(ff, "GSR", "ENABLED")


def sole_flip_flops(cells: dict[str, Any], conn: dict[str, Any], pins, loads):
    """``(taken, control)``: ``(pin, flip-flop)`` for each of a cell's output ``pins`` that
    drives something, when each drives exactly one TRELLIS_FF's data input and nothing
    else, and those flip-flops share one :func:`ff_control`, which is ``control``; else
    ``([], None)``."""
    taken: list[tuple[str, str]] = []
    for pin in pins:
        bits = conn.get(pin, [])
        if not bits or isinstance(bits[0], str):
            continue
        where = loads.get(bits[0], [])
        if not where:
            continue
        if len(where) != 1 or not where[0][0] or where[0][1] != "DI" \
                or cells[where[0][0]]["type"] != _FF:
            return [], None
        taken.append((pin, where[0][0]))
    controls = {ff_control(cells[ff]) for _, ff in taken}
    if len(controls) != 1 or None in controls:
        return [], None
    return taken, controls.pop()


def rewrite_cells(netlist_path: str | Path, cell_type: str, pack) -> tuple[int, int, int]:
    """Run ``pack(cells, name, loads)`` on every ``cell_type`` cell of a Yosys JSON netlist
    and write it back; ``pack`` returns, per register it could take (a block's, a
    port's), the flip-flops it took (empty: left bypassed). Returns the registers
    packed, the flip-flops removed and the registers left."""
    path = Path(netlist_path)
    netlist = json.loads(path.read_text(encoding="utf-8"))
    packed = removed = left = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        names = [n for n, c in cells.items() if c.get("type") == cell_type]
        if not names:
            continue
        loads = net_loads(module)
        for name in names:
            for took in pack(cells, name, loads):
                packed += bool(took)
                left += not took
                removed += len(took)
    path.write_text(json.dumps(netlist), encoding="utf-8")
    return packed, removed, left


def _pack_one(cells: dict[str, Any], name: str, loads) -> list[str]:
    """Pack the output register of MULT18X18D ``name`` if it can be; the flip-flops it
    took (deleted from ``cells``)."""
    mult = cells[name]
    conn = mult.get("connections", {})
    if any(param(mult, p, "NONE") != "NONE" for p in _REG_PARAMS):
        return []
    taken, control = sole_flip_flops(cells, conn, _P_PORTS, loads)
    if not taken:
        return []
    clk, ce, rst, gsr = control
    for port, ff in taken:
        conn[port] = cells[ff]["connections"]["Q"]
        del cells[ff]
    conn.update({"CLK0": list(clk), "CE0": list(ce), "RST0": list(rst)})
    mult.setdefault("port_directions", {}).update(
        {"CLK0": "input", "CE0": "input", "RST0": "input"})
    mult.setdefault("parameters", {}).update(
        {"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
         "RESETMODE": "SYNC", "GSR": gsr})
    return [ff for _, ff in taken]


def pack_output_registers(netlist_path: str | Path) -> dict[str, int]:
    """Move the product registers after the MULT18X18Ds of a synthesised ECP5 netlist
    (Yosys JSON, rewritten in place) into the blocks' output registers.

    Returns ``{"multipliers": packed blocks, "flip_flops": flip-flops removed,
    "left": blocks left with their registers bypassed}``.
    """
    packed, removed, left = rewrite_cells(netlist_path, _MULT,
                                          lambda cells, name, loads: [
                                              _pack_one(cells, name, loads)])
    return {"multipliers": packed, "flip_flops": removed, "left": left}
