"""rtl/fpga/bram_regs.py: the register after an ECP5 DP16KD read moves into the block's
output register of that port, only where that is the same circuit."""

from __future__ import annotations

import json

import pytest

from edgetron.rtl.fpga.bram_regs import pack_output_registers

from .ecp5_netlists import CLK
from .ecp5_netlists import trellis_ff as _ff
from .ecp5_netlists import write_netlist as _netlist

CE, RST, OTHER_CLK = 3, 7, 5


def _ram(read_bits, port="B", *, clk=CLK, rst_other="0"):
    """A DP16KD written on the other port and read on ``port``: its ``DO<port>`` bits are
    ``read_bits`` (the rest unconnected nets 100..)."""
    other = "A" if port == "B" else "B"
    conn = {f"DO{port}{i}": [read_bits[i] if i < len(read_bits) else 100 + i]
            for i in range(18)}
    conn |= {f"DO{other}{i}": [120 + i] for i in range(18)}
    conn |= {"CLKA": [clk], "CLKB": [clk], "CEA": ["1"], "CEB": ["1"], "OCEA": ["1"],
             "OCEB": ["1"], f"RST{port}": ["0"], f"RST{other}": [rst_other],
             f"WE{other}": [9], f"DI{other}0": [8]}
    dirs = {p: ("output" if p.startswith("DO") else "input") for p in conn}
    params = {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "RESETMODE": "ASYNC",
              "DATA_WIDTH_A": "00000000000000000000000000000100",
              "DATA_WIDTH_B": "00000000000000000000000000000100",
              "CLKAMUX": "CLKA", "CLKBMUX": "CLKB", "GSR": "DISABLED"}
    return {"type": "DP16KD", "parameters": params, "port_directions": dirs,
            "connections": conn}


def _read(n=4, port="B", ram=None, **ff):
    """A DP16KD whose first ``n`` read bits (nets 10..) each drive one flip-flop (Q nets
    20..)."""
    cells = {"ram": _ram([10 + i for i in range(n)], port, **(ram or {}))}
    cells |= {f"ff{i}": _ff(10 + i, 20 + i, **ff) for i in range(n)}
    return cells


def _cells(path):
    return json.loads(path.read_text())["modules"]["top"]["cells"]


@pytest.mark.parametrize("port", ["A", "B"])
@pytest.mark.parametrize("ce", [None, CE])
def test_read_register_moves_into_the_block(tmp_path, port, ce):
    path = _netlist(tmp_path, _read(port=port, ce=ce))
    assert pack_output_registers(path) == {"ports": 1, "flip_flops": 4, "left": 0}
    cells = _cells(path)
    assert set(cells) == {"ram"}
    ram = cells["ram"]
    other = "A" if port == "B" else "B"
    assert ram["parameters"][f"REGMODE_{port}"] == "OUTREG"
    assert ram["parameters"][f"REGMODE_{other}"] == "NOREG"
    assert ram["parameters"]["RESETMODE"] == "ASYNC"        # no reset taken: unchanged
    conn = ram["connections"]
    # The block's register drives what the flip-flops drove, enabled as they were.
    assert [conn[f"DO{port}{i}"] for i in range(4)] == [[20], [21], [22], [23]]
    assert conn[f"OCE{port}"] == ([CE] if ce else ["1"]) and conn[f"RST{port}"] == ["0"]


def test_a_synchronous_reset_goes_with_the_register(tmp_path):
    path = _netlist(tmp_path, _read(lsr=RST))
    assert pack_output_registers(path)["ports"] == 1
    ram = _cells(path)["ram"]
    assert ram["connections"]["RSTB"] == [RST] and ram["connections"]["OCEB"] == ["1"]
    assert ram["parameters"]["RESETMODE"] == "SYNC"


@pytest.mark.parametrize("change", [
    {"clk": OTHER_CLK},                 # the flip-flops run on another clock
    {"regset": "SET"},                  # initial value 1
    {"lsr": RST, "ce": CE},             # a reset and an enable (priority)
    {"ram": {"rst_other": RST}, "lsr": RST},    # RESETMODE is shared with the other port
])
def test_registers_the_block_cannot_take_stay(tmp_path, change):
    cells = _read(**change)
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path) == {"ports": 0, "flip_flops": 0, "left": 1}
    assert _cells(path) == cells


def test_a_block_in_its_36_bit_mode_stays(tmp_path):
    # The read's data leaves on both ports' pins; the block keeps its registers bypassed.
    cells = _read()
    cells["ram"]["parameters"] |= {"DATA_WIDTH_A": "00000000000000000000000000100100",
                                   "DATA_WIDTH_B": "00000000000000000000000000100100"}
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path) == {"ports": 0, "flip_flops": 0, "left": 1}


def test_a_read_bit_with_another_load_keeps_the_port_bypassed(tmp_path):
    cells = _read()
    cells["ff0"]["connections"]["DI"] = [10]
    cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input"},
                    "connections": {"A": [11]}}
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path) == {"ports": 0, "flip_flops": 0, "left": 1}
    # A read bit that is a module output, likewise.
    path = _netlist(tmp_path, _read(), outputs=[12])
    assert pack_output_registers(path)["left"] == 1


def test_flip_flops_with_different_enables_stay(tmp_path):
    cells = _read(ce=CE)
    cells["ff3"]["connections"]["CE"] = [4]
    path = _netlist(tmp_path, cells)
    assert pack_output_registers(path)["left"] == 1


def test_ports_without_a_read_are_not_counted(tmp_path):
    path = _netlist(tmp_path, {"ram": _ram([])})
    assert pack_output_registers(path) == {"ports": 0, "flip_flops": 0, "left": 0}
