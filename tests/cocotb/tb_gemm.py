"""cocotb testbench of the GEMM unit (edgetron_gemm), run by test_runners.py.

The model is tests/models/gemm.py, the same as the Amaranth tests': every invocation is
built from a seed, encoded with the codec of rtl.gemm and driven on the four input
streams (cmd, a, w, ch) with random valid gaps; ``o`` is taken with random ready
backpressure. An input monitor observes the accepted beats and rebuilds each invocation
(so invocations may overlap), and the scoreboard compares its output beats bit for bit
with golden.gemm (gemm_int for int32 mode, gemm_requant for per-channel requantized int8).

Timing: runs without gaps or backpressure check the cycle count, command handshake to last
output handshake (both included), against sim.units.gemm.gemm_cycles; runs with input gaps
but no backpressure check that the compute and drain phases (last operand handshake to last
output handshake) take exactly the model's ``compute + drain`` cycles (gaps lengthen only
the load). After the expected output beats, every run watches ``o`` for a stray beat.

With ``EDGETRON_TB_SWEEP`` naming a JSON list of ``[M, K, N, out32]`` shapes, one more
test (``gemm_sweep``) measures each shape gap-free and writes the cycle counts to
``EDGETRON_TB_SWEEP_OUT`` (used by benchmarks/sim_vs_rtl.py).
"""

from __future__ import annotations

import dataclasses
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
#: Conservative utilization the large-K run must reach (MACs / (R*C*(last out - load end))).
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


def _specs() -> list[Spec]:
    k_big = MODEL.largest_k(R, C)          # fills the A and W buffers for M = R, N = C
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
        # The A and W buffers and the parameter memory (and, when it fits, the accumulator
        # buffer) filled to the last word (the Amaranth tests add gaps and int32 mode).
        Spec("full_buffers_int8", fm, fk, fn, False, seed=33),
        Spec("gaps_only_int8", 2 * R + 1, 3 * R - 1, 2 * C - 1, False, gap=0.4, seed=21),
        Spec("gaps_only_int32", R + 2, 2 * R + 1, C + 1, True, gap=0.25, seed=22),
    ]
    rng = np.random.default_rng(R * 1000 + C)
    random_specs = []
    while len(random_specs) < 20:
        m, k, n = (int(x) for x in rng.integers(1, [3 * R + 2, 4 * R + 3, 3 * C + 2]))
        if not MODEL.fits(m, k, n):
            continue
        i = len(random_specs)
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


class Bench:
    """The GEMM unit with one source per input stream, an input monitor, the model's
    invocation monitor and scoreboard, and one sink."""

    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
        self.dut = dut
        self.clocking = Clocking(dut)
        self.gap, self.seed = gap, seed
        self.board = GemmScoreboard(MODEL)
        self.monitor = GemmMonitor(MODEL, self.board)
        self.sink = StreamSink(dut, "o", self.clocking, Pause(stall, seed + 17),
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


def check_timing(spec: Spec, inv) -> None:
    """Without output backpressure, the compute and drain phases against sim.units.gemm;
    without any gaps, the whole invocation too."""
    if spec.stall == 0.0:
        # o.ready always high: compute starts the cycle after the last operand handshake.
        ph = MODEL.phases(inv.call)
        assert inv.busy == ph.compute + ph.drain, (
            f"{spec.name}: last operand to last output took {inv.busy} cycles, sim.units.gemm "
            f"says compute + drain = {ph.compute + ph.drain}")
    if spec.gap == 0.0 and spec.stall == 0.0:
        assert inv.cycles == MODEL.cycles(inv.call), (
            f"{spec.name}: RTL took {inv.cycles} cycles, sim.units.gemm says "
            f"{MODEL.cycles(inv.call)}")


@cocotb.test()
@cocotb.parametrize(spec=[cocotb.Param(s, s.name) for s in SPECS])
async def gemm_case(dut, spec: Spec):
    """One invocation against golden, and its timing (:func:`check_timing`)."""
    call = make_call(spec)
    if spec.kind == "ties":
        ties = rounding_ties(MODEL.expected(call._replace(out32=True)), call.mult, call.shift)
        assert ties["even"] and ties["negative"], ties
    bench = Bench(dut, spec.gap, spec.stall, spec.seed)
    await bench.start()
    (inv,) = await bench.invoke([call])
    check_timing(spec, inv)
    assert int(dut.err.value) == 0


@cocotb.test()
async def gemm_back_to_back(dut):
    """Three invocations of different shapes and modes with no reset in between."""
    specs = [Spec("b2b0", R + 1, 2 * R - 1, C + 2, False, seed=101),
             Spec("b2b1", 2, 3, 1, True, seed=102),
             Spec("b2b2", 2 * R, R + 2, 2 * C - 1, False, seed=103)]
    calls = [make_call(s) for s in specs if MODEL.fits(s.m, s.k, s.n)]
    bench = Bench(dut, gap=0.3, stall=0.4, seed=7)
    await bench.start()
    await bench.invoke(calls)


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
    """Large K, M = R, N = C: gap-free cycles equal sim.units.gemm, and the compute phase
    sustains R*C MACs per cycle (conservatively: load end to last output)."""
    call = make_call(Spec("large_k", R, MODEL.largest_k(R, C), C, True, seed=11))
    bench = Bench(dut)
    await bench.start()
    (inv,) = await bench.invoke([call])
    assert inv.cycles == MODEL.cycles(call)
    util = call.macs / (R * C * inv.busy)
    dut._log.info("K=%d: compute utilization >= %.4f", call.k, util)
    assert util >= UTILIZATION_TARGET, f"utilization {util:.4f} < {UTILIZATION_TARGET}"


if os.environ.get("EDGETRON_TB_SWEEP"):

    @cocotb.test()
    async def gemm_sweep(dut):
        """Gap-free cycles of every shape of EDGETRON_TB_SWEEP (results checked too)."""
        shapes = json.loads(Path(os.environ["EDGETRON_TB_SWEEP"]).read_text())
        bench = Bench(dut)
        await bench.start()
        rows = []
        for i, (m, k, n, out32) in enumerate(shapes):
            (inv,) = await bench.invoke([make_call(Spec(f"sweep{i}", m, k, n, bool(out32),
                                                        seed=1000 + i))])
            rows.append({
                "m": m, "k": k, "n": n, "out32": bool(out32),
                "rtl_cycles": inv.cycles,
                "sim_cycles": MODEL.cycles(inv.call),
                "load_end_to_last_out": inv.busy,
            })
        Path(os.environ["EDGETRON_TB_SWEEP_OUT"]).write_text(json.dumps(rows, indent=1))
