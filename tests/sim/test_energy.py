"""Energy table (sim/energy.py) and the energy accounting of the engine."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import ENERGY_EVENTS, PRESETS, AcceleratorConfig, ConfigError
from edgetron.sim import energy
from edgetron.sim.engine import simulate
from edgetron.workload import Gemm, LayerNorm, Trace, vit


def test_table_covers_exactly_the_config_events():
    for name, table in energy.TABLES.items():
        assert tuple(table) == ENERGY_EVENTS, name
    assert list(energy.EVENT_INDEX) == list(ENERGY_EVENTS)


def test_horowitz_published_figures():
    h = energy.HOROWITZ45_PUBLISHED
    assert (h["add_int8"], h["add_int32"], h["mul_int8"], h["mul_int32"]) == (0.03, 0.1, 0.2, 3.1)
    assert (h["sram_8kb_64bit"], h["sram_32kb_64bit"], h["sram_1mb_64bit"]) == (10, 20, 100)
    assert (h["dram_64bit_low"], h["dram_64bit_high"]) == (1300, 2600)


def test_derived_event_energies():
    t = energy.HOROWITZ45
    assert t["mac_int8"] == pytest.approx(0.2 + 0.1)
    assert t["add_int32"] == 0.1
    assert t["mul_int32"] == 3.1
    assert t["reg_byte"] == 0.03
    assert t["sram_read_byte"] == t["sram_write_byte"] == pytest.approx(20 / 8)
    assert t["dram_byte"] == pytest.approx((1300 + 2600) / 2 / 8)
    # The ordering every energy argument rests on: a DRAM byte costs ~100 SRAM bytes,
    # an SRAM byte ~8 MACs.
    assert t["dram_byte"] / t["sram_read_byte"] == pytest.approx(97.5)
    assert t["sram_read_byte"] / t["mac_int8"] == pytest.approx(2.5 / 0.3)


def test_overrides_replace_single_entries():
    cfg = AcceleratorConfig(energy_overrides={"dram_byte": 40.0, "mac_int8": 1.0})
    table = energy.energy_table(cfg)
    assert table["dram_byte"] == 40.0 and table["mac_int8"] == 1.0
    assert table["mul_int32"] == energy.HOROWITZ45["mul_int32"]
    vec = energy.energy_vector(cfg)
    assert vec[energy.EVENT_INDEX["dram_byte"]] == 40.0
    with pytest.raises(ConfigError, match="unknown event 'flop'"):
        AcceleratorConfig(energy_overrides={"flop": 1.0})


def _one_gemm() -> Trace:
    return Trace(name="g", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=32, k=48, n=40, weights=True,
             bias=True, requant="channel"),
        LayerNorm(name="ln", inputs=(0,), batch=1, rows=32, cols=40, bias=True),
    ))


def test_op_energy_is_events_times_table():
    cfg = PRESETS["edge-8"]
    res = simulate(_one_gemm(), cfg)
    table = energy.energy_table(cfg)
    for op in res.ops:
        v = op.values
        expect = (v["ev_mac_int8"] * table["mac_int8"] + v["ev_add_int32"] * table["add_int32"]
                  + v["ev_mul_int32"] * table["mul_int32"] + v["ev_reg_byte"] * table["reg_byte"]
                  + v["sram_read_bytes"] * table["sram_read_byte"]
                  + v["sram_write_bytes"] * table["sram_write_byte"]
                  + (v["dram_read_bytes"] + v["dram_write_bytes"]) * table["dram_byte"])
        assert v["energy_pj"] == pytest.approx(expect, rel=1e-12)
    gemm = res.ops[0].values
    assert gemm["ev_mac_int8"] == 32 * 48 * 40
    assert gemm["ev_mul_int32"] == 32 * 40  # one requantization product per output
    by_event = res.energy_by_event()
    assert sum(by_event.values()) == pytest.approx(res.totals["energy_uj"], rel=1e-12)


def test_energy_is_linear_in_each_override():
    trace = vit(image_size=32, patch=16, embed=32, heads=2, depth=1, classes=10)
    base = PRESETS["edge-16"]
    e0 = simulate(trace, base).totals
    doubled = base.replace(energy_overrides={"dram_byte": 2 * energy.HOROWITZ45["dram_byte"]})
    e1 = simulate(trace, doubled).totals
    dram = e0["energy_by_event_uj"]["dram_byte"]
    assert e1["energy_uj"] == pytest.approx(e0["energy_uj"] + dram, rel=1e-12)
    zero = base.replace(energy_overrides=dict.fromkeys(ENERGY_EVENTS, 0.0))
    assert simulate(trace, zero).totals["energy_uj"] == 0.0
    assert np.isfinite(e0["energy_uj"]) and e0["energy_uj"] > 0
