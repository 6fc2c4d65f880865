"""cocotb testbench of the GEMM unit (edgetron_gemm), run by test_runners.py.

Every invocation is regenerated from a seed, encoded with rtl.gemm.encode_gemm,
driven on the four input streams (cmd, a, w, ch) and collected from ``o`` with
random valid gaps and ready backpressure; results are decoded with decode_gemm and
compared bit for bit with golden.gemm (gemm_int for int32 mode, gemm_requant for
per-channel requantized int8). Runs without gaps or backpressure also check the
cycle count, command handshake to last output handshake (both included), against
sim.units.gemm.gemm_cycles; runs with input gaps but no backpressure check that the
compute and drain phases (last operand handshake to last output handshake) take
exactly the model's ``compute + drain`` cycles (gaps lengthen only the load). After the
expected output beats, every invocation watches ``o`` for a stray beat.

With ``EDGETRON_TB_SWEEP`` naming a JSON list of ``[M, K, N, out32]`` shapes, one more
test (``gemm_sweep``) measures each shape gap-free and writes the cycle counts to
``EDGETRON_TB_SWEEP_OUT`` (used by benchmarks/sim_vs_rtl.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from harness import (
    Clocking,
    GemmCase,
    GemmModel,
    Pause,
    Scoreboard,
    StreamSink,
    StreamSource,
    load_manifest,
)

from edgetron.golden.intops import INT8_MAX, M_MAX, S_MAX, S_MIN, int_range

MODEL = GemmModel(load_manifest()["config"])
CFG = MODEL.cfg
R, C = CFG.rows, CFG.cols
#: Conservative utilization the large-K run must reach (MACs / (R*C*(last out - load end))).
UTILIZATION_TARGET = 0.95
#: Magnitude the requantization shifts aim the int8 results at: half the int8 range.
_RESULT_TARGET = (INT8_MAX + 1) // 2
#: Mean square of an operand drawn uniformly from its range, relative to its largest square.
_UNIFORM_MEAN_SQUARE = 1 / 3
_INPUTS = ("cmd", "a", "w", "ch")


@dataclasses.dataclass(frozen=True)
class Spec:
    """One invocation to run: shape, output mode, operand kind and stream behaviour."""

    name: str
    m: int
    k: int
    n: int
    out32: bool
    gap: float = 0.0
    stall: float = 0.0
    #: Constant operands instead of random ones: ("min" | "max") for a and for w.
    extremes: tuple[str, str] | None = None
    seed: int = 0


def make_case(spec: Spec) -> GemmCase:
    """Operands of ``spec`` (random, or constant ``extremes``), and per-channel requant
    constants that spread the int8 results over the whole range (some saturate)."""
    rng = np.random.default_rng(spec.seed)
    a_lo, a_hi = int_range(CFG.input_bits)
    w_lo, w_hi = int_range(CFG.weight_bits)
    if spec.extremes is None:
        a = rng.integers(a_lo, a_hi + 1, (spec.m, spec.k))
        w = rng.integers(w_lo, w_hi + 1, (spec.k, spec.n))
    else:
        a_val = a_lo if spec.extremes[0] == "min" else a_hi
        w_val = w_lo if spec.extremes[1] == "min" else w_hi
        a = np.full((spec.m, spec.k), a_val, dtype=np.int64)
        w = np.full((spec.k, spec.n), w_val, dtype=np.int64)
    bias = rng.integers(-(1 << 16), 1 << 16, spec.n)
    mult = rng.integers(1 << 28, M_MAX + 1, spec.n)
    # |acc| is about max|a * w| * sqrt(K) / 3 for random operands (the product's spread
    # with uniform operands; K for constant ones, scaled alike); pick s so that this maps
    # to about _RESULT_TARGET, +-2 bits per channel: some channels saturate.
    typical = (abs(a_lo * w_lo) * (spec.k if spec.extremes else math.sqrt(spec.k))
               * _UNIFORM_MEAN_SQUARE)
    base = int(math.log2(float(M_MAX) * typical / _RESULT_TARGET))
    shift = np.clip(base + rng.integers(-2, 3, spec.n), S_MIN, S_MAX)
    return GemmCase(a, w, bias, mult, shift, spec.out32)


def _largest_k(m: int, n: int) -> int:
    """Largest multiple of R that fits with ``m`` rows and ``n`` columns."""
    k = R
    while MODEL.fits(m, k + R, n):
        k += R
    return k


def _specs() -> list[Spec]:
    kx = min(_largest_k(2, 2), 8 * R)  # extreme cases: long sums without a slow run
    fixed = [
        Spec("exact_tiles_int8", R, R, C, False),
        Spec("two_tiles_each_int32", 2 * R, 2 * R, 2 * C, True),
        Spec("ones", 1, 1, 1, False),
        Spec("tall_m_k1", 3 * R + 1, 1, 1, True, 0.2, 0.3),
        Spec("all_min_int32", 2, kx, 2, True, extremes=("min", "min")),
        Spec("all_max_int32", R + 1, kx, C + 1, True, 0.3, 0.3, extremes=("max", "max")),
        Spec("min_times_max_int8", 3, kx, C - 1 if C > 1 else 1, False, 0.1, 0.5,
             extremes=("min", "max")),
        Spec("all_max_int8", 2, R + 3, 2 * C + 1, False, extremes=("max", "max")),
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
    """The GEMM unit with one source per input stream and one sink."""

    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
        self.dut = dut
        self.clocking = Clocking(dut)
        self.gap, self.seed = gap, seed
        self.sink = StreamSink(dut, "o", self.clocking, Pause(stall, seed + 17))

    async def start(self) -> None:
        idle = [getattr(self.dut, f"{name}__valid") for name in _INPUTS] + [self.dut.o__ready]
        await self.clocking.start(idle)
        cocotb.start_soon(self.sink.run())

    async def invoke(self, cases: list[GemmCase], slack: float = 4.0):
        """Send the invocations back to back; returns (words per case, sources)."""
        beats = [MODEL.encode(c) for c in cases]
        sources = {name: StreamSource(self.dut, name, self.clocking,
                                      Pause(self.gap, self.seed + i))
                   for i, name in enumerate(_INPUTS)}
        for name, src in sources.items():
            cocotb.start_soon(src.send([w for b in beats for w in b[name]]))
        counts = [MODEL.out_beats(c) for c in cases]
        budget = sum(MODEL.cycles(c) for c in cases)
        factor = 1 / ((1 - self.gap) * (1 - self.sink.pause.p))
        words = await self.sink.receive(sum(counts), int(budget * factor * slack) + 200)
        await self.sink.expect_quiet(MODEL.quiet_cycles())
        split = np.cumsum([0, *counts])
        return [words[split[i]:split[i + 1]] for i in range(len(cases))], sources

    def check(self, what: str, case: GemmCase, words) -> None:
        Scoreboard(self.dut._log).compare(what, MODEL.decode(case, words), MODEL.expected(case))


def _rtl_cycles(sources, sink) -> int:
    """Command handshake to last output handshake, both included."""
    return sink.cycles[-1] - sources["cmd"].accepted[0] + 1


def _load_end(sources) -> int:
    """Cycle of the last operand handshake (the end of the load phase)."""
    return max(sources[name].accepted[-1] for name in ("a", "w", "ch"))


@cocotb.test()
@cocotb.parametrize(spec=[cocotb.Param(s, s.name) for s in SPECS])
async def gemm_case(dut, spec: Spec):
    """One invocation against golden. Without output backpressure, the compute and drain
    phases against sim.units.gemm; without any gaps, the whole invocation too."""
    case = make_case(spec)
    bench = Bench(dut, spec.gap, spec.stall, spec.seed)
    await bench.start()
    (words,), sources = await bench.invoke([case])
    bench.check(spec.name, case, words)
    if spec.stall == 0.0:
        # o.ready always high: compute starts the cycle after the last operand handshake.
        ph = MODEL.phases(case)
        busy = bench.sink.cycles[-1] - _load_end(sources)
        assert busy == ph.compute + ph.drain, (
            f"{spec.name}: last operand to last output took {busy} cycles, sim.units.gemm "
            f"says compute + drain = {ph.compute + ph.drain}")
    if spec.gap == 0.0 and spec.stall == 0.0:
        rtl = _rtl_cycles(sources, bench.sink)
        assert rtl == MODEL.cycles(case), (
            f"{spec.name}: RTL took {rtl} cycles, sim.units.gemm says {MODEL.cycles(case)}")
    assert int(dut.err.value) == 0


@cocotb.test()
async def gemm_back_to_back(dut):
    """Three invocations of different shapes and modes with no reset in between."""
    specs = [Spec("b2b0", R + 1, 2 * R - 1, C + 2, False, seed=101),
             Spec("b2b1", 2, 3, 1, True, seed=102),
             Spec("b2b2", 2 * R, R + 2, 2 * C - 1, False, seed=103)]
    specs = [s for s in specs if MODEL.fits(s.m, s.k, s.n)]
    cases = [make_case(s) for s in specs]
    bench = Bench(dut, gap=0.3, stall=0.4, seed=7)
    await bench.start()
    results, _ = await bench.invoke(cases)
    for spec, case, words in zip(specs, cases, results, strict=True):
        bench.check(spec.name, case, words)


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
    case = make_case(Spec("after_reject", 2, 3, 2, False, seed=5))
    (words,), _ = await bench.invoke([case])
    bench.check("after_reject", case, words)
    assert int(dut.err.value) == 0


@cocotb.test()
async def gemm_utilization(dut):
    """Large K, M = R, N = C: gap-free cycles equal sim.units.gemm, and the compute phase
    sustains R*C MACs per cycle (conservatively: load end to last output)."""
    k = _largest_k(R, C)
    case = make_case(Spec("large_k", R, k, C, True, seed=11))
    bench = Bench(dut)
    await bench.start()
    (words,), sources = await bench.invoke([case])
    bench.check("large_k", case, words)
    assert _rtl_cycles(sources, bench.sink) == MODEL.cycles(case)
    util = case.macs / (R * C * (bench.sink.cycles[-1] - _load_end(sources)))
    dut._log.info("K=%d: compute utilization >= %.4f", k, util)
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
            case = make_case(Spec(f"sweep{i}", m, k, n, bool(out32), seed=1000 + i))
            (words,), sources = await bench.invoke([case])
            bench.check(f"sweep{i}", case, words)
            rows.append({
                "m": m, "k": k, "n": n, "out32": bool(out32),
                "rtl_cycles": _rtl_cycles(sources, bench.sink),
                "sim_cycles": MODEL.cycles(case),
                "load_end_to_last_out": bench.sink.cycles[-1] - _load_end(sources),
            })
        Path(os.environ["EDGETRON_TB_SWEEP_OUT"]).write_text(json.dumps(rows, indent=1))
