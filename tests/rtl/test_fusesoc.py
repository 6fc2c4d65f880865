"""The FuseSoC core written beside the exported Verilog: CAPI2 content, and FuseSoC (pip)
parsing it and running its lint target (Verilator) offline in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from edgetron.cli import main
from edgetron.config import PRESETS
from edgetron.rtl.export import build_unit
from edgetron.rtl.fpga.fusesoc import core_name, core_text
from edgetron.rtl.lint import find_verilator

#: A 2x2 array with 1 KiB buffers: small Verilog, quick lint.
SETS = ["rows=2", "cols=2", "ifmap_sram_bytes=1024", "weight_sram_bytes=1024",
        "ofmap_sram_bytes=1024"]
CFG = PRESETS["edge-8"].replace(rows=2, cols=2, ifmap_sram_bytes=1024, weight_sram_bytes=1024,
                                ofmap_sram_bytes=1024)


@pytest.fixture(scope="module")
def cores(tmp_path_factory):
    """``edgetron fpga --fusesoc-core DIR`` for every unit; returns DIR."""
    out = tmp_path_factory.mktemp("cores")
    argv = ["fpga", "--config", "edge-8", *(a for s in SETS for a in ("--set", s)),
            "--fusesoc-core", str(out)]
    assert main(argv) == 0
    return out


def _fusesoc(args: list[str], cwd, tmp_path) -> subprocess.CompletedProcess:
    """Run the pip-installed FuseSoC with a private config, cache and data home (offline:
    no library is registered, so nothing is fetched)."""
    _, env = find_verilator()
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[var] = str(tmp_path / var.lower())
    code = "import sys; from fusesoc.main import main; sys.argv[0] = 'fusesoc'; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_core_content():
    manifest = build_unit("gemm", CFG).manifest_data
    core = yaml.safe_load(core_text(manifest).split("\n", 1)[1])  # after the CAPI=2: line
    assert core_text(manifest).startswith("CAPI=2:\n")
    assert core["name"] == core_name("gemm") and core["name"].startswith("edgetron:rtl:gemm:")
    assert core["filesets"]["rtl"] == {"files": ["edgetron_gemm.v"],
                                       "file_type": "verilogSource"}
    assert core["filesets"]["waivers"]["file_type"] == "vlt"
    assert core["filesets"]["manifest"] == {"files": ["edgetron_gemm.json"], "file_type": "user"}
    params = core["parameters"]
    assert params["EDGETRON_GEMM_ROWS"] == {
        "datatype": "int", "default": 2, "paramtype": "vlogdefine",
        "description": "rows the Verilog was elaborated with (export again to change it)"}
    assert params["EDGETRON_GEMM_DATAFLOW"]["default"] == "ws"
    assert set(params) == {f"EDGETRON_GEMM_{k.upper()}" for k in manifest["parameters"]}
    for target in ("default", "lint"):
        assert core["targets"][target]["toplevel"] == "edgetron_gemm"
        assert core["targets"][target]["parameters"] == list(params)
    assert core["targets"]["lint"]["flow"] == "lint"
    assert core["targets"]["lint"]["flow_options"] == {"tool": "verilator",
                                                       "verilator_options": ["-Wall"]}


def test_core_rejects_unsupported_parameter():
    manifest = {**build_unit("requant", CFG).manifest_data, "parameters": {"x": [1, 2]}}
    with pytest.raises(ValueError, match="parameter x"):
        core_text(manifest)


def test_fusesoc_parses_the_cores(cores, tmp_path):
    for unit in ("gemm", "requant"):
        assert (cores / f"edgetron_{unit}.core").is_file()
        assert (cores / f"edgetron_{unit}.v").is_file()
        res = _fusesoc(["--cores-root", str(cores), "core-info", f"edgetron:rtl:{unit}"],
                       tmp_path, tmp_path)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"Name:        {core_name(unit)}" in res.stdout
        assert "lint" in res.stdout


@pytest.mark.parametrize("unit", ["requant", "gemm"])
def test_fusesoc_lint_target_runs_verilator(cores, tmp_path, unit):
    res = _fusesoc(["--cores-root", str(cores), "run", "--target", "lint",
                    f"edgetron:rtl:{unit}"], tmp_path, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    vc = next((tmp_path / "build").rglob("*.vc")).read_text()
    assert "--lint-only" in vc and "-Wall" in vc and "verilator_waivers.vlt" in vc
    assert f"-DEDGETRON_{unit.upper()}_" in vc


def test_fusesoc_lint_target_fails_on_a_bad_line(cores, tmp_path):
    """The lint target is a real check: a width truncation added to the Verilog fails it."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in os.listdir(cores):
        if name.startswith("edgetron_requant") or name.endswith(".vlt"):
            text = (cores / name).read_text()
            if name == "edgetron_requant.v":
                text = text.replace("endmodule", "  wire [3:0] probe;\n"
                                    "  assign probe = 8'hff;\nendmodule", 1)
            (bad / name).write_text(text)
    res = _fusesoc(["--cores-root", str(bad), "run", "--target", "lint",
                    "edgetron:rtl:requant"], tmp_path, tmp_path)
    assert res.returncode != 0
    assert "WIDTHTRUNC" in res.stdout + res.stderr
