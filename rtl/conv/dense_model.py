"""Host side of the ConvUnit: the call, its shape check, the stream protocol, the timing
model as data. No hardware here; the numbers are :mod:`edgetron.hw.conv`'s.

Beat order (``R`` rows, ``C`` columns, ``cb = c//^R``, ``nt < n//^C``):

* ``cmd``: one beat, :data:`~edgetron.hw.conv.CONV_FIELDS` and ``lo``, ``hi``;
* ``a``: for each band row ``y < hb``, pixel ``x < w``, channel block ``cb_i``: lane
  ``q`` is ``x[cb_i*R + q, y, x]`` (0 beyond ``c``);
* ``w``: for each ``nt``, tap ``(i, j)``, channel block ``cb_i``, lane ``q < R``: lane
  ``col`` is ``w[nt*C + col, cb_i*R + q, i, j]`` (0 beyond ``n`` or ``c``);
* ``ch``: per output channel ``bias``, ``mult``, ``shift``;
* ``o``: for each ``nt``, output pixel ``(oh, ow)`` in raster order: lane ``col`` is
  ``out[nt*C + col, oh, ow]`` (lanes beyond ``n`` unspecified).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.golden.intops import (
    INT8_MAX,
    INT8_MIN,
    INT32_MAX,
    INT32_MIN,
    M_MAX,
    S_MAX,
    S_MIN,
    as_int64,
    check_range,
)
from edgetron.hw import conv as hw
from edgetron.hw import gemm as hw_gemm

from .dense import conv_layouts, conv_limits

__all__ = ["ConvCall", "check_conv_call", "conv_timing", "decode_conv", "encode_conv"]

_cdiv = hw_gemm.cdiv.py_func


class ConvCall(NamedTuple):
    """One ConvUnit call (a band): :data:`edgetron.hw.conv.CONV_FIELDS`."""

    hb: int
    w: int
    c: int
    n: int
    r: int
    s: int
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pb: int = 0
    pl: int = 0
    pr: int = 0

    def geometry(self, rows: int) -> tuple[int, int, int, int, int]:
        """``(cb, ho, wo, m, k)`` on an array of ``rows`` rows
        (:func:`edgetron.hw.conv.conv_geometry`)."""
        return tuple(int(v) for v in hw.conv_geometry(
            rows, self.hb, self.w, self.c, self.r, self.s, self.sh, self.sw, self.pt,
            self.pb, self.pl, self.pr))


def check_conv_call(config: AcceleratorConfig, call: ConvCall) -> None:
    """Raise ValueError naming the rule unless the ConvUnit takes ``call``
    (:func:`edgetron.hw.conv.conv_fits`)."""
    for name, value in call._asdict().items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"conv call: {name} must be an integer, got {value!r}")
    conv_limits(config)
    if not hw.conv_fits(config.sim_params(), *call):
        lim = conv_limits(config)
        raise ValueError(
            f"conv call {tuple(call)} ({', '.join(hw.CONV_FIELDS)}) does not fit the "
            f"ConvUnit: needs sizes >= 1, kernel 1..{hw.CONV_MAX_KERNEL}, strides "
            f"1..{hw.CONV_MAX_STRIDE}, padding per side <= max(kernel, stride) - 1, the "
            f"window within the padded band, band words hb*w*ceil(c/{config.rows}) <= "
            f"{lim.a_words}, weight words ceil(n/{config.cols})*k <= {lim.w_words}, "
            f"ho*wo <= {min(lim.acc_words, lim.m_max)}, n <= {lim.param_words * config.cols}")


def _word(layout, value) -> int:
    return layout.const(value).as_value().value


def encode_conv(config: AcceleratorConfig, call: ConvCall, x, w, bias, mult, shift,
                lo: int = INT8_MIN, hi: int = INT8_MAX) -> dict[str, list[int]]:
    """Payload words of one call on each input stream (``cmd``, ``a``, ``w``, ``ch``).

    ``x``: int8 (c, hb, w), the band; ``w``: int8 (n, c, r, s); ``bias`` int32,
    ``mult`` ``0..M_MAX``, ``shift`` ``S_MIN..S_MAX`` (n,) or scalars; the clamp
    ``-128 <= lo <= hi <= 127``. ValueError for anything else.
    """
    check_conv_call(config, call)
    lay = conv_layouts(config)
    R, C = config.rows, config.cols
    vx, vw = as_int64(x, "x"), as_int64(w, "w")
    c, n = call.c, call.n
    if vx.shape != (c, call.hb, call.w) or vw.shape != (n, c, call.r, call.s):
        raise ValueError(f"conv call: x {vx.shape} and w {vw.shape} must be "
                         f"({c}, {call.hb}, {call.w}) and ({n}, {c}, {call.r}, {call.s})")
    check_range(vx, INT8_MIN, INT8_MAX, "x")
    check_range(vw, INT8_MIN, INT8_MAX, "w")
    if not INT8_MIN <= lo <= hi <= INT8_MAX:
        raise ValueError(f"conv call: clamp must satisfy -128 <= lo <= hi <= 127, got "
                         f"lo={lo}, hi={hi}")
    par = {}
    for name, v, v_lo, v_hi in (("bias", bias, INT32_MIN, INT32_MAX), ("mult", mult, 0, M_MAX),
                                ("shift", shift, S_MIN, S_MAX)):
        a = np.broadcast_to(as_int64(v, name), (n,))
        check_range(a, v_lo, v_hi, name)
        par[name] = a
    cb, nt = _cdiv(c, R), _cdiv(n, C)
    xp = np.zeros((cb * R, call.hb, call.w), np.int64)
    xp[:c] = vx
    a_vec = xp.reshape(cb, R, call.hb, call.w).transpose(2, 3, 0, 1).reshape(-1, R)
    wp = np.zeros((nt * C, cb * R, call.r, call.s), np.int64)
    wp[:n, :c] = vw
    # (nt, col, cb, q, i, j) -> (nt, i, j, cb, q, col)
    w_vec = wp.reshape(nt, C, cb, R, call.r, call.s).transpose(0, 4, 5, 2, 3, 1).reshape(-1, C)
    return {
        "cmd": [_word(lay["cmd"], dict(call._asdict(), lo=int(lo), hi=int(hi)))],
        "a": [_word(lay["a"], v.tolist()) for v in a_vec],
        "w": [_word(lay["w"], v.tolist()) for v in w_vec],
        "ch": [_word(lay["ch"], {"bias": int(par["bias"][i]), "mult": int(par["mult"][i]),
                                 "shift": int(par["shift"][i])}) for i in range(n)],
    }


def decode_conv(config: AcceleratorConfig, words, call: ConvCall) -> np.ndarray:
    """The int64 array (n, ho, wo) from one call's ``o`` payload words."""
    lay = conv_layouts(config)
    _, ho, wo, m, _ = call.geometry(config.rows)
    C, n = config.cols, call.n
    nt = _cdiv(n, C)
    words = list(words)
    if len(words) != nt * m:
        raise ValueError(f"conv call: expected {nt * m} output beats, got {len(words)}")
    vecs = np.array([list(lay["o"].from_bits(int(v))) for v in words], np.int64)
    out = vecs.reshape(nt, ho, wo, C).transpose(0, 3, 1, 2).reshape(nt * C, ho, wo)
    return out[:n]


def conv_timing(config: AcceleratorConfig) -> dict[str, Any]:
    """The cycle model of the ConvUnit as data (export manifest; docs/rtl.md)."""
    R, C = config.rows, config.cols
    lim = conv_limits(config)
    p = config.sim_params()
    return {
        "model": "the ws GEMM pipeline with an im2col A address; rows wait for their band "
                 "words; calls overlap (double-buffered bands)",
        "counts": "cycles from the first command handshake to the last output handshake",
        "constants": {
            "R": R, "C": C, "slots": lim.slots, "a_words": lim.a_words,
            "w_words": lim.w_words, "acc_words": lim.acc_words,
            "cmd_cycles": hw.CONV_CMD_CYCLES,
            "buffer_read_cycles": hw_gemm.GEMM_BUFFER_READ_CYCLES,
            "array_latency": int(hw_gemm.array_timing(R, C, hw_gemm.DATAFLOW_WS)[0]),
            "epilogue_cycles": hw_gemm.GEMM_EPILOGUE_CYCLES,
            "out_cycles": hw_gemm.GEMM_OUT_CYCLES,
            "clamp_calls": hw.conv_clamp_calls(R, C, lim.slots),
            "channels_first": bool(hw_gemm.gemm_channels_first(p)),
        },
        "formulas": {
            "cb": "ceil(c / R)", "ho": "(hb + pt + pb - r) // sh + 1",
            "wo": "(w + pl + pr - s) // sw + 1", "M": "ho * wo", "K": "r * s * cb * R",
            "steps": "ceil(n / C) * r * s * cb",
            "row_word": "((oh*sh + i - pt) * w + ow*sw + j - pl) * cb + cb_i (none in padding)",
            "step": "max(M, R) cycles once its words are in",
            "output_of_row": "issue + buffer_read_cycles + array_latency + epilogue_cycles "
                             "+ out_cycles",
        },
        "schedule": "edgetron.sim.units.conv_dense.conv_sequence(p, calls)",
    }
