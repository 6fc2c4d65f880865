"""R x C systolic array of :class:`~edgetron.rtl.pe.PE`, weight- or output-stationary.

The array takes *aligned* vectors (one activation per row, one weight per column, all
for the same cycle) and skews them itself: lane ``r`` of the activation vector is
delayed ``r`` cycles before it enters row ``r``, lane ``c`` of the weight vector ``c``
cycles before it enters column ``c``. Operands then move one PE per cycle (activations
to the right, weights and partial sums down), so the operands of PE ``(r, c)`` meet
``r + c`` cycles after they were presented. The results leave skewed (column ``c``
``c`` cycles late) and are de-skewed (lane ``c`` delayed ``cols - 1 - c`` cycles), so
the output is an aligned vector again.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import data

from edgetron.config import DATAFLOWS, AcceleratorConfig
from edgetron.hw import gemm as hw

from .common import (
    CheckedComponent,
    DelayLine,
    check_array_size,
    check_config_type,
    check_dataflow,
)
from .layouts import pe_act_layout, pe_wgt_layout, systolic_signature_members
from .pe import PE

__all__ = ["ArrayTiming", "SystolicArray", "array_timing"]


class ArrayTiming(NamedTuple):
    """Fixed timing of a :class:`SystolicArray`, in cycles (see its Latency section).

    ``latency``: ``ws`` from ``a`` to ``p`` (``rows + cols + 1``), ``os`` from a ``drain``
    pulse to its row on ``o`` (``cols - 1``). ``drain_delay`` (``os``, ``rows + 2``): from the
    last operand pair of a tile to its first drain pulse. ``min_tile_gap`` (``os``,
    ``2 * rows - 1``): least cycles between the last operand pairs of consecutive tiles.
    ``ws`` has no drain pulses: both are 0.
    """

    latency: int
    drain_delay: int
    min_tile_gap: int


def array_timing(config: AcceleratorConfig) -> ArrayTiming:
    """The :class:`ArrayTiming` of the array ``config`` describes (``ws`` or ``os``):
    :func:`edgetron.hw.gemm.array_timing`, the definition the simulator uses."""
    check_dataflow(config.dataflow)
    return ArrayTiming(*hw.array_timing(config.rows, config.cols, DATAFLOWS[config.dataflow]))


def _skewed_lane(m: Module, vector, layout: data.StructLayout, index: int,
                 name: str) -> DelayLine:
    """Lane ``index`` of an aligned ``vector`` as one PE operand (``layout``): its ``data``
    element with the control fields all lanes share, delayed ``index`` cycles."""
    lane = Signal(layout, name=f"{name}_lane{index}")
    m.d.comb += lane.data.eq(vector.data[index])
    for field in layout.members:
        if field != "data":
            m.d.comb += getattr(lane, field).eq(getattr(vector, field))
    return DelayLine(m, lane, index, f"{name}_skew{index}")


def _check_depth(what: str, built: int, model: int) -> None:
    """Elaboration check: a path of the array is as deep as the timing model says."""
    if built != model:
        raise AssertionError(
            f"SystolicArray: {what} is {built} cycles deep as built, but "
            f"edgetron.hw.gemm.array_timing says {model}")


class SystolicArray(CheckedComponent):
    """``rows x cols`` PEs with systolic operand movement; dataflow from ``config.dataflow``.

    Parameters
    ----------
    config : AcceleratorConfig
        ``rows``, ``cols``, ``dataflow`` (``"ws"`` or ``"os"``), ``input_bits``,
        ``weight_bits``, ``acc_bits``. ``dataflow = "is"`` and arrays of more than
        ``common.MAX_PES`` (4096) PEs raise ``ConfigError`` naming the field; a non-config
        ``TypeError`` (checked before the component is created).

    Members
    -------
    See :func:`edgetron.rtl.layouts.systolic_signature_members` (widths there).

    a
        Aligned activation vector, one lane per row, plus the PE control bits. ``ws``:
        ``a.sel`` runs one cycle ahead of ``a.data``; it is the weight bank of the vector
        presented in the next cycle (each PE registers that bank's weight as its
        multiplier operand a cycle early, see :class:`~edgetron.rtl.pe.PE`).
    w
        Aligned weight vector, one lane per column (``ws``: plus ``row``, ``bank``,
        ``valid`` shared by all lanes: "write this row of a weight tile into ``bank``").
    p -- ``ws``
        Column sums ``sum_r a[r] * W_bank[r][c]`` of the activation vector presented
        :attr:`latency` cycles earlier (``bank`` is the ``sel`` presented one cycle
        before that vector).
    drain -- ``os``
        Take one row of results out: the result row at the top of the array is output
        and every column's result chain moves up one PE.
    o -- ``os``
        The result row taken out by the ``drain`` pulse :attr:`latency` cycles earlier.

    Latency
    -------
    ``ws``: ``latency = rows + cols + 1`` cycles from ``a`` to ``p`` (``rows + cols - 2``
    hops and the PE's three-stage MAC, ``edgetron.hw.gemm.PE_MAC_CYCLES``: the product,
    its second register, the add). A weight row
    presented on ``w`` in cycle ``j`` is used by the activation vectors presented after
    cycle ``j`` that select its bank, and not by those presented in or before cycle ``j``.

    ``os``: PE ``(r, c)`` multiplies lane ``r`` of ``a`` and lane ``c`` of ``w`` presented
    in the same cycle ``i`` at cycle ``i + r + c``. With the last operand pair of a tile
    (``a.last``) presented in cycle ``i``, the ``rows`` drain pulses of that tile may
    start in cycle ``i + rows + 2`` (:attr:`drain_delay`: the bottom PE's last pair is
    multiplied at ``i + rows - 1`` and its result captured three cycles later, the PE's
    three-stage MAC) and give result rows
    0, 1, ... in order; ``latency = cols - 1`` from a ``drain`` pulse to its row on ``o``. The
    last operand pair of the next tile must come at least :attr:`min_tile_gap`
    ``= 2 * rows - 1`` cycles after the one of this tile (the result chains must be
    empty before the next tile captures into them), and ``rows`` drain pulses must be
    given per tile, starting exactly :attr:`drain_delay` cycles after its last pair.

    The values come from :func:`edgetron.hw.gemm.array_timing`; :meth:`elaborate` adds up
    the registers on every path it builds (skew, PE hops, de-skew) and raises
    AssertionError if one differs.

    Backpressure
    ------------
    None: the array advances every cycle (the GEMM unit's compute core issues against
    credits of its output FIFO and never stalls the array).

    Golden
    ------
    With zero initial partial sums, ``ws`` computes ``a @ W_tile`` and ``os`` computes
    ``A_tile @ W_tile`` over the streamed reduction, as
    :func:`edgetron.golden.gemm.matmul_int` does (bit-exact while no sum leaves the
    ``acc_bits`` range).
    """

    @classmethod
    def check_parameters(cls, config: AcceleratorConfig) -> None:
        check_config_type(config)
        check_dataflow(config.dataflow)
        check_array_size(cls.__name__, config.rows, config.cols)

    def __init__(self, config: AcceleratorConfig):
        self._config = config
        super().__init__(systolic_signature_members(config))

    @property
    def latency(self) -> int:
        """``ws``: cycles from ``a`` to ``p``; ``os``: cycles from ``drain`` to ``o``."""
        return array_timing(self._config).latency

    @property
    def drain_delay(self) -> int:
        """``os``: cycles from the last operand pair of a tile to its first drain pulse."""
        return array_timing(self._config).drain_delay

    @property
    def min_tile_gap(self) -> int:
        """``os``: least cycles between the last operand pairs of consecutive tiles."""
        return array_timing(self._config).min_tile_gap

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols, df = cfg.rows, cfg.cols, cfg.dataflow
        act = pe_act_layout(df, cfg.input_bits)
        wgt = pe_wgt_layout(df, cfg.weight_bits, rows)
        hop = PE.LATENCY

        pes = [[PE(df, row=r, rows=rows, input_bits=cfg.input_bits,
                   weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits)
                for c in range(cols)] for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]

        # Skew in: activation lane r enters row r after r cycles, weight lane c column c
        # after c cycles.
        a_skew = [_skewed_lane(m, self.a, act, r, "a") for r in range(rows)]
        w_skew = [_skewed_lane(m, self.w, wgt, c, "w") for c in range(cols)]
        for r in range(rows):
            m.d.comb += pes[r][0].a_in.eq(a_skew[r].output)
        for c in range(cols):
            m.d.comb += pes[0][c].w_in.eq(w_skew[c].output)

        # Neighbour links.
        for r in range(rows):
            for c in range(cols):
                if c + 1 < cols:
                    m.d.comb += pes[r][c + 1].a_in.eq(pes[r][c].a_out)
                if r + 1 < rows:
                    m.d.comb += pes[r + 1][c].w_in.eq(pes[r][c].w_out)

        # Operands presented together meet in PE (r, c) after as many cycles from the left
        # as from the top (os relies on it; ws on the activation side only).
        if df == "os":
            for r in range(rows):
                for c in range(cols):
                    _check_depth(f"the weight path to PE ({r}, {c})",
                                 w_skew[c].depth + r * hop, a_skew[r].depth + c * hop)

        if df == "ws":
            # Partial sums flow down from zero; column c's sum leaves row rows-1 and is
            # de-skewed by cols-1-c cycles.
            for c in range(cols):
                m.d.comb += pes[0][c].p_in.eq(0)
                for r in range(rows - 1):
                    m.d.comb += pes[r + 1][c].p_in.eq(pes[r][c].p_out)
                deskew = DelayLine(m, pes[rows - 1][c].p_out, cols - 1 - c, f"p_deskew{c}")
                m.d.comb += self.p[c].eq(deskew.output)
                # Row r's activation: skew, c hops right, its MAC (product, its second
                # register, then the sum), rows-1-r hops down.
                for r in range(rows):
                    built = (a_skew[r].depth + c * hop + PE.MAC_LATENCY + (rows - 1 - r) * hop
                             + deskew.depth)
                    _check_depth(f"a[{r}] to p[{c}]", built, self.latency)
        else:
            # Result chains flow up; the drain pulse reaches column c after c cycles.
            drain_skew = [DelayLine(m, self.drain, c, f"drain_skew{c}") for c in range(cols)]
            for c in range(cols):
                for r in range(rows):
                    m.d.comb += pes[r][c].shift.eq(drain_skew[c].output)
                    below = pes[r + 1][c].o_out if r + 1 < rows else Const(0, signed(cfg.acc_bits))
                    m.d.comb += pes[r][c].o_in.eq(below)
                deskew = DelayLine(m, pes[0][c].o_out, cols - 1 - c, f"o_deskew{c}")
                m.d.comb += self.o[c].eq(deskew.output)
                _check_depth(f"drain to o[{c}]", drain_skew[c].depth + deskew.depth,
                             self.latency)
                # The last MAC of a tile in column c is in its bottom PE; the result is
                # captured MAC_LATENCY cycles later, and the column's first shift may come
                # then.
                captured = a_skew[rows - 1].depth + c * hop + PE.MAC_LATENCY
                _check_depth(f"last operand pair to the first drain pulse (column {c})",
                             captured - drain_skew[c].depth, self.drain_delay)
        return m
