"""The cache of FPGA flow results behind ``edgetron compare --clock fpga:TARGET``.

Synthesis, place and route of a unit take minutes (docs/fpga.md), so each result of
:func:`edgetron.rtl.fpga.run_unit` that a report's clock comes from is kept as one JSON
file (never pickle) in the user's cache folder (:func:`cache_dir`):
``$EDGETRON_CACHE_DIR/fpga/``, else ``$XDG_CACHE_HOME/edgetron/fpga/``, else
``~/.cache/edgetron/fpga/``.

An entry is found by the SHA-256 of its key (:func:`entry_key`), everything the result
depends on:

- the unit and its elaboration parameters, the config fields the RTL is built from
  (``Unit.build`` of :data:`edgetron.rtl.export.UNITS`, as in the export manifest), so
  that configs that differ only in the clock, the DRAM or the energy table share one
  entry;
- a SHA-256 of the sources the netlist and the flow come from (``edgetron.rtl``, the
  shared hardware numbers ``edgetron.hw``, ``edgetron.golden`` and
  ``edgetron/config.py``): a changed RTL never answers with an old Fmax;
- the target, the flow options (:data:`FLOW_OPTIONS`, and the target's clock
  constraint), and the versions of Amaranth and of the YoWASP tool packages.

An entry also holds its key, which is compared on reading. A file larger than
:data:`MAX_ENTRY_BYTES`, not JSON, of another format, for another key or with an
implausible result is *corrupt*: it is ignored with a warning, and the result measured
again replaces it. A design that does not fit the device is kept as well (the same
design and tools always repeat the misfit); tool failures and timeouts are not.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgetron.config import AcceleratorConfig

__all__ = [
    "ENV_VAR",
    "FLOW_OPTIONS",
    "FORMAT",
    "MAX_ENTRY_BYTES",
    "Entry",
    "cache_dir",
    "entry_key",
    "entry_path",
    "load",
    "rtl_sources_digest",
    "store",
]

#: Name and version of an entry document (bump the version on incompatible changes).
FORMAT = ("edgetron-fpga-clock", 1)
#: Environment variable naming edgetron's cache folder (the FPGA entries go in ``fpga/``).
ENV_VAR = "EDGETRON_CACHE_DIR"
#: Largest entry read, in bytes (an entry is about 5 KB).
MAX_ENTRY_BYTES = 1024 * 1024
#: The options of :func:`edgetron.rtl.fpga.run_unit` a measured clock uses: the
#: defaults of ``edgetron fpga`` (the clock constraint is the target's default).
FLOW_OPTIONS: dict[str, Any] = {"seed": 1, "router": "auto", "nodsp": False,
                                 "dsp_registers": True, "bram_registers": True}


def cache_dir() -> Path:
    """The folder of the entries (see the module docstring); not created here."""
    root = os.environ.get(ENV_VAR)
    if root:
        return Path(root).expanduser() / "fpga"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgetron" / "fpga"


@functools.cache
def rtl_sources_digest() -> str:
    """SHA-256 (hex) of the names and contents of the sources a unit's netlist and the
    FPGA flow come from (Python, and the flow's Yosys techmap files): ``edgetron.rtl``
    (the flow included), ``edgetron.hw``,
    ``edgetron.golden`` and ``edgetron/config.py``. Once per process."""
    import edgetron.config
    import edgetron.golden
    import edgetron.hw
    import edgetron.rtl

    digest = hashlib.sha256()
    for package in (edgetron.rtl, edgetron.hw, edgetron.golden):
        root = Path(package.__file__).resolve().parent
        for src in sorted([*root.rglob("*.py"), *root.rglob("*.v")]):
            digest.update(f"{package.__name__}/{src.relative_to(root).as_posix()}".encode())
            digest.update(src.read_bytes())
    digest.update(b"edgetron/config.py")
    digest.update(Path(edgetron.config.__file__).read_bytes())
    return digest.hexdigest()


def entry_key(unit: str, cfg: AcceleratorConfig, target) -> dict[str, Any]:
    """Everything a unit's FPGA result on ``target`` depends on (module docstring).

    Parameters
    ----------
    unit : str
        A key of :data:`edgetron.rtl.export.UNITS`.
    cfg : AcceleratorConfig
    target : edgetron.rtl.fpga.Target

    Raises
    ------
    ValueError
        Unknown unit, or a config the unit rejects at elaboration.
    FileNotFoundError
        A YoWASP tool package is not installed.
    """
    from edgetron.rtl.export import UNITS
    from edgetron.rtl.fpga import package_versions
    from edgetron.rtl.fpga.tools import YOSYS

    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; known units: {', '.join(UNITS)}")
    component, params = UNITS[unit].build(cfg)
    # Built for its parameters only: not elaborated here, which Amaranth would warn about.
    component._MustUse__silence = True
    modules = [YOSYS[0]] + ([target.pnr[0]] if target.pnr else [])
    return {
        "unit": unit,
        "parameters": params,
        "target": target.name,
        "options": {**FLOW_OPTIONS, "freq_mhz": target.default_mhz},
        "tools": {"amaranth": importlib.metadata.version("amaranth"),
                  **package_versions(*modules)},
        "rtl_sources": rtl_sources_digest(),
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def entry_path(key: dict[str, Any], directory: str | Path | None = None) -> Path:
    """The file of the entry with ``key``: ``<unit>-<SHA-256 of the key>.json``."""
    folder = Path(directory) if directory is not None else cache_dir()
    return folder / f"{key['unit']}-{_digest(key)[:40]}.json"


@dataclasses.dataclass(frozen=True)
class Entry:
    """A cached result: the flow's result (``FpgaResult``), or the misfit message."""

    path: Path
    measured_at: str
    result: Any = None
    error: str | None = None


def _check_result(data: Any, key: dict[str, Any]):
    """The FpgaResult in an entry, or a ValueError saying what is wrong with it."""
    from edgetron.rtl.fpga import FpgaResult

    if not isinstance(data, dict):
        raise ValueError("'result' is not an object")
    fields = {f.name for f in dataclasses.fields(FpgaResult)}
    if set(data) != fields:
        raise ValueError("'result' does not have the fields of an FPGA result")
    for name in ("config", "options", "resources", "unit_resources", "steps", "tools"):
        if not isinstance(data[name], dict):
            raise ValueError(f"'result.{name}' is not an object")
    result = FpgaResult(**data)
    fmax = result.fmax_mhz
    if isinstance(fmax, bool) or not isinstance(fmax, (int, float)) or not (
            math.isfinite(fmax) and fmax > 0):
        raise ValueError(f"Fmax {fmax!r} is not a positive number of MHz")
    if (result.unit, result.target) != (key["unit"], key["target"]):
        raise ValueError(f"it holds {result.unit} on {result.target}")
    return result


def load(key: dict[str, Any], *, directory: str | Path | None = None,
         warn: Callable[[str], None]) -> Entry | None:
    """The entry of ``key``, or None when there is none or it is corrupt (``warn`` is
    then called with a one-line message naming the file and what is wrong)."""
    path = entry_path(key, directory)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_ENTRY_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn(f"cannot read FPGA cache entry {path} ({exc.strerror}); measuring again")
        return None
    try:
        if len(raw) > MAX_ENTRY_BYTES:
            raise ValueError(f"larger than {MAX_ENTRY_BYTES:,} bytes")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from None
        if not isinstance(doc, dict) or (doc.get("format"), doc.get("version")) != FORMAT:
            raise ValueError(f"not a {FORMAT[0]} version {FORMAT[1]} document")
        if doc.get("key") != json.loads(json.dumps(key)):
            raise ValueError("it was written for another key")
        measured_at = doc.get("measured_at")
        if not isinstance(measured_at, str):
            raise ValueError("no 'measured_at' date")
        if "error" in doc:
            if not isinstance(doc["error"], str) or not doc["error"]:
                raise ValueError("'error' is not a message")
            return Entry(path, measured_at, error=doc["error"])
        return Entry(path, measured_at, result=_check_result(doc.get("result"), key))
    except (ValueError, TypeError) as exc:
        warn(f"ignoring corrupt FPGA cache entry {path}: {exc}; measuring again")
        return None


def store(key: dict[str, Any], *, result=None, error: str | None = None,
          directory: str | Path | None = None) -> Entry:
    """Write the entry of ``key``: a result (``FpgaResult``) or a misfit ``error``.

    The file is written beside its final name and renamed into place, so a reader never
    sees half an entry.

    Raises
    ------
    OSError
        The cache folder cannot be created or written.
    """
    if (result is None) == (error is None):
        raise ValueError("store: give a result or an error")
    path = entry_path(key, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    measured_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    fmt, version = FORMAT
    doc: dict[str, Any] = {"format": fmt, "version": version, "key": key,
                           "measured_at": measured_at}
    if result is not None:
        doc["result"] = result.to_dict()
    else:
        doc["error"] = error
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Entry(path, measured_at, result=result, error=error)
