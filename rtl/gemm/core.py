"""What the GEMM unit's two compute cores share: ports, the output credits, the array,
operand availability, the epilogue.

A core issues the calls the unit has accepted, in order, slot after slot: it reads the
operand buffers in its dataflow's order as soon as the operands have arrived (the
``slots`` and ``load`` ports say how far every stream has loaded), feeds the systolic
array and hands one output row segment per beat to the unit's output stage (its ``o``
stream). When a call has issued its last row the core frees its slot (``free``); when
its last results have read their parameters, its parameter half (``drained``). The
dataflow-specific part, the issue schedule and the path from the array to the epilogue,
is :meth:`GemmCore.schedule`, implemented by :class:`~.ws_core.WsCore` and
:class:`~.os_core.OsCore`.

No stall: the core issues (a row, ``ws``; an operand pair, ``os``) only while it holds
:attr:`GemmCore.issue_beats` credits of the unit's output FIFO
(``edgetron.hw.gemm.gemm_out_fifo_beats`` deep); an issue takes one credit for every
output beat it will yield (a row of a last fold, one; a tile's last pair, one per row of
the tile), and everything after the issue point (buffer reads and their output
registers, skew registers, PEs, tag and delay lines, accumulator stage, epilogue
register) runs free: no clock enable reaches the datapath.
A credit comes back when a beat leaves the FIFO (``release``). At full rate the credits
never run out, so output backpressure only holds back the issue.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.hw import gemm as hw

from ..arith import at_least
from ..common import CheckedComponent, DelayLine, check_config_type
from ..layouts import gemm_core_signature_members, gemm_layouts
from ..systolic import SystolicArray

__all__ = ["Epilogue", "GemmCore", "Step", "check_path", "first_of", "next_slot", "pick",
           "slot_address", "slot_pointer", "stepped"]


class Epilogue(NamedTuple):
    """What a core's schedule hands to the epilogue register, combinationally.

    ``valid``: an output beat is ready; ``acc``: its ``cols`` sums (bias included);
    ``params``: its channels' parameter word (``bias``, ``mult``, ``shift``, read by the
    schedule from the parameter memory, :meth:`GemmCore.read_params`); ``slot``: its
    call's slot; ``out32``: its call's output mode;
    ``call_last``: it is the last beat of its call; ``path``: cycles from the issue of its
    last operands to ``valid``, as built; ``model``: the same from the timing model
    (``edgetron.hw.gemm``); ``take``: this cycle's issue takes output FIFO credits,
    ``reserve`` of them (the beats it will yield; a value that does not wait for the
    issue decision, so that the credit update does not chain it).
    """

    valid: object
    acc: object
    params: object
    slot: object
    out32: object
    call_last: object
    path: int
    model: int
    take: object
    reserve: object


def check_path(owner: str, what: str, built: int, model: int) -> None:
    """Elaboration check: a pipeline path is exactly as deep as the timing model says."""
    if built != model:
        raise AssertionError(
            f"{owner}: {what} is {built} cycles deep as built, but the timing model "
            f"(edgetron.hw.gemm) says {model}")


class Step(NamedTuple):
    """A choice of :meth:`GemmCore.available_ahead`: the index plus the constant ``k``."""

    k: int


def stepped(index, choices):
    """``choices`` with each :class:`Step` replaced by ``index + k`` (for :func:`first_of`)."""
    return [(c, (index if v.k == 0 else index + v.k) if isinstance(v, Step) else v)
            for c, v in choices]


def first_of(choices):
    """The value of the first ``(condition, value)`` pair of ``choices`` whose condition
    holds; the last pair's condition is ``None`` (otherwise)."""
    *cases, (none, out) = choices
    assert none is None, "the last choice is the default: (None, value)"
    for cond, value in reversed(cases):
        out = Mux(cond, value, out)
    return out


def slot_pointer(slots: int, name: str):
    """A register that walks the slots in order (``next`` it with :func:`next_slot`); the
    constant 0 when there is one slot."""
    return Signal(1, name=name) if slots > 1 else Const(0, 1)


def next_slot(m: Module, pointer, slots: int) -> None:
    """Move ``pointer`` (of :func:`slot_pointer`) on to the next slot."""
    if slots > 1:
        m.d.sync += pointer.eq(~pointer)


def pick(vector, index, slots: int):
    """Element ``index`` (a slot pointer) of a per-slot ``vector`` (an ``ArrayLayout`` view
    or a bit vector), as a multiplexer (a dynamic index would be a shifter in Verilog)."""
    if slots == 1:
        return vector[0]
    first, second = vector[0], vector[1]
    if isinstance(first, data.View):
        return first.shape()(Mux(index, second.as_value(), first.as_value()))
    return Mux(index, second, first)


def slot_address(slot, words: int, slots: int, offset):
    """Address of word ``offset`` of slot ``slot`` in a memory of ``slots * words`` words."""
    return offset if slots == 1 else Mux(slot, words + offset, offset)


class GemmCore(CheckedComponent):
    """Base of the compute cores; ``config.dataflow`` must be :attr:`DATAFLOW`.

    Parameters
    ----------
    config : AcceleratorConfig
        The unit's configuration.
    limits : GemmLimits
        Its buffer words, slots and shape limits (:func:`edgetron.rtl.gemm.gemm_limits`).

    Members
    -------
    See :func:`edgetron.rtl.layouts.gemm_core_signature_members` (widths there):
    ``slots``, ``load``, ``a_rd``, ``w_rd``, ``p_addr``/``p_data``, ``free``,
    ``drained``, ``o``, ``release``.

    Latency
    -------
    From the issue of a beat's last operands to its ``o.valid``: the A/W buffer read
    (``GEMM_BUFFER_READ_CYCLES``), the array, and the epilogue register
    (``GEMM_EPILOGUE_CYCLES``); ``os`` adds the drain (see the subclasses). Each core
    asserts at elaboration that the registers it builds add up to the timing model.

    Backpressure
    ------------
    None on ``o``: the issue waits for credits of the unit's output FIFO, which
    ``release`` returns (see the module docstring).
    """

    #: The dataflow the core implements.
    DATAFLOW = ""

    @classmethod
    def check_parameters(cls, config: AcceleratorConfig, limits) -> None:
        check_config_type(config)
        if config.dataflow != cls.DATAFLOW:
            raise ConfigError(f"dataflow: {cls.__name__} implements {cls.DATAFLOW!r}, "
                              f"got {config.dataflow!r}")

    def __init__(self, config: AcceleratorConfig, limits):
        self._config = config
        self._limits = limits
        self._layouts = gemm_layouts(config, limits)
        super().__init__(gemm_core_signature_members(config, limits))

    # ---- operand availability --------------------------------------------------------------
    def available(self, stream: str, slot, index):
        """Beat ``index`` of ``stream`` (``a``, ``w``, ``ch``) of the call in ``slot`` is in
        its buffer: every beat is, or the stream is loading that slot and has taken more
        than ``index`` beats (a beat taken in one cycle can be read from the next)."""
        load = self.load
        done = self.slot(slot)[f"{stream}_done"]
        return done | ((load[f"{stream}_slot"] == slot) & (load[f"{stream}_cnt"] > index))

    def available_ahead(self, m: Module, stream: str, slot, index, advance, choices,
                        name: str):
        """:meth:`available` with its comparison ``cnt > index`` read from a register:
        no carry chain between the registers and the issue decision.

        The register is computed in the cycle before from this cycle's events: the
        stream takes a beat (``load.<stream>_take``; the count goes back to 0 with
        ``<stream>_last``) and, with ``advance``, ``index`` (a register) becomes
        ``first_of(stepped(index, choices))`` (it must change in no other way). Each value
        of ``choices`` is a constant or a :class:`Step` from ``index``, each condition a
        function of registers: the count is compared with the constants, and with the
        steps through one subtraction ``cnt - index`` and constant checks of it, while the
        conditions settle; the events select last."""
        load = self.load
        cnt = load[f"{stream}_cnt"]
        take, wrap = load[f"{stream}_take"], load[f"{stream}_last"]
        greater = Signal(name=name)          # cnt > index (both start from 0, or index > 0)
        diff = cnt - index                   # signed, one bit wider than both

        def ge(value, extra: int):
            """cnt >= value + extra (a constant, or index + value.k)."""
            if isinstance(value, Step):
                return ~diff[-1] & at_least(diff[:-1], value.k + extra)
            bound = value + extra
            # (cnt >= 0 is a constant; Verilator's lint rejects the comparison.)
            return Const(1, 1) if bound <= 0 else cnt >= bound

        after_take = first_of([(c, ge(v, 0)) for c, v in choices])   # cnt + 1 > new index
        kept = first_of([(c, ge(v, 1)) for c, v in choices])         # cnt > new index
        m.d.sync += greater.eq(
            Mux(take, ~wrap & Mux(advance, after_take, ge(Step(0), 0)),
                Mux(advance, kept, greater)))
        done = self.slot(slot)[f"{stream}_done"]
        return done | ((load[f"{stream}_slot"] == slot) & greater)

    def channels_ready(self, slot, ch_top, ahead=None):
        """The channels a row of the column tile whose last channel is ``ch_top`` (a
        register of the core, ``nt * C + C - 1``) waits for are in
        (:func:`edgetron.hw.gemm.gemm_channels_first`: that tile's ``cols`` channels, or
        all of the call's when ``cols > rows``). With ``ahead = (m, advance, choices)``
        the comparison is a register (:meth:`available_ahead`)."""
        if hw.gemm_channels_first(self._config.sim_params()):
            return self.slot(slot).ch_done
        if ahead is None:
            return self.available("ch", slot, ch_top)
        m, advance, choices = ahead
        return self.available_ahead(m, "ch", slot, ch_top, advance, choices, "ch_in")

    def slot(self, slot):
        """The state of slot ``slot`` (a slot pointer)."""
        return pick(self.slots, slot, self._limits.slots)

    def read_params(self, m: Module, slot, nt, *, registered: bool = False):
        """Address the parameter memory (asynchronous read) at column tile ``nt`` of the
        call in ``slot``; returns its word (``cols`` channels of ``bias``, ``mult``,
        ``shift``). With ``registered``, ``slot`` and ``nt`` are those of the cycle before
        and the address is a register: no logic between it and the memory's read port,
        whose word the caller registers in turn."""
        address = slot_address(slot, self._limits.param_words, self._limits.slots, nt)
        if registered:
            p_addr = Signal.like(self.p_addr, name="p_addr_q")
            m.d.sync += p_addr.eq(address)
            address = p_addr
        m.d.comb += self.p_addr.eq(address)
        return self.p_data

    def a_address(self, slot, offset):
        return slot_address(slot, self._limits.a_words, self._limits.slots, offset)

    def w_address(self, slot, offset):
        return slot_address(slot, self._limits.w_words, self._limits.slots, offset)

    @property
    def issue_beats(self) -> int:
        """Credits one issue may take: the most output beats an issued row (``ws``: one)
        or a tile's last pair (``os``: ``rows``) yields."""
        return 1

    def schedule(self, m: Module, array: SystolicArray, room) -> Epilogue:
        """Build the issue schedule in ``m``, issuing only while ``room`` (at least
        :attr:`issue_beats` credits are left), and return the epilogue input with the
        credits the issue of this cycle takes (``take``, ``reserve``)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.d.comb += [self.a_rd.en.eq(1), self.w_rd.en.eq(1)]
        m.submodules.array = array = SystolicArray(cfg)
        depth = hw.gemm_out_fifo_beats(cfg.rows, cfg.cols, cfg.dataflow)
        credits = Signal(range(depth + 1), init=depth)
        # room = credits >= issue_beats, a register: no comparison before the issue.
        room = Signal(init=depth >= self.issue_beats)
        epi = self.schedule(m, array, room)
        # Every outcome of this cycle's issue (take) and output beat (release) is summed and
        # compared from registers; the two events only select one.
        rel, r, b = self.release, epi.reserve, self.issue_beats

        def at_least(n):
            """credits >= n (constant true for n <= 0: no comparison for Verilator's lint)."""
            return Const(1, 1) if isinstance(n, int) and n <= 0 else credits >= n

        m.d.sync += [
            credits.eq(Mux(epi.take, Mux(rel, credits + 1 - r, credits - r),
                           Mux(rel, credits + 1, credits))),
            room.eq(Mux(epi.take, Mux(rel, at_least(r + b - 1), at_least(r + b)),
                        Mux(rel, at_least(b - 1), at_least(b)))),
        ]

        # The epilogue register: the sums of one output beat with their channels' (mult,
        # shift) and the call's out32.
        lay = self._layouts.epilogue
        beat = Signal(data.StructLayout({"valid": 1, "payload": lay}), name="epilogue_in")
        m.d.comb += [beat.valid.eq(epi.valid), beat.payload.acc.eq(epi.acc),
                     beat.payload.out32.eq(epi.out32)]
        for c in range(cfg.cols):
            m.d.comb += [beat.payload.mult[c].eq(epi.params[c].mult),
                         beat.payload.shift[c].eq(epi.params[c].shift)]
        reg = DelayLine(m, beat, hw.GEMM_EPILOGUE_CYCLES, "epilogue")
        m.d.comb += [
            self.o.valid.eq(reg.output.valid), self.o.payload.eq(reg.output.payload),
            # The last beat of a call reads its parameters here, as it enters the register.
            self.drained.valid.eq(epi.valid & epi.call_last),
            self.drained.slot.eq(epi.slot),
        ]
        check_path(type(self).__name__, "the issue-to-output path", epi.path + reg.depth,
                   epi.model + hw.GEMM_EPILOGUE_CYCLES)
        return m
