"""Amaranth-simulator bench of the vector units, built from the shared stream helpers.

:func:`run_segments` drives the segments of a unit model (tests/models/<unit>.py) into
the unit, one segment after the other and each segment's streams in order (constants,
parameters, data: a unit takes a constants beat only once it is empty, so the streams
cannot run independently), every beat with a :class:`~tests.rtl.streams.StreamSource`
(random valid gaps); takes ``o`` with a :class:`~tests.rtl.streams.StreamSink` (random
backpressure, the stream rule); observes every accepted input beat with a
:class:`~tests.rtl.streams.HandshakeMonitor` feeding the model's input monitor, and every
output beat into its scoreboard (golden, bit for bit); and ends with
:func:`~tests.rtl.streams.run`'s quiet window (no stray beat). Segments run at full rate
(no gaps, no backpressure) can then be checked cycle for cycle against the model.
"""

from __future__ import annotations

import random

from ..models.vector import Coverage, VectorModel, VectorMonitor, VectorScoreboard
from .streams import HandshakeMonitor, StreamSink, StreamSource, run

__all__ = ["run_segments"]


def run_segments(dut, model: VectorModel, segments, *, gap: float = 0.0, stall: float = 0.0,
                 seed: int = 0, coverage: Coverage | None = None) -> VectorScoreboard:
    """Run ``segments`` through ``dut``; return the scoreboard (every segment compared).

    ``gap``: probability of an idle input cycle before a beat; ``stall``: of ``o.ready``
    low. With ``coverage``, every segment compared is sampled into it.
    """
    segments = list(segments)
    on_check = None if coverage is None else (
        lambda inv, got: coverage.sample(model.cover(inv.seg, inv.data, got)))
    board = VectorScoreboard(model, on_check)
    monitor = VectorMonitor(model, segments, board)
    rng = random.Random(seed)
    sources = []

    async def driver(ctx):
        for seg in segments:
            for name, words in model.const_words(seg).items():
                src = StreamSource(getattr(dut, name), words, gap=gap, seed=rng.random())
                sources.append(src)
                await src.run(ctx)
            src = StreamSource(dut.i, model.in_words(seg), gap=gap, seed=rng.random())
            sources.append(src)
            await src.run(ctx)

    sink = StreamSink(dut.o, stall=stall, seed=seed + 1, on_beat=board.on_out)
    inputs = {name: getattr(dut, name) for name in model.inputs}
    watch = HandshakeMonitor(inputs, monitor.on_beat)
    total = sum(model.out_beats(seg) for seg in segments)
    beats = sum(max(model.in_beats(seg), model.out_beats(seg)) for seg in segments)
    run(dut, sinks=[sink], monitors=[watch], testbenches=[driver],
        until=lambda: len(sink.beats) >= total, quiet=model.quiet_cycles(),
        max_cycles=100 * beats + 20 * len(segments) * model.quiet_cycles() + 1000)
    if board.pending or len(board.done) != len(segments):
        raise AssertionError(f"{len(board.done)} of {len(segments)} segments compared")
    unsent = [len(s.words) - len(s.accepted) for s in sources if not s.done]
    if unsent:
        raise AssertionError(f"{sum(unsent)} input beat(s) were never taken")
    return board
