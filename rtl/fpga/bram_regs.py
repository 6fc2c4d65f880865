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

from pathlib import Path
from typing import Any

from .dsp_regs import param, rewrite_cells, sole_flip_flops

__all__ = ["pack_output_registers"]

_BRAM = "DP16KD"


def _width(ram: dict[str, Any], port: str) -> int:
    """``DATA_WIDTH_<port>`` of a DP16KD (Yosys writes integers as 32 binary digits)."""
    text = param(ram, f"DATA_WIDTH_{port}", "18")
    return int(text, 2) if len(text) == 32 else int(text)


def _pins(port: str) -> list[str]:
    """The read-data pins of port ``port``."""
    return [f"DO{port}{i}" for i in range(18)]


def _pack_ram(cells: dict[str, Any], name: str, loads) -> list[list[str]]:
    """The flip-flops each read port of DP16KD ``name`` took (a port whose data pins drive
    nothing is no read port)."""
    conn = cells[name].get("connections", {})
    return [_pack_port(cells, name, port, loads) for port in "AB"
            if any(loads.get(bits[0]) for pin in _pins(port)
                   if (bits := conn.get(pin, [])) and not isinstance(bits[0], str))]


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
    taken, control = sole_flip_flops(cells, conn, _pins(port), loads)
    if not taken:
        return []
    clk, ce, rst, _gsr = control
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
    packed, removed, left = rewrite_cells(netlist_path, _BRAM, _pack_ram)
    return {"ports": packed, "flip_flops": removed, "left": left}
