"""One hierarchy for every error a user can cause: catch :class:`EdgetronError`.

Each class is also a ``ValueError`` (what it was before the hierarchy existed), so
existing ``except ValueError`` code keeps working. Messages name the file, the op or the
field, and the allowed range; the command line prints them as one line and exits 1.

::

    EdgetronError (ValueError)
    +-- ConfigError        a configuration value, file or preset
    +-- TraceError         a trace document, op or workload
    |   +-- ScaleSimError  a SCALE-Sim topology CSV
    +-- SimulationError    a trace the configured hardware cannot run, or a run refused

Values appear in messages short and typed (:func:`show_value`, :func:`brief`): an integer
of thousands of digits is given by its size, never printed or converted to a float.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "SHOWN_CHARS",
    "ConfigError",
    "EdgetronError",
    "LongInt",
    "ScaleSimError",
    "SimulationError",
    "TraceError",
    "brief",
    "int_digits",
    "show_value",
]


class EdgetronError(ValueError):
    """Base class of every edgetron error caused by user input."""


class ConfigError(EdgetronError):
    """A configuration value is missing, of the wrong type or out of range."""


class TraceError(EdgetronError):
    """A trace document or op is malformed; the message names the op index and the field."""


class ScaleSimError(TraceError):
    """A SCALE-Sim topology CSV is malformed (message: file, line, column) or a trace cannot
    be exported to one."""


class SimulationError(EdgetronError):
    """The configured hardware cannot run the trace (the op and the buffer or width are
    named), or a run was refused (its memory or time estimate is given)."""


#: Longest value text in a message; longer values are cut (``...``).
SHOWN_CHARS = 40


class LongInt(int):
    """Stand-in for an integer literal too long for Python to convert from text.

    Python refuses to convert more than ``sys.get_int_max_str_digits()`` decimal digits
    (4300 by default); the JSON reader gives such a literal as this stand-in instead of
    failing without naming the field. Its value is ``±10**400``, outside every range a
    field allows and beyond the float range, so the field's own check rejects it; its
    text is the literal's size (``an integer of 5000 digits``).
    """

    digits: int

    def __new__(cls, digits: int, negative: bool = False) -> LongInt:
        self = super().__new__(cls, -(10**400) if negative else 10**400)
        self.digits = digits
        return self

    def __str__(self) -> str:
        return f"an integer of {self.digits} digits"

    __repr__ = __str__


def int_digits(value: int) -> int:
    """Decimal digits of ``abs(value)``, counted without converting it to text."""
    if isinstance(value, LongInt):
        return value.digits
    value = abs(value)
    digits = max(1, int(value.bit_length() * math.log10(2)))
    while 10**digits <= value:
        digits += 1
    while digits > 1 and 10 ** (digits - 1) > value:
        digits -= 1
    return digits


def brief(value: Any) -> str:
    """``repr(value)`` cut to 40 characters; an integer longer than that as its size."""
    if isinstance(value, int) and not isinstance(value, bool) and (
            isinstance(value, LongInt) or abs(value) >= 10**SHOWN_CHARS):
        return f"an integer of {int_digits(value)} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def show_value(value: Any) -> str:
    """A value for a message, with its type: ``int 5``, ``str 'x'``, ``bool True``.

    Long values are cut (:func:`brief`); an integer of more than 40 digits is given by
    its size, ``an integer of 5000 digits``.
    """
    text = brief(value)
    return text if text.startswith("an integer of ") else f"{type(value).__name__} {text}"
