"""The pool unit's grid position and the flags it reads of it (``rtl/pool.py:PoolUnit``).

The unit visits one grid position ``(y, x, g)`` per cycle (``edgetron.hw.pool``). Every
comparison it makes of the position (the last group, column and row; inside the map;
``x >= 1``, ``x >= 2``, ...; where the next window ends) is a register updated with the
counters, so that no comparator stands between a counter and the control it drives.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Module, Mux, Signal

from edgetron.hw.pool import POOL_EDGE_MAX

__all__ = ["POS_BITS", "PoolGrid", "grid_position"]

#: Grid counters and window positions: up to POOL_EDGE_MAX + 1 (a padded row or column).
POS_BITS = (POOL_EDGE_MAX + 1).bit_length()


class PoolGrid(NamedTuple):
    """The registers of the grid position that ``rtl/pool.py:PoolUnit.elaborate`` reads."""

    k: Signal           #: the constants
    g: Signal           #: the channel group
    g0: Signal          #: g == 0
    g_last: Signal      #: the last group
    x_last: Signal      #: the last grid column
    xin: Signal         #: x < w (not right padding)
    yin: Signal         #: y < h (not bottom padding)
    x_ge1: Signal       #: x >= 1
    x_ge2: Signal       #: x >= 2
    y_ge1: Signal       #: y >= 1
    y_ge2: Signal       #: y >= 2
    ex: Signal          #: a window ends in this column
    ey: Signal          #: a window ends in this row


def grid_position(m: Module, layout, groups: int, kc, load, go) -> PoolGrid:
    """The grid position ``(y, x, g)``, advanced by ``go``, and what the unit reads of
    it: every comparison of a counter is a register, updated with the counter from
    comparisons of registered values (the bounds minus one or two, registered when the
    constants ``kc`` load), so that no comparator stands between a counter and the
    control it drives. ``dx = nx - x`` and ``dy = ny - y`` count down to the next
    column and row where a window ends (``nx``, ``ny``: the first at ``fx``, ``fy``,
    then every stride). ``layout``: the constants' (``pool_layouts(...).c``); ``groups``:
    the unit's channel groups."""
    k = Signal(layout)
    pb = POS_BITS + 1
    y, x, dy, dx = (Signal(pb, name=n) for n in ("y", "x", "dy", "dx"))
    g = Signal(range(groups))
    gb = len(k.groups)
    g_m2, wi_m2, hi_m2, w_m1, h_m1 = (Signal(n, name=name) for n, name in (
        (gb, "groups_m2"), (pb, "wi_m2"), (pb, "hi_m2"), (pb, "w_m1"), (pb, "h_m1")))
    # g0: g == 0 (and at reset: the unit starts at (0, 0, 0)); *_last: the last group,
    # column, row; xin, yin: x < w, y < h; x_ge1 ...: x >= 1 ...; ex, ey: x == nx, y == ny
    g0 = Signal(init=1)
    (g_last, x_last, y_last, xin, yin, x_ge1, x_ge2, y_ge1, y_ge2, ex, ey) = (
        Signal(name=n) for n in ("g_last", "x_last", "y_last", "xin", "yin", "x_ge1",
                                 "x_ge2", "y_ge1", "y_ge2", "ex", "ey"))
    with m.If(go):
        with m.If(g_last):
            m.d.sync += [g.eq(0), g0.eq(1), g_last.eq(k.groups == 1)]
        with m.Else():
            m.d.sync += [g.eq(g + 1), g0.eq(0), g_last.eq(g == g_m2)]
        with m.If(g_last & x_last):
            m.d.sync += [x.eq(0), x_last.eq(k.wi == 1), xin.eq(1), x_ge1.eq(0),
                         x_ge2.eq(0), dx.eq(k.fx), ex.eq(k.fx == 0)]
            with m.If(y_last):
                m.d.sync += [y.eq(0), y_last.eq(k.hi == 1), yin.eq(1), y_ge1.eq(0),
                             y_ge2.eq(0), dy.eq(k.fy), ey.eq(k.fy == 0)]
            with m.Else():
                m.d.sync += [y.eq(y + 1), y_last.eq(y == hi_m2), yin.eq(yin & (y != h_m1)),
                             y_ge1.eq(1), y_ge2.eq(y_ge1),
                             dy.eq(Mux(ey, k.sh - 1, dy - 1)),
                             ey.eq(Mux(ey, k.sh == 1, dy == 1))]
        with m.Elif(g_last):
            m.d.sync += [x.eq(x + 1), x_last.eq(x == wi_m2), xin.eq(xin & (x != w_m1)),
                         x_ge1.eq(1), x_ge2.eq(x_ge1),
                         dx.eq(Mux(ex, k.sw - 1, dx - 1)), ex.eq(Mux(ex, k.sw == 1, dx == 1))]
    # The constants are taken at (0, 0, 0) with nothing in flight: the flags of that
    # position under them.
    with m.If(load):
        m.d.sync += [k.eq(kc), g_m2.eq(kc.groups - 2), wi_m2.eq(kc.wi - 2),
                     hi_m2.eq(kc.hi - 2), w_m1.eq(kc.w - 1), h_m1.eq(kc.h - 1),
                     g_last.eq(kc.groups == 1), x_last.eq(kc.wi == 1), y_last.eq(kc.hi == 1),
                     xin.eq(1), yin.eq(1), dx.eq(kc.fx), ex.eq(kc.fx == 0), dy.eq(kc.fy),
                     ey.eq(kc.fy == 0)]
    return PoolGrid(k, g, g0, g_last, x_last, xin, yin, x_ge1, x_ge2, y_ge1, y_ge2, ex, ey)
