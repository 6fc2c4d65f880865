"""rtl/fpga/dsp_regs.py: the product register after an ECP5 MULT18X18D moves into the
block's output register, only where that is the same circuit."""

from __future__ import annotations

import json

import pytest

from edgetron.rtl.fpga.dsp_regs import pack_output_registers

from .ecp5_netlists import CLK
from .ecp5_netlists import trellis_ff as _ff
from .ecp5_netlists import write_netlist as _netlist

CE, SRC = 3, 4


def _mult(p_bits):
    conn = {f"P{i}": [b] for i, b in enumerate(p_bits)}
    conn |= {"A0": [SRC], "B0": [SRC], "SIGNEDA": ["1"], "SIGNEDB": ["1"]}
    dirs = {p: ("output" if p.startswith("P") else "input") for p in conn}
    return {"type": "MULT18X18D", "parameters": {}, "port_directions": dirs,
            "connections": conn}


def _product(n=4, **ff):
    """A MULT18X18D whose first ``n`` product bits (nets 10..) each drive one flip-flop
    (Q nets 20..); the other 32 bits are unused."""
    cells = {"mul": _mult([10 + i for i in range(n)] + [60 + i for i in range(36 - n)])}
    cells |= {f"ff{i}": _ff(10 + i, 20 + i, **ff) for i in range(n)}
    return cells


@pytest.mark.parametrize("ce", [None, CE])
def test_product_register_moves_into_the_block(tmp_path, ce):
    path = _netlist(tmp_path, _product(ce=ce))
    assert pack_output_registers(path) == {"multipliers": 1, "flip_flops": 4, "left": 0}
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    assert set(cells) == {"mul"}
    mul = cells["mul"]
    assert mul["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert (mul["parameters"]["REG_OUTPUT_CE"], mul["parameters"]["GSR"]) == ("CE0", "DISABLED")
    conn = mul["connections"]
    # The block's register drives what the flip-flops drove, clocked and enabled as they were.
    assert [conn[f"P{i}"] for i in range(4)] == [[20], [21], [22], [23]]
    assert conn["CLK0"] == [CLK] and conn["CE0"] == ([CE] if ce else ["1"])
    assert conn["RST0"] == ["0"] and mul["port_directions"]["CLK0"] == "input"


def test_a_synchronous_reset_goes_with_the_register(tmp_path):
    path = _netlist(tmp_path, _product(lsr=7))
    assert pack_output_registers(path)["multipliers"] == 1
    mul = json.loads(path.read_text())["modules"]["top"]["cells"]["mul"]
    assert mul["connections"]["RST0"] == [7] and mul["connections"]["CE0"] == ["1"]
    assert mul["parameters"]["RESETMODE"] == "SYNC"


@pytest.mark.parametrize("change", [
    {"lsr": 7, "ce": CE},       # a reset and an enable (priority)
    {"lsr": 7, "srmode": "ASYNC"},
    {"clkmux": "INV"},          # falling edge
    {"regset": "SET"},          # initial value 1
])
def test_registers_the_block_cannot_take_stay(tmp_path, change):
    cells = _product(**change)
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path) == {"multipliers": 0, "flip_flops": 0, "left": 1}
    assert json.loads(path.read_text())["modules"]["top"]["cells"] == cells


def test_a_product_bit_with_another_load_keeps_the_register_in_fabric(tmp_path):
    for other in ("lut", "port"):
        cells = _product()
        outputs = ()
        if other == "lut":
            cells["lut"] = {"type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
                            "connections": {"A": [11], "Z": [30]}}
        else:
            outputs = (12,)
        path = _netlist(tmp_path, cells, outputs)
        assert pack_output_registers(path)["left"] == 1
        assert json.loads(path.read_text())["modules"]["top"]["cells"] == cells


def test_flip_flops_with_different_enables_stay(tmp_path):
    cells = _product(ce=CE)
    cells["ff3"]["connections"]["CE"] = [8]
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path)["multipliers"] == 0


def test_a_block_with_a_register_already_used_is_left_alone(tmp_path):
    cells = _product()
    cells["mul"]["parameters"]["REG_INPUTA_CLK"] = "CLK0"
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path) == {"multipliers": 0, "flip_flops": 0, "left": 1}
