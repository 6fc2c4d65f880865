"""Helpers every RTL unit shares: parameter checks, delay and tag lines, constant division,
stream routing.

* **Parameter checks before construction.** :class:`CheckedComponent` runs the subclass's
  :meth:`~CheckedComponent.check_parameters` in ``__new__``, before the object exists, so a
  rejected construction raises at once and leaves no half-built elaboratable for Amaranth
  to report as ``UnusedElaboratable`` when it is collected. :func:`check_param`,
  :func:`check_array_size`, :func:`check_dataflow` and :func:`check_config_type` give the
  messages (field, range), with the RTL's elaboration bounds (:data:`MAX_EDGE`,
  :data:`MAX_PES`, :data:`MAX_BUFFER_WORDS`).
* **Delay and tag lines.** :class:`DelayLine` registers a value ``depth`` times and keeps
  every tap; its :attr:`~DelayLine.depth` is the number of registers it built, which the
  components add up to assert, at elaboration, that a path is exactly as deep as the timing
  model says (``edgetron.hw``). :func:`tag_line` is a delay line of a struct that travels
  beside the data (valid bit, indices) to meet it at the end of a pipeline.
  :func:`read_latency` is the latency of a memory read port.
* **Constant division.** :func:`ceil_div_const` (a constant reciprocal, no divider) and
  :func:`at_most` (a comparison that is not built when it cannot fail).
* **Stream routing.** :class:`StreamDemux` sends each beat of one stream to one of ``n``
  outputs, so that streams are wired with :func:`amaranth.lib.wiring.connect`.
* **Vector units.** :class:`VectorUnit` is the scaffold the softmax, GELU, LayerNorm and add
  units share: parameters checked against one table, one stream port per payload layout,
  the config mapping.
* **Skid buffer.** :class:`SkidBuffer` registers a stream's ``ready`` (two entries), so
  that a consumer's ``ready`` does not fan out combinationally into a pipeline's enables.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.golden.intops import INT32_MAX

#: Memory attribute (value ``"unused"``) of a buffer whose reads never use a word read in
#: the cycle it is written: such a read's data is discarded (not issued, or not valid), so
#: an FPGA flow may leave that collision undefined instead of emulating it with logic after
#: the block RAM (:mod:`edgetron.rtl.fpga.memories`).
COLLISION_ATTR = "edgetron_collision"

__all__ = [
    "ACC_BITS_MAX",
    "COLLISION_ATTR",
    "MAX_BUFFER_WORDS",
    "MAX_EDGE",
    "MAX_PES",
    "OPERAND_BITS",
    "RTL_DATAFLOWS",
    "BeatCounter",
    "CheckedComponent",
    "CreditFifo",
    "DelayLine",
    "SkidBuffer",
    "StreamDemux",
    "VectorUnit",
    "at_most",
    "ceil_div_const",
    "check_array_size",
    "check_config_type",
    "check_dataflow",
    "check_param",
    "mul_const",
    "read_latency",
    "ring_next",
    "tag_line",
]

#: Largest array edge (``rows``, ``cols``; also requantizer ``lanes``, one per column): the
#: range ``AcceleratorConfig`` allows for ``rows`` and ``cols`` (a test keeps them equal).
MAX_EDGE = 256
#: Largest array the RTL elaborates, in PEs (64 x 64). Elaboration time and memory grow
#: with the PE count: Verilog export of a 32 x 32 GEMM unit took 45 s and 0.3 GB, 64 x 64
#: 315 s and 1.2 GB, so 256 x 256 (65536 PEs) would need hours and about 20 GB. The
#: simulator (``sim/``) models every array the config allows.
MAX_PES = 64 * 64
#: Largest buffer of the GEMM unit the RTL elaborates, in words. Elaboration cost grows
#: with the words (Amaranth gives every word its initial value, one Verilog line each):
#: an 8 x 8 unit with 65536-word A and W buffers took 97 s and 0.6 GB, while a 64 MiB A
#: buffer (8 M words) ran out of 24 GB. The presets need at most 16384.
MAX_BUFFER_WORDS = 1 << 16
#: Operand widths (``input_bits``, ``weight_bits``) the PE implements: the config's range.
OPERAND_BITS = (2, 8)
#: Widest accumulator the golden accepts (int32).
ACC_BITS_MAX = INT32_MAX.bit_length() + 1
#: Dataflows with an RTL (``is`` is modelled by the simulator only).
RTL_DATAFLOWS = ("ws", "os")


# ---- parameter checks ------------------------------------------------------------------------
def check_param(owner: str, name: str, value, lo: int, hi: int) -> None:
    """Raise ConfigError naming ``owner``, ``name`` and ``[lo, hi]`` unless ``value`` is an
    integer (not a bool) in that range."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{owner}: {name} must be an integer in [{lo}, {hi}], got {value!r}")


def check_array_size(owner: str, rows: int, cols: int) -> None:
    """Raise ConfigError unless a ``rows x cols`` array is within the RTL bounds: each edge
    in ``[1, MAX_EDGE]`` and at most :data:`MAX_PES` PEs."""
    check_param(owner, "rows", rows, 1, MAX_EDGE)
    check_param(owner, "cols", cols, 1, MAX_EDGE)
    if rows * cols > MAX_PES:
        raise ConfigError(
            f"{owner}: rows x cols = {rows} x {cols} = {rows * cols} PEs is out of range for "
            f"the RTL; allowed at most {MAX_PES} PEs (e.g. 64 x 64): elaboration time and "
            "memory grow with the PE count (docs/rtl.md). The simulator models larger arrays"
        )


def check_dataflow(dataflow: str) -> None:
    """Raise ConfigError naming ``dataflow`` unless the RTL implements it (``ws``, ``os``)."""
    if dataflow not in RTL_DATAFLOWS:
        raise ConfigError(
            f"dataflow: {dataflow!r} has no RTL; the RTL implements "
            f"{' and '.join(repr(d) for d in RTL_DATAFLOWS)} "
            "(input-stationary 'is' is modelled by sim.units.gemm only)"
        )


def check_config_type(config) -> None:
    """Raise TypeError unless ``config`` is an :class:`~edgetron.config.AcceleratorConfig`."""
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, got {type(config).__name__}")


class CheckedComponent(wiring.Component):
    """A :class:`~amaranth.lib.wiring.Component` whose parameters are checked before it exists.

    Subclasses implement :meth:`check_parameters` with the signature of their ``__init__``.
    It runs in ``__new__``: Amaranth reports an elaboratable that is created and never
    elaborated (``UnusedElaboratable``) when it is garbage-collected, which is exactly what
    a constructor that raises after the object exists would leave behind. A component that
    is genuinely created and not used is still reported, at the caller's line.
    """

    def __new__(cls, *args, **kwargs):
        cls.check_parameters(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    @classmethod
    def check_parameters(cls, *args, **kwargs) -> None:
        """Raise (ConfigError, TypeError) for parameters the component cannot be built with."""
        raise NotImplementedError(f"{cls.__name__} must define check_parameters")


class VectorUnit(CheckedComponent):
    """Scaffold of the vector units (``rtl/softmax.py``, ``gelu.py``, ``layernorm.py``,
    ``add.py``): parameters, ports and config mapping, defined once.

    A subclass sets :attr:`PARAMS` (each elaboration parameter's allowed ``(lo, hi)``, in
    the order of its ``__init__`` arguments), :attr:`CONFIG_FIELDS` (the
    :class:`~edgetron.config.AcceleratorConfig` field each parameter takes) and
    :meth:`build_layouts` (its payload layouts NamedTuple); its ``__init__`` passes its
    arguments on by name. The component has one stream per layout field, in field order:
    ``o`` is the output, every other field an input.
    """

    #: Parameter name -> allowed ``(lo, hi)``, in the order of ``__init__``'s arguments.
    PARAMS: ClassVar[dict[str, tuple[int, int]]] = {}
    #: Parameter name -> the config field :meth:`from_config` takes it from.
    CONFIG_FIELDS: ClassVar[dict[str, str]] = {}

    @classmethod
    def check_parameters(cls, *args, **kwargs) -> None:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        for name, (lo, hi) in cls.PARAMS.items():
            check_param(cls.__name__, name, bound.arguments[name], lo, hi)

    @classmethod
    def build_layouts(cls, **params):
        """The payload layouts NamedTuple for ``params``."""
        raise NotImplementedError(f"{cls.__name__} must define build_layouts")

    def __init__(self, **params):
        self._params = params
        self._layouts = self.build_layouts(**params)
        super().__init__({name: (Out if name == "o" else In)(stream.Signature(layout))
                          for name, layout in self._layouts._asdict().items()})

    @classmethod
    def from_config(cls, config: AcceleratorConfig):
        """The unit for ``config``: each parameter from its field in :attr:`CONFIG_FIELDS`."""
        check_config_type(config)
        return cls(**{name: getattr(config, field) for name, field in cls.CONFIG_FIELDS.items()})

    @property
    def parameters(self) -> dict[str, int]:
        """The elaboration parameters by name (the export manifest's ``parameters``)."""
        return dict(self._params)

    @property
    def lanes(self) -> int:
        """Elements per beat."""
        return self._params["lanes"]

    @property
    def in_bits(self) -> int:
        """Signed input width."""
        return self._params["in_bits"]

    @property
    def layouts(self):
        """The stream payload layouts."""
        return self._layouts


# ---- delay and tag lines ---------------------------------------------------------------------
class DelayLine:
    """``value`` registered ``depth`` times in the ``sync`` domain of ``m``.

    ``line[i]`` is ``value`` delayed ``i`` cycles (``line[0]`` is ``value`` itself,
    ``line.output`` the last tap); :attr:`depth` counts the registers built. Registers are
    named ``<name>_d1``, ``<name>_d2``, ... A clock enable on ``m`` (``EnableInserter``)
    stalls the whole line.
    """

    def __init__(self, m: Module, value, depth: int, name: str):
        if depth < 0:
            raise ValueError(f"{name}: a delay line cannot be {depth} registers deep")
        self._taps = [value]
        for i in range(depth):
            reg = Signal.like(value, name=f"{name}_d{i + 1}")
            m.d.sync += reg.eq(self._taps[-1])
            self._taps.append(reg)

    @property
    def depth(self) -> int:
        """Registers between the input and :attr:`output` (cycles of delay)."""
        return len(self._taps) - 1

    @property
    def input(self):
        """The undelayed value."""
        return self._taps[0]

    @property
    def output(self):
        """The value delayed :attr:`depth` cycles."""
        return self._taps[-1]

    def __getitem__(self, cycles: int):
        return self._taps[cycles]


def tag_line(m: Module, fields: dict, depth: int, name: str) -> DelayLine:
    """A tag (``StructLayout(fields)``) that travels ``depth`` cycles beside the data it
    describes, to meet it at the end of a pipeline. Drive ``line.input``; read any tap."""
    return DelayLine(m, Signal(data.StructLayout(fields), name=name), depth, name)


def read_latency(port) -> int:
    """Cycles from a memory read port's address to its data: 0 for an asynchronous
    (``comb``) port, 1 for a synchronous one."""
    return 0 if port.domain == "comb" else 1


# ---- constant division -----------------------------------------------------------------------
def ceil_div_const(x, d: int):
    """``ceil(x / d)`` of an unsigned value ``x`` by a constant ``d >= 1``, without a divider.

    With ``y = x + d - 1 < 2**nb``, ``sh = nb + ceil_log2(d)`` and ``mul = ceil(2**sh / d)``,
    ``floor(y / d) == (y * mul) >> sh`` for every such ``y``: ``mul * d = 2**sh + e`` with
    ``0 <= e < d <= 2**ceil_log2(d)``, so ``y * mul / 2**sh = y/d + y*e / (d * 2**sh)`` and
    the error term is below ``1/d``, too small to reach the next integer (Granlund &
    Montgomery, PLDI 1994, Thm. 4.2). ``nb`` covers every value ``x``'s width can carry.
    The product is built by :func:`mul_const` (adders, no multiplier cell), so that the
    formal checks, which cut every multiplier, leave this control logic intact.
    """
    y = x + (d - 1)
    nb = ((1 << len(x)) - 1 + d - 1).bit_length()
    sh = nb + ceil_log2(d)
    mul = -(-(1 << sh) // d)
    return (mul_const(y, mul) >> sh)[:nb]


def at_most(x, limit: int):
    """``x <= limit`` for an unsigned ``x``; constant true (no comparator) when no value of
    ``x``'s width exceeds ``limit``, as happens in the shape check of degenerate arrays.
    A power of two ``2**n`` (the buffer sizes) is compared without a carry chain: no bit
    above ``n`` is set, and bit ``n`` only with nothing below it."""
    if (1 << len(x)) - 1 <= limit:
        return Const(1)
    if limit > 0 and limit & (limit - 1) == 0:
        n = limit.bit_length() - 1
        return ~x[n + 1:].any() & (~x[n] | ~x[:n].any())
    return x <= limit


# ---- stream routing --------------------------------------------------------------------------
class StreamDemux(CheckedComponent):
    """Routes each beat of ``i`` to the output ``o[sel]``; the other outputs see no beat.

    Parameters
    ----------
    layout : ShapeLike
        Payload shape of every stream.
    n : int
        Outputs, 2..16.

    Members
    -------
    i : ``In(stream.Signature(layout))``
    sel : ``In(range(n))``
        Output of the beat on ``i``; keep it stable while a beat is offered.
    o : ``Out(stream.Signature(layout)).array(n)``

    Latency
    -------
    0 cycles (combinational): ``o[k].valid = i.valid & (sel == k)``, payload to every output.

    Backpressure
    ------------
    ``i.ready = o[sel].ready``.
    """

    @classmethod
    def check_parameters(cls, layout, n: int) -> None:
        check_param(cls.__name__, "n", n, 2, 16)

    def __init__(self, layout, n: int):
        self._n = n
        super().__init__({
            "i": In(stream.Signature(layout)),
            "sel": In(range(n)),
            "o": Out(stream.Signature(layout)).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        for k in range(self._n):
            m.d.comb += [
                self.o[k].payload.eq(self.i.payload),
                self.o[k].valid.eq(self.i.valid & (self.sel == k)),
            ]
            with m.If(self.sel == k):
                m.d.comb += self.i.ready.eq(self.o[k].ready)
        return m


# ---- constant products and ring addresses (vector units) ------------------------------------
def mul_const(x, c: int):
    """``x * c`` for an unsigned ``x`` and a constant ``c >= 0`` as a sum of shifted copies of
    ``x`` (adders, no multiplier cell: control logic built with it stays free of ``$mul``,
    which the formal checks cut)."""
    total = 0
    for bit in range(c.bit_length()):
        if (c >> bit) & 1:
            total = total + (x << bit)
    return total


def ring_next(ptr, depth: int):
    """The ring-buffer address after ``ptr`` (``0 .. depth-1``, wrapping)."""
    return Mux(ptr == depth - 1, 0, ptr + 1)


class BeatCounter:
    """The beat of a row a vector unit takes in (``cnt``, ``0 .. n_beats - 1``) and
    ``last`` (``cnt == n_beats - 1``) kept in a register beside it, so that no comparator
    lies between the count and what the last beat masks (the spare lanes of a row's last
    beat: a comparator there was softmax's and LayerNorm's critical path on ECP5).

    :meth:`restart` and :meth:`advance` return the synchronous statements of a new row
    length and of a beat taken; nothing else may assign ``cnt`` or ``last``."""

    def __init__(self, bmax: int, name: str):
        self.cnt = Signal(range(bmax), name=f"{name}_cnt")
        self.last = Signal(name=f"{name}_last")

    def restart(self, n_beats) -> list:
        """Start at beat 0 of rows of ``n_beats`` (the value being loaded)."""
        return [self.cnt.eq(0), self.last.eq(n_beats == 1)]

    def advance(self, n_beats) -> list:
        """Take a beat of rows of ``n_beats`` (the loaded value): the next beat, or beat 0
        of the next row after the last."""
        return [self.cnt.eq(Mux(self.last, 0, self.cnt + 1)),
                self.last.eq(Mux(self.last, n_beats == 1, self.cnt + 2 == n_beats))]
# ---- output skid buffer ------------------------------------------------------------------------
class SkidBuffer(CheckedComponent):
    """A two-entry stream register whose ``i.ready`` is a flip-flop: ``o.ready`` reaches no
    further than this component's registers.

    Parameters
    ----------
    layout : ShapeLike
        Payload shape of both streams.

    Members
    -------
    i : ``In(stream.Signature(layout))``
    o : ``Out(stream.Signature(layout))``

    Latency
    -------
    :attr:`LATENCY` = 1 cycle from a beat taken on ``i`` to the same beat valid on ``o``
    (the output register).

    Throughput
    ----------
    One beat per cycle while ``o.ready`` stays high.

    Backpressure
    ------------
    ``i.ready`` is high while the second (skid) register is empty: the beat taken in the
    cycle ``o`` stalls goes there, and ``i.ready`` falls the cycle after. ``o.valid`` and
    ``o.payload`` come straight from the output register; no beat is lost or duplicated.
    """

    #: Cycles from ``i`` to ``o`` (the output register).
    LATENCY = 1

    @classmethod
    def check_parameters(cls, layout) -> None:
        pass

    def __init__(self, layout):
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        held = Signal.like(self.i.payload, name="held")
        held_valid = Signal()
        out = Signal.like(self.o.payload, name="out")
        out_valid = Signal()
        m.d.comb += [
            self.i.ready.eq(~held_valid),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out),
        ]
        with m.If(~out_valid | self.o.ready):
            with m.If(held_valid):
                m.d.sync += [out.eq(held), out_valid.eq(1), held_valid.eq(0)]
            with m.Else():
                m.d.sync += [out.eq(self.i.payload), out_valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~held_valid):
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1)]
        return m


class CreditFifo(CheckedComponent):
    """A FIFO whose writer holds a credit for every beat it writes: ``i`` has no ready.

    Parameters
    ----------
    layout : ShapeLike
        Payload shape of both streams.
    depth : int
        Beats it holds, 1 .. :data:`MAX_BUFFER_WORDS`; the writer starts with ``depth``
        credits, spends one per beat it sends and gets one back per beat taken from ``o``.

    Members
    -------
    i : ``In(stream.Signature(layout, always_ready=True))``
        A beat is written on every cycle ``i.valid`` is high; the writer must hold a
        credit for it (a beat written into a full FIFO overwrites the oldest).
    o : ``Out(stream.Signature(layout))``

    Latency
    -------
    :attr:`LATENCY` = 1 cycle from a beat written to the same beat valid on ``o``
    (``o.valid`` is a register: the fill level is non-zero).

    Throughput
    ----------
    One beat per cycle in and out.

    Backpressure
    ------------
    ``o.ready`` reaches only the read pointer and the fill level. The write enable of the
    storage (distributed RAM, asynchronous read) is ``i.valid`` itself: nothing of the
    read side lies in front of it.
    """

    #: Cycles from ``i`` to ``o`` (the fill level register).
    LATENCY = 1

    @classmethod
    def check_parameters(cls, layout, depth: int) -> None:
        check_param("CreditFifo", "depth", depth, 1, MAX_BUFFER_WORDS)

    def __init__(self, layout, depth: int):
        self._depth = depth
        super().__init__({"i": In(stream.Signature(layout, always_ready=True)),
                          "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = storage = memory.Memory(
            shape=self.i.payload.shape(), depth=depth, init=[])
        wr, rd = storage.write_port(), storage.read_port(domain="comb")
        produce = Signal(range(depth), name="produce")
        consume = Signal(range(depth), name="consume")
        level = Signal(range(depth + 1), name="level")
        take = Signal()
        m.d.comb += [
            wr.addr.eq(produce), wr.data.eq(self.i.payload), wr.en.eq(self.i.valid),
            rd.addr.eq(consume), self.o.payload.eq(rd.data),
            take.eq(self.o.valid & self.o.ready),
        ]
        # o.valid, level != 0, is a register of its own, computed from level's next value
        # (a beat written: non-empty; else the level, less the beat taken).
        nonempty = Signal(name="nonempty")
        m.d.sync += nonempty.eq(self.i.valid | Mux(take, level[1:].any(), level.any()))
        m.d.comb += self.o.valid.eq(nonempty)
        with m.If(self.i.valid):
            m.d.sync += produce.eq(ring_next(produce, depth))
        with m.If(take):
            m.d.sync += consume.eq(ring_next(consume, depth))
        m.d.sync += level.eq(level + self.i.valid - take)
        return m
