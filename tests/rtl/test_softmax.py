# amaranth: UnusedElaboratable=no
"""SoftmaxUnit in the Amaranth simulator against golden.softmax.softmax_apply."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import INT32_MAX, INT32_MIN
from edgetron.golden.softmax import iexp_constants, softmax_apply, softmax_constants
from edgetron.hw.arith import beats
from edgetron.hw.softmax import softmax_cycles
from edgetron.rtl.softmax import (
    SoftmaxUnit,
    decode_softmax,
    encode_softmax,
    encode_softmax_consts,
    softmax_field_bounds,
)

from .vector_streams import run_streams, segment_cycles


def _rows(rng, count, n, kind):
    if kind == "equal":
        return np.full((count, n), int(rng.integers(INT32_MIN, INT32_MAX)))
    if kind == "huge":                              # one huge logit, the rest tiny
        q = rng.integers(-1000, 1000, (count, n))
        q[np.arange(count), rng.integers(0, n, count)] = INT32_MAX
        return q
    if kind == "extremes":                          # only INT32_MIN and INT32_MAX
        return rng.choice([INT32_MIN, INT32_MAX], (count, n))
    if kind == "narrow":                            # the curved part of exp at fine scales
        return rng.integers(-20000, 20000, (count, n))
    return rng.integers(INT32_MIN, INT32_MAX, (count, n), dtype=np.int64, endpoint=True)


def _scale(rng):
    return float(rng.choice([2.0 ** -74.9, 2.0 ** 18, 2.0 ** rng.uniform(-20, -8),
                             2.0 ** rng.uniform(-74, 17)]))


def _segments(rng, unit, count):
    """Segments of rows (one constants beat each); ``count`` rows in all, extremes weighted."""
    kinds = ["random", "equal", "huge", "extremes", "narrow", "narrow"]
    segs, total = [], 0
    while total < count:
        n = int(rng.choice([1, unit.lanes, unit.lanes + 1, unit.row_max,
                            int(rng.integers(1, unit.row_max + 1))]))
        r = int(rng.integers(1, 12))
        q = _rows(rng, r, n, kinds[len(segs) % len(kinds)])
        segs.append((q, softmax_constants(_scale(rng))))
        total += r
    return segs


def _run(unit, segs, **kw):
    items, counts = [], []
    for q, consts in segs:
        words = encode_softmax(unit, q)
        items.append(("c", encode_softmax_consts(unit, consts, q.shape[1])))
        items += [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    o0 = 0
    for (q, consts), nb in zip(segs, counts, strict=True):
        got = decode_softmax(unit, run.out[o0:o0 + nb], *q.shape)
        np.testing.assert_array_equal(got, softmax_apply(q, consts), err_msg=f"n={q.shape[1]}")
        o0 += nb
    return run, counts


@pytest.mark.parametrize(("lanes", "row_max", "count"), [(4, 24, 1000), (3, 10, 150), (1, 5, 60)])
def test_random_rows_with_gaps(lanes, row_max, count):
    rng = np.random.default_rng(lanes)
    unit = SoftmaxUnit(lanes, row_max)
    segs = _segments(rng, unit, count)
    _run(unit, segs, p_gap=0.15, p_stall=0.2, seed=lanes)
    # the same rows at full rate: every segment takes exactly the modelled cycles
    run, counts = _run(unit, segs)
    assert segment_cycles(run, counts, counts) == \
        [softmax_cycles(lanes, *q.shape) for q, _ in segs]


@pytest.mark.parametrize(("lanes", "row_max"), [(16, 256), (8, 256), (2, 16), (1, 9)])
def test_measured_cycles_equal_timing_model(lanes, row_max):
    rng = np.random.default_rng(lanes)
    unit = SoftmaxUnit(lanes, row_max)
    consts = softmax_constants(2.0 ** -10)
    shapes = [(1, 1), (3, 1), (2, lanes), (4, lanes + 1), (3, row_max), (2, 9 * lanes),
              (5, min(row_max, 197))]
    segs = [(rng.integers(-50000, 50000, s), consts) for s in shapes if s[1] <= row_max]
    run, counts = _run(unit, segs)
    measured = segment_cycles(run, counts, counts)
    assert measured == [softmax_cycles(lanes, *q.shape) for q, _ in segs]


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


def test_parameters_and_constants_checked():
    with pytest.raises(ValueError, match=r"SoftmaxUnit: row_max must be an integer in"):
        SoftmaxUnit(4, 0)
    unit = SoftmaxUnit.from_config(AcceleratorConfig(vector_lanes=2), row_max=8)
    Fragment.get(unit, None)
    assert (unit.lanes, unit.row_max, unit.in_bits) == (2, 8, 32)
    with pytest.raises(ValueError, match=r"n must be an integer in \[1, 8\]"):
        encode_softmax_consts(unit, softmax_constants(0.01), 9)
    with pytest.raises(ValueError, match="constant k = 3"):
        encode_softmax_consts(unit, softmax_constants(0.01)._replace(k=3), 4)
