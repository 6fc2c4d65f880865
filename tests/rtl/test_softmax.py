# amaranth: UnusedElaboratable=no
"""SoftmaxUnit in the Amaranth simulator against golden.softmax.softmax_apply.

Stimuli, codec, golden, cycles and coverage bins come from tests/models/softmax.py (shared
with tests/cocotb/tb_softmax.py); the bench is tests/rtl/vector_streams.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.softmax import iexp_constants, softmax_constants
from edgetron.hw.arith import beats
from edgetron.hw.softmax import softmax_cycles
from edgetron.rtl.softmax import SoftmaxUnit, encode_softmax_consts, softmax_field_bounds

from ..models.softmax import SoftmaxModel
from ..models.vector import Coverage, Segment, VectorMonitor, VectorScoreboard
from .vector_streams import run_segments


@pytest.mark.parametrize(("lanes", "row_max", "rows"), [(4, 24, 1000), (3, 10, 150), (1, 5, 60)])
def test_random_rows_with_gaps(lanes, row_max, rows):
    rng = np.random.default_rng(lanes)
    model = SoftmaxModel(lanes, row_max)
    segs = model.coverage_segments(rng) + model.random_segments(rng, rows)
    cov = Coverage(model)
    board = run_segments(SoftmaxUnit(lanes, row_max), model, segs, gap=0.15, stall=0.2,
                         seed=lanes, coverage=cov)
    assert board.rows >= rows
    if lanes > 1:
        assert not cov.empty(), cov.report()
    # the same rows at full rate: every segment takes exactly the modelled cycles
    board = run_segments(SoftmaxUnit(lanes, row_max), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


def test_output_fifo_under_heavy_backpressure():
    # o.ready high one cycle in ten: the output FIFO fills, the beat credits hold i.ready
    # back (softmax_out_fifo_words(2, 8) = 48 words; segments of up to 40 rows of up to 4
    # beats, and a segment's rows stay in the unit together), and every row comes out exact.
    rng = np.random.default_rng(7)
    model = SoftmaxModel(2, 8)
    segs = model.random_segments(rng, 80, max_rows=40)
    board = run_segments(SoftmaxUnit(2, 8), model, segs, stall=0.9, seed=7)
    assert board.rows >= 80


@pytest.mark.parametrize(("lanes", "row_max"), [(16, 256), (8, 256), (2, 16), (1, 9)])
def test_measured_cycles_equal_timing_model(lanes, row_max):
    model = SoftmaxModel(lanes, row_max)
    segs = model.full_rate_segments(np.random.default_rng(lanes))
    board = run_segments(SoftmaxUnit(lanes, row_max), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


def test_steady_state_rate_on_197_logit_rows():
    for lanes in (8, 16):
        rows = 6
        extra = softmax_cycles(lanes, rows + 1, 197) - softmax_cycles(lanes, rows, 197)
        assert 197 / extra >= lanes / 2
        assert extra == max(beats(197, lanes), 9)


def test_field_bounds_hold_over_the_scale_range():
    rng = np.random.default_rng(0)
    b = softmax_field_bounds()
    for e in rng.uniform(-74.9, 18.0, 2000):
        c = iexp_constants(2.0 ** e)
        for name in ("q_ln2", "q_b", "q_c", "l_max", "z_max", "u_max", "s_ln2", "m_ln2"):
            assert getattr(c, name) <= b[name], name


def test_monitor_and_scoreboard_catch_a_wrong_result():
    model = SoftmaxModel(2, 4)
    seg = Segment("x", softmax_constants(0.01), (np.array([[1, 2, 3]]),))
    board = VectorScoreboard(model)
    mon = VectorMonitor(model, [seg], board)
    for cycle, (stream, word) in enumerate(model.items(seg)):
        mon.on_beat(stream, word, cycle)
    good = model.expected(seg, seg.data)
    words = [((1 << 16) | int(good[0, 2])) if j else int(good[0, 0]) | (int(good[0, 1]) << 8)
             for j in range(2)]
    board.on_out(words[0], 10)
    with pytest.raises(AssertionError, match="differ from golden"):
        board.on_out(words[1] ^ 1, 11)
    with pytest.raises(AssertionError, match="no segment expects it"):
        board.on_out(0, 12)


def test_parameters_and_constants_checked():
    with pytest.raises(ValueError, match=r"SoftmaxUnit: row_max must be an integer in"):
        SoftmaxUnit(4, 0)
    cfg = AcceleratorConfig(vector_lanes=2, vector_row_max=8)
    unit = SoftmaxUnit.from_config(cfg)
    Fragment.get(unit, None)
    assert (unit.lanes, unit.row_max, unit.in_bits) == (2, 8, 32)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 8\]"):
        encode_softmax_consts(unit, softmax_constants(0.01), 9)
    with pytest.raises(ValueError, match="constant k = 3"):
        encode_softmax_consts(unit, softmax_constants(0.01)._replace(k=3), 4)
