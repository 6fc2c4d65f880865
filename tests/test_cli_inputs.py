"""Command-line arguments that used to be ignored or misreported, one-line errors, and the
order of op kinds in reports."""

from __future__ import annotations

import pytest

from edgetron.cli import main
from edgetron.config import PRESETS
from edgetron.report import format_comparison, kind_breakdown
from edgetron.sim.engine import simulate
from edgetron.workload import KINDS, Gemm, LayerNorm, Trace

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny(tmp_path):
    """A one-op trace file: the quickest model to compare."""
    path = tmp_path / "tiny.json"
    Trace(name="tiny", batch=1, ops=(Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8,
                                          n=4, weights=True),)).save(path)
    return path


@pytest.mark.parametrize(("given", "written"), [
    ("out", "out.png"),     # no suffix: matplotlib's default format, said so
    ("out.", "out.png"),
    ("out.svg", "out.svg"),
    ("plot.PNG", "plot.PNG"),
])
def test_compare_plot_prints_the_path_it_wrote(tmp_path, tiny, capsys, given, written):
    assert main(["compare", str(tiny), "--plot", str(tmp_path / given)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"wrote {tmp_path / written}"
    data = (tmp_path / written).read_bytes()
    assert data.startswith(PNG) if written.lower().endswith(".png") else b"<svg" in data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"tiny.json", written})


def test_compare_plot_format_is_checked_before_simulating(tmp_path, tiny, capsys,
                                                          monkeypatch):
    def no_sim(*args, **kwargs):
        raise AssertionError("simulated before checking --plot")

    monkeypatch.setattr("edgetron.commands.compare.simulate", no_sim)
    bad = tmp_path / "out.txt"
    assert main(["compare", str(tiny), "--plot", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgetron compare: error: {bad}: '.txt' is not an image format "
                          "matplotlib writes; use one of ")
    assert ".png" in err and ".svg" in err and err.count("\n") == 1
    assert not bad.exists()


def test_compare_plot_with_json_on_stdout(tmp_path, tiny, capsys):
    # --json - keeps standard output pure JSON; the plot is still written, noted on stderr.
    plot = tmp_path / "p.png"
    assert main(["compare", str(tiny), "--json", "-", "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("{") and out.rstrip().endswith("}")
    assert f"wrote {plot}" in err and plot.read_bytes().startswith(PNG)


@pytest.mark.parametrize(("argv", "given"), [
    (["--list", "-o", "x.toml"], "-o/--output"),
    (["--list", "edge-8"], "SPEC"),
    (["--list", "edge-8", "--output", "x.toml"], "SPEC and -o/--output"),
])
def test_config_list_refuses_what_it_would_ignore(tmp_path, monkeypatch, capsys, argv, given):
    monkeypatch.chdir(tmp_path)
    assert main(["config", *argv]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"edgetron config: error: --list prints the preset table and takes no "
                   f"{given}; to write a preset as TOML: edgetron config PRESET -o FILE\n")
    assert list(tmp_path.iterdir()) == []


def test_config_list_and_output(tmp_path, capsys):
    assert main(["config", "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("edge-8 ")
    path = tmp_path / "e.toml"
    assert main(["config", "edge-8", "-o", str(path)]) == 0
    assert capsys.readouterr().out == f"wrote {path}\n"
    assert 'name = "edge-8"' in path.read_text()


@pytest.mark.parametrize(("files", "argv", "message"), [
    # A config value of thousands of digits: the file and the key, never a traceback.
    ({"c.toml": "cols = " + "7" * 5000 + "\n"}, ["config", "c.toml"],
     "c.toml: cols: an integer of 5000 digits is out of range; allowed [1, 256] (PE columns "
     "of the systolic array)"),
    ({"c.toml": "[energy_overrides]\ndram_byte = " + "7" * 400 + "\n"}, ["config", "c.toml"],
     "c.toml: energy_overrides.dram_byte: an integer of 400 digits is out of range; allowed "
     "[0.0, 1000000.0] pJ"),
    ({"n.csv": "Layer, M, N, K,\nfc,4," + "9" * 5000 + ",8,\n"}, ["trace", "show", "n.csv"],
     "n.csv:2: N: an integer of 5000 digits is out of range; allowed [1, 16777216]"),
    ({"n.csv": "Layer, M, K, N,\nfc,4,8,8,\n"}, ["trace", "show", "n.csv"],
     "n.csv:1: column 3: 'K' is not N; SCALE-Sim reads the GEMM form's columns by position, "
     "in the order Layer, M, N, K"),
    ({}, ["trace", "show", "missing.json"],
     "model 'missing.json' is neither a preset (vit-tiny, deit-small, deit-base, resnet18, "
     "mobilenetv2) nor a file"),
    ({}, ["trace", "save", "vit-tiny", "-o", "no/such/dir/v.json"],
     "[Errno 2] No such file or directory: 'no/such/dir/v.json'"),
    ({}, ["rtl", "export", "--unit", "nope", "-o", "x"],
     "rtl export: --unit: unknown unit 'nope'; known: all, "),
])
def test_bad_inputs_are_one_line_errors(tmp_path, monkeypatch, capsys, files, argv, message):
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgetron {argv[0]}: error: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_report_orders_kinds_by_the_one_registry():
    # A layernorm comes first in the trace; the report still lists kinds in KINDS order.
    ln = LayerNorm(name="ln", inputs=("input",), batch=1, rows=4, cols=8)
    fc = Gemm(name="fc", inputs=(0,), batch=1, m=4, k=8, n=8, weights=True)
    result = simulate(Trace(name="t", batch=1, ops=(ln, fc)), PRESETS["edge-8"])
    assert list(kind_breakdown(result)) == [k for k in KINDS if k in ("gemm", "layernorm")]
    assert list(kind_breakdown(result)) == ["gemm", "layernorm"]
    rows = [line.split()[2] for line in format_comparison([result]).splitlines()
            if line.startswith("cycles in ")]
    assert rows == ["gemm", "layernorm"]
