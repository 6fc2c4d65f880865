"""cocotb testbench of the requantizer (edgetron_requant), run by test_runners.py.

The model is tests/models/requant.py, the same as the Amaranth tests': random, extreme and
rounding-tie vectors are regenerated from seeds and checked bit for bit against
golden.intops.requantize, with random input gaps and output backpressure; the gap-free
run also checks the latency (edgetron.hw.gemm.REQUANT_LATENCY, also in the manifest) and
one beat per cycle. After the last expected beat no further one may appear.
"""

from __future__ import annotations

import cocotb
import numpy as np
from harness import Clocking, Pause, Scoreboard, StreamSink, StreamSource, load_manifest

from tests.models.requant import (
    LATENCY,
    RequantModel,
    extreme_vectors,
    random_vectors,
    tie_vectors,
)

MANIFEST = load_manifest()
MODEL = RequantModel.from_parameters(MANIFEST["parameters"])
#: Beats per random run.
BEATS = 200


async def _run(dut, acc, mult, shift, p_gap: float, p_stall: float, seed: int):
    clocking = Clocking(dut)
    source = StreamSource(dut, "i", clocking, Pause(p_gap, seed))
    sink = StreamSink(dut, "o", clocking, Pause(p_stall, seed + 1))
    await clocking.start([dut.i__valid, dut.o__ready])
    cocotb.start_soon(sink.run())
    words = MODEL.encode(acc, mult, shift)
    cocotb.start_soon(source.send(words))
    timeout = (len(words) + LATENCY) * 50
    got = await sink.receive(len(words), timeout)
    await sink.expect_quiet(MODEL.quiet_cycles())
    Scoreboard(dut._log).compare("requant", MODEL.decode(got), MODEL.expected(acc, mult, shift))
    return source, sink


@cocotb.test()
@cocotb.parametrize(
    (("p_gap", "p_stall"), [(0.0, 0.0), (0.3, 0.3), (0.6, 0.85), (0.05, 0.6)]),
)
async def requant_random(dut, p_gap: float, p_stall: float):
    """Random vectors with input gaps and output backpressure."""
    seed = int(p_gap * 100) * 1000 + int(p_stall * 100)
    acc, mult, shift = random_vectors(np.random.default_rng(seed), BEATS, MODEL.lanes,
                                      MODEL.acc_bits)
    source, sink = await _run(dut, acc, mult, shift, p_gap, p_stall, seed)
    if p_gap == 0.0 and p_stall == 0.0:
        assert MANIFEST["latency_cycles"] == LATENCY
        # First beat out LATENCY cycles after the first beat in, then one per cycle.
        assert sink.cycles[0] - source.accepted[0] == LATENCY, (source.accepted[0], sink.cycles)
        assert sink.cycles[-1] - source.accepted[0] == LATENCY + BEATS - 1


@cocotb.test()
async def requant_extremes(dut):
    """Every combination of extreme acc, mult and shift, with gaps and backpressure."""
    await _run(dut, *extreme_vectors(MODEL.lanes, MODEL.acc_bits), 0.25, 0.4, 99)


@cocotb.test()
async def requant_rounding_ties(dut):
    """acc * mult exactly on, and one either side of, rounding ties around the output
    limits and 0 (golden rounds half up), one tie per beat, spread over the lanes."""
    acc, mult, shift = tie_vectors(MODEL.out_bits, MODEL.acc_bits)
    pad = (-len(acc)) % MODEL.lanes
    acc, mult, shift = (np.concatenate([v[:, 0], np.repeat(v[:1, 0], pad)]).reshape(
        -1, MODEL.lanes) for v in (acc, mult, shift))
    await _run(dut, acc, mult, shift, 0.2, 0.3, 7)
