"""cocotb testbench of the GEMM unit (edgetron_gemm), run by test_runners.py.

The model is tests/models/gemm.py, the same as the Amaranth tests': every invocation is
built from a seed, encoded with the codec of rtl.gemm and driven on the four input
streams (cmd, a, w, ch) with random valid gaps; ``o`` is taken with random ready
backpressure. An input monitor observes the accepted beats and rebuilds each invocation
(invocations overlap: the unit takes the next command and its operands while earlier
calls compute and drain), and the scoreboard compares its output beats bit for bit with
golden.gemm (gemm_int for int32 mode, gemm_requant for per-channel requantized int8).

Timing (:meth:`GemmModel.check_timing`): without gaps or backpressure every call of a
sequence, and the whole sequence from the first command handshake to the last output
handshake, takes exactly the simulator's cycles (sim.units.gemm.gemm_sequence); with
input gaps every output handshake is exactly the one the row-by-row schedule predicts
from the observed input handshakes; with backpressure none comes earlier. After the
expected output beats, every run watches ``o`` for a stray beat.

``gemm_case`` runs one call on a freshly reset unit per spec; ``gemm_sequence`` runs
random back-to-back sequences in both output modes, full rate, with gaps and with
backpressure, and the extremes back to back in the slots.

With ``EDGETRON_TB_SWEEP`` naming a JSON file ``{"shapes": [[M, K, N, out32], ...],
"repeat": r}``, one more test (``gemm_sweep``) runs each shape on its own and then ``r``
times back to back, and writes the cycle counts to ``EDGETRON_TB_SWEEP_OUT`` (used by
benchmarks/sim_vs_rtl.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from harness import Clocking, InputMonitor, Pause, StreamSink, StreamSource, load_manifest

from edgetron.config import AcceleratorConfig
from tests.models.gemm import (
    INPUTS,
    SEQ_COLUMNS,
    GemmModel,
    GemmMonitor,
    GemmScoreboard,
    extreme_call,
    random_call,
    rounding_ties,
    tie_call,
)

MODEL = GemmModel(AcceleratorConfig.from_dict(load_manifest()["config"], source="manifest"))
CFG = MODEL.cfg
R, C = CFG.rows, CFG.cols
#: End-to-end utilization that back-to-back large-K calls must reach (MACs / (R * C *
#: cycles), first command handshake to last output handshake).
UTILIZATION_TARGET = 0.95


@dataclasses.dataclass(frozen=True)
class Spec:
    """One invocation to run: shape, output mode, operands and stream behaviour.

    ``kind``: ``"random"`` operands, ``"ties"`` (products exactly on .5 before rounding,
    int8 only), or ``"min"/"max"`` pairs for ``a`` and ``w`` (every operand at that end).
    """

    name: str
    m: int
    k: int
    n: int
    out32: bool
    gap: float = 0.0
    stall: float = 0.0
    kind: str | tuple[str, str] = "random"
    seed: int = 0


def make_call(spec: Spec):
    """The operands of ``spec``."""
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "random":
        return random_call(MODEL, rng, spec.m, spec.k, spec.n, spec.out32)
    if spec.kind == "ties":
        return tie_call(MODEL, rng, spec.m, spec.k, spec.n)
    return extreme_call(MODEL, spec.m, spec.k, spec.n, *spec.kind, spec.out32, seed=spec.seed)


def _random_shape(rng) -> tuple[int, int, int]:
    while True:
        m, k, n = (int(x) for x in rng.integers(1, [3 * R + 2, 4 * R + 3, 3 * C + 2]))
        if MODEL.fits(m, k, n):
            return m, k, n


def _specs() -> list[Spec]:
    k_big = MODEL.largest_k(R, C)          # fills the A and W slots for M = R, N = C
    kx = min(MODEL.largest_k(R + 1, C + 1), 8 * R)
    fm, fk, fn = MODEL.full_buffer_shape()
    fixed = [
        Spec("exact_tiles_int8", R, R, C, False),
        Spec("two_tiles_each_int32", 2 * R, 2 * R, 2 * C, True),
        Spec("ones", 1, 1, 1, False),
        Spec("tall_m_k1", 3 * R + 1, 1, 1, True, 0.2, 0.3),
        # Every operand at an extreme over the largest K: sums of 2**24 and more, which a
        # narrower accumulator, partial sum or buffer wraps.
        Spec("all_min_large_k_int32", R, k_big, C, True, kind=("min", "min")),
        Spec("min_times_max_large_k_int32", R, k_big, C, True, kind=("min", "max")),
        Spec("all_min_large_k_int8", R, k_big, C, False, 0.2, 0.3, kind=("min", "min")),
        Spec("all_max_int32", R + 1, kx, C + 1, True, 0.3, 0.3, kind=("max", "max")),
        Spec("min_times_max_int8", 3, kx, C - 1 if C > 1 else 1, False, 0.1, 0.5,
             kind=("min", "max")),
        Spec("all_max_int8", 2, R + 3, 2 * C + 1, False, kind=("max", "max")),
        # int8 results whose products land exactly on .5: golden rounds half up.
        Spec("rounding_ties_int8", 2 * R + 1, 5, 2 * C + 1, False, kind="ties", seed=31),
        Spec("rounding_ties_gaps_int8", R + 3, 7, C + 2, False, 0.3, 0.3, kind="ties", seed=32),
        # The A and W slots and the parameter memory of a slot (and, when it fits, the
        # accumulator buffer) filled to the last word.
        Spec("full_buffers_int8", fm, fk, fn, False, seed=33),
        Spec("gaps_only_int8", 2 * R + 1, 3 * R - 1, 2 * C - 1, False, gap=0.4, seed=21),
        Spec("gaps_only_int32", R + 2, 2 * R + 1, C + 1, True, gap=0.25, seed=22),
    ]
    # An array of two columns has a parameter memory of few column tiles: the fixed
    # shapes' N is cut to what fits (a no-op wherever they fit as they are).
    fixed = [dataclasses.replace(s, n=min(s.n, MODEL.limits.n_max)) for s in fixed]
    rng = np.random.default_rng(R * 1000 + C)
    random_specs = []
    for i in range(20):
        m, k, n = _random_shape(rng)
        # Every third case runs gap-free (and so checks the cycle count).
        gap, stall = (0.0, 0.0) if i % 3 == 0 else (float(rng.uniform(0.1, 0.5)),
                                                   float(rng.uniform(0.1, 0.7)))
        out32 = bool(i % 2)
        random_specs.append(Spec(f"rand{i}_m{m}k{k}n{n}_{'i32' if out32 else 'i8'}",
                                 m, k, n, out32, gap, stall, seed=i + 1))
    for s in fixed + random_specs:
        assert MODEL.fits(s.m, s.k, s.n), f"{s.name} does not fit {CFG}"
    return fixed + random_specs


SPECS = _specs()


@dataclasses.dataclass(frozen=True)
class Sequence:
    """Calls back to back, with one stream behaviour for the whole sequence."""

    name: str
    calls: tuple[Spec, ...]
    gap: float = 0.0
    stall: float = 0.0
    seed: int = 0
    #: ``o.ready`` low from the start for as long as the sequence takes at full rate: the
    #: output FIFO fills to its credits, the issue waits, and every beat still arrives.
    hold_output: bool = False


def _sequences() -> list[Sequence]:
    out = []
    for j, (gap, stall) in enumerate(((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.35, 0.0),
                                      (0.0, 0.5), (0.3, 0.6))):
        rng = np.random.default_rng(7000 + 17 * R + C + j)
        calls = tuple(Spec(f"s{j}c{i}", *_random_shape(rng), bool(rng.integers(0, 2)),
                           seed=100 * j + i) for i in range(6))
        behaviour = "full_rate" if gap == stall == 0.0 else (
            "gaps" if stall == 0.0 else "gaps_backpressure" if gap else "backpressure")
        out.append(Sequence(f"random{j}_{behaviour}", calls, gap, stall, seed=j))
    k_big = MODEL.largest_k(R, C)
    fm, fk, fn = MODEL.full_buffer_shape()
    out += [
        # The extremes back to back: each call fills its slot's A and W halves.
        Sequence("extremes_large_k", (
            Spec("x0", R, k_big, C, True, kind=("min", "min")),
            Spec("x1", R, k_big, C, False, kind=("min", "max"), seed=1),
            Spec("x2", R, k_big, C, True, kind=("max", "max")))),
        Sequence("full_slots", tuple(Spec(f"f{i}", fm, fk, fn, bool(i % 2), seed=40 + i)
                                     for i in range(3))),
        Sequence("full_slots_gaps_backpressure",
                 tuple(Spec(f"g{i}", fm, fk, fn, bool(i % 2), seed=50 + i) for i in range(3)),
                 gap=0.2, stall=0.3, seed=9),
        Sequence("full_slots_output_held",
                 tuple(Spec(f"h{i}", fm, fk, fn, bool(i % 2), seed=60 + i) for i in range(3)),
                 hold_output=True),
    ]
    return out


SEQUENCES = _sequences()


class Bench:
    """The GEMM unit with one source per input stream, an input monitor, the model's
    invocation monitor and scoreboard, and one sink."""

    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 0,
                 hold: int = 0):
        self.dut = dut
        self.clocking = Clocking(dut)
        self.gap, self.seed = gap, seed
        self.board = GemmScoreboard(MODEL)
        self.monitor = GemmMonitor(MODEL, self.board)
        self.sink = StreamSink(dut, "o", self.clocking, Pause(stall, seed + 17, hold),
                               on_beat=self._output)

    def _output(self, word: int, cycle: int) -> None:
        self.board.output(word, cycle)
        self.board.check_stray()

    async def start(self) -> None:
        idle = [getattr(self.dut, f"{name}__valid") for name in INPUTS] + [self.dut.o__ready]
        await self.clocking.start(idle)
        cocotb.start_soon(self.sink.run())
        cocotb.start_soon(InputMonitor(self.dut, INPUTS, self.clocking,
                                       self.monitor.accept).run())

    async def invoke(self, calls, slack: float = 4.0):
        """Send the invocations back to back; returns the scoreboard's invocations (each
        already compared with golden)."""
        beats = [MODEL.encode(c) for c in calls]
        for i, name in enumerate(INPUTS):
            source = StreamSource(self.dut, name, self.clocking, Pause(self.gap, self.seed + i))
            cocotb.start_soon(source.send([w for b in beats for w in b[name]]))
        done = len(self.board.results())
        count = sum(MODEL.beats(c.m, c.k, c.n)["o"] for c in calls)
        budget = sum(MODEL.cycles(c) for c in calls)
        factor = 1 / ((1 - self.gap) * (1 - self.sink.pause.p))
        await self.sink.receive(count, int(budget * factor * slack) + 200)
        await self.sink.expect_quiet(MODEL.quiet_cycles())
        self.monitor.check_idle()
        assert self.board.finished(), "the scoreboard is still waiting for output beats"
        runs = self.board.results()[done:]
        assert len(runs) == len(calls)
        for inv, call in zip(runs, calls, strict=True):
            for field in call._fields:
                assert np.array_equal(getattr(inv.call, field), getattr(call, field)), field
            self.dut._log.info("%s: %d values match golden", tuple(inv.command), inv.result.size)
        return runs


@cocotb.test()
@cocotb.parametrize(spec=[cocotb.Param(s, s.name) for s in SPECS])
async def gemm_case(dut, spec: Spec):
    """One invocation on a freshly reset unit against golden, and its timing."""
    call = make_call(spec)
    if spec.kind == "ties":
        ties = rounding_ties(MODEL.expected(call._replace(out32=True)), call.mult, call.shift)
        assert ties["even"] and ties["negative"], ties
    bench = Bench(dut, spec.gap, spec.stall, spec.seed)
    await bench.start()
    runs = await bench.invoke([call])
    MODEL.check_timing([call], runs, gaps=spec.gap > 0, backpressure=spec.stall > 0)
    assert int(dut.err.value) == 0


@cocotb.test()
@cocotb.parametrize(seq=[cocotb.Param(s, s.name) for s in SEQUENCES])
async def gemm_sequence(dut, seq: Sequence):
    """Calls back to back, overlapping in the unit: every result golden, and the timing
    of every call and of the whole sequence (exact without gaps and backpressure)."""
    calls = [make_call(s) for s in seq.calls]
    hold = (int(MODEL.sequence(calls)[-1, SEQ_COLUMNS.index("out_last")]) + 1
            if seq.hold_output else 0)
    bench = Bench(dut, seq.gap, seq.stall, seq.seed, hold)
    await bench.start()
    runs = await bench.invoke(calls)
    MODEL.check_timing(calls, runs, gaps=seq.gap > 0, backpressure=seq.stall > 0 or hold > 0)
    if seq.gap == seq.stall == 0.0 and not hold:
        # The next command is taken before the previous call's last output.
        assert all(nxt.cmd_at < prev.end for prev, nxt in itertools.pairwise(runs))


@cocotb.test()
async def gemm_rejects_bad_shapes(dut):
    """A zero dimension, or a shape whose operands overflow the buffers, raises ``err``
    and produces nothing; the next good command is accepted and clears ``err``."""
    m_max, k_max, n_max = MODEL.max_shape()
    assert not MODEL.fits(m_max, k_max, n_max)
    bench = Bench(dut)
    await bench.start()
    clk = bench.clocking.clk
    cmd = StreamSource(dut, "cmd", bench.clocking)
    for m, k, n in ((0, 3, 2), (2, 0, 2), (2, 3, 0), (m_max, k_max, n_max)):
        await cmd.send([MODEL.command_word(m, k, n, True)])
        await ClockCycles(clk, 4)
        await FallingEdge(clk)
        await ReadOnly()
        assert int(dut.err.value) == 1, f"err not raised for M={m}, K={k}, N={n}"
        assert int(dut.cmd__ready.value) == 1, "unit not ready for a new command"
    assert not bench.sink.beats, "output produced for a rejected command"
    assert [inv.accepted for inv in bench.board.invocations] == [False] * 4
    await bench.invoke([make_call(Spec("after_reject", 2, 3, 2, False, seed=5))])
    assert int(dut.err.value) == 0


@cocotb.test()
async def gemm_utilization(dut):
    """Three calls back to back, M = R, N = C and the largest K, at full input rate: their
    cycles are sim.units.gemm.gemm_sequence's, and from the first command handshake to
    the last output handshake the array does at least 95 % of R * C MACs per cycle."""
    k = MODEL.largest_k(R, C, step=R)
    calls = [make_call(Spec(f"large_k{i}", R, k, C, bool(i % 2), seed=11 + i))
             for i in range(3)]
    bench = Bench(dut)
    await bench.start()
    runs = await bench.invoke(calls)
    MODEL.check_timing(calls, runs, gaps=False, backpressure=False)
    cycles = runs[-1].end - runs[0].cmd_at + 1
    util = sum(c.macs for c in calls) / (R * C * cycles)
    dut._log.info("3 x (M=%d, K=%d, N=%d): end-to-end utilization %.4f", R, k, C, util)
    assert util >= UTILIZATION_TARGET, f"utilization {util:.4f} < {UTILIZATION_TARGET}"


if os.environ.get("EDGETRON_TB_SWEEP"):

    @cocotb.test()
    async def gemm_sweep(dut):
        """Cycles of every shape of EDGETRON_TB_SWEEP alone and back to back (results
        checked too), at full input rate."""
        spec = json.loads(Path(os.environ["EDGETRON_TB_SWEEP"]).read_text())
        bench = Bench(dut)
        await bench.start()
        rows = []
        for i, (m, k, n, out32) in enumerate(spec["shapes"]):
            alone = [make_call(Spec(f"sweep{i}", m, k, n, bool(out32), seed=1000 + i))]
            runs = await bench.invoke(alone)
            MODEL.check_timing(alone, runs, gaps=False, backpressure=False)
            calls = [make_call(Spec(f"sweep{i}_{j}", m, k, n, bool(out32), seed=2000 + i + j))
                     for j in range(spec["repeat"])]
            seq = await bench.invoke(calls)
            MODEL.check_timing(calls, seq, gaps=False, backpressure=False)
            rows.append({
                "m": m, "k": k, "n": n, "out32": bool(out32),
                "rtl_cycles": runs[0].cycles, "sim_cycles": MODEL.cycles(alone[0]),
                "repeat": spec["repeat"],
                "rtl_sequence_cycles": seq[-1].end - seq[0].cmd_at + 1,
                "sim_sequence_cycles": int(MODEL.sequence(calls)[-1, -1]) + 1,
            })
        Path(os.environ["EDGETRON_TB_SWEEP_OUT"]).write_text(json.dumps(rows, indent=1))
