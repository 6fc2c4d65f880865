"""Reading a hardware config: a preset name, a TOML file, or the default preset.

:func:`load_config` is the one entry point of the CLI, the benchmarks and the deploy
pipeline; the config itself, its fields and checks are :mod:`edgetron.config`. A TOML file
is data: it is size-checked before it is read, parsed with ``tomllib`` and every key and
value validated by :meth:`~edgetron.config.AcceleratorConfig.from_dict`; an integer too long
for Python's ``int`` parser is reported by key with the allowed range.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from edgetron.config import DEFAULT_PRESET, PRESETS, AcceleratorConfig, _out_of_range
from edgetron.errors import ConfigError, brief

__all__ = ["MAX_CONFIG_BYTES", "load_config"]

#: Largest TOML configuration file read, in bytes (a complete config is under 1 KiB).
MAX_CONFIG_BYTES = 1024 * 1024


def load_config(spec: str | os.PathLike | None = None) -> AcceleratorConfig:
    """A config from a preset name, a TOML file path, or the default preset when None.

    Parameters
    ----------
    spec : str, os.PathLike or None
        A key of :data:`PRESETS`, the path of a TOML file
        (:meth:`AcceleratorConfig.from_dict` describes its keys), or None for
        :data:`DEFAULT_PRESET`.

    Returns
    -------
    AcceleratorConfig
        The preset object itself for a preset name.

    Raises
    ------
    TypeError
        ``spec`` is neither a string, a path nor None.
    ConfigError
        ``spec`` is neither a preset nor an existing file, the file is larger
        than :data:`MAX_CONFIG_BYTES` or not valid UTF-8 TOML, or its settings
        are invalid (file and key named).
    OSError
        The file cannot be read.
    """
    if spec is None:
        return PRESETS[DEFAULT_PRESET]
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"spec must be a preset name ({', '.join(PRESETS)}), a TOML file path or None, "
            f"got {type(spec).__name__} {spec!r}"
        )
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"config {brief(str(spec))} is neither a preset ({', '.join(PRESETS)}) nor a file"
        )
    with path.open("rb") as file:
        raw = file.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the file exceeds the limit of {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except ValueError:  # an integer of more digits than Python converts from text
        raise _long_integer_error(text, path) from None
    return AcceleratorConfig.from_dict(data, source=str(path))


#: ``key = <integer>`` at the start of a TOML line (a bare or dotted key).
_TOML_INT = re.compile(r"([A-Za-z0-9_.-]+)[ \t]*=[ \t]*[+-]?([0-9][0-9_]*)")
#: A ``[table]`` header line.
_TOML_TABLE = re.compile(r"\[[ \t]*([A-Za-z0-9_.-]+)[ \t]*\]")


def _long_integer_error(text: str, path: Path) -> ConfigError:
    """The error for a TOML integer of more digits than Python converts from text.

    ``tomllib`` fails on such a literal with a bare ValueError that names neither file
    nor key; the lines are scanned for it so that the message names both, as for any
    other value out of range.
    """
    limit = sys.get_int_max_str_digits()
    table = ""
    for line in text.splitlines():
        line = line.strip()
        if header := _TOML_TABLE.fullmatch(line):
            table = header.group(1) + "."
        elif (match := _TOML_INT.match(line)) and len(match.group(2).replace("_", "")) > limit:
            digits = len(match.group(2).replace("_", "").lstrip("0"))
            key = table + match.group(1)
            return ConfigError(f"{path}: {_out_of_range(key, f'an integer of {digits} digits')}")
    return ConfigError(f"{path}: not valid TOML: an integer of more than {limit} digits")
