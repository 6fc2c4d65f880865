"""Packing the register after an ECP5 block-RAM read into the block's output register.

Yosys 0.70's ``synth_ecp5`` maps a synchronous memory read onto a DP16KD with its output
register bypassed (``REGMODE_x = NOREG``) and leaves the register the RTL puts after
the read (the A/W buffer's read register, the accumulator's ``acc_q``, ...) in fabric
flip-flops: the word then leaves the block through its slow unregistered output
(nextpnr-ecp5 times the DP16KD by its ``REGMODE``) and crosses the routing to those
flip-flops within the read's cycle. The block has an output register of its own per
port (``REGMODE_x = OUTREG``, enabled by ``OCEx``), one cycle after the read, which is
exactly where the RTL's register is.

:func:`pack_output_registers` moves it there on the synthesised netlist, port by port:
where *every* read bit of the port drives exactly one flip-flop and nothing else, and
those flip-flops share the port's clock (rising edge), one clock enable or one
synchronous reset to zero (Amaranth's ``sync`` domain resets every register) and zero
initial values, they become the port's output register (``OCEx`` their enable, ``RSTx``
their reset, ``RESETMODE = SYNC``; the other port's reset must be unused) and are
deleted. Blocks in their 36-bit mode (``DATA_WIDTH`` 36: one read leaves on both
ports' data pins) are left alone, and so are ports whose read bits go anywhere else.

The circuit is the same but for one corner, if ``RSTx`` also clears the block's read
latch (Lattice's documentation leaves it open): in the first cycle after a reset the
register then holds 0 rather than a word read during the reset. Every valid bit of the
units is reset with it, so no such word is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dsp_regs import ff_control, net_loads, param

__all__ = ["pack_output_registers"]

_BRAM = "DP16KD"
_FF = "TRELLIS_FF"


def _width(ram: dict[str, Any], port: str) -> int:
    """``DATA_WIDTH_<port>`` of a DP16KD (Yosys writes integers as 32 binary digits)."""
    text = param(ram, f"DATA_WIDTH_{port}", "18")
    return int(text, 2) if len(text) == 32 else int(text)


def _pack_port(cells: dict[str, Any], name: str, port: str, loads) -> list[str]:
    """Pack the output register of port ``port`` (``A`` or ``B``) of DP16KD ``name`` if
    it can be; the flip-flops it took (deleted from ``cells``)."""
    ram = cells[name]
    conn = ram.get("connections", {})
    if any(_width(ram, p) > 18 for p in "AB") \
            or param(ram, f"REGMODE_{port}", "NOREG") != "NOREG" \
            or param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}" \
            or conn.get(f"RST{port}", ["0"]) != ["0"]:
        return []
    taken: list[tuple[str, str]] = []
    for i in range(18):
        bits = conn.get(f"DO{port}{i}", [])
        if not bits or isinstance(bits[0], str):
            continue
        where = loads.get(bits[0], [])
        if not where:
            continue
        if len(where) != 1 or not where[0][0] or where[0][1] != "DI" \
                or cells[where[0][0]]["type"] != _FF:
            return []
        taken.append((f"DO{port}{i}", where[0][0]))
    controls = {ff_control(cells[ff]) for _, ff in taken}
    if not taken or len(controls) != 1 or None in controls:
        return []
    (clk, ce, rst, _gsr), = controls
    other = "B" if port == "A" else "A"
    if list(clk) != conn.get(f"CLK{port}") or conn.get(f"RST{other}", ["0"]) != ["0"]:
        return []
    for pin, ff in taken:
        conn[pin] = cells[ff]["connections"]["Q"]
        del cells[ff]
    conn.update({f"OCE{port}": list(ce), f"RST{port}": list(rst)})
    params = ram.setdefault("parameters", {})
    params[f"REGMODE_{port}"] = "OUTREG"
    if rst != ("0",):
        params["RESETMODE"] = "SYNC"
    return [ff for _, ff in taken]


def pack_output_registers(netlist_path: str | Path) -> dict[str, int]:
    """Move the registers after the block-RAM reads of a synthesised ECP5 netlist (Yosys
    JSON, rewritten in place) into the DP16KDs' output registers.

    Returns ``{"ports": read ports packed, "flip_flops": flip-flops removed, "left": read
    ports (with a bit in use) left with their register bypassed}``.
    """
    path = Path(netlist_path)
    netlist = json.loads(path.read_text(encoding="utf-8"))
    packed = removed = left = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        rams = [n for n, c in cells.items() if c.get("type") == _BRAM]
        if not rams:
            continue
        loads = net_loads(module)
        for name in rams:
            for port in "AB":
                conn = cells[name].get("connections", {})
                read = any(loads.get(bits[0]) for i in range(18)
                           if (bits := conn.get(f"DO{port}{i}", []))
                           and not isinstance(bits[0], str))
                if not read:
                    continue
                took = _pack_port(cells, name, port, loads)
                packed += bool(took)
                left += not took
                removed += len(took)
    path.write_text(json.dumps(netlist), encoding="utf-8")
    return {"ports": packed, "flip_flops": removed, "left": left}
