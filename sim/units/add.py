"""The add unit: residual adds and K-split partial sums; cycles, events and kernel.

Timing (``B(n) = ceil(n / lanes)``):

* residual add over ``n`` output elements, one pass: the RTL unit's
  ``edgetron.hw.add.add_cycles``, ``B(n) + ADD_LATENCY`` (``rtl/add.py:AddUnit``,
  :func:`add_cycles`);
* partial-sum accumulation of a GEMM whose K is split over several GEMM-unit calls
  (``chunks`` int32 partial tiles of ``n`` elements, summed, then requantized; costed
  by :mod:`edgetron.sim.tiling`): ``chunks * B(n) + PSUM_LATENCY + REQUANT_LATENCY``
  (:func:`psum_accumulate_cycles`). **Modelled, not RTL**: ``AddUnit`` adds two int8
  tensors at two scales; an int32 accumulate pass has no RTL yet, and
  :data:`PSUM_LATENCY` is a design estimate (three register stages).

The functional kernel :func:`residual_elems` computes golden's
``saturate(round_shift(a * m_a + b * m_b, s))`` on its
:class:`~edgetron.golden.add.ResidualConstants`, clamped by the fused activation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetron.config import SimParams
from edgetron.golden.add import residual_add, residual_constants
from edgetron.golden.quant import activation_bounds, activation_clamp
from edgetron.hw import add as hw
from edgetron.hw.gemm import REQUANT_LATENCY
from edgetron.workload import Add, Op

from ..memory import VectorWork
from ..opdata import OpData, OpQuant, calibrate, deployed_scale, int8_values, quant_array
from ..records import F_ELEMS
from .pipeline import STAGE, beats, round_shift

__all__ = [
    "ADD_ADDS_PER_ELEMENT",
    "ADD_MULS_PER_ELEMENT",
    "PSUM_LATENCY",
    "add_cycles",
    "int64_bounds",
    "prepare",
    "psum_accumulate_cycles",
    "record",
    "residual_elems",
    "run",
    "scratch_bytes",
    "work",
]

#: An int32 partial-sum accumulate pass (no RTL; a design estimate): read the running sum,
#: add the partial tile, register the result (three stages).
PSUM_LATENCY = 3 * STAGE
#: ``a * m_a`` and ``b * m_b``.
ADD_MULS_PER_ELEMENT = 2
#: The sum and the rounding add.
ADD_ADDS_PER_ELEMENT = 2


@njit(cache=True)
def add_cycles(p, elements):
    """Cycles of the residual-add unit for ``elements`` output values (one pass): the RTL's
    ``edgetron.hw.add.add_cycles(p.vector_lanes, elements)``."""
    return hw.add_cycles(p.vector_lanes, elements)


@njit(cache=True)
def psum_accumulate_cycles(p, elements, chunks):
    """Cycles to sum ``chunks`` int32 partial-sum tiles of ``elements`` values and requantize.

    Used when a GEMM's reduction length does not fit the GEMM unit's buffers and is split
    over several calls (:mod:`edgetron.sim.tiling`): the vector unit streams every partial
    tile once (modelled, not RTL: module docstring).
    """
    return chunks * beats(elements, p.vector_lanes) + PSUM_LATENCY + REQUANT_LATENCY


@njit(cache=True)
def work(p, rec):
    """The :class:`~edgetron.sim.memory.VectorWork` of a residual add: it streams."""
    elems = rec[F_ELEMS]
    return VectorWork(add_cycles(p, elems), 0, 0.0, 0.0,
                      float(elems * ADD_MULS_PER_ELEMENT), float(elems * ADD_ADDS_PER_ELEMENT))


@njit(cache=True)
def residual_elems(a, b, rc, lo, hi, out):
    """``clamp(round_shift(a * m_a + b * m_b, s), lo, hi)`` element-wise.

    ``rc`` is golden's :class:`~edgetron.golden.add.ResidualConstants` ``(m_a, m_b,
    s)``, as it is; ``[lo, hi]`` the int8 range intersected with the fused activation's
    bounds.
    """
    fa = a.reshape(a.size)
    fb = b.reshape(b.size)
    res = out.reshape(out.size)
    for i in range(fa.size):
        res[i] = min(max(round_shift(fa[i] * rc.m_a + fb[i] * rc.m_b, rc.s), lo), hi)


# ------------------------------------------------------------------------------------------
# The add op kind: flat record, limits, functional data and run
# ------------------------------------------------------------------------------------------
def record(op: Add, rec: list[int]) -> None:
    """No fields beyond the common ones (the output elements)."""


def int64_bounds(op: Add, edge: int) -> tuple[tuple[str, str, int], ...]:
    """Its cycles and events are at most ``4*elements + 16``."""
    return (("its cycles and events", "4*elements + 16", 4 * op.out_elements + 16),)


def prepare(op: Add, ops_in: list[np.ndarray], scales: list[float],
            rng: np.random.Generator, q: OpQuant | None = None) -> OpData:
    """The second addend (an operand, or an int8 constant broadcast over the batch),
    golden's constants for the output scale, and its output.

    Seeded: the constant is drawn at the input's scale and the output scale calibrated on
    the real sum. Deployed (``q``): the model's int8 constant at its own scale, and the
    calibrated output scale.

    Raises
    ------
    ValueError
        ``requant = "none"``: golden has no int32 residual add.
    """
    if op.requant == "none":
        raise ValueError("functional mode: an add with requant 'none' has no golden kernel")
    x = ops_in[0]
    if op.weights and q is not None:
        const = quant_array(q, "weight", op.shape[1:]).astype(np.int64)
        b = np.broadcast_to(const, x.shape).copy()
        s_b = float(quant_array(q, "weight_scale", ()))
    elif op.weights:
        const = int8_values(rng, op.shape[1:])
        b = np.broadcast_to(const, x.shape).copy()
        s_b = scales[0]
    else:
        b = ops_in[1]
        s_b = scales[1]
    out_scale = calibrate(x * scales[0] + b * s_b) if q is None else deployed_scale(q)
    rc = residual_constants(scales[0], s_b, out_scale)
    y = activation_clamp(residual_add(x, b, rc.m_a, rc.m_b, rc.s), op.act, out_scale,
                         op.out_bits)
    lo, hi = activation_bounds(op.act, out_scale, op.out_bits)
    return OpData(ops_in, {"b": b, "rc": rc, "lo": lo, "hi": hi}, y, out_scale)


def run(op: Add, d: OpData, p: SimParams,
        tile: tuple[int, int, int]) -> tuple[np.ndarray, int, bool]:
    """Run :func:`residual_elems`: ``(output, 0 calls, True)``."""
    out = np.empty(op.out_shape, dtype=np.int64)
    prm = d.params
    residual_elems(d.operands[0], prm["b"], prm["rc"], prm["lo"], prm["hi"], out)
    return out, 0, True


def scratch_bytes(op: Op) -> int:
    """Golden's temporaries and the second addend: about eight int64 arrays of the op's size."""
    return 8 * 8 * op.out_elements
