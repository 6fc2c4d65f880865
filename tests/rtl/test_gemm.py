"""GemmUnit in the Amaranth simulator: bit-exact with golden, cycle-exact with sim.units.gemm.

Every run drives a *sequence* of calls back to back through the shared scaffold: the
stimuli and the golden/timing model are tests/models/gemm.py (the cocotb testbench uses
the same), the stream helpers tests/rtl/streams.py. An input monitor rebuilds each
invocation from the beats the unit accepted (invocations overlap: the next command and
its operands are taken while earlier calls compute and drain), and the scoreboard
compares its outputs with golden. Timing (:meth:`GemmModel.check_timing`): at full input
rate without backpressure every call's command, first operand beats and first and last
output, and the whole sequence, take exactly the simulator's cycles (``gemm_sequence``);
with input gaps every output beat comes exactly when the row-by-row schedule predicts
from the observed input handshakes; with output backpressure no earlier than that.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import gemm_int, gemm_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX
from edgetron.hw.gemm import GEMM_CMD_CYCLES, gemm_channels_first, gemm_out_fifo_beats
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


def small_config(rows=4, cols=4, dataflow="ws", ifmap=1024, weight=1024, ofmap=1024,
                 double_buffer=True, **kw):
    """A small config (tiny SRAMs keep the simulated memories cheap)."""
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=ifmap,
                             weight_sram_bytes=weight, ofmap_sram_bytes=ofmap,
                             double_buffer=double_buffer, **kw)


def simulate(dut, model: GemmModel, calls, *, gap=0.0, stall=0.0, seed=0, commands=None,
             hold=(0, 0)):
    """Drive ``calls`` back to back and return the scoreboard's invocations.

    ``gap`` is the probability that a source holds ``valid`` low on a cycle (a mapping:
    per stream, the others without gaps), ``stall`` that
    the sink holds ``ready`` low, ``hold`` a range of cycles it holds it low throughout.
    ``commands`` overrides the ``cmd`` words (rejected shapes).
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
    gaps = gap if isinstance(gap, dict) else dict.fromkeys(INPUTS, gap)
    sources = [streams.StreamSource(getattr(dut, name), words[name], gap=gaps.get(name, 0.0),
                                    seed=seed + i)
               for i, name in enumerate(INPUTS)]

    def on_output(word, cycle):
        board.output(word, cycle)
        board.check_stray()

    sink = streams.StreamSink(dut.o, stall=stall, seed=seed + 17, on_beat=on_output,
                              hold=hold)
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


def run_calls(config, calls, *, gap=0.0, stall=0.0, seed=0, dut=None):
    """Simulate ``calls`` back to back and check their timing."""
    model = GemmModel(config)
    runs = simulate(GemmUnit(config) if dut is None else dut, model, calls, gap=gap,
                    stall=stall, seed=seed)
    model.check_timing(calls, runs, gaps=bool(gap), backpressure=bool(stall))
    return runs


def random_shape(rng, model, limit):
    """A random shape that fits the unit, dimensions in 1..limit (often not multiples)."""
    while True:
        m, k, n = (int(x) for x in rng.integers(1, limit + 1, 3))
        n = min(n, model.limits.n_max)
        if model.fits(m, k, n):
            return m, k, n


def random_calls(model, rng, count, limit):
    """``count`` random calls of random shapes, both output modes."""
    return [random_call(model, rng, *random_shape(rng, model, limit), bool(rng.integers(0, 2)))
            for _ in range(count)]


ARRAYS = [(2, 2), (4, 4), (2, 4), (4, 2), (1, 3), (3, 1), (3, 5)]
DATAFLOWS = ["ws", "os"]
EXTREMES = list(itertools.product(("min", "max"), repeat=2))


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_a_slow_channel_stream_holds_back_its_column_tiles(dataflow):
    """With cols <= rows each column tile waits for its own channels, not for all of the
    call's (``gemm_channels_first`` false). The ``ch`` stream gives a beat about one cycle
    in twenty while A and W come at full rate, so a row issued before its tile's channels
    were in would be requantized with a missing bias, multiplier or shift: golden
    catches it. Timing as with any input gaps."""
    config = small_config(4, 2, dataflow, ifmap=512, weight=512, ofmap=512)
    assert not gemm_channels_first(config.sim_params())
    model = GemmModel(config)
    rng = np.random.default_rng(31)
    run_calls(config, random_calls(model, rng, 4, 10), gap={"ch": 0.95}, seed=6)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_random_sequences_match_golden_and_the_sequence_model(rows, cols, dataflow):
    """Six random calls back to back, no gaps, no backpressure: results equal golden, every
    call and the whole sequence take exactly the simulator's cycles."""
    config = small_config(rows, cols, dataflow, ifmap=512, weight=512, ofmap=512)
    model = GemmModel(config)
    rng = np.random.default_rng(rows * 100 + cols * 10 + len(dataflow))
    run_calls(config, random_calls(model, rng, 6, 3 * max(rows, cols) + 2))


@pytest.mark.parametrize("rows", [1, 2])
def test_one_row_calls_fold_back_to_back(rows):
    """ws calls of one row (M = 1) and several folds: row 0 comes back every max(M, R)
    cycles, on the very next cycle on a one-row array, and every fold still adds the
    partial sum written by the fold before (the accumulator read's transparency and
    look-ahead)."""
    config = small_config(rows, 3, "ws", ifmap=512, weight=512, ofmap=512)
    model = GemmModel(config)
    rng = np.random.default_rng(rows)
    run_calls(config, [random_call(model, rng, 1, 5 * rows, 3, out32) for out32 in (1, 0)])


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows,cols", [(4, 4), (2, 3), (3, 1)])
def test_single_buffered_sequences(rows, cols, dataflow):
    """Without double_buffer (one slot): the next call loads only once the current one has
    issued its last row, and its parameters once the last results have read theirs; still
    golden and exactly the simulator's cycles."""
    config = small_config(rows, cols, dataflow, ifmap=256, weight=256, ofmap=256,
                          double_buffer=False)
    model = GemmModel(config)
    assert model.limits.slots == 1
    rng = np.random.default_rng(rows * 7 + cols)
    run_calls(config, random_calls(model, rng, 5, 3 * max(rows, cols) + 2))


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("gap,stall", [(0.3, 0.0), (0.0, 0.5), (0.4, 0.7)])
def test_random_input_gaps_and_output_backpressure(dataflow, gap, stall):
    """Random calls back to back with random valid gaps and ready backpressure: golden,
    and without backpressure every output beat exactly when the schedule predicts."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    rng = np.random.default_rng(int(gap * 10 + stall * 100))
    run_calls(config, random_calls(model, rng, 5, 14), gap=gap, stall=stall, seed=3)


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


@pytest.mark.parametrize("double_buffer", [True, False])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("extremes", [("min", "min"), ("min", "max")])
def test_extreme_operands_at_large_k(dataflow, extremes, double_buffer):
    """M = R, K = 1024, every operand -128 (or -128 x 127): each sum is 2**24 = 16,777,216
    (or -16,646,144), beyond what an accumulator, partial sum or buffer of 25 bits or less
    holds (a 24-bit one returns 0 for 2**24). The shape fills the A and W buffers (one
    half of each with double_buffer) exactly; the two calls overlap in the halves."""
    size = 8192 if double_buffer else 4096
    config = small_config(4, 4, dataflow, ifmap=size, weight=size, ofmap=1024,
                          double_buffer=double_buffer)
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
        run_calls(config, [call, call], gap=gap, seed=4, dut=dut)


@pytest.mark.parametrize("double_buffer", [True, False])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_exactly_full_buffers(dataflow, double_buffer):
    """A shape that fills the A and W buffers (each half of them with double_buffer), the
    parameter memory of a slot and (ws) the accumulator buffer to the last word; one more
    row or one more k does not fit. Calls alternate between the halves, each full."""
    config = small_config(4, 4, dataflow, ifmap=512 if double_buffer else 256,
                          weight=512 if double_buffer else 256, ofmap=256,
                          double_buffer=double_buffer)
    model = GemmModel(config)
    m, k, n = model.full_buffer_shape()
    want = ["a", "w", "acc", "param"] if dataflow == "ws" else ["a", "w", "param"]
    assert model.full_buffers(m, k, n) == want
    assert not model.fits(m + config.rows, k, n) and not model.fits(m, k + 1, n)
    rng = np.random.default_rng(12)
    calls = [random_call(model, rng, m, k, n, out32) for out32 in (False, True, False)]
    run_calls(config, calls)
    run_calls(config, calls, gap=0.2, stall=0.3, seed=5)


def test_per_channel_requantization():
    """Every channel has its own (mult, shift); some land inside int8, some saturate each
    way. Without and with input gaps."""
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
    for gap in (0.0, 0.4):
        run_calls(config, [call], gap=gap, seed=5, dut=dut)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_8x8_array(dataflow):
    config = small_config(8, 8, dataflow, ifmap=4096, weight=4096, ofmap=2048)
    model = GemmModel(config)
    rng = np.random.default_rng(8)
    calls = [random_call(model, rng, 19, 45, 21, False), random_call(model, rng, 16, 24, 8, True),
             random_call(model, rng, 3, 60, 30, False)]
    run_calls(config, calls)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_calls_overlap(dataflow):
    """With double_buffer the next command, and all its operands, are taken while the
    current call computes. Without it the next command waits for the current call to
    issue its last row (after its last operand), but not for its drain."""
    rng = np.random.default_rng(11)
    for double_buffer in (True, False):
        config = small_config(4, 4, dataflow, double_buffer=double_buffer)
        model = GemmModel(config)
        calls = [random_call(model, rng, m, k, n, j % 2)
                 for j, (m, k, n) in enumerate([(8, 12, 8), (8, 12, 8), (3, 9, 5)])]
        runs = run_calls(config, calls)
        for prev, nxt in itertools.pairwise(runs):
            assert nxt.cmd_at < prev.end            # the next command before the last output
            if double_buffer:
                assert nxt.load_end < prev.end      # loaded while the current one computes
            else:
                assert nxt.cmd_at > prev.load_end


@pytest.mark.parametrize("rows,cols,dataflow", [(4, 4, "ws"), (4, 4, "os"), (8, 8, "ws"),
                                                (8, 8, "os")])
def test_end_to_end_utilization_of_back_to_back_calls(rows, cols, dataflow):
    """Three calls back to back with M, K, N multiples of the array and a large K, at full
    input rate: from the first command handshake to the last output handshake, the array
    does at least 95 % of R * C MACs per cycle (only one fill and one drain are exposed).
    In steady state, between the first outputs of two consecutive calls, exactly R * C
    MACs every cycle."""
    config = small_config(rows, cols, dataflow, ifmap=16384, weight=16384, ofmap=8192)
    model = GemmModel(config)
    m, k, n = 2 * rows, 32 * rows, 2 * cols
    rng = np.random.default_rng(3)
    calls = [random_call(model, rng, m, k, n, True) for _ in range(3)]
    runs = run_calls(config, calls)
    cycles = runs[-1].end - runs[0].cmd_at + 1
    util = 3 * m * k * n / (rows * cols * cycles)
    print(f"{rows}x{cols} {dataflow} 3 x (M={m}, K={k}, N={n}): end-to-end utilization "
          f"{util:.1%} over {cycles} cycles")
    assert util >= 0.95
    call_cycles = runs[2].out_at[0] - runs[1].out_at[0]
    assert call_cycles * rows * cols == m * k * n, f"{call_cycles} cycles for one call"


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
        # err rises GEMM_CMD_CYCLES cycles after each rejected command's handshake and
        # stays high until the next one; the operand streams are never ready meanwhile.
        async for _, _, err, cmd_hs, a_ready in ctx.tick().sample(
                dut.err, dut.cmd.valid & dut.cmd.ready, dut.a.ready):
            err_seen.append((err, cmd_hs, a_ready))
            if len(err_seen) > (GEMM_CMD_CYCLES + 1) * (len(bad) + 1) + 2:
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
        assert not err_seen[i + GEMM_CMD_CYCLES - 1][0] and err_seen[i + GEMM_CMD_CYCLES][0]
        assert not any(r for _, _, r in err_seen[i:i + GEMM_CMD_CYCLES + 1])
    assert not err_seen[hs[len(bad)] + GEMM_CMD_CYCLES][0]   # the good command cleared err
    assert operands[0].accepted[0] > cmd.accepted[-1]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_output_fifo_fills_to_its_credits_and_resumes_at_full_rate(dataflow):
    """``o.ready`` held low for long: the core issues until the output FIFO's credits are
    spent and no further, no beat is lost, and at the release the FIFO hands over exactly
    ``gemm_out_fifo_beats`` beats back to back; ``ws`` (one fold, one beat per row) then
    goes on without a bubble, since the rows issued after the release arrive just as the
    FIFO empties."""
    config = small_config(4, 4, dataflow)
    model = GemmModel(config)
    depth = gemm_out_fifo_beats(4, 4, dataflow)
    m = 48                                    # K = R, N = C: every row (os: tile) yields
    call = random_call(model, np.random.default_rng(8), m, 4, 4, False)
    stop = 200                                # long after the credits run out
    runs = simulate(GemmUnit(config), model, [call], hold=(0, stop))
    model.check_timing([call], runs, gaps=False, backpressure=True)
    out = runs[0].out_at
    assert len(out) == m > depth
    assert out[:depth] == list(range(stop, stop + depth))
    if dataflow == "ws":
        assert out == list(range(stop, stop + m))


def test_requant_output_mode_switch_keeps_results_apart():
    """int8 and int32 calls alternate, in flight together, with output backpressure: every
    beat goes the way of its own call's mode and the beats stay in order."""
    config = small_config(4, 4, "os")
    model = GemmModel(config)
    rng = np.random.default_rng(21)
    calls = [random_call(model, rng, 5, 6, 7, j % 2) for j in range(4)]
    run_calls(config, calls, stall=0.6, seed=21)
    run_calls(config, calls)


def test_narrow_operands_and_accumulator():
    """4-bit operands leave room for a 20-bit accumulator; results still golden, cycles as
    modelled, without and with input gaps; extremes at the largest K the buffers hold."""
    config = small_config(input_bits=4, weight_bits=4, acc_bits=20, ifmap=512, weight=512)
    model = GemmModel(config)
    assert model.max_shape()[1] * 8 * 8 <= (1 << 19) - 1
    rng = np.random.default_rng(6)
    m, k, n = 6, 21, 7
    dut = GemmUnit(config)
    calls = [random_call(model, rng, m, k, n, out32) for out32 in (True, False)]
    for gap in (0.0, 0.4):
        run_calls(config, calls, gap=gap, seed=6, dut=dut)
    k_big = model.largest_k(config.rows, config.cols)
    run_calls(config, [extreme_call(model, config.rows, k_big, config.cols, "min", "min",
                                    True, bias_to_edge=True)], dut=dut)
    with pytest.raises(ValueError, match=r"a must lie in \[-8, 7\]"):
        model.encode(calls[0]._replace(a=calls[0].a * 2))


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_16x16_array(dataflow):
    config = small_config(16, 16, dataflow, ifmap=16384, weight=16384, ofmap=8192)
    model = GemmModel(config)
    rng = np.random.default_rng(16)
    run_calls(config, [random_call(model, rng, 37, 70, 40, False),
                       random_call(model, rng, 32, 64, 32, True)])
