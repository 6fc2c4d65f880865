"""Reusable cocotb pieces for the edgetron testbenches (imported by tb_*.py).

Timing model
------------
Every agent works once per clock cycle: it drives its inputs just after the
falling edge, waits for ``ReadOnly`` (everything settled, including the
combinational ``ready`` paths through the unit), and samples the handshake that
will happen at the next rising edge. This is independent of whether a
simulator shows pre- or post-edge register values right after a rising edge
(Icarus and Verilator differ there). A handshake is stamped with the index of
the rising edge it happens on (:meth:`Clocking.cycle`).

Pieces
------
* :class:`Clocking`: clock, synchronous reset, cycle numbers.
* :class:`Pause`: random pause generator (valid gaps, ready backpressure).
* :class:`StreamSource`: drives ``<name>__payload/__valid`` and watches ``__ready``.
* :class:`StreamSink`: drives ``<name>__ready`` with backpressure, collects beats (and
  hands each to a callback, e.g. a scoreboard), checks the stream rule (an offered beat
  stays offered, unchanged, until taken) and, after the expected beats, that no stray
  beat follows (:meth:`StreamSink.expect_quiet`).
* :class:`InputMonitor`: observes the handshakes of the DUT's input streams, whoever
  drives them, and hands each accepted beat to a callback (the unit model's monitor,
  which rebuilds the invocations for the scoreboard).
* :class:`Scoreboard`: compares integer arrays bit for bit and reports mismatches.
* :class:`CallBench`: a unit whose calls come on input streams (``cmd`` never paused)
  and leave on ``o``: one source per input, one sink; drives encoded calls back to back
  and collects their output beats (the conv testbenches' bench).
* :func:`load_manifest`: the export manifest the pytest runner wrote for this build.

The unit models (codec, golden, timing, stimuli, invocation monitor and scoreboard) are
shared with the Amaranth tests: ``tests/models/<unit>.py``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, RisingEdge, with_timeout

__all__ = [
    "CLOCK_NS",
    "CallBench",
    "Clocking",
    "InputMonitor",
    "Pause",
    "Scoreboard",
    "StreamSink",
    "StreamSource",
    "load_manifest",
]

#: Clock period in ns (the value is arbitrary: only cycle counts are checked).
CLOCK_NS = 10
#: Cycles the synchronous reset is held.
_RESET_CYCLES = 3


def load_manifest() -> dict:
    """The JSON manifest of the unit under test (path in ``EDGETRON_TB_MANIFEST``)."""
    path = os.environ.get("EDGETRON_TB_MANIFEST")
    if not path:
        raise RuntimeError("EDGETRON_TB_MANIFEST is not set; run the tb from its pytest runner")
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Clocking:
    """Starts the clock of ``dut.clk``, applies reset, numbers cycles."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.clk

    async def start(self, idle=()) -> None:
        """Start a :data:`CLOCK_NS` clock and hold ``rst`` for a few cycles.

        ``idle`` are the handshake inputs of the DUT (``valid`` of its input streams,
        ``ready`` of its output streams), driven low from the start.
        """
        for sig in idle:
            sig.value = 0
        Clock(self.clk, CLOCK_NS, unit="ns").start()
        self.dut.rst.value = 1
        for _ in range(_RESET_CYCLES):
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        self.dut.rst.value = 0

    def cycle(self) -> int:
        """Index of the next rising edge (call between a falling and a rising edge)."""
        return int(get_sim_time("ns") // CLOCK_NS) + 1


class Pause:
    """Bernoulli pause generator: ``pause()`` is True with probability ``p``, and on each
    of its first ``hold`` calls (one per cycle: a stream held from the start)."""

    def __init__(self, p: float = 0.0, seed: int = 0, hold: int = 0):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"pause probability must lie in [0, 1), got {p}")
        self.p = p
        self.hold = hold
        self._rng = random.Random(seed)

    def __call__(self) -> bool:
        if self.hold > 0:
            self.hold -= 1
            return True
        return self.p > 0.0 and self._rng.random() < self.p


class _StreamAgent:
    """The ``<name>__payload/__valid/__ready`` ports of one DUT stream, a clocking and a
    pause generator (no pauses by default)."""

    def __init__(self, dut, name: str, clocking: Clocking, pause: Pause | None = None):
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.clocking = clocking
        self.pause = pause or Pause()


class StreamSource(_StreamAgent):
    """Drives one input stream of the DUT with random gaps between beats.

    Its ``valid`` must be low before the first :meth:`send` (see :meth:`Clocking.start`).

    ``valid`` is never withdrawn once a beat is offered (stream rule). The cycle
    of every accepted beat is recorded in :attr:`accepted`.
    """

    def __init__(self, dut, name: str, clocking: Clocking, pause: Pause | None = None):
        super().__init__(dut, name, clocking, pause)
        self.accepted: list[int] = []

    async def send(self, words) -> None:
        """Send every word (an unsigned payload integer); returns after the last handshake."""
        clk = self.clocking.clk
        for word in words:
            await FallingEdge(clk)
            while self.pause():
                self.valid.value = 0
                await FallingEdge(clk)
            self.valid.value = 1
            self.payload.value = word
            while True:
                await ReadOnly()
                if self.ready.value:
                    self.accepted.append(self.clocking.cycle())
                    break
                await FallingEdge(clk)
        await FallingEdge(clk)
        self.valid.value = 0


class StreamSink(_StreamAgent):
    """Receives one output stream with random backpressure and checks the stream rule.

    Beats land in :attr:`beats` as unsigned integers, their cycles in :attr:`cycles`, and
    each is passed to ``on_beat(word, cycle)`` when given.
    """

    def __init__(self, dut, name: str, clocking: Clocking, pause: Pause | None = None,
                 on_beat: Callable[[int, int], None] | None = None):
        super().__init__(dut, name, clocking, pause)
        self.on_beat = on_beat
        self.beats: list[int] = []
        self.cycles: list[int] = []
        self._want = 0
        self._done = Event()
        self._last_valid = -1   # last cycle with valid high, taken or not

    async def receive(self, count: int, timeout_cycles: int) -> list[int]:
        """Collect ``count`` more beats; fail if they take more than ``timeout_cycles``.

        Returns in the read-only phase of the cycle of the last handshake: wait for a
        clock edge before driving anything.
        """
        start = len(self.beats)
        self._want = start + count
        self._done.clear()
        await with_timeout(self._done.wait(), timeout_cycles * CLOCK_NS, "ns")
        return self.beats[start:]

    async def expect_quiet(self, cycles: int) -> None:
        """Fail if ``valid`` is high in any of the ``cycles`` cycles after the last beat
        taken: a beat beyond the expected count (call right after :meth:`receive`;
        ``cycles`` should exceed the time a beat can spend inside the DUT)."""
        last, expected = self.cycles[-1], len(self.beats)
        await ClockCycles(self.clocking.clk, cycles + 1)
        if self._last_valid > last:
            raise AssertionError(
                f"{self.name}: stray output after the {expected} expected beats: valid high "
                f"up to {self._last_valid - last} cycles after the last one, "
                f"{len(self.beats) - expected} more beat(s) taken"
            )

    async def run(self) -> None:
        """The per-cycle loop (start with ``cocotb.start_soon``)."""
        clk = self.clocking.clk
        held = None  # payload offered but not taken in the previous cycle
        while True:
            await FallingEdge(clk)
            take = not self.pause()
            self.ready.value = int(take)
            await ReadOnly()
            valid = bool(self.valid.value)
            if valid:
                self._last_valid = self.clocking.cycle()
            payload = self.payload.value.to_unsigned() if valid else None
            if held is not None and payload != held:
                raise AssertionError(
                    f"{self.name}: a beat offered under backpressure was withdrawn or changed "
                    f"(cycle {self.clocking.cycle()})"
                )
            held = None
            if valid and take:
                self.beats.append(payload)
                self.cycles.append(self.clocking.cycle())
                if self.on_beat is not None:
                    self.on_beat(payload, self.cycles[-1])
                if len(self.beats) >= self._want:
                    self._done.set()
            elif valid:
                held = payload


class InputMonitor:
    """Observes the handshakes of the DUT's input streams ``names`` and calls
    ``on_beat(name, word, cycle)`` for each, in cycle order (``names`` order within a
    cycle). It drives nothing: it sees what the DUT accepted, however it was driven.
    Start :meth:`run` with ``cocotb.start_soon``."""

    def __init__(self, dut, names, clocking: Clocking, on_beat: Callable[[str, int, int], None]):
        self.ports = [(name, getattr(dut, f"{name}__valid"), getattr(dut, f"{name}__ready"),
                       getattr(dut, f"{name}__payload")) for name in names]
        self.clocking = clocking
        self.on_beat = on_beat

    async def run(self) -> None:
        clk = self.clocking.clk
        while True:
            await FallingEdge(clk)
            await ReadOnly()
            cycle = self.clocking.cycle()
            for name, valid, ready, payload in self.ports:
                if valid.value and ready.value:
                    self.on_beat(name, payload.value.to_unsigned(), cycle)


class Scoreboard:
    """Bit-exact comparison of integer arrays against the golden model."""

    def __init__(self, log):
        self.log = log

    def compare(self, what: str, got, expected) -> None:
        """Raise AssertionError naming ``what`` and the first mismatches if they differ."""
        g = np.asarray(got, dtype=np.int64)
        e = np.asarray(expected, dtype=np.int64)
        if g.shape != e.shape:
            raise AssertionError(f"{what}: shape {g.shape} != golden {e.shape}")
        bad = np.argwhere(g != e)
        if bad.size:
            first = ", ".join(
                f"{tuple(int(i) for i in idx)}: {int(g[tuple(idx)])} != {int(e[tuple(idx)])}"
                for idx in bad[:5]
            )
            raise AssertionError(
                f"{what}: {len(bad)} of {e.size} values differ from golden; first {first}"
            )
        self.log.info("%s: %d values match golden", what, e.size)


class CallBench:
    """One source per input stream of ``inputs`` (``cmd`` without gaps, the others with
    random gaps of probability ``gap``) and one sink on ``o`` (random backpressure of
    probability ``stall``); :meth:`start` once per test, then :meth:`send`."""

    def __init__(self, dut, inputs, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
        self.dut = dut
        self.inputs = tuple(inputs)
        self.clocking = Clocking(dut)
        self.gap, self.seed = gap, seed
        self.sink = StreamSink(dut, "o", self.clocking, Pause(stall, seed + 17))

    async def start(self) -> None:
        """Clock, reset, and the sink running."""
        idle = [getattr(self.dut, f"{name}__valid") for name in self.inputs]
        await self.clocking.start([*idle, self.dut.o__ready])
        cocotb.start_soon(self.sink.run())

    async def send(self, words: dict, n_out: int, quiet: int):
        """Drive ``words`` (beats per input stream) back to back, collect ``n_out`` output
        beats (timeout: 100 cycles per beat in and out), then check ``quiet`` cycles
        without a stray beat. Returns the output beats, their handshake cycles and the
        command handshake cycles."""
        sources = {}
        for i, name in enumerate(self.inputs):
            gap = 0.0 if name == "cmd" else self.gap
            sources[name] = StreamSource(self.dut, name, self.clocking,
                                         Pause(gap, self.seed + i))
            cocotb.start_soon(sources[name].send(words[name]))
        start = len(self.sink.beats)
        await self.sink.receive(n_out, 100 * (n_out + sum(len(v) for v in words.values())))
        await self.sink.expect_quiet(quiet)
        return self.sink.beats[start:], self.sink.cycles[start:], sources["cmd"].accepted
