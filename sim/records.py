"""The two array layouts every simulator kernel shares: the flat op record and the result row.

A trace is flattened once (:func:`edgetron.sim.engine.flatten`) into one int64 *record*
per op, with the fields of :data:`FIELDS`; each unit module fills the fields of its own
kinds (``record``) and reads them back in its Numba cost function. The engine's kernels
write one float64 *result row* per op, with the columns of :data:`COLUMNS`; a kernel that
cannot run an op writes one of the error codes below into ``error`` and the engine turns
it into an :class:`edgetron.errors.SimulationError` naming the op and the buffer.
"""

from __future__ import annotations

__all__ = [
    "ARRAY_UNITS",
    "COLUMNS",
    "ERR_NONE",
    "ERR_NO_MODEL",
    "ERR_ROW_BUFFER",
    "ERR_TILE_IFMAP",
    "ERR_TILE_OFMAP",
    "ERR_TILE_WEIGHT",
    "FIELDS",
    "NCOL",
    "NFIELD",
]

#: Fields of a flat op record (int64), in column order. Common to every kind: ``kind``
#: (the kind's code, :data:`edgetron.sim.units.KIND_CODES`), ``macs``, ``elements`` (of
#: the output), ``in_bytes``, ``b_bytes`` (weights), ``param_bytes`` (biases),
#: ``out_bytes``, ``a_bytes`` and ``out_bytes_each`` (bytes of one input and one output
#: element). Matrix ops: ``count, m, k, n`` (the op's GEMM view), ``out32``,
#: ``b_bytes_each``, and for convolutions ``is_conv`` and the window geometry ``img, h,
#: w, cg, out_h, out_w, r, s, stride_h``, ``stride_w, pad_t, pad_b, pad_l, pad_r`` (the
#: depthwise mode's geometry, :func:`edgetron.sim.units.conv.dw_costs`); ``is_conv`` is 2
#: for a depthwise convolution with channel multiplier 1. Softmax and LayerNorm:
#: ``rows, cols``. Pools:
#: ``img, h, w, cg`` (channels), ``out_h, out_w, r, s, stride_h``, ``stride_w, pad_t,
#: pad_l``.
FIELDS = (
    "kind", "count", "m", "k", "n", "out32", "a_bytes", "b_bytes_each", "out_bytes_each", "macs",
    "is_conv", "img", "h", "w", "cg", "out_h", "out_w", "r", "s", "stride_h",
    "rows", "cols", "elements", "in_bytes", "b_bytes", "param_bytes", "out_bytes",
    "stride_w", "pad_t", "pad_b", "pad_l", "pad_r",
)
(F_KIND, F_COUNT, F_M, F_K, F_N, F_OUT32, F_A_B, F_W_B, F_OUT_B, F_MACS,
 F_IS_CONV, F_IMG, F_H, F_W, F_CG, F_OH, F_OW, F_R, F_S, F_SH,
 F_ROWS, F_COLS, F_ELEMS, F_IN_BYTES, F_B_BYTES, F_PARAM_BYTES, F_OUT_BYTES,
 F_SW, F_PT, F_PB, F_PL, F_PR) = range(len(FIELDS))
NFIELD = len(FIELDS)

#: Columns of the per-op result row (float64), in order.
COLUMNS = (
    "cycles", "compute_cycles", "vector_cycles", "stall_cycles", "macs",
    "dram_read_bytes", "dram_write_bytes", "dram_a_bytes", "dram_b_bytes",
    "dram_param_bytes", "dram_out_bytes", "dram_psum_bytes",
    "sram_read_bytes", "sram_write_bytes",
    "ifmap_read_bytes", "ifmap_write_bytes", "weight_read_bytes", "weight_write_bytes",
    "ofmap_read_bytes", "ofmap_write_bytes", "param_read_bytes", "param_write_bytes",
    "ev_mac_int8", "ev_add_int32", "ev_mul_int32", "ev_reg_byte",
    "energy_pj",
    "calls", "tile_m", "tile_k", "tile_n", "double_buffered", "k_chunks", "array_unit",
    "error", "error_need", "error_have",
)
NCOL = len(COLUMNS)
(C_CYCLES, C_COMPUTE, C_VECTOR, C_STALL, C_MACS,
 C_DRAM_RD, C_DRAM_WR, C_DRAM_A, C_DRAM_B, C_DRAM_PARAM, C_DRAM_OUT, C_DRAM_PSUM,
 C_SRAM_RD, C_SRAM_WR,
 C_IFMAP_RD, C_IFMAP_WR, C_WEIGHT_RD, C_WEIGHT_WR, C_OFMAP_RD, C_OFMAP_WR, C_PARAM_RD,
 C_PARAM_WR,
 C_EV_MAC, C_EV_ADD, C_EV_MUL, C_EV_REG,
 C_ENERGY,
 C_CALLS, C_TILE_M, C_TILE_K, C_TILE_N, C_DB, C_KCHUNKS, C_ARRAY_UNIT,
 C_ERR, C_ERR_NEED, C_ERR_HAVE) = range(NCOL)

#: The hardware units an op of the systolic array can run on, by their one name (the unit
#: homes: ``edgetron.sim.units.<name>``, the RTL export of that name); the ``array_unit``
#: column of an array op holds the index: the GEMM unit (a GEMM, or a convolution as
#: im2col GEMM calls), the array's depthwise mode (``conv``), the ConvUnit
#: (``conv_dense``). Vector ops leave the column 0 (their unit is their kind's).
ARRAY_UNITS = ("gemm", "conv", "conv_dense")
AU_GEMM, AU_DEPTHWISE, AU_CONV_DENSE = range(len(ARRAY_UNITS))

#: Error codes of the cost kernels (``error`` column): none; a vector op's row or line
#: buffer does not fit the ofmap buffer; no GEMM-unit call fits, because the ifmap,
#: weight or ofmap buffer holds less than one word of the array (``error_need`` the
#: word's bytes, ``error_have`` the buffer's); a kind that
#: :func:`edgetron.sim.units.vector_work` has no branch for.
ERR_NONE = 0
ERR_ROW_BUFFER = 1
ERR_TILE_IFMAP = 2
ERR_TILE_WEIGHT = 3
ERR_TILE_OFMAP = 4
ERR_NO_MODEL = 5
