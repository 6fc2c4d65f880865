"""Processing element of the systolic array: one int8 x int8 multiply-accumulate per cycle.

The same PE serves both RTL dataflows; ``dataflow`` selects its ports and datapath at
elaboration. In both, the activation enters from the left and leaves to the right one
cycle later, and the weight enters from the top and leaves to the bottom one cycle later,
so operands move systolically from neighbour to neighbour (no broadcast).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed

from edgetron.hw.gemm import PE_MAC_CYCLES, PE_MAC_STAGES

from .common import (
    ACC_BITS_MAX,
    MAX_EDGE,
    OPERAND_BITS,
    CheckedComponent,
    check_dataflow,
    check_param,
)
from .layouts import pe_signature_members

__all__ = ["PE"]


class PE(CheckedComponent):
    """One processing element.

    Parameters
    ----------
    dataflow : {"ws", "os"}
        Weight-stationary or output-stationary (``"is"`` has no RTL).
    row : int
        Row of this PE in the array, ``0 <= row < rows`` (``ws``: the PE keeps the
        weights addressed to this row).
    rows : int
        Rows of the array, ``1 .. MAX_EDGE`` (256; sets the width of the weight row index).
    input_bits, weight_bits : int
        Activation and weight widths, 2..8 bits.
    acc_bits : int
        Accumulator width, ``input_bits + weight_bits`` .. 32 bits (the product fits).
        Every parameter is checked before the component is created; a bad one raises
        ConfigError naming it and its range.

    Members
    -------
    See :func:`edgetron.rtl.layouts.pe_signature_members` (widths there).

    a_in, a_out
        Activation (with its control bits) from the left neighbour; ``a_out`` is ``a_in``
        registered, to the right neighbour.
    w_in, w_out
        Weight from the top neighbour; ``w_out`` is ``w_in`` registered, to the bottom.
    p_in, p_out -- ``ws`` only
        Partial sum from the top neighbour; ``p_out = p_in + prod_q``, registered, to the
        bottom neighbour, where ``prod_q`` is the product of the activation and weight of
        two cycles before, registered twice (the partial sum of the row above arrives
        ``MAC_LATENCY - 1`` = 2 cycles after the activation, as it does in the array).
    shift, o_in, o_out -- ``os`` only
        ``shift`` moves the result chain of this column up by one PE this cycle; ``o_in``
        is the result register of the PE below, ``o_out`` this PE's, to the PE above.

    Weight-stationary datapath
    --------------------------
    Two weight registers (banks 0 and 1). A weight with ``valid`` set whose ``row``
    equals this PE's row is written into bank ``bank`` at the end of the cycle in
    which it is on ``w_in``. ``a_in.sel`` is one cycle ahead of ``a_in.data``: it names
    the bank of the activation on ``a_in`` in the *next* cycle. The PE copies
    that bank into the weight operand register ``w_cur`` (bypassing a write to it in the
    same cycle), and the multiplier takes ``a_in.data * w_cur``: its weight operand comes
    straight from a register, not through the bank select. One bank can therefore be
    reloaded while the other one computes. Every lane of the array carries the same
    ``sel``, so the ``sel`` registers of the PEs on one anti-diagonal hold equal values;
    synthesis may merge them into one register that drives those PEs (docs/fpga.md).

    Output-stationary datapath
    --------------------------
    A product register ``prod <= a * w`` and its second register ``prod_q <= prod``, with
    ``first`` and ``last`` registered twice beside them, and an accumulator register:
    ``acc <= (first ? 0 : acc) + prod_q`` each cycle. When ``last`` is set the finished
    sum is also written into the result register (and ``acc`` is reset by the next
    ``first``); otherwise, when ``shift`` is set, the result register loads ``o_in`` (a
    capture has priority over a shift). The result of the pair with ``a_in.last`` is
    captured :attr:`MAC_LATENCY` cycles after it is on the inputs.

    Latency
    -------
    :attr:`LATENCY` = 1 cycle from ``a_in``/``w_in`` to ``a_out``/``w_out`` and from
    ``p_in`` to ``p_out``; :attr:`MAC_LATENCY` = 3 cycles from an operand pair to its
    product in ``p_out`` (``ws``) or the accumulator (``os``), one per stage of
    ``edgetron.hw.gemm.PE_MAC_STAGES``: ``mul`` (``prod``), ``pipe`` (``prod_q``),
    ``acc`` (``p_out`` or ``acc``). A weight write takes effect for the product of the
    next cycle. The multiplier sits between registers on both sides (``ws``:
    ``a_in.data``'s register in the neighbour or the skew line, and ``w_cur``); FPGA
    flows put ``prod`` into the DSP block's output register (``rtl/fpga/dsp_regs.py``),
    and ``prod_q`` is a fabric register beside the adder, so the route out of the DSP
    block and the ``acc_bits``-wide add are separate cycles.

    Backpressure
    ------------
    None: the PE advances every cycle (the GEMM unit's array runs free, its core issues
    against output credits).

    Golden
    ------
    The MAC is the inner step of :func:`edgetron.golden.gemm.gemm_int`; accumulator
    overflow is excluded by the range checks of the driver (the adders are
    ``acc_bits`` wide).
    """

    #: Cycles from ``a_in``/``w_in`` to ``a_out``/``w_out`` and from ``p_in`` to ``p_out``:
    #: one register per hop (the systolic array adds them up on every path, see its
    #: ``elaborate``).
    LATENCY = 1
    #: Cycles from an operand pair on ``a_in``/``w_in`` to its product in ``p_out``
    #: (``ws``) or ``acc`` (``os``): ``edgetron.hw.gemm.PE_MAC_CYCLES``, the product
    #: register, its second register, then the accumulate; :meth:`elaborate` asserts it.
    MAC_LATENCY = PE_MAC_CYCLES

    @classmethod
    def check_parameters(cls, dataflow, *, row, rows, input_bits=8, weight_bits=8,
                         acc_bits=32) -> None:
        check_dataflow(dataflow)
        check_param("PE", "rows", rows, 1, MAX_EDGE)
        check_param("PE", "row", row, 0, rows - 1)
        check_param("PE", "input_bits", input_bits, *OPERAND_BITS)
        check_param("PE", "weight_bits", weight_bits, *OPERAND_BITS)
        check_param("PE", "acc_bits", acc_bits, input_bits + weight_bits, ACC_BITS_MAX)

    def __init__(self, dataflow: str, *, row: int, rows: int, input_bits: int = 8,
                 weight_bits: int = 8, acc_bits: int = 32):
        self._dataflow = dataflow
        self._row = row
        self._input_bits = input_bits
        self._weight_bits = weight_bits
        self._acc_bits = acc_bits
        super().__init__(pe_signature_members(dataflow, rows=rows, input_bits=input_bits,
                                              weight_bits=weight_bits, acc_bits=acc_bits))

    @property
    def dataflow(self) -> str:
        """``"ws"`` or ``"os"``."""
        return self._dataflow

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a_in), self.w_out.eq(self.w_in)]
        # Stage "mul": the product gets a register of its own (the multiplier's output
        # register, in the DSP block on FPGAs); stage "pipe" registers it again beside the
        # adder (in fabric), so the route out of the DSP block has a cycle of its own;
        # stage "acc" adds it. Every signal the accumulate needs from the operands' cycle
        # travels in step with the product.
        prod = Signal(signed(self._input_bits + self._weight_bits), name="prod")
        prod_q = Signal(signed(self._input_bits + self._weight_bits), name="prod_q")
        m.d.sync += prod_q.eq(prod)
        if self._dataflow == "ws":
            # The multiplier's weight operand is a register, loaded with the bank the next
            # activation uses (``a_in.sel``, one cycle ahead), or with the weight written
            # into that bank in this cycle (the write bypassed).
            bank = Array(Signal(signed(self._weight_bits), name=f"w{b}") for b in range(2))
            write = Signal()
            m.d.comb += write.eq(self.w_in.valid & (self.w_in.row == self._row))
            with m.If(write):
                m.d.sync += bank[self.w_in.bank].eq(self.w_in.data)
            w_cur = Signal(signed(self._weight_bits), name="w_cur")
            bypass = write & (self.w_in.bank == self.a_in.sel)
            m.d.sync += w_cur.eq(Mux(bypass, self.w_in.data, bank[self.a_in.sel]))
            m.d.sync += prod.eq(self.a_in.data * w_cur)
            m.d.sync += self.p_out.eq(self.p_in + prod_q)
            stages = {"mul": prod, "pipe": prod_q, "acc": self.p_out}
        else:
            first_d, last_d = Signal(name="first_d"), Signal(name="last_d")
            first_q, last_q = Signal(name="first_q"), Signal(name="last_q")
            acc = Signal(signed(self._acc_bits))
            result = Signal(signed(self._acc_bits))
            m.d.sync += [prod.eq(self.a_in.data * self.w_in.data),
                         first_d.eq(self.a_in.first), last_d.eq(self.a_in.last),
                         first_q.eq(first_d), last_q.eq(last_d)]
            total = Mux(first_q, 0, acc) + prod_q
            m.d.sync += acc.eq(total)
            with m.If(last_q):
                m.d.sync += result.eq(total)
            with m.Elif(self.shift):
                m.d.sync += result.eq(self.o_in)
            m.d.comb += self.o_out.eq(result)
            stages = {"mul": prod, "pipe": prod_q, "acc": acc}
        # One register per stage of the timing model, in its order (MAC_LATENCY is
        # PE_MAC_CYCLES = len(PE_MAC_STAGES)).
        if tuple(stages) != PE_MAC_STAGES:
            raise AssertionError(
                f"PE: the MAC is built as the stages {tuple(stages)} ({len(stages)} "
                f"registers), but edgetron.hw.gemm.PE_MAC_STAGES is {PE_MAC_STAGES} "
                f"(PE_MAC_CYCLES {self.MAC_LATENCY})")
        return m
