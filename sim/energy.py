"""Per-event energy table: named, cited, derived in code, overridable per config.

The only table so far is ``horowitz45``: M. Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014, keynote paper 1.1, the widely used 45 nm, 0.9 V
figures. The figures as published (pJ per operation; memories per 64-bit access):

=====================  =========  =====================================================
operation              energy     used for
=====================  =========  =====================================================
8-bit integer add      0.03 pJ    ``reg_byte`` (see below)
32-bit integer add     0.1 pJ     ``add_int32``, the accumulate half of ``mac_int8``
8-bit integer mult     0.2 pJ     the multiply half of ``mac_int8``
32-bit integer mult    3.1 pJ     ``mul_int32``
SRAM 8 KB, 64-bit      10 pJ      (not used: smaller than our banks)
SRAM 32 KB, 64-bit     20 pJ      ``sram_read_byte``, ``sram_write_byte``
SRAM 1 MB, 64-bit      100 pJ     (not used: larger than our banks)
DRAM, 64-bit           1.3-2.6 nJ ``dram_byte`` (the midpoint)
=====================  =========  =====================================================

Every event energy below is computed from those published numbers, with the reasoning
in a comment; none is typed in directly. Events are those of
:data:`edgetron.config.ENERGY_EVENTS` (pJ per event; per byte for the memories), and
``AcceleratorConfig.energy_overrides`` replaces single entries.
"""

from __future__ import annotations

import numpy as np

from edgetron.config import ENERGY_EVENTS, ENERGY_TABLES, AcceleratorConfig

__all__ = [
    "EVENT_INDEX",
    "HOROWITZ45",
    "HOROWITZ45_PUBLISHED",
    "TABLES",
    "energy_table",
    "energy_vector",
]

#: The published 45 nm figures (Horowitz, ISSCC 2014), in pJ; memories per 64-bit access.
HOROWITZ45_PUBLISHED: dict[str, float] = {
    "add_int8": 0.03,
    "add_int32": 0.1,
    "mul_int8": 0.2,
    "mul_int32": 3.1,
    "sram_8kb_64bit": 10.0,
    "sram_32kb_64bit": 20.0,
    "sram_1mb_64bit": 100.0,
    "dram_64bit_low": 1300.0,
    "dram_64bit_high": 2600.0,
}

#: Bytes per access of the published memory figures (64-bit words).
_ACCESS_BYTES = 64 // 8


def _horowitz45() -> dict[str, float]:
    """The ``horowitz45`` events (pJ; per byte for memories) from the published figures."""
    h = HOROWITZ45_PUBLISHED
    return {
        # An int8 x int8 MAC with int32 accumulation is one 8-bit multiply plus one
        # 32-bit add (the PE's adder is as wide as its accumulator).
        "mac_int8": h["mul_int8"] + h["add_int32"],
        # Partial-sum accumulation, bias add, residual sum, vector-unit sums.
        "add_int32": h["add_int32"],
        # Requantization (acc * m), residual rescaling, softmax/GELU/LayerNorm products.
        "mul_int32": h["mul_int32"],
        # Horowitz gives no register figure. A byte clocked through a pipeline register
        # switches about as much logic as an 8-bit ripple add (8 flip-flops vs 8 full
        # adders); we take the 8-bit add energy. An assumption, overridable.
        "reg_byte": h["add_int8"],
        # The buffers are built from 32 KB banks (the array-edge banking every preset
        # uses: one bank feeds a slice of rows or columns), so an access costs what a
        # 32 KB array costs, spread over the 8 bytes of a 64-bit access. Writes are
        # taken equal to reads (the paper lists reads).
        "sram_read_byte": h["sram_32kb_64bit"] / _ACCESS_BYTES,
        "sram_write_byte": h["sram_32kb_64bit"] / _ACCESS_BYTES,
        # DRAM: the midpoint of the published 1.3-2.6 nJ per 64-bit access.
        "dram_byte": (h["dram_64bit_low"] + h["dram_64bit_high"]) / 2 / _ACCESS_BYTES,
    }


#: The ``horowitz45`` table, pJ per event (per byte for memories), derived above.
HOROWITZ45: dict[str, float] = _horowitz45()

#: Named tables; keys are :data:`edgetron.config.ENERGY_TABLES`.
TABLES: dict[str, dict[str, float]] = {"horowitz45": HOROWITZ45}

#: Column of each event in :func:`energy_vector` and in the simulator's event counts.
EVENT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ENERGY_EVENTS)}

for _name, _table in TABLES.items():
    assert set(_table) == set(ENERGY_EVENTS), (
        f"energy table {_name!r} must cover exactly the events {ENERGY_EVENTS}; "
        f"missing {sorted(set(ENERGY_EVENTS) - set(_table))}, "
        f"extra {sorted(set(_table) - set(ENERGY_EVENTS))}"
    )
assert set(TABLES) == set(ENERGY_TABLES), "sim.energy.TABLES must match config.ENERGY_TABLES"


def energy_table(cfg: AcceleratorConfig) -> dict[str, float]:
    """pJ per event for ``cfg``: its named table with ``cfg.energy_overrides`` applied.

    Returns
    -------
    dict
        One entry per event of :data:`edgetron.config.ENERGY_EVENTS`, in that order.
    """
    base = TABLES[cfg.energy_table]
    overrides = cfg.energy_override_dict
    return {name: float(overrides.get(name, base[name])) for name in ENERGY_EVENTS}


def energy_vector(cfg: AcceleratorConfig) -> np.ndarray:
    """:func:`energy_table` as a float64 array indexed by :data:`EVENT_INDEX` (pJ)."""
    table = energy_table(cfg)
    return np.array([table[name] for name in ENERGY_EVENTS], dtype=np.float64)
