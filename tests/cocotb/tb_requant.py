"""cocotb testbench of the requantizer (edgetron_requant), run by test_runners.py.

Random and extreme vectors are regenerated from seeds and checked bit for bit
against golden.intops.requantize, with random input gaps and output
backpressure; the gap-free run also checks the manifest latency and one beat
per cycle throughput. After the last expected beat no further one may appear.
"""

from __future__ import annotations

import cocotb
import numpy as np
from harness import (
    QUIET_MARGIN,
    Clocking,
    Pause,
    RequantModel,
    Scoreboard,
    StreamSink,
    StreamSource,
    load_manifest,
)

from edgetron.golden.intops import INT32_MAX, INT32_MIN, M_MAX, S_MAX, S_MIN

MANIFEST = load_manifest()
MODEL = RequantModel(MANIFEST["parameters"])
LATENCY = MANIFEST["latency_cycles"]
#: Beats per random run.
BEATS = 200


def _random_vectors(seed: int):
    rng = np.random.default_rng(seed)
    shape = (BEATS, MODEL.lanes)
    half = 1 << (MODEL.acc_bits - 1)
    acc = rng.integers(-half, half, size=shape)
    m = rng.integers(0, M_MAX + 1, size=shape)
    # Shifts near log2(|acc| * m) land outputs inside the range, on its edges and beyond.
    s = np.where(
        rng.random(shape) < 0.6,
        rng.integers(MODEL.acc_bits + 20, MODEL.acc_bits + 31, size=shape),
        rng.integers(S_MIN, S_MAX + 1, size=shape),
    )
    return acc, m, np.clip(s, S_MIN, S_MAX)


async def _run(dut, acc, m, s, p_gap: float, p_stall: float, seed: int):
    clocking = Clocking(dut)
    source = StreamSource(dut, "i", clocking, Pause(p_gap, seed))
    sink = StreamSink(dut, "o", clocking, Pause(p_stall, seed + 1))
    await clocking.start([dut.i__valid, dut.o__ready])
    cocotb.start_soon(sink.run())
    words = MODEL.encode(acc, m, s)
    cocotb.start_soon(source.send(words))
    timeout = (len(words) + LATENCY) * 50
    got = await sink.receive(len(words), timeout)
    await sink.expect_quiet(LATENCY + QUIET_MARGIN)
    Scoreboard(dut._log).compare("requant", MODEL.decode(got), MODEL.expected(acc, m, s))
    return source, sink


@cocotb.test()
@cocotb.parametrize(
    (("p_gap", "p_stall"), [(0.0, 0.0), (0.3, 0.3), (0.6, 0.85), (0.05, 0.6)]),
)
async def requant_random(dut, p_gap: float, p_stall: float):
    """Random vectors with input gaps and output backpressure."""
    seed = int(p_gap * 100) * 1000 + int(p_stall * 100)
    acc, m, s = _random_vectors(seed)
    source, sink = await _run(dut, acc, m, s, p_gap, p_stall, seed)
    if p_gap == 0.0 and p_stall == 0.0:
        # First beat out LATENCY cycles after the first beat in, then one per cycle.
        assert sink.cycles[0] - source.accepted[0] == LATENCY, (source.accepted[0], sink.cycles)
        assert sink.cycles[-1] - source.accepted[0] == LATENCY + BEATS - 1


@cocotb.test()
async def requant_extremes(dut):
    """Every combination of extreme acc, m and s, with gaps and backpressure."""
    half = 1 << (MODEL.acc_bits - 1)
    acc_vals = sorted({max(-half, INT32_MIN), -half + 1, -1, 0, 1, min(half - 1, INT32_MAX)})
    grid = np.array(np.meshgrid(acc_vals, [0, 1, M_MAX], [S_MIN, S_MIN + 1, 31, S_MAX - 1, S_MAX],
                                indexing="ij")).reshape(3, -1)
    pad = (-grid.shape[1]) % MODEL.lanes
    grid = np.concatenate([grid, np.tile(grid[:, :1], pad)], axis=1)
    acc, m, s = (row.reshape(-1, MODEL.lanes) for row in grid)
    await _run(dut, acc, m, s, 0.25, 0.4, 99)
