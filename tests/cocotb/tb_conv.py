"""cocotb testbench of the convolution unit's depthwise mode (edgetron_conv), run by
test_runners.py.

The model is tests/models/conv.py, the same as the Amaranth tests': every call is built
from a seed, encoded with rtl.conv's codec and driven on the four input streams (cmd, w,
p, x), with random valid gaps; ``o`` is taken with random ready backpressure. Every
output is compared with golden (conv2d_requant with groups = C, then the clamp) bit for
bit; without gaps or backpressure every command and every call's first and last output
handshake is at the cycle of the simulator's model (sim.units.conv.dw_schedule). After
the expected output beats, every run watches ``o`` for a stray beat.

With ``EDGETRON_TB_SWEEP`` naming a JSON file ``{"calls": [[h, w, r, s, sh, sw, pt, pb,
pl, pr], ...]}``, one more test (``conv_sweep``) runs those calls back to back at full
rate and writes every output handshake cycle to ``EDGETRON_TB_SWEEP_OUT`` (used by
benchmarks/sim_vs_rtl.py and the slow full-layer runs).
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
from edgetron.rtl.conv import DwCall
from tests.models.conv import INPUTS, DwModel, extreme_case, random_call, random_case

MANIFEST = load_manifest()
CFG = AcceleratorConfig.from_dict(MANIFEST["config"], source="manifest")
LINE = MANIFEST["parameters"]["line_width"]
MODEL = DwModel(CFG, LINE)
R, C = CFG.rows, CFG.cols


@dataclasses.dataclass(frozen=True)
class Sequence:
    """Calls back to back (``kind``: random operands or the int8 extremes), with one
    stream behaviour for the whole sequence."""

    name: str
    calls: tuple[DwCall, ...]
    gap: float = 0.0
    stall: float = 0.0
    seed: int = 0
    extremes: bool = False

    def cases(self):
        rng = np.random.default_rng(self.seed)
        if self.extremes:
            ends = [(-128, -128), (-128, 127), (127, -128), (127, 127)]
            return [extreme_case(c, C, *ends[i % 4]) for i, c in enumerate(self.calls)]
        return [random_case(rng, c, int(rng.integers(1, C + 1))) for c in self.calls]


def _sequences() -> list[Sequence]:
    out = []
    for j, (gap, stall) in enumerate(((0.0, 0.0), (0.0, 0.0), (0.35, 0.0), (0.3, 0.6))):
        rng = np.random.default_rng(9000 + 17 * R + C + j)
        calls = tuple(random_call(rng, R, LINE) for _ in range(5))
        out.append(Sequence(f"random{j}", calls, gap, stall, seed=j))
    if R >= 9:
        w = min(14, LINE)
        out += [
            # 14x14 slices of MobileNetV2's depthwise layers: stride 1 and 2, padding 1
            # (TensorFlow's SAME at stride 2: 0 before, 1 after).
            Sequence("mobilenet_slices", (DwCall(14, w, 3, 3, 1, 1, 1, 1, 1, 1),
                                          DwCall(14, w, 3, 3, 2, 2, 0, 1, 0, 1),
                                          DwCall(14, w, 3, 3, 2, 2, 1, 1, 1, 1)), seed=14),
            Sequence("mobilenet_slices_gaps", (DwCall(14, w, 3, 3, 1, 1, 1, 1, 1, 1),
                                               DwCall(14, w, 3, 3, 2, 2, 1, 1, 1, 1)),
                     gap=0.2, stall=0.3, seed=15),
        ]
    out += [
        Sequence("extremes", tuple(DwCall(4, 5, min(3, R), 1, 1, 1, 1, 1, 0, 0)
                                   for _ in range(4)), extremes=True),
        # Calls shorter than the column's pipeline reuse a weight bank as soon as allowed.
        Sequence("tiny_calls", (DwCall(1, 1, 1, 1), DwCall(2, 1, 2, 1), DwCall(1, 2, 1, 1),
                                DwCall(1, 1, 1, 1), DwCall(1, 1, 1, 1)), seed=3),
    ]
    return out


SEQUENCES = _sequences()


class Bench(CallBench):
    """The unit with one source per input stream and one sink on ``o``."""

    def __init__(self, dut, gap: float = 0.0, stall: float = 0.0, seed: int = 0):
        super().__init__(dut, INPUTS, gap, stall, seed)

    async def run(self, cases, *, timing: bool) -> list[int]:
        """Send ``cases`` back to back, check them; returns the output handshake cycles,
        counted from the first command handshake (cycle 0)."""
        n_out = sum(c.call.ho * c.call.wo for c in cases)
        beats, cycles, cmd = await self.send(MODEL.encode(cases), n_out, 4 * (R + 20))
        MODEL.check(cases, beats, cycles, cmd, timing=timing)
        return [c - cmd[0] for c in cycles]


@cocotb.test()
@cocotb.parametrize(seq=SEQUENCES)
async def conv_sequence(dut, seq: Sequence):
    """Calls back to back: bit-exact; at full rate, command and output cycles exact."""
    bench = Bench(dut, seq.gap, seq.stall, seq.seed)
    await bench.start()
    await bench.run(seq.cases(), timing=seq.gap == 0.0 and seq.stall == 0.0)


if os.environ.get("EDGETRON_TB_SWEEP"):
    @cocotb.test()
    async def conv_sweep(dut):
        """The calls of EDGETRON_TB_SWEEP back to back at full rate (results and cycles
        checked); writes every output handshake cycle, from the first command."""
        spec = json.loads(Path(os.environ["EDGETRON_TB_SWEEP"]).read_text())
        rng = np.random.default_rng(2024)
        cases = [random_case(rng, DwCall(*call), C) for call in spec["calls"]]
        bench = Bench(dut)
        await bench.start()
        cycles = await bench.run(cases, timing=True)
        sched = MODEL.schedule(cases)
        Path(os.environ["EDGETRON_TB_SWEEP_OUT"]).write_text(json.dumps({
            "out_cycles": cycles, "rtl_cycles": cycles[-1] + 1,
            "sim_cycles": int(sched[-1, 2]) + 1,
        }))
