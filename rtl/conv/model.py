"""Host side of the depthwise unit: the shape check and the stream protocol.

:func:`encode_dw` turns one call (an image's group of ``C`` channels, NCHW arrays as
golden takes them) into the payload words of the unit's input streams, after
:func:`check_dw_shape`; :func:`decode_dw` turns the ``o`` words back into an array.
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

from .depthwise import dw_layouts

__all__ = ["DwCall", "check_dw_shape", "decode_dw", "dw_timing", "encode_dw"]


class DwCall(NamedTuple):
    """The geometry of one depthwise call: input ``h x w``, kernel ``r x s``, strides,
    padding (top, bottom, left, right)."""

    h: int
    w: int
    r: int
    s: int
    sh: int = 1
    sw: int = 1
    pt: int = 0
    pb: int = 0
    pl: int = 0
    pr: int = 0

    @property
    def ho(self) -> int:
        """Output rows."""
        return (self.h + self.pt + self.pb - self.r) // self.sh + 1

    @property
    def wo(self) -> int:
        """Output columns."""
        return (self.w + self.pl + self.pr - self.s) // self.sw + 1


def check_dw_shape(config: AcceleratorConfig, line_width: int, call: DwCall) -> None:
    """Raise ValueError naming the field unless the depthwise unit runs ``call``
    (:func:`edgetron.hw.conv.dw_fits`)."""
    for name, value in call._asdict().items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"depthwise call: {name} must be an integer, got {value!r}")
    if not hw.dw_fits(config.rows, line_width, *call):
        c = call
        raise ValueError(
            f"depthwise call {tuple(c)} (h, w, r, s, sh, sw, pt, pb, pl, pr) does not fit "
            f"the unit: needs 1 <= r, s <= {hw.DW_MAX_KERNEL}, r*s <= rows {config.rows}, "
            f"strides 1..{hw.DW_MAX_STRIDE}, 1 <= w <= line width {line_width}, "
            f"1 <= h <= {hw.DW_MAX_HEIGHT}, padding per side <= max(kernel, stride) - 1 "
            f"and a kernel within the padded input")


def _word(layout, value) -> int:
    return layout.const(value).as_value().value


def encode_dw(config: AcceleratorConfig, line_width: int, call: DwCall, x, w, bias, mult,
              shift, lo: int = INT8_MIN, hi: int = INT8_MAX) -> dict[str, list[int]]:
    """Payload words of one call on each input stream: ``cmd``, ``w``, ``p``, ``x``.

    Parameters
    ----------
    config, line_width
        The unit's config and line width (:attr:`DepthwiseUnit.line_width`).
    call : DwCall
    x : int8 array (c, h, w), ``c <= cols`` channels (the rest of the lanes read zero)
    w : int8 array (c, r, s)
    bias : int32 array (c,); mult ``0..M_MAX``, shift ``S_MIN..S_MAX`` arrays (c,)
    lo, hi : int
        The activation clamp, ``-128 <= lo <= hi <= 127``.
    """
    check_dw_shape(config, line_width, call)
    lay = dw_layouts(config, line_width)
    C = config.cols
    vx, vw = as_int64(x, "x"), as_int64(w, "w")
    c = vx.shape[0]
    if vx.shape != (c, call.h, call.w) or vw.shape != (c, call.r, call.s) or not 1 <= c <= C:
        raise ValueError(f"depthwise call: x {vx.shape} and w {vw.shape} must be "
                         f"(c, {call.h}, {call.w}) and (c, {call.r}, {call.s}), 1 <= c <= {C}")
    check_range(vx, -(1 << (config.input_bits - 1)), (1 << (config.input_bits - 1)) - 1, "x")
    check_range(vw, -(1 << (config.weight_bits - 1)), (1 << (config.weight_bits - 1)) - 1,
                "w")
    vecs = {}
    for name, v, lo_v, hi_v in (("bias", bias, INT32_MIN, INT32_MAX), ("mult", mult, 0, M_MAX),
                                ("shift", shift, S_MIN, S_MAX)):
        a = np.broadcast_to(as_int64(v, name), (c,))
        check_range(a, lo_v, hi_v, name)
        vecs[name] = np.zeros(C, dtype=np.int64)
        vecs[name][:c] = a
        if name == "shift":
            vecs[name][c:] = S_MIN
    if not INT8_MIN <= lo <= hi <= INT8_MAX:
        raise ValueError(f"depthwise call: clamp must satisfy -128 <= lo <= hi <= 127, "
                         f"got lo={lo}, hi={hi}")
    xp = np.zeros((C, call.h, call.w), dtype=np.int64)
    xp[:c] = vx
    wp = np.zeros((C, call.r, call.s), dtype=np.int64)
    wp[:c] = vw
    return {
        "cmd": [_word(lay["cmd"], call._asdict())],
        "w": [_word(lay["w"], wp[:, ry, sx].tolist())
              for ry in range(call.r) for sx in range(call.s)],
        "p": [_word(lay["p"], {"bias": vecs["bias"].tolist(), "mult": vecs["mult"].tolist(),
                               "shift": vecs["shift"].tolist(), "lo": int(lo), "hi": int(hi)})],
        "x": [_word(lay["x"], xp[:, iy, ix].tolist())
              for iy in range(call.h) for ix in range(call.w)],
    }


def decode_dw(config: AcceleratorConfig, words, call: DwCall, c: int) -> np.ndarray:
    """The int64 array (c, ho, wo) from one call's ``o`` payload words."""
    words = list(words)
    if len(words) != call.ho * call.wo:
        raise ValueError(f"depthwise call: expected {call.ho * call.wo} output beats, got "
                         f"{len(words)}")
    out = np.empty((c, call.ho * call.wo), dtype=np.int64)
    for i, word in enumerate(words):
        for lane in range(c):
            v = (int(word) >> (8 * lane)) & 0xFF
            out[lane, i] = v - 256 if v >= 128 else v
    return out.reshape(c, call.ho, call.wo)


def dw_timing(config: AcceleratorConfig, line_width: int) -> dict[str, Any]:
    """The cycle model of the depthwise unit as data (export manifest; docs/rtl.md).

    ``constants`` are the :mod:`edgetron.hw.conv` values the unit asserts its structure
    against; ``formulas`` the closed-form parts of one call (cycle 0: its command
    handshake; inputs at full rate, no backpressure); ``schedule`` names the simulator
    function that gives every call's command and output cycles of a sequence.
    """
    R = config.rows
    return {
        "model": "line fill, row sweeps, drain; calls overlap their drain",
        "counts": "cycles from the first command handshake to the last output handshake",
        "constants": {
            "R": R, "C": config.cols, "line_rows": hw.DW_LINE_ROWS, "line_width": line_width,
            "cmd_cycles": hw.DW_CMD_CYCLES, "read_cycles": hw.DW_READ_CYCLES,
            "window_cycles": hw.DW_WINDOW_CYCLES,
            "output_latency": hw.dw_output_latency(R), "bank_reuse": hw.dw_bank_reuse(R),
        },
        "formulas": {
            "ho": "(h + pt + pb - r) // sh + 1",
            "wo": "(w + pl + pr - s) // sw + 1",
            "sweep_per_output_row": "(wo - 1) * sw + s",
            "first_sweep": "max(cmd_cycles + r * s, cmd_cycles + w * min(h, r - pt))",
            "output_of_window": "sweep cycle that completes it + output_latency",
            "next_command": "max(last sweep, last pixel) + 1, and last sweep of the call "
                            "two before + bank_reuse + 1",
        },
        "schedule": "edgetron.sim.units.conv.dw_schedule(R, shapes)",
    }
