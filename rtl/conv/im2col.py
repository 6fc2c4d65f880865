"""The ConvUnit's compute core: the ``ws`` core with an on-the-fly im2col A address.

The A slot of a call holds a *band* of the input feature map in NHWC order: ``hb`` input
rows of ``w`` pixels, each pixel ``cb = c//^R`` words of ``R`` channels. The call is the
GEMM ``(M, K, N)`` with ``M = ho * wo`` (row ``t`` is output pixel ``(oh, ow)`` of the
band) and ``K = r * s * cb * R`` (fold ``kf = (i * s + j) * cb + cb_i`` is tap ``(i, j)``,
channel block ``cb_i``). Row ``t`` of fold ``kf`` reads the word::

    ((oh * sh + i - pt) * w + (ow * sw + j - pl)) * cb + cb_i

or zeros (no read, no wait) when the pixel lies in the padding. :class:`ConvCore`
generates it with counters and adders only: the registers hold the coordinates and the
address *relative to the padded band* (``y = oh * sh + i``, ``x = ow * sw + j`` and
``addr = (y * w + x) * cb + cb_i``), all zero at the start of a column tile whatever
the call, and the per-call constants (``w * cb``, ``sw * cb``, ``sh * w * cb``, the
padding offset ``(pt * w + pl) * cb``) are products the unit's shape check registers
with the call (:func:`conv_geom_layout`). The word read is ``addr - pad_off``; the row is
zero when ``y`` or ``x`` lies outside ``[pt, hb + pt)`` resp. ``[pl, w + pl)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from edgetron.config import AcceleratorConfig
from edgetron.hw import conv as hw
from edgetron.hw.gemm import cdiv

from ..gemm.core import pick
from ..gemm.ws_core import RowEvents, WsCore
from ..layouts import gemm_core_signature_members, gemm_layouts, unsigned_for

__all__ = ["ConvCore", "conv_address_shape", "conv_geom_layout"]

_cdiv = cdiv.py_func
KM = hw.CONV_MAX_KERNEL


def conv_address_shape(limits):
    """Shape of an address relative to the padded band: ``(hb + pt + pb) * (w + pl + pr)
    * cb`` words with ``hb * w * cb <= a_words`` and each padding at most ``KM - 1``, below
    ``(1 + 2 * 2 * (KM - 1) + (2 * (KM - 1))**2) * a_words``."""
    pad = 2 * (KM - 1)
    return unsigned_for((1 + 2 * pad + pad * pad) * limits.a_words)


def conv_geom_layout(config: AcceleratorConfig, limits) -> data.StructLayout:
    """The geometry of an accepted ConvUnit call, registered by its shape check.

    ``ow_last``: ``wo - 1``; ``cb_last``: ``cb - 1``; ``s_last``: ``s - 1``; ``sh2``,
    ``sw2``: the stride is 2; ``wcb``: ``w * cb`` (words per input row); ``swcb``,
    ``shwcb``: ``sw * cb``, ``sh * w * cb`` (address steps of one output column, row);
    ``pad_off``: ``(pt * w + pl) * cb``; ``pt``, ``pl``; ``y_end``, ``x_end``: ``hb + pt``,
    ``w + pl`` (the band's pixels in padded coordinates).
    """
    a = limits.a_words
    coord = unsigned_for(a + 2 * KM)
    return data.StructLayout({
        "ow_last": unsigned_for(limits.m_max),
        "cb_last": unsigned_for(_cdiv(limits.k_max, config.rows)),
        "s_last": unsigned_for(KM - 1),
        "sh2": 1, "sw2": 1,
        "wcb": unsigned_for(a), "swcb": unsigned_for(2 * a), "shwcb": unsigned_for(2 * a),
        "pad_off": unsigned_for(2 * (KM - 1) * a),
        "pt": unsigned_for(KM - 1), "pl": unsigned_for(KM - 1),
        "y_end": coord, "x_end": coord,
    })


class ConvCore(WsCore):
    """The ``ws`` core whose rows read the im2col words of a band (module docstring).

    Parameters and members as :class:`~edgetron.rtl.gemm.ws_core.WsCore`, plus ``geom``
    ``In(ArrayLayout(conv_geom_layout(...), slots))``: the geometry of each slot's call.

    Latency and backpressure as :class:`~edgetron.rtl.gemm.ws_core.WsCore`: the address
    generator only decides which word a row reads (and when it may issue: a row waits
    for that word, a padding row for nothing).
    """

    def __init__(self, config: AcceleratorConfig, limits):
        self._config = config
        self._limits = limits
        self._layouts = gemm_layouts(config, limits)
        members = gemm_core_signature_members(config, limits)
        members["geom"] = In(data.ArrayLayout(conv_geom_layout(config, limits), limits.slots))
        wiring.Component.__init__(self, members)

    def a_operand(self, m: Module, ev: RowEvents):
        lim = self._limits
        g = pick(self.geom, ev.slot, lim.slots)
        geom = conv_geom_layout(self._config, lim)
        addr_shape = conv_address_shape(lim)
        coord = geom["y_end"].shape
        # The tap (i, j, cb_i) of the current step, and its address at output pixel (0, 0).
        ti = Signal(range(KM), name="tap_i")
        tj = Signal(range(KM), name="tap_j")
        tcb = Signal(geom["cb_last"].shape, name="tap_cb")
        tap_row = Signal(addr_shape, name="tap_row")       # address of (i, 0, 0)
        tap_addr = Signal(addr_shape, name="tap_addr")     # address of (i, j, cb_i)
        # The row about to issue: output column, padded coordinates, address.
        ow = Signal(geom["ow_last"].shape, name="out_col")
        y = Signal(coord, name="in_y")
        x = Signal(coord, name="in_x")
        addr = Signal(addr_shape, name="in_addr")
        row_addr = Signal(addr_shape, name="in_row_addr")  # the address at ow = 0
        state = (ti, tj, tcb, tap_row, tap_addr, ow, y, x, addr, row_addr)

        def start_step(i, j, cb_i, t_row, t_addr):
            return [ti.eq(i), tj.eq(j), tcb.eq(cb_i), tap_row.eq(t_row), tap_addr.eq(t_addr),
                    ow.eq(0), y.eq(i), x.eq(j), addr.eq(t_addr), row_addr.eq(t_addr)]

        with m.If(ev.issue):
            with m.If(ev.last_row):
                with m.If(ev.last_kf):          # the next column tile or call: tap (0,0,0)
                    m.d.sync += [v.eq(0) for v in state]
                with m.Elif(tcb != g.cb_last):  # the next channel block
                    m.d.sync += start_step(ti, tj, tcb + 1, tap_row, tap_addr + 1)
                with m.Elif(tj != g.s_last):    # the next tap of the kernel row
                    m.d.sync += start_step(ti, tj + 1, 0, tap_row, tap_addr + 1)
                with m.Else():                  # the next kernel row
                    m.d.sync += start_step(ti + 1, 0, 0, tap_row + g.wcb,
                                              tap_row + g.wcb)
            with m.Elif(ow == g.ow_last):       # the next output row
                m.d.sync += [ow.eq(0), y.eq(y + 1 + g.sh2), x.eq(tj),
                                row_addr.eq(row_addr + g.shwcb), addr.eq(row_addr + g.shwcb)]
            with m.Else():                      # the next output column
                m.d.sync += [ow.eq(ow + 1), x.eq(x + 1 + g.sw2), addr.eq(addr + g.swcb)]
        zero = ~((y >= g.pt) & (y < g.y_end) & (x >= g.pl) & (x < g.x_end))
        # The index is a difference, not a register: its availability check stays
        # combinational (choices: None).
        return (addr - g.pad_off)[:unsigned_for(lim.a_words).width], zero, None
