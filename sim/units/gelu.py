"""The GELU unit: cycles, events and functional kernel (golden/gelu.py).

Timing (:func:`gelu_cycles`): the RTL unit's, ``edgetron.hw.gelu.gelu_cycles``
(``rtl/gelu.py:GeluUnit``): one pass over ``n`` elements, ``ceil(n / lanes) +
GELU_LATENCY`` (eight i-GELU stages and the six-stage requantizer, ``REQUANT_LATENCY``).
The functional kernels run golden's i-GELU steps on its :class:`~edgetron.golden.gelu.GeluConstants`
(:func:`gelu_elems`, int32 output) or, with the dyadic requantization to int8 after
them, on its
:class:`~edgetron.golden.gelu.GeluInt8Constants` (:func:`gelu_int8_elems`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.gelu import (
    gelu_apply,
    gelu_constants,
    gelu_int8_apply,
    gelu_int8_constants,
)
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw import gelu as hw
from edgetron.workload import Gelu, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, calibrate, deployed_scale
from ..records import F_ELEMS
from .pipeline import pow2_rescale, requantize, round_shift

__all__ = [
    "GELU_ADDS_PER_ELEMENT",
    "GELU_MULS_PER_ELEMENT",
    "gelu_cycles",
    "gelu_elems",
    "gelu_int8_elems",
    "int64_bounds",
    "prepare",
    "record",
    "run",
    "scratch_bytes",
    "work",
]

#: ``(clip - u)**2``, ``q * rt`` and the requantization product.
GELU_MULS_PER_ELEMENT = 3
#: ``clip - u``, ``q_one - w``, ``q_one + erf``.
GELU_ADDS_PER_ELEMENT = 3


@njit(cache=True)
def gelu_cycles(p, elements):
    """Cycles of the GELU unit for ``elements`` values (one pass): the RTL's
    ``edgetron.hw.gelu.gelu_cycles(p.vector_lanes, elements)``."""
    return hw.gelu_cycles(p.vector_lanes, elements)


@njit(cache=True)
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a GELU op: it streams."""
    elems = rec[F_ELEMS]
    return VectorWork(gelu_cycles(p, elems), 0, 0.0, 0.0,
                      float(elems * GELU_MULS_PER_ELEMENT),
                      float(elems * GELU_ADDS_PER_ELEMENT))


@njit(cache=True)
def _gelu(q, c):
    """i-GELU of one value (golden/gelu.py steps 1-7) with ``GeluConstants`` ``c``."""
    u = min(pow2_rescale(min(abs(q), c.clamp_in), c.pre_shift), c.clip)
    w = (c.clip - u) * (c.clip - u)
    sgn = 1 if q > 0 else (-1 if q < 0 else 0)
    r = c.q_one + sgn * (c.q_one - w)
    return round_shift(q * (r >> c.erf_shift), c.out_shift)


@njit(cache=True)
def gelu_elems(x, c, out):
    """i-GELU of every element of ``x`` into ``out`` (int32 values).

    ``c`` is golden's :class:`~edgetron.golden.gelu.GeluConstants`, as it is.
    """
    flat = x.reshape(x.size)
    res = out.reshape(out.size)
    for i in range(flat.size):
        res[i] = _gelu(flat[i], c)


@njit(cache=True)
def gelu_int8_elems(x, c8, out):
    """i-GELU of every element, then golden's dyadic requantization to int8.

    ``c8`` is golden's :class:`~edgetron.golden.gelu.GeluInt8Constants`, as it is.
    """
    flat = x.reshape(x.size)
    res = out.reshape(out.size)
    for i in range(flat.size):
        res[i] = requantize(_gelu(flat[i], c8.gelu), c8.m, c8.s, INT8_MIN, INT8_MAX)


# ------------------------------------------------------------------------------------------
# The gelu op kind: flat record, limits, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Gelu, rec: list[int]) -> None:
    """No fields beyond the common ones (the output elements)."""


def int64_bounds(op: Gelu, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles and events are at most ``4*elements + 16``."""
    return (("its cycles and events", "4*elements + 16", 4 * op.out_elements + 16),)


def prepare(op: Gelu, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """Golden's constants and output: int32 for ``requant = "none"``, else int8 at a scale
    calibrated on the real GELU of the input's positive part (a deployed model's
    calibrated scale with ``q``)."""
    x = ops_in[0]
    if op.requant == "none":
        consts = gelu_constants(scales[0], op.in_bits)
        return OpData(ops_in, {"c": consts}, gelu_apply(x, consts), consts.out_scale)
    if q is None:
        out_scale = calibrate(np.maximum(x.astype(np.float64) * scales[0], 0.0))
    else:
        out_scale = deployed_scale(q)
    c8 = gelu_int8_constants(scales[0], out_scale, op.in_bits)
    return OpData(ops_in, {"c8": c8}, gelu_int8_apply(x, c8), out_scale)


def run(op: Gelu, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run the GELU kernel on every element: ``(output, 0 calls, True)``."""
    out = np.empty(op.out_shape, dtype=np.int64)
    if op.requant == "none":
        gelu_elems(d.operands[0], d.params["c"], out)
    else:
        gelu_int8_elems(d.operands[0], d.params["c8"], out)
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """Golden's temporaries: about twelve int64 arrays of the op's size."""
    return 12 * 8 * op.out_elements
