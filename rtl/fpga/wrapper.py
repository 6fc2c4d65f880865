"""A pin-light Verilog wrapper that keeps every port of a unit live on four pins.

A unit has hundreds of port bits; no FPGA package has that many pins, and a port left
unconnected lets synthesis delete the logic behind it. :func:`wrap_verilog` generates a
top module ``edgetron_fpga_top`` with four pins, ``clk``, ``rst``, ``sin`` and ``sout``:

- every input bit of the unit (all ports but the clock and the reset) is a flip-flop of
  one shift register fed by ``sin``, so every input is an unknown, registered value;
- every output bit is registered (``q0``, as the unit's consumer would: the unit's
  output paths end there with no wrapper logic on them), then goes into a pipelined XOR
  tree (four bits per LUT4, a register after each level) whose last register drives
  ``sout``, so every output bit is observable.

Every path of the wrapper is register -> at most one LUT -> register, so the wrapper
never sets the critical path of a unit with more than one logic level. It costs
``n_in`` FFs for the shift register, ``n_out`` for the output register and about
``n_out / 3`` FFs and LUTs for the tree; the flow measures it by synthesising the
wrapper around the unit as a black box (step "wrapper cost").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["WRAPPER_TOP", "XOR_FANIN", "Wrapper", "wrap_verilog", "xor_levels"]

#: Module name of the generated wrapper (the FPGA design's top).
WRAPPER_TOP = "edgetron_fpga_top"
#: Output bits reduced per LUT (a LUT4 computes the XOR of four bits).
XOR_FANIN = 4
#: Ports the wrapper drives from its own pins rather than from the shift register.
_CLOCK_ROLE, _RESET_ROLE = "clock", "reset"


@dataclasses.dataclass(frozen=True)
class Wrapper:
    """A generated wrapper.

    Attributes
    ----------
    verilog : str
        The wrapper module's Verilog (instantiates the unit's top module).
    blackbox : str
        A black-box declaration of the unit's module, to synthesise the wrapper alone.
    input_bits, output_bits : int
        Port bits fed by the shift register, and registered then reduced by the XOR
        tree.
    levels : tuple of int
        Register count of each XOR-tree level after the output register (the last one
        is 1: ``sout``).
    """

    verilog: str
    blackbox: str
    input_bits: int
    output_bits: int
    levels: tuple[int, ...]

    @property
    def flops(self) -> int:
        """Flip-flops of the wrapper: the shift register, the output register and every
        XOR-tree register."""
        return self.input_bits + self.output_bits + sum(self.levels)


def xor_levels(n: int, fanin: int = XOR_FANIN) -> tuple[int, ...]:
    """Register count per level of a ``fanin``-ary XOR tree over ``n`` bits (last is 1).

    >>> xor_levels(64)
    (16, 4, 1)
    """
    if n < 1:
        raise ValueError(f"xor_levels: n must be >= 1, got {n}")
    levels = []
    while True:
        n = -(-n // fanin)
        levels.append(n)
        if n == 1:
            return tuple(levels)


def _slice(lo: int, width: int) -> str:
    return f"[{lo}]" if width == 1 else f"[{lo + width - 1}:{lo}]"


def _port_decl(ports: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for p in ports:
        width = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        lines.append(f"  {p['direction']} wire {width}{p['name']}")
    return ",\n".join(lines)


def wrap_verilog(top: str, ports: list[Mapping[str, Any]]) -> Wrapper:
    """Generate the four-pin wrapper around module ``top``.

    Parameters
    ----------
    top : str
        The unit's Verilog module name.
    ports : list of mapping
        The unit's ports as in its export manifest (``name``, ``direction``,
        ``width``, ``role``): the port with role ``clock`` is driven by the ``clk``
        pin, the one with role ``reset`` by the ``rst`` pin.

    Returns
    -------
    Wrapper

    Raises
    ------
    ValueError
        No clock port, an inout port, or no input or no output data bits.
    """
    clocks = [p for p in ports if p.get("role") == _CLOCK_ROLE]
    resets = [p for p in ports if p.get("role") == _RESET_ROLE]
    if len(clocks) != 1:
        raise ValueError(f"wrapper: {top} must have exactly one clock port, has {len(clocks)}")
    data = [p for p in ports if p.get("role") not in (_CLOCK_ROLE, _RESET_ROLE)]
    if any(p["direction"] not in ("input", "output") for p in data):
        raise ValueError(f"wrapper: {top} has an inout port; only input/output are supported")
    ins = [p for p in data if p["direction"] == "input"]
    outs = [p for p in data if p["direction"] == "output"]
    n_in = sum(p["width"] for p in ins)
    n_out = sum(p["width"] for p in outs)
    if n_in == 0 or n_out == 0:
        raise ValueError(f"wrapper: {top} needs input and output data ports "
                         f"(has {n_in} input and {n_out} output bits)")
    levels = xor_levels(n_out)

    conns = [f"    .{clocks[0]['name']}(clk)"]
    conns += [f"    .{p['name']}(rst)" for p in resets]
    for bus, group in (("shift", ins), ("out", outs)):
        lo = 0
        for p in group:
            conns.append(f"    .{p['name']}({bus}{_slice(lo, p['width'])})")
            lo += p["width"]

    body = [
        f"// Generated by `edgetron fpga`: keeps every port of {top} live on four pins.",
        f"// {n_in} input bits from a shift register fed by sin; {n_out} output bits",
        f"// registered, then XOR-reduced by a {len(levels)}-level pipelined tree into the",
        "// flop driving sout.",
        f"module {WRAPPER_TOP} (",
        "  input wire clk,",
        "  input wire rst,",
        "  input wire sin,",
        "  output wire sout",
        ");",
        f"  reg [{n_in - 1}:0] shift = {n_in}'d0;",
        "  always @(posedge clk)",
        (f"    shift <= {{shift[{n_in - 2}:0], sin}};" if n_in > 1 else "    shift <= sin;"),
        f"  wire [{n_out - 1}:0] out;",
        f"  {top} core (",
        ",\n".join(conns),
        "  );",
        f"  reg [{n_out - 1}:0] q0 = {n_out}'d0;",
        "  always @(posedge clk)",
        "    q0 <= out;",
    ]
    prev, width = "q0", n_out
    for i, n in enumerate(levels, start=1):
        terms = []
        for j in reversed(range(n)):
            hi = min(width, (j + 1) * XOR_FANIN) - 1
            lo = j * XOR_FANIN
            terms.append(f"^{prev}[{hi}:{lo}]" if hi > lo else f"{prev}[{lo}]")
        body += [
            f"  reg [{n - 1}:0] q{i} = {n}'d0;",
            "  always @(posedge clk)",
            f"    q{i} <= {{{', '.join(terms)}}};",
        ]
        prev, width = f"q{i}", n
    body += [f"  assign sout = {prev}[0];", "endmodule", ""]

    blackbox = "\n".join([
        "(* blackbox *)",
        f"module {top} (",
        _port_decl(ports),
        ");",
        "endmodule",
        "",
    ])
    return Wrapper("\n".join(body), blackbox, n_in, n_out, levels)
