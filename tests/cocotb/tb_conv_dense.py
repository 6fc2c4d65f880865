"""cocotb testbench of the dense ConvUnit (edgetron_conv_dense), run by test_runners.py.

The model is tests/models/conv_dense.py, the same as the Amaranth tests': every
convolution is built from a seed, cut into bands, encoded with rtl.conv's codec and
driven on the four input streams (cmd, a, w, ch) with random valid gaps; ``o`` is taken
with random ready backpressure. Every output is compared with golden (conv2d_requant,
then the clamp) bit for bit; without gaps or backpressure every call's command, first
and last output handshake is at the cycle of the simulator's model
(sim.units.conv_dense.conv_sequence). After the expected beats, ``o`` must stay quiet.

With ``EDGETRON_TB_SWEEP`` naming a JSON file ``{"convs": [[h, w, c, n, r, s, sh, sw,
pt, pb, pl, pr, band_rows], ...]}``, one more test (``conv_dense_sweep``) runs those
convolutions back to back at full rate (results checked) and writes every call's
(command, first output, last output) cycles, RTL and simulator, for the caller to
compare, to ``EDGETRON_TB_SWEEP_OUT`` (benchmarks/sim_vs_rtl.py, the slow full layer).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import cocotb
import numpy as np
from harness import CallBench, load_manifest

from edgetron.config import AcceleratorConfig
from tests.models.conv_dense import INPUTS, DenseModel, extreme_case, random_case, random_conv

MANIFEST = load_manifest()
CFG = AcceleratorConfig.from_dict(MANIFEST["config"], source="manifest")
MODEL = DenseModel(CFG)
R, C = CFG.rows, CFG.cols


@dataclasses.dataclass(frozen=True)
class Sequence:
    """Convolutions back to back ``(c, n, geometry, band_rows)``, one stream behaviour."""

    name: str
    convs: tuple
    gap: float = 0.0
    stall: float = 0.0
    seed: int = 0
    extremes: bool = False

    def cases(self):
        rng = np.random.default_rng(self.seed)
        if self.extremes:
            ends = [(-128, -128), (-128, 127), (127, -128), (127, 127)]
            return [extreme_case(CFG, c, n, g, *ends[i % 4])
                    for i, (c, n, g, _) in enumerate(self.convs)]
        return [random_case(rng, CFG, c, n, g, band_rows=b) for c, n, g, b in self.convs]


def _random_convs(rng, count: int):
    return tuple((*random_conv(rng, CFG, 2 * R + 1, 2 * C + 1, max_hw=6), None)
                 for _ in range(count))


#: Slices of ResNet-18 layers at 14 x 14 (a few of their channels, so that Icarus is
#: quick): layer1's 3x3 conv (stride 1, padding 1), layer2's first 3x3 (stride 2,
#: padding 1) and its 1x1 stride-2 downsample, bands of 4 output rows.
RESNET_SLICES = ((2 * R, C, (14, 14, 3, 3, (1, 1), (1, 1, 1, 1)), 4),
                 (R + 2, C, (14, 14, 3, 3, (2, 2), (1, 1, 1, 1)), 4),
                 (2 * R, 2 * C, (14, 14, 1, 1, (2, 2), (0, 0, 0, 0)), 4))


def _sequences() -> list[Sequence]:
    out = []
    for j, (gap, stall) in enumerate(((0.0, 0.0), (0.3, 0.4))):
        rng = np.random.default_rng(7000 + 17 * R + C + j)
        out.append(Sequence(f"random{j}", _random_convs(rng, 2), gap, stall, seed=j))
    out += [
        Sequence("resnet18_slices", RESNET_SLICES, seed=18),
        Sequence("extremes", ((2 * R, C, (3, 3, 3, 3, (1, 1), (1, 1, 1, 1)), None),
                              (R + 1, C + 1, (4, 4, 3, 3, (2, 2), (1, 1, 1, 1)), None)),
                 extremes=True),
    ]
    return out


SEQUENCES = _sequences()


class Bench(CallBench):
    """The unit with one source per input stream and one sink on ``o``."""

    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
        super().__init__(dut, INPUTS, gap, stall, seed)

    async def run(self, cases, *, timing: bool) -> np.ndarray:
        """Send ``cases`` back to back and check them; returns every call's (command,
        first output, last output) cycles, counted from the first command handshake."""
        beats, cycles, cmd = await self.send(MODEL.encode(cases), MODEL.n_out(cases),
                                             4 * (R + C + 20))
        MODEL.check(cases, beats, cycles, cmd, timing=timing)
        firsts, lasts, i = [], [], 0
        for call in MODEL.calls(cases):
            nb = MODEL.out_beats(call)
            firsts.append(cycles[i])
            lasts.append(cycles[i + nb - 1])
            i += nb
        return np.array([cmd, firsts, lasts]).T - cmd[0]


@cocotb.test()
@cocotb.parametrize(seq=SEQUENCES)
async def conv_dense_sequence(dut, seq: Sequence):
    """Convolutions back to back: bit-exact; at full rate, every call's cycles exact."""
    bench = Bench(dut, seq.gap, seq.stall, seq.seed)
    await bench.start()
    await bench.run(seq.cases(), timing=seq.gap == 0.0 and seq.stall == 0.0)


if os.environ.get("EDGETRON_TB_SWEEP"):
    @cocotb.test()
    async def conv_dense_sweep(dut):
        """The convolutions of EDGETRON_TB_SWEEP back to back at full rate (results and
        cycles checked); writes every call's cycles, RTL and simulator."""
        spec = json.loads(Path(os.environ["EDGETRON_TB_SWEEP"]).read_text())
        rng = np.random.default_rng(2024)
        cases = [random_case(rng, CFG, c, n, (h, w, r, s, (sh, sw), (pt, pb, pl, pr)),
                             band_rows=b, clamp=False)
                 for h, w, c, n, r, s, sh, sw, pt, pb, pl, pr, b in spec["convs"]]
        bench = Bench(dut)
        await bench.start()
        rtl = await bench.run(cases, timing=False)
        Path(os.environ["EDGETRON_TB_SWEEP_OUT"]).write_text(json.dumps({
            "rtl": rtl.tolist(), "sim": MODEL.schedule(cases).tolist(),
            "calls": [list(c) for c in MODEL.calls(cases)],
        }))
