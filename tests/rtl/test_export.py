"""Verilog export: files, manifest, both lint steps, and the ``edgetron rtl export`` CLI."""

from __future__ import annotations

import ast
import json
import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from edgetron.cli import main
from edgetron.config import AcceleratorConfig
from edgetron.rtl.export import MANIFEST_FORMAT, UNITS, export_unit, top_name
from edgetron.rtl.gemm import gemm_limits, gemm_timing, shape_fits
from edgetron.rtl.lint import WAIVERS, generated_waivers, lint_verilator, lint_yosys
from edgetron.rtl.requant import Requantizer
from edgetron.sim.units.gemm import REQUANT_LATENCY, gemm_cycles, gemm_phases

#: Small array and buffers: every unit elaborates quickly.
SMALL = AcceleratorConfig(
    name="small", rows=4, cols=4, ifmap_sram_bytes=1024, weight_sram_bytes=1024,
    ofmap_sram_bytes=1024, vector_lanes=4,
)
#: Configs whose exports are linted: both dataflows, and arrays of one row or one column
#: (zero-width signals, shape checks that cannot fail).
LINT_CONFIGS = {
    "4x4-ws": SMALL,
    "4x4-os": SMALL.replace(dataflow="os"),
    "1x3-os": SMALL.replace(rows=1, cols=3, dataflow="os"),
    "3x1-ws": SMALL.replace(rows=3, cols=1),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return {unit: export_unit(unit, SMALL, out) for unit in UNITS}


#: The (config, unit) pairs exported and linted: every unit on every lint config but the
#: dense ConvUnit on an os config (it runs on the ws array: building it there is a
#: ConfigError naming dataflow, tests/rtl/test_conv_dense.py).
LINT_CASES = [(tag, unit) for tag, cfg in LINT_CONFIGS.items() for unit in sorted(UNITS)
              if unit != "conv_dense" or cfg.dataflow == "ws"]


@pytest.fixture(scope="module")
def exported_for_lint(tmp_path_factory):
    return {
        (tag, unit): export_unit(unit, LINT_CONFIGS[tag],
                                 tmp_path_factory.mktemp(f"lint-{tag}-{unit}"))
        for tag, unit in LINT_CASES
    }


def test_registry_has_the_gemm_units():
    assert {"requant", "gemm"} <= set(UNITS)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_files_and_manifest(exported, unit):
    res = exported[unit]
    top = top_name(unit)
    assert res.verilog.name == f"{top}.v" and res.manifest.name == f"{top}.json"
    assert (res.verilog.parent / WAIVERS.name).read_text() == WAIVERS.read_text()
    assert res.waivers.name == f"{top}.vlt" and "lint_off -rule" in res.waivers.read_text()
    text = res.verilog.read_text()
    assert re.search(rf"^module {top}\(", text, re.M)
    man = json.loads(res.manifest.read_text())
    assert man == res.manifest_data
    assert (man["format"], man["version"]) == MANIFEST_FORMAT
    assert man["unit"] == unit and man["top"] == top and man["verilog"] == res.verilog.name
    assert man["config"] == SMALL.to_dict()
    # Every port of the module header is in the manifest with its declared width.
    header = re.search(rf"^module {top}\(([^)]*)\);", text, re.M).group(1)
    names = {p.strip() for p in header.split(",")}
    assert {p["name"] for p in man["ports"]} == names
    for port in man["ports"]:
        decl = re.search(rf"^\s*{port['direction']}\s+(?:\[(\d+):0\]\s+)?{port['name']};",
                         text, re.M)
        assert decl is not None, port
        assert port["width"] == (int(decl.group(1)) + 1 if decl.group(1) else 1)
        assert port["shape"]["width"] == port["width"]
    roles = {p["name"]: p["role"] for p in man["ports"]}
    assert roles["clk"] == "clock" and roles["rst"] == "reset"


def test_requant_manifest_values(exported):
    man = exported["requant"].manifest_data
    assert man["latency_cycles"] == Requantizer.LATENCY
    assert man["parameters"] == {"lanes": SMALL.cols, "acc_bits": SMALL.acc_bits,
                                 "out_bits": SMALL.input_bits}
    ports = {p["name"]: p for p in man["ports"]}
    lanes = SMALL.cols
    assert ports["i__payload"]["direction"] == "input"
    assert ports["i__payload"]["width"] == lanes * (32 + 31 + 6)
    fields = ports["i__payload"]["shape"]["fields"]
    assert [(k, v["offset"], v["element"]["width"]) for k, v in fields.items()] == [
        ("acc", 0, 32), ("mult", lanes * 32, 31), ("shift", lanes * (32 + 31), 6)]
    assert ports["o__payload"]["direction"] == "output"
    assert ports["o__payload"]["shape"]["element"] == {"kind": "signed", "width": 8}
    assert ports["o__ready"]["direction"] == "input" and ports["i__ready"]["direction"] == "output"


def _formula(expr: str, names: dict[str, int]) -> int:
    """Value of a manifest timing formula: integers, names, ``+ - *``, ``max(...)`` and
    ``ceil(x / y)`` (integer ceiling division); anything else is an error."""
    ops = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y,
           ast.Mult: lambda x, y: x * y}

    def ev(node) -> int:
        match node:
            case ast.Constant(value=int() as v):
                return v
            case ast.Name(id=name):
                return names[name]
            case ast.BinOp(left=left, op=op, right=right) if type(op) in ops:
                return ops[type(op)](ev(left), ev(right))
            case ast.Call(func=ast.Name(id="max"), args=args, keywords=[]):
                return max(ev(a) for a in args)
            case ast.Call(func=ast.Name(id="ceil"),
                          args=[ast.BinOp(left=num, op=ast.Div(), right=den)], keywords=[]):
                return -(-ev(num) // ev(den))
        raise AssertionError(f"unsupported element in timing formula {expr!r}: {ast.dump(node)}")

    return ev(ast.parse(expr, mode="eval").body)


def _evaluate_timing(model: dict, m: int, k: int, n: int, out32: int) -> dict[str, int]:
    names = {"M": m, "K": k, "N": n, "out32": out32, **model["constants"]}
    for section in ("derived", "phases"):
        for name, expr in model[section].items():
            names[name] = _formula(expr, names)
    names["total"] = _formula(model["total"], names)
    return names


def _random_fitting_shapes(cfg, count, seed):
    rng = np.random.default_rng(seed)
    lim = gemm_limits(cfg)
    shapes = [(1, 1, 1)]
    while len(shapes) < count:
        m, k, n = (int(x) for x in rng.integers(1, [3 * cfg.rows + 3, 4 * cfg.rows + 3,
                                                    min(lim.n_max, 3 * cfg.cols + 3) + 1]))
        if shape_fits(cfg, m, k, n):
            shapes.append((m, k, n))
    return shapes


@pytest.mark.parametrize("tag", list(LINT_CONFIGS))
def test_gemm_manifest_timing_model_matches_the_simulator(exported_for_lint, tag):
    """The manifest's timing model (fixed latencies + phase formulas, as data) gives, for
    every shape, exactly the phases and cycles of sim.units.gemm."""
    cfg = LINT_CONFIGS[tag]
    model = exported_for_lint[tag, "gemm"].manifest_data["timing_model"]
    assert model == json.loads(json.dumps(gemm_timing(cfg)))
    assert model["model"] == "edgetron.sim.units.gemm.gemm_phases"
    consts = model["constants"]
    assert consts["requant_latency"] == Requantizer.LATENCY == REQUANT_LATENCY
    assert (consts["R"], consts["C"]) == (cfg.rows, cfg.cols)
    # ws: rows + cols - 2 hops and the PEs' three-stage MAC (product, its second
    # register, the add); os: the drain pulse's de-skew.
    assert consts["array_latency"] == (cfg.rows + cfg.cols + 1 if cfg.dataflow == "ws"
                                       else cfg.cols - 1)
    p = cfg.sim_params()
    for m, k, n in _random_fitting_shapes(cfg, 25, seed=len(tag)):
        for out32 in (0, 1):
            got = _evaluate_timing(model, m, k, n, out32)
            want = gemm_phases(p, m, k, n, out32)
            assert {f: got[f] for f in want._fields} == want._asdict(), (m, k, n, out32)
            assert got["total"] == gemm_cycles(p, m, k, n, out32), (m, k, n, out32)


def test_manifest_latencies(exported):
    """Fixed-latency units give their latency as a number; the GEMM unit, whose cycles
    depend on the shape, gives null there and its fixed latencies in the timing model."""
    rq = exported["requant"].manifest_data
    assert rq["timing_model"]["constants"]["latency_cycles"] == rq["latency_cycles"]
    mm = exported["gemm"].manifest_data
    assert mm["latency_cycles"] is None
    assert {"cmd_cycles", "buffer_read_cycles", "array_latency", "epilogue_cycles",
            "requant_latency"} <= set(mm["timing_model"]["constants"])


@pytest.mark.parametrize(("tag", "unit"), LINT_CASES)
def test_verilator_lint_clean(exported_for_lint, unit, tag):
    res = exported_for_lint[tag, unit]
    report = lint_verilator(res.verilog, res.top)
    assert report.ok, report.output


@pytest.mark.parametrize(("tag", "unit"), LINT_CASES)
def test_yosys_check_clean(exported_for_lint, unit, tag):
    res = exported_for_lint[tag, unit]
    report = lint_yosys(res.verilog, res.top)
    assert report.ok, report.output


def test_lint_catches_problems(tmp_path):
    # With the waivers active: an undriven output, a latch, a truncating assignment and a
    # widening port connection (Verilator: the width waivers cover operator operands only),
    # and a missing submodule (Yosys hierarchy -check).
    bad = tmp_path / "bad.v"
    bad.write_text(
        "module bad(input wire en, input wire [3:0] a, output reg [3:0] q, output wire z,\n"
        "           output wire [1:0] t, output wire [7:0] e);\n"
        "  always @* if (en) q = a;\n"
        "  assign t = a;\n"
        "  sub u (.x(a), .y(e));\n"
        "endmodule\n"
        "module sub(input wire [7:0] x, output wire [7:0] y);\n"
        "  assign y = x;\n"
        "endmodule\n"
    )
    v = lint_verilator(bad, "bad")
    assert not v.ok
    for rule in ("UNDRIVEN", "LATCH", "WIDTHTRUNC", "WIDTHEXPAND"):
        assert f"%Warning-{rule}" in v.output, rule
    missing = tmp_path / "missing.v"
    missing.write_text("module missing(input wire clk);\n  nowhere u (.clk(clk));\nendmodule\n")
    y = lint_yosys(missing, "missing")
    assert not y.ok and "nowhere" in y.output


class _Adder(wiring.Component):
    """A tiny unit for the lint tests: o = i[0] + i[1] + x, registered, with switches that
    leave the whole of ``x`` or the upper lane of ``i`` unread, or compare signed values
    of different widths."""

    def __init__(self, ignore_x=False, ignore_lane=False, signed_compare=False):
        self._ignore_x, self._ignore_lane, self._signed = ignore_x, ignore_lane, signed_compare
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(signed(8), 2))),
                          "x": In(signed(5)), "o": Out(stream.Signature(signed(8)))})

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(8))
        lane1 = 0 if self._ignore_lane else self.i.payload[1]
        extra = 0 if self._ignore_x else self.x
        if self._signed:        # LTS/GTS/LTES/GTES of a 5-bit and an 8-bit signed operand
            extra = Mux((self.x < self.i.payload[0]) | (self.x >= self.i.payload[1]), 1, 0)
        m.d.sync += total.eq(self.i.payload[0] + lane1 + extra)
        m.d.comb += [self.o.payload.eq(total), self.o.valid.eq(self.i.valid),
                     self.i.ready.eq(self.o.ready)]
        return m


def _lint_adder(tmp_path, **kw):
    path = tmp_path / "adder.v"
    path.write_text(verilog.convert(_Adder(**kw), name="adder", emit_src=False))
    return lint_verilator(path, "adder"), lint_yosys(path, "adder")


def test_ignored_input_ports_are_reported(tmp_path):
    """The waivers cover the generator's alias wires, never a top-level input: an input the
    design ignores fails Verilator (whole) and the Yosys input check (whole or in part:
    Amaranth's view-field aliases read the bits, so Verilator cannot see partial use)."""
    verilator, yosys = _lint_adder(tmp_path)
    assert verilator.ok and yosys.ok, verilator.output + yosys.output
    verilator, yosys = _lint_adder(tmp_path, ignore_x=True)
    assert not verilator.ok and "%Warning-UNUSEDSIGNAL" in verilator.output
    assert "Signal is not used: 'x'" in verilator.output
    assert not yosys.ok and "input port bits that nothing reads: x[0]" in yosys.output
    verilator, yosys = _lint_adder(tmp_path, ignore_lane=True)
    assert not yosys.ok
    assert "i__payload[8], i__payload[9]" in yosys.output and "i__payload[7]" not in yosys.output


def test_signed_comparisons_of_unequal_widths_are_waived(tmp_path):
    """Amaranth emits signed comparisons at the operands' own widths (Verilator's LTS, GTES,
    ...); the WIDTHEXPAND waivers match those operator names too."""
    verilator, yosys = _lint_adder(tmp_path, signed_compare=True)
    assert verilator.ok and yosys.ok, verilator.output + yosys.output
    text = (tmp_path / "adder.v").read_text()
    assert "$signed" in text and " < " in text and " >= " in text


def test_generated_waivers_cover_only_the_generator_idioms():
    """PROCASSINIT at registers with an initialiser assigned in a clocked block,
    CASEINCOMPLETE at a casez whose block assigns a default to every target, and
    UNUSEDSIGNAL everywhere but the top module's input declarations."""
    text = """(* top =  1  *)
module t(a, b, clk, q);
  reg \\$auto$verilog_backend.cc:1:dump_module$1  = 0;
  input [3:0] a;
  wire [3:0] a;
  input b;
  wire b;
  input clk;
  wire clk;
  output [3:0] q;
  reg [3:0] q = 4'h0;
  reg [3:0] n;
  reg [3:0] latch;
  always @(posedge clk)
    q <= n;
  always @* begin
    if (\\$auto$verilog_backend.cc:1:dump_module$1 ) begin end
    n = 4'h0;
    casez (b)
      1'h1:
          n = a;
    endcase
  end
  always @* begin
    if (\\$auto$verilog_backend.cc:1:dump_module$1 ) begin end
    casez (b)
      1'h1:
          latch = a;
    endcase
  end
endmodule
"""
    waivers = generated_waivers(text, "t.v")
    assert 'lint_off -rule PROCASSINIT -file "*t.v" -lines 11-11' in waivers
    assert 'lint_off -rule CASEINCOMPLETE -file "*t.v" -lines 19-19' in waivers
    assert "-lines 26-26" not in waivers        # the casez without defaults (a latch)
    unused = [line.split("-lines ")[1] for line in waivers.splitlines() if "UNUSEDSIGNAL" in line]
    # Lines 4-9 declare the inputs a, b, clk (input and wire): never waived.
    assert unused == ["1-3", "10-31"]


def test_unknown_unit(tmp_path):
    with pytest.raises(ValueError, match="unknown unit 'nope'"):
        export_unit("nope", SMALL, tmp_path)


def test_cli_export_one_unit(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    SMALL.save(cfg)
    assert main(["rtl", "export", "--config", str(cfg), "--unit", "requant",
                 "-o", str(tmp_path / "out")]) == 0
    assert f"latency {Requantizer.LATENCY} cycles" in capsys.readouterr().out
    man = json.loads((tmp_path / "out" / f"{top_name('requant')}.json").read_text())
    assert man["config"] == SMALL.to_dict()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{top_name('requant')}.{ext}" for ext in ("v", "il", "json", "vlt")] + [WAIVERS.name])


def test_cli_export_all_with_lint(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    SMALL.save(cfg)
    assert main(["rtl", "export", "--config", str(cfg), "-o", str(tmp_path), "--lint"]) == 0
    out = capsys.readouterr().out
    for unit in UNITS:
        assert (tmp_path / f"{top_name(unit)}.v").is_file()
    assert out.count("verilator: clean") == len(UNITS)
    assert out.count("yosys: clean") == len(UNITS)


def test_cli_export_is_all_or_nothing(tmp_path, capsys):
    """A unit that rejects the config (gemm: a 16-bit accumulator is too narrow for these
    buffers; requant accepts it) leaves no partial export, and the error names the unit
    and the config file."""
    cfg = tmp_path / "narrow.toml"
    SMALL.replace(acc_bits=16).save(cfg)
    fresh = tmp_path / "fresh"
    assert main(["rtl", "export", "--config", str(cfg), "-o", str(fresh)]) == 1
    err = capsys.readouterr().err
    assert "unit 'gemm'" in err and f"config file {cfg}" in err and "acc_bits" in err
    assert not fresh.exists()
    # An existing output directory keeps exactly what it had.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["rtl", "export", "--config", str(cfg), "-o", str(kept)]) == 1
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_error_names_the_preset(tmp_path, capsys, monkeypatch):
    """An elaboration error of a preset names the preset (edge-8 with a unit patched to
    reject every config stands in for a preset a unit cannot build)."""
    def reject(cfg):
        raise ValueError("rows: rejected for the test")

    monkeypatch.setitem(UNITS, "requant", UNITS["requant"]._replace(build=reject))
    assert main(["rtl", "export", "--config", "edge-8", "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "unit 'requant' rejects preset 'edge-8': rows: rejected for the test" in err
    assert not (tmp_path / "o").exists()


def test_cli_list(capsys):
    assert main(["rtl", "export", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(unit in out for unit in UNITS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--unit", "nope", "-o", "x"], "unknown unit 'nope'"),
        (["--unit", "requant"], "-o/--output DIR is required"),
        (["--config", "no-such-preset", "-o", "x"], "neither a preset"),
    ],
)
def test_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["rtl", "export", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
