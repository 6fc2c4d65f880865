# amaranth: UnusedElaboratable=no
"""PoolUnit in the Amaranth simulator against golden.pool.pool_nhwc.

Stimuli, codec, golden, cycles and coverage bins come from tests/models/pool.py (shared with
tests/cocotb/tb_pool.py); the bench is tests/rtl/vector_streams.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, Mux, Signal
from amaranth.lib import wiring

from edgetron.config import AcceleratorConfig
from edgetron.golden.pool import pool_constants
from edgetron.hw.pool import POOL_LATENCY
from edgetron.rtl.pool import PoolUnit, encode_pool, encode_pool_consts

from ..models.pool import PoolModel
from ..models.vector import Coverage, Segment
from .vector_streams import run_segments

#: (lanes, row_beats, groups): four lanes and up to three groups; three lanes, two groups.
UNITS = [(4, 40, 3), (3, 24, 2)]


@pytest.mark.parametrize(("lanes", "row_beats", "groups"), UNITS)
def test_random_pools_with_gaps(lanes, row_beats, groups):
    rng = np.random.default_rng(lanes)
    model = PoolModel(lanes, row_beats, groups)
    segs = model.coverage_segments(rng) + model.random_segments(rng, 40 if lanes == 4 else 20)
    cov = Coverage(model)
    run_segments(PoolUnit(lanes, row_beats, groups), model, segs, gap=0.2, stall=0.25,
                 seed=lanes, coverage=cov)
    assert not cov.empty(), cov.report()
    # the same pools at full rate: every one takes exactly the modelled cycles
    board = run_segments(PoolUnit(lanes, row_beats, groups), model, segs)
    assert [inv.cycles for inv in board.done] == [model.cycles(s) for s in segs]


def test_measured_cycles_equal_timing_model():
    model = PoolModel(4, 40, 3)
    segs = model.full_rate_segments(np.random.default_rng(7))
    board = run_segments(PoolUnit(4, 40, 3), model, segs)
    measured = [inv.cycles for inv in board.done]
    assert measured == [model.cycles(s) for s in segs]
    # 2x2 stride 2 on 8x8x4: every input beat once, the last window ends at the last pixel
    assert measured[1] == 8 * 8 + POOL_LATENCY
    # global 7x7 over two images of two groups: one position per cycle
    assert measured[3] == 2 * 7 * 7 * 2 + POOL_LATENCY


def test_network_slices_at_16_lanes():
    # ResNet-18's max pool (3x3/2, padding 1) on a 14x14x64 slice, and a global average head
    # (7x7, 80 channels: five groups) at a calibrated output scale: bit-exact, and each pool
    # streams 16 input elements per cycle but for the padding positions and the latency
    model = PoolModel(16, 128, 8)
    rng = np.random.default_rng(14)
    segs = [Segment("resnet18 maxpool", pool_constants("max", (3, 3), (2, 2), (1, 1, 1, 1)),
                    (model.map(rng, "random", (1, 14, 14, 64)),)),
            Segment("global avgpool", pool_constants("avg", (7, 7), (1, 1), (0, 0, 0, 0),
                                                     0.05, 0.02),
                    (model.map(rng, "random", (1, 7, 7, 80)),))]
    board = run_segments(PoolUnit(16, 128, 8), model, segs)
    assert [inv.cycles for inv in board.done] == [14 * 14 * 4 + POOL_LATENCY,
                                                  49 * 5 + POOL_LATENCY]


class _NoisyGaps(wiring.Component):
    """The pool unit with ``i.payload`` replaced by a changing pattern while ``i.valid`` is
    low (a stream's payload means nothing then), so that a value taken from the input in a
    cycle without a beat shows up in the results."""

    def __init__(self, unit: PoolUnit):
        self._unit = unit
        super().__init__(unit.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._unit
        noise = Signal(len(unit.i.payload.as_value()))
        m.d.sync += noise.eq(noise * 5 + 0x9E3779B9)
        wiring.connect(m, wiring.flipped(self.c), unit.c)
        wiring.connect(m, unit.o, wiring.flipped(self.o))
        m.d.comb += [unit.i.valid.eq(self.i.valid), self.i.ready.eq(unit.i.ready),
                     unit.i.payload.eq(Mux(self.i.valid, self.i.payload.as_value(), noise))]
        return m


def _run_forwarding(model: PoolModel, segs, unit: tuple[int, int, int]) -> None:
    # full rate; stalls only (a stall between a write and the read it forwards to); gaps
    # and stalls (bubbles between them), with noise on the payload in the gaps
    for gap, stall in ((0.0, 0.0), (0.0, 0.5), (0.4, 0.4)):
        board = run_segments(_NoisyGaps(PoolUnit(*unit)), model, segs, gap=gap,
                             stall=stall, seed=int(10 * gap + 100 * stall))
        assert len(board.done) == len(segs)


def test_line_words_written_one_or_two_cycles_before_are_forwarded():
    # Grid rows of one and of two line-buffer words (one pixel of one group; one pixel of
    # two groups, or two pixels of one): every position reads the word written back one
    # or two positions before (the write back comes a cycle after the visit, from
    # registers): the pending word forwarded, the one written in the read's cycle through
    # the transparent read; bit-exact.
    model = PoolModel(2, 20, 2)
    rng = np.random.default_rng(5)
    segs = [Segment(f"{kind} {win[0]}x{win[1]} W{w} C{c}", pool_constants(kind, win, (1, 1), pads),
                    (model.map(rng, "random", (2, 6, w, c)),))
            for w, c in ((1, 2), (1, 4), (2, 2))
            for kind, win, pads in (("max", (3, 1), (0, 0, 0, 0)),
                                    ("avg", (2, 1), (1, 0, 0, 0)),
                                    ("max", (3, w), (1, 1, 0, 0)))]
    _run_forwarding(model, segs, (2, 20, 2))


def test_column_words_written_one_or_two_steps_before_are_forwarded():
    # The column buffer's read is registered, two steps ahead of the horizontal stage: the
    # word of group g written one step before (one channel group) is forwarded into the
    # register, the one written two steps before (two groups) comes through the
    # transparent read. Windowed and global pools of one and of two groups (a global pool
    # of one group updates its running sum every step), bit-exact.
    model = PoolModel(2, 20, 2)
    rng = np.random.default_rng(11)
    segs = []
    for c in (2, 4):       # one group, two groups
        segs += [Segment(f"max 3x3/1 C{c}", pool_constants("max", (3, 3), (1, 1), (1, 1, 1, 1)),
                         (model.map(rng, "random", (1, 5, 4, c)),)),
                 Segment(f"avg 2x3/1 C{c}", pool_constants("avg", (2, 3), (1, 1)),
                         (model.map(rng, "random", (2, 4, 5, c)),)),
                 Segment(f"global avg C{c}", pool_constants("avg", (5, 5), (1, 1)),
                         (model.map(rng, "random", (2, 5, 5, c)),)),
                 Segment(f"global max C{c}", pool_constants("max", (4, 4), (1, 1)),
                         (model.map(rng, "random", (2, 4, 4, c)),))]
    _run_forwarding(model, segs, (2, 20, 2))


def test_extreme_values_and_padding_never_win():
    # all -128 under max with padding: a padded position must not win (it would be -128
    # too); all 127: padding must not bring the max down; averages count padding as 0
    model = PoolModel(2, 20, 2)
    segs = []
    for kind in ("max", "avg"):
        for v in (-128, 127):
            k = pool_constants(kind, (3, 3), (1, 1), (1, 1, 1, 1))
            segs.append(Segment(f"{kind}{v}", k, (np.full((1, 4, 5, 3), v),)))
    board = run_segments(PoolUnit(2, 20, 2), model, segs, gap=0.1, stall=0.1, seed=3)
    got = [model.decode(inv.seg, inv.out_words) for inv in board.done]
    assert (got[0] == -128).all() and (got[1] == 127).all()
    assert got[3][0, 0, 0, 0] == round(127 * 4 / 9) and got[3][0, 1, 1, 0] == 127


def test_parameters_checked_before_construction():
    with pytest.raises(ValueError, match=r"PoolUnit: lanes must be an integer in \[1, 256\]"):
        PoolUnit(0, 4, 1)
    with pytest.raises(ValueError, match=r"PoolUnit: row_beats must be an integer"):
        PoolUnit(4, 0, 1)
    with pytest.raises(ValueError, match=r"PoolUnit: in_bits must be an integer in \[2, 8\]"):
        PoolUnit(4, 4, 1, 9)


def test_from_config_and_bad_constants():
    unit = PoolUnit.from_config(AcceleratorConfig(vector_lanes=8, ofmap_sram_bytes=4096))
    assert (unit.lanes, unit.row_beats, unit.groups, unit.in_bits) == (8, 256, 256, 8)
    Fragment.get(unit, None)
    lay = unit.layouts
    with pytest.raises(ValueError, match="not the whole 8x8 map"):
        encode_pool_consts(lay, pool_constants("max", (5, 5), (1, 1)), (8, 8, 8), 256, 256)
    with pytest.raises(ValueError, match="exceeds the line buffer's 16 words"):
        encode_pool_consts(lay, pool_constants("max", (2, 2), (2, 2)), (8, 20, 8), 16, 256)
    with pytest.raises(ValueError, match="strides"):
        encode_pool_consts(lay, pool_constants("max", (2, 2), (4, 4)), (8, 8, 8), 256, 256)
    with pytest.raises(ValueError, match="x must lie in"):
        encode_pool(lay, np.full((1, 1, 1, 1), 200))
