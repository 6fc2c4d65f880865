"""Model of the dense ConvUnit for every testbench: stimuli, bands, golden, codec, timing.

Nothing here depends on a simulator. A :class:`DenseCase` is one convolution (one image)
cut into bands of output rows (:func:`edgetron.hw.conv.conv_band`); every band is one
ConvUnit call. :meth:`DenseModel.check` compares the outputs with golden
(``golden.conv.conv2d_requant`` then the clamp) bit for bit and, at full input rate
without backpressure, every call's command, first and last output handshake with the
simulator's model (``edgetron.sim.units.conv_dense.conv_sequence``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.golden.conv import conv2d_out_size, conv2d_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw.conv import CONV_MAX_KERNEL, conv_bands, conv_fits
from edgetron.rtl.conv import ConvCall, decode_conv, encode_conv
from edgetron.sim.units.conv_dense import conv_sequence

__all__ = ["INPUTS", "DenseCase", "DenseModel", "extreme_case", "largest_band", "random_case",
           "random_conv", "random_geometry"]

INPUTS = ("cmd", "a", "w", "ch")


@dataclasses.dataclass
class DenseCase:
    """One convolution of ``x`` (c, h, w) by ``w`` (n, c, r, s) with per-channel
    ``bias``, ``mult``, ``shift``, strides, padding ``(pt, pb, pl, pr)`` and the clamp,
    run as bands of ``band_rows`` output rows."""

    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]
    band_rows: int
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    @property
    def out_size(self) -> tuple[int, int]:
        (_, h, w), (_, _, r, s) = self.x.shape, self.w.shape
        pt, pb, pl, pr = self.pad
        return (conv2d_out_size(h, r, self.stride[0], (pt, pb)),
                conv2d_out_size(w, s, self.stride[1], (pl, pr)))

    def bands(self) -> list[tuple[ConvCall, np.ndarray]]:
        """Every band's call and input rows, top to bottom."""
        c, h, w = self.x.shape
        n, _, r, s = self.w.shape
        sh, sw = self.stride
        pt, _, pl, pr = self.pad
        out = []
        for _, _, y0, hb, pt_b, pb_b in conv_bands(h, r, sh, pt, self.out_size[0],
                                                    self.band_rows).tolist():
            call = ConvCall(hb, w, c, n, r, s, sh, sw, pt_b, pb_b, pl, pr)
            out.append((call, self.x[:, y0:y0 + hb]))
        return out

    def golden(self) -> np.ndarray:
        """``clip(conv2d_requant(...), lo, hi)``: int64 (n, ho, wo)."""
        y = conv2d_requant(self.x[None], self.w, self.bias, self.mult, self.shift,
                           self.stride, self.pad)[0]
        return np.clip(y, self.lo, self.hi)


def random_geometry(rng, *, kernels=(1, 3, 5, 7), max_hw: int = 9):
    """``(h, w, r, s, stride, pad)``: a kernel from ``kernels``, strides 1 or 2, padding
    per side in golden's range (0 .. max(kernel, stride) - 1)."""
    while True:
        r = int(rng.choice(kernels))
        s = int(rng.choice(kernels)) if rng.random() < 0.3 else r
        sh, sw = (int(v) for v in rng.integers(1, 3, 2))
        pad = tuple(int(rng.integers(0, max(k, st))) for k, st in
                    ((r, sh), (r, sh), (s, sw), (s, sw)))
        h = int(rng.integers(1, max_hw + 1))
        w = int(rng.integers(1, max_hw + 1))
        if h + pad[0] + pad[1] >= r and w + pad[2] + pad[3] >= s and max(r, s) <= CONV_MAX_KERNEL:
            return h, w, r, s, (sh, sw), pad


def random_conv(rng, cfg: AcceleratorConfig, max_c: int, max_n: int, *, max_hw: int = 9,
                kernels=(1, 3, 5, 7)):
    """``(c, n, geometry)``: random channel counts up to ``max_c``, ``max_n`` and a
    :func:`random_geometry` whose bands of one output row fit the unit."""
    while True:
        c, n = int(rng.integers(1, max_c + 1)), int(rng.integers(1, max_n + 1))
        g = random_geometry(rng, kernels=kernels, max_hw=max_hw)
        h, w, r, s, stride, pad = g
        case = DenseCase(np.zeros((c, h, w), np.int64), np.zeros((n, c, r, s), np.int64),
                         np.zeros(n), np.zeros(n), np.ones(n), stride, pad, 1)
        try:
            largest_band(cfg, case)
        except ValueError:
            continue
        return c, n, g


def _requant(rng, k: int, n: int):
    """Per-channel (mult, shift) that map the typical |acc| of random int8 operands
    (about 128 * 128 * sqrt(K) / 3) to about 64, +-1 bit: some outputs saturate."""
    shift = rng.integers(24, 32, n)
    typical = 128 * 128 * math.sqrt(k) / 3
    mult = (2.0 ** shift * 64 / typical * rng.uniform(0.5, 2.0, n)).astype(np.int64)
    return np.maximum(mult, 1), shift


def random_case(rng, cfg: AcceleratorConfig, c: int, n: int, geometry, *,
                band_rows: int | None = None, clamp: bool = True) -> DenseCase:
    """Random int8 operands for ``geometry`` (:func:`random_geometry`) with ``c`` input
    and ``n`` output channels; bands of ``band_rows`` output rows (None: the most that
    fit the unit, at random fewer)."""
    h, w, r, s, stride, pad = geometry
    x = rng.integers(-128, 128, (c, h, w))
    wt = rng.integers(-128, 128, (n, c, r, s))
    bias = rng.integers(-50_000, 50_000, n)
    mult, shift = _requant(rng, r * s * c, n)
    lo, hi = (int(rng.integers(-128, 1)), int(rng.integers(0, 128))) if clamp else (-128, 127)
    case = DenseCase(x, wt, bias, mult, shift, stride, pad, 1, lo, hi)
    most = largest_band(cfg, case)
    case.band_rows = most if band_rows is None else min(band_rows, most)
    return case


def largest_band(cfg: AcceleratorConfig, case: DenseCase) -> int:
    """The most output rows per band for which every band fits the unit."""
    p = cfg.sim_params()
    best = 0
    for rows in range(1, case.out_size[0] + 1):
        case.band_rows = rows
        if all(conv_fits(p, *call) for call, _ in case.bands()):
            best = rows
        else:
            break
    if best == 0:
        raise ValueError(f"no band of {case.x.shape} by {case.w.shape} fits {cfg.name}")
    return best


def extreme_case(cfg: AcceleratorConfig, c: int, n: int, geometry, xv: int, wv: int,
                 lo: int = INT8_MIN, hi: int = INT8_MAX) -> DenseCase:
    """Every input ``xv`` and every weight ``wv``: the largest sums of their sign, the
    largest biases that keep them in int32, full multiplier range; the clamp given."""
    h, w, r, s, stride, pad = geometry
    k = r * s * c
    edge = 2**31 - 1 - k * 2**14
    bias = np.array([edge * (1 if i % 2 else -1) for i in range(n)])
    mult = np.array([2**31 - 1 if i % 3 == 0 else 1 << 20 for i in range(n)])
    shift = np.array([62 if i % 3 == 0 else 1 + (7 * i) % 30 for i in range(n)])
    case = DenseCase(np.full((c, h, w), xv), np.full((n, c, r, s), wv), bias, mult, shift,
                     stride, pad, 1, lo, hi)
    case.band_rows = largest_band(cfg, case)
    return case


class DenseModel:
    """The ConvUnit of ``config`` as the testbenches see it."""

    def __init__(self, config: AcceleratorConfig):
        self.cfg = config

    def calls(self, cases) -> list[ConvCall]:
        return [call for case in cases for call, _ in case.bands()]

    def encode(self, cases) -> dict[str, list[int]]:
        """The beats of every stream, every band of every case back to back."""
        words = {name: [] for name in INPUTS}
        for case in cases:
            for call, xb in case.bands():
                enc = encode_conv(self.cfg, call, xb, case.w, case.bias, case.mult,
                                  case.shift, case.lo, case.hi)
                for name in INPUTS:
                    words[name] += enc[name]
        return words

    def out_beats(self, call: ConvCall) -> int:
        _cb, _ho, _wo, m, _k = call.geometry(self.cfg.rows)
        return -(-call.n // self.cfg.cols) * m

    def n_out(self, cases) -> int:
        return sum(self.out_beats(call) for call in self.calls(cases))

    def schedule(self, cases) -> np.ndarray:
        """The simulator's ``(command, first output, last output)`` cycles of each call."""
        calls = np.array([tuple(c) for c in self.calls(cases)], np.int64).reshape(-1, 12)
        seq = conv_sequence(self.cfg.sim_params(), calls)
        return seq[:, [0, 6, 7]]

    def check(self, cases, beats, out_cycles, cmd_cycles, *, timing: bool) -> None:
        """Assert every output equals golden and, with ``timing``, that every command and
        every call's first and last output handshake is at the simulator's cycle."""
        assert len(beats) == self.n_out(cases), (
            f"{len(beats)} output beats, expected {self.n_out(cases)}")
        i = 0
        firsts, lasts = [], []
        for k, case in enumerate(cases):
            parts = []
            for call, _ in case.bands():
                nb = self.out_beats(call)
                parts.append(decode_conv(self.cfg, beats[i:i + nb], call))
                firsts.append(out_cycles[i])
                lasts.append(out_cycles[i + nb - 1])
                i += nb
            got = np.concatenate(parts, axis=1)
            want = case.golden()
            if not np.array_equal(got, want):
                bad = tuple(np.argwhere(got != want)[0])
                raise AssertionError(
                    f"case {k} x {case.x.shape} w {case.w.shape} stride {case.stride} pad "
                    f"{case.pad} bands of {case.band_rows}: output {bad} is {got[bad]}, "
                    f"golden {want[bad]}")
        if timing:
            measured = np.array([cmd_cycles, firsts, lasts]).T - cmd_cycles[0]
            sched = self.schedule(cases)
            assert np.array_equal(measured, sched), (
                f"measured (command, first out, last out) per call\n{measured}\n"
                f"simulator\n{sched}")
