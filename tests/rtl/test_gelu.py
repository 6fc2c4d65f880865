# amaranth: UnusedElaboratable=no
"""GeluUnit in the Amaranth simulator against golden.gelu (int8 and int32 outputs)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment

from edgetron.config import AcceleratorConfig
from edgetron.golden.gelu import (
    gelu_apply,
    gelu_constants,
    gelu_int8_apply,
    gelu_int8_constants,
)
from edgetron.golden.intops import int_range
from edgetron.hw.gelu import GELU_LATENCY, gelu_cycles
from edgetron.rtl.gelu import (
    GeluUnit,
    decode_gelu,
    encode_gelu,
    encode_gelu_consts,
    gelu_field_bounds,
)

from .vector_streams import run_streams, segment_cycles


def _consts(rng, in_bits, out32):
    # input scales over the whole supported range, extremes included
    scale = float(rng.choice([2.0 ** -72, 2.0 ** 19, 2.0 ** rng.uniform(-40, 10),
                              2.0 ** rng.uniform(-12, -4)]))
    if out32:
        return gelu_constants(scale, in_bits)
    c = gelu_constants(scale, in_bits)
    return gelu_int8_constants(scale, c.out_scale * 2.0 ** rng.uniform(-4, 14), in_bits)


def _vector(rng, in_bits, t):
    lo, hi = int_range(in_bits)
    n = int(rng.choice([1, 2, 7, 16, 33, int(rng.integers(1, 100))]))
    kind = t % 5
    if kind == 0:
        return np.full(n, int(rng.choice([lo, hi, 0, -1, 1])))
    if kind == 1:
        return rng.integers(max(lo, -4096), min(hi, 4096) + 1, n)   # the curved part
    return rng.integers(lo, hi + 1, n, dtype=np.int64)


def _run(unit, cases, **kw):
    items, counts = [], []
    for q, consts in cases:
        words = encode_gelu(unit, q)
        items.append(("c", encode_gelu_consts(unit, consts)))
        items += [("i", w) for w in words]
        counts.append(len(words))
    run = run_streams(unit, items, sum(counts), **kw)
    o0 = 0
    for (q, consts), nb in zip(cases, counts, strict=True):
        got = decode_gelu(unit, run.out[o0:o0 + nb], q.size)
        want = gelu_apply(q, consts) if hasattr(consts, "clip") else gelu_int8_apply(q, consts)
        np.testing.assert_array_equal(got, want, err_msg=str(consts))
        o0 += nb
    return run, counts


@pytest.mark.parametrize(("lanes", "in_bits", "count"), [(4, 32, 1000), (3, 8, 150), (1, 16, 100)])
def test_random_vectors_with_gaps(lanes, in_bits, count):
    rng = np.random.default_rng(lanes * 100 + in_bits)
    unit = GeluUnit(lanes, in_bits)
    cases = [(_vector(rng, in_bits, t), _consts(rng, in_bits, t % 3 == 0)) for t in range(count)]
    _run(unit, cases, p_gap=0.2, p_stall=0.25, seed=in_bits)
    # the same vectors at full rate: every one takes exactly the modelled cycles
    run, counts = _run(unit, cases)
    assert segment_cycles(run, counts, counts) == [gelu_cycles(lanes, q.size) for q, _ in cases]


@pytest.mark.parametrize("lanes", [1, 8, 16])
def test_measured_cycles_equal_timing_model(lanes):
    rng = np.random.default_rng(3)
    unit = GeluUnit(lanes)
    consts = gelu_int8_constants(1e-3, 0.02)
    cases = [(rng.integers(-(1 << 20), 1 << 20, n), consts)
             for n in (1, lanes, lanes + 1, 197, 800)]
    run, counts = _run(unit, cases)
    measured = segment_cycles(run, counts, counts)
    assert measured == [gelu_cycles(lanes, q.size) for q, _ in cases]
    assert measured[-1] == -(-800 // lanes) + GELU_LATENCY   # one beat per cycle


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
