"""SystolicArray in the Amaranth simulator: tiles streamed back to back at the tightest
schedule the documented timing allows, random clock-enable stalls, results equal to golden."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import EnableInserter, Fragment, Signal
from amaranth.sim import Simulator

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.golden.gemm import matmul_int
from edgetron.rtl.systolic import SystolicArray

SHAPES = [(1, 1), (2, 3), (3, 2), (4, 4)]


def config(rows, cols, dataflow):
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, ifmap_sram_bytes=256,
                             weight_sram_bytes=256, ofmap_sram_bytes=256)


def int8(rng, shape):
    """Random int8 values with the extremes -128 and 127 over-represented."""
    v = rng.integers(-128, 128, shape)
    pick = rng.random(shape)
    v[pick < 0.15] = -128
    v[pick > 0.85] = 127
    return v


def run_schedule(array, inputs, probes, n_steps, seed, stall=0.3):
    """Run ``n_steps`` enabled cycles behind a random clock enable.

    ``inputs(ctx, step)`` sets the array inputs of enabled step ``step``; ``probes`` are
    sampled at every enabled step (index = number of enabled edges before it). Stalled
    cycles drive random garbage, which must not disturb anything.
    """
    en = Signal(init=1)
    dut = EnableInserter(en)(array)
    rng = np.random.default_rng(seed)
    seen = []
    a_bits = len(array.a.as_value())
    w_bits = len(array.w.as_value())

    async def bench(ctx):
        for step in range(n_steps):
            while rng.random() < stall:
                ctx.set(en, 0)
                ctx.set(array.a.as_value(), int(rng.integers(1 << min(a_bits, 62))))
                ctx.set(array.w.as_value(), int(rng.integers(1 << min(w_bits, 62))))
                await ctx.tick()
            ctx.set(en, 1)
            inputs(ctx, step)
            seen.append([ctx.get(p) for p in probes])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("rows,cols", SHAPES)
def test_ws_tiles_back_to_back(rows, cols):
    """Each tile's weights load into the idle bank while the previous tile streams."""
    rng = np.random.default_rng(rows * 10 + cols)
    arr = SystolicArray(config(rows, cols, "ws"))
    tiles = [(int8(rng, (int(rng.integers(1, 2 * rows + 3)), rows)), int8(rng, (rows, cols)))
             for _ in range(5)]
    sched_a, sched_w, expect = {}, {}, {}
    for r in range(rows):                            # prologue: tile 0 into bank 0
        sched_w[r] = (tiles[0][1][r], r, 0)
    start = rows
    for t, (a, w) in enumerate(tiles):
        for i in range(a.shape[0]):
            sched_a[start + i] = (a[i], t % 2)
            expect[start + i + arr.latency] = matmul_int(a[i:i + 1], w)[0]
        if t + 1 < len(tiles):
            for r in range(rows):
                sched_w[start + r] = (tiles[t + 1][1][r], r, (t + 1) % 2)
        start += max(a.shape[0], rows)

    def inputs(ctx, step):
        # a.sel is one cycle ahead: the bank of the vector of the next enabled step.
        a, _ = sched_a.get(step, (np.zeros(rows, int), 0))
        _, sel = sched_a.get(step + 1, (None, 0))
        ctx.set(arr.a, {"data": a.tolist(), "sel": sel})
        if step in sched_w:
            w, r, bank = sched_w[step]
            ctx.set(arr.w, {"data": w.tolist(), "row": r, "bank": bank, "valid": 1})
        else:
            ctx.set(arr.w.valid, 0)

    steps = max(expect) + 1
    seen = run_schedule(arr, inputs, [arr.p[c] for c in range(cols)], steps, seed=rows)
    for step, want in expect.items():
        assert seen[step] == want.tolist(), f"step {step}"


def test_ws_weight_write_takes_effect_next_cycle():
    """A weight row written in cycle j is not used by the activation of cycle j (same bank)
    and is used from cycle j + 1: the documented hand-over rule."""
    arr = SystolicArray(config(2, 2, "ws"))
    old = np.array([[1, 2], [3, 4]])
    new = np.array([[10, 20], [30, 40]])
    x = np.array([5, 7])
    sched = {0: ("w", old[0], 0), 1: ("w", old[1], 1),
             2: ("both", new[0], 0), 3: ("both", new[1], 1), 4: ("a", None, None)}

    def inputs(ctx, step):
        kind, w, r = sched.get(step, ("", None, None))
        ctx.set(arr.a, {"data": x.tolist(), "sel": 1})
        if kind in ("w", "both"):
            ctx.set(arr.w, {"data": w.tolist(), "row": r, "bank": 1, "valid": 1})
        else:
            ctx.set(arr.w.valid, 0)

    seen = run_schedule(arr, inputs, [arr.p[0], arr.p[1]], 5 + arr.latency, seed=1, stall=0)
    lat = arr.latency
    # Cycle 2 writes new row 0 and streams x: both rows still old.
    assert seen[2 + lat] == (x @ old).tolist()
    # Cycle 3 sees new row 0 but old row 1 (written in the same cycle 3).
    assert seen[3 + lat] == (x @ np.array([new[0], old[1]])).tolist()
    assert seen[4 + lat] == (x @ new).tolist()


@pytest.mark.parametrize("rows,cols", SHAPES)
def test_os_tiles_at_minimum_gap(rows, cols):
    """Tiles of random K (including K = 1) follow each other as closely as min_tile_gap
    allows; each tile is drained with rows pulses starting drain_delay after its last pair."""
    rng = np.random.default_rng(rows * 10 + cols + 1)
    arr = SystolicArray(config(rows, cols, "os"))
    ks = [1, *rng.integers(1, 3 * rows + 2, 5).tolist()]
    tiles = [(int8(rng, (rows, k)), int8(rng, (k, cols))) for k in ks]
    sched_a, drains, expect = {}, set(), {}
    first = 0
    for t, (a, w) in enumerate(tiles):
        k = a.shape[1]
        for i in range(k):
            sched_a[first + i] = (a[:, i], w[i], i == 0, i == k - 1)
        last = first + k - 1
        want = matmul_int(a, w)
        for r in range(rows):
            drains.add(last + arr.drain_delay + r)
            expect[last + arr.drain_delay + r + arr.latency] = want[r]
        if t + 1 < len(tiles):
            k_next = tiles[t + 1][0].shape[1]
            first = max(first + k, last + arr.min_tile_gap - k_next + 1)

    def inputs(ctx, step):
        a, w, f, l_ = sched_a.get(step, (np.zeros(rows, int), np.zeros(cols, int), 0, 0))
        ctx.set(arr.a, {"data": a.tolist(), "first": f, "last": l_})
        ctx.set(arr.w.data, w.tolist())
        ctx.set(arr.drain, step in drains)

    seen = run_schedule(arr, inputs, [arr.o[c] for c in range(cols)], max(expect) + 1,
                        seed=rows + 5)
    for step, want in expect.items():
        assert seen[step] == want.tolist(), f"step {step}"


def test_latencies_follow_the_array_shape():
    for rows, cols in SHAPES:
        ws = SystolicArray(config(rows, cols, "ws"))
        os_ = SystolicArray(config(rows, cols, "os"))
        Fragment.get(ws, None), Fragment.get(os_, None)   # both elaborate
        # ws: rows + cols - 2 hops and the PE's three-stage MAC (product, its second
        # register, the add). os: the drain pulse's de-skew; the bottom PE's last pair
        # (skew rows - 1) is captured after the MAC's three stages, rows + 2 after it was
        # presented; the result chains are empty 2 * rows - 1 after it (the captures and
        # the drain pulses are both later by the MAC, the gap is not).
        assert ws.latency == rows + cols + 1
        assert (os_.latency, os_.drain_delay, os_.min_tile_gap) == (cols - 1, rows + 2,
                                                                     2 * rows - 1)


def test_input_stationary_has_no_rtl():
    with pytest.raises(ConfigError, match=r"dataflow: 'is' has no RTL; .*'ws' and 'os'"):
        SystolicArray(config(2, 2, "is"))
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        SystolicArray({"rows": 2})
