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
"""

from __future__ import annotations

__all__ = ["ConfigError", "EdgetronError", "ScaleSimError", "SimulationError", "TraceError"]


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
