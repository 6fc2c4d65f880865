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

``EDGETRON_TB_VECTORS`` sets the rows (vectors) of the random test (default 1000). The
10^6-vector runs use a compiled C++ bench instead (benchmarks/verilator_bench.py): cocotb
spends a few hundred microseconds of Python per cycle.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb_coverage.coverage import CoverPoint, coverage_db
from harness import Clocking, InputMonitor, Pause, StreamSink, StreamSource

from tests.models.vector import Coverage, VectorModel, VectorMonitor, VectorScoreboard

__all__ = ["CoverageBins", "VectorBench", "vector_tests", "vectors_wanted"]

#: Random rows (row units) or vectors (element-wise units) of the random test when
#: EDGETRON_TB_VECTORS is not set.
DEFAULT_VECTORS = 1000


def vectors_wanted() -> int:
    """Rows (row units) or vectors (element-wise units) of the random test."""
    return int(os.environ.get("EDGETRON_TB_VECTORS", DEFAULT_VECTORS))


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
        for s in samples:
            for sampler in self._samplers:
                sampler(s)

    def report(self, log) -> list[str]:
        """Log every cover point's bins (cocotb-coverage's counts); return the empty bins."""
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
        beats = sum(max(self.model.in_beats(seg), self.model.out_beats(seg))
                    for seg in segments)
        driver = cocotb.start_soon(self._drive(segments))
        await self.sink.receive(total, 60 * beats + 20 * self.model.quiet_cycles()
                                * len(segments) + 1000)
        await driver
        await self.sink.expect_quiet(self.model.quiet_cycles())
        if board.pending or len(board.done) != len(segments):
            raise AssertionError(f"{len(board.done)} of {len(segments)} segments compared")
        return board


# ---- the tests every vector testbench runs --------------------------------------------------
#: Valid-gap and ready-stall probabilities of the random and extreme runs.
GAP, STALL = 0.15, 0.2


async def extremes_test(dut, model: VectorModel, bins: CoverageBins, seed: int) -> None:
    """The model's coverage segments (every bin's extreme) with gaps and backpressure."""
    bench = VectorBench(dut, model, gap=0.3, stall=0.3, seed=seed, coverage=bins)
    await bench.start()
    await bench.run(model.coverage_segments(np.random.default_rng(seed)))


async def random_test(dut, model: VectorModel, bins: CoverageBins, seed: int) -> None:
    """:func:`vectors_wanted` random segments (rows for the row units, vectors for the
    element-wise ones) with gaps and backpressure."""
    segs = model.random_segments(np.random.default_rng(seed), vectors_wanted())
    bench = VectorBench(dut, model, gap=GAP, stall=STALL, seed=seed, coverage=bins)
    await bench.start()
    board = await bench.run(segs)
    dut._log.info("%s: %d random segments (%d rows, %d elements) checked against golden",
                  model.name, len(segs), board.rows, sum(s.data[0].size for s in segs))


async def full_rate_test(dut, model: VectorModel, seed: int) -> None:
    """The random segments of :func:`random_test` (same seed) and every row-length class
    of the model at full rate: each segment's cycles, first input to last output
    handshake, equal the simulator's (:meth:`VectorModel.cycles`)."""
    segs = model.random_segments(np.random.default_rng(seed), vectors_wanted())
    segs += model.full_rate_segments(np.random.default_rng(seed + 1))
    bench = VectorBench(dut, model)
    await bench.start()
    board = await bench.run(segs)
    measured = [inv.cycles for inv in board.done]
    wrong = [(i, m, model.cycles(s)) for i, (m, s) in enumerate(zip(measured, segs, strict=True))
             if m != model.cycles(s)]
    assert not wrong, f"measured != simulator cycles (segment, RTL, sim): {wrong[:5]}"
    dut._log.info("%s: %d segments at full rate, each in exactly the simulator's cycles",
                  model.name, len(segs))


def coverage_test(dut, bins: CoverageBins) -> None:
    """Every coverage bin was hit by the tests before (the testbench's last test)."""
    empty = bins.report(dut._log)
    assert not empty, f"empty coverage bins: {', '.join(empty)}"


def vector_tests(model: VectorModel, module: str, seed: int = 2026) -> tuple:
    """The four cocotb tests of a vector unit's testbench, in order, named
    ``<unit>_extremes``, ``_random``, ``_full_rate`` and ``_coverage`` in ``module``:

    1. every coverage bin's extreme (:func:`extremes_test`), with gaps and backpressure;
    2. random segments (:func:`random_test`), with gaps and backpressure;
    3. the same segments and every row-length class at full rate (:func:`full_rate_test`):
       cycles = the simulator's;
    4. every cocotb-coverage bin hit (:func:`coverage_test`; fails on an empty one).
    """
    bins = CoverageBins(model)

    async def extremes(dut):
        await extremes_test(dut, model, bins, seed)

    async def random(dut):
        await random_test(dut, model, bins, seed + 1)

    async def full_rate(dut):
        await full_rate_test(dut, model, seed + 1)

    async def coverage(dut):
        coverage_test(dut, bins)

    tests = []
    for func in (extremes, random, full_rate, coverage):
        func.__name__ = func.__qualname__ = f"{model.name}_{func.__name__}"
        func.__module__ = module
        tests.append(cocotb.test()(func))
    return tuple(tests)
