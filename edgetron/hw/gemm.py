"""The GEMM unit's numbers: dataflow codes, fixed latencies, buffer words and fit rules.

Imported by ``rtl/gemm/`` (which asserts its structure against the latencies) and by
``sim/units/gemm.py`` (the timing model, docs/rtl.md#gemm derives it).

Buffers
-------
Each SRAM of the unit holds whole words of one array edge: ``ifmap_sram_bytes`` holds the
A operand in words of ``R`` lanes (``C`` for ``is``), ``weight_sram_bytes`` the B operand
in words of ``C`` lanes (``R`` for ``is``), ``ofmap_sram_bytes`` the int32 accumulators
in words of ``C`` lanes (none for ``os``: the PEs accumulate), and a parameter memory of
``R`` words of ``C`` channels per slot the per-channel (bias, mult, shift). A lane of
``bits`` bits takes ``ceil(bits / 8)`` bytes.

With ``double_buffer`` the A and W buffers and the parameter memory are ping-pong pairs
(:func:`gemm_slots` = 2 slots): one call loads into one half while the previous one
computes from the other, so one call may use half of each (the parameter memory is
doubled instead, ``R`` words per slot: it lies outside the three SRAM fields). The
accumulator buffer is not split: consecutive calls read and write it in pipeline order.
One call ``(M, K, N)`` fits when (``x//^y`` is ``ceil(x / y)``, ``DA``, ``DW``, ``DO``
the words one call may use, :func:`gemm_buffer_words`)::

    ws: M * K//^R <= DA    N//^C * K <= DW    M <= DO    N//^C <= R
    os: M//^R * K <= DA    N//^C * K <= DW               N//^C <= R
    is: M//^C * K <= DA    N * K//^R <= DW    N <= DO    N//^C <= R

This is the one fit rule: the RTL's shape check, the simulator's planner and the test
models all call :func:`gemm_fits`.

Latencies
---------
The fixed pipeline depths (``GEMM_*`` constants, :data:`REQUANT_LATENCY`,
:func:`array_timing`) are asserted by the RTL components at elaboration; the timing model
built from them is ``sim/units/gemm.py`` (docs/rtl.md derives it).
"""

from __future__ import annotations

from numba import njit

from edgetron.config import DATAFLOWS

__all__ = [
    "DATAFLOW_IS",
    "DATAFLOW_OS",
    "DATAFLOW_WS",
    "FIT_A",
    "FIT_ACC",
    "FIT_OK",
    "FIT_PARAM",
    "FIT_W",
    "FIT_ZERO_DIM",
    "GEMM_BUFFER_OUT_REGS",
    "GEMM_BUFFER_READ_CYCLES",
    "GEMM_CMD_CYCLES",
    "GEMM_CMD_STATES",
    "GEMM_EPILOGUE_CYCLES",
    "GEMM_OUT_CYCLES",
    "GEMM_OUT_FIFO_CYCLES",
    "PE_MAC_CYCLES",
    "PE_MAC_STAGES",
    "REQUANT_LATENCY",
    "REQUANT_STAGES",
    "array_timing",
    "cdiv",
    "element_bytes",
    "gemm_buffer_words",
    "gemm_channels_first",
    "gemm_fit_failure",
    "gemm_fits",
    "gemm_max_shape",
    "gemm_out_fifo_beats",
    "gemm_slots",
    "gemm_stream_beats",
]

#: Dataflow codes of ``SimParams.dataflow`` (the one table is ``edgetron.config.DATAFLOWS``).
DATAFLOW_WS = DATAFLOWS["ws"]
DATAFLOW_OS = DATAFLOWS["os"]
DATAFLOW_IS = DATAFLOWS["is"]

#: Registered stages of a PE's multiply-accumulate (``rtl/pe.py``), one cycle each: the
#: product register (``mul``: the multiplier's output register, so the multiply has a
#: cycle of its own; FPGA flows put it into the DSP block), the product's second register
#: (``pipe``: in fabric beside the adder, so that the product leaving the DSP block
#: crosses the routing within a cycle of its own and the adder starts from a register
#: next to it), then the accumulate (the partial-sum or accumulator register).
PE_MAC_STAGES = ("mul", "pipe", "acc")
#: Cycles of a PE from an activation on ``a_in`` to its product in the PE's sum register.
PE_MAC_CYCLES = len(PE_MAC_STAGES)

#: Registered stages of the requantizer (``rtl/requant.py``), one cycle each: the partial
#: products of ``acc * mult`` (one 18 x 18 DSP multiplier each), the middle ones added,
#: the product, the shift by whole bytes, the shift by 0..7 bits into the output's window,
#: the rounding add with the saturation.
REQUANT_STAGES = ("mul", "mid", "sum", "shift", "window", "round")
#: Cycles of the requantizer from a beat accepted to the same beat valid at its output.
REQUANT_LATENCY = len(REQUANT_STAGES)

#: States of the GEMM unit's command phase, one cycle each: the handshake (IDLE), then the
#: pipelined shape check: the ceiling divisions (DIV) and the products (MUL) registered,
#: then the comparisons with the buffers and the slot taken (CHECK).
GEMM_CMD_STATES = ("IDLE", "DIV", "MUL", "CHECK")
#: Cycles of the GEMM unit's command phase, from the command handshake to the first load cycle.
GEMM_CMD_CYCLES = len(GEMM_CMD_STATES)
#: Registers after the operand-buffer (A, W) RAM's synchronous read: its output register
#: (the block RAM's own, DP16KD ``REGMODE=OUTREG``, or a flop right after the read data),
#: so that only routing lies between the RAM and the first register, none before the PEs.
GEMM_BUFFER_OUT_REGS = 1
#: Cycles from an operand-buffer read address to its data: the synchronous read, then
#: :data:`GEMM_BUFFER_OUT_REGS`.
GEMM_BUFFER_READ_CYCLES = 1 + GEMM_BUFFER_OUT_REGS
#: Cycles through the epilogue register (accumulator stage / bias add) before the output.
GEMM_EPILOGUE_CYCLES = 1
#: Cycles of the output FIFO from a beat written to the same beat valid on ``o`` (its
#: ``o.valid`` is the FIFO's registered fill level, :func:`gemm_out_fifo_beats` deep).
GEMM_OUT_FIFO_CYCLES = 1
#: Cycles of the output stage from the epilogue register to ``o``: every beat, int8 or
#: int32, passes the requantizer's stages (an int32 beat beside them, unchanged), so that
#: beats of consecutive calls in different output modes stay in order, then the output FIFO.
GEMM_OUT_CYCLES = REQUANT_LATENCY + GEMM_OUT_FIFO_CYCLES


@njit(cache=True)
def cdiv(x, y):
    """``ceil(x / y)`` for positive integers."""
    return (x + y - 1) // y


@njit(cache=True)
def element_bytes(bits):
    """Bytes one ``bits``-wide element takes in a buffer, ``ceil(bits / 8)``."""
    return (bits + 7) // 8


@njit(cache=True)
def array_timing(rows, cols, dataflow):
    """Fixed timing of the ``rows x cols`` systolic array: ``(latency, drain_delay, min_tile_gap)``.

    With ``X = PE_MAC_CYCLES - 1`` = 2 (the PE's product registers before its accumulate,
    :data:`PE_MAC_STAGES`: ``mul``, the multiplier's output register, and ``pipe``, the
    product's second register in fabric beside the adder): ``ws``: ``latency = rows + cols
    - 1 + X`` (``rows + cols + 1``) from an activation vector to its column sums (skew in,
    ``rows`` PEs down, de-skew out), no drain. ``os``: ``latency = cols - 1`` from a drain
    pulse to its result row (the de-skew), ``drain_delay = rows + X`` (``rows + 2``) from the
    last operand pair of a tile to its first drain pulse, and ``min_tile_gap = 2 * rows -
    1`` cycles at least between the last operand pairs of consecutive tiles (the result
    chains must be empty before the next tile captures into them; the captures and the
    drain pulses both move with ``X``, so the gap does not depend on it). ``is`` has no
    RTL: the ``ws`` values.
    """
    extra = PE_MAC_CYCLES - 1
    if dataflow == DATAFLOW_OS:
        return cols - 1, rows + extra, 2 * rows - 1
    return rows + cols - 1 + extra, 0, 0


def gemm_out_fifo_beats(rows, cols, dataflow):
    """Beats of the GEMM unit's (and the ConvUnit's) output FIFO: the compute core issues a
    row (``ws``) or a tile's last operand pair (``os``) only against a credit of this FIFO
    for every output beat it will yield, and never stalls otherwise, so the FIFO is deep
    enough that at full rate (``o.ready`` always high) the credits never run out and the
    cycles are those of the timing model.

    A credit is taken at the issue and comes back in the register the cycle after the
    beat's ``o`` handshake. ``ws``: one beat per issued row, at most one a cycle, each on
    ``o`` ``F + GEMM_OUT_FIFO_CYCLES`` cycles after its issue, ``F = GEMM_BUFFER_READ_CYCLES
    + latency + GEMM_EPILOGUE_CYCLES + REQUANT_LATENCY``: ``F + 1`` credits are out at any
    time, so ``F + 2`` beats. ``os``: a tile's last pair takes ``rows`` credits; its rows
    reach ``o`` ``drain_delay`` later and one a cycle, and tiles' last pairs are at least
    ``min_tile_gap`` apart, so at most ``rows * ceil((F + rows + 1) / min_tile_gap)``
    credits are out, and one more tile's ``rows``.
    """
    latency, drain_delay, gap = array_timing(rows, cols, DATAFLOWS[dataflow])
    flight = GEMM_BUFFER_READ_CYCLES + latency + GEMM_EPILOGUE_CYCLES + REQUANT_LATENCY
    if dataflow == "os":
        flight += drain_delay
        return rows + rows * int(cdiv(flight + rows + 1, gap))
    return flight + 2


@njit(cache=True)
def gemm_slots(p):
    """Operand slots of the unit: 2 with ``double_buffer`` (ping-pong halves), else 1."""
    return 2 if p.double_buffer else 1


@njit(cache=True)
def gemm_buffer_words(p):
    """Words of the A, W, accumulator and parameter buffers one call may use:
    ``(a, w, acc, param)``.

    See the module docstring: with ``double_buffer`` ``a`` and ``w`` are half of each
    buffer (a slot; the memories hold :func:`gemm_slots` times as many words), ``acc`` is
    the whole accumulator buffer (0 for ``os``), ``param`` the ``R`` words of a slot.
    """
    r, c = p.rows, p.cols
    slots = gemm_slots(p)
    if p.dataflow == DATAFLOW_IS:
        a_words = p.ifmap_sram_bytes // (c * element_bytes(p.input_bits))
        w_words = p.weight_sram_bytes // (r * element_bytes(p.weight_bits))
    else:
        a_words = p.ifmap_sram_bytes // (r * element_bytes(p.input_bits))
        w_words = p.weight_sram_bytes // (c * element_bytes(p.weight_bits))
    acc_words = 0
    if p.dataflow != DATAFLOW_OS:
        acc_words = p.ofmap_sram_bytes // (c * element_bytes(p.acc_bits))
    return a_words // slots, w_words // slots, acc_words, r


@njit(cache=True)
def gemm_channels_first(p):
    """True when a call waits for all its channels (``ch`` beats) before its first issue.

    The unit gates the issue of each column tile on its own ``C`` channels when
    ``cols <= rows``: a column tile then lasts at least ``C`` cycles (ws: ``K//^R`` steps
    of at least ``R``; os: tiles of at least ``2R - 1``), so a ``ch`` stream at one beat
    per cycle never holds a later tile back. With ``cols > rows`` a tile can be shorter
    than its channels, and the first issue of a call waits for all ``N`` of them instead,
    so that neither ever stalls the array in the middle of a call (the timing model stays
    a closed form). ``is`` (simulator only) always waits for all of them.
    """
    return p.cols > p.rows or p.dataflow == DATAFLOW_IS


@njit(cache=True)
def gemm_stream_beats(p, m, k, n):
    """Beats of one GEMM-unit call ``(M, K, N)`` on each stream: ``(a, w, ch, o)``.

    ``a``: ``M * K//^R`` (``ws``, one beat per row and reduction fold), ``M//^R * K``
    (``os``, one per row tile and k), ``M//^C * K`` (``is``); ``w``: ``N//^C * K``
    (``N * K//^R`` for ``is``); ``ch``: ``N``, one per output channel; ``o``: ``N//^C * M``,
    one per column tile and row. The beat order is the RTL codec's
    (``edgetron.rtl.gemm.codec``).
    """
    r, c = p.rows, p.cols
    if p.dataflow == DATAFLOW_IS:
        a, w = cdiv(m, c) * k, n * cdiv(k, r)
    elif p.dataflow == DATAFLOW_OS:
        a, w = cdiv(m, r) * k, cdiv(n, c) * k
    else:
        a, w = m * cdiv(k, r), cdiv(n, c) * k
    return a, w, n, cdiv(n, c) * m


#: :func:`gemm_fit_failure` codes: the shape fits; a dimension is below 1; the A buffer,
#: the W buffer, the accumulator buffer or the parameter memory is too small for it.
FIT_OK, FIT_ZERO_DIM, FIT_A, FIT_W, FIT_ACC, FIT_PARAM = range(6)


@njit(cache=True)
def gemm_fit_failure(p, m, k, n):
    """Why one GEMM-unit call cannot take ``(M, K, N)``: a ``FIT_*`` code, ``FIT_OK`` if it can.

    The rules are those of the module docstring, checked in the order A, W, accumulator,
    parameter memory; the first that fails is returned.
    """
    if m < 1 or k < 1 or n < 1:
        return FIT_ZERO_DIM
    a_words, w_words, acc_words, param_words = gemm_buffer_words(p)
    # The A and W buffers hold every beat of their streams (one word each).
    a_need, w_need, _, _ = gemm_stream_beats(p, m, k, n)
    acc_need = n if p.dataflow == DATAFLOW_IS else (0 if p.dataflow == DATAFLOW_OS else m)
    if a_need > a_words:
        return FIT_A
    if w_need > w_words:
        return FIT_W
    if acc_need > acc_words:
        return FIT_ACC
    if cdiv(n, p.cols) > param_words:
        return FIT_PARAM
    return FIT_OK


@njit(cache=True)
def gemm_fits(p, m, k, n):
    """True when one GEMM-unit call accepts ``(M, K, N)``: all >= 1 and the buffers hold it."""
    return gemm_fit_failure(p, m, k, n) == FIT_OK


@njit(cache=True)
def gemm_max_shape(p):
    """Largest ``(M, K, N)`` of one call, each with the other two at 1.

    A shape is accepted when :func:`gemm_fits` says so; the three maxima cannot in general
    be reached together (the buffers hold products such as ``M * K``).
    """
    r, c = p.rows, p.cols
    a_words, w_words, acc_words, param_words = gemm_buffer_words(p)
    if p.dataflow == DATAFLOW_WS:
        return min(a_words, acc_words), min(a_words * r, w_words), c * min(param_words, w_words)
    if p.dataflow == DATAFLOW_OS:
        return a_words * r, min(a_words, w_words), c * min(param_words, w_words)
    n_max = min(w_words, acc_words, c * param_words)
    return a_words * c, min(w_words * r, a_words), n_max

