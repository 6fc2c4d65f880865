# amaranth: UnusedElaboratable=no
"""AddUnit in the Amaranth simulator against golden.add.residual_add.

Stimuli, codec, golden, cycles and coverage bins come from tests/models/add.py (shared with
tests/cocotb/tb_add.py); the bench is tests/rtl/vector_streams.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.add import ResidualConstants
from edgetron.hw.add import ADD_LATENCY
from edgetron.rtl.add import AddUnit, encode_add, encode_add_consts

from ..models.add import AddModel
from ..models.vector import Coverage
from .vector_streams import run_segments


@pytest.mark.parametrize("lanes", [1, 4, 3])
def test_random_vectors_with_gaps(lanes):
    rng = np.random.default_rng(lanes)
    model = AddModel(lanes)
    segs = model.coverage_segments(rng) + model.random_segments(rng, 1000 if lanes == 4 else 150)
    cov = Coverage(model)
    run_segments(AddUnit(lanes), model, segs, gap=0.2, stall=0.25, seed=lanes, coverage=cov)
    assert not cov.empty(), cov.report()
    # the same vectors at full rate: every one takes exactly the modelled cycles
    board = run_segments(AddUnit(lanes), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


@pytest.mark.parametrize("in_bits", [8, 2])
def test_every_shift(in_bits):
    # the shift decides where the rounding bit enters (below or above the partial products'
    # split), the byte and bit shifts and the saturation mask: every value, both widths
    model = AddModel(3, in_bits)
    segs = model.every_shift_segments(np.random.default_rng(in_bits))
    board = run_segments(AddUnit(3, in_bits), model, segs, gap=0.1, stall=0.3, seed=in_bits)
    assert len(board.done) == len(segs)


@pytest.mark.parametrize("lanes", [1, 8, 16])
def test_measured_cycles_equal_timing_model(lanes):
    model = AddModel(lanes)
    segs = model.full_rate_segments(np.random.default_rng(7))
    board = run_segments(AddUnit(lanes), model, segs)
    measured = [inv.cycles for inv in board.done]
    assert measured == [model.cycles(s) for s in segs]
    assert measured[-1] == -(-600 // lanes) + ADD_LATENCY   # one beat per cycle


def test_parameters_checked_before_construction():
    with pytest.raises(ValueError, match=r"AddUnit: lanes must be an integer in \[1, 256\]"):
        AddUnit(0)
    with pytest.raises(ValueError, match=r"AddUnit: in_bits must be an integer in \[2, 8\]"):
        AddUnit(4, 9)


def test_from_config_and_bad_constants():
    unit = AddUnit.from_config(AcceleratorConfig(vector_lanes=8))
    assert (unit.lanes, unit.in_bits) == (8, 8)
    Fragment.get(unit, None)
    with pytest.raises(ValueError, match="constant s = 0"):
        encode_add_consts(unit.layouts, ResidualConstants(1, 1, 0))
    with pytest.raises(ValueError, match="a must lie in"):
        encode_add(unit.layouts, [200], [0])
