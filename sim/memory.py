"""The memory system: on-chip buffers, the DMA and DRAM, and the accounting of vector ops.

The hardware (docs/simulator.md has the picture): the GEMM unit's three local SRAMs *are*
the config's buffers -- ``ifmap_sram_bytes`` holds operand A, ``weight_sram_bytes``
operand B, ``ofmap_sram_bytes`` the int32 accumulators (``rtl/gemm/``; limits in
:func:`edgetron.hw.gemm.gemm_fits`). A DMA engine moves data between DRAM and the units.
Ops run one after the other; every activation goes to DRAM between ops (as in
SCALE-Sim), weights and parameters come from DRAM. How a matrix op is cut into GEMM-unit
calls and what those move is :mod:`edgetron.sim.tiling`.

DRAM ports (:func:`port_cycles`)
--------------------------------
The config's ``dram_ports`` says how the DRAM interfaces are organised; every transfer of
an op is one of three streams: *ifmap* (activations in: operand A, a vector op's inputs,
partial sums read back), *filter* (weights and per-channel parameters or constants in)
and *ofmap* (results out). ``shared``: one port of ``dram_bytes_per_cycle`` for all three;
``read_write``: ifmap and filter share the read port, ofmap has the write port;
``per_stream``: one port per stream. Ports work at the same time, each at its own
bandwidth; a port's transfers take ``bytes / bandwidth`` cycles.

Vector ops (:func:`vector_costs`)
---------------------------------
The vector units stream their operands from DRAM and their results back. Each unit
module describes one op as a :class:`VectorWork` (its cycles, the bytes of its row rings
or line buffer, its SRAM traffic and arithmetic); this module does the rest. Softmax and
LayerNorm keep their row rings, pools their line buffer, in the ofmap buffer (the GEMM
unit is idle while a vector op runs); a buffer that does not fit is an error naming the
op and the buffer (:data:`edgetron.sim.records.ERR_ROW_BUFFER`). Every vector unit
streams (its rows overlap in the RTL), so the DMA overlaps all of an op's transfers with
it; the DRAM stall is :func:`vector_stall`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edgetron.config import DRAM_PORTS

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

__all__ = ["DRAM_READ_WRITE", "DRAM_SHARED", "VectorWork", "port_cycles", "vector_costs",
           "vector_stall"]

#: ``SimParams.dram_mode`` codes (the one table is ``edgetron.config.DRAM_PORTS``).
DRAM_SHARED = DRAM_PORTS["shared"]
DRAM_READ_WRITE = DRAM_PORTS["read_write"]


class VectorWork(NamedTuple):
    """What a vector unit does for one op (a unit module's ``work`` returns it).

    Attributes
    ----------
    cycles : int
        The unit's own cycles (its cycle function).
    buffer_bytes : int
        Bytes of the ofmap buffer the op keeps (row rings, or a pool's line buffer); 0
        for an element-wise op.
    sram_read, sram_write : float
        Bytes read from and written to the ofmap buffer.
    muls, adds : float
        int32 multiplications and additions (energy events).
    """

    cycles: int
    buffer_bytes: int
    sram_read: float
    sram_write: float
    muls: float
    adds: float


@njit(cache=True)
def port_cycles(p, ifmap, filt, ofmap):
    """Cycles each DRAM port needs for ``ifmap``, ``filter`` and ``ofmap`` bytes (floats).

    Returns ``(in_only, out_only, both)``: the largest time of a port that carries only
    inputs, of one that carries only outputs, and of one that carries both (0.0 where
    the mode has no such port). ``shared``: one port carries both; ``read_write``: the
    read port the inputs, the write port the outputs; ``per_stream``: ifmap and filter
    each on its own input port.
    """
    if p.dram_mode == DRAM_SHARED:
        return 0.0, 0.0, (ifmap + filt + ofmap) / p.dram_bytes_per_cycle
    if p.dram_mode == DRAM_READ_WRITE:
        return (ifmap + filt) / p.dram_read_bytes_per_cycle, \
            ofmap / p.dram_write_bytes_per_cycle, 0.0
    return max(ifmap / p.dram_ifmap_bytes_per_cycle, filt / p.dram_filter_bytes_per_cycle), \
        ofmap / p.dram_ofmap_bytes_per_cycle, 0.0


@njit(cache=True)
def vector_stall(p, vec, ifmap, filt, ofmap):
    """DRAM stall cycles of a streaming vector op of ``vec`` cycles (float): ``ifmap``,
    ``filt`` bytes in, ``ofmap`` out.

    Every port works while the op runs: ``max(0, T - vec)`` with ``T`` the slowest port's
    time (:func:`port_cycles`; one shared port: ``(in + out) / BW``).
    """
    t_in, t_out, t_both = port_cycles(p, ifmap, filt, ofmap)
    return max(0.0, max(t_in, t_out, t_both) - vec)


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
    act_bytes = float(rec[F_IN_BYTES] + rec[F_B_BYTES])
    const_bytes = float(rec[F_PARAM_BYTES])
    in_bytes = act_bytes + const_bytes
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
    vec = work.cycles
    stall = vector_stall(p, float(vec), act_bytes, const_bytes, out_bytes)
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
    row[C_DB] = 1                                  # loads overlap the op (it streams)
