"""The GEMM unit's issue schedule, row by row: a reference for the closed-form timing model.

:func:`replay` steps the rules of the RTL unit (docs/rtl.md, "Overlap") one issued row
(ws) or operand pair (os) at a time, from the handshake cycles of every input beat:

* the command of call ``i`` is taken when its slot is free (the call ``NS`` before has
  issued its last row), two cycles after the previous command at the earliest;
* a stream's beat ``j`` of a call can be used from the cycle after its handshake;
* ws: a weight writer puts each tile into the idle bank, one row per cycle, a row as soon
  as its beat is usable, starting when the row issuer takes the previous tile (the first
  row of that tile's fold step); the row issuer starts a step when its tile is written
  and the previous step has issued its rows, and issues a row when its A beat and its
  column tile's channels are usable;
* os: the pair issuer issues a pair when its A and W beats and its channels are usable,
  a tile's last pair at least ``2R - 1`` cycles after the previous tile's last pair;
* an output beat leaves ``drain`` cycles after its row (pair) was issued.

Given no handshake cycles, it makes the full-rate ones itself (every stream valid on
every cycle), and its result must equal :func:`edgetron.sim.units.gemm.gemm_sequence`
(tests/sim/test_gemm.py checks thousands of random sequences). Given the cycles a
testbench observed, with input gaps, it predicts every output handshake exactly (with
``o.ready`` always high). Nothing here is shared with the closed form but the fixed
latencies and the beat counts of :mod:`edgetron.hw.gemm`.
"""

from __future__ import annotations

import dataclasses

from edgetron.config import AcceleratorConfig
from edgetron.hw.gemm import (
    GEMM_BUFFER_READ_CYCLES,
    GEMM_CMD_CYCLES,
    GEMM_EPILOGUE_CYCLES,
    GEMM_OUT_CYCLES,
    array_timing,
    gemm_channels_first,
    gemm_slots,
    gemm_stream_beats,
)

__all__ = ["CallTimes", "replay"]

STREAMS = ("a", "w", "ch")


def _cdiv(x: int, y: int) -> int:
    return -(-x // y)


@dataclasses.dataclass
class CallTimes:
    """What :func:`replay` gives for one call (absolute cycles)."""

    cmd: int                       # command handshake
    first: dict                    # stream -> handshake of its first beat
    issue_first: int               # first row / pair issued
    issue_end: int                 # the cycle after the last issue (the slot is free)
    param_free: int                # first cycle a later call may write its parameter half
    outputs: list                  # handshake of every output beat, in order

    @property
    def out_first(self) -> int:
        return self.outputs[0]

    @property
    def out_last(self) -> int:
        return self.outputs[-1]


def replay(config: AcceleratorConfig, shapes, handshakes=None) -> list[CallTimes]:
    """The schedule of the calls ``shapes`` (``(M, K, N)`` each, all accepted).

    ``handshakes``: None (full rate: every input valid on every cycle from cycle 0), or
    per call a dict ``{"cmd": cycle, "a": [cycles], "w": [...], "ch": [...]}`` of the
    handshakes a testbench observed.
    """
    p = config.sim_params()
    r, c = config.rows, config.cols
    ns = gemm_slots(p)
    ws = config.dataflow == "ws"
    latency, drain_delay, gap = array_timing(r, c, p.dataflow)
    drain = GEMM_BUFFER_READ_CYCLES + latency + GEMM_EPILOGUE_CYCLES + GEMM_OUT_CYCLES
    epilogue_read = GEMM_BUFFER_READ_CYCLES + latency          # issue to parameter read
    if not ws:
        drain += drain_delay
        epilogue_read += drain_delay
    all_channels = gemm_channels_first(p)
    out = []
    last_beat = {s: -1 for s in STREAMS}    # handshake of the previous call's last beat
    prev_cmd = -GEMM_CMD_CYCLES
    # ws: the cycle the issuer took the last tile written (the writer may go on), the
    # cycle after the writer's last row, the cycle after the last row issued.
    take, writer_free, issue_free = -10**9, -10**9, -10**9
    last_pair = -10**9                      # os: the last pair of the previous tile
    for i, (m, k, n) in enumerate(shapes):
        beats = dict(zip(STREAMS, gemm_stream_beats(p, m, k, n)[:3], strict=True))
        slot_free = out[i - ns].issue_end if i >= ns else -10**9
        param_free = out[i - ns].param_free if i >= ns else -10**9
        if handshakes is None:
            cmd = max(prev_cmd + GEMM_CMD_CYCLES, slot_free)
            arrive = {}
            for s in STREAMS:
                start = max(cmd + GEMM_CMD_CYCLES, last_beat[s] + 1)
                if s == "ch":
                    start = max(start, param_free)
                arrive[s] = [start + j for j in range(beats[s])]
        else:
            cmd = handshakes[i]["cmd"]
            arrive = {s: list(handshakes[i][s]) for s in STREAMS}
            assert all(len(arrive[s]) == beats[s] for s in STREAMS)
        prev_cmd = cmd
        for s in STREAMS:
            last_beat[s] = arrive[s][-1]
        usable = {s: [t + 1 for t in arrive[s]] for s in STREAMS}

        def channels(nt, usable=usable, n=n):
            need = n if all_channels else min(n, (nt + 1) * c)
            return usable["ch"][need - 1]

        outputs = []
        issued = []
        if ws:
            kf_n, nt_n = _cdiv(k, r), _cdiv(n, c)
            for s in range(nt_n * kf_n):
                nt, kf = divmod(s, kf_n)
                # The weight writer: R rows, real ones as their beats become usable.
                t0 = max(take, writer_free)
                row_at = t0 - 1
                for t in range(r):
                    row_at += 1
                    if kf * r + t < k:
                        row_at = max(row_at, usable["w"][nt * k + kf * r + t])
                writer_free = row_at + 1
                # The row issuer.
                at = issue_free - 1
                for mm in range(m):
                    at = max(at + 1, usable["a"][kf * m + mm], channels(nt))
                    if mm == 0:
                        at = max(at, writer_free, issue_free)
                        take = at
                    issued.append(at)
                    if kf == kf_n - 1:
                        outputs.append(at + drain)
                issue_free = at + 1
        else:
            mt_n, nt_n = _cdiv(m, r), _cdiv(n, c)
            at = issue_free - 1
            for tile in range(nt_n * mt_n):
                nt, mt = divmod(tile, mt_n)
                for kk in range(k):
                    at = max(at + 1, usable["a"][mt * k + kk], usable["w"][nt * k + kk],
                             channels(nt))
                    if kk == k - 1:
                        at = max(at, last_pair + gap)
                    issued.append(at)
                last_pair = at
                valid = min(r, m - mt * r)
                outputs += [at + drain + row for row in range(valid)]
            issue_free = at + 1
        end = issued[-1] + 1
        rows_last = 0 if ws else m - (_cdiv(m, r) - 1) * r - 1
        out.append(CallTimes(cmd, {s: arrive[s][0] for s in STREAMS}, issued[0], end,
                             end + epilogue_read + rows_last, outputs))
    return out
