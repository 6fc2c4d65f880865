"""The cocotb bench of the vector units (imported by tb_softmax/gelu/layernorm/add.py).

:class:`VectorBench` puts the harness agents around an exported vector unit: one
:class:`~harness.StreamSource` per input stream (random valid gaps), driven segment by
segment and each segment's streams in order (a unit takes a constants beat only once it
is empty); an :class:`~harness.InputMonitor` that hands every accepted input beat to the
model's :class:`~tests.models.vector.VectorMonitor` (which rebuilds the segments from
them); a :class:`~harness.StreamSink` (random backpressure, the stream rule) feeding the
:class:`~tests.models.vector.VectorScoreboard` (golden, bit for bit; cycles); and after
the expected beats, the quiet window (no stray beat).

Coverage: :class:`CoverageBins` turns the model's bins (``VectorModel.COVER``) into
``cocotb-coverage`` cover points, sampled with every row (or element) the scoreboard
checks; :meth:`CoverageBins.report` logs them and lists the empty bins.

Environment of the long runs (``benchmarks/vector_units.py``): ``EDGETRON_TB_VECTORS``
(rows, or elements of the element-wise units, of the random test), ``EDGETRON_TB_OUT``
(a JSON file the random test writes: vectors, mismatches, coverage). A long run uses
:class:`FastBench` (one coroutine per cycle; the scoreboard counts mismatches instead of
stopping at the first) and counts the coverage bins itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb_coverage.coverage import CoverPoint, coverage_db
from harness import Clocking, InputMonitor, Pause, StreamSink, StreamSource

from tests.models.vector import Coverage, VectorModel, VectorMonitor, VectorScoreboard

__all__ = ["CoverageBins", "VectorBench", "long_run", "vectors_wanted"]

#: Random rows (or elements) per random test when EDGETRON_TB_VECTORS is not set.
DEFAULT_VECTORS = 1000


def vectors_wanted() -> int:
    """Rows (row units) or elements (element-wise units) of the random test."""
    return int(os.environ.get("EDGETRON_TB_VECTORS", DEFAULT_VECTORS))


def long_run() -> Path | None:
    """The JSON file of a benchmark run (``EDGETRON_TB_OUT``), if any."""
    out = os.environ.get("EDGETRON_TB_OUT")
    return Path(out) if out else None


class CoverageBins:
    """The model's coverage bins as ``cocotb-coverage`` cover points (``<unit>.<point>``),
    and the same counts simulator-independently (:class:`~tests.models.vector.Coverage`)."""

    def __init__(self, model: VectorModel):
        self.model = model
        self.counts = Coverage(model)
        self._samplers = []
        for point, bins in model.COVER.items():
            def sample(s, _point=point):      # the decorator records s[_point] per call
                return None
            self._samplers.append(CoverPoint(f"{model.name}.{point}",
                                             xf=lambda s, _point=point: s.get(_point),
                                             bins=list(bins))(sample))

    def sample(self, samples: list[dict]) -> None:
        self.counts.sample(samples)
        if long_run() is not None:        # the long runs count bins only (faster)
            return
        for s in samples:
            for sampler in self._samplers:
                sampler(s)

    def report(self, log) -> list[str]:
        """Log every cover point's bins (cocotb-coverage's counts; a long run's own counts);
        return the empty bins."""
        if long_run() is not None:
            log.info("coverage %s: %s", self.model.name, self.counts.report())
            return self.counts.empty()
        empty = []
        for point in self.model.COVER:
            item = coverage_db[f"{self.model.name}.{point}"]
            hits = item.detailed_coverage
            log.info("coverage %s.%s: %d of %d bins hit: %s", self.model.name, point,
                     item.coverage, item.size, ", ".join(f"{b} {n}" for b, n in hits.items()))
            empty += [f"{point}={b}" for b, n in hits.items() if not n]
        if empty != self.counts.empty():
            raise AssertionError(f"cocotb-coverage and the model's counts disagree: {empty} "
                                 f"vs {self.counts.empty()}")
        return empty


class VectorBench:
    """Agents around one vector unit; :meth:`start` once per test, then :meth:`run`."""

    def __init__(self, dut, model: VectorModel, *, gap: float = 0.0, stall: float = 0.0,
                 seed: int = 0, coverage: CoverageBins | None = None):
        self.dut = dut
        self.model = model
        self.coverage = coverage
        self.clocking = Clocking(dut)
        self.sources = {name: StreamSource(dut, name, self.clocking, Pause(gap, seed + k))
                        for k, name in enumerate(model.inputs)}
        self.sink = StreamSink(dut, "o", self.clocking, Pause(stall, seed + 99),
                               on_beat=lambda word, cycle: self._board.on_out(word, cycle))
        self.inputs = InputMonitor(dut, model.inputs, self.clocking,
                                   lambda name, word, cycle: self._monitor.on_beat(name, word,
                                                                                   cycle))
        self._board: VectorScoreboard | None = None
        self._monitor: VectorMonitor | None = None

    async def start(self) -> None:
        """Clock, reset, and the sink and input monitor running."""
        await self.clocking.start([*(s.valid for s in self.sources.values()),
                                   self.dut.o__ready])
        cocotb.start_soon(self.sink.run())
        cocotb.start_soon(self.inputs.run())

    async def _drive(self, segments) -> None:
        for seg in segments:
            for name, words in self.model.const_words(seg).items():
                await self.sources[name].send(words)
            await self.sources["i"].send(self.model.in_words(seg))

    async def run(self, segments) -> VectorScoreboard:
        """Drive ``segments``, check every output beat and the quiet window after them;
        return the scoreboard (its ``done`` invocations carry the handshake cycles)."""
        segments = list(segments)
        cov = self.coverage
        on_check = None if cov is None else (
            lambda inv, got: cov.sample(self.model.cover(inv.seg, inv.data, got)))
        self._board = board = VectorScoreboard(self.model, on_check)
        self._monitor = VectorMonitor(self.model, segments, board)
        total = sum(self.model.out_beats(seg) for seg in segments)
        driver = cocotb.start_soon(self._drive(segments))
        await self.sink.receive(total, 60 * total + 20 * self.model.quiet_cycles()
                                * len(segments) + 1000)
        await driver
        await self.sink.expect_quiet(self.model.quiet_cycles())
        if board.pending or len(board.done) != len(segments):
            raise AssertionError(f"{len(board.done)} of {len(segments)} segments compared")
        return board


class FastBench:
    """The long runs' bench: the same model, input monitor and scoreboard as
    :class:`VectorBench`, with random valid gaps and ready stalls, but one coroutine per
    cycle that drives the inputs, takes ``o`` and observes every handshake (the three
    agents' work with two triggers per cycle instead of six, about three times faster).
    Mismatches are counted, not raised."""

    def __init__(self, dut, model: VectorModel, *, gap: float, stall: float, seed: int,
                 coverage: CoverageBins | None = None):
        self.dut, self.model, self.coverage = dut, model, coverage
        self.clocking = Clocking(dut)
        self.ports = {name: (getattr(dut, f"{name}__valid"), getattr(dut, f"{name}__ready"),
                             getattr(dut, f"{name}__payload")) for name in model.inputs}
        self.o = (dut.o__valid, dut.o__ready, dut.o__payload)
        self.gap, self.stall = Pause(gap, seed), Pause(stall, seed + 99)

    async def start(self) -> None:
        await self.clocking.start([p[0] for p in self.ports.values()] + [self.o[1]])

    async def run(self, segments) -> VectorScoreboard:
        """Drive ``segments``, check them, then watch ``o`` for a stray beat."""
        from cocotb.triggers import FallingEdge, ReadOnly

        cov = self.coverage
        on_check = None if cov is None else (
            lambda inv, got: cov.sample(self.model.cover(inv.seg, inv.data, got)))
        board = VectorScoreboard(self.model, on_check, strict=False)
        monitor = VectorMonitor(self.model, segments, board)
        items = [item for seg in segments for item in self.model.items(seg)]
        total = sum(self.model.out_beats(seg) for seg in segments)
        clk, (o_valid, o_ready, o_payload) = self.clocking.clk, self.o
        limit = 100 * self.model.quiet_cycles() + 1000
        idx, offered, drop, taken, idle = 0, None, None, 0, 0
        while taken < total:
            await FallingEdge(clk)
            if offered is None and idx < len(items) and not self.gap():
                offered = items[idx]
                valid, _, payload = self.ports[offered[0]]
                payload.value = offered[1]
                valid.value = 1
            if drop is not None and (offered is None or offered[0] != drop):
                self.ports[drop][0].value = 0        # the beat taken at the last edge
            drop = None
            take = not self.stall()
            o_ready.value = int(take)
            await ReadOnly()
            cycle = self.clocking.cycle()
            if offered is not None and self.ports[offered[0]][1].value:
                monitor.on_beat(offered[0], offered[1], cycle)
                drop, offered, idx = offered[0], None, idx + 1
            if take and o_valid.value:
                board.on_out(o_payload.value.to_unsigned(), cycle)
                taken, idle = taken + 1, 0
            elif (idle := idle + 1) > limit:
                raise AssertionError(f"no output beat for {idle} cycles ({taken} of {total})")
        await FallingEdge(clk)
        if drop is not None:
            self.ports[drop][0].value = 0
        o_ready.value = 1
        for _ in range(self.model.quiet_cycles()):
            await ReadOnly()
            if o_valid.value:
                raise AssertionError("a stray output beat after the expected ones")
            await FallingEdge(clk)
        if board.pending or len(board.done) != len(segments):
            raise AssertionError(f"{len(board.done)} of {len(segments)} segments compared")
        return board


def write_long_run(path: Path, vectors: int, mismatches: int, bins: CoverageBins,
                   empty: list[str], cycles: int) -> None:
    """The benchmark's JSON: vectors, mismatches, cycles, coverage counts, empty bins."""
    path.write_text(json.dumps({"vectors": vectors, "mismatches": mismatches,
                                "cycles": cycles, "coverage": bins.counts.hits,
                                "empty_bins": empty}))


# ---- the tests every vector testbench runs --------------------------------------------------
#: Valid-gap and ready-stall probabilities of the random and extreme runs.
GAP, STALL = 0.15, 0.2
#: Segments per chunk of a long run (each chunk is compared and freed before the next).
_CHUNK = 2000


async def extremes_test(dut, model: VectorModel, bins: CoverageBins, seed: int) -> None:
    """The model's coverage segments (every bin's extreme) with gaps and backpressure."""
    import numpy as np

    bench = VectorBench(dut, model, gap=0.3, stall=0.3, seed=seed, coverage=bins)
    await bench.start()
    await bench.run(model.coverage_segments(np.random.default_rng(seed)))


async def random_test(dut, model: VectorModel, bins: CoverageBins, seed: int, segments,
                      size) -> None:
    """Random segments (``segments(rng, count)``) with gaps and backpressure until
    :func:`vectors_wanted` rows or elements (``size(seg)``) are checked. A long run
    (:func:`long_run`) counts mismatches and writes its JSON instead of stopping."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wanted, out = vectors_wanted(), long_run()
    bench_cls = VectorBench if out is None else FastBench
    bench = bench_cls(dut, model, gap=GAP, stall=STALL, seed=seed, coverage=bins)
    await bench.start()
    done = mismatches = cycles = 0
    while done < wanted:
        chunk = segments(rng, min(_CHUNK, wanted - done) if out else wanted)
        board = await bench.run(chunk)
        done += sum(size(seg) for seg in chunk)
        mismatches += board.mismatches
        cycles += board.done[-1].out_cycles[-1] - board.done[0].in_cycles[0] + 1
    dut._log.info("%s: %d random vectors checked against golden, %d mismatches",
                  model.name, done, mismatches)
    if out is not None:
        write_long_run(out, done, mismatches, bins, bins.report(dut._log), cycles)
    assert mismatches == 0


async def full_rate_test(dut, model: VectorModel, seed: int, segments) -> None:
    """The random segments of :func:`random_test` (same seed) and every row-length class
    of the model at full rate: each segment's cycles, first input to last output
    handshake, equal the unit's ``edgetron.hw`` cycle function."""
    import numpy as np

    segs = segments(np.random.default_rng(seed), vectors_wanted())
    segs += model.full_rate_segments(np.random.default_rng(seed + 1))
    bench = VectorBench(dut, model)
    await bench.start()
    board = await bench.run(segs)
    measured = [inv.cycles for inv in board.done]
    wrong = [(i, m, model.cycles(s)) for i, (m, s) in enumerate(zip(measured, segs, strict=True))
             if m != model.cycles(s)]
    assert not wrong, f"measured != modelled cycles (segment, RTL, model): {wrong[:5]}"
    dut._log.info("%s: %d segments at full rate, each in exactly the edgetron.hw cycles",
                  model.name, len(segs))


def coverage_test(dut, bins: CoverageBins) -> None:
    """Every coverage bin was hit by the tests before (the testbench's last test)."""
    empty = bins.report(dut._log)
    assert not empty, f"empty coverage bins: {', '.join(empty)}"
