"""Stream drivers, sinks and monitors for the Amaranth-simulator tests.

Every helper is an Amaranth testbench that works once per clock cycle; all of them start
at time 0, so their cycle numbers agree: a handshake is stamped with the index of the
clock edge it happens on (the first edge is 0).

* :class:`StreamSource` drives one input stream with random valid gaps (a beat offered is
  held, unchanged, until it is taken).
* :class:`StreamSink` takes beats with random ready backpressure, checks the stream rule
  (a beat offered and not taken stays offered, unchanged) and remembers the last cycle
  ``valid`` was high, for the stray-beat check.
* :class:`HandshakeMonitor` observes the handshakes of any number of streams (the input
  monitor: it sees what the unit accepted, whoever drove it).
* :func:`run` adds them to a simulator with a controller that stops once the test's
  condition holds, then watches the sinks for a quiet window.

The cocotb counterparts are in tests/cocotb/harness.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["HandshakeMonitor", "StreamSink", "StreamSource", "run"]


class StreamSource:
    """Drives ``port`` (an input stream of the DUT) with ``words``, one beat at a time.

    Before each beat, ``valid`` stays low for a cycle with probability ``gap`` (repeatedly).
    :attr:`accepted` holds the cycle of every handshake.
    """

    def __init__(self, port, words, *, gap: float = 0.0, seed: int = 0):
        if not 0.0 <= gap < 1.0:
            raise ValueError(f"gap must lie in [0, 1), got {gap}")
        self.port = port
        self.words = list(words)
        self.gap = gap
        self.accepted: list[int] = []
        self._rng = random.Random(seed)

    @property
    def done(self) -> bool:
        """Every word was taken."""
        return len(self.accepted) == len(self.words)

    async def run(self, ctx) -> None:
        port, cycle = self.port, 0
        for word in self.words:
            while self.gap and self._rng.random() < self.gap:
                ctx.set(port.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(Value.cast(port.payload), word)
            ctx.set(port.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                cycle += 1
                if ready:
                    self.accepted.append(cycle - 1)
                    break
        ctx.set(port.valid, 0)


class StreamSink:
    """Takes beats from ``port`` (an output stream of the DUT) with random backpressure.

    ``ready`` is low on a cycle with probability ``stall``, and on every cycle of
    ``hold = (start, stop)`` (cycles counted from the first). Each beat taken is passed to
    ``on_beat(word, cycle)`` and kept in :attr:`beats` / :attr:`cycles`. A beat offered and
    not taken must be offered again, unchanged, on the next cycle (AssertionError).
    """

    def __init__(self, port, *, stall: float = 0.0, seed: int = 0,
                 on_beat: Callable[[int, int], None] | None = None,
                 hold: tuple[int, int] = (0, 0)):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall must lie in [0, 1), got {stall}")
        self.port = port
        self.stall = stall
        self.hold = range(*hold)
        self.on_beat = on_beat
        self.beats: list[int] = []
        self.cycles: list[int] = []
        self.last_valid = -1
        self._rng = random.Random(seed)

    async def run(self, ctx) -> None:
        port, cycle, held = self.port, 0, None
        while True:
            take = not (self.stall and self._rng.random() < self.stall) and cycle not in self.hold
            ctx.set(port.ready, take)
            _, _, valid, word = await ctx.tick().sample(port.valid, Value.cast(port.payload))
            if held is not None and not (valid and word == held):
                raise AssertionError(f"{port.payload.shape()!r} stream: a beat offered under "
                                     f"backpressure was withdrawn or changed (cycle {cycle})")
            held = None
            if valid:
                self.last_valid = cycle
                if take:
                    self.beats.append(word)
                    self.cycles.append(cycle)
                    if self.on_beat is not None:
                        self.on_beat(word, cycle)
                else:
                    held = word
            cycle += 1


class HandshakeMonitor:
    """Observes ``streams`` (name -> stream port) and calls ``on_beat(name, word, cycle)``
    for every handshake, in cycle order (streams in the order given within a cycle)."""

    def __init__(self, streams: dict, on_beat: Callable[[str, int, int], None]):
        self.streams = dict(streams)
        self.on_beat = on_beat

    async def run(self, ctx) -> None:
        names = list(self.streams)
        signals = []
        for port in self.streams.values():
            signals += [port.valid, port.ready, Value.cast(port.payload)]
        cycle = 0
        async for _, _, *values in ctx.tick().sample(*signals):
            for i, name in enumerate(names):
                valid, ready, word = values[3 * i:3 * i + 3]
                if valid and ready:
                    self.on_beat(name, word, cycle)
            cycle += 1


def run(dut, *, sources=(), sinks=(), monitors=(), until: Callable[[], bool],
        quiet: int = 0, max_cycles: int = 200_000, testbenches=()) -> int:
    """Simulate ``dut`` until ``until()`` holds, then ``quiet`` more cycles.

    Sources, sinks and monitors run in the background; ``testbenches`` (plain Amaranth
    testbench functions) in the foreground, alongside the controller. After the quiet
    window, every sink must have seen no ``valid`` since its last beat taken before the
    window (a stray beat, AssertionError), and every source must have sent all its words.
    Returns the cycle at which ``until()`` first held.
    """
    state = {"done_at": None}

    async def controller(ctx):
        cycle = 0
        while not until():
            await ctx.tick()
            cycle += 1
            if cycle > max_cycles:
                raise AssertionError(f"no completion after {max_cycles} cycles")
        state["done_at"] = cycle
        last = {id(s): (s.cycles[-1] if s.cycles else -1) for s in sinks}
        for _ in range(quiet):
            await ctx.tick()
        for sink in sinks:
            if sink.last_valid > last[id(sink)]:
                raise AssertionError(
                    f"stray output beat: valid high {sink.last_valid - last[id(sink)]} cycles "
                    f"after the last expected one")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for helper in (*sources, *sinks, *monitors):
        sim.add_testbench(helper.run, background=True)
    for bench in testbenches:
        sim.add_testbench(bench)
    sim.add_testbench(controller)
    sim.run()
    unsent = [len(s.words) - len(s.accepted) for s in sources if not s.done]
    if unsent:
        raise AssertionError(f"{sum(unsent)} input beat(s) were never taken")
    return state["done_at"]
