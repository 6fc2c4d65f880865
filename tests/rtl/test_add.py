# amaranth: UnusedElaboratable=no
"""AddUnit in the Amaranth simulator against golden.add.residual_add."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.add import ResidualConstants, residual_add, residual_constants
from edgetron.golden.intops import M_MAX, S_MAX, S_MIN
from edgetron.hw.add import ADD_LATENCY, add_cycles
from edgetron.rtl.add import AddUnit, decode_add, encode_add, encode_add_consts

from .vector_streams import run_streams, segment_cycles


def _cases(rng, count):
    """``count`` vectors (a, b, constants) with the extremes weighted."""
    cases = []
    for t in range(count):
        n = int(rng.choice([1, 2, 3, 5, 8, 17, 64, int(rng.integers(1, 80))]))
        kind = t % 6
        if kind == 0:
            a = np.full(n, -128)
            b = np.full(n, int(rng.choice([-128, 127])))
        elif kind == 1:
            a = np.full(n, 127)
            b = np.full(n, 127)
        else:
            a = rng.integers(-128, 128, n)
            b = rng.integers(-128, 128, n)
        if t % 7 == 0:
            consts = ResidualConstants(int(rng.choice([0, M_MAX])), int(rng.choice([0, M_MAX])),
                                       int(rng.choice([S_MIN, S_MAX, 31])))
        else:
            sa, sb, sy = (float(2.0 ** rng.uniform(-12, 2)) for _ in range(3))
            consts = residual_constants(sa, sb, sy)
        cases.append((a, b, consts))
    return cases


def _run(unit, cases, **kw):
    lay = unit.layouts
    items, in_counts, out_counts = [], [], []
    for a, b, consts in cases:
        words = encode_add(lay, a, b)
        items.append(("c", encode_add_consts(lay, consts)))
        items += [("i", w) for w in words]
        in_counts.append(len(words))
        out_counts.append(len(words))
    run = run_streams(unit, items, sum(out_counts), **kw)
    o0 = 0
    for (a, b, consts), nb in zip(cases, out_counts, strict=True):
        got = decode_add(lay, run.out[o0:o0 + nb], a.size)
        np.testing.assert_array_equal(got, residual_add(a, b, *consts), err_msg=str(consts))
        o0 += nb
    return run, in_counts, out_counts


@pytest.mark.parametrize("lanes", [1, 4, 3])
def test_random_vectors_with_gaps(lanes):
    rng = np.random.default_rng(lanes)
    cases = _cases(rng, 1000 if lanes == 4 else 150)
    _run(AddUnit(lanes), cases, p_gap=0.2, p_stall=0.25, seed=lanes)
    # the same vectors at full rate: every one takes exactly the modelled cycles
    run, ic, oc = _run(AddUnit(lanes), cases)
    assert segment_cycles(run, ic, oc) == [add_cycles(lanes, a.size) for a, _, _ in cases]


@pytest.mark.parametrize("lanes", [1, 8, 16])
def test_measured_cycles_equal_timing_model(lanes):
    rng = np.random.default_rng(7)
    cases = [(rng.integers(-128, 128, n), rng.integers(-128, 128, n),
              residual_constants(0.05, 0.02, 0.04)) for n in (1, lanes, lanes + 1, 197, 600)]
    run, ic, oc = _run(AddUnit(lanes), cases)
    measured = segment_cycles(run, ic, oc)
    assert measured == [add_cycles(lanes, a.size) for a, _, _ in cases]
    # steady state: one beat per cycle
    assert measured[-1] == -(-600 // lanes) + ADD_LATENCY


def test_parameters_checked_before_construction():
    with pytest.raises(ValueError, match=r"AddUnit: lanes must be an integer in \[1, 256\]"):
        AddUnit(0)
    with pytest.raises(ValueError, match=r"AddUnit: in_bits must be an integer in \[2, 8\]"):
        AddUnit(4, 9)


def test_from_config_and_bad_constants():
    unit = AddUnit.from_config(AcceleratorConfig(vector_lanes=8))
    assert unit.lanes == 8
    Fragment.get(unit, None)
    with pytest.raises(ValueError, match="constant s = 0"):
        encode_add_consts(unit.layouts, ResidualConstants(1, 1, 0))
    with pytest.raises(ValueError, match="a must lie in"):
        encode_add(unit.layouts, [200], [0])
