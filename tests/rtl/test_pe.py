"""PE in the Amaranth simulator against a cycle model, with random clock-enable stalls.

The MAC of the model is the golden one (``matmul_int`` of a 1x1x1 product); every cycle
the PE's outputs are compared with the model's registers, and on stalled cycles
(``EnableInserter`` low, as the GEMM unit stalls the array) the inputs are random
garbage that must not leak into the state.
"""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import EnableInserter, Fragment, Signal, UnusedElaboratable
from amaranth.sim import Simulator

from edgetron.config import ConfigError
from edgetron.golden.gemm import matmul_int
from edgetron.golden.intops import INT8_MAX, INT8_MIN, wrap
from edgetron.hw.gemm import PE_MAC_STAGES
from edgetron.rtl import pe as pe_module
from edgetron.rtl.pe import PE

INT8 = (INT8_MIN, INT8_MAX)
#: Product registers of the model's MAC before its accumulate (``mul``, ``pipe``): the
#: accumulate of an enabled cycle adds the product of the enabled cycle this many before.
PRODUCT_REGS = PE.MAC_LATENCY - 1


def mac(a: int, w: int) -> int:
    return int(matmul_int(np.array([[a]]), np.array([[w]]))[0, 0])


def operand(rng) -> int:
    """A random int8, with the extremes -128 and 127 drawn often."""
    return int(rng.choice([INT8[0], INT8[1], int(rng.integers(*INT8, endpoint=True))]))


def run(pe, step, seed):
    """Simulate ``pe`` behind a random clock enable; ``step(ctx, rng, enabled)`` drives
    inputs and checks outputs for each cycle."""
    en = Signal(init=1)
    dut = EnableInserter(en)(pe)
    rng = np.random.default_rng(seed)

    async def bench(ctx):
        for _ in range(400):
            enabled = bool(rng.random() > 0.3)
            ctx.set(en, enabled)
            step(ctx, rng, enabled)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("row,rows", [(0, 1), (2, 4), (5, 6)])
def test_ws_pe_matches_model(row, rows):
    pe = PE("ws", row=row, rows=rows)
    # "sel": the bank select of the last enabled cycle, which names the bank of this
    # cycle's activation (a_in.sel runs one cycle ahead of a_in.data).
    state = {"bank": [0, 0], "sel": 0, "a": None, "w": None, "p": 0,
             "prods": [0] * PRODUCT_REGS}

    def step(ctx, rng, enabled):
        # Outputs are the registers written on the last enabled cycle.
        if state["a"] is not None:
            assert ctx.get(pe.a_out.data) == state["a"][0]
            assert ctx.get(pe.a_out.sel) == state["a"][1]
            assert (ctx.get(pe.w_out.data), ctx.get(pe.w_out.row), ctx.get(pe.w_out.bank),
                    ctx.get(pe.w_out.valid)) == state["w"]
            assert ctx.get(pe.p_out) == state["p"]
        a, sel = operand(rng), int(rng.integers(2))
        w = operand(rng)
        target = row if rng.random() < 0.5 else int(rng.integers(rows))
        valid, bank = int(rng.integers(2)), int(rng.integers(2))
        p_in = int(rng.integers(-(1 << 30), 1 << 30))
        ctx.set(pe.a_in, {"data": a, "sel": sel})
        ctx.set(pe.w_in, {"data": w, "row": target, "bank": bank, "valid": valid})
        ctx.set(pe.p_in, p_in)
        if enabled:
            # The MAC: p_out adds this cycle's p_in to the oldest product of the product
            # pipeline (PRODUCT_REGS enabled cycles old); this cycle's product enters it.
            # The product reads the bank the previous enabled cycle's sel named, as it was
            # before this cycle's weight write (after the previous cycle's: a write takes
            # effect for the product of the next cycle).
            oldest, *younger = state["prods"]
            p = int(wrap(p_in + oldest, 32))
            prod = mac(a, state["bank"][state["sel"]])
            if valid and target == row:
                state["bank"][bank] = w
            state.update(a=(a, sel), w=(w, target, bank, valid), p=p,
                         prods=[*younger, prod], sel=sel)

    run(pe, step, seed=row)


def test_os_pe_matches_model():
    pe = PE("os", row=1, rows=3)
    state = {"acc": 0, "result": 0, "a": None, "w": None, "prods": [(0, 0, 0)] * PRODUCT_REGS}

    def step(ctx, rng, enabled):
        if state["a"] is not None:
            assert ctx.get(pe.a_out.data) == state["a"]
            assert ctx.get(pe.w_out.data) == state["w"]
        assert ctx.get(pe.o_out) == state["result"]
        a, w = operand(rng), operand(rng)
        first, last = int(rng.random() < 0.2), int(rng.random() < 0.2)
        shift = int(rng.integers(2))
        o_in = int(rng.integers(-(1 << 31), 1 << 31))
        ctx.set(pe.a_in, {"data": a, "first": first, "last": last})
        ctx.set(pe.w_in.data, w)
        ctx.set(pe.shift, shift)
        ctx.set(pe.o_in, o_in)
        if enabled:
            # The MAC: the product and its first/last bits pass PRODUCT_REGS registers
            # together, then are accumulated (and captured) PRODUCT_REGS enabled cycles
            # after their operands.
            (prod, prod_first, prod_last), *younger = state["prods"]
            total = int(wrap((0 if prod_first else state["acc"]) + prod, 32))
            state["acc"] = total
            if prod_last:
                state["result"] = total
            elif shift:
                state["result"] = o_in
            state.update(a=a, w=w, prods=[*younger, (mac(a, w), first, last)])

    run(pe, step, seed=7)


def test_os_pe_accumulates_a_dot_product():
    """A K-long dot product streamed with first/last gives golden's sum (-128/127 extremes)."""
    rng = np.random.default_rng(3)
    k = 33
    a = rng.choice([-128, 127, 0, 5], k)
    w = rng.choice([-128, 127, -1], k)
    pe = PE("os", row=0, rows=1)

    async def bench(ctx):
        for i in range(k):
            ctx.set(pe.a_in, {"data": int(a[i]), "first": i == 0, "last": i == k - 1})
            ctx.set(pe.w_in.data, int(w[i]))
            await ctx.tick()
        ctx.set(pe.a_in.last, 0)
        for _ in range(PE.MAC_LATENCY - 1):      # the product's second register, the capture
            await ctx.tick()
        assert ctx.get(pe.o_out) == int(matmul_int(a[None, :], w[:, None])[0, 0])

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_elaboration_checks_the_mac_stages_against_the_timing_model(dataflow, monkeypatch):
    """The PE builds one register per stage of edgetron.hw.gemm.PE_MAC_STAGES, in order;
    a timing model with a stage fewer (the two-stage MAC) stops elaboration."""
    assert PE_MAC_STAGES == ("mul", "pipe", "acc") and PE.MAC_LATENCY == 3
    Fragment.get(PE(dataflow, row=0, rows=2), None)
    monkeypatch.setattr(pe_module, "PE_MAC_STAGES", ("mul", "acc"))
    with warnings.catch_warnings():
        # The module of a refused elaboration is never used.
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(AssertionError,
                           match=r"built as the stages \('mul', 'pipe', 'acc'\)"):
            Fragment.get(PE(dataflow, row=0, rows=2), None)
        gc.collect()


def test_pe_rejects_bad_parameters():
    with pytest.raises(ConfigError, match=r"PE: row must be an integer in \[0, 3\], got 4"):
        PE("ws", row=4, rows=4)
    with pytest.raises(ConfigError, match=r"dataflow: 'is' has no RTL.*'ws' and 'os'"):
        PE("is", row=0, rows=1)
    with pytest.raises(ConfigError, match=r"PE: rows must be an integer in \[1, 256\], got 257"):
        PE("ws", row=0, rows=257)
    with pytest.raises(ConfigError, match=r"PE: input_bits must be an integer in \[2, 8\]"):
        PE("os", row=0, rows=1, input_bits=9)
    with pytest.raises(ConfigError, match=r"PE: acc_bits must be an integer in \[16, 32\], got 12"):
        PE("ws", row=0, rows=1, acc_bits=12)
