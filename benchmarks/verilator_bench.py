"""Long random runs of a vector unit on Verilator, driven by a compiled C++ bench.

The cocotb testbenches spend a few hundred microseconds of Python per clock cycle, so 10^6
rows (about 10^7 cycles for the row units, whose row period is at least the reciprocal's 9
cycles) would take hours. Here the stimulus and the checking stay in Python, with the same
unit model, input monitor, scoreboard and coverage bins as the testbenches
(tests/models), and only the clocked handshakes run in C++:

1. the unit is exported (``edgetron.rtl.export``) and built with a small C++ bench generated
   from its manifest (``verilator --cc --exe --build``);
2. per chunk of segments, Python writes every input beat (``stream payload``) to a file;
   the bench offers them in order with random valid gaps and takes ``o`` with random ready
   stalls (a seeded generator), and writes every handshake: ``A <item> <cycle>`` for an
   accepted input beat, ``O <cycle> <payload>`` for an output beat, and ``S <cycle>`` for a
   stray output beat in the quiet window after the expected ones;
3. Python feeds the accepted beats to the model's :class:`VectorMonitor` (segments rebuilt
   from what the unit took), the output beats to the :class:`VectorScoreboard` (golden, bit
   for bit, mismatches counted) and samples the coverage bins.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "cocotb"))

from edgetron.config import AcceleratorConfig  # noqa: E402
from edgetron.rtl.export import export_unit  # noqa: E402
from edgetron.rtl.lint import WAIVERS, find_verilator  # noqa: E402
from tests.models.vector import Coverage, VectorModel, VectorMonitor, VectorScoreboard  # noqa: E402

__all__ = ["LongRun", "build_bench"]

_BENCH = r"""
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "verilated.h"
#include "V@TOP@.h"

static uint64_t state;
static double rnd() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 11) * (1.0 / 9007199254740992.0);
}
template <class T> static void put(T& port, const std::vector<uint32_t>& w) {
    uint64_t v = w.empty() ? 0 : w[0];
    if (w.size() > 1) v |= (uint64_t)w[1] << 32;
    port = (T)v;
}
template <std::size_t N> static void put(VlWide<N>& port, const std::vector<uint32_t>& w) {
    for (std::size_t k = 0; k < N; ++k) port[k] = k < w.size() ? w[k] : 0;
}
template <class T> static std::string hex(const T& port) {
    char b[32];
    snprintf(b, sizeof b, "%llx", (unsigned long long)port);
    return b;
}
template <std::size_t N> static std::string hex(const VlWide<N>& port) {
    std::string s;
    char b[16];
    for (int k = (int)N - 1; k >= 0; --k) {
        snprintf(b, sizeof b, "%08x", (unsigned)port[k]);
        s += b;
    }
    return s;
}
static std::vector<uint32_t> words(const std::string& h) {
    std::vector<uint32_t> w;
    for (int end = (int)h.size(); end > 0; end -= 8) {
        int start = end - 8 < 0 ? 0 : end - 8;
        w.push_back((uint32_t)strtoul(h.substr(start, end - start).c_str(), nullptr, 16));
    }
    return w;
}

int main(int argc, char** argv) {
    // items out seed gap stall expected_outputs quiet
    if (argc != 8) { fprintf(stderr, "usage: items out seed gap stall outputs quiet\n"); return 2; }
    FILE* in = fopen(argv[1], "r");
    FILE* out = fopen(argv[2], "w");
    state = strtoull(argv[3], nullptr, 10);
    double gap = atof(argv[4]), stall = atof(argv[5]);
    long expected = atol(argv[6]), quiet = atol(argv[7]);
    std::vector<int> stream;
    std::vector<std::vector<uint32_t>> payload;
    int s;
    char buf[4096];
    while (fscanf(in, "%d %4095s", &s, buf) == 2) {
        stream.push_back(s);
        payload.push_back(words(buf));
    }
    VerilatedContext ctx;
    V@TOP@ dut{&ctx};
@INIT@
    dut.o@US@ready = 0;
    dut.rst = 1;
    for (int k = 0; k < 3; ++k) { dut.clk = 0; dut.eval(); dut.clk = 1; dut.eval(); }
    dut.rst = 0;
    long cycle = 0, outputs = 0, idle = 0;
    std::size_t idx = 0;
    bool offered = false;
    while (outputs < expected) {
        if (!offered && idx < stream.size() && !(rnd() < gap)) {
            offered = true;
            switch (stream[idx]) {
@OFFER@
            }
        }
        int take = !(rnd() < stall);
        dut.o@US@ready = take;
        dut.clk = 0;
        dut.eval();
        bool accepted = false;
        if (offered) {
            switch (stream[idx]) {
@READY@
            }
        }
        bool out_beat = take && dut.o@US@valid;
        std::string word = out_beat ? hex(dut.o@US@payload) : std::string();
        dut.clk = 1;
        dut.eval();
        if (accepted) {
            fprintf(out, "A %zu %ld\n", idx, cycle);
            switch (stream[idx]) {
@DROP@
            }
            offered = false;
            ++idx;
        }
        if (out_beat) { fprintf(out, "O %ld %s\n", cycle, word.c_str()); ++outputs; idle = 0; }
        else if (++idle > 100000) { fprintf(out, "T %ld\n", cycle); break; }
        ++cycle;
    }
    dut.o@US@ready = 1;
    for (long k = 0; k < quiet; ++k, ++cycle) {
        dut.clk = 0; dut.eval();
        if (dut.o@US@valid) fprintf(out, "S %ld\n", cycle);
        dut.clk = 1; dut.eval();
    }
    fclose(out);
    return 0;
}
"""


#: Verilator's C++ spelling of ``__`` in a port name (``i__valid`` -> ``i___05Fvalid``).
_US = "___05F"


def _bench_source(top: str, streams: tuple[str, ...]) -> str:
    init = "\n".join(f"    dut.{s}{_US}valid = 0;" for s in streams)
    offer = "\n".join(f"            case {k}: put(dut.{s}{_US}payload, payload[idx]); "
                      f"dut.{s}{_US}valid = 1; break;" for k, s in enumerate(streams))
    ready = "\n".join(f"            case {k}: accepted = dut.{s}{_US}ready; break;"
                      for k, s in enumerate(streams))
    drop = "\n".join(f"            case {k}: dut.{s}{_US}valid = 0; break;"
                     for k, s in enumerate(streams))
    return (_BENCH.replace("@TOP@", top).replace("@INIT@", init).replace("@OFFER@", offer)
            .replace("@READY@", ready).replace("@DROP@", drop).replace("@US@", _US))


def build_bench(unit: str, cfg: AcceleratorConfig, streams: tuple[str, ...],
                build_dir: Path) -> tuple[Path, dict]:
    """Export ``unit`` for ``cfg`` and build its C++ bench; ``(binary, manifest)``."""
    from simrun import simulator_env

    exported = export_unit(unit, cfg, build_dir)
    (build_dir / "bench.cpp").write_text(_bench_source(exported.top, streams))
    exe, env = find_verilator()
    env.update(simulator_env("verilator"))
    cmd = [exe, "--cc", "--exe", "--build", "-O3", "--top-module", exported.top,
           "--Mdir", str(build_dir / "obj"), "-o", "vbench", str(WAIVERS),
           str(exported.waivers), str(exported.verilog), str(build_dir / "bench.cpp")]
    proc = subprocess.run(cmd, cwd=build_dir, env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise RuntimeError(f"{unit}: verilator build failed:\n{proc.stdout[-3000:]}"
                           f"{proc.stderr[-3000:]}")
    return build_dir / "obj" / "vbench", exported.manifest_data


class LongRun:
    """Random runs of one unit on its compiled bench, chunk by chunk, with counts."""

    def __init__(self, model: VectorModel, binary: Path, *, gap: float = 0.15,
                 stall: float = 0.2, seed: int = 1):
        self.model, self.binary = model, binary
        self.gap, self.stall, self.seed = gap, stall, seed
        self.coverage = Coverage(model)
        self.mismatches = self.cycles = self.segments = 0

    def run(self, segments) -> VectorScoreboard:
        """Drive ``segments`` through the bench and check them."""
        model, cov = self.model, self.coverage
        board = VectorScoreboard(model, lambda inv, got: cov.sample(
            model.cover(inv.seg, inv.data, got)), strict=False)
        monitor = VectorMonitor(model, segments, board)
        items = [item for seg in segments for item in model.items(seg)]
        index = {s: k for k, s in enumerate(model.inputs)}
        total = sum(model.out_beats(seg) for seg in segments)
        self.seed += 1
        with tempfile.TemporaryDirectory() as tmp:
            items_file, out_file = Path(tmp) / "items", Path(tmp) / "out"
            items_file.write_text("".join(f"{index[s]} {w:x}\n" for s, w in items))
            subprocess.run([str(self.binary), str(items_file), str(out_file), str(self.seed),
                            str(self.gap), str(self.stall), str(total),
                            str(model.quiet_cycles())], check=True)
            lines = out_file.read_text().split("\n")
        first = last = None
        for line in lines:
            if not line:
                continue
            kind, a, *rest = line.split()
            if kind == "A":
                stream, word = items[int(a)]
                cycle = int(rest[0])
                monitor.on_beat(stream, word, cycle)
                first = cycle if first is None else first
            elif kind == "O":
                board.on_out(int(rest[0], 16), int(a))
                last = int(a)
            elif kind == "S":
                raise AssertionError(f"{model.name}: a stray output beat in cycle {a}")
            else:
                raise AssertionError(f"{model.name}: no output for 100000 cycles (cycle {a})")
        if board.pending or len(board.done) != len(segments):
            raise AssertionError(f"{len(board.done)} of {len(segments)} segments compared")
        self.mismatches += board.mismatches
        self.cycles += last - first + 1
        self.segments += len(segments)
        return board

