"""Vector ops on the memory system (sim/memory.py): DRAM stalls, row buffers, double buffering.

A softmax of 4 rows of 64 int8 logits on 16 lanes takes ``4 * (3*4 + (1+4) + (7+4) + 17 + 3)
= 192`` cycles, with passes of ``4 * 4 = 16`` beats; it keeps ``64 * (1 + 2) = 192`` bytes
(a row and its 2-byte exponentials). At 1 byte per cycle its 256 input and 256 output bytes
take 256 cycles each:

* one buffer (or no room for two rows): the input streams during the max pass, the output
  during the normalization, ``192 + (256 - 16) + (256 - 16) = 672``;
* two rows fit and ``double_buffer`` is on: loads overlap, ``max(192, 512) = 512``.
"""

from __future__ import annotations

import pytest

from edgetron.config import AcceleratorConfig
from edgetron.sim.engine import simulate
from edgetron.workload import Gelu, Softmax, Trace


def run(op, **kw) -> dict:
    cfg = AcceleratorConfig(vector_lanes=16, dram_bytes_per_cycle=1.0, **kw)
    return simulate(Trace(name="t", batch=1, ops=(op,)), cfg).op_dict(0)


SOFTMAX = Softmax(name="sm", inputs=("input",), batch=1, rows=4, cols=64)


def test_a_row_op_streams_during_its_first_and_last_pass():
    v = run(SOFTMAX, double_buffer=False)
    assert (v["vector_cycles"], v["cycles"], v["stall_cycles"]) == (192, 672, 480)
    assert v["double_buffered"] == 0
    assert v["ofmap_write_bytes"] == v["ofmap_read_bytes"] == 4 * 192
    assert v["ev_mul_int32"] == 256 * 4 and v["ev_add_int32"] == 256 * 5 + 4 * 16
    assert (v["dram_read_bytes"], v["dram_write_bytes"]) == (256, 256)


@pytest.mark.parametrize("ofmap, overlapped", [(384, True), (383, False)])
def test_double_buffered_rows_overlap_when_two_fit(ofmap, overlapped):
    # 384 bytes hold two 192-byte rows; 383 bytes only one.
    v = run(SOFTMAX, double_buffer=True, ofmap_sram_bytes=ofmap)
    assert v["double_buffered"] == int(overlapped)
    assert v["cycles"] == (512 if overlapped else 672)


def test_a_single_pass_op_always_overlaps():
    # GELU of 256 elements: 16 beats + 12 (GELU_LATENCY: six i-GELU stages and the
    # requantizer's six), hidden under 512 bytes of DRAM traffic.
    v = run(Gelu(name="g", inputs=("input",), shape=(1, 256)), double_buffer=False)
    assert (v["vector_cycles"], v["cycles"], v["double_buffered"]) == (28, 512, 1)
    assert v["sram_read_bytes"] == v["sram_write_bytes"] == 0
