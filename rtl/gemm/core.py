"""What the GEMM unit's two compute cores share: ports, the stall, the array, operand
availability, the epilogue.

A core issues the calls the unit has accepted, in order, slot after slot: it reads the
operand buffers in its dataflow's order as soon as the operands have arrived (the
``slots`` and ``load`` ports say how far every stream has loaded), feeds the systolic
array and hands one output row segment per beat to the unit's output stage (its ``o``
stream). When a call has issued its last row the core frees its slot (``free``); when
its last results have read their parameters, its parameter half (``drained``). The
dataflow-specific part, the issue schedule and the path from the array to the epilogue,
is :meth:`GemmCore.schedule`, implemented by :class:`~.ws_core.WsCore` and
:class:`~.os_core.OsCore`.

Stall: the whole core (issue state, buffer read ports and their output registers
(``operand_buffers``, enabled by the ports' ``en``), skew registers, PEs, tag and
delay lines, accumulator stage, epilogue register) is one pipeline under the clock enable
``run = ~o.valid | o.ready`` (``EnableInserter``): when the output beat is not taken,
everything holds, and no beat is lost or duplicated. ``o.ready`` is the output stage's
``i.ready``, a function of registers only (the unit's skid buffer cuts the path from the
unit's ``o.ready``). Events the core reports to the unit are qualified by ``run``.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import data

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.hw import gemm as hw

from ..common import CheckedComponent, DelayLine, check_config_type
from ..layouts import gemm_core_signature_members, gemm_layouts
from ..systolic import SystolicArray

__all__ = ["Epilogue", "GemmCore", "check_path", "next_slot", "pick", "slot_address",
           "slot_pointer"]


class Epilogue(NamedTuple):
    """What a core's schedule hands to the epilogue register, combinationally.

    ``valid``: an output beat is ready; ``acc``: its ``cols`` sums (bias included); ``nt``
    and ``slot``: its column tile and its call's slot (the parameter memory word holding
    its channels' ``mult`` and ``shift``); ``out32``: its call's output mode;
    ``call_last``: it is the last beat of its call; ``path``: cycles from the issue of its
    last operands to ``valid``, as built; ``model``: the same from the timing model
    (``edgetron.hw.gemm``).
    """

    valid: object
    acc: object
    nt: object
    slot: object
    out32: object
    call_last: object
    path: int
    model: int


def check_path(owner: str, what: str, built: int, model: int) -> None:
    """Elaboration check: a pipeline path is exactly as deep as the timing model says."""
    if built != model:
        raise AssertionError(
            f"{owner}: {what} is {built} cycles deep as built, but the timing model "
            f"(edgetron.hw.gemm) says {model}")


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
    ``drained``, ``o``.

    Latency
    -------
    From the issue of a beat's last operands to its ``o.valid``: the A/W buffer read
    (``GEMM_BUFFER_READ_CYCLES``), the array, and the epilogue register
    (``GEMM_EPILOGUE_CYCLES``); ``os`` adds the drain (see the subclasses). Each core
    asserts at elaboration that the registers it builds add up to the timing model.

    Backpressure
    ------------
    ``o.ready`` low stalls the whole core (see the module docstring).
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

    def channels_ready(self, slot, ch_base):
        """The channels a row of the column tile starting at channel ``ch_base`` waits for
        are in (:func:`edgetron.hw.gemm.gemm_channels_first`: that tile's ``cols`` channels,
        or all of the call's when ``cols > rows``)."""
        if hw.gemm_channels_first(self._config.sim_params()):
            return self.slot(slot).ch_done
        return self.available("ch", slot, ch_base + (self._config.cols - 1))

    def slot(self, slot):
        """The state of slot ``slot`` (a slot pointer)."""
        return pick(self.slots, slot, self._limits.slots)

    def a_address(self, slot, offset):
        return slot_address(slot, self._limits.a_words, self._limits.slots, offset)

    def w_address(self, slot, offset):
        return slot_address(slot, self._limits.w_words, self._limits.slots, offset)

    def schedule(self, m: Module, pipe: Module, array: SystolicArray, run) -> Epilogue:
        """Build the issue schedule in ``pipe`` (stalled by ``run``; memories that are not
        ports of the core go in ``m`` with ``run`` as enable; the ``free`` event is driven
        here, qualified by ``run``) and return the epilogue input."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        pipe = Module()
        run = Signal()
        m.d.comb += [
            run.eq(~self.o.valid | self.o.ready),
            self.a_rd.en.eq(run),
            self.w_rd.en.eq(run),
        ]
        pipe.submodules.array = array = SystolicArray(self._config)
        epi = self.schedule(m, pipe, array, run)

        # The epilogue register: the sums of one output beat with their channels' (mult,
        # shift), read asynchronously from the parameter memory, and the call's out32.
        lay = self._layouts.epilogue
        beat = Signal(data.StructLayout({"valid": 1, "payload": lay}), name="epilogue_in")
        m.d.comb += self.p_addr.eq(slot_address(epi.slot, self._limits.param_words,
                                                self._limits.slots, epi.nt))
        pipe.d.comb += [beat.valid.eq(epi.valid), beat.payload.acc.eq(epi.acc),
                        beat.payload.out32.eq(epi.out32)]
        for c in range(self._config.cols):
            pipe.d.comb += [beat.payload.mult[c].eq(self.p_data[c].mult),
                            beat.payload.shift[c].eq(self.p_data[c].shift)]
        reg = DelayLine(pipe, beat, hw.GEMM_EPILOGUE_CYCLES, "epilogue")
        m.d.comb += [
            self.o.valid.eq(reg.output.valid), self.o.payload.eq(reg.output.payload),
            # The last beat of a call reads its parameters here, as it enters the register.
            self.drained.valid.eq(run & epi.valid & epi.call_last),
            self.drained.slot.eq(epi.slot),
        ]
        check_path(type(self).__name__, "the issue-to-output path", epi.path + reg.depth,
                   epi.model + hw.GEMM_EPILOGUE_CYCLES)
        m.submodules.pipe = EnableInserter(run)(pipe)
        return m
