"""The memory system: on-chip buffers, the DMA and DRAM, and the accounting of vector ops.

The hardware (docs/simulator.md has the picture): the GEMM unit's three local SRAMs *are*
the config's buffers -- ``ifmap_sram_bytes`` holds operand A, ``weight_sram_bytes``
operand B, ``ofmap_sram_bytes`` the int32 accumulators (``rtl/gemm/``; limits in
:func:`edgetron.hw.gemm.gemm_fits`). A DMA engine moves data between DRAM
(``dram_bytes_per_cycle``) and the units. Ops run one after the other; every activation
goes to DRAM between ops (as in SCALE-Sim), weights and parameters come from DRAM. How a
matrix op is cut into GEMM-unit calls and what those move is :mod:`edgetron.sim.tiling`.

Vector ops (:func:`vector_costs`)
---------------------------------
The vector units stream their operands from DRAM and their results back. Each unit
module describes one op as a :class:`VectorWork` (its cycles, the bytes of its row or
line buffer, its passes, its SRAM traffic and arithmetic); this module does the rest.
Softmax and LayerNorm keep a row, pools ``r`` input rows, in the ofmap buffer (the GEMM
unit is idle while a vector op runs); with double buffering two rows must fit for the
next row's load to overlap. A row that does not fit at all is an error naming the op and
the buffer (:data:`edgetron.sim.records.ERR_ROW_BUFFER`). The DRAM stall is
:func:`vector_stall`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .records import (
    C_CYCLES,
    C_DB,
    C_DRAM_A,
    C_DRAM_B,
    C_DRAM_OUT,
    C_DRAM_PARAM,
    C_DRAM_RD,
    C_DRAM_WR,
    C_ERR,
    C_ERR_HAVE,
    C_ERR_NEED,
    C_EV_ADD,
    C_EV_MUL,
    C_OFMAP_RD,
    C_OFMAP_WR,
    C_SRAM_RD,
    C_SRAM_WR,
    C_STALL,
    C_VECTOR,
    ERR_NO_MODEL,
    ERR_ROW_BUFFER,
    F_B_BYTES,
    F_IN_BYTES,
    F_OUT_BYTES,
    F_PARAM_BYTES,
)

__all__ = ["VectorWork", "vector_costs", "vector_stall"]


class VectorWork(NamedTuple):
    """What a vector unit does for one op (a unit module's ``work`` returns it).

    Attributes
    ----------
    cycles : int
        The unit's own cycles (its cycle function).
    buffer_bytes : int
        Bytes of the ofmap buffer the op keeps (a row, or a pool's line buffer); 0 for
        an op that streams.
    streams : int
        1 when the DMA may overlap the op's whole input and output with it (a single
        pass, or a pool); 0 for a multi-pass row op, whose input streams during its
        first pass and output during its last unless two rows fit and double buffering
        is on.
    first_pass, last_pass : float
        Cycles of the first and the last pass over the data (for ``streams = 0``).
    sram_read, sram_write : float
        Bytes read from and written to the ofmap buffer.
    muls, adds : float
        int32 multiplications and additions (energy events).
    """

    cycles: int
    buffer_bytes: int
    streams: int
    first_pass: float
    last_pass: float
    sram_read: float
    sram_write: float
    muls: float
    adds: float


@njit(cache=True)
def vector_stall(p, overlap, vec, first_pass, last_pass, in_bytes, out_bytes):
    """DRAM stall cycles of a vector op (float).

    ``overlap`` 1 (double-buffered rows, or a single-pass streaming op):
    ``max(0, (in + out)/BW - vec)``; 0: the input streams during the first pass and the
    output during the last, ``max(0, in/BW - first_pass) + max(0, out/BW - last_pass)``.
    """
    bw = p.dram_bytes_per_cycle
    if overlap == 1:
        return max(0.0, (in_bytes + out_bytes) / bw - vec)
    return max(0.0, in_bytes / bw - first_pass) + max(0.0, out_bytes / bw - last_pass)


@njit(cache=True)
def vector_costs(p, rec, work, row):
    """Account a vector op (flat record ``rec``, its :class:`VectorWork`) into ``row``.

    DRAM: the op's operands, weights and parameters in, its output out. A buffer larger
    than the ofmap buffer sets :data:`~edgetron.sim.records.ERR_ROW_BUFFER` (need and
    have in the error columns) and nothing else is costed; a work of ``cycles < 0`` (a
    kind without a model) sets :data:`~edgetron.sim.records.ERR_NO_MODEL`.
    """
    if work.cycles < 0:
        row[C_ERR] = ERR_NO_MODEL
        return
    in_bytes = float(rec[F_IN_BYTES] + rec[F_B_BYTES] + rec[F_PARAM_BYTES])
    out_bytes = float(rec[F_OUT_BYTES])
    need = work.buffer_bytes
    row[C_OFMAP_WR] = work.sram_write
    row[C_OFMAP_RD] = work.sram_read
    row[C_EV_MUL] = work.muls
    row[C_EV_ADD] = work.adds
    if need > p.ofmap_sram_bytes:
        row[C_ERR] = ERR_ROW_BUFFER
        row[C_ERR_NEED] = need
        row[C_ERR_HAVE] = p.ofmap_sram_bytes
        return
    overlap = 1
    if work.streams == 0 and not (p.double_buffer == 1 and 2 * need <= p.ofmap_sram_bytes):
        overlap = 0
    vec = work.cycles
    stall = vector_stall(p, overlap, float(vec), work.first_pass, work.last_pass, in_bytes,
                         out_bytes)
    total = np.ceil(vec + stall)
    row[C_VECTOR] = vec
    row[C_CYCLES] = total
    row[C_STALL] = total - vec
    row[C_DRAM_A] = float(rec[F_IN_BYTES])
    row[C_DRAM_B] = float(rec[F_B_BYTES])
    row[C_DRAM_PARAM] = float(rec[F_PARAM_BYTES])
    row[C_DRAM_OUT] = out_bytes
    row[C_DRAM_RD] = in_bytes
    row[C_DRAM_WR] = out_bytes
    row[C_SRAM_RD] = row[C_OFMAP_RD]
    row[C_SRAM_WR] = row[C_OFMAP_WR]
    row[C_DB] = overlap
