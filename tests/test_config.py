"""AcceleratorConfig: presets, validation messages, TOML round trip, sim_params."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edgetron import config as config_mod
from edgetron import config_file
from edgetron.config import (
    DATAFLOWS,
    DEFAULT_PRESET,
    DRAM_PORTS,
    ENERGY_EVENTS,
    ENERGY_TABLES,
    PRESETS,
    AcceleratorConfig,
    ConfigError,
    SimParams,
)
from edgetron.config_file import load_config

INT_FIELDS = config_mod._INT_FIELDS
FLOAT_FIELDS = config_mod._FLOAT_FIELDS


# ---- presets -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_square_weight_stationary_arrays(name):
    cfg = PRESETS[name]
    assert cfg.name == name
    assert cfg.rows == cfg.cols == int(name.split("-")[1])
    assert cfg.dataflow == "ws"
    assert cfg.peak_macs_per_cycle == cfg.rows * cfg.cols
    assert AcceleratorConfig(**{f.name: getattr(cfg, f.name)
                                for f in dataclasses.fields(cfg)}) == cfg
    assert load_config(name) is cfg


def test_preset_names_and_default():
    assert {"edge-8", "edge-16", "edge-32"} <= set(PRESETS)
    assert load_config() is PRESETS[DEFAULT_PRESET]


def test_presets_grow_with_the_array():
    small, mid, big = PRESETS["edge-8"], PRESETS["edge-16"], PRESETS["edge-32"]
    for key in ("weight_sram_bytes", "ifmap_sram_bytes", "dram_bytes_per_cycle", "vector_lanes"):
        assert getattr(small, key) <= getattr(mid, key) <= getattr(big, key)


# ---- TOML round trip ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_toml_round_trip(tmp_path, name):
    path = tmp_path / f"{name}.toml"
    PRESETS[name].save(path)
    assert load_config(path) == PRESETS[name]
    assert load_config(str(path)) == PRESETS[name]


name_st = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
)


@st.composite
def configs(draw):
    kwargs = {key: draw(st.integers(lo, hi)) for key, (lo, hi, _) in INT_FIELDS.items()}
    kwargs.update({key: draw(st.floats(lo, hi)) for key, (lo, hi, _) in FLOAT_FIELDS.items()})
    kwargs["name"] = draw(name_st)
    kwargs["dataflow"] = draw(st.sampled_from(sorted(DATAFLOWS)))
    kwargs["double_buffer"] = draw(st.booleans())
    kwargs["energy_table"] = draw(st.sampled_from(ENERGY_TABLES))
    kwargs["energy_overrides"] = draw(
        st.dictionaries(st.sampled_from(ENERGY_EVENTS), st.floats(0.0, 1e6))
    )
    try:
        return AcceleratorConfig(**kwargs)
    except ConfigError as exc:
        # Only the cross-field buffer checks may reject independently drawn fields.
        assert re.match(r"(ofmap|weight|ifmap)_sram_bytes: ", str(exc)), exc
        assume(False)


@settings(deadline=None, max_examples=60)
@given(configs())
def test_random_config_toml_round_trip(tmp_path_factory, cfg):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    cfg.save(path)
    back = load_config(path)
    assert back == cfg
    assert back.sim_params() == cfg.sim_params()
    assert AcceleratorConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_toml_preset_key_with_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "edge-8"\nname = "mine"\nrows = 4\n\n'
                    "[energy_overrides]\nmac_int8 = 0.5\n")
    cfg = load_config(path)
    assert cfg == PRESETS["edge-8"].replace(name="mine", rows=4,
                                            energy_overrides={"mac_int8": 0.5})
    assert cfg.energy_override_dict == {"mac_int8": 0.5}


def test_a_name_with_quotes_and_backslashes_round_trips():
    cfg = AcceleratorConfig(name='quote " and \\ backslash')
    assert AcceleratorConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


@pytest.mark.parametrize("name", ["tab\there", "new\nline", "bell\x07"])
def test_names_with_control_characters_are_rejected(name):
    # Refused up front, naming the key, rather than written to TOML.
    with pytest.raises(ConfigError, match=r"^name: expected a non-empty printable string"):
        AcceleratorConfig(name=name)


# ---- validation: ranges -----------------------------------------------------------------
def _bad_int_cases():
    for key, (lo, hi, _) in INT_FIELDS.items():
        for value in (lo - 1, hi + 1):
            yield pytest.param(
                key, value, rf"^{key}: {value} is out of range; allowed \[{lo}, {hi}\]",
                id=f"{key}={value}",
            )


def _bad_float_cases():
    for key, (lo, hi, _) in FLOAT_FIELDS.items():
        for value in (lo / 2, hi * 2, -1.0, 0.0, math.inf, -math.inf, math.nan):
            yield pytest.param(
                key, value, rf"^{key}: .* is out of range; allowed \[{lo}, {hi}\]",
                id=f"{key}={value}",
            )


@pytest.mark.parametrize(("key", "value", "match"), [*_bad_int_cases(), *_bad_float_cases()])
def test_out_of_range_values_name_key_and_range(key, value, match):
    with pytest.raises(ConfigError, match=match):
        AcceleratorConfig(**{key: value})


def hi_buffer() -> int:
    return INT_FIELDS["weight_sram_bytes"][1]


@pytest.mark.parametrize("key", sorted(INT_FIELDS))
def test_int_range_ends_are_accepted(key):
    lo, hi, _ = INT_FIELDS[key]
    # Large weight/ofmap buffers so that only the field under test is at an end.
    roomy = AcceleratorConfig(weight_sram_bytes=hi_buffer(), ofmap_sram_bytes=hi_buffer())
    for value in (lo, hi):
        assert getattr(roomy.replace(**{key: value}), key) == value


# ---- validation: types ------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(INT_FIELDS))
@pytest.mark.parametrize("value", [True, False, 16.0, "16", None, [16]])
def test_int_fields_reject_wrong_types_including_bool(key, value):
    lo, hi, _ = INT_FIELDS[key]
    with pytest.raises(ConfigError, match=rf"^{key}: expected an integer .* in \[{lo}, {hi}\]"):
        AcceleratorConfig(**{key: value})


@pytest.mark.parametrize("key", sorted(FLOAT_FIELDS))
@pytest.mark.parametrize("value", [True, "400", None, [1.0]])
def test_float_fields_reject_wrong_types_including_bool(key, value):
    lo, hi, _ = FLOAT_FIELDS[key]
    with pytest.raises(ConfigError, match=rf"^{key}: expected a number .* in \[{lo}, {hi}\]"):
        AcceleratorConfig(**{key: value})


def test_float_fields_accept_ints_and_store_floats():
    cfg = AcceleratorConfig(clock_mhz=400, dram_bytes_per_cycle=8)
    assert type(cfg.clock_mhz) is float and cfg.clock_mhz == 400.0
    assert type(cfg.dram_bytes_per_cycle) is float


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataflow": "xs"}, r"^dataflow: 'xs' is not one of ws, os, is"),
        ({"dataflow": "WS"}, r"^dataflow: 'WS' is not one of"),
        ({"dataflow": 0}, r"^dataflow: 0 is not one of"),
        ({"dataflow": ["ws"]}, r"^dataflow: \['ws'\] is not one of"),
        ({"energy_table": "nope"}, r"^energy_table: 'nope' is not one of horowitz45"),
        ({"energy_table": ["horowitz45"]}, r"^energy_table: .* is not one of"),
        ({"double_buffer": 1}, r"^double_buffer: expected true or false, got int 1$"),
        ({"double_buffer": "yes"}, r"^double_buffer: expected true or false"),
        ({"name": ""}, r"^name: expected a non-empty printable string"),
        ({"name": 3}, r"^name: expected a non-empty printable string, got int 3$"),
    ],
)
def test_other_fields_reject_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AcceleratorConfig(**kwargs)


# ---- DRAM ports ------------------------------------------------------------------------------
PER_STREAM = {"dram_ports": "per_stream", "dram_ifmap_bytes_per_cycle": 8.0,
              "dram_filter_bytes_per_cycle": 4.0, "dram_ofmap_bytes_per_cycle": 2.0}
PORT_FIELDS = config_mod._DRAM_PORT_FIELDS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_have_one_shared_dram_port(name):
    cfg = PRESETS[name]
    assert cfg.dram_ports == "shared" and AcceleratorConfig().dram_ports == "shared"
    assert all(getattr(cfg, key) == 0.0 for key in PORT_FIELDS)
    assert cfg.sim_params().dram_mode == DRAM_PORTS["shared"]


def test_dram_ports_of_each_mode_are_accepted_and_reach_the_simulator():
    rw = AcceleratorConfig(dram_ports="read_write", dram_read_bytes_per_cycle=12,
                           dram_write_bytes_per_cycle=4.5)
    assert type(rw.dram_read_bytes_per_cycle) is float
    p = rw.sim_params()
    assert (p.dram_mode, p.dram_read_bytes_per_cycle, p.dram_write_bytes_per_cycle) == (
        DRAM_PORTS["read_write"], 12.0, 4.5)
    p = AcceleratorConfig(**PER_STREAM).sim_params()
    assert (p.dram_mode, p.dram_ifmap_bytes_per_cycle, p.dram_filter_bytes_per_cycle,
            p.dram_ofmap_bytes_per_cycle) == (DRAM_PORTS["per_stream"], 8.0, 4.0, 2.0)


def _bad_port_cases():
    lo, hi, _ = FLOAT_FIELDS["dram_bytes_per_cycle"]
    for key, (mode, _) in PORT_FIELDS.items():
        others = {k: 1.0 for k, (md, _) in PORT_FIELDS.items() if md == mode and k != key}
        for value in (0.0, lo / 2, hi * 2, -1.0, math.nan, math.inf):
            yield pytest.param(
                {"dram_ports": mode, key: value, **others},
                rf"^{key}: .* is out of range; allowed \[{lo}, {hi}\] \(bytes per cycle of "
                rf".*; required with dram_ports = '{mode}'\)$", id=f"{key}={value}")
        other = "shared" if mode != "shared" else "read_write"
        yield pytest.param(
            {key: 2.0}, rf"^{key}: 2.0 is set, but dram_ports is '{other}'; it applies with "
                        rf"dram_ports = '{mode}' only", id=f"{key}-unused")
        yield pytest.param({"dram_ports": mode, key: True, **others},
                           rf"^{key}: expected a number \(bytes per cycle of .*\), got bool",
                           id=f"{key}-bool")
    yield pytest.param({"dram_ports": "split"},
                       r"^dram_ports: 'split' is not one of shared, read_write, per_stream$",
                       id="mode")


@pytest.mark.parametrize(("kwargs", "match"), list(_bad_port_cases()))
def test_dram_port_fields_are_validated(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AcceleratorConfig(**kwargs)


def test_the_three_interface_example_of_the_docs_loads(tmp_path):
    """docs/config.md's SCALE-Sim-style example: one port per operand stream."""
    path = tmp_path / "three.toml"
    path.write_text('preset = "edge-16"\ndram_ports = "per_stream"\n'
                    "dram_ifmap_bytes_per_cycle = 8.0\ndram_filter_bytes_per_cycle = 4.0\n"
                    "dram_ofmap_bytes_per_cycle = 2.0\n")
    cfg = load_config(path)
    assert cfg.name == ("edge-16+dram_ports=per_stream,dram_ifmap_bytes_per_cycle=8.0,"
                        "dram_filter_bytes_per_cycle=4.0,dram_ofmap_bytes_per_cycle=2.0")
    assert cfg.replace(name="x") == AcceleratorConfig(name="x", **PER_STREAM)
    cfg.save(tmp_path / "again.toml")
    assert load_config(tmp_path / "again.toml") == cfg


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"mac_fp32": 1.0}, r"^energy_overrides: unknown event 'mac_fp32'; allowed events are"),
        ({"mac_int8": -1.0}, r"^energy_overrides.mac_int8: -1.0 is out of range; allowed \[0.0, "),
        ({"mac_int8": 2e6}, r"^energy_overrides.mac_int8: .* out of range"),
        ({"mac_int8": math.nan}, r"^energy_overrides.mac_int8: expected a number of pJ"),
        ({"mac_int8": True}, r"^energy_overrides.mac_int8: expected a number of pJ"),
        ({"mac_int8": "1"}, r"^energy_overrides.mac_int8: expected a number of pJ"),
        ("mac_int8", r"^energy_overrides: expected a table of event = pJ"),
        (3, r"^energy_overrides: expected a table of event = pJ"),
    ],
)
def test_energy_overrides_are_validated(overrides, match):
    with pytest.raises(ConfigError, match=match):
        AcceleratorConfig(energy_overrides=overrides)


def test_energy_overrides_are_stored_sorted_and_hashable():
    cfg = AcceleratorConfig(energy_overrides={"dram_byte": 100, "add_int32": 0.1})
    assert cfg.energy_overrides == (("add_int32", 0.1), ("dram_byte", 100.0))
    assert hash(cfg) == hash(AcceleratorConfig(energy_overrides=[("add_int32", 0.1),
                                                                 ("dram_byte", 100)]))


# ---- validation: cross-field checks -------------------------------------------------------
def test_ofmap_buffer_must_hold_one_row_of_partial_sums():
    need = 256 * 4  # 256 columns of 32-bit partial sums
    AcceleratorConfig(cols=256, ofmap_sram_bytes=need, weight_sram_bytes=hi_buffer())
    with pytest.raises(ConfigError, match=rf"^ofmap_sram_bytes: {need - 1} is too small for a "
                                          rf"256-column array; allowed \[{need}, "):
        AcceleratorConfig(cols=256, ofmap_sram_bytes=need - 1, weight_sram_bytes=hi_buffer())
    # A narrower accumulator needs fewer bytes per column.
    AcceleratorConfig(cols=256, acc_bits=16, ofmap_sram_bytes=512, weight_sram_bytes=hi_buffer())


def test_weight_buffer_must_hold_one_tile():
    need = 64 * 64
    AcceleratorConfig(rows=64, cols=64, weight_sram_bytes=need)
    with pytest.raises(ConfigError, match=rf"^weight_sram_bytes: {need - 1} cannot hold one "
                                          rf"64x64 weight tile; allowed \[{need}, "):
        AcceleratorConfig(rows=64, cols=64, weight_sram_bytes=need - 1)


# ---- from_dict / load_config ----------------------------------------------------------------
def test_unknown_keys_are_rejected_with_the_allowed_list():
    with pytest.raises(ConfigError, match=r"^cfg: unknown key\(s\) colums, rowz; allowed keys are "
                                          r"preset, acc_bits, "):
        AcceleratorConfig.from_dict({"rowz": 4, "colums": 4}, source="cfg")


def test_from_dict_prefixes_the_source():
    with pytest.raises(ConfigError, match=r"^my.toml: rows: 0 is out of range; allowed \[1, 256\]"):
        AcceleratorConfig.from_dict({"rows": 0}, source="my.toml")
    with pytest.raises(ConfigError, match=r"^config: expected a table of settings, got list"):
        AcceleratorConfig.from_dict([("rows", 4)])
    with pytest.raises(ConfigError, match=r"^config: preset: 'edge-7' is not one of edge-8"):
        AcceleratorConfig.from_dict({"preset": "edge-7"})
    with pytest.raises(ConfigError, match=r"^config: preset: \['edge-8'\] is not one of"):
        AcceleratorConfig.from_dict({"preset": ["edge-8"]})


def test_load_config_rejects_what_is_neither_preset_nor_file(tmp_path):
    with pytest.raises(ConfigError, match=r"is neither a preset .* nor a file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is neither a preset"):
        load_config("edge-64")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rows = = 3\n", r"c\.toml: not valid TOML"),
        ("rows = 8\nsram = 3\n", r"c\.toml: unknown key\(s\) sram"),
        ('rows = "8"\n', r"c\.toml: rows: expected an integer"),
        ("cols = true\n", r"c\.toml: cols: expected an integer .* got bool"),
    ],
    ids=["syntax", "unknown-key", "string-for-int", "bool-for-int"],
)
def test_load_config_file_errors_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


# ---- immutability, replace, sim_params ------------------------------------------------------
def test_config_is_frozen_and_replace_validates():
    cfg = PRESETS["edge-16"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rows = 8
    assert cfg.replace(rows=8).rows == 8 and cfg.rows == 16
    with pytest.raises(ConfigError, match=r"^rows: 0 is out of range"):
        cfg.replace(rows=0)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("dataflow", sorted(DATAFLOWS))
def test_sim_params_is_a_plain_numba_friendly_view(name, dataflow):
    cfg = PRESETS[name].replace(dataflow=dataflow, double_buffer=False)
    p = cfg.sim_params()
    assert isinstance(p, SimParams) and isinstance(p, tuple)
    assert p.dataflow == DATAFLOWS[dataflow]
    assert p.double_buffer == 0
    for field in SimParams._fields:
        value = getattr(p, field)
        assert type(value) in (int, float), (field, type(value))
        if hasattr(cfg, field) and field not in ("dataflow", "double_buffer"):
            assert value == getattr(cfg, field)
    assert type(p.clock_mhz) is float and type(p.dram_bytes_per_cycle) is float
    assert PRESETS[name].sim_params().double_buffer == int(PRESETS[name].double_buffer)


# ---- defaults, names of modified presets, load_config types ------------------------------------
def test_defaults_are_the_default_preset_under_the_name_custom():
    cfg = AcceleratorConfig()
    assert cfg.name == "custom"
    assert cfg.replace(name=DEFAULT_PRESET) == PRESETS[DEFAULT_PRESET]


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ("rows = 32\n", "edge-8+rows=32"),
        ('rows = 8\ndataflow = "os"\ndouble_buffer = false\n',
         "edge-8+dataflow=os,double_buffer=false"),
        ("dram_bytes_per_cycle = 4\nclock_mhz = 200\n", "edge-8+dram_bytes_per_cycle=4.0"),
        ("\n[energy_overrides]\ndram_byte = 40\n", "edge-8+energy_overrides.dram_byte=40.0"),
        ("", "edge-8"),
        ('name = "mine"\nrows = 32\n', "mine"),
        ('name = "edge-8"\nrows = 32\n', "edge-8"),  # an explicit name is the user's choice
    ],
)
def test_a_modified_preset_is_not_reported_under_the_preset_name(tmp_path, extra, name):
    path = tmp_path / "c.toml"
    path.write_text('preset = "edge-8"\n' + extra)
    cfg = load_config(path)
    assert cfg.name == name
    assert cfg.replace(name="edge-8") == PRESETS["edge-8"].replace(
        **{k: v for k, v in tomllib.loads(extra).items() if k != "name"})
    # The derived name round-trips like any other.
    assert AcceleratorConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_a_preset_energy_override_removed_by_a_file_shows_in_the_name(monkeypatch):
    base = PRESETS["edge-8"].replace(name="edge-x", energy_overrides={"mac_int8": 0.5})
    monkeypatch.setitem(PRESETS, "edge-x", base)
    cfg = AcceleratorConfig.from_dict({"preset": "edge-x", "energy_overrides": {"dram_byte": 9}})
    assert cfg.name == ("edge-x+energy_overrides.dram_byte=9.0,"
                        "energy_overrides.mac_int8=table")


@pytest.mark.parametrize("spec", [5, 2.5, b"edge-8", ["edge-8"]])
def test_load_config_rejects_other_types_with_a_clear_message(spec):
    with pytest.raises(TypeError, match=r"^spec must be a preset name \(edge-8, edge-16, "
                                        r"edge-32\), a TOML file path or None, got "):
        load_config(spec)


# ---- integers of hundreds or thousands of digits, oversized files --------------------------
ROWS_RANGE = r"allowed \[1, 256\] \(PE rows of the systolic array\)$"
CLOCK_RANGE = r"allowed \[1\.0, 5000\.0\] \(clock frequency, MHz\)$"
PJ_RANGE = r"allowed \[0\.0, 1000000\.0\] pJ$"


@pytest.mark.parametrize(("text", "match"), [
    # Hundreds of digits: TOML reads them; the range check names them by their size.
    ("rows = " + "9" * 400, rf"^c\.toml: rows: an integer of 400 digits is out of range; "
                            rf"{ROWS_RANGE}"),
    ("clock_mhz = " + "9" * 400, rf"^c\.toml: clock_mhz: an integer of 400 digits is out of "
                                 rf"range; {CLOCK_RANGE}"),
    ("[energy_overrides]\ndram_byte = " + "9" * 400,
     rf"^c\.toml: energy_overrides\.dram_byte: an integer of 400 digits is out of range; "
     rf"{PJ_RANGE}"),
    # Thousands: more than Python converts from text; the line is found and the key named.
    ("rows = 4\ncols = " + "1" * 5000, r"^c\.toml: cols: an integer of 5000 digits is out of "
                                       r"range; allowed \[1, 256\] \(PE columns"),
    ("clock_mhz = -" + "1_000" * 1200, rf"^c\.toml: clock_mhz: an integer of 4800 digits is out "
                                       rf"of range; {CLOCK_RANGE}"),
    ('preset = "edge-8"\n\n[energy_overrides]\n  mac_int8 = ' + "7" * 4400,
     rf"^c\.toml: energy_overrides\.mac_int8: an integer of 4400 digits is out of range; "
     rf"{PJ_RANGE}"),
    ("rowz = " + "1" * 5000, r"^c\.toml: rowz: an integer of 5000 digits is out of range$"),
    ("rows = [1, " + "1" * 5000 + "]",
     r"^c\.toml: not valid TOML: an integer of more than 4300 digits$"),
])
def test_integers_of_many_digits_name_the_file_and_key(tmp_path, monkeypatch, text, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=match):
        load_config("c.toml")


def test_integers_of_many_digits_in_code_are_shown_by_size():
    with pytest.raises(ConfigError, match=rf"^clock_mhz: an integer of 401 digits .*{CLOCK_RANGE}"):
        AcceleratorConfig(clock_mhz=10**400)
    with pytest.raises(ConfigError, match=rf"^rows: an integer of 5001 digits .*{ROWS_RANGE}"):
        AcceleratorConfig(rows=-(10**5000))
    with pytest.raises(ConfigError, match=r"^energy_overrides\.dram_byte: an integer of 41 "):
        AcceleratorConfig(energy_overrides={"dram_byte": 10**40})
    # Long values are cut in messages.
    with pytest.raises(ConfigError, match=r"^dataflow: 'wwwwwwwwwww.*\.\.\. is not one of"):
        AcceleratorConfig(dataflow="w" * 10_000)


def test_config_file_size_is_bounded(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('preset = "edge-8"\n' + "# padding\n" * 20)
    assert load_config(path) == PRESETS["edge-8"]
    monkeypatch.setattr(config_file, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(ConfigError, match=r"c\.toml: the file exceeds the limit of 100 bytes$"):
        load_config(path)
