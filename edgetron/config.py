"""AcceleratorConfig: the one hardware description shared by RTL, simulator and cost model.

A config is frozen and validated on construction: every field has a type and an
allowed range, and a bad value raises :class:`ConfigError` (a ``ValueError``)
whose message names the field and the range. Configs come from named presets
(``edge-8``, ``edge-16``, ``edge-32``), from TOML files, or from code.

The simulator never sees the dataclass: :meth:`AcceleratorConfig.sim_params`
returns a :class:`SimParams` NamedTuple of plain ints and floats that Numba
functions take as an argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from edgetron.errors import SHOWN_CHARS, ConfigError, brief, show_value
from edgetron.golden.layernorm import CHANNELS_MAX

__all__ = [
    "DATAFLOWS",
    "DEFAULT_PRESET",
    "DRAM_PORTS",
    "ENERGY_EVENTS",
    "ENERGY_TABLES",
    "PRESETS",
    "AcceleratorConfig",
    "ConfigError",
    "SimParams",
]

KiB = 1024
MiB = 1024 * KiB

#: Dataflows and the integer code the simulator uses for each.
DATAFLOWS = {"ws": 0, "os": 1, "is": 2}

#: How the DRAM interfaces are organised, and the integer code the simulator uses for each:
#: one port shared by every transfer; a read port and a write port; one port per operand
#: stream (ifmap: activations in, filter: weights and per-channel parameters in, ofmap:
#: results out), as SCALE-Sim's three interfaces.
DRAM_PORTS = {"shared": 0, "read_write": 1, "per_stream": 2}

#: Named energy tables (values live in ``edgetron.sim.energy``).
ENERGY_TABLES = ("horowitz45",)

#: Events that carry an energy cost (pJ per event; per byte for memories).
ENERGY_EVENTS = (
    "mac_int8",        # one int8 x int8 multiply with int32 accumulate
    "add_int32",       # one int32 addition (partial-sum accumulation, residual add)
    "mul_int32",       # one int32 multiplication (requantization, vector units)
    "reg_byte",        # one byte moved through a pipeline register (PE to PE)
    "sram_read_byte",  # one byte read from an on-chip SRAM buffer
    "sram_write_byte", # one byte written to an on-chip SRAM buffer
    "dram_byte",       # one byte transferred to or from DRAM
)


class SimParams(NamedTuple):
    """Numba-friendly view of an :class:`AcceleratorConfig` (plain ints and floats).

    Sizes are in bytes, bandwidth in bytes per cycle, clock in MHz. ``dram_mode`` is the
    :data:`DRAM_PORTS` code of ``dram_ports``; the bandwidths of the ports the mode does
    not use are 0.
    """

    rows: int
    cols: int
    dataflow: int
    input_bits: int
    weight_bits: int
    acc_bits: int
    ifmap_sram_bytes: int
    weight_sram_bytes: int
    ofmap_sram_bytes: int
    dram_bytes_per_cycle: float
    clock_mhz: float
    vector_lanes: int
    double_buffer: int
    dram_mode: int
    dram_read_bytes_per_cycle: float
    dram_write_bytes_per_cycle: float
    dram_ifmap_bytes_per_cycle: float
    dram_filter_bytes_per_cycle: float
    dram_ofmap_bytes_per_cycle: float


# field -> (lo, hi, meaning): the allowed ranges __post_init__ enforces and names in its messages
# (docs/config.md lists the same ranges; tests/test_config.py iterates over these tables).
_INT_FIELDS = {
    "rows": (1, 256, "PE rows of the systolic array"),
    "cols": (1, 256, "PE columns of the systolic array"),
    "input_bits": (2, 8, "activation width in bits"),
    "weight_bits": (2, 8, "weight width in bits"),
    "acc_bits": (16, 32, "accumulator width in bits"),
    "ifmap_sram_bytes": (256, 64 * MiB, "input-activation buffer, bytes"),
    "weight_sram_bytes": (256, 64 * MiB, "weight buffer, bytes"),
    "ofmap_sram_bytes": (256, 64 * MiB, "output/accumulator buffer, bytes"),
    "vector_lanes": (1, 256, "elements per cycle of the non-linear units"),
    "vector_row_max": (2, CHANNELS_MAX, "longest softmax / LayerNorm row of the vector units"),
}
_FLOAT_FIELDS = {
    "dram_bytes_per_cycle": (1e-3, 4096.0, "DRAM bandwidth, bytes per cycle"),
    "clock_mhz": (1.0, 5000.0, "clock frequency, MHz"),
}
_ENERGY_OVERRIDE_RANGE = (0.0, 1e6)
#: Bandwidth field of each DRAM port -> the dram_ports mode that uses it and what it carries.
#: A field is 0.0 (unset) unless its mode is chosen, and then in the range of
#: ``dram_bytes_per_cycle``.
_DRAM_PORT_FIELDS = {
    "dram_read_bytes_per_cycle": ("read_write", "every DRAM read: ifmap, weights, parameters"),
    "dram_write_bytes_per_cycle": ("read_write", "every DRAM write: results"),
    "dram_ifmap_bytes_per_cycle": ("per_stream", "the ifmap port: activations in"),
    "dram_filter_bytes_per_cycle": ("per_stream",
                                    "the filter port: weights and per-channel parameters in"),
    "dram_ofmap_bytes_per_cycle": ("per_stream", "the ofmap port: results out"),
}


@dataclasses.dataclass(frozen=True)
class AcceleratorConfig:
    """One accelerator instance.

    Every field defaults to its value in the default preset ``edge-16``
    (:data:`DEFAULT_PRESET`), except ``name``, which defaults to ``"custom"``:
    ``AcceleratorConfig()`` is edge-16's hardware under another label, and
    ``AcceleratorConfig(rows=32)`` is not mislabelled as a preset.

    Parameters
    ----------
    name : str
        Label used in reports (a preset name, or anything for custom configs;
        a TOML file that modifies a preset without naming itself gets
        ``"<preset>+<key>=<value>,..."``, see :meth:`from_dict`).
    rows, cols : int
        Systolic array size, 1..256 each. In the weight-stationary dataflow
        ``rows`` spans the reduction dimension K and ``cols`` the output
        channels N.
    dataflow : {"ws", "os", "is"}
        Weight-, output- or input-stationary.
    input_bits, weight_bits : int
        Operand widths, 2..8 bits (the golden kernels are int8).
    acc_bits : int
        Accumulator width, 16..32 bits.
    ifmap_sram_bytes, weight_sram_bytes, ofmap_sram_bytes : int
        On-chip buffer capacities in bytes, 256 B .. 64 MiB each. The ofmap
        buffer holds int32 partial sums.
    dram_bytes_per_cycle : float
        Off-chip bandwidth in bytes per accelerator clock cycle of the one shared port
        (``dram_ports = "shared"``; unused by the other modes).
    dram_ports : {"shared", "read_write", "per_stream"}
        How the DRAM interfaces are organised (:data:`DRAM_PORTS`): one port for every
        transfer; separate read and write ports; or one port per operand stream (ifmap,
        filter, ofmap), as SCALE-Sim's interfaces.
    dram_read_bytes_per_cycle, dram_write_bytes_per_cycle : float
        Bandwidths of the read and the write port (``read_write``; else 0.0, unset).
    dram_ifmap_bytes_per_cycle, dram_filter_bytes_per_cycle, dram_ofmap_bytes_per_cycle : float
        Bandwidths of the ifmap (activations in), filter (weights and per-channel
        parameters in) and ofmap (results out) ports (``per_stream``; else 0.0, unset).
    clock_mhz : float
        Clock frequency in MHz.
    vector_lanes : int
        Elements per cycle of the softmax / GELU / LayerNorm / add units.
    vector_row_max : int
        Longest row, in elements, of the softmax and LayerNorm units, 2..4096 (golden's
        LayerNorm channel limit): it sizes their row buffers in RTL, and the simulator
        refuses a softmax or LayerNorm op with longer rows. The default, 768, covers every
        preset model (197-token attention rows, DeiT-base's 768 channels).
    double_buffer : bool
        Whether the buffers are split in halves so that the next tile loads
        while the current one computes.
    energy_table : str
        Name of the per-event energy table (see ``ENERGY_TABLES``).
    energy_overrides : tuple of (str, float)
        Per-event energies (pJ) that replace the table's values; the event
        names are those of ``ENERGY_EVENTS``. A mapping is accepted and
        stored as a sorted tuple so the config stays hashable.
    """

    name: str = "custom"
    rows: int = 16
    cols: int = 16
    dataflow: str = "ws"
    input_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    ifmap_sram_bytes: int = 128 * KiB
    weight_sram_bytes: int = 128 * KiB
    ofmap_sram_bytes: int = 128 * KiB
    dram_bytes_per_cycle: float = 16.0
    dram_ports: str = "shared"
    dram_read_bytes_per_cycle: float = 0.0
    dram_write_bytes_per_cycle: float = 0.0
    dram_ifmap_bytes_per_cycle: float = 0.0
    dram_filter_bytes_per_cycle: float = 0.0
    dram_ofmap_bytes_per_cycle: float = 0.0
    clock_mhz: float = 400.0
    vector_lanes: int = 16
    vector_row_max: int = 768
    double_buffer: bool = True
    energy_table: str = "horowitz45"
    energy_overrides: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not self.name.isprintable():
            raise ConfigError(
                f"name: expected a non-empty printable string, got {show_value(self.name)}"
            )
        for key, (lo, hi, what) in _INT_FIELDS.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(
                    f"{key}: expected an integer ({what}) in [{lo}, {hi}], got {show_value(v)}"
                )
            if not lo <= v <= hi:
                raise ConfigError(_out_of_range(key, brief(v)))
        for key, (lo, hi, what) in _FLOAT_FIELDS.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(
                    f"{key}: expected a number ({what}) in [{lo}, {hi}], got {show_value(v)}"
                )
            # Compared before any conversion: an int of hundreds of digits has no float,
            # and NaN fails every comparison.
            if not lo <= v <= hi:
                raise ConfigError(_out_of_range(key, brief(v)))
            object.__setattr__(self, key, float(v))
        if not isinstance(self.dataflow, str) or self.dataflow not in DATAFLOWS:
            raise ConfigError(
                f"dataflow: {brief(self.dataflow)} is not one of {', '.join(DATAFLOWS)}"
            )
        self._check_dram_ports()
        if not isinstance(self.double_buffer, bool):
            raise ConfigError(
                f"double_buffer: expected true or false, got {show_value(self.double_buffer)}"
            )
        if not isinstance(self.energy_table, str) or self.energy_table not in ENERGY_TABLES:
            raise ConfigError(
                f"energy_table: {brief(self.energy_table)} is not one of "
                f"{', '.join(ENERGY_TABLES)}"
            )
        object.__setattr__(self, "energy_overrides", _check_overrides(self.energy_overrides))
        self._check_cross_field()

    def _check_dram_ports(self) -> None:
        if not isinstance(self.dram_ports, str) or self.dram_ports not in DRAM_PORTS:
            raise ConfigError(
                f"dram_ports: {brief(self.dram_ports)} is not one of {', '.join(DRAM_PORTS)}"
            )
        lo, hi, _ = _FLOAT_FIELDS["dram_bytes_per_cycle"]
        for key, (mode, what) in _DRAM_PORT_FIELDS.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(
                    f"{key}: expected a number (bytes per cycle of {what}), got {show_value(v)}"
                )
            if mode == self.dram_ports:
                if not lo <= v <= hi:
                    raise ConfigError(
                        f"{key}: {brief(v)} is out of range; allowed [{lo}, {hi}] (bytes per "
                        f"cycle of {what}; required with dram_ports = {mode!r})"
                    )
            elif v != 0:
                raise ConfigError(
                    f"{key}: {brief(v)} is set, but dram_ports is {self.dram_ports!r}; it "
                    f"applies with dram_ports = {mode!r} only (set dram_ports, or leave "
                    f"{key} at 0.0)"
                )
            object.__setattr__(self, key, float(v))

    def _check_cross_field(self) -> None:
        # The ofmap buffer must hold at least one row of int32 partial sums per column and
        # the weight buffer one array-sized weight tile. (One ifmap operand vector, at most
        # 256 bytes, always fits the 256-byte minimum of ifmap_sram_bytes.)
        acc_bytes = (self.acc_bits + 7) // 8
        need = self.cols * acc_bytes
        if self.ofmap_sram_bytes < need:
            raise ConfigError(
                f"ofmap_sram_bytes: {self.ofmap_sram_bytes} is too small for a "
                f"{self.cols}-column array; allowed [{need}, {64 * MiB}]"
            )
        need_w = self.rows * self.cols * ((self.weight_bits + 7) // 8)
        if self.weight_sram_bytes < need_w:
            raise ConfigError(
                f"weight_sram_bytes: {self.weight_sram_bytes} cannot hold one "
                f"{self.rows}x{self.cols} weight tile; allowed [{need_w}, {64 * MiB}]"
            )

    # ---- derived values -------------------------------------------------------------
    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs per cycle with every PE busy."""
        return self.rows * self.cols

    @property
    def energy_override_dict(self) -> dict[str, float]:
        """``energy_overrides`` as a dict."""
        return dict(self.energy_overrides)

    def sim_params(self) -> SimParams:
        """The Numba-friendly form of this config.

        Returns
        -------
        SimParams
            Plain ints and floats; ``dataflow`` as its code in :data:`DATAFLOWS`,
            ``double_buffer`` as 0 or 1 and ``dram_ports`` as its code in
            :data:`DRAM_PORTS` (``dram_mode``).
        """
        return SimParams(
            rows=self.rows,
            cols=self.cols,
            dataflow=DATAFLOWS[self.dataflow],
            input_bits=self.input_bits,
            weight_bits=self.weight_bits,
            acc_bits=self.acc_bits,
            ifmap_sram_bytes=self.ifmap_sram_bytes,
            weight_sram_bytes=self.weight_sram_bytes,
            ofmap_sram_bytes=self.ofmap_sram_bytes,
            dram_bytes_per_cycle=self.dram_bytes_per_cycle,
            clock_mhz=self.clock_mhz,
            vector_lanes=self.vector_lanes,
            double_buffer=int(self.double_buffer),
            dram_mode=DRAM_PORTS[self.dram_ports],
            dram_read_bytes_per_cycle=self.dram_read_bytes_per_cycle,
            dram_write_bytes_per_cycle=self.dram_write_bytes_per_cycle,
            dram_ifmap_bytes_per_cycle=self.dram_ifmap_bytes_per_cycle,
            dram_filter_bytes_per_cycle=self.dram_filter_bytes_per_cycle,
            dram_ofmap_bytes_per_cycle=self.dram_ofmap_bytes_per_cycle,
        )

    def replace(self, **changes: Any) -> AcceleratorConfig:
        """A validated copy with some fields changed.

        The ``name`` is kept unless it is among the changes.

        Parameters
        ----------
        **changes
            Field names and their new values.

        Returns
        -------
        AcceleratorConfig

        Raises
        ------
        ConfigError
            A new value out of range or of the wrong type (named).
        TypeError
            An unknown field name.
        """
        return dataclasses.replace(self, **changes)

    # ---- (de)serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (energy overrides as a dict).

        Returns
        -------
        dict
            Field name to value, in field order.
        """
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["energy_overrides"] = dict(self.energy_overrides)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> AcceleratorConfig:
        """Build from a mapping (e.g. parsed TOML); unknown keys are rejected.

        A ``preset`` key, if present, names the preset whose values the other
        keys override. Without a ``name`` key the result is named after the
        preset, followed, when some field differs from the preset, by ``+`` and
        the changed fields as ``key=value`` separated by commas (field order;
        energy overrides as ``energy_overrides.<event>=<pJ>``, or ``=table``
        for a preset's override the file drops), e.g. ``edge-8+rows=32``, so
        that a modified preset is never reported under the preset's own name.

        Parameters
        ----------
        data : mapping
            Field names (and optionally ``preset``) to values.
        source : str
            Where ``data`` came from (a file name), prefixed to every message.

        Returns
        -------
        AcceleratorConfig

        Raises
        ------
        ConfigError
            ``data`` not a mapping, an unknown preset or key, or a bad value
            (the message names the source and the key).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a table of settings, got {type(data).__name__}")
        data = dict(data)
        base: dict[str, Any] = {}
        preset = None
        if "preset" in data:
            preset = data.pop("preset")
            if not isinstance(preset, str) or preset not in PRESETS:
                raise ConfigError(
                    f"{source}: preset: {brief(preset)} is not one of {', '.join(PRESETS)}"
                )
            base = PRESETS[preset].to_dict()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(brief(k) if not isinstance(k, str) or len(k) > SHOWN_CHARS else k
                         for k in set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; "
                f"allowed keys are preset, {', '.join(sorted(known))}"
            )
        base.update(data)
        try:
            cfg = cls(**base)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        if preset is not None and "name" not in data:
            changed = _changed_fields(PRESETS[preset], cfg)
            if changed:
                cfg = cfg.replace(name=f"{preset}+{','.join(changed)}")
        return cfg

    def to_toml(self) -> str:
        """TOML text that :func:`load_config` reads back to an equal config.

        Returns
        -------
        str
            Every field (``name`` included), energy overrides as a table.
        """
        lines = ["# edgetron accelerator configuration"]
        for key, value in self.to_dict().items():
            if key == "energy_overrides":
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        if self.energy_overrides:
            lines += ["", "[energy_overrides]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in self.energy_overrides]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write this config as TOML (:meth:`to_toml`).

        Parameters
        ----------
        path : str or os.PathLike
            File to write (replaced if it exists).
        """
        Path(path).write_text(self.to_toml(), encoding="utf-8")


def _changed_fields(base: AcceleratorConfig, cfg: AcceleratorConfig) -> list[str]:
    """``key=value`` for every field except ``name`` in which ``cfg`` differs from ``base``."""
    out = []
    for f in dataclasses.fields(cfg):
        if f.name in ("name", "energy_overrides"):
            continue
        value = getattr(cfg, f.name)
        if value != getattr(base, f.name):
            out.append(f"{f.name}={value if isinstance(value, str) else _toml_value(value)}")
    old, new = base.energy_override_dict, cfg.energy_override_dict
    for event in sorted(old.keys() | new.keys()):
        if old.get(event) != new.get(event):
            out.append(f"energy_overrides.{event}={new[event]!r}" if event in new
                       else f"energy_overrides.{event}=table")
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _check_overrides(value: Any) -> tuple[tuple[str, float], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = [(k, v) for k, v in items]
    except (TypeError, ValueError):
        raise ConfigError(
            f"energy_overrides: expected a table of event = pJ, got {show_value(value)}"
        ) from None
    lo, hi = _ENERGY_OVERRIDE_RANGE
    out = {}
    for k, v in pairs:
        if k not in ENERGY_EVENTS:
            raise ConfigError(
                f"energy_overrides: unknown event {brief(k)}; allowed events are "
                f"{', '.join(ENERGY_EVENTS)}"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:  # NaN
            raise ConfigError(f"energy_overrides.{k}: expected a number of pJ, got {show_value(v)}")
        if not lo <= v <= hi:  # before float(): an int of hundreds of digits has no float
            raise ConfigError(_out_of_range(f"energy_overrides.{k}", brief(v)))
        out[k] = float(v)
    return tuple(sorted(out.items()))


def _out_of_range(key: str, shown: str) -> str:
    """``<key>: <value> is out of range; allowed [lo, hi] (<meaning>)`` for a setting."""
    if key in _INT_FIELDS or key in _FLOAT_FIELDS:
        lo, hi, what = {**_INT_FIELDS, **_FLOAT_FIELDS}[key]
        return f"{key}: {shown} is out of range; allowed [{lo}, {hi}] ({what})"
    if key.startswith("energy_overrides."):
        lo, hi = _ENERGY_OVERRIDE_RANGE
        return f"{key}: {shown} is out of range; allowed [{lo}, {hi}] pJ"
    return f"{key}: {shown} is out of range"


def _preset(
    name: str, n: int, sram_kib: int, acc_kib: int, bw: float, mhz: float
) -> AcceleratorConfig:
    return AcceleratorConfig(
        name=name,
        rows=n,
        cols=n,
        dataflow="ws",
        ifmap_sram_bytes=sram_kib * KiB,
        weight_sram_bytes=sram_kib * KiB,
        ofmap_sram_bytes=acc_kib * KiB,
        dram_bytes_per_cycle=bw,
        clock_mhz=mhz,
        vector_lanes=n,
    )


#: Named presets; docs/config.md justifies every size.
PRESETS: dict[str, AcceleratorConfig] = {
    "edge-8": _preset("edge-8", 8, 32, 32, 8.0, 200.0),
    "edge-16": _preset("edge-16", 16, 128, 128, 16.0, 400.0),
    "edge-32": _preset("edge-32", 32, 512, 256, 32.0, 500.0),
}
DEFAULT_PRESET = "edge-16"
