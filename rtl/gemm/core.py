"""What the GEMM unit's two compute cores share: ports, the stall, the array, the epilogue.

A core reads the operand buffers in its dataflow's order, feeds the systolic array and
hands one output row segment per beat to the unit's output stage (its ``o`` stream). The
dataflow-specific part, the issue schedule and the path from the array to the epilogue,
is :meth:`GemmCore.schedule`, implemented by :class:`~.ws_core.WsCore` and
:class:`~.os_core.OsCore`.

Stall: the whole core (issue counters, buffer read ports, skew registers, PEs, tag and
delay lines, accumulator stage, epilogue register) is one pipeline under the clock enable
``run = ~o.valid | o.ready`` (``EnableInserter``): when the output beat is not taken,
everything holds, and no beat is lost or duplicated.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import EnableInserter, Module, Signal
from amaranth.lib import data

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.hw import gemm as hw

from ..common import CheckedComponent, DelayLine, check_config_type
from ..layouts import gemm_core_signature_members, gemm_layouts
from ..systolic import SystolicArray

__all__ = ["Epilogue", "GemmCore", "check_path"]


class Epilogue(NamedTuple):
    """What a core's schedule hands to the epilogue register, combinationally.

    ``valid``: an output beat is ready; ``acc``: its ``cols`` sums (bias included);
    ``nt``: its column tile (the parameter memory word holding its channels' ``mult`` and
    ``shift``); ``path``: cycles from the issue of its last operands to ``valid``, as
    built; ``model``: the same from the timing model (``edgetron.hw.gemm``).
    """

    valid: object
    acc: object
    nt: object
    path: int
    model: int


def check_path(owner: str, what: str, built: int, model: int) -> None:
    """Elaboration check: a pipeline path is exactly as deep as the timing model says."""
    if built != model:
        raise AssertionError(
            f"{owner}: {what} is {built} cycles deep as built, but the timing model "
            f"(edgetron.hw.gemm) says {model}")


class GemmCore(CheckedComponent):
    """Base of the compute cores; ``config.dataflow`` must be :attr:`DATAFLOW`.

    Parameters
    ----------
    config : AcceleratorConfig
        The unit's configuration.
    limits : GemmLimits
        Its buffer words and shape limits (:func:`edgetron.rtl.gemm.gemm_limits`).

    Members
    -------
    See :func:`edgetron.rtl.layouts.gemm_core_signature_members` (widths there):
    ``start``, ``issue``, ``shape``, ``a_rd``, ``w_rd``, ``p_addr``/``p_data``, ``o``.

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

    def schedule(self, m: Module, pipe: Module, array: SystolicArray, run) -> Epilogue:
        """Build the issue schedule in ``pipe`` (stalled by ``run``; memories that are not
        ports of the core go in ``m`` with ``run`` as enable) and return the epilogue input."""
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
        # shift), read asynchronously from the parameter memory.
        beat = Signal(data.StructLayout({"valid": 1, "payload": self._layouts.epilogue}),
                      name="epilogue_in")
        m.d.comb += self.p_addr.eq(epi.nt)
        pipe.d.comb += [beat.valid.eq(epi.valid), beat.payload.acc.eq(epi.acc)]
        for c in range(self._config.cols):
            pipe.d.comb += [beat.payload.mult[c].eq(self.p_data[c].mult),
                            beat.payload.shift[c].eq(self.p_data[c].shift)]
        reg = DelayLine(pipe, beat, hw.GEMM_EPILOGUE_CYCLES, "epilogue")
        m.d.comb += [self.o.valid.eq(reg.output.valid), self.o.payload.eq(reg.output.payload)]
        check_path(type(self).__name__, "the issue-to-output path", epi.path + reg.depth,
                   epi.model + hw.GEMM_EPILOGUE_CYCLES)
        m.submodules.pipe = EnableInserter(run)(pipe)
        return m
