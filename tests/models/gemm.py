"""Model of the GEMM unit for every testbench: codec, golden, timing, stimuli, monitor,
scoreboard.

Nothing here depends on a simulator. The Amaranth tests (tests/rtl/test_gemm.py) and the
cocotb testbench (tests/cocotb/tb_gemm.py) both

* build stimuli with :func:`random_call`, :func:`extreme_call`, :func:`tie_call` and the
  shape helpers (:meth:`GemmModel.largest_k`, :meth:`GemmModel.full_buffer_shape`);
* drive the beats :meth:`GemmModel.encode` gives;
* feed every *accepted input beat* they observe on the ports to a :class:`GemmMonitor`,
  which rebuilds each invocation from its command and operand beats (so invocations may
  overlap: beats are assigned to commands in order, per stream) and hands it to a
  :class:`GemmScoreboard`;
* feed every output handshake to the same scoreboard, which compares each invocation's
  result with golden, bit for bit, and keeps the cycles of its handshakes for the timing
  checks: a sequence at full input rate against :meth:`GemmModel.sequence`
  (``edgetron.sim.units.gemm.gemm_sequence``, the simulator's closed form), and every
  output handshake, with or without input gaps, against :meth:`GemmModel.replay` (the
  row-by-row schedule of tests/models/gemm_schedule.py, from the input handshakes the
  monitor saw).
"""

from __future__ import annotations

import collections
import dataclasses
import math

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.golden.gemm import accumulator_bound, gemm_int, gemm_requant
from edgetron.golden.intops import INT8_MAX, M_MAX, S_MAX, S_MIN, int_range
from edgetron.hw.gemm import GEMM_BUFFER_READ_CYCLES, GEMM_OUT_CYCLES, gemm_stream_beats
from edgetron.rtl.gemm import (
    GemmCall,
    GemmCommand,
    GemmUnit,
    decode_gemm,
    decode_gemm_command,
    decode_gemm_operands,
    encode_gemm,
    gemm_limits,
    shape_fits,
)
from edgetron.rtl.layouts import gemm_layouts
from edgetron.sim.units.gemm import (
    SEQ_COLUMNS,
    GemmPhases,
    gemm_cycles,
    gemm_phases,
    gemm_sequence,
)

from .gemm_schedule import CallTimes, replay

__all__ = [
    "INPUTS",
    "QUIET_MARGIN",
    "GemmModel",
    "GemmMonitor",
    "GemmScoreboard",
    "Invocation",
    "extreme_call",
    "random_call",
    "rounding_ties",
    "tie_call",
]

#: Input streams of the unit, in the order the codec returns them.
INPUTS = ("cmd", "a", "w", "ch")
#: Operand streams (the load phase ends with the last beat of these).
OPERANDS = ("a", "w", "ch")
#: Cycles added to the longest time a beat can stay in the unit when watching for a stray
#: output beat after the expected ones.
QUIET_MARGIN = 16


class GemmModel:
    """The GEMM unit for one :class:`~edgetron.config.AcceleratorConfig`: codec (rtl.gemm),
    golden (golden.gemm) and cycles (sim.units.gemm)."""

    def __init__(self, config: AcceleratorConfig):
        self.cfg = config
        self.limits = gemm_limits(config)
        self.layouts = gemm_layouts(config, self.limits)

    @property
    def rows(self) -> int:
        return self.cfg.rows

    @property
    def cols(self) -> int:
        return self.cfg.cols

    # ---- shapes ------------------------------------------------------------------------
    def max_shape(self) -> tuple[int, int, int]:
        """Largest M, K and N of one invocation (each with the other two at 1)."""
        return GemmUnit.max_shape(self.cfg)

    def fits(self, m: int, k: int, n: int) -> bool:
        """Whether one invocation accepts the shape (the unit raises ``err`` otherwise)."""
        return shape_fits(self.cfg, m, k, n)

    def beats(self, m: int, k: int, n: int) -> dict[str, int]:
        """Beats per stream of an accepted shape (``edgetron.hw.gemm.gemm_stream_beats``)."""
        a, w, ch, o = gemm_stream_beats(self.cfg.sim_params(), m, k, n)
        return {"cmd": 1, "a": int(a), "w": int(w), "ch": int(ch), "o": int(o)}

    def largest_k(self, m: int, n: int, step: int = 1) -> int:
        """Largest multiple of ``step`` that fits as K with ``m`` rows and ``n`` columns."""
        k = step
        while self.fits(m, k + step, n):
            k += step
        return k

    def full_buffer_shape(self) -> tuple[int, int, int]:
        """A shape that fills the A and W buffers exactly, with as many column tiles as
        possible (``N = C * nt``, ``nt`` from ``param_words`` down: the parameter memory
        full too when ``nt = param_words``), ``K = w_words / nt`` and the M that fills the
        A buffer (the accumulator buffer too when it has exactly that many rows). Raises
        ValueError when the buffer sizes admit no such shape."""
        lim, r, c = self.limits, self.rows, self.cols
        for nt in range(lim.param_words, 0, -1):
            n, k = c * nt, lim.w_words // nt
            if k < 1 or k * nt != lim.w_words:
                continue
            rows_per_k = -(-k // r) if self.cfg.dataflow == "ws" else k
            if lim.a_words % rows_per_k:
                continue
            m = lim.a_words // rows_per_k * (1 if self.cfg.dataflow == "ws" else r)
            if self.fits(m, k, n):
                return m, k, n
        raise ValueError(f"{self.cfg.name}: no shape fills the A and W buffers exactly")

    def full_buffers(self, m: int, k: int, n: int) -> list[str]:
        """Which buffers the shape fills exactly: ``a``, ``w``, ``acc``, ``param``."""
        lim = self.limits
        beats = self.beats(m, k, n)
        full = [name for name in ("a", "w") if beats[name] == getattr(lim, f"{name}_words")]
        if self.cfg.dataflow == "ws" and m == lim.acc_words:
            full.append("acc")
        if -(-n // self.cols) == lim.param_words:
            full.append("param")
        return full

    # ---- codec and golden --------------------------------------------------------------
    def command_word(self, m: int, k: int, n: int, out32: bool) -> int:
        """A raw ``cmd`` payload, also for shapes :meth:`encode` refuses (each dimension
        must fit its field: 0 .. the maximum of :meth:`max_shape`)."""
        return self.layouts.cmd.const({"m": m, "k": k, "n": n, "out32": int(out32)}
                                      ).as_value().value

    def encode(self, call: GemmCall) -> dict[str, list[int]]:
        """Payload words per input stream (``cmd``, ``a``, ``w``, ``ch``)."""
        return encode_gemm(self.cfg, call.a, call.w, call.bias, call.mult, call.shift,
                           call.out32)

    def decode(self, call, words) -> np.ndarray:
        """The (M, N) result from the output words of ``call`` (a GemmCall or GemmCommand)."""
        return decode_gemm(self.cfg, words, call.m, call.n, call.out32)

    def expected(self, call: GemmCall) -> np.ndarray:
        """golden.gemm.gemm_int (int32 mode) or gemm_requant (int8 mode)."""
        if call.out32:
            return gemm_int(call.a, call.w, call.bias)
        return gemm_requant(call.a, call.w, call.bias, call.mult, call.shift)

    # ---- timing ------------------------------------------------------------------------
    def cycles(self, call) -> int:
        """sim.units.gemm.gemm_cycles for the call's shape and output mode."""
        return int(gemm_cycles(self.cfg.sim_params(), call.m, call.k, call.n, int(call.out32)))

    def phases(self, call) -> GemmPhases:
        """sim.units.gemm.gemm_phases (cmd, beats per stream, compute, drain) of the call."""
        return gemm_phases(self.cfg.sim_params(), call.m, call.k, call.n, int(call.out32))

    def sequence(self, calls) -> np.ndarray:
        """sim.units.gemm.gemm_sequence of the calls, back to back at full input rate: per
        call the cycles of its command handshake, the first beat of a, w and ch, its first
        issue, the cycle after its last issue and its last output handshake."""
        shapes = np.array([[c.m, c.k, c.n, int(c.out32)] for c in calls], np.int64)
        return gemm_sequence(self.cfg.sim_params(), shapes)

    def replay(self, calls, invocations=None) -> list[CallTimes]:
        """The row-by-row schedule of the calls (tests/models/gemm_schedule.py): at full
        input rate, or from the input handshakes of the monitor's ``invocations``."""
        shapes = [(c.m, c.k, c.n) for c in calls]
        if invocations is None:
            return replay(self.cfg, shapes)
        seen = [{"cmd": inv.cmd_at, **inv.beat_at} for inv in invocations]
        return replay(self.cfg, shapes, seen)

    def check_timing(self, calls, runs, *, gaps: bool, backpressure: bool) -> None:
        """Assert the timing of a sequence of calls the unit ran (docs/rtl.md, "Overlap").

        ``runs`` are the scoreboard's invocations of ``calls``. Without backpressure every
        output handshake is the one the row-by-row schedule predicts from the input
        handshakes observed (:meth:`replay`); with it, none comes earlier. Without gaps or
        backpressure, every call's command handshake, first a/w/ch beat and first and last
        output handshake, counted from the first command handshake, are those of the
        simulator's closed form (:meth:`sequence`), so the whole sequence takes
        ``gemm_sequence_cycles``, and one call alone :meth:`cycles`.
        """
        seen = self.replay(calls, runs)
        for inv, want in zip(runs, seen, strict=True):
            if backpressure:
                assert all(t >= w for t, w in zip(inv.out_at, want.outputs, strict=True)), (
                    f"invocation {inv.index}: an output beat earlier than the schedule allows")
            else:
                assert inv.out_at == want.outputs, (
                    f"invocation {inv.index}: output handshakes {inv.out_at}, the schedule "
                    f"says {want.outputs}")
        if gaps or backpressure:
            return
        columns = ("cmd", "a_first", "w_first", "ch_first", "out_first", "out_last")
        index = [SEQ_COLUMNS.index(c) for c in columns]
        t0 = runs[0].cmd_at            # the model counts from the first command handshake
        for inv, row in zip(runs, self.sequence(calls), strict=True):
            got = tuple(t - t0 for t in (inv.cmd_at, inv.beat_at["a"][0], inv.beat_at["w"][0],
                                         inv.beat_at["ch"][0], inv.out_at[0], inv.end))
            want = tuple(int(row[i]) for i in index)
            assert got == want, (
                f"invocation {inv.index}: {dict(zip(columns, got, strict=True))}, "
                f"sim.units.gemm.gemm_sequence says {dict(zip(columns, want, strict=True))}")
        cycles = runs[-1].end - runs[0].cmd_at + 1
        want = int(self.sequence(calls)[-1, SEQ_COLUMNS.index("out_last")]) + 1
        assert cycles == want, f"the sequence took {cycles} cycles, the simulator says {want}"
        if len(calls) == 1:
            assert cycles == self.cycles(calls[0])

    def quiet_cycles(self) -> int:
        """Cycles to watch ``o`` after the last expected beat: longer than a beat can stay
        in the unit (the longest drain, os: ``GEMM_BUFFER_READ_CYCLES + 2R + C + OUT``),
        plus :data:`QUIET_MARGIN`."""
        return (GEMM_BUFFER_READ_CYCLES + 2 * self.rows + self.cols + GEMM_OUT_CYCLES
                + QUIET_MARGIN)


# ---- stimuli -----------------------------------------------------------------------------
def _requant_params(model: GemmModel, rng, k: int, n: int, constant: bool):
    """Per-channel (mult, shift) that spread the int8 results over the whole range: the
    shift maps the typical |acc| (about max|a*w| * sqrt(K) / 3 for random operands, K / 3
    for constant ones) to about half the int8 range, +-2 bits per channel, so some
    channels saturate."""
    a_lo, _ = int_range(model.cfg.input_bits)
    w_lo, _ = int_range(model.cfg.weight_bits)
    typical = abs(a_lo * w_lo) * (k if constant else math.sqrt(k)) / 3
    mult = rng.integers(1 << 28, M_MAX + 1, n)
    base = int(math.log2(float(M_MAX) * typical / ((INT8_MAX + 1) // 2)))
    return mult, np.clip(base + rng.integers(-2, 3, n), S_MIN, S_MAX)


def random_call(model: GemmModel, rng, m: int, k: int, n: int, out32: bool) -> GemmCall:
    """Random operands over their whole ranges, bias within +-2**16 and per-channel
    requantization constants that spread the int8 results (some saturate)."""
    a_lo, a_hi = int_range(model.cfg.input_bits)
    w_lo, w_hi = int_range(model.cfg.weight_bits)
    a = rng.integers(a_lo, a_hi + 1, (m, k))
    w = rng.integers(w_lo, w_hi + 1, (k, n))
    bias = rng.integers(-(1 << 16), 1 << 16, n)
    mult, shift = _requant_params(model, rng, k, n, constant=False)
    return GemmCall(a, w, bias, mult, shift, bool(out32))


def extreme_call(model: GemmModel, m: int, k: int, n: int, a_kind: str, w_kind: str,
                 out32: bool, *, bias_to_edge: bool = False, seed: int = 0) -> GemmCall:
    """Every operand at one end of its range (``"min"`` or ``"max"``), so every sum is the
    largest of its sign. ``bias_to_edge``: the biases (+-, alternating by channel, and 0,
    +-1) take the sums to the very edge of the ``acc_bits`` range golden accepts for this K."""
    a_lo, a_hi = int_range(model.cfg.input_bits)
    w_lo, w_hi = int_range(model.cfg.weight_bits)
    av = a_lo if a_kind == "min" else a_hi
    wv = w_lo if w_kind == "min" else w_hi
    a = np.full((m, k), av, np.int64)
    w = np.full((k, n), wv, np.int64)
    if bias_to_edge:
        acc_max = int_range(model.cfg.acc_bits)[1]
        edge = acc_max - accumulator_bound(k, 0, model.cfg.input_bits, model.cfg.weight_bits)
        sign = 1 if av * wv > 0 else -1
        pattern = [edge, -edge, 0, 1, -1]
        bias = np.array([sign * pattern[i % len(pattern)] for i in range(n)], np.int64)
    else:
        bias = np.zeros(n, np.int64)
    mult, shift = _requant_params(model, np.random.default_rng(seed), k, n, constant=True)
    return GemmCall(a, w, bias, mult, shift, bool(out32))


#: (mult, shift) pairs whose requantization ``acc * mult / 2**shift`` lands exactly on a
#: half for some small accumulators: ``acc / 2`` (odd acc), ``1.5 * acc`` (odd acc),
#: ``acc / 4`` (acc = 2 mod 4), ``5 * acc / 8`` (acc = 4 mod 8), ``0.75 * acc``
#: (acc = 2 mod 4, the multiplier's top bits set).
_TIE_PARAMS = ((1, 1), (3 << 20, 21), (1 << 29, 31), (5 << 27, 30), (3 << 29, 31))


def rounding_ties(acc, mult, shift) -> dict[str, int]:
    """How many requantizations of ``acc`` (M, N) with per-channel ``mult``, ``shift`` land
    exactly on a half (``ties``), how many of those have an even floor (``even``: rounding
    half up and half to even differ there) and how many are negative (``negative``:
    rounding half up and half away from zero differ there)."""
    p = np.asarray(acc, np.int64) * np.asarray(mult, np.int64)
    s = np.asarray(shift, np.int64)
    tie = (p & ((np.int64(1) << s) - 1)) == (np.int64(1) << (s - 1))
    even = tie & (((p >> s) & 1) == 0)
    return {"ties": int(tie.sum()), "even": int(even.sum()), "negative": int((tie & (p < 0)).sum())}


def tie_call(model: GemmModel, rng, m: int, k: int, n: int) -> GemmCall:
    """int8 results where many products land exactly on ``x.5`` before rounding (golden
    rounds half up; half to even, half down or truncation give other results).

    Small operands and biases keep the sums small enough that every channel's
    ``acc * mult / 2**shift`` stays inside int8; the (mult, shift) of each channel come
    from :data:`_TIE_PARAMS`. The result has ties of both floor parities, both signs.
    """
    a_lo, a_hi = (max(v, lim) if v < 0 else min(v, lim)
                  for v, lim in zip(int_range(model.cfg.input_bits), (-3, 3), strict=True))
    w_lo, w_hi = (max(v, lim) if v < 0 else min(v, lim)
                  for v, lim in zip(int_range(model.cfg.weight_bits), (-3, 3), strict=True))
    a = rng.integers(a_lo, a_hi + 1, (m, k))
    w = rng.integers(w_lo, w_hi + 1, (k, n))
    pick = [_TIE_PARAMS[i % len(_TIE_PARAMS)] for i in range(n)]
    mult = np.array([p[0] for p in pick], np.int64)
    shift = np.array([p[1] for p in pick], np.int64)
    # Each channel's sums stay within what its scale keeps inside int8.
    reach = np.abs(a).sum(axis=1).max() * max(abs(w_lo), w_hi)
    room = np.array([(INT8_MAX * 2 ** int(s)) // int(mu) for mu, s in pick]) - reach
    bias = np.array([int(rng.integers(-min(r, 40), min(r, 40) + 1)) if r > 0 else 0
                     for r in room], np.int64)
    return GemmCall(a, w, bias, mult, shift, False)


# ---- monitor and scoreboard ----------------------------------------------------------------
@dataclasses.dataclass
class Invocation:
    """One command as the input monitor saw it, and what the scoreboard made of it.

    Cycles are those of handshakes (the index of the rising clock edge they happen on).
    """

    index: int
    command: GemmCommand
    accepted: bool                       # the shape fits (else the unit raises err)
    cmd_at: int
    beats: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    beat_at: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    call: GemmCall | None = None         # rebuilt from the operand beats
    out_words: list[int] = dataclasses.field(default_factory=list)
    out_at: list[int] = dataclasses.field(default_factory=list)
    result: np.ndarray | None = None     # decoded output (set when complete)

    @property
    def load_end(self) -> int:
        """Cycle of the last operand handshake (the end of the load phase)."""
        return max(self.beat_at[name][-1] for name in OPERANDS)

    @property
    def end(self) -> int:
        """Cycle of the last output handshake."""
        return self.out_at[-1]

    @property
    def cycles(self) -> int:
        """Command handshake to last output handshake, both included."""
        return self.end - self.cmd_at + 1

    @property
    def busy(self) -> int:
        """Last operand handshake to last output handshake."""
        return self.end - self.load_end


class GemmScoreboard:
    """Compares the unit's outputs with golden, invocation by invocation, in order.

    :meth:`expect` takes the invocations the :class:`GemmMonitor` rebuilds; :meth:`output`
    every output handshake. A beat with no invocation waiting for it, or a result that
    differs from golden, raises AssertionError naming the invocation and the first
    mismatches.
    """

    def __init__(self, model: GemmModel):
        self.model = model
        self.invocations: list[Invocation] = []
        self._pending: collections.deque[Invocation] = collections.deque()
        self._waiting_outputs: collections.deque[tuple[int, int]] = collections.deque()

    def expect(self, inv: Invocation) -> None:
        self.invocations.append(inv)
        if inv.accepted:
            self._pending.append(inv)
            self._drain()

    def output(self, word: int, cycle: int) -> None:
        self._waiting_outputs.append((word, cycle))
        self._drain()

    def _drain(self) -> None:
        while self._pending and self._waiting_outputs:
            inv = self._pending[0]
            if inv.call is None:       # operands still arriving: decode once they are in
                return
            word, cycle = self._waiting_outputs.popleft()
            inv.out_words.append(word)
            inv.out_at.append(cycle)
            if len(inv.out_words) == self.model.beats(inv.call.m, inv.call.k, inv.call.n)["o"]:
                self._pending.popleft()
                self._check(inv)

    def operands_complete(self, inv: Invocation) -> None:
        """The monitor rebuilt ``inv``'s operands; outputs may now be matched to it."""
        self._drain()

    def _check(self, inv: Invocation) -> None:
        inv.result = self.model.decode(inv.call, inv.out_words)
        want = self.model.expected(inv.call)
        bad = np.argwhere(inv.result != want)
        if bad.size:
            first = ", ".join(f"{tuple(int(i) for i in idx)}: {int(inv.result[tuple(idx)])} != "
                              f"{int(want[tuple(idx)])}" for idx in bad[:5])
            raise AssertionError(
                f"invocation {inv.index} (M, K, N, out32) = {tuple(inv.command)}: {len(bad)} of "
                f"{want.size} values differ from golden; first {first}")

    def check_stray(self) -> None:
        """Raise if an output beat came that no invocation expected."""
        if self._waiting_outputs and not self._pending:
            cycle = self._waiting_outputs[0][1]
            raise AssertionError(f"stray output beat in cycle {cycle}: no invocation expects one")

    def finished(self) -> bool:
        """Every accepted invocation has all its output beats and matched golden."""
        return not self._pending

    def results(self) -> list[Invocation]:
        """The accepted invocations, in command order."""
        return [inv for inv in self.invocations if inv.accepted]


class GemmMonitor:
    """Rebuilds invocations from the input handshakes observed on the unit's ports.

    Call :meth:`accept` for every handshake on ``cmd``, ``a``, ``w`` and ``ch`` (the port's
    payload word and the cycle). Beats of each stream are queued and assigned to the
    commands in order, each command taking :meth:`GemmModel.beats` of them (none for a
    command whose shape does not fit: the unit rejects it); so the monitor needs no
    knowledge of when the unit loads, and invocations may overlap. A complete invocation
    is rebuilt with the codec's inverse and handed to the scoreboard.
    """

    def __init__(self, model: GemmModel, scoreboard: GemmScoreboard):
        self.model = model
        self.scoreboard = scoreboard
        self._queues = {name: collections.deque() for name in OPERANDS}
        self._open: collections.deque[Invocation] = collections.deque()
        self._count = 0

    def accept(self, stream: str, word: int, cycle: int) -> None:
        if stream == "cmd":
            cmd = decode_gemm_command(self.model.cfg, word)
            inv = Invocation(self._count, cmd, self.model.fits(cmd.m, cmd.k, cmd.n), cycle)
            self._count += 1
            self.scoreboard.expect(inv)
            if inv.accepted:
                inv.beats = {name: [] for name in OPERANDS}
                inv.beat_at = {name: [] for name in OPERANDS}
                self._open.append(inv)
        else:
            self._queues[stream].append((word, cycle))
        self._assign()

    def _assign(self) -> None:
        for name, queue in self._queues.items():
            for inv in self._open:
                want = self.model.beats(inv.command.m, inv.command.k, inv.command.n)[name]
                while queue and len(inv.beats[name]) < want:
                    word, cycle = queue.popleft()
                    inv.beats[name].append(word)
                    inv.beat_at[name].append(cycle)
        while self._open and all(
                len(self._open[0].beats[name]) == self.model.beats(*self._open[0].command[:3])[name]
                for name in OPERANDS):
            inv = self._open.popleft()
            inv.call = decode_gemm_operands(self.model.cfg, inv.command, inv.beats)
            self.scoreboard.operands_complete(inv)

    def check_idle(self) -> None:
        """Raise if operand beats were accepted that no command accounts for, or a command
        is still missing operands."""
        extra = {name: len(q) for name, q in self._queues.items() if q}
        if extra:
            raise AssertionError(f"operand beats accepted with no command for them: {extra}")
        if self._open:
            raise AssertionError(f"invocation {self._open[0].index} is missing operand beats")
