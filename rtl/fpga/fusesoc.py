"""A FuseSoC core (CAPI2) for an exported unit, written beside its Verilog.

The core ``edgetron:rtl:<unit>:<version>`` has four filesets (the Verilog, the same
netlist as RTLIL, the Verilator lint waivers, the JSON manifest as a user file) and two
targets:

- ``default``: the Verilog, for a parent core to depend on;
- ``lint``: Edalize's ``lint`` flow with Verilator, ``verilator --lint-only -Wall`` with
  the waivers (``fusesoc --cores-root DIR run --target lint edgetron:rtl:<unit>``).

The RTLIL fileset (``<top>.il``, file type ``user``: no Edalize tool reads RTLIL) is an
alternative source for Yosys-based flows, read with ``read_rtlil`` in about a second where
Yosys's Verilog reader takes minutes over the Verilog's memory initialisers; no target
uses it.

The exported module has no HDL parameters: Amaranth fixes the array size and the
widths at elaboration. The core declares the elaboration parameters as ``vlogdefine``
parameters (``EDGETRON_<UNIT>_<NAME>``, default the elaborated value) that every target
passes, so a parent design or testbench reads the configuration the Verilog was built
for; to change it, export again (``edgetron rtl export --config ...``).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..lint import WAIVERS

__all__ = ["core_name", "core_text", "write_core"]

#: Lint waiver file that ``write_units`` copies beside the Verilog (each unit's generated
#: waivers, ``<top>.vlt``, are written beside it too; edgetron.rtl.lint).
_WAIVERS = WAIVERS.name


def _version() -> str:
    try:
        version = importlib.metadata.version("edgetron")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    # A VLNV version is dotted numbers; drop local or development suffixes.
    match = re.match(r"\d+(\.\d+)*", version)
    return match.group(0) if match else "0.0.0"


def core_name(unit: str) -> str:
    """The core's VLNV: ``edgetron:rtl:<unit>:<edgetron version>``."""
    return f"edgetron:rtl:{unit}:{_version()}"


def _define(unit: str, name: str) -> str:
    return f"EDGETRON_{unit}_{name}".upper()


def _scalar(value: Any) -> str:
    # JSON scalars are YAML scalars (strings double-quoted with JSON escapes).
    return json.dumps(value)


def core_text(manifest: Mapping[str, Any]) -> str:
    """CAPI2 text of the core for one unit's export manifest (``<top>.json``).

    Raises
    ------
    ValueError
        An elaboration parameter that is not an integer, boolean or string.
    """
    unit, top = manifest["unit"], manifest["top"]
    cfg_name = manifest.get("config", {}).get("name", "?")
    params = manifest.get("parameters", {})
    lines = [
        "CAPI=2:",
        f"# Written by `edgetron fpga --fusesoc-core` for the {unit} unit, config {cfg_name}.",
        f"name: {core_name(unit)}",
        "description: " + _scalar(f"edgetron {unit} unit ({top}), config {cfg_name}, "
                                  f"bit-exact with {manifest.get('golden', '?')}"),
        "",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {manifest.get('verilog', top + '.v')}",
        "    file_type: verilogSource",
        "  # The same netlist as RTLIL, for Yosys-based flows (read_rtlil): Yosys reads it in",
        "  # about a second, its Verilog reader takes minutes over the buffers' zero",
        "  # initialisers. No target uses it; a parent core may instead of rtl.",
        "  rtlil:",
        "    files:",
        f"      - {manifest.get('rtlil', top + '.il')}",
        "    file_type: user",
        "  waivers:",
        "    files:",
        f"      - {_WAIVERS}",
        f"      - {top}.vlt",
        "    file_type: vlt",
        "  manifest:",
        "    files:",
        f"      - {top}.json",
        "    file_type: user",
        "",
    ]
    names = []
    if params:
        lines.append("parameters:")
        for name, value in params.items():
            if isinstance(value, bool):
                datatype = "bool"
            elif isinstance(value, int):
                datatype = "int"
            elif isinstance(value, str):
                datatype = "str"
            else:
                raise ValueError(f"fusesoc core: parameter {name} = {value!r} is not an "
                                 f"integer, boolean or string")
            define = _define(unit, name)
            names.append(define)
            lines += [
                f"  {define}:",
                f"    datatype: {datatype}",
                f"    default: {_scalar(value)}",
                "    description: " + _scalar(f"{name} the Verilog was elaborated with "
                                              f"(export again to change it)"),
                "    paramtype: vlogdefine",
            ]
        lines.append("")
    param_list = f"[{', '.join(names)}]"
    lines += [
        "targets:",
        "  default:",
        "    filesets: [rtl, manifest]",
        f"    parameters: {param_list}",
        f"    toplevel: {top}",
        "  lint:",
        "    flow: lint",
        "    flow_options:",
        "      tool: verilator",
        "      verilator_options: [-Wall]",
        "    filesets: [rtl, waivers]",
        f"    parameters: {param_list}",
        f"    toplevel: {top}",
        "",
    ]
    return "\n".join(lines)


def write_core(manifest: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``<top>.core`` into ``out_dir`` (beside ``<top>.v``, ``<top>.json`` and the
    waiver file that :func:`edgetron.rtl.export.write_units` writes); returns its path."""
    path = Path(out_dir) / f"{manifest['top']}.core"
    path.write_text(core_text(manifest), encoding="utf-8")
    return path
