"""Verilog export: files, manifest, both lint steps, and the ``edgetron rtl export`` CLI."""

from __future__ import annotations

import json
import re

import pytest

from edgetron.cli import main
from edgetron.config import AcceleratorConfig
from edgetron.rtl.export import (
    MANIFEST_FORMAT,
    UNITS,
    WAIVERS,
    export_unit,
    lint_verilator,
    lint_yosys,
    top_name,
)
from edgetron.rtl.requant import Requantizer

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


@pytest.fixture(scope="module")
def exported_for_lint(tmp_path_factory):
    return {
        (tag, unit): export_unit(unit, cfg, tmp_path_factory.mktemp(f"lint-{tag}"))
        for tag, cfg in LINT_CONFIGS.items() for unit in UNITS
    }


def test_registry_has_the_gemm_units():
    assert {"requant", "matmul"} <= set(UNITS)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_files_and_manifest(exported, unit):
    res = exported[unit]
    top = top_name(unit)
    assert res.verilog.name == f"{top}.v" and res.manifest.name == f"{top}.json"
    assert (res.verilog.parent / WAIVERS.name).read_text() == WAIVERS.read_text()
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
        ("acc", 0, 32), ("m", lanes * 32, 31), ("s", lanes * (32 + 31), 6)]
    assert ports["o__payload"]["direction"] == "output"
    assert ports["o__payload"]["shape"]["element"] == {"kind": "signed", "width": 8}
    assert ports["o__ready"]["direction"] == "input" and ports["i__ready"]["direction"] == "output"


@pytest.mark.parametrize("tag", list(LINT_CONFIGS))
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_verilator_lint_clean(exported_for_lint, unit, tag):
    res = exported_for_lint[tag, unit]
    report = lint_verilator(res.verilog, res.top)
    assert report.ok, report.output


@pytest.mark.parametrize("tag", list(LINT_CONFIGS))
@pytest.mark.parametrize("unit", sorted(UNITS))
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
        [f"{top_name('requant')}.v", f"{top_name('requant')}.json", WAIVERS.name])


def test_cli_export_all_with_lint(tmp_path, capsys):
    cfg = tmp_path / "small.toml"
    SMALL.save(cfg)
    assert main(["rtl", "export", "--config", str(cfg), "-o", str(tmp_path), "--lint"]) == 0
    out = capsys.readouterr().out
    for unit in UNITS:
        assert (tmp_path / f"{top_name(unit)}.v").is_file()
    assert out.count("verilator: clean") == len(UNITS)
    assert out.count("yosys: clean") == len(UNITS)


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
