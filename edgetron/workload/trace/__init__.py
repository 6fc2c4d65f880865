"""The trace: one description of a network that the simulator, the RTL compiler and reports consume.

A trace is a versioned JSON document (``{"format": "edgetron-trace", "version": 1, ...}``)
listing ops in execution order. Each op has a kind (``gemm``, ``conv2d``, ``dwconv2d``,
``maxpool``, ``avgpool``, ``softmax``, ``layernorm``, ``gelu``, ``add``, ``concat``), its
shapes (batch included), its operand and output widths in bits, where its wide internal
value is requantized, and the earlier ops that feed it. ``docs/trace-format.md`` describes
every field.

In Python a trace is a frozen :class:`Trace` of frozen op dataclasses, one class per kind
(:class:`Gemm`, :class:`Conv2d`, ...). Construction validates everything: each op checks
its own fields (types, ranges, derived output sizes, size limits) and the trace checks the
links between ops (inputs refer to earlier ops, operand shapes and widths agree with what
the producer makes, one batch size throughout). Every error is a :class:`TraceError` (an
:class:`~edgetron.errors.EdgetronError`) whose message names the op index, the op name and
the field.

User files are data: JSON is parsed with duplicate keys, ``NaN`` and ``Infinity``
rejected, no more than :data:`MAX_FILE_BYTES` bytes are read (a larger file is refused),
and every dimension and tensor size bounded (:data:`MAX_DIM`, :data:`MAX_ELEMENTS`) before
anything is computed from it. Nothing is ever evaluated or unpickled.

Saving is canonical (fixed key order, one op per line, trailing newline), so
save -> load -> save reproduces the file byte for byte.

The package, one module per concern (each imports only those above it):

* :mod:`.limits` -- format constants, size limits, field validators, values in messages;
* :mod:`.op` -- :class:`Ref`, the op base :class:`Op`, :class:`GemmShape`;
* :mod:`.matrix` -- :class:`Gemm`, :class:`Conv2d`, :class:`DwConv2d` and the pools
  :class:`MaxPool`, :class:`AvgPool` (which share the convolutions' window);
* :mod:`.vector` -- :class:`Softmax`, :class:`LayerNorm`, :class:`Gelu`, :class:`Add`,
  :class:`Concat`;
* :mod:`.kinds` -- :data:`KINDS`, the one registry of op kinds;
* :mod:`.jsonio` -- strict JSON, the document's keys, each op's JSON object, bounded reads;
* :mod:`.graph` -- :class:`Trace` (links between ops, totals, canonical JSON),
  :func:`load_trace`, :func:`save_trace`.
"""

from edgetron.errors import TraceError
from edgetron.workload.trace.graph import Trace, load_trace, save_trace
from edgetron.workload.trace.kinds import KINDS
from edgetron.workload.trace.limits import (
    ACC_BITS,
    ACTIVATIONS,
    BIAS_BITS,
    FORMAT,
    HEAD_LAYOUTS,
    MAX_DESCRIPTION,
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_FILE_BYTES,
    MAX_NAME,
    MAX_OPS,
    REQUANT,
    VERSION,
)
from edgetron.workload.trace.matrix import AvgPool, Conv2d, DwConv2d, Gemm, MaxPool
from edgetron.workload.trace.op import GemmShape, Op, Ref
from edgetron.workload.trace.vector import Add, Concat, Gelu, LayerNorm, Softmax

__all__ = [
    "ACC_BITS",
    "ACTIVATIONS",
    "BIAS_BITS",
    "FORMAT",
    "HEAD_LAYOUTS",
    "KINDS",
    "MAX_DESCRIPTION",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_NAME",
    "MAX_OPS",
    "REQUANT",
    "VERSION",
    "Add",
    "AvgPool",
    "Concat",
    "Conv2d",
    "DwConv2d",
    "Gelu",
    "Gemm",
    "GemmShape",
    "LayerNorm",
    "MaxPool",
    "Op",
    "Ref",
    "Softmax",
    "Trace",
    "TraceError",
    "load_trace",
    "save_trace",
]
