"""``edgetron sim`` and ``edgetron compare`` (edgetron/commands/, edgetron/report.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgetron.cli import main
from edgetron.commands.sim import COMPILE_NOTICE, compile_notice, progress_bar
from edgetron.config import ENERGY_EVENTS, PRESETS, AcceleratorConfig
from edgetron.report import format_comparison, format_result, kind_breakdown
from edgetron.sim import engine, functional
from edgetron.sim.engine import simulate
from edgetron.sim.units import gemm as gemm_unit
from edgetron.workload import (
    Conv2d,
    Gemm,
    MaxPool,
    Trace,
    build_model,
    save_trace,
    to_scalesim,
    vit,
)

KEYS = ("macs", "cycles", "stall_cycles", "utilization", "latency_ms", "energy_uj",
        "dram_bytes")


def test_sim_prints_totals(capsys):
    assert main(["sim", "resnet18", "--config", "edge-8"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 on edge-8: 8x8 ws" in out
    assert "MACs 1,814,073,344" in out
    assert "conv2d" in out and "maxpool" in out


def test_sim_per_op_and_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["sim", "vit-tiny", "--per-op", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "blocks.11.fc2" in out and f"wrote {path}" in out
    d = json.loads(path.read_text())
    assert d["trace"] == "vit-tiny" and d["config"]["name"] == "edge-16"
    for key in KEYS:
        assert key in d["totals"]
        assert all(key in op for op in d["ops"])
    assert d["totals"]["macs"] == 1_253_683_200
    assert sum(op["macs"] for op in d["ops"]) == d["totals"]["macs"]
    assert set(d["by_kind"]) == {"conv2d", "concat", "add", "layernorm", "gemm", "softmax",
                                 "gelu"}


def test_sim_json_to_stdout_is_pure_json(capsys):
    assert main(["sim", "mobilenetv2", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["macs"] == build_model("mobilenetv2").macs


def test_sim_reads_trace_files_scalesim_csvs_and_toml_configs(tmp_path, capsys):
    small = vit(image_size=32, embed=32, heads=2, depth=1, classes=10)
    save_trace(small, tmp_path / "small.json")
    (tmp_path / "small.csv").write_text(to_scalesim(small))
    (tmp_path / "cfg.toml").write_text('preset = "edge-8"\ndataflow = "os"\n')
    assert main(["sim", str(tmp_path / "small.json"), "--config",
                 str(tmp_path / "cfg.toml")]) == 0
    assert "on edge-8+dataflow=os: 8x8 os" in capsys.readouterr().out
    assert main(["sim", str(tmp_path / "small.csv"), "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["macs"] == sum(op.macs for op in small if op.unit == "array")


def test_sim_functional(tmp_path, capsys):
    small = vit(image_size=32, embed=32, heads=2, depth=1, classes=10)
    save_trace(small, tmp_path / "small.json")
    assert main(["sim", str(tmp_path / "small.json"), "--functional", "--config",
                 "edge-8"]) == 0
    assert "bit-exact with golden" in capsys.readouterr().out


@pytest.fixture
def small_vit(tmp_path):
    """A one-block ViT on 32 x 32 images, saved as a trace file; (trace, path)."""
    small = vit(image_size=32, embed=32, heads=2, depth=1, classes=10)
    path = tmp_path / "small.json"
    save_trace(small, path)
    return small, path


def test_sim_functional_exits_1_on_a_mismatch(small_vit, monkeypatch, capsys):
    # A simulator whose GEMM unit gets one value wrong: the CLI must report the op and fail.
    real = gemm_unit.gemm_tiled

    def off_by_one(*args):
        calls, ok = real(*args)
        args[-1][0, 0, 0] += 1
        return calls, ok

    monkeypatch.setattr(gemm_unit, "gemm_tiled", off_by_one)
    argv = ["sim", str(small_vit[1]), "--functional", "--config", "edge-8"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "ops differ from golden" in out and "op 0 ('patch_embed')" in out
    assert main([*argv, "--json", "-"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["functional"]["ok"] is False and d["functional"]["failures"][0]["index"] == 0


def test_sim_functional_takes_input_data(small_vit, tmp_path, capsys):
    trace, path = small_vit
    shape = trace[0].in_shapes[0]
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(3).integers(-128, 128, size=shape, dtype=np.int8))
    assert main(["sim", str(path), "--functional", "--input", str(x)]) == 0
    assert "bit-exact with golden" in capsys.readouterr().out
    np.save(x, np.zeros((1, 2, 3), dtype=np.int8))
    assert main(["sim", str(path), "--functional", "--input", str(x)]) == 1
    err = capsys.readouterr().err
    assert "inputs[0] must be integers of shape" in err and err.count("\n") == 1
    np.save(x, np.array([None, 1], dtype=object), allow_pickle=True)
    assert main(["sim", str(path), "--functional", "--input", str(x)]) == 1
    assert "not a .npy file of plain numbers" in capsys.readouterr().err
    assert main(["sim", str(path), "--input", str(x)]) == 1
    assert "add --functional" in capsys.readouterr().err


@pytest.mark.parametrize("compiled, functional_mode, shown", [
    ((True, True), False, False), ((False, True), False, True),
    ((True, False), False, False), ((True, False), True, True),
])
def test_compile_notice_only_when_the_cache_is_cold(monkeypatch, capsys, compiled,
                                                     functional_mode, shown):
    monkeypatch.setattr(engine, "kernels_compiled", lambda: compiled[0])
    monkeypatch.setattr(functional, "kernels_compiled", lambda: compiled[1])
    compile_notice(functional_mode=functional_mode)
    out, err = capsys.readouterr()
    assert out == "" and (COMPILE_NOTICE in err) == shown


def test_compile_notice_goes_to_stderr_around_json(monkeypatch, capsys):
    monkeypatch.setattr(engine, "kernels_compiled", lambda: False)
    assert main(["sim", "resnet18", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["trace"] == "resnet18"
    assert err.startswith("compiling simulator kernels (first run only")
    assert main(["compare", "resnet18", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["models"][0]["trace"] == "resnet18" and COMPILE_NOTICE in err


def test_kernels_report_compiled_once_run():
    simulate(build_model("resnet18"), PRESETS["edge-8"])
    assert engine.kernels_compiled()


@pytest.mark.parametrize("sizes, text", [
    ((128 * 1024, 128 * 1024, 64 * 1024), "SRAM 128/128/64 KiB"),
    ((512, 1024, 1536), "SRAM 512 B/1 KiB/1,536 B"),
])
def test_sram_sizes_below_or_between_kib_are_printed_in_bytes(sizes, text):
    cfg = AcceleratorConfig(rows=4, cols=4, ifmap_sram_bytes=sizes[0],
                            weight_sram_bytes=sizes[1], ofmap_sram_bytes=sizes[2])
    fc = Gemm(name="fc", inputs=("input",), batch=1, m=16, k=32, n=8, weights=True)
    res = simulate(Trace(name="fc", batch=1, ops=(fc,)), cfg)
    assert text in format_result(res) and text in format_comparison([res])


@pytest.mark.parametrize("argv, message", [
    (["sim", "no-such-model"], "is neither a preset"),
    (["sim", "vit-tiny", "--config", "edge-99"], "neither a preset"),
    (["compare", "vit-tiny", "nope.json"], "is neither a preset"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_bad_trace_and_config_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "edgetron-trace", "version": 1, "name": "x", "batch": 1, '
                   '"ops": [{"id": 0, "name": "q", "kind": "gemm", "inputs": ["input"], '
                   '"batch": 1, "m": 0, "k": 4, "n": 4, "weights": true}]}')
    assert main(["sim", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "op 0 ('q'): m: 0 is out of range" in err and err.count("\n") == 1
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "edge-16"\ncols = 1000\n')
    assert main(["sim", "resnet18", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "cols: 1000 is out of range; allowed [1, 256]" in err


def test_unfittable_row_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('preset = "edge-8"\nofmap_sram_bytes = 512\n')
    assert main(["sim", "vit-tiny", "--config", str(tmp_path / "c.toml")]) == 1
    err = capsys.readouterr().err
    assert "op 6 ('blocks.0.softmax')" in err and "ofmap_sram_bytes" in err


def test_compare_table_plot_and_json(tmp_path, capsys):
    plot = tmp_path / "b.png"
    path = tmp_path / "c.json"
    assert main(["compare", "vit-tiny", "resnet18", "--plot", str(plot), "--json",
                 str(path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "vit-tiny" in line)
    assert header.index("vit-tiny") < header.index("resnet18")
    for label in ("MACs", "cycles", "DRAM stall", "utilization", "latency", "energy",
                  "DRAM traffic", "cycles in softmax", "cycles in conv2d"):
        assert label in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads(path.read_text())
    assert [m["trace"] for m in d["models"]] == ["vit-tiny", "resnet18"]
    for m in d["models"]:
        for key in KEYS:
            assert key in m["totals"]
            assert all(key in op for op in m["ops"])


def test_progress_bar_appears_only_after_a_second(monkeypatch, capsys):
    now = [0.0]
    monkeypatch.setattr("tqdm.std.time", lambda: now[0])  # tqdm's clock, stepped by hand
    with progress_bar(3, "quick") as update:
        update(1)
        now[0] = 0.5
        update(1)
    assert capsys.readouterr().err == ""
    with progress_bar(3, "slow") as update:
        update(1)
        now[0] = 2.0
        update(1)
        assert "slow:  67%" in capsys.readouterr().err


def test_all_zero_energy_table_still_reports(tmp_path, capsys):
    cfg = tmp_path / "zero.toml"
    cfg.write_text('preset = "edge-8"\n[energy_overrides]\n'
                   + "".join(f"{e} = 0.0\n" for e in ENERGY_EVENTS))
    assert main(["compare", "resnet18", "mobilenetv2", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "of it DRAM" in out and "0.0 uJ" in out
    assert main(["sim", "resnet18", "--config", str(cfg)]) == 0
    assert "energy 0.0 uJ" in capsys.readouterr().out


def test_functional_seed_error_is_one_line(capsys):
    assert main(["sim", "resnet18", "--functional", "--seed", "-1"]) == 1
    err = capsys.readouterr().err
    assert "seed: expected a non-negative integer, got -1" in err and err.count("\n") == 1


def test_report_breakdown_sums_to_totals():
    res = simulate(build_model("vit-tiny"), PRESETS["edge-16"])
    b = kind_breakdown(res)
    assert sum(v["cycles"] for v in b.values()) == res.totals["cycles"]
    assert sum(v["macs"] for v in b.values()) == res.totals["macs"]
    assert sum(v["energy_uj"] for v in b.values()) == pytest.approx(res.totals["energy_uj"])
    assert "vit-tiny" in format_comparison([res])


# ---- traces too large to simulate, functional runs too large to hold -------------------------
def _window_op(cls, name: str):
    """A 50,000 x 50,000 window over a 50,000 x 50,000 map padded to 99,999 x 99,999
    outputs: a valid op whose counts (2.5e19) do not fit 64-bit integers."""
    pad = {f"pad_{side}": 49_999 for side in ("top", "bottom", "left", "right")}
    extra = {"k": 1} if cls is Conv2d else {}
    return cls(name=name, inputs=("input",), n=1, h=50_000, w=50_000, c=1, r=50_000,
               s=50_000, **extra, **pad)


@pytest.mark.parametrize("cls, message", [
    (Conv2d, "op 0 ('huge'): its macs = 24,999,500,002,500,000,000 exceeds the "
             "simulator's 64-bit integers (at most 9,223,372,036,854,775,807); the trace is "
             "valid, but too large to simulate"),
    (MaxPool, "op 0 ('huge'): its window reads, up to "
              "8*n*out_h*out_w*c*r*s = 199,996,000,020,000,000,000, exceed the simulator's "
              "64-bit integers (at most 9,223,372,036,854,775,807); the trace is valid, but "
              "too large to simulate"),
])
def test_a_trace_too_large_for_64_bits_is_a_one_line_error(tmp_path, capsys, cls, message):
    path = tmp_path / "huge.json"
    save_trace(Trace(name="huge", batch=1, ops=(_window_op(cls, "huge"),)), path)
    assert main(["trace", "show", str(path)]) == 0  # the trace itself is fine
    capsys.readouterr()
    for argv in (["sim", str(path)], ["compare", "resnet18", str(path)],
                 ["sim", str(path), "--functional"]):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert err == f"edgetron {argv[0]}: error: {message}\n", argv
        assert "Traceback" not in out + err


def test_functional_refuses_a_run_too_large_with_its_estimate(capsys, monkeypatch):
    calls = []
    monkeypatch.setattr("edgetron.commands.sim.simulate",
                        lambda *a, **kw: calls.append(1) or simulate(*a, **kw))
    assert main(["sim", "deit-base", "--functional", "--batch", "16"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgetron sim: error: functional mode of 'deit-base' would need "
                          "about 1") and err.count("\n") == 1
    assert " GiB and " in err and " min: more memory than the limit of 8 GiB" in err
    assert "--functional-max-gib" in err and "which must be at least 1" in err
    assert not calls  # refused before the timing model ran
    # The limit is the flag's: a small model under a tiny limit is refused too, and runs
    # once the limit is raised.
    assert main(["sim", "resnet18", "--functional", "--functional-max-gib", "0.05"]) == 1
    assert "limit of 0.05 GiB" in capsys.readouterr().err
    assert main(["sim", "--functional-max-gib", "0", "resnet18", "--functional"]) == 1
    assert "--functional-max-gib: expected a positive number of GiB, got 0" in (
        capsys.readouterr().err)


def test_functional_reuses_the_plan_of_the_timing_run(small_vit, monkeypatch, capsys):
    simulations = []
    real = simulate

    def counted(*args, **kw):
        simulations.append(1)
        return real(*args, **kw)

    monkeypatch.setattr("edgetron.commands.sim.simulate", counted)
    monkeypatch.setattr("edgetron.sim.functional.simulate", counted)
    assert main(["sim", str(small_vit[1]), "--functional", "--functional-max-gib", "2"]) == 0
    assert "bit-exact with golden" in capsys.readouterr().out
    assert len(simulations) == 1


def test_help_documents_the_functional_limit(capsys):
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--functional-max-gib GIB" in out and "estimated peak memory" in out
