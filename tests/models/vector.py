"""What the models of the vector units share: segments, the input monitor, the scoreboard,
coverage bins.

Nothing here depends on a simulator. A vector unit takes one constants beat (``c``; the
LayerNorm unit then its ``p`` parameter beats) and then data beats on ``i``; the
constants apply until the next ``c`` beat, which the unit takes only once it is empty. A
**segment** is one constants beat and the data after it (rows of one length for the row
units, a vector of elements for the element-wise ones): the unit of stimulus, of golden
comparison and of cycle agreement.

Both suites (tests/rtl, Amaranth simulator; tests/cocotb, the exported Verilog)

* drive :meth:`VectorModel.items` of each segment, in order, on the unit's input streams;
* hand every *accepted* input beat to a :class:`VectorMonitor` (``on_beat(stream, word,
  cycle)``), which assigns beats to segments in order, checks the constants beats, and
  rebuilds each segment's data from the ``i`` beats the unit took (the codec's inverse);
* hand every output handshake to the :class:`VectorScoreboard`, which compares each
  segment's result with golden, computed on the rebuilt data, bit for bit, and keeps the
  cycles (first ``i`` handshake, last ``o`` handshake) for the timing check against the
  simulator's cycle function of the unit (``sim.units.<unit>``, which the simulator costs
  every op with);
* sample the model's coverage bins (:meth:`VectorModel.cover`) of every row checked.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from edgetron.config import AcceleratorConfig, SimParams

__all__ = ["Coverage", "Segment", "VectorModel", "VectorMonitor", "VectorScoreboard"]

#: Cycles added to the longest time a beat can stay in a unit when watching for a stray
#: output beat after the expected ones.
QUIET_MARGIN = 16


@dataclasses.dataclass(frozen=True)
class Segment:
    """One constants beat and the data after it.

    ``data``: ``(q,)`` with ``q`` of shape ``(rows, n)`` for the row units, ``(x,)`` a flat
    vector for GELU, ``(a, b)`` for the add unit. ``kind``: the stimulus class (extremes
    and random kinds), for messages.
    """

    kind: str
    consts: object
    data: tuple

    @property
    def rows(self) -> int:
        """Rows of a row unit's segment (1 for an element-wise one)."""
        return self.data[0].shape[0] if self.data[0].ndim == 2 else 1


class VectorModel:
    """Codec, golden, timing, stimuli and coverage of one vector unit (subclasses).

    Subclasses set :attr:`name`, :attr:`inputs`, :attr:`COVER` and implement the
    abstract methods; ``lanes`` and the widths come from the export manifest's
    ``parameters`` (:meth:`from_parameters`).
    """

    #: Unit name (as in ``edgetron.rtl.export.UNITS``).
    name = ""
    #: Input streams, in the order a segment uses them.
    inputs: tuple[str, ...] = ("c", "i")
    #: Coverage points: name -> bins (every bin must be hit by a complete run).
    COVER: ClassVar[dict[str, tuple]] = {}
    #: Whether a segment's last output beat may come before its last input beat (a pool
    #: whose last input rows fall in no window); otherwise that is an error.
    EARLY_LAST_OUTPUT = False

    @classmethod
    def from_parameters(cls, params: dict) -> VectorModel:
        """From the ``parameters`` of an export manifest."""
        return cls(**params)

    @functools.cached_property
    def sim_params(self) -> SimParams:
        """The simulator's parameters of a config with the unit's lanes (its cycle functions
        read ``vector_lanes``): :meth:`cycles` is the simulator's count."""
        return AcceleratorConfig(name=f"{self.name}-model",
                                 vector_lanes=self.lanes).sim_params()

    # ---- codec and golden (subclasses) ----------------------------------------------------
    def const_words(self, seg: Segment) -> dict[str, list[int]]:
        """The constants beats of ``seg`` per stream (``c``, and ``p`` for LayerNorm)."""
        raise NotImplementedError

    def in_words(self, seg: Segment) -> list[int]:
        """The ``i`` payloads of ``seg``."""
        raise NotImplementedError

    def out_beats(self, seg: Segment) -> int:
        """Output beats (= input beats) of ``seg``: ``ceil(n / lanes)`` per row (a vector
        of the element-wise units is one row)."""
        x = seg.data[0]
        return -(-x.shape[-1] // self.lanes) * (x.shape[0] if x.ndim == 2 else 1)

    def in_beats(self, seg: Segment) -> int:
        """Input ``i`` beats of ``seg``: :meth:`out_beats` unless the unit reduces (pool)."""
        return self.out_beats(seg)

    def decode_inputs(self, seg: Segment, words: list[int]) -> tuple:
        """``seg.data`` rebuilt from the ``i`` payloads the unit accepted."""
        raise NotImplementedError

    def expected(self, seg: Segment, data: tuple) -> np.ndarray:
        """Golden's result on ``data`` with ``seg.consts``."""
        raise NotImplementedError

    def decode(self, seg: Segment, words: list[int]) -> np.ndarray:
        """The result from ``o`` payloads (shape of :meth:`expected`)."""
        raise NotImplementedError

    def cycles(self, seg: Segment) -> int:
        """The simulator's cycles of ``seg`` (``sim.units.<unit>``, on :attr:`sim_params`):
        first ``i`` handshake to last ``o`` handshake, both included, at full rate."""
        raise NotImplementedError

    def latency(self) -> int:
        """The longest a beat stays in the unit (a row unit: the longest row's latency)."""
        raise NotImplementedError

    def cover(self, seg: Segment, data: tuple, result: np.ndarray) -> list[dict]:
        """One coverage sample per row (element-wise units: per segment): point -> bin."""
        raise NotImplementedError

    # ---- shared -----------------------------------------------------------------------------
    def items(self, seg: Segment) -> list[tuple[str, int]]:
        """Every beat of ``seg``, ``(stream, payload)``, in the order to drive them."""
        out = [(s, w) for s, words in self.const_words(seg).items() for w in words]
        return out + [("i", w) for w in self.in_words(seg)]

    def quiet_cycles(self) -> int:
        """Cycles to watch the output for a stray beat after the expected ones."""
        return self.latency() + QUIET_MARGIN


@dataclasses.dataclass
class Invocation:
    """One segment as the unit accepted it, and what came out."""

    seg: Segment
    const_left: dict[str, list[int]]
    in_words: list[int] = dataclasses.field(default_factory=list)
    in_cycles: list[int] = dataclasses.field(default_factory=list)
    data: tuple | None = None
    out_words: list[int] = dataclasses.field(default_factory=list)
    out_cycles: list[int] = dataclasses.field(default_factory=list)

    @property
    def cycles(self) -> int:
        """First ``i`` handshake to last ``o`` handshake, both included."""
        return self.out_cycles[-1] - self.in_cycles[0] + 1


class VectorMonitor:
    """Rebuilds the segments from the input beats a unit accepted (driver-independent).

    ``segments`` are those the test drives, in order: the monitor checks that every
    constants beat the unit took is the next segment's, and rebuilds the segment's data
    from the ``i`` beats it took (:meth:`VectorModel.decode_inputs`). Call
    :meth:`on_beat` for every accepted input beat, in cycle order.
    """

    def __init__(self, model: VectorModel, segments, scoreboard: VectorScoreboard):
        self.model = model
        self.segments = list(segments)
        self.scoreboard = scoreboard
        self._next = 0
        self._cur: Invocation | None = None

    def on_beat(self, stream: str, word: int, cycle: int) -> None:
        if stream == "c":
            if self._cur is not None and self._cur.data is None:
                raise AssertionError(f"a constants beat in cycle {cycle} before segment "
                                     f"{self._next - 1} had all its data beats")
            if self._next >= len(self.segments):
                raise AssertionError(f"constants beat in cycle {cycle}: no segment left")
            seg = self.segments[self._next]
            self._next += 1
            self._cur = Invocation(seg, {s: list(w) for s, w in
                                         self.model.const_words(seg).items()})
            self.scoreboard.expect(self._cur)
        if self._cur is None:
            raise AssertionError(f"{stream} beat in cycle {cycle} before any constants beat")
        inv = self._cur
        if stream != "i":
            left = inv.const_left.get(stream)
            if not left or left[0] != word:
                raise AssertionError(f"segment {self._next - 1} ({inv.seg.kind}): unexpected "
                                     f"{stream} beat in cycle {cycle}")
            left.pop(0)
            return
        if any(inv.const_left.values()):
            raise AssertionError(f"segment {self._next - 1}: data beat in cycle {cycle} before "
                                 "all its constants beats")
        inv.in_words.append(word)
        inv.in_cycles.append(cycle)
        if len(inv.in_words) == self.model.in_beats(inv.seg):
            inv.data = self.model.decode_inputs(inv.seg, inv.in_words)
            for got, want in zip(inv.data, inv.seg.data, strict=True):
                np.testing.assert_array_equal(got, want, err_msg="the monitor's rebuilt input")
            self.scoreboard.compare_ready()
        elif len(inv.in_words) > self.model.in_beats(inv.seg):
            raise AssertionError(f"segment {self._next - 1}: more data beats than its rows")


class VectorScoreboard:
    """Matches output handshakes to the segments in order and compares each with golden.

    ``on_check(inv, result)`` is called for every segment compared (e.g. to sample
    coverage). :attr:`done` lists the compared :class:`Invocation` objects, with their
    handshake cycles. A mismatch raises AssertionError, or with ``strict=False`` (the
    long benchmark runs) is counted in :attr:`mismatches` (rows, or elements of the
    element-wise units, that differ) and the run goes on.
    """

    def __init__(self, model: VectorModel, on_check: Callable | None = None,
                 strict: bool = True):
        self.model = model
        self.on_check = on_check
        self.strict = strict
        self.mismatches = 0
        self.pending: list[Invocation] = []
        self.done: list[Invocation] = []

    def expect(self, inv: Invocation) -> None:
        self.pending.append(inv)

    def on_out(self, word: int, cycle: int) -> None:
        waiting = [inv for inv in self.pending
                   if len(inv.out_words) < self.model.out_beats(inv.seg)]
        if not waiting:
            raise AssertionError(f"output beat in cycle {cycle}: no segment expects it")
        inv = waiting[0]
        inv.out_words.append(word)
        inv.out_cycles.append(cycle)
        if len(inv.out_words) < self.model.out_beats(inv.seg):
            return
        if inv.data is None and not self.model.EARLY_LAST_OUTPUT:
            raise AssertionError(f"segment {inv.seg.kind}: its last output beat (cycle {cycle}) "
                                 "came before its last input beat")
        self.compare_ready()

    def compare_ready(self) -> None:
        """Compare every leading pending segment with all its input and output beats."""
        while self.pending and self.pending[0].data is not None and (
                len(self.pending[0].out_words) == self.model.out_beats(self.pending[0].seg)):
            self._compare(self.pending.pop(0))

    def _compare(self, inv: Invocation) -> None:
        got = self.model.decode(inv.seg, inv.out_words)
        want = self.model.expected(inv.seg, inv.data)
        bad = np.argwhere(got != want)
        if bad.size and not self.strict:
            self.mismatches += len({int(idx[0]) for idx in bad}) if got.ndim == 2 else len(bad)
        elif bad.size:
            first = ", ".join(f"{tuple(int(i) for i in idx)}: {int(got[tuple(idx)])} != "
                              f"{int(want[tuple(idx)])}" for idx in bad[:5])
            raise AssertionError(f"{self.model.name} segment {len(self.done)} ({inv.seg.kind}, "
                                 f"shape {inv.seg.data[0].shape}): {len(bad)} of {want.size} "
                                 f"values differ from golden; first {first}")
        self.done.append(inv)
        if self.on_check is not None:
            self.on_check(inv, got)

    @property
    def rows(self) -> int:
        """Rows (element-wise units: segments) compared so far."""
        return sum(inv.seg.rows for inv in self.done)


class Coverage:
    """Hit counts of a model's coverage bins (simulator-independent; the cocotb testbenches
    also feed cocotb-coverage). :meth:`sample` takes :meth:`VectorModel.cover`'s dicts."""

    def __init__(self, model: VectorModel):
        self.model = model
        self.hits = {point: dict.fromkeys(bins, 0) for point, bins in model.COVER.items()}

    def sample(self, samples: list[dict]) -> None:
        for s in samples:
            for point, value in s.items():
                if value not in self.hits[point]:
                    raise AssertionError(f"{self.model.name} coverage {point}: {value!r} is "
                                         "in no bin")
                self.hits[point][value] += 1

    def empty(self) -> list[str]:
        """``point=bin`` of every bin not hit."""
        return [f"{p}={b}" for p, bins in self.hits.items() for b, n in bins.items() if not n]

    def report(self) -> str:
        return "; ".join(f"{p}: " + ", ".join(f"{b} {n}" for b, n in bins.items())
                         for p, bins in self.hits.items())
