"""Stream signatures and payload layouts of the RTL units, derived from the configuration.

Every port shape of the GEMM datapath is built here, in one place, so that the
components (:mod:`.pe`, :mod:`.systolic`, :mod:`.gemm`, :mod:`.requant`), the
driver-side codecs (:mod:`edgetron.rtl.gemm.codec`, :func:`edgetron.rtl.requant.encode_requant`)
and the testbenches agree on field order and width. Each component takes its signature
members from one ``*_signature_members`` factory here, and its docstring points to it
rather than restating the widths. (The elaboration bounds and parameter checks are in
:mod:`.common`.)

Bit order
---------
Payloads are :mod:`amaranth.lib.data` layouts. A :class:`~amaranth.lib.data.StructLayout`
packs its fields LSB first in the order they are listed here; an
:class:`~amaranth.lib.data.ArrayLayout` packs element 0 in the lowest bits. The
Verilog port ``<name>__payload`` carries exactly these bits.

Widths
------
* operands: ``signed(input_bits)`` (activations), ``signed(weight_bits)`` (weights);
* accumulators, biases and int32 results: ``signed(acc_bits)``;
* requantization multiplier ``mult``: ``unsigned(MULT_BITS)`` with ``MULT_BITS =
  bit_length(golden.intops.M_MAX) = 31``; shift ``shift``: ``unsigned(SHIFT_BITS)`` with
  ``SHIFT_BITS = bit_length(golden.intops.S_MAX) = 6``.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import ShapeLike, signed, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import MULT_BITS, SHIFT_BITS

from .common import check_dataflow

__all__ = [
    "GemmLayouts",
    "array_a_layout",
    "array_w_layout",
    "channel_layout",
    "gemm_core_shape_layout",
    "gemm_core_signature_members",
    "gemm_layouts",
    "gemm_load_layout",
    "gemm_signature_members",
    "gemm_slot_event_layout",
    "gemm_slot_layout",
    "pe_act_layout",
    "pe_signature_members",
    "pe_wgt_layout",
    "requant_layout",
    "requant_out_layout",
    "requant_signature_members",
    "row_index_shape",
    "systolic_signature_members",
    "unsigned_for",
]


def unsigned_for(max_value: int) -> ShapeLike:
    """Narrowest unsigned shape holding ``0 .. max_value`` (at least 1 bit)."""
    if max_value < 0:
        raise ValueError(f"max_value must be >= 0, got {max_value}")
    return unsigned(max(1, max_value.bit_length()))


def row_index_shape(rows: int) -> ShapeLike:
    """Shape of a PE row index ``0 .. rows-1`` (at least 1 bit)."""
    return unsigned(max(1, ceil_log2(rows)))


# ---- requantizer -------------------------------------------------------------------------------
def requant_layout(lanes: int, acc_bits: int = 32) -> data.StructLayout:
    """Input beat of :class:`edgetron.rtl.requant.Requantizer`.

    Fields (LSB first): ``acc`` ``ArrayLayout(signed(acc_bits), lanes)``, ``mult``
    ``ArrayLayout(unsigned(MULT_BITS), lanes)``, ``shift``
    ``ArrayLayout(unsigned(SHIFT_BITS), lanes)``; ``lanes * (acc_bits + MULT_BITS +
    SHIFT_BITS)`` bits in all.
    """
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(acc_bits), lanes),
        "mult": data.ArrayLayout(unsigned(MULT_BITS), lanes),
        "shift": data.ArrayLayout(unsigned(SHIFT_BITS), lanes),
    })


def requant_out_layout(lanes: int, out_bits: int = 8) -> data.ArrayLayout:
    """Output beat of :class:`edgetron.rtl.requant.Requantizer`:
    ``ArrayLayout(signed(out_bits), lanes)``, ``lanes * out_bits`` bits."""
    return data.ArrayLayout(signed(out_bits), lanes)


def requant_signature_members(lanes: int, acc_bits: int = 32, out_bits: int = 8) -> dict:
    """Port members of :class:`edgetron.rtl.requant.Requantizer`: ``i``
    (:func:`requant_layout`) and ``o`` (:func:`requant_out_layout`), both ``lib.stream``."""
    return {
        "i": In(stream.Signature(requant_layout(lanes, acc_bits))),
        "o": Out(stream.Signature(requant_out_layout(lanes, out_bits))),
    }


def channel_layout(acc_bits: int = 32) -> data.StructLayout:
    """Per-output-channel parameters: ``bias`` signed(acc_bits), ``mult`` unsigned(MULT_BITS),
    ``shift`` unsigned(SHIFT_BITS) (LSB first; ``acc_bits + MULT_BITS + SHIFT_BITS`` bits)."""
    return data.StructLayout({
        "bias": signed(acc_bits),
        "mult": unsigned(MULT_BITS),
        "shift": unsigned(SHIFT_BITS),
    })


# ---- processing element and array --------------------------------------------------------------
def pe_act_layout(dataflow: str, input_bits: int) -> data.StructLayout:
    """Activation passed left to right from PE to PE.

    ``ws``: ``data`` signed(input_bits), ``sel`` 1 bit (weight bank of the activation
    presented in the next cycle: one cycle ahead of ``data``).
    ``os``: ``data`` signed(input_bits), ``first`` 1 bit (start a new accumulation),
    ``last`` 1 bit (the accumulation ends with this MAC; capture the result).
    """
    check_dataflow(dataflow)
    if dataflow == "ws":
        return data.StructLayout({"data": signed(input_bits), "sel": 1})
    return data.StructLayout({"data": signed(input_bits), "first": 1, "last": 1})


def pe_wgt_layout(dataflow: str, weight_bits: int, rows: int) -> data.StructLayout:
    """Weight passed top to bottom from PE to PE.

    ``ws``: ``data`` signed(weight_bits), ``row`` (target PE row, ``row_index_shape(rows)``),
    ``bank`` 1 bit (which of the two weight registers to write), ``valid`` 1 bit.
    ``os``: ``data`` signed(weight_bits) only (it meets the activation of the same k).
    """
    check_dataflow(dataflow)
    if dataflow == "ws":
        return data.StructLayout({
            "data": signed(weight_bits),
            "row": row_index_shape(rows),
            "bank": 1,
            "valid": 1,
        })
    return data.StructLayout({"data": signed(weight_bits)})


def array_a_layout(dataflow: str, rows: int, input_bits: int) -> data.StructLayout:
    """Aligned activation vector entering :class:`~edgetron.rtl.systolic.SystolicArray`.

    ``data`` is ``ArrayLayout(signed(input_bits), rows)`` (lane r feeds array row r);
    the remaining fields are those of :func:`pe_act_layout` and apply to every lane.
    """
    fields = dict(pe_act_layout(dataflow, input_bits).members)
    fields["data"] = data.ArrayLayout(signed(input_bits), rows)
    return data.StructLayout(fields)


def array_w_layout(dataflow: str, rows: int, cols: int, weight_bits: int) -> data.StructLayout:
    """Aligned weight vector entering :class:`~edgetron.rtl.systolic.SystolicArray` from the top.

    ``data`` is ``ArrayLayout(signed(weight_bits), cols)`` (lane c feeds array column c);
    the remaining fields are those of :func:`pe_wgt_layout` and apply to every lane.
    """
    fields = dict(pe_wgt_layout(dataflow, weight_bits, rows).members)
    fields["data"] = data.ArrayLayout(signed(weight_bits), cols)
    return data.StructLayout(fields)


def pe_signature_members(dataflow: str, *, rows: int, input_bits: int, weight_bits: int,
                         acc_bits: int) -> dict:
    """Port members of :class:`edgetron.rtl.pe.PE` (plain signals, no streams).

    Both dataflows: ``a_in``/``a_out`` (:func:`pe_act_layout`), ``w_in``/``w_out``
    (:func:`pe_wgt_layout`). ``ws``: ``p_in``/``p_out`` ``signed(acc_bits)``. ``os``:
    ``shift`` 1 bit, ``o_in``/``o_out`` ``signed(acc_bits)``.
    """
    act = pe_act_layout(dataflow, input_bits)
    wgt = pe_wgt_layout(dataflow, weight_bits, rows)
    members = {"a_in": In(act), "a_out": Out(act), "w_in": In(wgt), "w_out": Out(wgt)}
    if dataflow == "ws":
        members |= {"p_in": In(signed(acc_bits)), "p_out": Out(signed(acc_bits))}
    else:
        members |= {"shift": In(1), "o_in": In(signed(acc_bits)), "o_out": Out(signed(acc_bits))}
    return members


def systolic_signature_members(config: AcceleratorConfig) -> dict:
    """Port members of :class:`edgetron.rtl.systolic.SystolicArray` (plain signals).

    Both dataflows: ``a`` (:func:`array_a_layout`), ``w`` (:func:`array_w_layout`). ``ws``:
    ``p`` ``ArrayLayout(signed(acc_bits), cols)``. ``os``: ``drain`` 1 bit, ``o``
    ``ArrayLayout(signed(acc_bits), cols)``.
    """
    df = config.dataflow
    out = data.ArrayLayout(signed(config.acc_bits), config.cols)
    members = {
        "a": In(array_a_layout(df, config.rows, config.input_bits)),
        "w": In(array_w_layout(df, config.rows, config.cols, config.weight_bits)),
    }
    if df == "ws":
        members["p"] = Out(out)
    else:
        members |= {"drain": In(1), "o": Out(out)}
    return members


# ---- GEMM unit ---------------------------------------------------------------------------------
class GemmLayouts(NamedTuple):
    """Payload layouts of the GEMM unit: its five streams (``cmd``, ``a``, ``w``, ``ch``,
    ``o``), a word of its parameter memory (``param``) and the beat its compute cores hand
    to the output stage (``epilogue``)."""

    cmd: data.StructLayout
    a: data.ArrayLayout
    w: data.ArrayLayout
    ch: data.StructLayout
    o: data.ArrayLayout
    param: data.ArrayLayout
    epilogue: data.StructLayout


def gemm_layouts(config: AcceleratorConfig, limits) -> GemmLayouts:
    """Payloads of the GEMM unit for ``config`` and its
    :class:`~edgetron.rtl.gemm.GemmLimits` ``limits``.

    * ``cmd``: ``m``, ``k``, ``n`` (``unsigned_for(m_max)`` etc.), ``out32`` (1 bit);
    * ``a``: ``ArrayLayout(signed(input_bits), rows)`` -- one lane per array row;
    * ``w``: ``ArrayLayout(signed(weight_bits), cols)`` -- one lane per array column;
    * ``ch``: :func:`channel_layout` (one output channel per beat);
    * ``o``: ``ArrayLayout(signed(acc_bits), cols)`` -- int32 results, or int8 results
      sign-extended to ``acc_bits``;
    * ``param``: ``ArrayLayout(channel_layout(acc_bits), cols)``, the channels of one
      column tile;
    * ``epilogue``: the fields of :func:`requant_layout` ``(cols, acc_bits)`` (one output
      row segment with its channels' ``mult`` and ``shift``) and ``out32``, the output
      mode of the call the beat belongs to.
    """
    epilogue = dict(requant_layout(config.cols, config.acc_bits).members)
    epilogue["out32"] = 1
    return GemmLayouts(
        cmd=data.StructLayout({
            "m": unsigned_for(limits.m_max),
            "k": unsigned_for(limits.k_max),
            "n": unsigned_for(limits.n_max),
            "out32": 1,
        }),
        a=data.ArrayLayout(signed(config.input_bits), config.rows),
        w=data.ArrayLayout(signed(config.weight_bits), config.cols),
        ch=channel_layout(config.acc_bits),
        o=data.ArrayLayout(signed(config.acc_bits), config.cols),
        param=data.ArrayLayout(channel_layout(config.acc_bits), config.cols),
        epilogue=data.StructLayout(epilogue),
    )


def gemm_signature_members(layouts: GemmLayouts) -> dict:
    """Port members of :class:`~edgetron.rtl.gemm.GemmUnit` (all ``lib.stream``),
    plus the 1-bit ``err`` status output."""
    return {
        "cmd": In(stream.Signature(layouts.cmd)),
        "a": In(stream.Signature(layouts.a)),
        "w": In(stream.Signature(layouts.w)),
        "ch": In(stream.Signature(layouts.ch)),
        "o": Out(stream.Signature(layouts.o)),
        "err": Out(1),
    }


def gemm_core_shape_layout(config: AcceleratorConfig, limits) -> data.StructLayout:
    """An accepted command as its slot holds it (registered by the shape check).

    ``m``, ``k``, ``out32``: as in ``cmd``; ``nt_last``: ``ceil(N / cols) - 1``, the last
    column tile; ``ws``: ``m_last``, ``M - 1``, the last row of a step, and ``kf_last``,
    ``ceil(K / rows) - 1``, the last reduction fold;
    ``os``: ``mt_last``, ``ceil(M / rows) - 1``, the last row tile; ``a_end``, ``w_end``,
    ``ch_end``: the index of the last beat of each operand stream. Each "last" and "end"
    holds a count minus one, so that counters compare with registers of their own width.
    """
    check_dataflow(config.dataflow)
    r, c = config.rows, config.cols
    fields = {
        "m": unsigned_for(limits.m_max),
        "k": unsigned_for(limits.k_max),
        "nt_last": unsigned_for(-(-limits.n_max // c)),
    }
    if config.dataflow == "ws":
        fields["m_last"] = unsigned_for(limits.m_max)
        fields["kf_last"] = unsigned_for(-(-limits.k_max // r))
    else:
        fields["mt_last"] = unsigned_for(-(-limits.m_max // r))
    fields |= {
        "out32": 1,
        "a_end": unsigned_for(limits.a_words),
        "w_end": unsigned_for(limits.w_words),
        "ch_end": unsigned_for(limits.n_max),
    }
    return data.StructLayout(fields)


def gemm_slot_layout(config: AcceleratorConfig, limits) -> data.StructLayout:
    """The state of one operand slot of the GEMM unit as its compute core sees it.

    ``busy``: a call holds the slot (from its shape check to its last issue); ``call``:
    :func:`gemm_core_shape_layout`; ``a_done``, ``w_done``, ``ch_done``: every beat of
    that stream of the call is in the slot.
    """
    return data.StructLayout({
        "busy": 1,
        "call": gemm_core_shape_layout(config, limits),
        "a_done": 1,
        "w_done": 1,
        "ch_done": 1,
    })


def gemm_load_layout(limits) -> data.StructLayout:
    """Where each operand stream of the GEMM unit is loading: ``<stream>_slot``, the slot
    its next beat goes to, and ``<stream>_cnt``, the beats of that slot's call it has
    taken so far (registers); ``<stream>_take``, a beat is taken this cycle, and
    ``<stream>_last``, the beat at the loader is its call's last (with ``take``, the
    count goes back to 0 and the loader moves on), this cycle's events (``a``, ``w``,
    ``ch``)."""
    fields = {}
    for name, words in (("a", limits.a_words), ("w", limits.w_words), ("ch", limits.n_max)):
        fields |= {f"{name}_slot": 1, f"{name}_cnt": unsigned_for(words),
                   f"{name}_take": 1, f"{name}_last": 1}
    return data.StructLayout(fields)


def gemm_slot_event_layout() -> data.StructLayout:
    """A one-cycle event about a slot: ``valid``, ``slot``."""
    return data.StructLayout({"valid": 1, "slot": 1})


def gemm_core_signature_members(config: AcceleratorConfig, limits) -> dict:
    """Port members of the GEMM unit's compute cores (:mod:`edgetron.rtl.gemm.ws_core`,
    :mod:`edgetron.rtl.gemm.os_core`), for ``config`` and its
    :class:`~edgetron.rtl.gemm.GemmLimits` ``limits``.

    * ``slots`` ``In(ArrayLayout(gemm_slot_layout(...), limits.slots))``: the calls the
      unit has accepted, their shapes and how far they have loaded;
    * ``load`` ``In(gemm_load_layout(limits))``: where each operand stream is loading;
    * ``a_rd``, ``w_rd``: ``In(memory.ReadPort.Signature(...))`` of the A and W buffers
      (all slots; the core drives ``addr`` and ``en``, and reads ``data`` one cycle later);
    * ``p_addr`` ``Out``, ``p_data`` ``In(param)``: the asynchronous read of the parameter
      memory (a word of ``cols`` channels, :class:`GemmLayouts` ``param``);
    * ``free`` ``Out(gemm_slot_event_layout())``: the call of ``slot`` has issued its last
      row (its A and W halves are free);
    * ``drained`` ``Out(gemm_slot_event_layout())``: the last results of ``slot``'s call
      have read their parameters (its parameter half is free);
    * ``o``: ``Out(stream.Signature(epilogue, always_ready=True))``: one output row segment
      per beat with its channels' ``mult`` and ``shift`` and its call's ``out32``; the core
      never stalls, so the unit takes every beat (into its output FIFO, for which the core
      holds credits);
    * ``release`` ``In(1)``: a beat left the unit's output FIFO (its credit comes back).
    """
    lay = gemm_layouts(config, limits)
    slots = limits.slots
    return {
        "slots": In(data.ArrayLayout(gemm_slot_layout(config, limits), slots)),
        "load": In(gemm_load_layout(limits)),
        "a_rd": In(memory.ReadPort.Signature(addr_width=ceil_log2(slots * limits.a_words),
                                             shape=lay.a)),
        "w_rd": In(memory.ReadPort.Signature(addr_width=ceil_log2(slots * limits.w_words),
                                             shape=lay.w)),
        "p_addr": Out(ceil_log2(slots * limits.param_words)),
        "p_data": In(lay.param),
        "free": Out(gemm_slot_event_layout()),
        "drained": Out(gemm_slot_event_layout()),
        "o": Out(stream.Signature(lay.epilogue, always_ready=True)),
        "release": In(1),
    }
