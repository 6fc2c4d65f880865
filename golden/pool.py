"""The pool unit's specification on NHWC maps: one constants record, golden's pools.

The integer functions are :func:`edgetron.golden.conv.maxpool2d`,
:func:`~edgetron.golden.conv.avgpool2d` and :func:`~edgetron.golden.conv.avgpool_constants`
(NCHW, PyTorch's layout); this module states them as the pool unit computes them: an NHWC
map (channels adjacent, as the unit streams them) and a :class:`PoolConstants` record
holding the window, strides, the four paddings and the average's dyadic ``(mult, shift)``.
A global average pool is the window of the whole map (``r = h``, ``s = w``, no padding),
which equals :func:`~edgetron.golden.conv.global_avgpool2d`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .conv import avgpool2d, avgpool_constants, maxpool2d
from .intops import as_int64

__all__ = ["POOL_KINDS", "PoolConstants", "pool_constants", "pool_nhwc"]

#: The pool kinds: window maximum, window average.
POOL_KINDS = ("max", "avg")


class PoolConstants(NamedTuple):
    """One pool: ``kind`` (``"max"`` or ``"avg"``), window ``r x s``, strides ``sh, sw``,
    paddings ``pt, pb, pl, pr`` (golden's rules: at most half the window per side), and the
    average's dyadic ``mult / 2**shift`` of ``S_x / (r * s * S_y)`` (max: ``0, 1``, unused)."""

    kind: str
    r: int
    s: int
    sh: int
    sw: int
    pt: int
    pb: int
    pl: int
    pr: int
    mult: int
    shift: int


def pool_constants(kind: str, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int, int, int] = (0, 0, 0, 0), in_scale: float = 1.0,
                   out_scale: float | None = None) -> PoolConstants:
    """The :class:`PoolConstants` of a pool; the average's ``(mult, shift)`` from
    :func:`~edgetron.golden.conv.avgpool_constants` (``out_scale`` defaults to
    ``in_scale``: the output keeps the input scale).

    Raises
    ------
    ValueError
        An unknown ``kind``; bad scales (as ``avgpool_constants``).
    """
    if kind not in POOL_KINDS:
        raise ValueError(f"pool kind must be one of {POOL_KINDS}, got {kind!r}")
    r, s = (int(v) for v in kernel)
    mult, shift = (0, 1) if kind == "max" else avgpool_constants(
        r * s, in_scale, in_scale if out_scale is None else out_scale)
    return PoolConstants(kind, r, s, *(int(v) for v in stride), *(int(v) for v in padding),
                         int(mult), int(shift))


def pool_nhwc(x, consts: PoolConstants) -> np.ndarray:
    """The pool of the int8 NHWC map ``x`` (N, H, W, C): int64 (N, Ho, Wo, C) in int8.

    Raises
    ------
    TypeError, ValueError
        As :func:`~edgetron.golden.conv.maxpool2d` / :func:`~edgetron.golden.conv.avgpool2d`
        (bad values, shapes, windows or paddings); ``x`` not 4-D.
    """
    v = as_int64(x, "x")
    if v.ndim != 4:
        raise ValueError(f"x must be 4-D (N, H, W, C), got shape {v.shape}")
    k = consts
    args = (v.transpose(0, 3, 1, 2), (k.r, k.s), (k.sh, k.sw), (k.pt, k.pb, k.pl, k.pr))
    y = maxpool2d(*args) if k.kind == "max" else avgpool2d(*args, k.mult, k.shift)
    return y.transpose(0, 2, 3, 1)
