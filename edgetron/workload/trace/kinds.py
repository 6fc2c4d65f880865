"""The registry of op kinds: THE list the trace reader, the simulator and the reports use.

A new kind is a class in :mod:`.matrix` or :mod:`.vector` added here; the order is the
order in which ``docs/trace-format.md`` lists the kinds and reports list them.
"""

from __future__ import annotations

from edgetron.workload.trace.matrix import AvgPool, Conv2d, DwConv2d, Gemm, MaxPool
from edgetron.workload.trace.op import Op
from edgetron.workload.trace.vector import Add, Concat, Gelu, LayerNorm, Softmax

__all__ = ["KINDS"]

#: Op classes by kind, in the order the docs list them.
KINDS: dict[str, type[Op]] = {
    cls.kind: cls
    for cls in (Gemm, Conv2d, DwConv2d, MaxPool, AvgPool, Softmax, LayerNorm, Gelu, Add, Concat)
}
