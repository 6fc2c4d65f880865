"""Vector ops on the memory system (sim/memory.py): DRAM stalls, row rings, DRAM ports.

A softmax of 4 rows of 64 int8 logits on 16 lanes: ``B = 4`` beats per row, the unit's
rows overlap (``P = 9`` cycles per row after the first, ``docs/simulator.md``), ``4 + 3*9 +
(8 + 12 + 35) = 86`` cycles; its rings take ``13*16*1 + 18*16*2 = 784`` bytes of the ofmap
buffer. Every vector unit streams, so its DRAM traffic overlaps it whatever
``double_buffer`` says: at 1 byte per cycle its 256 input and 256 output bytes take
``max(86, 256 + 256) = 512`` cycles on one shared port, ``max(86, 256, 256) = 256`` on a
read and a write port.
"""

from __future__ import annotations

import pytest

from edgetron.config import AcceleratorConfig
from edgetron.errors import SimulationError
from edgetron.sim.engine import simulate
from edgetron.workload import Gelu, Softmax, Trace


def run(op, **kw) -> dict:
    cfg = AcceleratorConfig(vector_lanes=16, dram_bytes_per_cycle=1.0, **kw)
    return simulate(Trace(name="t", batch=1, ops=(op,)), cfg).op_dict(0)


SOFTMAX = Softmax(name="sm", inputs=("input",), batch=1, rows=4, cols=64)


@pytest.mark.parametrize("double_buffer", [False, True])
def test_a_row_op_streams_its_loads_under_its_rows(double_buffer):
    v = run(SOFTMAX, double_buffer=double_buffer)
    # 4 rows of 64 logits on 16 lanes: B = 4, T = 4, P = max(4, 9) = 9, a row's latency
    # 2 B + 3 T + 35 = 55: 4 + 3 * 9 + 55 = 86 cycles, under 512 bytes of DRAM traffic.
    assert (v["vector_cycles"], v["cycles"], v["stall_cycles"]) == (86, 512, 426)
    assert v["double_buffered"] == 1
    assert (v["dram_read_bytes"], v["dram_write_bytes"]) == (256, 256)


def test_separate_read_and_write_ports_halve_the_stall():
    v = run(SOFTMAX, dram_ports="read_write", dram_read_bytes_per_cycle=1.0,
            dram_write_bytes_per_cycle=1.0)
    assert (v["vector_cycles"], v["cycles"]) == (86, 256)


@pytest.mark.parametrize("ofmap, fits", [(784, True), (783, False)])
def test_the_rings_must_fit_the_ofmap_buffer(ofmap, fits):
    if fits:
        assert run(SOFTMAX, ofmap_sram_bytes=ofmap)["cycles"] == 512
    else:
        with pytest.raises(SimulationError, match=r"op 0 \('sm'\).*784 bytes of the ofmap"):
            run(SOFTMAX, ofmap_sram_bytes=ofmap)


def test_a_single_pass_op_always_overlaps():
    # GELU of 256 elements: 16 beats + 14 (GELU_LATENCY: eight i-GELU stages and the
    # requantizer's six), hidden under 512 bytes of DRAM traffic.
    v = run(Gelu(name="g", inputs=("input",), shape=(1, 256)), double_buffer=False)
    assert (v["vector_cycles"], v["cycles"], v["double_buffered"]) == (30, 512, 1)
    assert v["sram_read_bytes"] == v["sram_write_bytes"] == 0
