"""Exactness of the vector units' sequential divider and square root (rtl/arith.py).

Golden defines the results (``floor(n / d)``, ``floor(sqrt(n))``); these tests show the
digit recurrences compute exactly them: exhaustively at small widths, and on random plus
extreme operands at the widths the units build, against Python's ``//`` and golden's
``isqrt``. They also check the fixed latency the timing models use.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.sim import Simulator

from edgetron.golden.layernorm import ISQRT_BITS, RECIP_K, isqrt
from edgetron.golden.softmax import EXP_BITS
from edgetron.hw.arith import divider_latency, sqrt_latency, tree_depth
from edgetron.hw.layernorm import LAYERNORM_FACTOR_BITS
from edgetron.rtl.arith import SeqDivider, SeqSqrt, at_least, tree_reduce


def _run_fixed_latency(dut, operands, load, result):
    """Start one operation per ``LATENCY`` cycles (``start`` in the ``done`` cycle of the
    previous one) and return the results; asserts ``done`` exactly ``LATENCY`` cycles after
    each ``start`` and never in between."""
    out = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        load(ctx, operands[0])
        for idx in range(len(operands)):
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(dut.LATENCY - 1):
                assert not ctx.get(dut.done)
                await ctx.tick()
            assert ctx.get(dut.done)
            out.append(ctx.get(result))
            if idx + 1 < len(operands):
                ctx.set(dut.start, 1)
                load(ctx, operands[idx + 1])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def _divide(nb, db, qb, pairs):
    dut = SeqDivider(nb, db, qb)
    assert dut.LATENCY == divider_latency(qb) == (qb + 1) // 2 + 1

    def load(ctx, p):
        ctx.set(dut.num, p[0])
        ctx.set(dut.den, p[1])
    return _run_fixed_latency(dut, pairs, load, dut.quo)


@pytest.mark.parametrize("qb", [4, 5])
def test_divider_exhaustive_small(qb):
    pairs = [(n, d) for d in range(1, 32) for n in range(256) if n < d << qb]
    assert _divide(8, 5, qb, pairs) == [n // d for n, d in pairs]


def test_divider_softmax_reciprocal():
    # factor = 2**30 // sum, sum in [2**15, 256 * (2**16 - 1)] (a 256-logit row)
    rng = np.random.default_rng(0)
    hi = 256 * ((1 << EXP_BITS) - 1)
    sums = [1 << 15, (1 << 15) + 1, (1 << 16) - 1, 1 << 16, hi, hi - 1, 3 << 15]
    sums += [int(s) for s in rng.integers(1 << 15, hi + 1, 600)]
    pairs = [(1 << 30, s) for s in sums]
    assert _divide(31, hi.bit_length(), EXP_BITS, pairs) == [n // d for n, d in pairs]


def test_divider_layernorm_reciprocal():
    # factor = 2**31 // std, std in [2**15, 2**16): every std ending in 0..3 or 8..f (hex),
    # the extremes and random ones
    rng = np.random.default_rng(1)
    stds = [s for s in range(1 << 15, 1 << 16) if s % 64 in (0, 1, 63)]
    stds += [int(s) for s in rng.integers(1 << 15, 1 << 16, 300)]
    pairs = [(1 << RECIP_K, s) for s in stds]
    got = _divide(RECIP_K + 1, ISQRT_BITS // 2, LAYERNORM_FACTOR_BITS, pairs)
    assert got == [n // d for n, d in pairs]


def test_divider_zero_divisor_gives_all_ones():
    assert _divide(8, 4, 5, [(17, 0)]) == [(1 << 5) - 1]


def _sqrt(bits, values):
    dut = SeqSqrt(bits)
    assert dut.LATENCY == sqrt_latency(bits)
    return _run_fixed_latency(dut, values, lambda ctx, v: ctx.set(dut.n, v), dut.root)


@pytest.mark.parametrize("bits", [2, 3, 5, 7, 9, 10, 12])
def test_sqrt_exhaustive_small(bits):
    values = list(range(1 << bits))
    assert _sqrt(bits, values) == isqrt(np.array(values)).tolist()


def test_sqrt_full_width():
    rng = np.random.default_rng(2)
    edge = [0, 1, 2, 3, 4, (1 << 30), (1 << 30) - 1, (1 << 32) - 1, (1 << 32) - 2]
    squares = [s * s + d for s in (65535, 46341, 32768, 40000) for d in (-1, 0, 1)]
    values = edge + squares + [int(v) for v in rng.integers(0, 1 << 32, 700, dtype=np.int64)]
    assert _sqrt(ISQRT_BITS, values) == isqrt(np.array(values)).tolist()


def test_tree_reduce():
    m = Module()
    s, depth = tree_reduce(m, [Const(v, 8) for v in (3, 9, 1, 7, 5)], lambda a, b: a + b, "t")
    assert depth == tree_depth(5) == 3

    async def bench(ctx):
        for _ in range(depth):
            await ctx.tick()
        assert ctx.get(s) == 25

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_at_least_every_value_and_constant(bits):
    """at_least(x, c) == (x >= c) for every x of ``bits`` bits and c from below 0 to past
    the top (constant answers outside the range)."""
    m = Module()
    x = Signal(bits)
    consts = list(range(-2, (1 << bits) + 2))
    outs = [at_least(x, c) for c in consts]
    probe = Signal(len(consts))
    m.d.comb += probe.eq(Cat(*outs))

    async def bench(ctx):
        for v in range(1 << bits):
            ctx.set(x, v)
            got = ctx.get(probe)
            assert [(got >> i) & 1 for i in range(len(consts))] == [int(v >= c) for c in consts]

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
