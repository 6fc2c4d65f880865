"""GemmUnit in the Amaranth simulator: bit-exact with golden, cycle-exact with sim.units.gemm."""

from __future__ import annotations

import gc
import itertools
import math
import random
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, Signal, UnusedElaboratable
from amaranth.sim import Simulator

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.golden.gemm import accumulator_bound, check_accumulator, gemm_int, gemm_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX
from edgetron.hw.gemm import REQUANT_LATENCY, gemm_buffer_words, gemm_fits, gemm_max_shape
from edgetron.rtl.gemm import (
    GemmUnit,
    _ceil_div_const,
    check_shape,
    decode_gemm,
    encode_gemm,
    gemm_limits,
    shape_fits,
)
from edgetron.rtl.layouts import MAX_BUFFER_WORDS, MAX_EDGE, MAX_PES, gemm_layouts
from edgetron.rtl.pe import PE
from edgetron.rtl.requant import Requantizer
from edgetron.rtl.systolic import SystolicArray
from edgetron.sim.units.gemm import (
    gemm_cycles,
    gemm_phases,
)


def small_config(rows=4, cols=4, dataflow="ws", ifmap=1024, weight=1024, ofmap=1024, **kw):
    """A small config (tiny SRAMs keep the simulated memories cheap)."""
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=ifmap,
                             weight_sram_bytes=weight, ofmap_sram_bytes=ofmap, **kw)


class Run(NamedTuple):
    """Outcome of one simulated invocation.

    ``cycles``: first input handshake .. last output handshake, both included (what
    ``sim.units.gemm.gemm_cycles`` predicts); ``busy``: first cycle after the last operand
    beat .. last output handshake, included (the compute and drain phases).
    """

    out: np.ndarray
    cycles: int
    busy: int
    start: int              # cycle of the command handshake
    loaded: int             # cycle of the last operand handshake
    end: int                # cycle of the last output handshake
    out_at: list[int]       # cycle of each output handshake, in beat order


def quiet_cycles(config) -> int:
    """Cycles watched after the last expected output beat for a stray one: longer than a
    beat can stay in the unit (the longest drain, os: ``2R + C + LAT``), plus a margin."""
    return 2 * config.rows + config.cols + REQUANT_LATENCY + 16


def simulate(dut, config, jobs, *, gap=0.0, stall=0.0, seed=0, max_cycles=200_000):
    """Drive invocations back to back and collect their outputs.

    ``jobs`` is a list of ``(beats, m, n, out32)`` with ``beats`` from encode_gemm; each
    stream sends the beats of all jobs in order. ``gap`` is the probability that a source
    holds ``valid`` low on a cycle, ``stall`` the probability that the sink holds
    ``ready`` low. After the last expected output beat, ``o.valid`` must stay low for
    :func:`quiet_cycles` cycles (no stray beat). Returns one :class:`Run` per job.
    """
    rng = random.Random(seed)
    n_out = [-(-n // config.cols) * m for _, m, n, _ in jobs]
    words, cmd_at, out_at = [], [], []
    loaded_at = {}     # job index -> cycle of its last operand handshake
    quiet = quiet_cycles(config)

    def source(port, payloads):
        async def bench(ctx):
            for word in payloads:
                while gap and rng.random() < gap:
                    ctx.set(port.valid, 0)
                    await ctx.tick()
                ctx.set(port.payload.as_value(), word)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)
        return bench

    async def sink(ctx):
        while True:
            ctx.set(dut.o.ready, 0 if (stall and rng.random() < stall) else 1)
            await ctx.tick()

    async def monitor(ctx):
        cycle = 0
        operand_hs = ((dut.a.valid & dut.a.ready) | (dut.w.valid & dut.w.ready)
                      | (dut.ch.valid & dut.ch.ready))
        async for _, _, cmd_hs, in_hs, o_valid, o_ready, o_word in ctx.tick().sample(
                dut.cmd.valid & dut.cmd.ready, operand_hs, dut.o.valid, dut.o.ready,
                dut.o.payload.as_value()):
            if len(words) == sum(n_out):          # every expected beat seen: watch for more
                if o_valid:
                    raise AssertionError(
                        f"stray output beat {cycle - out_at[-1]} cycles after the last of "
                        f"the {len(words)} expected ones")
                if cycle - out_at[-1] == quiet:
                    return
            if cmd_hs:
                cmd_at.append(cycle)
            if in_hs:
                loaded_at[len(cmd_at) - 1] = cycle
            if o_valid and o_ready:
                words.append(o_word)
                out_at.append(cycle)
            cycle += 1
            if cycle > max_cycles:
                raise AssertionError(f"no completion after {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for name in ("cmd", "a", "w", "ch"):
        sim.add_testbench(source(getattr(dut, name), [x for job in jobs for x in job[0][name]]))
    sim.add_testbench(sink, background=True)
    sim.add_testbench(monitor)
    sim.run()
    runs, done = [], 0
    for j, (_, m, n, out32) in enumerate(jobs):
        beats = slice(done, done + n_out[j])
        last = out_at[beats][-1]
        out = decode_gemm(config, words[beats], m, n, out32)
        runs.append(Run(out, last - cmd_at[j] + 1, last - loaded_at[j], cmd_at[j],
                        loaded_at[j], last, out_at[beats]))
        done += n_out[j]
    return runs


def random_case(rng, m, k, n):
    """Random int8 operands, per-channel bias/m/s within golden's limits."""
    a = rng.integers(INT8_MIN, INT8_MAX + 1, (m, k))
    w = rng.integers(INT8_MIN, INT8_MAX + 1, (k, n))
    bias = rng.integers(-(1 << 20), 1 << 20, n)
    mult = rng.integers(1 << 28, 1 << 31, n)
    shift = rng.integers(30, 45, n)
    return a, w, bias, mult, shift


def golden(a, w, bias, mult, shift, out32):
    return gemm_int(a, w, bias) if out32 else gemm_requant(a, w, bias, mult, shift)


def check_cycles(config, run, m, k, n, out32, *, gap, stall):
    """The timing the controller guarantees (docs/rtl.md), asserted exactly.

    With ``o.ready`` always high: compute starts the cycle after the last operand
    handshake, so the compute and drain phases take exactly the model's cycles however
    the operands arrived (input gaps lengthen only the load phase); without input gaps
    the whole invocation takes ``gemm_cycles``. Output backpressure stalls the core, so
    it only bounds the run from below.
    """
    p = config.sim_params()
    ph = gemm_phases(p, m, k, n, out32)
    load = run.loaded - run.start - ph.cmd + 1       # cycles of the load phase
    assert load >= max(ph.a_beats, ph.w_beats, ph.ch_beats)
    if stall:
        assert run.busy >= ph.compute + ph.drain
        return
    assert run.busy == ph.compute + ph.drain, (run.busy, ph)
    if not gap:
        assert run.cycles == gemm_cycles(p, m, k, n, out32)


def assert_same_output_timing(steady, gappy):
    """Input gaps only delay the load: measured from the last operand handshake, the
    output beats of a run with gaps come in exactly the cycles of a run without."""
    assert gappy.loaded - gappy.start > steady.loaded - steady.start   # the gaps did delay
    assert ([t - steady.loaded for t in steady.out_at]
            == [t - gappy.loaded for t in gappy.out_at])


def run_case(config, m, k, n, out32, *, seed=0, gap=0.0, stall=0.0, dut=None):
    rng = np.random.default_rng(seed)
    a, w, bias, mult, shift = random_case(rng, m, k, n)
    beats = encode_gemm(config, a, w, bias, mult, shift, out32)
    dut = GemmUnit(config) if dut is None else dut
    (run,) = simulate(dut, config, [(beats, m, n, out32)], gap=gap, stall=stall, seed=seed)
    np.testing.assert_array_equal(run.out, golden(a, w, bias, mult, shift, out32))
    check_cycles(config, run, m, k, n, out32, gap=gap, stall=stall)
    return run


def random_shape(rng, config, limit):
    """A random shape that fits the unit, dimensions in 1..limit (often not multiples)."""
    lim = gemm_limits(config)
    while True:
        m, k, n = (int(x) for x in rng.integers(1, limit + 1, 3))
        n = min(n, lim.n_max)
        if shape_fits(config, m, k, n):
            return m, k, n


ARRAYS = [(2, 2), (4, 4), (2, 4), (4, 2), (1, 3), (3, 1), (3, 5)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_random_shapes_match_golden_and_cycle_model(rows, cols, dataflow):
    """No input gaps, no backpressure: results equal golden, cycles equal the sim model."""
    config = small_config(rows, cols, dataflow, ifmap=512, weight=512, ofmap=512)
    dut = GemmUnit(config)
    rng = np.random.default_rng(rows * 100 + cols * 10 + len(dataflow))
    for trial in range(4):
        m, k, n = random_shape(rng, config, 3 * max(rows, cols) + 2)
        run_case(config, m, k, n, out32=trial % 2, seed=trial, dut=dut)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("gap,stall", [(0.3, 0.0), (0.0, 0.5), (0.4, 0.7)])
def test_random_input_gaps_and_output_backpressure(dataflow, gap, stall):
    config = small_config(4, 4, dataflow)
    dut = GemmUnit(config)
    rng = np.random.default_rng(int(gap * 10 + stall * 100))
    for trial in range(3):
        m, k, n = random_shape(rng, config, 14)
        run_case(config, m, k, n, out32=trial % 2, seed=trial, gap=gap, stall=stall, dut=dut)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("extremes", list(itertools.product((INT8_MIN, INT8_MAX), repeat=2)))
def test_extreme_operands_reach_the_accumulator_limit(dataflow, extremes):
    """All -128 / all 127 operands, with biases that take the int32 sum to its very edge."""
    config = small_config(4, 4, dataflow)
    m, k, n = 5, 37, 7
    a = np.full((m, k), extremes[0])
    w = np.full((k, n), extremes[1])
    product = extremes[0] * extremes[1]
    edge = INT32_MAX - accumulator_bound(k)          # largest |bias| golden accepts for this K
    bias = np.array([edge, -edge, 0, edge, -edge, 1, -1]) * (1 if product > 0 else -1)
    check_accumulator(k, int(np.abs(bias).max()))
    mult = np.array([1 << 30] * n)
    shift = np.array([1, 20, 31, 40, 50, 62, 9])
    dut = GemmUnit(config)
    for out32 in (1, 0):
        beats = encode_gemm(config, a, w, bias, mult, shift, out32)
        (run,) = simulate(dut, config, [(beats, m, n, out32)])
        np.testing.assert_array_equal(run.out, golden(a, w, bias, mult, shift, out32))
        assert run.cycles == gemm_cycles(config.sim_params(), m, k, n, out32)
    if extremes == (INT8_MIN, INT8_MIN):
        assert int(gemm_int(a, w, bias).max()) == INT32_MAX


def test_per_channel_requantization():
    """Every channel has its own (m, s); some land inside int8, some saturate each way.
    Without and with input gaps (cycle checks of :func:`check_cycles`)."""
    config = small_config(4, 4, "ws")
    rng = np.random.default_rng(5)
    m, k, n = 9, 11, 10
    a = rng.integers(INT8_MIN, INT8_MAX + 1, (m, k))
    w = rng.integers(INT8_MIN, INT8_MAX + 1, (k, n))
    bias = rng.integers(-5000, 5000, n)
    mult = rng.integers(1 << 29, 1 << 31, n)
    shift = np.arange(30, 30 + n)                 # from saturating to near zero
    beats = encode_gemm(config, a, w, bias, mult, shift, False)
    want = gemm_requant(a, w, bias, mult, shift)
    inside = (want > INT8_MIN) & (want < INT8_MAX)
    assert inside.any() and (want == INT8_MAX).any() and (want == INT8_MIN).any()
    dut = GemmUnit(config)
    runs = []
    for gap in (0.0, 0.4):
        (run,) = simulate(dut, config, [(beats, m, n, False)], gap=gap, seed=5)
        np.testing.assert_array_equal(run.out, want)
        check_cycles(config, run, m, k, n, False, gap=gap, stall=0.0)
        runs.append(run)
    assert_same_output_timing(*runs)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_8x8_array(dataflow):
    config = small_config(8, 8, dataflow, ifmap=2048, weight=2048, ofmap=2048)
    run_case(config, 19, 45, 21, out32=False, seed=8)
    run_case(config, 16, 24, 8, out32=True, seed=9)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_back_to_back_invocations(dataflow):
    """Commands of different shapes and modes in a row: each result is golden, each takes
    the modelled cycles, and the next command is taken the cycle after the last output."""
    config = small_config(4, 4, dataflow)
    rng = np.random.default_rng(11)
    jobs, wants = [], []
    for j, (m, k, n) in enumerate([(3, 9, 5), (8, 4, 16), (1, 1, 1), (6, 13, 3)]):
        a, w, bias, mult, shift = random_case(rng, m, k, n)
        out32 = j % 2
        jobs.append((encode_gemm(config, a, w, bias, mult, shift, out32), m, n, out32))
        wants.append((golden(a, w, bias, mult, shift, out32), m, k, n, out32))
    runs = simulate(GemmUnit(config), config, jobs)
    for run, (want, m, k, n, out32) in zip(runs, wants, strict=True):
        np.testing.assert_array_equal(run.out, want)
        assert run.cycles == gemm_cycles(config.sim_params(), m, k, n, out32)
    for prev, nxt in itertools.pairwise(runs):
        assert nxt.start == prev.end + 1


@pytest.mark.parametrize("rows,cols,dataflow", [(4, 4, "ws"), (4, 4, "os"), (8, 8, "ws"),
                                                (8, 8, "os")])
def test_utilization_for_large_k(rows, cols, dataflow):
    """Sustained MACs per cycle with M, K, N multiples of the array and a large K.

    Measured from the ports. Over the whole compute *and* drain phase (first cycle after
    the last operand beat to the last output), which is stricter than the compute-phase
    figure of the model, utilization must reach 95 %. In steady state, from the first
    output of column tile 0 to the first output of column tile 1 (one column tile's
    M * K * C MACs in between, the pipeline full), the array must do R * C MACs every cycle.
    """
    config = small_config(rows, cols, dataflow, ifmap=8192, weight=8192, ofmap=8192)
    m, k, n = 2 * rows, 32 * rows, 2 * cols
    run = run_case(config, m, k, n, out32=True, seed=3)   # busy == compute + drain, exactly
    measured = m * k * n / (rows * cols * run.busy)
    tile_cycles = run.out_at[m] - run.out_at[0]       # beats come column tile by column tile
    steady = m * k * cols / (rows * cols * tile_cycles)
    print(f"{rows}x{cols} {dataflow} M={m} K={k} N={n}: utilization {measured:.1%} over "
          f"compute+drain ({run.busy} cycles), {steady:.1%} in steady state")
    assert measured >= 0.95
    assert tile_cycles * rows * cols == m * k * cols, f"{tile_cycles} cycles for one tile"


def test_rejected_commands_raise_err_and_take_no_operands():
    config = small_config(4, 4, "ws")
    lim = gemm_limits(config)
    dut = GemmUnit(config)
    layout = dut.cmd.payload.shape()
    bad = [(0, 4, 4), (4, 0, 4), (4, 4, 0), (lim.acc_words + 1, 1, 1),
           (1, lim.k_max + 1, 1), (1, 1, lim.n_max + 1), (lim.m_max, lim.k_max, 1)]
    for m, k, n in bad:
        with pytest.raises(ValueError):
            check_shape(config, m, k, n)
    rng = np.random.default_rng(2)
    a, w, bias, mult, shift = random_case(rng, 3, 5, 6)
    good = encode_gemm(config, a, w, bias, mult, shift, True)

    async def bench(ctx):
        ctx.set(dut.a.valid, 1)        # offered all along: must not be taken after a reject
        ctx.set(dut.o.ready, 1)
        for m, k, n in bad:
            word = layout.const({"m": m, "k": k, "n": n, "out32": 1}).as_value().value
            ctx.set(dut.cmd.payload.as_value(), word)
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            for _ in range(3):
                assert not ctx.get(dut.a.ready)
                await ctx.tick()
            assert ctx.get(dut.err) and ctx.get(dut.cmd.ready), (m, k, n)
        ctx.set(dut.a.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # The same unit then runs a good command, and err clears.
    (run,) = simulate(dut, config, [(good, 3, 6, True)])
    np.testing.assert_array_equal(run.out, gemm_int(a, w, bias))


def test_elaboration_rejects_bad_configs():
    with pytest.raises(ValueError, match=r"dataflow: 'is' has no RTL.*'ws' and 'os'"):
        GemmUnit(small_config(dataflow="is"))
    with pytest.raises(ValueError, match=r"acc_bits: a 16-bit accumulator is too narrow"):
        GemmUnit(small_config(acc_bits=16))
    big = AcceleratorConfig(rows=16, cols=1, ifmap_sram_bytes=1 << 22,
                            weight_sram_bytes=1 << 22, ofmap_sram_bytes=1024)
    with pytest.raises(ValueError, match=r"acc_bits: a 32-bit accumulator is too narrow for "
                                         r"K up to 4194304"):
        GemmUnit(big)
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        GemmUnit({"rows": 4})
    with pytest.raises(ConfigError, match=r"rows: 0 is out of range"):
        GemmUnit(small_config(rows=0))
    with pytest.raises(ConfigError, match=r"cols: 100000 is out of range"):
        GemmUnit(small_config(cols=100_000))
    with pytest.raises(ConfigError, match=r"ifmap_sram_bytes: 1099511627776 is out of range"):
        GemmUnit(small_config(ifmap=1 << 40))


def test_array_size_bounds():
    """Each edge in the config's range [1, MAX_EDGE]; the RTL elaborates at most MAX_PES
    PEs and says so, naming the parameters, before building anything."""
    assert small_config(rows=MAX_EDGE, cols=1).rows == MAX_EDGE     # the config's own bound
    with pytest.raises(ConfigError, match=rf"rows: {MAX_EDGE + 1} is out of range; "
                                          rf"allowed \[1, {MAX_EDGE}\]"):
        small_config(rows=MAX_EDGE + 1)
    side = math.isqrt(MAX_PES)
    # Accepted (max_shape runs the unit's checks without building an elaboratable).
    GemmUnit.max_shape(small_config(side, side, ifmap=1 << 16, weight=1 << 16, ofmap=1 << 16))
    huge = small_config(256, 256, ifmap=1 << 20, weight=1 << 20, ofmap=1 << 20)
    for unit in (GemmUnit, SystolicArray):
        with pytest.raises(ValueError, match=rf"{unit.__name__}: rows x cols = 256 x 256 = "
                                             rf"65536 PEs is out of range for the RTL; "
                                             rf"allowed at most {MAX_PES} PEs"):
            unit(huge)
    with pytest.raises(ValueError, match=r"65 = 4160 PEs"):
        GemmUnit(small_config(side, side + 1, ifmap=1 << 16, weight=1 << 16, ofmap=1 << 16))


def test_buffer_size_bounds():
    """The RTL elaborates at most MAX_BUFFER_WORDS words per buffer and names the field."""
    words = MAX_BUFFER_WORDS * 8                      # bytes of a full buffer at 8 lanes
    GemmUnit.max_shape(small_config(8, 8, ifmap=words, weight=words,
                                      ofmap=MAX_BUFFER_WORDS * 32))     # accepted
    for field, kw in (("ifmap_sram_bytes", {"ifmap": 64 << 20}),
                      ("weight_sram_bytes", {"weight": 2 * words}),
                      ("ofmap_sram_bytes", {"ofmap": MAX_BUFFER_WORDS * 64})):
        with pytest.raises(ValueError, match=rf"{field}: \d+ bytes make an? \w+ buffer of "
                                             rf"\d+ words.*at most {MAX_BUFFER_WORDS} words"):
            GemmUnit(small_config(8, 8, **kw))


def test_rejected_parameters_leave_no_unused_elaboratable():
    """Components check their parameters before they exist, so a rejected construction
    leaves no half-built elaboratable for Amaranth to report as unused."""
    Fragment.get(Module(), None)       # Amaranth reports unused elaboratables from now on
    gc.collect()                       # (leftovers of earlier tests are not ours to judge)
    bad = [
        lambda: GemmUnit(small_config(dataflow="is")),
        lambda: GemmUnit(small_config(acc_bits=16)),
        lambda: SystolicArray(small_config(256, 256, ifmap=1 << 20, weight=1 << 20)),
        lambda: PE("ws", row=0, rows=MAX_EDGE + 1),
        lambda: Requantizer(MAX_EDGE + 1),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for make in bad:
            try:
                make()
            except ValueError:
                pass
            else:
                raise AssertionError("a bad parameter was accepted")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]


def test_narrow_operands_and_accumulator():
    """4-bit operands leave room for a 20-bit accumulator; results still golden, cycles as
    modelled, without and with input gaps."""
    config = small_config(input_bits=4, weight_bits=4, acc_bits=20, ifmap=256, weight=256)
    assert GemmUnit.max_shape(config)[1] * 8 * 8 <= (1 << 19) - 1
    rng = np.random.default_rng(6)
    m, k, n = 6, 21, 7
    a = rng.integers(-8, 8, (m, k))
    w = rng.integers(-8, 8, (k, n))
    bias = rng.integers(-(1 << 17), 1 << 17, n)
    mult, shift = rng.integers(1 << 30, 1 << 31, n), rng.integers(25, 35, n)
    dut = GemmUnit(config)
    for out32 in (True, False):
        beats = encode_gemm(config, a, w, bias, mult, shift, out32)
        runs = []
        for gap in (0.0, 0.4):
            (run,) = simulate(dut, config, [(beats, m, n, out32)], gap=gap, seed=6)
            np.testing.assert_array_equal(run.out, golden(a, w, bias, mult, shift, out32))
            check_cycles(config, run, m, k, n, out32, gap=gap, stall=0.0)
            runs.append(run)
        assert_same_output_timing(*runs)
    with pytest.raises(ValueError, match=r"a must lie in \[-8, 7\]"):
        encode_gemm(config, a * 2, w, bias, mult, shift, True)


def test_encode_and_decode_reject_bad_input():
    config = small_config(4, 4, "ws")
    a = np.zeros((3, 5), np.int64)
    w = np.zeros((5, 6), np.int64)
    with pytest.raises(ValueError, match="does not fit the GEMM unit"):
        encode_gemm(config, np.zeros((1, 2000), int), np.zeros((2000, 1), int), None, None,
                      None, True)
    with pytest.raises(ValueError, match=r"a must lie in \[-128, 127\]"):
        encode_gemm(config, a + 128, w, None, None, None, True)
    with pytest.raises(TypeError, match="w must hold integers"):
        encode_gemm(config, a, w.astype(float), None, None, None, True)
    with pytest.raises(ValueError, match=r"s must lie in \[1, 62\]"):
        encode_gemm(config, a, w, None, 1, 0, False)
    with pytest.raises(TypeError, match="m must hold integers"):
        encode_gemm(config, a, w, None, None, None, False)
    with pytest.raises(ValueError, match="could overflow the 32-bit accumulator"):
        encode_gemm(config, a, w, np.full(6, INT32_MAX), None, None, True)
    with pytest.raises(ValueError, match=r"a must be \(M, K\) and w \(K, N\)"):
        encode_gemm(config, a, w.T, None, None, None, True)
    with pytest.raises(ValueError, match=r"expected ceil\(6/4\) \* 3 = 6 output beats, got 5"):
        decode_gemm(config, [0] * 5, 3, 6, True)
    with pytest.raises(ValueError, match="int8 result must lie in"):
        decode_gemm(config, [1000] * 6, 3, 6, False)


def test_encode_packs_lsb_first_in_layout_order():
    """Beat words are the Verilog payload bits: fields and lanes LSB first."""
    config = small_config(2, 2, "ws", ifmap=256, weight=256, ofmap=256)
    lim = gemm_limits(config)
    a = np.array([[1, -2, 3]])              # M=1, K=3: folds [1, -2], [3, 0]
    w = np.array([[4], [-5], [6]])          # N=1
    beats = encode_gemm(config, a, w, [-7], [9], [10], False)
    bits_m = lim.m_max.bit_length()
    bits_k = lim.k_max.bit_length()
    bits_n = lim.n_max.bit_length()
    assert beats["cmd"] == [1 | 3 << bits_m | 1 << (bits_m + bits_k)]  # out32 = 0 on top
    layouts = gemm_layouts(config, m_max=lim.m_max, k_max=lim.k_max, n_max=lim.n_max)
    assert bits_m + bits_k + bits_n + 1 == layouts.cmd.size
    byte = 0xFF
    assert beats["a"] == [1 | (-2 & byte) << 8, 3]
    assert beats["w"] == [4, -5 & byte, 6]
    assert beats["ch"] == [(-7 & 0xFFFFFFFF) | 9 << 32 | 10 << 63]


def test_limits_and_shape_check_match_the_simulator():
    rng = np.random.default_rng(4)
    for trial in range(60):
        rows, cols = (int(x) for x in rng.integers(1, 9, 2))
        config = AcceleratorConfig(
            rows=rows, cols=cols, dataflow=["ws", "os"][trial % 2],
            input_bits=int(rng.integers(2, 9)), weight_bits=8,
            ifmap_sram_bytes=int(rng.integers(256, 4096)),
            weight_sram_bytes=int(rng.integers(256, 4096)) + rows * cols,
            ofmap_sram_bytes=int(rng.integers(256, 4096)))
        p = config.sim_params()
        lim = gemm_limits(config)
        assert tuple(gemm_buffer_words(p)) == lim[:4]
        assert tuple(gemm_max_shape(p)) == GemmUnit.max_shape(config)
        for _ in range(20):
            m, k, n = (int(x) for x in rng.integers(0, 3 * max(lim[4:]) // 2 + 2, 3))
            try:
                check_shape(config, m, k, n)
                fits = True
            except ValueError:
                fits = False
            assert fits == gemm_fits(p, m, k, n), (config, m, k, n)


def test_requant_latency_matches_the_simulator():
    assert Requantizer.LATENCY == REQUANT_LATENCY


@pytest.mark.parametrize("d", [1, 3, 4, 5, 7, 12])
def test_constant_divider_is_exact(d):
    """The shape check's ceil(x / d) without a divider, for every value of a 9-bit x."""
    x = Signal(9)
    q = Signal(10)
    m = Module()
    m.d.comb += q.eq(_ceil_div_const(x, d))

    async def bench(ctx):
        for v in range(1 << len(x)):
            ctx.set(x, v)
            assert ctx.get(q) == -(-v // d), v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_16x16_array(dataflow):
    config = small_config(16, 16, dataflow, ifmap=8192, weight=8192, ofmap=8192)
    run_case(config, 37, 70, 40, out32=False, seed=16)
    run_case(config, 32, 64, 32, out32=True, seed=17)
