"""Hand-made ECP5 netlists (Yosys JSON) for the tests of the flow's netlist passes
(rtl/fpga/dsp_regs.py, rtl/fpga/bram_regs.py)."""

from __future__ import annotations

import json

#: The clock net of the netlists.
CLK = 2


def trellis_ff(d, q, *, clk=CLK, ce=None, lsr="0", clkmux="CLK", regset="RESET",
               srmode="LSR_OVER_CE"):
    """A TRELLIS_FF from net ``d`` to net ``q``; ``ce`` None: no clock enable."""
    params = {"CEMUX": "CE" if ce is not None else "1 ", "CLKMUX": clkmux,
              "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": regset, "SRMODE": srmode}
    conn = {"CLK": [clk], "DI": [d], "LSR": [lsr], "Q": [q]}
    if ce is not None:
        conn["CE"] = [ce]
    dirs = {p: ("output" if p == "Q" else "input") for p in conn}
    return {"type": "TRELLIS_FF", "parameters": params, "port_directions": dirs,
            "connections": conn}


def write_netlist(tmp_path, cells, outputs=()):
    """``design.json`` in ``tmp_path``: one module ``top`` of ``cells``, whose outputs are
    the nets ``outputs``."""
    path = tmp_path / "design.json"
    ports = {f"o{i}": {"direction": "output", "bits": [b]} for i, b in enumerate(outputs)}
    path.write_text(json.dumps({"modules": {"top": {"ports": ports, "cells": cells}}}))
    return path
