"""The GEMM unit's host side without simulation: elaboration checks, limits and the shape
check against the simulator, the codec and its inverse, the monitor and scoreboard of
tests/models/gemm.py, and the elaboration-time latency assertions."""

from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, UnusedElaboratable

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.golden.intops import INT32_MAX
from edgetron.hw import gemm as hw
from edgetron.rtl import systolic
from edgetron.rtl.common import MAX_BUFFER_WORDS, MAX_EDGE, MAX_PES
from edgetron.rtl.gemm import (
    GemmCall,
    GemmUnit,
    decode_gemm,
    decode_gemm_command,
    decode_gemm_operands,
    encode_gemm,
    gemm_limits,
    shape_fits,
)
from edgetron.rtl.layouts import gemm_layouts
from edgetron.rtl.pe import PE
from edgetron.rtl.requant import Requantizer
from edgetron.rtl.systolic import ArrayTiming, SystolicArray
from edgetron.sim.units.gemm import gemm_phases

from ..models.gemm import GemmModel, GemmMonitor, GemmScoreboard, random_call
from .test_gemm import small_config


def test_elaboration_rejects_bad_configs():
    with pytest.raises(ConfigError, match=r"dataflow: 'is' has no RTL.*'ws' and 'os'"):
        GemmUnit(small_config(dataflow="is"))
    with pytest.raises(ConfigError, match=r"acc_bits: a 16-bit accumulator is too narrow"):
        GemmUnit(small_config(acc_bits=16))
    big = AcceleratorConfig(rows=16, cols=1, ifmap_sram_bytes=1 << 22,
                            weight_sram_bytes=1 << 22, ofmap_sram_bytes=1024,
                            double_buffer=False)
    with pytest.raises(ConfigError, match=r"acc_bits: a 32-bit accumulator is too narrow for "
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
        with pytest.raises(ConfigError, match=rf"{unit.__name__}: rows x cols = 256 x 256 = "
                                              rf"65536 PEs is out of range for the RTL; "
                                              rf"allowed at most {MAX_PES} PEs"):
            unit(huge)
    with pytest.raises(ConfigError, match=r"65 = 4160 PEs"):
        GemmUnit(small_config(side, side + 1, ifmap=1 << 16, weight=1 << 16, ofmap=1 << 16))


def test_buffer_size_bounds():
    """The RTL elaborates at most MAX_BUFFER_WORDS words per buffer and names the field."""
    words = MAX_BUFFER_WORDS * 8                      # bytes of a full buffer at 8 lanes
    GemmUnit.max_shape(small_config(8, 8, ifmap=words, weight=words,
                                    ofmap=MAX_BUFFER_WORDS * 32))     # accepted
    for field, kw in (("ifmap_sram_bytes", {"ifmap": 64 << 20}),
                      ("weight_sram_bytes", {"weight": 2 * words}),
                      ("ofmap_sram_bytes", {"ofmap": MAX_BUFFER_WORDS * 64})):
        with pytest.raises(ConfigError, match=rf"{field}: \d+ bytes make an? \w+ buffer of "
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
            except ConfigError:
                pass
            else:
                raise AssertionError("a bad parameter was accepted")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]


# ---- latency assertions at elaboration ------------------------------------------------------
def test_structure_matches_the_timing_model():
    """Every config the tests use elaborates: the registers each component builds add up to
    the edgetron.hw.gemm latencies (the components raise AssertionError otherwise)."""
    for dataflow in ("ws", "os"):
        for rows, cols in ((1, 1), (1, 3), (3, 1), (3, 5), (4, 4)):
            Fragment.get(GemmUnit(small_config(rows, cols, dataflow)), None)


def test_a_latency_the_structure_does_not_have_is_refused(monkeypatch):
    """The elaboration checks can fail: a timing model that disagrees with the built
    structure (one cycle more anywhere) stops elaboration, naming the path."""
    config = small_config(3, 2, "os")

    class SlowRequantizer(Requantizer):
        LATENCY = hw.REQUANT_LATENCY + 1

    def refused(component, match):
        with warnings.catch_warnings():
            # The half-built hierarchy of a refused elaboration is never used.
            warnings.simplefilter("ignore", UnusedElaboratable)
            with pytest.raises(AssertionError, match=match):
                Fragment.get(component, None)
            gc.collect()

    refused(SlowRequantizer(4), rf"{hw.REQUANT_LATENCY} data stages .* REQUANT_LATENCY is "
                                rf"{hw.REQUANT_LATENCY + 1}")
    real = systolic.array_timing

    def longer(cfg):
        t = real(cfg)
        return ArrayTiming(t.latency + 1, t.drain_delay, t.min_tile_gap)

    for df in ("ws", "os"):
        with monkeypatch.context() as patch:
            patch.setattr(systolic, "array_timing", longer)
            refused(SystolicArray(config.replace(dataflow=df)),
                    "SystolicArray: .* cycles deep as built")
    with monkeypatch.context() as patch:
        patch.setattr(hw, "GEMM_CMD_CYCLES", hw.GEMM_CMD_CYCLES + 1)
        refused(GemmUnit(config), rf"command phase .* {len(hw.GEMM_CMD_STATES)} cycles deep")
    with monkeypatch.context() as patch:
        patch.setattr(hw, "GEMM_BUFFER_READ_CYCLES", 0)
        # As built: the synchronous read (1) and its output registers.
        refused(GemmUnit(config),
                rf"the A buffer read is {1 + hw.GEMM_BUFFER_OUT_REGS} cycles deep")


# ---- limits, shape check ---------------------------------------------------------------------
def test_protocol_beat_counts_are_the_simulators():
    # The limits and the shape check are edgetron.hw.gemm's own functions (one definition);
    # what the host model adds is the beat count of each stream, which must be the
    # simulator's. (The RTL's own shape-check gates are measured in test_gemm.py.)
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
        model = GemmModel(config)
        for _ in range(20):
            m, k, n = (int(x) for x in rng.integers(1, 3 * max(lim[4:]) // 2 + 2, 3))
            if not shape_fits(config, m, k, n):
                continue
            ph = gemm_phases(p, m, k, n, 1)
            beats = model.beats(m, k, n)
            assert (beats["a"], beats["w"], beats["ch"], beats["o"]) == (
                ph.a_beats, ph.w_beats, ph.ch_beats, ph.out_beats)


# ---- codec -----------------------------------------------------------------------------------
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
    with pytest.raises(ValueError, match=r"shift must lie in \[1, 62\]"):
        encode_gemm(config, a, w, None, 1, 0, False)
    with pytest.raises(TypeError, match="mult must hold integers"):
        encode_gemm(config, a, w, None, None, None, False)
    with pytest.raises(ValueError, match="could overflow the 32-bit accumulator"):
        encode_gemm(config, a, w, np.full(6, INT32_MAX), None, None, True)
    with pytest.raises(ValueError, match=r"a must be \(M, K\) and w \(K, N\)"):
        encode_gemm(config, a, w.T, None, None, None, True)
    with pytest.raises(ValueError, match=r"expected ceil\(6/4\) \* 3 = 6 output beats, got 5"):
        decode_gemm(config, [0] * 5, 3, 6, True)
    with pytest.raises(ValueError, match="int8 result must lie in"):
        decode_gemm(config, [1000] * 6, 3, 6, False)
    beats = encode_gemm(config, a, w, None, None, None, True)
    cmd = decode_gemm_command(config, beats["cmd"][0])
    with pytest.raises(ValueError, match=r"a: expected 6 beats for M=3, K=5, N=6, got 5"):
        decode_gemm_operands(config, cmd, {**beats, "a": beats["a"][1:]})


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
    assert bits_m + bits_k + bits_n + 1 == gemm_layouts(config, lim).cmd.size
    byte = 0xFF
    assert beats["a"] == [1 | (-2 & byte) << 8, 3]
    assert beats["w"] == [4, -5 & byte, 6]
    assert beats["ch"] == [(-7 & 0xFFFFFFFF) | 9 << 32 | 10 << 63]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_decode_operands_inverts_encode(dataflow):
    """The monitors' codec inverse rebuilds exactly the operands that were encoded, for
    shapes that are and are not multiples of the array."""
    config = small_config(3, 2, dataflow, input_bits=5, weight_bits=7)
    model = GemmModel(config)
    rng = np.random.default_rng(7)
    for m, k, n in ((1, 1, 1), (3, 3, 2), (7, 5, 3), (4, 8, 6)):
        for out32 in (False, True):
            call = random_call(model, rng, m, k, n, out32)
            beats = model.encode(call)
            cmd = decode_gemm_command(config, beats["cmd"][0])
            assert cmd == (m, k, n, out32)
            back = decode_gemm_operands(config, cmd, beats)
            for field in GemmCall._fields:
                np.testing.assert_array_equal(getattr(back, field), getattr(call, field))


# ---- monitor and scoreboard ------------------------------------------------------------------
def _outputs(model, call):
    """The output words a correct unit gives for ``call`` (golden, encoded as o beats)."""
    want = model.expected(call)
    c, nt = model.cols, -(-call.n // model.cols)
    padded = np.zeros((call.m, nt * c), np.int64)
    padded[:, :call.n] = want
    lay = model.layouts.o
    return [lay.const(padded[m, t * c:(t + 1) * c].tolist()).as_value().value
            for t in range(nt) for m in range(call.m)]


def test_monitor_rebuilds_overlapping_invocations():
    """Beats of the next invocation may arrive before the previous one is complete (an
    overlapped unit): the monitor assigns them per stream, in command order, and the
    scoreboard matches outputs in order; a rejected command takes no beats."""
    config = small_config(2, 3, "ws")
    model = GemmModel(config)
    rng = np.random.default_rng(9)
    calls = [random_call(model, rng, 3, 5, 4, False), random_call(model, rng, 2, 3, 6, True)]
    beats = [model.encode(c) for c in calls]
    board = GemmScoreboard(model)
    monitor = GemmMonitor(model, board)
    events = [("cmd", beats[0]["cmd"][0]), ("cmd", model.command_word(0, 1, 1, True)),
              ("cmd", beats[1]["cmd"][0])]
    # Interleave the operand streams of both calls, each stream in order.
    for name in ("a", "w", "ch"):
        events += [(name, word) for word in beats[0][name][:2]]
    for name in ("ch", "w", "a"):
        events += [(name, word) for word in beats[0][name][2:] + beats[1][name]]
    for cycle, (name, word) in enumerate(events):
        monitor.accept(name, word, cycle)
    monitor.check_idle()
    outs = _outputs(model, calls[0]) + _outputs(model, calls[1])
    for i, word in enumerate(outs):
        board.output(word, len(events) + i)
        board.check_stray()
    assert board.finished() and [inv.accepted for inv in board.invocations] == [1, 0, 1]
    for inv, call in zip(board.results(), calls, strict=True):
        np.testing.assert_array_equal(inv.result, model.expected(call))
    with pytest.raises(AssertionError, match="stray output beat"):
        board.output(outs[0], 999)
        board.check_stray()


def test_scoreboard_names_a_wrong_result():
    config = small_config(2, 2, "os")
    model = GemmModel(config)
    call = random_call(model, np.random.default_rng(1), 2, 3, 2, True)
    board = GemmScoreboard(model)
    monitor = GemmMonitor(model, board)
    for name, words in model.encode(call).items():
        for word in words:
            monitor.accept(name, word, 0)
    outs = _outputs(model, call)
    outs[-1] ^= 1
    with pytest.raises(AssertionError, match=r"invocation 0 .* 1 of 4 values differ"):
        for word in outs:
            board.output(word, 1)
