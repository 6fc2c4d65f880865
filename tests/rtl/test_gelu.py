# amaranth: UnusedElaboratable=no
"""GeluUnit in the Amaranth simulator against golden.gelu (int8 and int32 outputs).

Stimuli, codec, golden, cycles and coverage bins come from tests/models/gelu.py (shared
with tests/cocotb/tb_gelu.py); the bench is tests/rtl/vector_streams.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.gelu import gelu_constants
from edgetron.golden.intops import int_range
from edgetron.hw.gelu import GELU_LATENCY
from edgetron.rtl.gelu import GeluUnit, encode_gelu_consts, gelu_field_bounds

from ..models.gelu import GeluModel
from ..models.vector import Coverage, Segment
from .vector_streams import run_segments


@pytest.mark.parametrize(("lanes", "in_bits", "count"), [(4, 32, 1000), (3, 8, 150), (1, 16, 100)])
def test_random_vectors_with_gaps(lanes, in_bits, count):
    rng = np.random.default_rng(lanes * 100 + in_bits)
    model = GeluModel(lanes, in_bits)
    segs = model.coverage_segments(rng) + model.random_segments(rng, count)
    cov = Coverage(model)
    run_segments(GeluUnit(lanes, in_bits), model, segs, gap=0.2, stall=0.25, seed=in_bits,
                 coverage=cov)
    if lanes > 1:
        assert not cov.empty(), cov.report()
    # the same vectors at full rate: every one takes exactly the modelled cycles
    board = run_segments(GeluUnit(lanes, in_bits), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


@pytest.mark.parametrize("lanes", [1, 8, 16])
def test_measured_cycles_equal_timing_model(lanes):
    model = GeluModel(lanes)
    segs = model.full_rate_segments(np.random.default_rng(3))
    board = run_segments(GeluUnit(lanes), model, segs)
    measured = [inv.cycles for inv in board.done]
    assert measured == [model.cycles(s) for s in segs]
    assert measured[-1] == -(-800 // lanes) + GELU_LATENCY   # one beat per cycle


def _rescale_edges(c, cb: int, in_bits: int) -> np.ndarray:
    """Inputs whose rescaled magnitude lands on the clip, on 2**cb (the rescale's flag of
    a magnitude beyond its window) or on a rounding boundary, one below and one above
    each, with both signs, and the input range's ends."""
    f, lo, hi = c.pre_shift, *int_range(in_bits)
    mags = []
    for target in (c.clip, 1 << cb):
        at = target << -f if f < 0 else -(-target >> f)   # the least |q| reaching target
        half = 1 << (-f - 1) if f < 0 else 0
        mags += [edge + e for edge in (at, at - half) for e in (-1, 0, 1)]
    mags = np.array([mg for mg in mags if 0 <= mg <= hi], dtype=np.int64)
    return np.concatenate([mags, -mags, [lo, hi, 0]])


def test_rescale_and_clip_at_every_shift():
    # every internal shift golden derives (scale 2**(f - 10.5) has pre_shift f): the
    # rescale (|q| + rounding, one barrel shift, the beyond-the-window flag) and the clip
    # at their boundaries; the RTL has no clamp before the rescale (its shift is exact)
    model = GeluModel(4, 32)
    clip_bits = gelu_field_bounds()["clip"].bit_length()
    segs = []
    for f in range(-62, 31):
        c = gelu_constants(2.0 ** (f - 10.5), 32)
        assert c.pre_shift == f
        segs.append(Segment(f"f={f}", c, (_rescale_edges(c, clip_bits, 32),)))
    run_segments(GeluUnit(4, 32), model, segs)


def test_field_bounds_hold_over_the_scale_range():
    rng = np.random.default_rng(0)
    b = gelu_field_bounds()
    for e in rng.uniform(-72.9, 20.0, 3000):
        c = gelu_constants(2.0 ** e, 32)
        assert c.clip <= b["clip"] and c.q_one <= b["q_one"] and c.erf_shift <= b["erf_shift"]


def test_parameters_and_constants_checked():
    with pytest.raises(ValueError, match=r"GeluUnit: in_bits must be an integer in \[2, 32\]"):
        GeluUnit(4, 33)
    unit = GeluUnit.from_config(AcceleratorConfig(vector_lanes=2))
    assert unit.lanes == 2 and unit.in_bits == 32
    Fragment.get(unit, None)
    with pytest.raises(ValueError, match="constants for in_bits = 8"):
        encode_gelu_consts(unit, gelu_constants(0.1, 8))
    with pytest.raises(TypeError, match="GeluInt8Constants or GeluConstants"):
        encode_gelu_consts(unit, (1, 2))
