# amaranth: UnusedElaboratable=no
"""LayerNormUnit in the Amaranth simulator against golden.layernorm.layernorm_int.

Stimuli, codec, golden, cycles and coverage bins come from tests/models/layernorm.py
(shared with tests/cocotb/tb_layernorm.py); the bench is tests/rtl/vector_streams.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.layernorm import layernorm_constants
from edgetron.hw.arith import beats
from edgetron.hw.layernorm import layernorm_cycles
from edgetron.rtl.layernorm import LayerNormUnit, encode_layernorm_consts

from ..models.layernorm import LayerNormModel
from ..models.vector import Coverage
from .vector_streams import run_segments


@pytest.mark.parametrize(("lanes", "row_max", "in_bits", "rows"),
                         [(4, 24, 8, 1000), (3, 11, 16, 150), (1, 6, 8, 60)])
def test_random_rows_with_gaps(lanes, row_max, in_bits, rows):
    rng = np.random.default_rng(lanes)
    model = LayerNormModel(lanes, row_max, in_bits)
    segs = model.coverage_segments(rng) + model.random_segments(rng, rows)
    cov = Coverage(model)
    board = run_segments(LayerNormUnit(lanes, row_max, in_bits), model, segs, gap=0.15,
                         stall=0.2, seed=lanes, coverage=cov)
    assert board.rows >= rows
    if (lanes, in_bits) == (4, 8):
        assert not cov.empty(), cov.report()
    # the same rows at full rate: every segment takes exactly the modelled cycles
    board = run_segments(LayerNormUnit(lanes, row_max, in_bits), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


@pytest.mark.parametrize(("lanes", "row_max"), [(4, 24), (1, 6)])
def test_output_credits_hold_back_input_under_heavy_backpressure(lanes, row_max):
    # o ready one cycle in twenty under segments of ten rows of the longest length: more
    # beats come in than the output FIFO holds, and only its credits keep the unit from
    # overwriting one (a unit taking input past them fails this bench).
    model = LayerNormModel(lanes, row_max)
    rng = np.random.default_rng(7)
    segs = [model.segment(rng, kind, 10, row_max) for kind in ("random", "largest", "one")]
    board = run_segments(LayerNormUnit(lanes, row_max), model, segs, stall=0.95, seed=3)
    assert board.rows == 30


@pytest.mark.parametrize(("lanes", "row_max"), [(16, 768), (8, 256), (2, 24), (1, 12)])
def test_measured_cycles_equal_timing_model(lanes, row_max):
    model = LayerNormModel(lanes, row_max)
    segs = model.full_rate_segments(np.random.default_rng(lanes))
    board = run_segments(LayerNormUnit(lanes, row_max), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


def test_steady_state_rate_on_197_channel_rows():
    for lanes in (8, 16):
        extra = layernorm_cycles(lanes, 7, 197) - layernorm_cycles(lanes, 6, 197)
        assert 197 / extra >= lanes / 2
        assert extra == max(beats(197, lanes), 10)


def test_parameters_and_constants_checked():
    with pytest.raises(ValueError, match=r"LayerNormUnit: row_max must be an integer in"):
        LayerNormUnit(4, 5000)
    unit = LayerNormUnit.from_config(AcceleratorConfig(vector_lanes=2, vector_row_max=8))
    Fragment.get(unit, None)
    assert (unit.lanes, unit.row_max, unit.in_bits) == (2, 8, 8)
    consts = layernorm_constants(np.ones(9), np.zeros(9), 0.1, 0.1)
    with pytest.raises(ValueError, match=r"channels must be an integer in \[2, 8\]"):
        encode_layernorm_consts(unit, consts)
