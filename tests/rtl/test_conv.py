"""Amaranth-simulator tests of the depthwise unit (rtl/conv/depthwise.py).

Every output is compared with golden bit for bit; at full input rate without
backpressure every command and every call's first and last output handshake is at the
cycle of the simulator's model (sim.units.conv.dw_schedule), call by call and for the
sequence.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.rtl.conv import DepthwiseUnit, DwCall, check_dw_shape
from tests.models.conv import DwModel, extreme_case, random_call, random_case

from .streams import StreamSink, StreamSource, run

#: A 9-row array holds every kernel of up to 9 taps (3x3, 1x7, ...); 4 channels.
CFG = AcceleratorConfig(name="dw-9x4", rows=9, cols=4, ifmap_sram_bytes=4096)
LINE = 16


def _run(cfg, line, cases, *, gap=0.0, stall=0.0, seed=0):
    dut = DepthwiseUnit(cfg, line_width=line)
    model = DwModel(cfg, line)
    words = model.encode(cases)
    sources = {name: StreamSource(getattr(dut, name), beats, gap=gap if name != "cmd" else 0.0,
                                  seed=seed + i)
               for i, (name, beats) in enumerate(words.items())}
    sink = StreamSink(dut.o, stall=stall, seed=seed + 7)
    n_out = sum(c.call.ho * c.call.wo for c in cases)
    run(dut, sources=sources.values(), sinks=[sink], until=lambda: len(sink.beats) == n_out,
        quiet=40)
    model.check(cases, sink.beats, sink.cycles, sources["cmd"].accepted,
                timing=gap == 0.0 and stall == 0.0)
    return sink


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_exact_cycles(seed):
    """Random kernels (r*s <= 9), strides 1 and 2, padding 0..max, partial channel groups,
    back to back at full rate: bit-exact, command and output cycles as the simulator."""
    rng = np.random.default_rng(seed)
    cases = [random_case(rng, random_call(rng, CFG.rows, LINE), int(rng.integers(1, 5)))
             for _ in range(5)]
    _run(CFG, LINE, cases)


@pytest.mark.parametrize("gap,stall", [(0.3, 0.0), (0.0, 0.4), (0.3, 0.3)])
def test_random_gaps_and_backpressure(gap, stall):
    """Random valid gaps on every input and ready backpressure on the output."""
    rng = np.random.default_rng(int(gap * 10 + stall * 100))
    cases = [random_case(rng, random_call(rng, CFG.rows, LINE), 4) for _ in range(4)]
    _run(CFG, LINE, cases, gap=gap, stall=stall, seed=5)


def test_mobilenet_slices():
    """14x14 slices of MobileNetV2's depthwise layers (3x3, padding 1, stride 1 and 2),
    and a layer whose line is the whole line buffer."""
    rng = np.random.default_rng(14)
    calls = [DwCall(14, 14, 3, 3, 1, 1, 1, 1, 1, 1), DwCall(14, 14, 3, 3, 2, 2, 0, 1, 0, 1),
             DwCall(14, 14, 3, 3, 2, 2, 1, 1, 1, 1), DwCall(3, LINE, 3, 3, 1, 1, 1, 1, 1, 1)]
    _run(CFG, LINE, [random_case(rng, c, 4) for c in calls])


def test_extremes():
    """Inputs and weights at the int8 ends, the largest biases, multipliers and shifts."""
    call = DwCall(5, 6, 3, 3, 1, 1, 1, 1, 1, 1)
    cases = [extreme_case(call, 4, xv, wv) for xv in (-128, 127) for wv in (-128, 127)]
    _run(CFG, LINE, cases)


@pytest.mark.parametrize("kernel,rows", [((5, 5), 25), ((7, 7), 49)])
def test_large_kernels(kernel, rows):
    """5x5 and 7x7 windows on arrays with enough rows, stride 1 and 2, padding up to 3."""
    cfg = AcceleratorConfig(name=f"dw-{rows}x2", rows=rows, cols=2, ifmap_sram_bytes=4096)
    rng = np.random.default_rng(rows)
    r, s = kernel
    cases = [random_case(rng, DwCall(9, 10, r, s, 1, 1, 3, 3, 3, 2), 2),
             random_case(rng, DwCall(8, 9, r, s, 2, 2, 0, 1, 2, 3), 2)]
    _run(cfg, LINE, cases)


def test_shape_check_and_parameters():
    """The host check names the fit rule; bad parameters raise before construction."""
    with pytest.raises(ValueError, match="r\\*s <= rows 9"):
        check_dw_shape(CFG, LINE, DwCall(5, 5, 5, 5))
    with pytest.raises(ValueError, match="line width 16"):
        check_dw_shape(CFG, LINE, DwCall(5, 17, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        check_dw_shape(CFG, LINE, DwCall(5, 5, 3, 3, 1, 1, 3, 0, 0, 0))
    with pytest.raises(ConfigError, match="line_width"):
        DepthwiseUnit(CFG, line_width=1000)
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        DepthwiseUnit("edge-16")


def test_tiny_calls_reuse_banks():
    """Calls shorter than the column's pipeline, back to back: a call waits for the weight
    bank of the call two before it (hw.conv.dw_bank_reuse), and no in-flight window sees
    the next call's weights or parameters."""
    rng = np.random.default_rng(9)
    calls = [DwCall(1, 1, 1, 1), DwCall(2, 1, 2, 1), DwCall(1, 2, 1, 1, 1, 2),
             DwCall(1, 1, 1, 1), DwCall(2, 2, 3, 3, 1, 1, 1, 0, 1, 0), DwCall(1, 1, 1, 1)]
    _run(CFG, LINE, [random_case(rng, c, 4) for c in calls])


def test_loader_waits_for_the_line_buffer():
    """Tall images whose sweeps are slower than their input (wide padding, backpressure):
    the loader runs a whole line buffer ahead and then waits; at full rate its waits are
    the model's (row memory free once the output row that needed it last is swept)."""
    rng = np.random.default_rng(30)
    calls = [DwCall(30, 3, 1, 7, 1, 1, 0, 0, 6, 6), DwCall(24, 4, 3, 3, 1, 1, 2, 0, 1, 1),
             DwCall(25, 5, 7, 1, 2, 1, 6, 6, 0, 0)]
    cases = [random_case(rng, c, 4) for c in calls]
    _run(CFG, LINE, cases)
    _run(CFG, LINE, cases, stall=0.8, seed=31)
