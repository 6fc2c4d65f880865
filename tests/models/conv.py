"""Model of the convolution unit's depthwise mode for every testbench: stimuli, golden,
codec, timing, scoreboard.

Nothing here depends on a simulator. The Amaranth tests (tests/rtl/test_conv.py)
build calls with :func:`random_call` / :func:`extreme_case`, drive the beats of
:meth:`DwModel.encode` and hand the output handshakes (payload and cycle) and the command
handshake cycles to :meth:`DwModel.check`: every output is compared with golden
(``golden.conv.conv2d_requant`` with ``groups = C``, then the clamp), bit for bit, and at
full input rate without backpressure every command and every call's first and last
output handshake is the cycle of ``sim.units.conv.dw_schedule`` (the simulator's model).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgetron.config import AcceleratorConfig
from edgetron.golden.conv import conv2d_requant
from edgetron.golden.intops import INT8_MAX, INT8_MIN
from edgetron.hw.conv import DW_MAX_KERNEL, dw_fits
from edgetron.rtl.conv import DwCall, decode_dw, encode_dw
from edgetron.sim.units.conv import dw_schedule

__all__ = ["DwCase", "DwModel", "extreme_case", "random_call", "random_case"]

INPUTS = ("cmd", "w", "p", "x")


@dataclasses.dataclass
class DwCase:
    """One call with its operands: ``x`` (c, h, w), ``w`` (c, r, s), per-channel
    ``bias``, ``mult``, ``shift`` and the clamp ``lo``, ``hi``."""

    call: DwCall
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    @property
    def channels(self) -> int:
        return self.x.shape[0]

    def golden(self) -> np.ndarray:
        """``clamp(conv2d_requant(...), lo, hi)`` with ``groups = c``: int64 (c, ho, wo)."""
        c = self.call
        y = conv2d_requant(self.x[None], self.w[:, None], self.bias, self.mult, self.shift,
                           (c.sh, c.sw), (c.pt, c.pb, c.pl, c.pr), groups=self.channels)[0]
        return np.clip(y, self.lo, self.hi)


def random_call(rng: np.random.Generator, rows: int, line_width: int, *, kernel=None,
                stride=None, max_h: int = 9) -> DwCall:
    """A random call that fits: kernel ``r x s`` with ``r*s <= rows`` (or ``kernel``),
    strides 1 or 2, padding per side in golden's range, ``w <= line_width``."""
    while True:
        if kernel is None:
            r = int(rng.integers(1, min(DW_MAX_KERNEL, rows) + 1))
            s = int(rng.integers(1, min(DW_MAX_KERNEL, rows // r) + 1))
        else:
            r, s = kernel
        sh, sw = (int(v) for v in (rng.integers(1, 3, 2) if stride is None else stride))
        pads = [int(rng.integers(0, max(k, st))) for k, st in ((r, sh), (r, sh), (s, sw),
                                                              (s, sw))]
        h = int(rng.integers(1, max_h + 1))
        w = int(rng.integers(1, line_width + 1))
        call = DwCall(h, w, r, s, sh, sw, *pads)
        if dw_fits(rows, line_width, *call):
            return call


def random_case(rng: np.random.Generator, call: DwCall, channels: int) -> DwCase:
    """Random int8 operands, per-channel requantization that keeps most outputs in range,
    a random clamp."""
    taps = call.r * call.s
    x = rng.integers(-128, 128, (channels, call.h, call.w))
    w = rng.integers(-128, 128, (channels, call.r, call.s))
    bias = rng.integers(-50_000, 50_000, channels)
    shift = rng.integers(20, 31, channels)
    # |acc| up to about taps * 2**14: scale it to about int8.
    mult = (2.0 ** shift / (taps * 128.0) * rng.uniform(0.5, 4.0, channels)).astype(np.int64)
    lo = int(rng.integers(-128, 1))
    hi = int(rng.integers(0, 128))
    return DwCase(call, x, w, bias, mult, shift, lo, hi)


def extreme_case(call: DwCall, channels: int, xv: int, wv: int) -> DwCase:
    """Every input ``xv`` and every weight ``wv`` (the int8 ends), the largest biases of
    both signs, full multiplier range, no clamp."""
    x = np.full((channels, call.h, call.w), xv)
    w = np.full((channels, call.r, call.s), wv)
    bias = np.array([(2**31 - 1 - 2**14 * 49) * (1 if i % 2 else -1) for i in range(channels)])
    mult = np.array([2**31 - 1 if i % 3 == 0 else 1 << 20 for i in range(channels)])
    shift = np.array([62 if i % 3 == 0 else 1 + i % 30 for i in range(channels)])
    return DwCase(call, x, w, bias, mult, shift)


class DwModel:
    """The depthwise unit of ``config`` with rows of ``line_width`` words, as the
    testbenches see it."""

    def __init__(self, config: AcceleratorConfig, line_width: int):
        self.cfg = config
        self.line_width = line_width

    def encode(self, cases) -> dict[str, list[int]]:
        """The beats of every stream for ``cases`` back to back."""
        words = {name: [] for name in INPUTS}
        for case in cases:
            enc = encode_dw(self.cfg, self.line_width, case.call, case.x, case.w, case.bias,
                            case.mult, case.shift, case.lo, case.hi)
            for name in INPUTS:
                words[name] += enc[name]
        return words

    def schedule(self, cases) -> np.ndarray:
        """The simulator's ``(command, first output, last output)`` cycles of each call."""
        shapes = np.array([tuple(c.call) for c in cases], dtype=np.int64).reshape(-1, 10)
        return dw_schedule(self.cfg.rows, shapes)

    def check(self, cases, beats, out_cycles, cmd_cycles, *, timing: bool) -> None:
        """Assert every call's output equals golden and, with ``timing``, that the command
        and output handshakes are at the simulator's cycles."""
        n_out = sum(c.call.ho * c.call.wo for c in cases)
        assert len(beats) == n_out, f"{len(beats)} output beats, expected {n_out}"
        i = 0
        for k, case in enumerate(cases):
            n = case.call.ho * case.call.wo
            got = decode_dw(self.cfg, beats[i:i + n], case.call, case.channels)
            want = case.golden()
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)[0]
                raise AssertionError(
                    f"call {k} {case.call}: output {tuple(bad)} is {got[tuple(bad)]}, "
                    f"golden {want[tuple(bad)]}")
            i += n
        if timing:
            sched = self.schedule(cases) + cmd_cycles[0]   # the first command at cycle 0
            firsts, lasts = [], []
            i = 0
            for case in cases:
                n = case.call.ho * case.call.wo
                firsts.append(out_cycles[i])
                lasts.append(out_cycles[i + n - 1])
                i += n
            measured = np.array([cmd_cycles, firsts, lasts]).T
            assert np.array_equal(measured, sched), (
                f"measured (command, first out, last out) per call\n{measured}\n"
                f"simulator\n{sched}")
