"""The DSP budget: which multipliers of a design go to LUTs when it needs more DSP blocks
than the device has.

A target may carry a DSP budget (``Target.dsp_budget``, the device's DSP blocks). Before
synthesis the flow lists every multiplier of the design with its operand widths (Yosys
``proc; opt -fast; wreduce``, the same steps the synthesis script then repeats, so that
the cell names match) and estimates its DSP blocks as ``ceil(A / w) * ceil(B / w)``
(``w`` the family's multiplier operand width: 18 on ECP5, 16 on iCE40). When the total is
over the budget, the multipliers that cost the fewest LUTs per DSP block saved (the
smallest ``A * B / blocks``, e.g. an int8 x int8 MAC before a 32 x 31-bit requantizer
product) are built from LUTs until the rest fits; those keep their DSP blocks. On ECP5 an
int8 x int8 product becomes a carry-chain multiplier (``ecp5_lutmul.v``: 39 CCU2C and 4
LUT4), any other product a radix-4 Booth multiplier (Yosys ``booth``). The RTL is
unchanged: only the mapping differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

__all__ = ["DSP_CELL", "DSP_OPERAND_BITS", "Multiplier", "dsp_blocks", "lut_multipliers",
           "multipliers"]

#: Operand width of one DSP multiplier per family (ECP5 MULT18X18D, iCE40 SB_MAC16).
DSP_OPERAND_BITS = {"ecp5": 18, "ice40": 16}
#: The synthesised DSP cell of each family (one block each).
DSP_CELL = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}


class Multiplier(NamedTuple):
    """One ``$mul`` cell of the design: its Yosys selection and operand widths."""

    selection: str
    a_bits: int
    b_bits: int


def dsp_blocks(mul: Multiplier, family: str) -> int:
    """DSP blocks the family's synthesis maps ``mul`` onto (an estimate by operand width)."""
    w = DSP_OPERAND_BITS[family]
    return -(-mul.a_bits // w) * -(-mul.b_bits // w)


def _operand_bits(bits: list) -> int:
    """Width of an operand without its constant-zero top bits (an unsigned value extended
    for a signed product: the DSP block takes it in its unsigned mode)."""
    n = len(bits)
    while n > 1 and bits[n - 1] == "0":
        n -= 1
    return n


def multipliers(netlist: Path) -> list[Multiplier]:
    """Every ``$mul`` of a Yosys JSON netlist (written after ``proc``), in a fixed order."""
    design = json.loads(netlist.read_text(encoding="utf-8"))
    found = []
    for module, body in sorted(design.get("modules", {}).items()):
        for name, cell in sorted(body.get("cells", {}).items()):
            if cell.get("type") == "$mul":
                conn = cell["connections"]
                found.append(Multiplier(f"{module}/{name}", _operand_bits(conn["A"]),
                                        _operand_bits(conn["B"])))
    return found


def lut_multipliers(muls: list[Multiplier], family: str, budget: int) -> list[Multiplier]:
    """The multipliers to build from LUTs so that the others fit ``budget`` DSP blocks:
    none when all fit; else the cheapest in LUTs per block saved first."""
    need = sum(dsp_blocks(m, family) for m in muls)
    chosen = []
    for mul in sorted(muls, key=lambda m: (m.a_bits * m.b_bits / dsp_blocks(m, family),
                                           m.selection)):
        if need <= budget:
            break
        chosen.append(mul)
        need -= dsp_blocks(mul, family)
    return chosen
