# amaranth: UnusedElaboratable=no
"""LayerNormUnit in the Amaranth simulator against golden.layernorm.layernorm_int."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.layernorm import layernorm_constants, layernorm_int
from edgetron.hw.arith import beats
from edgetron.hw.layernorm import layernorm_cycles
from edgetron.rtl.layernorm import (
    LayerNormUnit,
    decode_layernorm,
    encode_layernorm,
    encode_layernorm_consts,
)

from .vector_streams import run_streams, segment_cycles


def _consts(rng, c, in_bits, kind):
    gamma = rng.normal(1.0, 0.5, c)
    beta = rng.normal(0.0, 0.5, c)
    in_scale = float(2.0 ** rng.uniform(-8, 0))
    out_scale = float(np.abs(gamma).max() / 2000 * 2.0 ** rng.uniform(0, 8))
    eps = 0.0 if kind in ("equal", "zero") else float(rng.choice([1e-6, 1e-2, 0.0]))
    if kind == "extreme_gamma":
        gamma = np.where(rng.random(c) < 0.5, -1.0, 1.0) * 16383 * out_scale * 0.999
    return layernorm_constants(gamma, beta, in_scale, out_scale, eps, in_bits)


def _rows(rng, r, c, in_bits, kind):
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    if kind in ("equal", "zero"):
        return np.full((r, c), int(rng.integers(lo, hi + 1)))      # variance 0
    if kind == "largest":
        q = np.full((r, c), lo)
        q[:, ::2] = hi                                              # the largest variance
        return q
    if kind == "min":
        return np.full((r, c), lo)
    if kind == "max":
        return np.full((r, c), hi)
    if kind == "one":
        q = np.zeros((r, c), np.int64)
        q[:, int(rng.integers(0, c))] = hi
        return q
    return rng.integers(lo, hi + 1, (r, c))


def _segments(rng, unit, count):
    kinds = ["random", "equal", "largest", "min", "max", "one", "extreme_gamma", "random"]
    segs, total = [], 0
    while total < count:
        c = int(rng.choice([2, unit.lanes, unit.lanes + 1, unit.row_max,
                            int(rng.integers(2, unit.row_max + 1))]))
        c = max(2, c)
        kind = kinds[len(segs) % len(kinds)]
        r = int(rng.integers(1, 10))
        segs.append((_rows(rng, r, c, unit.in_bits, kind),
                     _consts(rng, c, unit.in_bits, kind)))
        total += r
    return segs


def _run(unit, segs, **kw):
    items, counts = [], []
    for q, consts in segs:
        words = encode_layernorm(unit, q)
        cw = encode_layernorm_consts(unit, consts)
        items += [("c", cw[0])] + [("p", w) for w in cw[1:]] + [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    o0 = 0
    for (q, consts), nb in zip(segs, counts, strict=True):
        got = decode_layernorm(unit, run.out[o0:o0 + nb], *q.shape)
        np.testing.assert_array_equal(got, layernorm_int(q, consts), err_msg=f"C={q.shape[1]}")
        o0 += nb
    return run, counts


@pytest.mark.parametrize(("lanes", "row_max", "in_bits", "count"),
                         [(4, 24, 8, 1000), (3, 11, 16, 150), (1, 6, 8, 60)])
def test_random_rows_with_gaps(lanes, row_max, in_bits, count):
    rng = np.random.default_rng(lanes)
    unit = LayerNormUnit(lanes, row_max, in_bits)
    segs = _segments(rng, unit, count)
    _run(unit, segs, p_gap=0.15, p_stall=0.2, seed=lanes)
    # the same rows at full rate: every segment takes exactly the modelled cycles
    run, counts = _run(unit, segs)
    assert segment_cycles(run, counts, counts) == \
        [layernorm_cycles(lanes, *q.shape) for q, _ in segs]


@pytest.mark.parametrize(("lanes", "row_max"), [(16, 768), (8, 256), (2, 24), (1, 12)])
def test_measured_cycles_equal_timing_model(lanes, row_max):
    rng = np.random.default_rng(lanes)
    unit = LayerNormUnit(lanes, row_max)
    shapes = [(1, 2), (3, 2), (2, lanes + 1), (3, row_max), (2, 10 * lanes),
              (5, min(row_max, 197))]
    segs = [(rng.integers(-128, 128, s), _consts(rng, s[1], 8, "random"))
            for s in shapes if 2 <= s[1] <= row_max]
    run, counts = _run(unit, segs)
    measured = segment_cycles(run, counts, counts)
    assert measured == [layernorm_cycles(lanes, *q.shape) for q, _ in segs]


def test_steady_state_rate_on_197_channel_rows():
    for lanes in (8, 16):
        extra = layernorm_cycles(lanes, 7, 197) - layernorm_cycles(lanes, 6, 197)
        assert 197 / extra >= lanes / 2
        assert extra == max(beats(197, lanes), 10)


def test_parameters_and_constants_checked():
    with pytest.raises(ValueError, match=r"LayerNormUnit: row_max must be an integer in"):
        LayerNormUnit(4, 5000)
    unit = LayerNormUnit.from_config(AcceleratorConfig(vector_lanes=2), row_max=8)
    Fragment.get(unit, None)
    assert (unit.lanes, unit.row_max, unit.in_bits) == (2, 8, 8)
    consts = layernorm_constants(np.ones(9), np.zeros(9), 0.1, 0.1)
    with pytest.raises(ValueError, match=r"channels must be an integer in \[2, 8\]"):
        encode_layernorm_consts(unit, consts)
