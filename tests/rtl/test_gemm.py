"""GemmUnit in the Amaranth simulator: bit-exact with golden, cycle-exact with sim.units.gemm.

Every run goes through the shared scaffold: the stimuli and the golden/timing model are
tests/models/gemm.py (the cocotb testbench uses the same), the stream helpers
tests/rtl/streams.py. An input monitor rebuilds each invocation from the beats the unit
accepted, and the scoreboard compares its outputs with golden.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import gemm_int, gemm_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX
from edgetron.rtl.gemm import GemmCall, GemmUnit

from ..models.gemm import (
    INPUTS,
    GemmModel,
    GemmMonitor,
    GemmScoreboard,
    extreme_call,
    random_call,
    rounding_ties,
    tie_call,
)
from . import streams


def small_config(rows=4, cols=4, dataflow="ws", ifmap=1024, weight=1024, ofmap=1024, **kw):
    """A small config (tiny SRAMs keep the simulated memories cheap)."""
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=ifmap,
                             weight_sram_bytes=weight, ofmap_sram_bytes=ofmap, **kw)


def simulate(dut, model: GemmModel, calls, *, gap=0.0, stall=0.0, seed=0, commands=None):
    """Drive ``calls`` back to back and return the scoreboard's invocations.

    ``gap`` is the probability that a source holds ``valid`` low on a cycle, ``stall`` that
    the sink holds ``ready`` low. ``commands`` overrides the ``cmd`` words (rejected shapes).
    The monitor rebuilds every invocation from the accepted beats (checked equal to the
    call driven) and the scoreboard compares it with golden; after the last expected
    output beat, ``o.valid`` must stay low for :meth:`GemmModel.quiet_cycles` cycles.
    """
    board = GemmScoreboard(model)
    monitor = GemmMonitor(model, board)
    beats = [model.encode(c) for c in calls]
    words = {name: [w for b in beats for w in b[name]] for name in INPUTS}
    if commands is not None:
        words["cmd"] = commands
    sources = [streams.StreamSource(getattr(dut, name), words[name], gap=gap, seed=seed + i)
               for i, name in enumerate(INPUTS)]

    def on_output(word, cycle):
        board.output(word, cycle)
        board.check_stray()

    sink = streams.StreamSink(dut.o, stall=stall, seed=seed + 17, on_beat=on_output)
    inputs = streams.HandshakeMonitor({name: getattr(dut, name) for name in INPUTS},
                                      monitor.accept)
    streams.run(dut, sources=sources, sinks=[sink], monitors=[inputs],
                until=lambda: len(board.invocations) == len(words["cmd"]) and board.finished(),
                quiet=model.quiet_cycles())
    monitor.check_idle()
    runs = board.results()
    for inv, call in zip(runs, calls, strict=True):
        for field in GemmCall._fields:
            np.testing.assert_array_equal(getattr(inv.call, field), getattr(call, field))
    return runs


def check_cycles(model, inv, *, gap, stall):
    """The timing the controller guarantees (docs/rtl.md), asserted exactly.

    With ``o.ready`` always high: compute starts the cycle after the last operand
    handshake, so the compute and drain phases take exactly the model's cycles however
    the operands arrived (input gaps lengthen only the load phase); without input gaps
    the whole invocation takes ``gemm_cycles``. Output backpressure stalls the core, so
    it only bounds the run from below.
    """
    ph = model.phases(inv.call)
    load = inv.load_end - inv.cmd_at - ph.cmd + 1      # cycles of the load phase
    assert load >= max(ph.a_beats, ph.w_beats, ph.ch_beats)
    if stall:
        assert inv.busy >= ph.compute + ph.drain
        return
    assert inv.busy == ph.compute + ph.drain, (inv.busy, ph)
    if not gap:
        assert inv.cycles == model.cycles(inv.call)


def run_calls(config, calls, *, gap=0.0, stall=0.0, seed=0, dut=None):
    """Simulate ``calls`` back to back and check every one's cycles."""
    model = GemmModel(config)
    runs = simulate(GemmUnit(config) if dut is None else dut, model, calls, gap=gap,
                    stall=stall, seed=seed)
    for inv in runs:
        check_cycles(model, inv, gap=gap, stall=stall)
    return runs


def run_case(config, m, k, n, out32, *, seed=0, gap=0.0, stall=0.0, dut=None):
    call = random_call(GemmModel(config), np.random.default_rng(seed), m, k, n, out32)
    (inv,) = run_calls(config, [call], gap=gap, stall=stall, seed=seed, dut=dut)
    return inv


def assert_same_output_timing(steady, gappy):
    """Input gaps only delay the load: measured from the last operand handshake, the
    output beats of a run with gaps come in exactly the cycles of a run without."""
    assert gappy.load_end - gappy.cmd_at > steady.load_end - steady.cmd_at   # gaps did delay
    assert ([t - steady.load_end for t in steady.out_at]
            == [t - gappy.load_end for t in gappy.out_at])


def random_shape(rng, model, limit):
    """A random shape that fits the unit, dimensions in 1..limit (often not multiples)."""
    while True:
        m, k, n = (int(x) for x in rng.integers(1, limit + 1, 3))
        n = min(n, model.limits.n_max)
        if model.fits(m, k, n):
            return m, k, n


ARRAYS = [(2, 2), (4, 4), (2, 4), (4, 2), (1, 3), (3, 1), (3, 5)]
DATAFLOWS = ["ws", "os"]
EXTREMES = list(itertools.product(("min", "max"), repeat=2))


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_random_shapes_match_golden_and_cycle_model(rows, cols, dataflow):
    """No input gaps, no backpressure: results equal golden, cycles equal the sim model."""
    config = small_config(rows, cols, dataflow, ifmap=512, weight=512, ofmap=512)
    dut = GemmUnit(config)
    model = GemmModel(config)
    rng = np.random.default_rng(rows * 100 + cols * 10 + len(dataflow))
    for trial in range(4):
        m, k, n = random_shape(rng, model, 3 * max(rows, cols) + 2)
        run_case(config, m, k, n, out32=trial % 2, seed=trial, dut=dut)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("gap,stall", [(0.3, 0.0), (0.0, 0.5), (0.4, 0.7)])
def test_random_input_gaps_and_output_backpressure(dataflow, gap, stall):
    config = small_config(4, 4, dataflow)
    dut = GemmUnit(config)
    model = GemmModel(config)
    rng = np.random.default_rng(int(gap * 10 + stall * 100))
    for trial in range(3):
        m, k, n = random_shape(rng, model, 14)
        run_case(config, m, k, n, out32=trial % 2, seed=trial, gap=gap, stall=stall, dut=dut)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("extremes", EXTREMES)
def test_extreme_operands_reach_the_accumulator_limit(dataflow, extremes):
    """All -128 / all 127 operands, with biases that take the int32 sum to its very edge."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    m, k, n = 5, 37, 7
    calls = [extreme_call(model, m, k, n, *extremes, out32, bias_to_edge=True, seed=k)
             for out32 in (True, False)]
    run_calls(config, calls)
    if extremes == ("min", "min"):
        assert int(gemm_int(calls[0].a, calls[0].w, calls[0].bias).max()) == INT32_MAX


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("extremes", [("min", "min"), ("min", "max")])
def test_extreme_operands_at_large_k(dataflow, extremes):
    """M = R, K = 1024, every operand -128 (or -128 x 127): each sum is 2**24 = 16,777,216
    (or -16,646,144), beyond what an accumulator, partial sum or buffer of 25 bits or less
    holds (a 24-bit one returns 0 for 2**24). The shape fills the A and W buffers exactly."""
    config = small_config(4, 4, dataflow, ifmap=4096, weight=4096, ofmap=1024)
    model = GemmModel(config)
    m, k, n = 4, 1024, 4
    assert {"a", "w"} <= set(model.full_buffers(m, k, n))
    calls = [extreme_call(model, m, k, n, *extremes, out32, seed=1) for out32 in (True, False)]
    runs = run_calls(config, calls)
    assert abs(int(runs[0].result[0, 0])) > 1 << 23


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_rounding_ties_reach_the_output(dataflow):
    """int8 results whose products land exactly on .5 before rounding (golden rounds half
    up), of both floor parities and both signs; with input gaps, as a second run."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    call = tie_call(model, np.random.default_rng(3), 9, 6, 10)
    ties = rounding_ties(gemm_int(call.a, call.w, call.bias), call.mult, call.shift)
    assert ties["even"] >= 10 and ties["negative"] >= 10 and ties["ties"] >= 20, ties
    dut = GemmUnit(config)
    for gap in (0.0, 0.3):
        run_calls(config, [call], gap=gap, seed=4, dut=dut)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_exactly_full_buffers(dataflow):
    """A shape that fills the A and W buffers, the parameter memory and (ws) the
    accumulator buffer to the last word; one more row or one more k does not fit."""
    config = small_config(4, 4, dataflow, ifmap=256, weight=256, ofmap=256)
    model = GemmModel(config)
    m, k, n = model.full_buffer_shape()
    want = ["a", "w", "acc", "param"] if dataflow == "ws" else ["a", "w", "param"]
    assert model.full_buffers(m, k, n) == want
    assert not model.fits(m + config.rows, k, n) and not model.fits(m, k + 1, n)
    rng = np.random.default_rng(12)
    calls = [random_call(model, rng, m, k, n, out32) for out32 in (False, True)]
    run_calls(config, calls)
    run_calls(config, calls, gap=0.2, stall=0.3, seed=5)


def test_per_channel_requantization():
    """Every channel has its own (mult, shift); some land inside int8, some saturate each
    way. Without and with input gaps (cycle checks of :func:`check_cycles`)."""
    config = small_config(4, 4, "ws")
    rng = np.random.default_rng(5)
    m, k, n = 9, 11, 10
    a = rng.integers(INT8_MIN, INT8_MAX + 1, (m, k))
    w = rng.integers(INT8_MIN, INT8_MAX + 1, (k, n))
    bias = rng.integers(-5000, 5000, n)
    mult = rng.integers(1 << 29, 1 << 31, n)
    shift = np.arange(30, 30 + n)                 # from saturating to near zero
    call = GemmCall(a, w, bias, mult, shift, False)
    want = gemm_requant(a, w, bias, mult, shift)
    inside = (want > INT8_MIN) & (want < INT8_MAX)
    assert inside.any() and (want == INT8_MAX).any() and (want == INT8_MIN).any()
    dut = GemmUnit(config)
    runs = [run_calls(config, [call], gap=gap, seed=5, dut=dut)[0] for gap in (0.0, 0.4)]
    assert_same_output_timing(*runs)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_8x8_array(dataflow):
    config = small_config(8, 8, dataflow, ifmap=2048, weight=2048, ofmap=2048)
    dut = GemmUnit(config)
    run_case(config, 19, 45, 21, out32=False, seed=8, dut=dut)
    run_case(config, 16, 24, 8, out32=True, seed=9, dut=dut)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_back_to_back_invocations(dataflow):
    """Commands of different shapes and modes in a row: each result is golden, each takes
    the modelled cycles, and the next command is taken the cycle after the last output."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    rng = np.random.default_rng(11)
    calls = [random_call(model, rng, m, k, n, j % 2)
             for j, (m, k, n) in enumerate([(3, 9, 5), (8, 4, 16), (1, 1, 1), (6, 13, 3)])]
    runs = run_calls(config, calls)
    for prev, nxt in itertools.pairwise(runs):
        assert nxt.cmd_at == prev.end + 1


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
    inv = run_case(config, m, k, n, out32=True, seed=3)   # busy == compute + drain, exactly
    measured = m * k * n / (rows * cols * inv.busy)
    tile_cycles = inv.out_at[m] - inv.out_at[0]       # beats come column tile by column tile
    steady = m * k * cols / (rows * cols * tile_cycles)
    print(f"{rows}x{cols} {dataflow} M={m} K={k} N={n}: utilization {measured:.1%} over "
          f"compute+drain ({inv.busy} cycles), {steady:.1%} in steady state")
    assert measured >= 0.95
    assert tile_cycles * rows * cols == m * k * cols, f"{tile_cycles} cycles for one tile"


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_rejected_commands_raise_err_and_take_no_operands(dataflow):
    """Each dimension zero, and shapes beyond each buffer: ``err`` rises, no operand beat
    is taken although one is offered all along, nothing is output; then a good command
    runs and clears ``err``."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    lim = model.limits
    m_max, k_max, n_max = model.max_shape()
    bad = [(0, 4, 4), (4, 0, 4), (4, 4, 0), (1, k_max + 1, 1), (1, 1, n_max + 1),
           (m_max, k_max, 1)]
    if dataflow == "ws":
        bad.append((lim.acc_words + 1, 1, 1))
    assert not any(model.fits(*s) for s in bad)
    call = random_call(model, np.random.default_rng(2), 3, 5, 6, True)
    commands = [model.command_word(*s, True) for s in bad] + model.encode(call)["cmd"]
    err_seen = []

    async def watch_err(ctx):
        # err rises two cycles after each rejected command's handshake and stays high
        # until the next one; the operand streams are never ready meanwhile.
        async for _, _, err, cmd_hs, a_ready in ctx.tick().sample(
                dut.err, dut.cmd.valid & dut.cmd.ready, dut.a.ready):
            err_seen.append((err, cmd_hs, a_ready))
            if len(err_seen) > 3 * len(bad) + 4:
                return

    dut = GemmUnit(config)
    board = GemmScoreboard(model)
    monitor = GemmMonitor(model, board)
    cmd = streams.StreamSource(dut.cmd, commands)
    operands = [streams.StreamSource(getattr(dut, name), model.encode(call)[name])
                for name in ("a", "w", "ch")]
    sink = streams.StreamSink(dut.o, on_beat=lambda w, c: (board.output(w, c),
                                                           board.check_stray()))
    inputs = streams.HandshakeMonitor({name: getattr(dut, name) for name in INPUTS},
                                      monitor.accept)
    streams.run(dut, sources=[cmd, *operands], sinks=[sink], monitors=[inputs],
                testbenches=[watch_err],
                until=lambda: len(board.invocations) == len(commands) and board.finished(),
                quiet=model.quiet_cycles())
    rejected = [inv for inv in board.invocations if not inv.accepted]
    assert len(rejected) == len(bad) and board.results()[0].result is not None
    # Before the good command: one handshake per rejected command, err high after each,
    # and the a stream never ready.
    hs = [i for i, (_, h, _) in enumerate(err_seen) if h]
    for i in hs[:len(bad)]:
        assert err_seen[i + 2][0] and not any(r for _, _, r in err_seen[i:i + 3])
    assert not err_seen[hs[len(bad)] + 2][0]          # the good command cleared err
    assert operands[0].accepted[0] > cmd.accepted[-1]


def test_requant_output_mode_switch_keeps_results_apart():
    """int8 and int32 calls alternate with output backpressure: every beat goes the way
    of its own call's mode (the output stage routes by the command's out32)."""
    config = small_config(4, 4, "os")
    model = GemmModel(config)
    rng = np.random.default_rng(21)
    calls = [random_call(model, rng, 5, 6, 7, j % 2) for j in range(4)]
    run_calls(config, calls, stall=0.6, seed=21)


def test_narrow_operands_and_accumulator():
    """4-bit operands leave room for a 20-bit accumulator; results still golden, cycles as
    modelled, without and with input gaps; extremes at the largest K the buffers hold."""
    config = small_config(input_bits=4, weight_bits=4, acc_bits=20, ifmap=256, weight=256)
    model = GemmModel(config)
    assert model.max_shape()[1] * 8 * 8 <= (1 << 19) - 1
    rng = np.random.default_rng(6)
    m, k, n = 6, 21, 7
    dut = GemmUnit(config)
    for out32 in (True, False):
        call = random_call(model, rng, m, k, n, out32)
        runs = [run_calls(config, [call], gap=gap, seed=6, dut=dut)[0] for gap in (0.0, 0.4)]
        assert_same_output_timing(*runs)
    k_big = model.largest_k(config.rows, config.cols)
    run_calls(config, [extreme_call(model, config.rows, k_big, config.cols, "min", "min",
                                    True, bias_to_edge=True)], dut=dut)
    with pytest.raises(ValueError, match=r"a must lie in \[-8, 7\]"):
        model.encode(call._replace(a=call.a * 2))


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_16x16_array(dataflow):
    config = small_config(16, 16, dataflow, ifmap=8192, weight=8192, ofmap=8192)
    run_case(config, 37, 70, 40, out32=False, seed=16)
    run_case(config, 32, 64, 32, out32=True, seed=17)
