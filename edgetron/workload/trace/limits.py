"""Constants, size limits and the field validators every op and the trace use.

Each validator checks one JSON field and raises :class:`~edgetron.errors.TraceError`
in the style of ``docs/trace-format.md`` (section *Error messages*): ``<field>:
<problem>``, the value shown short (:func:`show_value`), the allowed range or choices
named. Callers prefix the op, the trace and the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from edgetron.errors import LongInt, TraceError, brief, int_digits, show_value
from edgetron.golden.intops import INT32_MAX, INT32_MIN, signed_bits
from edgetron.golden.quant import ACTIVATIONS

__all__ = [
    "ACC_BITS",
    "ACC_BITS_RANGE",
    "ACTIVATIONS",
    "BIAS_BITS",
    "BITS_RANGE",
    "FORMAT",
    "HEAD_LAYOUTS",
    "MAX_DESCRIPTION",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_NAME",
    "MAX_OPS",
    "REQUANT",
    "VERSION",
    "LongInt",
    "brief",
    "check_act",
    "check_bool",
    "check_choice",
    "check_int",
    "check_ints",
    "check_mac_options",
    "check_name",
    "conv_out",
    "int_digits",
    "num_bytes",
    "num_elements",
    "op_label",
    "show_value",
]

#: Value of the document's ``format`` field.
FORMAT = "edgetron-trace"
#: The trace format version this code reads and writes.
VERSION = 1
#: Largest value of any single dimension (2**24).
MAX_DIM = 1 << 24
#: Largest number of elements in any one tensor (input, output or weights) of an op.
MAX_ELEMENTS = 10**10
#: Largest number of ops in a trace.
MAX_OPS = 100_000
#: Largest trace or CSV file read, in bytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Longest op or trace name, in characters.
MAX_NAME = 200
#: Longest trace description, in characters.
MAX_DESCRIPTION = 10_000
#: Width of the int32 accumulator of every matrix product in the builders, bits (the
#: default ``acc_bits``: int8 operands, int32 accumulation, see ``docs/quantization.md``).
ACC_BITS = signed_bits(INT32_MIN, INT32_MAX)
#: Width of every bias value in bits (biases are int32 at the accumulator scale).
BIAS_BITS = ACC_BITS
#: Where an op's wide internal value becomes its ``out_bits``-wide output:
#: ``none`` = no rescaling (the output is the exact internal value, e.g. an int32
#: accumulator or a max of int8 values), ``tensor`` = one dyadic multiplier for the whole
#: output, ``channel`` = one dyadic multiplier per output channel (per-channel weights).
REQUANT = ("none", "tensor", "channel")
#: How the ``count`` products of an activation x activation gemm lie in an operand's (or
#: the output's) per-sample matrix: ``rows`` = product h is the h-th block of rows
#: (``[count * rows, cols]``, a row-major ``[count, rows, cols]``), ``cols`` = the h-th
#: block of columns (``[rows, count * cols]``: attention heads side by side in the
#: features).
HEAD_LAYOUTS = ("rows", "cols")
# The activations an op may fuse into its requantization (a clamp, the ``act`` field) are
# golden's :data:`~edgetron.golden.quant.ACTIVATIONS`, re-exported here.

#: Allowed operand, weight and output widths, bits.
BITS_RANGE = (2, 32)
#: Allowed accumulator widths, bits.
ACC_BITS_RANGE = (8, 64)

def op_label(index: int, name: Any) -> str:
    """Where an op is, for messages: ``op 4 ('blocks.0.qkv')``, or ``op 4`` without a name."""
    if not isinstance(name, str):
        return f"op {index}"
    return f"op {index} ({name!r})" if len(name) <= MAX_NAME else f"op {index} ({brief(name)})"


def check_int(value: Any, field: str, lo: int = 1, hi: int = MAX_DIM) -> int:
    """``value`` if it is an integer (not a bool) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceError(f"{field}: expected an integer in [{lo}, {hi}], got {show_value(value)}")
    if not lo <= value <= hi:
        raise TraceError(f"{field}: {brief(value)} is out of range; allowed [{lo}, {hi}]")
    return value


def check_bool(value: Any, field: str) -> bool:
    """``value`` if it is true or false (not an integer)."""
    if not isinstance(value, bool):
        raise TraceError(f"{field}: expected true or false, got {show_value(value)}")
    return value


def check_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise TraceError(f"{field}: {brief(value)} is not one of {', '.join(choices)}")
    return value


def check_name(value: Any, field: str) -> str:
    """``value`` if it is a non-empty printable string of at most :data:`MAX_NAME` characters."""
    if not isinstance(value, str) or not value.strip():
        raise TraceError(f"{field}: expected a non-empty string, got {show_value(value)}")
    if len(value) > MAX_NAME or not value.isprintable():
        raise TraceError(
            f"{field}: expected at most {MAX_NAME} printable characters, got {show_value(value)}"
        )
    return value


def check_ints(value: Any, field: str, lo_len: int, hi_len: int) -> tuple[int, ...]:
    """A list of ``lo_len`` to ``hi_len`` dimensions (each in ``[1, MAX_DIM]``) as a tuple."""
    if not isinstance(value, (list, tuple)) or not lo_len <= len(value) <= hi_len:
        raise TraceError(
            f"{field}: expected a list of {lo_len} to {hi_len} integers, got {show_value(value)}"
        )
    return tuple(check_int(v, f"{field}[{i}]") for i, v in enumerate(value))


def check_act(op: Any) -> None:
    """An op's ``act``: one of :data:`ACTIVATIONS`, and ``none`` unless it requantizes."""
    check_choice(op.act, "act", ACTIVATIONS)
    if op.act != "none" and op.requant == "none":
        raise TraceError(
            f"act: {op.act!r} is a clamp fused into the requantization, but requant is "
            "'none'; requantize ('tensor' or 'channel') or use act 'none'"
        )


def check_mac_options(op: Any) -> None:
    """A matrix op's accumulator, bias, activation and output width, and how they agree."""
    check_int(op.acc_bits, "acc_bits", *ACC_BITS_RANGE)
    check_bool(op.bias, "bias")
    check_act(op)
    if op.requant == "none" and op.out_bits != op.acc_bits:
        raise TraceError(
            f"out_bits: {op.out_bits} needs a requantization; with requant 'none' the "
            f"output is the accumulator itself (out_bits = acc_bits = {op.acc_bits})"
        )
    if op.out_bits > op.acc_bits:
        raise TraceError(f"out_bits: {op.out_bits} exceeds acc_bits {op.acc_bits}")


def num_elements(shape: Sequence[int]) -> int:
    """Elements of a tensor of ``shape``."""
    return math.prod(shape)


def num_bytes(elements: int, bits: int) -> int:
    """Bytes of ``elements`` values ``bits`` wide, packed: ``ceil(elements * bits / 8)``."""
    return (elements * bits + 7) // 8


def conv_out(size: int, kernel: int, stride: int, pad: int, field: str) -> int:
    """Windows of ``kernel`` at ``stride`` over ``size + pad``; the kernel must fit."""
    padded = size + pad
    if kernel > padded:
        raise TraceError(
            f"{field}: kernel size {kernel} exceeds the padded input size {padded}"
        )
    return (padded - kernel) // stride + 1
