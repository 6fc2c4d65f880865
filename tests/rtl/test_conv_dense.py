"""Amaranth-simulator tests of the dense ConvUnit (rtl/conv/dense.py, rtl/conv/im2col.py).

Every output is compared with golden (conv2d_requant, then the clamp) bit for bit; at
full input rate without backpressure every call's command, first and last output
handshake is at the cycle of the simulator's model (sim.units.conv_dense.conv_sequence).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import AcceleratorConfig, ConfigError
from edgetron.rtl.conv import ConvCall, ConvUnit, check_conv_call
from tests.models.conv_dense import (
    DenseModel,
    extreme_case,
    random_case,
    random_conv,
)

from .streams import StreamSink, StreamSource, run

#: A 4x4 array, double-buffered: 256 band words and 512 weight words per slot, 128
#: accumulator rows.
CFG = AcceleratorConfig(name="conv-4x4", rows=4, cols=4, ifmap_sram_bytes=2048,
                        weight_sram_bytes=4096, ofmap_sram_bytes=2048)


def _run(cfg, cases, *, gap=0.0, stall=0.0, seed=0):
    dut = ConvUnit(cfg)
    model = DenseModel(cfg)
    words = model.encode(cases)
    sources = {name: StreamSource(getattr(dut, name), beats,
                                  gap=gap if name != "cmd" else 0.0, seed=seed + i)
               for i, (name, beats) in enumerate(words.items())}
    sink = StreamSink(dut.o, stall=stall, seed=seed + 7)
    n_out = model.n_out(cases)
    run(dut, sources=sources.values(), sinks=[sink], until=lambda: len(sink.beats) == n_out,
        quiet=40)
    model.check(cases, sink.beats, sink.cycles, sources["cmd"].accepted,
                timing=gap == 0.0 and stall == 0.0)
    return sink


@pytest.mark.parametrize("seed", [3, 6, 8])
def test_random_convs_exact_cycles(seed):
    """Random kernels 1x1..7x7, strides 1 and 2, padding 0..max per side, C and K not
    multiples of the array, bands back to back at full rate: bit-exact, every command
    and output at the simulator's cycle."""
    rng = np.random.default_rng(seed)
    cases = [random_case(rng, CFG, *random_conv(rng, CFG, 6, 6, max_hw=7)) for _ in range(3)]
    _run(CFG, cases)


def test_1x1_and_7x7():
    """A 1x1 conv (the GEMM) and a 7x7 stride-2 conv with padding 3 (ResNet's stem)."""
    rng = np.random.default_rng(7)
    cases = [random_case(rng, CFG, 5, 6, (6, 5, 1, 1, (1, 1), (0, 0, 0, 0))),
             random_case(rng, CFG, 3, 4, (9, 9, 7, 7, (2, 2), (3, 3, 3, 3)))]
    _run(CFG, cases)


@pytest.mark.parametrize("gap,stall", [(0.3, 0.0), (0.0, 0.4), (0.3, 0.3)])
def test_random_gaps_and_backpressure(gap, stall):
    """Random valid gaps on every input and ready backpressure on the output."""
    rng = np.random.default_rng(int(gap * 10 + stall * 100))
    cases = [random_case(rng, CFG, *random_conv(rng, CFG, 6, 5, kernels=(1, 3)), band_rows=2)
             for _ in range(2)]
    _run(CFG, cases, gap=gap, stall=stall, seed=5)


def test_rows_wait_for_their_band_words():
    """1x1 with two channel blocks from idle: fold 0's rows read every other word of the
    band as it arrives, so rows 5..7 wait (sim test_conv_dense derives the 39 cycles)."""
    rng = np.random.default_rng(3)
    sink = _run(CFG, [random_case(rng, CFG, 8, 4, (1, 8, 1, 1, (1, 1), (0, 0, 0, 0)))])
    assert sink.cycles[-1] - sink.cycles[0] == 38 - 31


def test_steady_state_3x3_is_at_least_95_percent():
    """A 3x3 conv with C and K multiples of the array in 4 bands back to back: between
    the first band's last output and the last band's, the MACs of bands 2..4 fill at
    least 95 % of R*C*cycles, measured on the RTL's output handshakes (each band's issue
    span; here every step issues M = 16 = 4R rows in M cycles: 100 %)."""
    rng = np.random.default_rng(33)
    case = random_case(rng, CFG, 8, 8, (8, 8, 3, 3, (1, 1), (1, 1, 1, 1)), band_rows=2)
    sink = _run(CFG, [case])
    model = DenseModel(CFG)
    lasts, i, macs = [], 0, 0
    for b, call in enumerate(model.calls([case])):
        i += model.out_beats(call)
        lasts.append(sink.cycles[i - 1])
        if b > 0:
            macs += call.geometry(CFG.rows)[3] * 9 * 8 * 8
    util = macs / (CFG.rows * CFG.cols * (lasts[-1] - lasts[0]))
    assert len(lasts) == 4 and util >= 0.95, util


def test_tiny_bands_back_to_back():
    """Bands of one output pixel: calls shorter than the pipeline, so the clamp queue
    holds many calls in flight; the clamps differ per call."""
    rng = np.random.default_rng(11)
    cases = [random_case(rng, CFG, 2, 3, (3, 1, 3, 1, (1, 1), (0, 0, 0, 0)), band_rows=1)
             for _ in range(4)]
    cases += [random_case(rng, CFG, 1, 1, (1, 1, 1, 1, (1, 1), (0, 0, 0, 0)))
              for _ in range(6)]
    _run(CFG, cases)


def test_extremes():
    """int8 ends at the largest K the weight buffer allows (a 7x7 kernel of 8 channels:
    K = 49 * 2 * 4 = 392 <= 512, two column tiles would not fit), the largest biases,
    multipliers and shifts, both signs of the sums; and a clamp to [-3, 5]."""
    cases = [extreme_case(CFG, 8, 4, (3, 3, 7, 7, (1, 1), (3, 3, 3, 3)), -128, -128),
             extreme_case(CFG, 8, 4, (3, 3, 7, 7, (1, 1), (3, 3, 3, 3)), 127, -128),
             extreme_case(CFG, 3, 3, (4, 4, 3, 3, (1, 1), (1, 1, 1, 1)), 127, 127, -3, 5)]
    _run(CFG, cases)


def test_shape_check_and_parameters():
    """The host check names the rules; the unit rejects an os config naming dataflow."""
    with pytest.raises(ValueError, match="does not fit the ConvUnit"):
        check_conv_call(CFG, ConvCall(4, 4, 4, 4, 8, 3))
    with pytest.raises(ValueError, match="does not fit the ConvUnit"):
        check_conv_call(CFG, ConvCall(4, 4, 4, 4, 3, 3, pt=3))
    with pytest.raises(ValueError, match="does not fit the ConvUnit"):
        check_conv_call(CFG, ConvCall(64, 64, 4, 4, 3, 3))
    with pytest.raises(ConfigError, match="dataflow"):
        ConvUnit(AcceleratorConfig(name="os", rows=4, cols=4, dataflow="os"))
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        ConvUnit("edge-16")
