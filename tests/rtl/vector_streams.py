"""Stream driver for the vector-unit Amaranth tests: one simulation streams many beats.

:func:`run_streams` offers a sequence of ``(stream, payload)`` items to a unit's input
streams in order (one item at a time, random gaps between items when asked), takes the
``o`` beats with a random ``ready`` and checks the output rule on every cycle: a beat that
was offered and not taken is offered again, unchanged. It records the cycle of every
handshake so that the tests can measure cycles exactly.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from amaranth.sim import Simulator


class StreamRun(NamedTuple):
    """What :func:`run_streams` observed."""

    out: list[int]                   #: o payloads in order
    in_cycles: dict[str, list[int]]  #: handshake cycles per input stream
    out_cycles: list[int]            #: handshake cycles of o


def run_streams(dut, items, n_out: int, *, p_gap: float = 0.0, p_stall: float = 0.0,
                seed: int = 0, max_cycles: int | None = None) -> StreamRun:
    """Drive ``items`` (``(stream name, payload int)``) into ``dut`` and collect ``n_out`` beats.

    ``p_gap``: probability of an idle cycle before each item; ``p_stall``: probability that
    ``o.ready`` is low on a cycle. Fails when the output rule is broken, when more than
    ``n_out`` beats appear, or after ``max_cycles`` cycles.
    """
    rng = random.Random(seed)
    names = sorted({name for name, _ in items})
    out: list[int] = []
    in_cycles: dict[str, list[int]] = {name: [] for name in names}
    out_cycles: list[int] = []
    limit = max_cycles if max_cycles is not None else 50 * (len(items) + n_out) + 2000

    async def bench(ctx):
        ports = {name: getattr(dut, name) for name in names}
        readies = [ports[name].ready for name in names]
        idx, offering, cycle = 0, None, 0
        held = None
        while True:
            if offering is None and idx < len(items) and not (p_gap and rng.random() < p_gap):
                offering, word = items[idx]
                ctx.set(ports[offering].valid, 1)
                ctx.set(ports[offering].payload.as_value(), word)
            take = len(out) < n_out and not (p_stall and rng.random() < p_stall)
            ctx.set(dut.o.ready, take)
            sampled = await ctx.tick().sample(*readies, dut.o.valid, dut.o.payload.as_value())
            ready = dict(zip(names, sampled[2:2 + len(names)], strict=True))
            o_valid, o_payload = sampled[-2], sampled[-1]
            if held is not None:
                assert o_valid and o_payload == held, f"cycle {cycle}: held o beat changed"
            held = None
            if o_valid:
                if take:
                    out.append(o_payload)
                    out_cycles.append(cycle)
                else:
                    held = o_payload
                    assert len(out) <= n_out
            if offering is not None and ready[offering]:
                in_cycles[offering].append(cycle)
                ctx.set(ports[offering].valid, 0)
                offering = None
                idx += 1
            cycle += 1
            if len(out) == n_out and idx == len(items):
                # a few more cycles: no stray beat may follow
                ctx.set(dut.o.ready, 1)
                for _ in range(8):
                    o_valid = (await ctx.tick().sample(dut.o.valid))[-1]
                    assert not o_valid, "stray o beat after the expected ones"
                return
            assert cycle < limit, f"no progress after {cycle} cycles ({len(out)}/{n_out} out)"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return StreamRun(out, in_cycles, out_cycles)


def segment_cycles(run: StreamRun, in_counts, out_counts, stream: str = "i") -> list[int]:
    """Cycles of each segment, first ``stream`` handshake to last ``o`` handshake, inclusive;
    segment ``k`` has ``in_counts[k]`` input and ``out_counts[k]`` output beats."""
    res = []
    i0 = o0 = 0
    for ni, no in zip(in_counts, out_counts, strict=True):
        res.append(run.out_cycles[o0 + no - 1] - run.in_cycles[stream][i0] + 1)
        i0 += ni
        o0 += no
    return res
