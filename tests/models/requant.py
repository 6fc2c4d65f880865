"""Model of the requantizer for every testbench: codec, golden, latency and stimuli.

Used by tests/rtl/test_requant.py (Amaranth simulator) and tests/cocotb/tb_requant.py
(exported Verilog); nothing here depends on a simulator.
"""

from __future__ import annotations

import numpy as np

from edgetron.golden.intops import INT32_MAX, INT32_MIN, M_MAX, S_MAX, S_MIN, requantize
from edgetron.hw.gemm import REQUANT_LATENCY
from edgetron.rtl.requant import decode_requant, encode_requant

__all__ = ["LATENCY", "RequantModel", "extreme_vectors", "random_vectors", "tie_vectors"]

#: Cycles from a beat accepted to the same beat valid at the output (the timing model).
LATENCY = REQUANT_LATENCY


class RequantModel:
    """The requantizer with ``lanes`` lanes, ``acc_bits`` in and ``out_bits`` out."""

    def __init__(self, lanes: int, acc_bits: int = 32, out_bits: int = 8):
        self.lanes = lanes
        self.acc_bits = acc_bits
        self.out_bits = out_bits

    @classmethod
    def from_parameters(cls, params: dict) -> RequantModel:
        """From the ``parameters`` of an export manifest."""
        return cls(params["lanes"], params["acc_bits"], params["out_bits"])

    def encode(self, acc, mult, shift) -> list[int]:
        """Input beats (rows of ``acc`` with per-lane ``mult``, ``shift``) as payload words."""
        return encode_requant(acc, mult, shift, acc_bits=self.acc_bits)

    def decode(self, words) -> np.ndarray:
        """Output payload words as an int64 array (beats, lanes)."""
        return decode_requant(words, self.lanes, out_bits=self.out_bits)

    def expected(self, acc, mult, shift) -> np.ndarray:
        """golden.intops.requantize of the same values."""
        return requantize(acc, mult, shift, bits=self.out_bits)

    def quiet_cycles(self, margin: int = 16) -> int:
        """Cycles to watch the output for a stray beat after the expected ones."""
        return LATENCY + margin


def random_vectors(rng, beats: int, lanes: int, acc_bits: int = 32):
    """Random ``(acc, mult, shift)``: every legal shift mixed with shifts near
    ``log2(|acc| * mult)``, so that outputs land inside the output range, on its edges
    and beyond it."""
    half = 1 << (acc_bits - 1)
    shape = (beats, lanes)
    acc = rng.integers(-half, half, size=shape)
    mult = rng.integers(0, M_MAX + 1, size=shape)
    shift = rng.integers(S_MIN, S_MAX + 1, size=shape)
    near = rng.random(shape) < 0.6
    shift[near] = rng.integers(acc_bits + 20, acc_bits + 31, size=int(near.sum()))
    return acc, mult, np.clip(shift, S_MIN, S_MAX)


def extreme_vectors(lanes: int, acc_bits: int = 32):
    """Every combination of extreme ``acc`` (the ends of its range, -1, 0, 1), ``mult``
    (0, 1, M_MAX) and ``shift`` (1, 2, 31, 61, 62), padded to whole beats."""
    half = 1 << (acc_bits - 1)
    acc_vals = sorted({max(-half, INT32_MIN), -half + 1, -1, 0, 1, min(half - 1, INT32_MAX)})
    grid = np.array(np.meshgrid(acc_vals, [0, 1, M_MAX], [S_MIN, S_MIN + 1, 31, S_MAX - 1, S_MAX],
                                indexing="ij")).reshape(3, -1)
    pad = (-grid.shape[1]) % lanes
    grid = np.concatenate([grid, np.tile(grid[:, :1], pad)], axis=1)
    return tuple(row.reshape(-1, lanes) for row in grid)


def tie_vectors(out_bits: int = 8, acc_bits: int = 32):
    """One-lane beats whose ``acc * mult`` lands exactly on, and one either side of, every
    rounding tie ``(k + 1/2) * 2**shift`` around the output limits (``k`` in ``lo - 1,
    lo, hi - 1, hi``) and around 0 (``k`` in ``-2 .. 1``): small shifts put the tie in
    ``acc`` (``mult = 1``), ``shift = 31`` in ``mult = 2**30 +- 1``. Only the ``acc``
    values the ``acc_bits`` range holds are kept."""
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    half = 1 << (acc_bits - 1)
    rows = []
    for k in (lo - 1, lo, hi - 1, hi, -2, -1, 0, 1):
        for s in (1, 2, 7, 22):
            tie = (2 * k + 1) << (s - 1)
            rows += [(tie + d, 1, s) for d in (-1, 0, 1)]
        rows += [(2 * k + 1, (1 << 30) + d, 31) for d in (-1, 0, 1)]
    rows = [row for row in rows if -half <= row[0] < half]
    return tuple(np.array(col).reshape(-1, 1) for col in zip(*rows, strict=True))
