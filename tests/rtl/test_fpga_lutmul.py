"""rtl/fpga/ecp5_lutmul.v: the ECP5 int8 x int8 carry-chain multiplier equals the product
for every operand pair (a SAT proof in Yosys, with the CCU2C and LUT4 simulation models
Yosys ships), and leaves every other multiplier to the next mapping."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from edgetron.rtl.fpga import flow
from edgetron.rtl.fpga.tools import YOSYS, tool_command

MAP = Path(flow.__file__).parent / flow.LUTMUL_MAP


def _yosys(tmp_path, verilog: str, script: str) -> subprocess.CompletedProcess:
    (tmp_path / "design.v").write_text(verilog)
    shutil.copy(MAP, tmp_path / MAP.name)
    return subprocess.run([*tool_command(*YOSYS), "-p", f"read_verilog design.v; {script}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def _pair(tag: str, a_bits: int, b_bits: int, y_bits: int, signed: bool = True) -> str:
    """Modules ``gold<tag>`` and ``gate<tag>``: both ``p = a * b``."""
    s = "signed " if signed else ""
    return "\n".join(
        f"module {name}{tag}(input {s}[{a_bits - 1}:0] a, input {s}[{b_bits - 1}:0] b, "
        f"output {s}[{y_bits - 1}:0] p);\n  assign p = a * b;\nendmodule"
        for name in ("gold", "gate"))


def test_the_carry_chain_multiplier_is_the_product(tmp_path):
    """Proved for the 18-bit product (the chains and adders' every bit, sign extension
    included); the 16- and 11-bit products map to the same circuit with fewer bits taken.
    The proof fails for a wrong truth table or a miswired input: INIT 16'h7888 ->
    16'h7889, or the subtracting pair's A and C swapped, gives a counterexample."""
    widths = (18, 16, 11)
    res = _yosys(tmp_path, "\n".join(_pair(str(y), 8, 8, y) for y in widths), (
        f"proc; techmap -map {MAP.name} gate*; tee -o stat.json stat -json gate*; "
        "read_verilog +/lattice/common_sim.vh; read_verilog +/lattice/ccu2c_sim.vh; "
        "hierarchy -check; proc; flatten; opt_clean; "
        "miter -equiv -flatten -make_assert gold18 gate18 miter; "
        "sat -verify -prove-asserts miter"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "SAT proof finished - no model found: SUCCESS!" in res.stdout
    stat = json.loads((tmp_path / "stat.json").read_text())["modules"]
    for y in widths:
        cells = stat[f"\\gate{y}"]["num_cells_by_type"]
        assert cells["CCU2C"] == 20 and "$mul" not in cells


def test_other_multipliers_are_left_alone(tmp_path):
    shapes = {"w": (9, 8, 17, True), "u": (8, 8, 16, False), "x": (8, 8, 19, True)}
    res = _yosys(tmp_path, "\n".join(_pair(t, *shape) for t, shape in shapes.items()),
                 f"proc; techmap -map {MAP.name} gate*; tee -o stat.json stat -json gate*")
    assert res.returncode == 0, res.stderr[-2000:]
    stat = json.loads((tmp_path / "stat.json").read_text())["modules"]
    assert all(stat[f"\\gate{t}"]["num_cells_by_type"] == {"$mul": 1} for t in shapes)
