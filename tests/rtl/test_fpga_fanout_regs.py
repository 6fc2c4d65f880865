"""rtl/fpga/fanout_regs.py: a flip-flop with many loads gets copies, each driving a run of
neighbouring loads, and every copy is the same register."""

from __future__ import annotations

import json

import pytest

from edgetron.rtl.fpga.fanout_regs import replicate_registers

CLK, CE, D, Q = 2, 3, 4, 5


def _ff(d, q, name_ce=CE):
    params = {"CEMUX": "CE", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
              "REGSET": "SET", "SRMODE": "LSR_OVER_CE"}
    conn = {"CLK": [CLK], "CE": [name_ce], "DI": [d], "LSR": [7], "Q": [q]}
    dirs = {p: ("output" if p == "Q" else "input") for p in conn}
    return {"type": "TRELLIS_FF", "parameters": params, "attributes": {"src": "x.py:1"},
            "port_directions": dirs, "connections": conn}


def _lut(i, inputs):
    conn = {port: [bit] for port, bit in inputs.items()} | {"Z": [1000 + i]}
    dirs = {p: ("output" if p == "Z" else "input") for p in conn}
    return {"type": "LUT4", "parameters": {}, "port_directions": dirs, "connections": conn}


def _netlist(tmp_path, n_loads, outputs=()):
    """Flip-flop ``r`` (Q net 5) loaded by LUTs ``pe_0.lut`` .. ``pe_{n-1}.lut`` (port A;
    ``pe_1`` on ports A and B) and a small register ``s`` with three loads."""
    cells = {"r": _ff(D, Q), "s": _ff(D, 6)}
    for i in range(n_loads):
        cells[f"pe_{i}.lut"] = _lut(i, {"A": Q, "B": Q if i == 1 else 9, "C": 6 if i < 3 else 9})
    ports = {f"o{i}": {"direction": "output", "bits": [b]} for i, b in enumerate(outputs)}
    path = tmp_path / "design.json"
    path.write_text(json.dumps({"modules": {"top": {"ports": ports, "cells": cells,
                                                    "netnames": {"q": {"bits": [Q]}}}}}))
    return path, cells


def _driver(cells, bit):
    (name,) = [n for n, c in cells.items() if c["connections"].get("Q") == [bit]
               or c["connections"].get("Z") == [bit]]
    return name


def test_loads_split_in_name_order_among_identical_copies(tmp_path):
    path, before = _netlist(tmp_path, 40, outputs=(Q,))
    assert replicate_registers(path, max_loads=16) == {"registers": 1, "copies": 2}
    module = json.loads(path.read_text())["modules"]["top"]
    cells = module["cells"]
    copies = sorted(n for n in cells if n.startswith("r$copy"))
    assert copies == ["r$copy1", "r$copy2"]
    for name in copies:
        # Everything but the output is the original's: same data, clock, enable, reset,
        # initial value and attributes.
        copy, orig = cells[name], before["r"]
        assert copy["parameters"] == orig["parameters"]
        assert copy["attributes"] == orig["attributes"]
        assert {p: b for p, b in copy["connections"].items() if p != "Q"} == \
            {p: b for p, b in orig["connections"].items() if p != "Q"}
        assert copy["connections"]["Q"] != [Q]
        assert module["netnames"][f"{name}.Q"]["bits"] == copy["connections"]["Q"]
    # pe_0..pe_12 on the original, pe_13..pe_25 on copy 1, pe_26..pe_39 on copy 2
    # (natural order: pe_2 before pe_10), both ports of pe_1 on one register.
    owner = {i: _driver(cells, cells[f"pe_{i}.lut"]["connections"]["A"][0]) for i in range(40)}
    assert [owner[i] for i in range(40)] == ["r"] * 13 + ["r$copy1"] * 13 + ["r$copy2"] * 14
    assert cells["pe_1.lut"]["connections"]["B"] == [Q]
    # The module output stays on the original; the small register and other inputs are
    # untouched.
    assert module["ports"]["o0"]["bits"] == [Q]
    assert "s$copy1" not in cells
    assert all(cells[f"pe_{i}.lut"]["connections"]["C"] == before[f"pe_{i}.lut"]["connections"]["C"]
               for i in range(40))


def test_registers_within_the_limit_are_unchanged(tmp_path):
    path, before = _netlist(tmp_path, 16)
    assert replicate_registers(path, max_loads=16) == {"registers": 0, "copies": 0}
    assert json.loads(path.read_text())["modules"]["top"]["cells"] == before


def test_new_nets_do_not_collide(tmp_path):
    path, _ = _netlist(tmp_path, 100)
    replicate_registers(path, max_loads=10)
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    drivers = [bits[0] for c in cells.values() for p, bits in c["connections"].items()
               if c["port_directions"][p] == "output"]
    assert len(drivers) == len(set(drivers)) == len(cells)


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "16", True])
def test_a_bad_limit_is_refused(tmp_path, bad):
    path, _ = _netlist(tmp_path, 4)
    with pytest.raises(ValueError, match="expected an integer >= 2"):
        replicate_registers(path, max_loads=bad)
