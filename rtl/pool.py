"""Pool unit: max and average pooling of NHWC maps, and global average pooling.

``PoolUnit(lanes, row_beats, groups)`` is bit-exact with :func:`edgetron.golden.pool.pool_nhwc`
(golden's ``maxpool2d`` / ``avgpool2d``; a global average pool is the window of the whole
map). The map streams in once, in raster order, ``lanes`` channels per beat; the unit keeps
what the windows still need on chip and visits one grid position per cycle
(``edgetron.hw.pool``; docs/vector-units.md has the diagram):

* **line buffer** (``row_beats`` words): at each position ``(y, x, g)`` it reads, at
  ``(x, g)``, the value of row ``y - 1`` and rows ``y - 1`` and ``y - 2`` reduced (max or
  sum), and writes back (a cycle later) the current value and the current value reduced
  with row ``y - 1``'s, so one read and one write per beat hold two rows (not used by a
  global pool);
* **vertical**: the max or sum of up to three rows (``r``): the current value reduced with
  one word of the line buffer, one two-input reduction; rows above the map (top
  padding) and the rows of the previous image are masked to the identity (``-2**(b-1)`` for
  the max, a padded value never wins; ``0`` for the sum, golden's zeros);
* **column buffer** (``groups`` words): per channel group the vertical result of column
  ``x - 1`` and the reduction of columns ``x - 1`` and ``x - 2``; the max or sum of the
  current column with one of them gives the window of up to three columns (``s``); in the
  global mode the word holds the running sum of the whole map. Both buffers are block RAM
  whose read data feeds only registers; their reads are transparent, and the word written
  in the cycle the read data is taken is forwarded (``elaborate``);
* **requantization** of the average, ``saturate_int8((sum * mult + 2**(shift-1)) >> shift)``,
  by the dyadic requantizer (``rtl/requant.py``, ``REQUANT_LATENCY`` stages); the max goes
  through it with ``mult = 2``, ``shift = 1`` (exactly the identity).

A max compares only the ``in_bits`` low bits of its operands (its values are inputs,
sign-extended in the wider registers), and every comparison of the grid counters is a
register updated with them (``rtl/pool_grid.py``).

The bottom and right padding are grid positions the unit visits without an input beat
(value: the identity), so that each window's output leaves at its bottom-right position:
one output beat at most per cycle, no second pass. Why this design rather than a stream of
window elements (``r * s`` beats per output): every input beat is read once and each cycle
does the work of a whole window column, so a 3x3 stride-2 max pool takes ``~h * w`` cycles
per channel group instead of ``9 * h * w / 4``, and a 3x3 stride-1 pool ``h * w`` instead of
``9 * h * w``.

Constants (the ``c`` beat) are the grid of :func:`edgetron.hw.pool.pool_grid`, derived by
:func:`encode_pool_consts` from a :class:`~edgetron.golden.pool.PoolConstants` and the map
shape, which it checks against the unit's limits. They apply to every image after them
(images follow each other with no gap); a ``c`` beat is taken only between images with the
unit empty.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from edgetron.config import AcceleratorConfig
from edgetron.golden.conv import conv2d_out_size
from edgetron.golden.intops import (
    INT8_MAX,
    M_MAX,
    MULT_BITS,
    S_MAX,
    S_MIN,
    SHIFT_BITS,
    as_int64,
    check_range,
    int_range,
)
from edgetron.golden.layernorm import CHANNELS_MAX
from edgetron.golden.pool import PoolConstants
from edgetron.hw.arith import beats
from edgetron.hw.pool import (
    POOL_BUFFER_BEATS,
    POOL_BUFFER_CYCLES,
    POOL_EDGE_MAX,
    POOL_LATENCY,
    POOL_STAGES,
    POOL_STRIDE_MAX,
    POOL_WINDOW_MAX,
    pool_cycles,
    pool_grid,
    pool_is_global,
    pool_row_beats,
)

from .arith import pack_checked, pack_lanes, unpack_lanes
from .common import MAX_BUFFER_WORDS, MAX_EDGE, CheckedComponent, check_param, tag_line
from .pool_grid import POS_BITS, grid_position
from .requant import Requantizer

__all__ = ["PoolLayouts", "PoolUnit", "decode_pool", "decode_pool_input", "encode_pool",
           "encode_pool_consts", "pool_layouts", "pool_timing"]

_OUT_BITS = INT8_MAX.bit_length() + 1
#: Elaboration parameters and their ranges.
_PARAM_RANGES = {"lanes": (1, MAX_EDGE), "row_beats": (1, MAX_BUFFER_WORDS),
                 "groups": (1, CHANNELS_MAX), "in_bits": (2, _OUT_BITS)}


def _sum_bits(in_bits: int) -> int:
    """Width of a window or global sum: ``POOL_EDGE_MAX ** 2`` values of ``in_bits``."""
    return in_bits + ceil_log2(POOL_EDGE_MAX * POOL_EDGE_MAX)


class PoolLayouts(NamedTuple):
    """Payload layouts of :class:`PoolUnit`'s streams."""

    c: data.StructLayout   #: the pool's grid and requantization constants
    i: data.ArrayLayout    #: ArrayLayout(signed(in_bits), lanes): one beat of a pixel
    o: data.ArrayLayout    #: ArrayLayout(signed(8), lanes)


def pool_layouts(lanes: int, groups: int, in_bits: int = _OUT_BITS) -> PoolLayouts:
    """The stream payloads of :class:`PoolUnit` (defined here once)."""
    pos, win = unsigned(POS_BITS), unsigned(POOL_WINDOW_MAX.bit_length())
    return PoolLayouts(
        c=data.StructLayout({
            "avg": unsigned(1), "glob": unsigned(1), "r": win, "s": win,
            "sh": unsigned(POOL_STRIDE_MAX.bit_length()),
            "sw": unsigned(POOL_STRIDE_MAX.bit_length()),
            "fy": pos, "fx": pos, "h": pos, "w": pos, "hi": pos, "wi": pos,
            "groups": unsigned(groups.bit_length()),
            "mult": unsigned(MULT_BITS), "shift": unsigned(SHIFT_BITS)}),
        i=data.ArrayLayout(signed(in_bits), lanes),
        o=data.ArrayLayout(signed(_OUT_BITS), lanes),
    )


def _reduce(avg, a, b, bits: int):
    """The sum (``avg``) or the max of ``a`` and ``b``. A max reduces values of the input
    range, ``bits`` wide (sign-extended in the wider registers): it compares those bits
    only."""
    return Mux(avg, a + b, Mux(a[:bits].as_signed() > b[:bits].as_signed(), a, b))


class PoolUnit(CheckedComponent):
    """Max and average pooling of an NHWC map, ``lanes`` channels per beat.

    Parameters
    ----------
    lanes : int
        Channels per beat, 1..256 (the config's ``vector_lanes``).
    row_beats : int
        Line-buffer words, 1..65536: the longest grid row, ``wi * ceil(C / lanes)`` beats
        (:func:`edgetron.hw.pool.pool_row_beats` of the config).
    groups : int
        Most channel groups ``ceil(C / lanes)`` of a map, 1..4096 (column-buffer words).
    in_bits : int
        Input width, 2..8 (the config's ``input_bits``). Every parameter is checked before
        construction; a bad value raises ValueError naming it and its range.

    Members
    -------
    c : ``In(stream.Signature(pool_layouts(...).c))``
        The grid and constants (:func:`encode_pool_consts`). Taken only between images
        with the unit empty; they apply to every later image.
    i : ``In(stream.Signature(pool_layouts(...).i))``
        The map, pixel by pixel in raster order, each pixel ``ceil(C / lanes)`` beats
        (channels ``lanes * g ..``; the last beat's spare lanes are ignored). Not taken
        while ``c.valid`` is high at an image start (constants first).
    o : ``Out(stream.Signature(pool_layouts(...).o))``
        The pooled map, in the same order: ``ceil(C / lanes)`` int8 beats per output pixel.

    Latency
    -------
    ``LATENCY = edgetron.hw.pool.POOL_LATENCY = 9`` cycles (read, vertical, horizontal,
    then the requantizer's six) from a window's bottom-right
    position visited to its output beat valid; ``edgetron.hw.pool.pool_cycles`` from the
    first input handshake to the last output handshake.

    Throughput
    ----------
    One grid position per cycle: ``n * hi * wi * ceil(C / lanes)`` cycles for ``n`` images,
    the input map once plus the bottom and right padding (``hi <= h + 1``, ``wi <= w + 1``).

    Backpressure
    ------------
    The pipeline never stops (no clock enable): its beats wait for ``o.ready`` in an output
    buffer of ``edgetron.hw.pool.POOL_BUFFER_BEATS`` beats, and a position is visited only
    while the buffer has room for every beat in flight, so ``i.ready`` drops when
    ``o.ready`` has been low long enough to fill it (not in the cycle it drops); nothing is
    lost or duplicated and the offered beat is held. With ``o.ready`` always high the
    buffer never fills (its one cycle is in ``POOL_LATENCY``).

    Golden
    ------
    :func:`edgetron.golden.pool.pool_nhwc` with the :class:`~edgetron.golden.pool.PoolConstants`
    the ``c`` beat encodes.
    """

    LATENCY = POOL_LATENCY

    @classmethod
    def check_parameters(cls, lanes: int, row_beats: int, groups: int,
                         in_bits: int = _OUT_BITS) -> None:
        for name, value in (("lanes", lanes), ("row_beats", row_beats), ("groups", groups),
                            ("in_bits", in_bits)):
            check_param(cls.__name__, name, value, *_PARAM_RANGES[name])

    def __init__(self, lanes: int, row_beats: int, groups: int, in_bits: int = _OUT_BITS):
        self._lanes, self._row_beats, self._groups = lanes, row_beats, groups
        self._in_bits = in_bits
        self._layouts = pool_layouts(lanes, groups, in_bits)
        lay = self._layouts
        super().__init__({"c": In(stream.Signature(lay.c)), "i": In(stream.Signature(lay.i)),
                          "o": Out(stream.Signature(lay.o))})

    @classmethod
    def from_config(cls, config: AcceleratorConfig) -> PoolUnit:
        """The unit for ``config``: ``lanes = vector_lanes``, the line buffer in the ofmap
        buffer (:func:`edgetron.hw.pool.pool_row_beats`, at most 65536 words), channel
        groups for 4096 channels or as many as one line-buffer row holds, whichever is
        fewer (a map whose grid row fits has ``groups <= row_beats``), ``in_bits =
        input_bits``."""
        lanes = config.vector_lanes
        rows = min(int(pool_row_beats(lanes, config.ofmap_sram_bytes)), MAX_BUFFER_WORDS)
        return cls(lanes, rows, min(rows, int(beats(CHANNELS_MAX, lanes))), config.input_bits)

    @property
    def parameters(self) -> dict[str, int]:
        """The elaboration parameters (the manifest's), by name."""
        return {"lanes": self._lanes, "row_beats": self._row_beats, "groups": self._groups,
                "in_bits": self._in_bits}

    @property
    def lanes(self) -> int:
        """Channels per beat."""
        return self._lanes

    @property
    def row_beats(self) -> int:
        """Line-buffer words."""
        return self._row_beats

    @property
    def groups(self) -> int:
        """Column-buffer words: the most channel groups of a map."""
        return self._groups

    @property
    def in_bits(self) -> int:
        """Input width."""
        return self._in_bits

    @property
    def layouts(self) -> PoolLayouts:
        """The stream payload layouts."""
        return self._layouts

    def _output_buffer(self, m: Module, beat, valid) -> None:
        """The output buffer of ``POOL_BUFFER_BEATS`` beats: ``o`` is a register (the
        oldest beat), behind it a FIFO of the others; a beat (``beat``, ``valid``) goes into
        the register when it is free and the FIFO empty, else into the FIFO, so that it
        is offered in the next cycle at the earliest (``POOL_BUFFER_CYCLES``)."""
        m.submodules.spill = spill = SyncFIFO(width=len(beat), depth=POOL_BUFFER_BEATS - 1)
        take = Signal()                   # the register is free for the next cycle
        m.d.comb += [take.eq(~self.o.valid | self.o.ready), spill.r_en.eq(take),
                     spill.w_data.eq(beat), spill.w_en.eq(valid & ~(take & ~spill.r_rdy))]
        with m.If(take):
            with m.If(spill.r_rdy):
                m.d.sync += [self.o.payload.eq(spill.r_data), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(beat), self.o.valid.eq(valid)]

    def elaborate(self, platform):
        m = Module()
        lanes, in_bits = self._lanes, self._in_bits
        qbits, vbits, sbits = in_bits + 1, in_bits + 2, _sum_bits(in_bits)
        loaded = Signal()
        go = Signal()
        load = Signal()
        pos = grid_position(m, self._layouts.c, self._groups, self.c.payload, load, go)
        k = pos.k

        # ---- the grid position and what it needs -------------------------------------
        real = pos.xin & pos.yin
        at_start = pos.g0 & ~pos.x_ge1 & ~pos.y_ge1
        lo = -(1 << (in_bits - 1))
        ident = Mux(k.avg, 0, lo)

        # The pipeline never stops (no clock enable fanned out to its registers): its beats
        # go into the output buffer, a FIFO of POOL_BUFFER_BEATS beats, and a position is
        # visited only while there is room: ``free``, the beats of the buffer not promised
        # to a position in flight nor holding an unread beat, is not zero, or a beat leaves
        # in this cycle (so that after backpressure the unit resumes no later than a
        # stalled pipeline would).
        tags = tag_line(m, {"valid": 1, "emit": 1, "hx1": 1, "hx2": 1,
                            "g": range(self._groups)}, POOL_LATENCY - POOL_BUFFER_CYCLES, "tag")
        beat = Signal(len(self.o.payload.as_value()))     # the requantizer's output beat
        leaves = self.o.valid & self.o.ready
        self._output_buffer(m, beat, tags.output.emit)
        free = Signal(range(POOL_BUFFER_BEATS + 1), init=POOL_BUFFER_BEATS)
        free_next = Signal.like(free)
        room = Signal()
        busy = Signal()                   # a position in flight: tags 1 .. depth valid
        m.d.sync += busy.eq(Cat(tags[d].valid for d in range(tags.depth)).any())
        m.d.comb += [
            free_next.eq(free - tags.input.emit + leaves),
            room.eq((free != 0) | leaves),
            self.c.ready.eq(at_start & ~busy),
            load.eq(self.c.valid & self.c.ready),
            self.i.ready.eq(loaded & room & real & ~(at_start & self.c.valid)),
            go.eq(loaded & room & Mux(real, self.i.valid & ~(at_start & self.c.valid), 1)),
            tags.input.valid.eq(go),
            tags.input.emit.eq(go & pos.ex & pos.ey),
            tags.input.hx1.eq(Mux(k.glob, pos.y_ge1 | pos.x_ge1, (k.s >= 2) & pos.x_ge1)),
            tags.input.hx2.eq(~k.glob & (k.s == 3) & pos.x_ge2),
            tags.input.g.eq(pos.g),
        ]
        # The requantizer's multiplier and shift, decoded when the constants load (no mode
        # multiplexer between them and the multipliers): the average's, or for the max
        # mult = 2, shift = 1: (2v + 1) >> 1 = v.
        shift = Signal(SHIFT_BITS)
        mult = Signal(MULT_BITS)
        with m.If(load):
            kc = self.c.payload
            m.d.sync += [loaded.eq(1), shift.eq(Mux(kc.avg, kc.shift, 1)),
                         mult.eq(Mux(kc.avg, kc.mult, 2))]

        # ---- line buffer: rows above at (x, g), read, then rewritten a cycle later --------
        # Word j: p1, row y - 1, and q, rows y - 1 and y - 2 reduced (one two-input
        # reduction in the vertical stage). The read is free-running, addressed from registers
        # with the word of the position after the current one; ``fresh``: that word arrived
        # for the current position, ``held`` keeps it while the position waits; ``again``:
        # the word written back now (a cycle after the visit, from v1, p1) is the current
        # one's (a grid row of one word). Transparent reads, as the column buffer's. p1 is
        # masked: where it is the identity the rows reduced with it are too (use2 low).
        # docs/vector-units.md (Pool) has the whole of it.
        lane_arr = data.ArrayLayout(signed(in_bits), lanes)
        line_word = data.StructLayout({"p1": lane_arr,
                                       "q": data.ArrayLayout(signed(qbits), lanes)})
        m.submodules.lines = lines = memory.Memory(shape=line_word, depth=self._row_beats,
                                                   init=[])
        lw = lines.write_port()
        lr = lines.read_port(transparent_for=(lw,))
        j = Signal(range(self._row_beats))
        j_after = Signal.like(j)          # the word of the position after this one
        lw_a = Signal.like(j)             # the word visited last cycle: written now
        line, held = Signal(line_word), Signal(line_word)
        fresh, again = Signal(), Signal()
        # rd: the block RAM's word is the current position's (its read data then passes
        # one multiplexer, those of the masks included, before a register); other: the
        # held word, or the one written now
        rd, other = Signal(), Signal(line_word)
        use1 = ~k.glob & (k.r >= 2) & pos.y_ge1
        use2 = ~k.glob & (k.r == 3) & pos.y_ge2
        m.d.comb += [j_after.eq(Mux(k.glob | (pos.g_last & pos.x_last), 0, j + 1)),
                     lr.addr.eq(j_after), lw.addr.eq(lw_a),
                     rd.eq(fresh & ~again), other.eq(Mux(again, lw.data, held)),
                     line.eq(Mux(rd, lr.data, other))]
        # again: the word written now is the current position's (lw_a == j): a grid row of
        # one word, whose last position is its first (j == 0 at the row's end)
        m.d.sync += [lw.en.eq(go & ~k.glob), fresh.eq(go), held.eq(line),
                     again.eq(go & ~k.glob & pos.g_last & pos.x_last & (j == 0))]
        with m.If(go):
            m.d.sync += [j.eq(j_after), lw_a.eq(j)]

        # ---- column buffer: per group, column x-1 and the pair x-1, x-2 (or the global sum) -
        # Group g's word: ``a``, column x - 1's vertical result (or the global sum), and
        # ``p``, columns x - 1 and x - 2 reduced, so that the horizontal stage has two
        # 2-input reductions side by side. Read with the group entering the pipeline (two
        # steps ahead), into registers only; written a step later from registers. The words
        # the read misses are forwarded: the one computed in the step it loads (fwd, one
        # group) and the one the write port writes then (fwd2, two groups).
        col_word = data.StructLayout({"a": data.ArrayLayout(signed(sbits), lanes),
                                      "p": data.ArrayLayout(signed(vbits + 1), lanes)})
        m.submodules.cols = cols = memory.Memory(shape=col_word, depth=self._groups, init=[])
        cw = cols.write_port()
        cr = cols.read_port(transparent_for=(cw,))
        c_now = Signal(col_word)          # the word the horizontal stage computes
        m.d.comb += cr.addr.eq(pos.g)
        m.d.sync += [cw.addr.eq(tags[2].g), cw.en.eq(tags[2].valid), cw.data.eq(c_now)]
        # The operand the window reduces with is chosen as it loads, so that neither the
        # selection nor its fan-out (hx1, hx2 to every bit) is in the horizontal stage. The
        # late inputs come last, each through one multiplexer: the block RAM's read data
        # when its word is the latest (r_p, r_a), the words computed now (s_p: the pair,
        # s_h: the running sum; s_v the vertical result), then the write port's word. The
        # selects are registers, decoded a cycle ahead from the tags (the pipeline always
        # advances: tags[1] and tags[2] are the input's and tags[1]'s of the cycle before):
        # fwd, the word computed now is the group's (one group), fwd2, the word written now
        # (two groups); rd_c, neither.
        hx1, hx2 = tags.input.hx1, tags.input.hx2
        fwd = tags[1].valid & (tags[1].g == pos.g)
        fwd2 = tags[2].valid & (tags[2].g == pos.g)
        rd_c = ~fwd & ~fwd2
        sel = {n: Signal(name=n) for n in ("r_p", "r_a", "s_p", "s_h", "s_v", "w_p", "w_a",
                                           "s_rd", "s_fwd")}
        m.d.sync += [sel["r_p"].eq(rd_c & hx2), sel["r_a"].eq(rd_c & hx1),
                     sel["s_p"].eq(fwd & hx2), sel["s_h"].eq(fwd & hx1 & k.glob),
                     sel["s_v"].eq(fwd & hx1), sel["w_p"].eq(hx2), sel["w_a"].eq(hx1),
                     sel["s_rd"].eq(rd_c), sel["s_fwd"].eq(fwd)]

        # ---- requantization: the dyadic requantizer, never stopped -------------------
        m.submodules.requant = rq = Requantizer(lanes, sbits, _OUT_BITS)
        m.d.comb += rq.o.ready.eq(1)      # its beats go into the output buffer
        m.d.sync += free.eq(free_next)

        stages = None
        for lane in range(lanes):
            v = Signal(signed(in_bits), name=f"v_{lane}")
            m.d.comb += v.eq(Mux(real, self.i.payload[lane], ident))
            v1 = Signal(signed(in_bits), name=f"v1_{lane}")
            p1 = Signal(signed(in_bits), name=f"p1_{lane}")
            q1 = Signal(signed(qbits), name=f"q1_{lane}")
            vert = Signal(signed(vbits), name=f"vert_{lane}")
            hor = Signal(signed(sbits), name=f"hor_{lane}")
            # x >= 2 of a 3-column window: the pair; x >= 1 (or the global sum): column x-1
            prev = Signal(signed(sbits), name=f"prev_{lane}")
            a_vert = Signal(signed(vbits), name=f"a_vert_{lane}")     # column x-1 (window)
            h_now = Signal(signed(sbits), name=f"h_now_{lane}")
            written = Mux(sel["w_p"], cw.data.p[lane], Mux(sel["w_a"], cw.data.a[lane], ident))
            m.d.sync += [
                prev.eq(Mux(sel["r_p"], cr.data.p[lane], Mux(sel["r_a"], cr.data.a[lane],
                        Mux(sel["s_p"], c_now.p[lane], Mux(sel["s_h"], h_now,
                                                           Mux(sel["s_v"], vert, written)))))),
                a_vert.eq(Mux(sel["s_rd"], cr.data.a[lane][:vbits].as_signed(),
                              Mux(sel["s_fwd"], vert, cw.data.a[lane][:vbits].as_signed()))),
            ]
            m.d.comb += [
                h_now.eq(_reduce(k.avg, vert, prev, in_bits)),
                c_now.a[lane].eq(Mux(k.glob, h_now, vert)),
                c_now.p[lane].eq(_reduce(k.avg, vert, a_vert, in_bits)),
            ]
            m.d.sync += [
                v1.eq(v),                                                       # read
                p1.eq(Mux(rd & use1, lr.data.p1[lane], Mux(use1, other.p1[lane], ident))),
                q1.eq(Mux(rd & use2, lr.data.q[lane], Mux(rd & use1, lr.data.p1[lane],
                      Mux(use2, other.q[lane], Mux(use1, other.p1[lane], ident))))),
                vert.eq(_reduce(k.avg, v1, q1, in_bits)),                       # vertical
                hor.eq(h_now),                                                  # horizontal
            ]
            m.d.comb += [rq.i.payload.acc[lane].eq(hor), rq.i.payload.mult[lane].eq(mult),
                         rq.i.payload.shift[lane].eq(shift),
                         beat[lane * _OUT_BITS:(lane + 1) * _OUT_BITS].eq(rq.o.payload[lane]),
                         lw.data.p1[lane].eq(v1),
                         lw.data.q[lane].eq(_reduce(k.avg, v1, p1, in_bits))]
            stages = (v1, vert, hor)
        if not (len(stages) == len(POOL_STAGES) and len(stages) + rq.LATENCY == tags.depth
                and tags.depth + POOL_BUFFER_CYCLES == self.LATENCY):
            raise AssertionError(f"PoolUnit: {len(stages)} data stages + requantizer "
                                 f"{rq.LATENCY}, {tags.depth} tag stages, timing model "
                                 f"POOL_LATENCY = {self.LATENCY}")
        return m


def encode_pool_consts(layouts: PoolLayouts, consts: PoolConstants, shape, row_beats: int,
                       groups: int) -> int:
    """The ``c`` payload of the pool ``consts`` over maps of ``shape = (H, W, C)`` for a
    unit of ``row_beats`` line-buffer words and ``groups`` channel groups.

    Raises
    ------
    ValueError
        A pool golden rejects, or one beyond the unit: a window edge above 3 that is not
        the whole map (global pool, no padding), a stride above 3, a map edge above
        ``POOL_EDGE_MAX``, more channel groups than the unit's ``groups``, a grid row of
        more beats than ``row_beats`` (a global pool does not use the line buffer), or
        ``mult`` / ``shift`` out of range.
    """
    if not isinstance(consts, PoolConstants):
        raise TypeError(f"consts must be PoolConstants, got {type(consts).__name__}")
    h, w, c = (int(v) for v in shape)
    k = consts
    lanes = layouts.o.length
    pads = (k.pt, k.pb, k.pl, k.pr)
    if min(h, w, c) < 1 or max(h, w) > POOL_EDGE_MAX:
        raise ValueError(f"PoolUnit: map {h}x{w}x{c} must have edges in [1, {POOL_EDGE_MAX}] "
                         "and C >= 1")
    if k.kind not in ("max", "avg"):
        raise ValueError(f"PoolUnit: kind {k.kind!r} is neither 'max' nor 'avg'")
    glob = bool(pool_is_global(k.r, k.s))
    if glob and ((k.r, k.s) != (h, w) or any(pads)):
        raise ValueError(f"PoolUnit: window {k.r}x{k.s} exceeds {POOL_WINDOW_MAX}x"
                         f"{POOL_WINDOW_MAX} and is not the whole {h}x{w} map without padding "
                         "(a global pool)")
    if not glob and not (1 <= k.sh <= POOL_STRIDE_MAX and 1 <= k.sw <= POOL_STRIDE_MAX):
        raise ValueError(f"PoolUnit: strides ({k.sh}, {k.sw}) must lie in [1, "
                         f"{POOL_STRIDE_MAX}]")
    if max(k.pt, k.pb) > k.r // 2 or max(k.pl, k.pr) > k.s // 2:
        raise ValueError(f"PoolUnit: padding {pads} exceeds half the window {k.r}x{k.s}")
    oh = conv2d_out_size(h, k.r, k.sh, (k.pt, k.pb), "height")
    ow = conv2d_out_size(w, k.s, k.sw, (k.pl, k.pr), "width")
    hi, wi, _, _ = (int(v) for v in pool_grid(h, w, oh, ow, k.r, k.s, k.sh, k.sw, k.pt, k.pl))
    grp = int(beats(c, lanes))
    if grp > groups:
        raise ValueError(f"PoolUnit: {c} channels are {grp} groups of {lanes}, more than "
                         f"the unit's {groups}")
    if not glob and wi * grp > row_beats:
        raise ValueError(f"PoolUnit: a grid row of {wi} x {grp} beats exceeds the line "
                         f"buffer's {row_beats} words")
    avg = k.kind == "avg"
    if avg and not (0 <= k.mult <= M_MAX and S_MIN <= k.shift <= S_MAX):
        raise ValueError(f"PoolUnit: mult = {k.mult} outside [0, {M_MAX}] or shift = "
                         f"{k.shift} outside [{S_MIN}, {S_MAX}]")
    fields = {"avg": int(avg), "glob": int(glob), "r": 0 if glob else k.r,
              "s": 0 if glob else k.s, "sh": 1 if glob else k.sh, "sw": 1 if glob else k.sw,
              "fy": h - 1 if glob else k.r - 1 - k.pt, "fx": w - 1 if glob else k.s - 1 - k.pl,
              "h": h, "w": w, "hi": hi, "wi": wi, "groups": grp,
              "mult": k.mult if avg else 0, "shift": k.shift if avg else 0}
    return pack_checked("PoolUnit", layouts.c, fields)


def encode_pool(layouts: PoolLayouts, x) -> list[int]:
    """``i`` payloads of the NHWC maps ``x`` (N, H, W, C): per pixel ``ceil(C / lanes)``
    beats, the last padded with zeros."""
    lanes = layouts.o.length
    in_bits = layouts.i.elem_shape.width
    v = as_int64(x, "x")
    if v.ndim != 4 or v.size == 0:
        raise ValueError(f"x must be a non-empty (N, H, W, C) map, got shape {v.shape}")
    check_range(v, *int_range(in_bits), "x")
    c = v.shape[3]
    grp = int(beats(c, lanes))
    pix = np.pad(v.reshape(-1, c), ((0, 0), (0, grp * lanes - c))).reshape(-1, lanes)
    return [pack_lanes(row, in_bits) for row in pix]


def decode_pool_input(layouts: PoolLayouts, words, shape) -> np.ndarray:
    """The NHWC maps of ``shape`` the ``i`` payloads ``words`` carry (inverse of
    :func:`encode_pool`, for input monitors)."""
    return _decode(words, layouts.i.elem_shape.width, layouts.o.length, shape)


def decode_pool(layouts: PoolLayouts, words, shape) -> np.ndarray:
    """The pooled NHWC maps of ``shape`` (N, Ho, Wo, C) from the ``o`` payloads ``words``."""
    return _decode(words, _OUT_BITS, layouts.o.length, shape)


def _decode(words, width: int, lanes: int, shape) -> np.ndarray:
    n, h, w, c = shape
    grp = -(-c // lanes)
    if len(words) < n * h * w * grp:
        raise ValueError(f"{len(words)} beats hold fewer than the {n * h * w} pixels of "
                         f"{grp} beats each of shape {tuple(shape)}")
    vals = np.array([unpack_lanes(int(wd), width, lanes) for wd in words[:n * h * w * grp]],
                    dtype=np.int64)
    return vals.reshape(n * h * w, grp * lanes)[:, :c].reshape(n, h, w, c)


def pool_timing(config: AcceleratorConfig) -> dict:
    """The cycle model of :class:`PoolUnit` as data (export manifest)."""
    lanes = config.vector_lanes
    return {
        "model": "edgetron.hw.pool.pool_cycles",
        "counts": "cycles from the first i handshake to the last o handshake, both included, "
                  "with i valid on every cycle and o.ready always high",
        "output_backpressure": f"an output buffer of {POOL_BUFFER_BEATS} beats; positions "
                               "stop (i.ready low) when it has no room for the beats in "
                               "flight",
        "variables": {"n": "images", "h": "map height", "w": "map width", "C": "channels",
                      "oh": "output height", "ow": "output width", "r": "window height",
                      "s": "window width", "sh": "stride height", "sw": "stride width",
                      "pt": "padding top", "pl": "padding left"},
        "constants": {"lanes": lanes, "latency_cycles": POOL_LATENCY},
        "derived": {"yl": "(oh - 1) * sh - pt + r - 1", "xl": "(ow - 1) * sw - pl + s - 1",
                    "hi": "max(h, yl + 1)", "wi": "max(w, xl + 1)", "G": "ceil(C / lanes)"},
        "total": "((n - 1) * hi * wi + yl * wi + xl + 1) * G + latency_cycles",
        "example": {"maxpool 3x3/2 pad 1, 1 x 112 x 112 x 64": int(pool_cycles(
            lanes, 1, 112, 112, 64, 56, 56, 3, 3, 2, 2, 1, 1))},
    }
