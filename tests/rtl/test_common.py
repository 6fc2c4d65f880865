"""The shared RTL helpers of rtl/common.py in the Amaranth simulator."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import ClockDomain, Fragment, Module, Signal
from amaranth.lib import data
from amaranth.sim import Simulator

from edgetron.config import ConfigError
from edgetron.rtl.common import (
    CheckedComponent,
    CreditFifo,
    DelayLine,
    StreamDemux,
    at_most,
    ceil_div_const,
    tag_line,
)

from . import streams


@pytest.mark.parametrize("d", [1, 3, 4, 5, 7, 12])
def test_constant_divider_is_exact(d):
    """ceil(x / d) without a divider, for every value of a 9-bit x."""
    x = Signal(9)
    q = Signal(10)
    m = Module()
    m.d.comb += q.eq(ceil_div_const(x, d))

    async def bench(ctx):
        for v in range(1 << len(x)):
            ctx.set(x, v)
            assert ctx.get(q) == -(-v // d), v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_at_most_builds_no_comparator_that_cannot_fail():
    x = Signal(4)
    assert at_most(x, 15).value == 1          # a constant
    m = Module()
    # 9: a comparator; 1, 2, 4, 8: powers of two, built from OR trees without one.
    limits = (9, 1, 2, 4, 8)
    le = [Signal(name=f"le_{n}") for n in limits]
    m.d.comb += [s.eq(at_most(x, n)) for s, n in zip(le, limits, strict=True)]

    async def bench(ctx):
        for v in range(16):
            ctx.set(x, v)
            for s, n in zip(le, limits, strict=True):
                assert ctx.get(s) == (v <= n), (v, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_delay_and_tag_lines_count_their_registers():
    m = Module()
    x = Signal(8)
    line = DelayLine(m, x, 3, "x")
    tag = tag_line(m, {"valid": 1, "index": 5}, 2, "tag")
    assert (line.depth, tag.depth, DelayLine(m, x, 0, "same").output is x) == (3, 2, True)
    assert isinstance(tag.input.shape(), data.StructLayout)
    seen = []

    async def bench(ctx):
        for v in range(10):
            ctx.set(x, v)
            ctx.set(tag.input, {"valid": v % 2, "index": v})
            await ctx.tick()
            seen.append((ctx.get(line.output), ctx.get(line[1]), ctx.get(tag.output.index)))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # After the edge of cycle v, tap i holds the value of cycle v + 1 - i.
    assert seen[5] == (3, 5, 4)
    with pytest.raises(ValueError, match="cannot be -1 registers deep"):
        DelayLine(m, x, -1, "bad")


def test_stream_demux_routes_by_select_with_backpressure():
    """Beats reach the selected output only, in order, with random gaps and stalls on
    every side; an unselected output's ready does not take a beat."""
    dut = StreamDemux(8, 3)
    top = Module()
    top.domains.sync = ClockDomain()               # the demultiplexer itself has no clock
    top.submodules.demux = dut
    top.d.comb += dut.sel.eq(dut.i.payload % 3)     # each beat names its output
    rng = random.Random(1)
    words = [rng.randrange(256) for _ in range(60)]
    source = streams.StreamSource(dut.i, words, gap=0.3, seed=2)
    sinks = [streams.StreamSink(dut.o[k], stall=0.4, seed=3 + k) for k in range(3)]
    streams.run(top, sources=[source], sinks=sinks,
                until=lambda: sum(len(s.beats) for s in sinks) == len(words), quiet=4)
    for k, sink in enumerate(sinks):
        assert sink.beats == [w for w in words if w % 3 == k]


@pytest.mark.parametrize("depth", [1, 5])
def test_credit_fifo_keeps_order_one_cycle_through_and_fills_to_its_depth(depth):
    """A writer that spends a credit per beat and gets one back per beat taken: every
    beat comes out in order, valid on ``o`` the cycle after it was written, and the FIFO
    holds ``depth`` beats while ``o.ready`` stays low."""
    dut = CreditFifo(8, depth)
    rng = random.Random(depth)
    words = [rng.randrange(256) for _ in range(80)]
    written, taken = [], []

    async def bench(ctx):
        credits, pending, cycle, held_low = depth, list(words), 0, 0
        while len(taken) < len(words):
            stall = cycle < 20 or rng.random() < 0.4      # a long hold first
            send = bool(pending) and credits > 0 and rng.random() < 0.8
            ctx.set(dut.o.ready, not stall)
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, pending[0])
            valid, word = ctx.get(dut.o.valid), ctx.get(dut.o.payload)
            # A beat written in the cycle before is on o now (LATENCY = 1).
            assert valid or not written or written[-1][1] != cycle - 1, cycle
            if cycle == 20:
                held_low = len(written) - len(taken)
            await ctx.tick()
            if send:
                written.append((pending.pop(0), cycle))
                credits -= 1
            if valid and not stall:
                taken.append((word, cycle))
                credits += 1
            cycle += 1
        assert held_low == depth

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [w for w, _ in taken] == words
    assert all(t > c for (_, c), (_, t) in zip(written, taken, strict=True))


def test_checked_component_checks_before_it_exists():
    class Thing(CheckedComponent):
        @classmethod
        def check_parameters(cls, width):
            if width < 1:
                raise ConfigError(f"Thing: width must be >= 1, got {width}")

        def __init__(self, width):
            super().__init__({})

        def elaborate(self, platform):
            return Module()

    with pytest.raises(ConfigError, match="width must be >= 1"):
        Thing(0)
    Fragment.get(Thing(3), None)
    with pytest.raises(ConfigError, match=r"StreamDemux: n must be an integer in \[2, 16\]"):
        StreamDemux(8, 1)
