"""Model of the pool unit for every testbench: codec, golden, timing, stimuli, coverage.

Used by tests/rtl/test_pool.py (Amaranth simulator) and tests/cocotb/tb_pool.py (exported
Verilog); nothing here depends on a simulator. The codec is rtl.pool's, golden
``golden.pool.pool_nhwc``, the cycles ``edgetron.hw.pool.pool_cycles``. A segment is one
pool (a constants beat) over ``n`` NHWC maps.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgetron.golden.conv import conv2d_out_size
from edgetron.golden.intops import int_range
from edgetron.golden.pool import PoolConstants, pool_constants, pool_nhwc
from edgetron.hw.arith import beats
from edgetron.hw.pool import POOL_LATENCY, pool_cycles, pool_grid, pool_is_global
from edgetron.rtl.pool import (
    decode_pool,
    decode_pool_input,
    encode_pool,
    encode_pool_consts,
    pool_layouts,
)

from .vector import Segment, VectorModel

__all__ = ["KINDS", "PoolModel"]

#: Stimulus kinds: all -128, all 127, all one random value, random.
KINDS = ("all_min", "all_max", "all_equal", "random", "random", "random")


def _out_shape(seg: Segment) -> tuple[int, int, int, int]:
    n, h, w, c = seg.data[0].shape
    k = seg.consts
    return (n, conv2d_out_size(h, k.r, k.sh, (k.pt, k.pb)),
            conv2d_out_size(w, k.s, k.sw, (k.pl, k.pr)), c)


class PoolModel(VectorModel):
    """The pool unit with ``lanes`` lanes, ``row_beats`` line-buffer words, ``groups``
    channel groups and ``in_bits``-bit inputs."""

    name = "pool"
    inputs = ("c", "i")
    #: The last input rows of a map may fall in no window (e.g. 2x2 stride 2 over 7 rows).
    EARLY_LAST_OUTPUT = True
    COVER: ClassVar[dict[str, tuple]] = {
        # per pool: the kind (global: a whole-map window beyond 3x3)
        "kind": ("max", "avg", "global"),
        # per pool: the window
        "window": ("1", "2x2", "3x3", "mixed", "whole_map"),
        # per pool: the strides, and padding on any side
        "stride": ("1", "2", "3", "mixed"),
        "padding": ("none", "some"),
        # per output value: at the int8 ends, or between
        "output": ("min", "max", "inside"),
        # per pool: one channel group, a partial last group, whole groups
        "channels": ("one_group", "partial_group", "whole_groups"),
    }

    def __init__(self, lanes: int, row_beats: int, groups: int, in_bits: int = 8):
        self.lanes, self.row_beats, self.groups, self.in_bits = lanes, row_beats, groups, in_bits
        self.layouts = pool_layouts(lanes, groups, in_bits)

    # ---- codec, golden, timing ------------------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        shape = seg.data[0].shape[1:]
        return {"c": [encode_pool_consts(self.layouts, seg.consts, shape, self.row_beats,
                                         self.groups)]}

    def in_words(self, seg: Segment) -> list[int]:
        return encode_pool(self.layouts, seg.data[0])

    def in_beats(self, seg: Segment) -> int:
        n, h, w, c = seg.data[0].shape
        return n * h * w * int(beats(c, self.lanes))

    def out_beats(self, seg: Segment) -> int:
        n, oh, ow, c = _out_shape(seg)
        return n * oh * ow * int(beats(c, self.lanes))

    def decode_inputs(self, seg: Segment, words) -> tuple:
        return (decode_pool_input(self.layouts, words, seg.data[0].shape),)

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        return pool_nhwc(data[0], seg.consts)

    def decode(self, seg: Segment, words) -> np.ndarray:
        return decode_pool(self.layouts, words, _out_shape(seg))

    def cycles(self, seg: Segment) -> int:
        k = seg.consts
        _, oh, ow, _ = _out_shape(seg)
        return int(pool_cycles(self.lanes, *seg.data[0].shape, oh, ow, k.r, k.s, k.sh, k.sw,
                               k.pt, k.pl))

    def latency(self) -> int:
        # the bottom padded row runs after the last input beat
        return POOL_LATENCY + self.row_beats

    # ---- coverage --------------------------------------------------------------------------
    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        k = seg.consts
        c = data[0].shape[3]
        glob = pool_is_global(k.r, k.s)
        window = ("whole_map" if glob else "1" if (k.r, k.s) == (1, 1)
                  else f"{k.r}x{k.s}" if k.r == k.s and k.r > 1 else "mixed")
        out = [{"kind": "global" if glob else k.kind, "window": window,
                "stride": str(k.sh) if k.sh == k.sw else "mixed",
                "padding": "some" if any((k.pt, k.pb, k.pl, k.pr)) else "none",
                "channels": ("one_group" if c <= self.lanes else "partial_group"
                             if c % self.lanes else "whole_groups")}]
        vals = np.unique(result)
        out += [{"output": "min" if v == -128 else "max" if v == 127 else "inside"}
                for v in vals]
        return out

    # ---- stimuli ---------------------------------------------------------------------------
    def map(self, rng, kind: str, shape) -> np.ndarray:
        lo, hi = int_range(self.in_bits)
        if kind == "all_min":
            return np.full(shape, lo, np.int64)
        if kind == "all_max":
            return np.full(shape, hi, np.int64)
        if kind == "all_equal":
            return np.full(shape, int(rng.integers(lo, hi, endpoint=True)), np.int64)
        return rng.integers(lo, hi, shape, endpoint=True)

    def _fits(self, h, w, c, k: PoolConstants) -> bool:
        if pool_is_global(k.r, k.s):
            return True
        oh, ow = _out_shape(Segment("", k, (np.zeros((1, h, w, c)),)))[1:3]
        wi = int(pool_grid(h, w, oh, ow, k.r, k.s, k.sh, k.sw, k.pt, k.pl)[1])
        return wi * int(beats(c, self.lanes)) <= self.row_beats

    def random_pool(self, rng, t: int) -> tuple[PoolConstants, tuple[int, int, int, int]]:
        """A random pool and map shape the unit holds; every fifth one global."""
        kind = ("max", "avg")[int(rng.integers(2))]
        scale = 1.0 if t % 3 else float(2.0 ** rng.uniform(-4, 1))
        n = int(rng.choice([1, 1, 2]))
        gmax = max(1, min(self.groups, 3))
        c = int(rng.integers(1, gmax * self.lanes, endpoint=True))
        while True:
            if t % 5 == 4:
                h, w = int(rng.integers(1, 8, endpoint=True)), int(rng.integers(4, 8,
                                                                            endpoint=True))
                k = pool_constants(kind, (h, w), (1, 1), (0, 0, 0, 0), 1.0, scale)
            else:
                r, s = (int(v) for v in rng.integers(1, 3, 2, endpoint=True))
                if t % 2:
                    s = r
                sh, sw = (int(v) for v in rng.integers(1, 3, 2, endpoint=True))
                pads = [int(rng.integers(0, r // 2, endpoint=True)),
                        int(rng.integers(0, r // 2, endpoint=True)),
                        int(rng.integers(0, s // 2, endpoint=True)),
                        int(rng.integers(0, s // 2, endpoint=True))]
                h = int(rng.integers(max(1, r - pads[0] - pads[1]), 9, endpoint=True))
                w = int(rng.integers(max(1, s - pads[2] - pads[3]), 9, endpoint=True))
                k = pool_constants(kind, (r, s), (sh, sw), tuple(pads), 1.0, scale)
            if self._fits(h, w, c, k):
                return k, (n, h, w, c)
            c = max(1, c // 2)

    def random_segments(self, rng, count: int) -> list[Segment]:
        segs = []
        for t in range(count):
            kind = KINDS[t % len(KINDS)]
            k, shape = self.random_pool(rng, t)
            segs.append(Segment(kind, k, (self.map(rng, kind, shape),)))
        return segs

    def coverage_segments(self, rng) -> list[Segment]:
        """Pools that hit every coverage bin: each kind, window and stride class, with and
        without padding, outputs at both int8 ends, every channel class."""
        lanes = self.lanes
        c2 = min(self.groups, 2) * lanes
        out = []
        for kind, win, stride, pads, c, stim in (
                ("max", (3, 3), (2, 2), (1, 1, 1, 1), c2, "all_min"),
                ("avg", (3, 3), (1, 1), (1, 1, 1, 1), 1, "all_max"),
                ("max", (2, 2), (2, 2), (0, 0, 0, 0), lanes + 1 if self.groups > 1 else 1,
                 "random"),
                ("avg", (2, 2), (1, 1), (1, 0, 0, 1), c2, "random"),
                ("max", (1, 1), (3, 3), (0, 0, 0, 0), lanes, "all_max"),
                ("avg", (2, 3), (1, 2), (0, 1, 1, 0), lanes, "all_min"),
                ("avg", (5, 6), (1, 1), (0, 0, 0, 0), lanes, "random")):
            h, w = (5, 6) if win == (5, 6) else (7, 6)
            k = pool_constants(kind, win, stride, pads)
            out.append(Segment(f"{kind}{win}", k, (self.map(rng, stim, (1, h, w, c)),)))
        return out

    def layer_segments(self, rng) -> list[Segment]:
        """Full-size network pools: ResNet-18's max pool (3x3/2, padding 1, 112x112x64) and
        the global average heads of ResNet-18 (7x7x512) and MobileNetV2 (7x7x1280) at
        calibrated scales (the unit needs ``row_beats >= 113 * ceil(64 / lanes)``)."""
        return [Segment("resnet18 maxpool", pool_constants("max", (3, 3), (2, 2), (1, 1, 1, 1)),
                        (self.map(rng, "random", (1, 112, 112, 64)),)),
                Segment("resnet18 avgpool", pool_constants("avg", (7, 7), (1, 1),
                                                           (0, 0, 0, 0), 0.04, 0.01),
                        (self.map(rng, "random", (1, 7, 7, 512)),)),
                Segment("mobilenetv2 avgpool", pool_constants("avg", (7, 7), (1, 1),
                                                              (0, 0, 0, 0), 0.05, 0.03),
                        (self.map(rng, "random", (1, 7, 7, 1280)),))]

    def full_rate_segments(self, rng) -> list[Segment]:
        lanes, c = self.lanes, min(self.groups, 2) * self.lanes
        specs = [("max", (3, 3), (2, 2), (1, 1, 1, 1), (2, 9, 9, c)),
                 ("max", (2, 2), (2, 2), (0, 0, 0, 0), (1, 8, 8, lanes)),
                 ("avg", (3, 3), (1, 1), (1, 1, 1, 1), (1, 6, 7, c)),
                 ("avg", (7, 7), (1, 1), (0, 0, 0, 0), (2, 7, 7, c)),
                 ("avg", (2, 2), (2, 2), (0, 1, 0, 1), (1, 5, 5, 1))]
        return [Segment("random", pool_constants(kind, win, st, pads),
                        (self.map(rng, "random", shape),))
                for kind, win, st, pads, shape in specs]
