"""Stream signatures and payload layouts of the RTL units, derived from the configuration.

Every port shape of the GEMM datapath is built here, in one place, so that the
components (:mod:`.pe`, :mod:`.systolic`, :mod:`.gemm`, :mod:`.requant`), the
driver-side packers (:func:`edgetron.rtl.gemm.encode_gemm`) and the
testbenches agree on field order and width. Each component takes its signature
members from one ``*_signature_members`` factory here.

The elaboration bounds every component checks before it builds anything (array
edges, PE count, widths) live here too, with :func:`check_param` and
:func:`check_array_size`.

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
* requantization multiplier ``m``: ``unsigned(MULT_BITS)`` with ``MULT_BITS =
  bit_length(golden.intops.M_MAX) = 31``; shift ``s``: ``unsigned(SHIFT_BITS)`` with
  ``SHIFT_BITS = bit_length(golden.intops.S_MAX) = 6``.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import ShapeLike, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import MULT_BITS, SHIFT_BITS

__all__ = [
    "MAX_BUFFER_WORDS",
    "MAX_EDGE",
    "MAX_PES",
    "OPERAND_BITS",
    "GemmLayouts",
    "array_a_layout",
    "array_w_layout",
    "channel_layout",
    "check_array_size",
    "check_dataflow",
    "check_param",
    "gemm_layouts",
    "gemm_signature_members",
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


#: Largest array edge (``rows``, ``cols``; also requantizer ``lanes``, one per column): the
#: range ``AcceleratorConfig`` allows for ``rows`` and ``cols`` (a test keeps them equal).
MAX_EDGE = 256
#: Largest array the RTL elaborates, in PEs (64 x 64). Elaboration time and memory grow
#: with the PE count: Verilog export of a 32 x 32 GEMM unit took 45 s and 0.3 GB, 64 x 64
#: 315 s and 1.2 GB, so 256 x 256 (65536 PEs) would need hours and about 20 GB. The
#: simulator (``sim/``) models every array the config allows.
MAX_PES = 64 * 64
#: Largest buffer of the GEMM unit the RTL elaborates, in words. Elaboration cost grows
#: with the words (Amaranth gives every word its initial value, one Verilog line each):
#: an 8 x 8 unit with 65536-word A and W buffers took 97 s and 0.6 GB, while a 64 MiB A
#: buffer (8 M words) ran out of 24 GB. The presets need at most 16384.
MAX_BUFFER_WORDS = 1 << 16
#: Operand widths (``input_bits``, ``weight_bits``) the PE implements: the config's range.
OPERAND_BITS = (2, 8)

_DATAFLOWS_RTL = ("ws", "os")


def check_param(owner: str, name: str, value, lo: int, hi: int) -> None:
    """Raise ValueError naming ``owner``, ``name`` and ``[lo, hi]`` unless ``value`` is an
    integer (not a bool) in that range."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{owner}: {name} must be an integer in [{lo}, {hi}], got {value!r}")


def check_array_size(owner: str, rows: int, cols: int) -> None:
    """Raise ValueError unless a ``rows x cols`` array is within the RTL bounds: each edge
    in ``[1, MAX_EDGE]`` and at most :data:`MAX_PES` PEs."""
    check_param(owner, "rows", rows, 1, MAX_EDGE)
    check_param(owner, "cols", cols, 1, MAX_EDGE)
    if rows * cols > MAX_PES:
        raise ValueError(
            f"{owner}: rows x cols = {rows} x {cols} = {rows * cols} PEs is out of range for "
            f"the RTL; allowed at most {MAX_PES} PEs (e.g. 64 x 64): elaboration time and "
            "memory grow with the PE count (docs/rtl.md). The simulator models larger arrays"
        )


def unsigned_for(max_value: int) -> ShapeLike:
    """Narrowest unsigned shape holding ``0 .. max_value`` (at least 1 bit)."""
    if max_value < 0:
        raise ValueError(f"max_value must be >= 0, got {max_value}")
    return unsigned(max(1, max_value.bit_length()))


def row_index_shape(rows: int) -> ShapeLike:
    """Shape of a PE row index ``0 .. rows-1`` (at least 1 bit)."""
    return unsigned(max(1, ceil_log2(rows)))


def check_dataflow(dataflow: str) -> None:
    """Raise ValueError naming ``dataflow`` unless the RTL implements it (``ws``, ``os``)."""
    if dataflow not in _DATAFLOWS_RTL:
        raise ValueError(
            f"dataflow: {dataflow!r} has no RTL; the RTL implements "
            f"{' and '.join(repr(d) for d in _DATAFLOWS_RTL)} "
            "(input-stationary 'is' is modelled by sim.units.gemm only)"
        )


# ---- requantizer -------------------------------------------------------------------------------
def requant_layout(lanes: int, acc_bits: int = 32) -> data.StructLayout:
    """Input beat of :class:`edgetron.rtl.requant.Requantizer`.

    Fields (LSB first): ``acc`` ``ArrayLayout(signed(acc_bits), lanes)``, ``m``
    ``ArrayLayout(unsigned(MULT_BITS), lanes)``, ``s`` ``ArrayLayout(unsigned(SHIFT_BITS), lanes)``;
    ``lanes * (acc_bits + MULT_BITS + SHIFT_BITS)`` bits in all.
    """
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(acc_bits), lanes),
        "m": data.ArrayLayout(unsigned(MULT_BITS), lanes),
        "s": data.ArrayLayout(unsigned(SHIFT_BITS), lanes),
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
    """Per-output-channel parameters: ``bias`` signed(acc_bits), ``m`` unsigned(MULT_BITS),
    ``s`` unsigned(SHIFT_BITS) (LSB first; ``acc_bits + MULT_BITS + SHIFT_BITS`` bits)."""
    return data.StructLayout({
        "bias": signed(acc_bits),
        "m": unsigned(MULT_BITS),
        "s": unsigned(SHIFT_BITS),
    })


# ---- processing element and array --------------------------------------------------------------
def pe_act_layout(dataflow: str, input_bits: int) -> data.StructLayout:
    """Activation passed left to right from PE to PE.

    ``ws``: ``data`` signed(input_bits), ``sel`` 1 bit (weight bank the MAC uses).
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
    """Payload layouts of the five streams of :class:`~edgetron.rtl.gemm.GemmUnit`."""

    cmd: data.StructLayout
    a: data.ArrayLayout
    w: data.ArrayLayout
    ch: data.StructLayout
    o: data.ArrayLayout


def gemm_layouts(config: AcceleratorConfig, *, m_max: int, k_max: int,
                   n_max: int) -> GemmLayouts:
    """Stream payloads of the GEMM unit for ``config`` and the given shape limits.

    * ``cmd``: ``m``, ``k``, ``n`` (``unsigned_for(m_max)`` etc.), ``out32`` (1 bit);
    * ``a``: ``ArrayLayout(signed(input_bits), rows)`` -- one lane per array row;
    * ``w``: ``ArrayLayout(signed(weight_bits), cols)`` -- one lane per array column;
    * ``ch``: :func:`channel_layout` (one output channel per beat);
    * ``o``: ``ArrayLayout(signed(acc_bits), cols)`` -- int32 results, or int8 results
      sign-extended to ``acc_bits``.
    """
    return GemmLayouts(
        cmd=data.StructLayout({
            "m": unsigned_for(m_max),
            "k": unsigned_for(k_max),
            "n": unsigned_for(n_max),
            "out32": 1,
        }),
        a=data.ArrayLayout(signed(config.input_bits), config.rows),
        w=data.ArrayLayout(signed(config.weight_bits), config.cols),
        ch=channel_layout(config.acc_bits),
        o=data.ArrayLayout(signed(config.acc_bits), config.cols),
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
