"""Speed of the simulator: whole networks, a design-space sweep, and SCALE-Sim side by side.

Measured in one run, on one core, after JIT warm-up (medians of several runs):

1. timing-only cost of the whole 12-block ViT-Tiny and of ResNet-18 on edge-16: the
   one-time conversion of the trace into flat arrays plus ``edgetron.sim.simulate``
   (config checks, the Numba kernel, the result object); the kernel alone is printed too;
2. SCALE-Sim 3.0 (PyPI ``scalesim``, the ``bench`` extra) on ONE ViT-Tiny encoder block,
   16x16 weight-stationary, otherwise its stock ``configs/scale.cfg`` settings (64 KiB
   SRAMs, bandwidth 10, CALC interface bandwidth), topology from ``edgetron trace save``'s
   SCALE-Sim export, trace files not written (``save_disk_space``, its fastest mode);
   and the ratio of its time to edgetron's time for the WHOLE 12-block model;
3. (configs x layers) evaluated per second in a 1,000-config sweep of ViT-Tiny and of
   ResNet-18 (``edgetron.sim.sweep``, one Numba call per sweep).

SCALE-Sim 3.0.0 calls ``int()`` on the result of ``max()`` over a list of one-element
arrays (``memory/double_buffered_scratchpad_mem.py``), an error since NumPy 2.4; the
benchmark gives that module a ``max`` that returns the element itself and changes
nothing else. Its ``get_total_cycles()`` is broken too, so its cycles are read from the
``COMPUTE_REPORT.csv`` it writes.

Run: ``python benchmarks/sim_speed.py [--runs N] [--skip-scalesim]``. Ends with one
``name: value unit`` line per headline figure.
"""

from __future__ import annotations

import argparse
import builtins
import collections
import contextlib
import csv
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgetron.config import PRESETS, AcceleratorConfig
from edgetron.sim import engine
from edgetron.sim.energy import energy_vector
from edgetron.sim.records import NCOL
from edgetron.workload import build_model, to_scalesim

#: SCALE-Sim's stock configs/scale.cfg (v3), with the array and dataflow of edge-16.
SCALESIM_CFG = """[general]
run_name = vit_tiny_block_16x16_ws

[architecture_presets]
ArrayHeight:    16
ArrayWidth:     16
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : ws
MemoryBanks:   1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

BLOCK_PREFIX = "blocks.0."


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _kernel_time(flat: engine.FlatTrace, cfg: AcceleratorConfig, runs: int) -> float:
    p = cfg.sim_params()
    energy = energy_vector(cfg)
    out = np.zeros((len(flat.ops), NCOL))
    n = len(flat.ops)
    engine._run(p, energy, flat.records, 0, n, out)
    return _median_time(lambda: engine._run(p, energy, flat.records, 0, n, out), runs)


def _random_configs(count: int, seed: int) -> list[AcceleratorConfig]:
    rng = random.Random(seed)
    kib = 1024
    configs = []
    for i in range(count):
        n = rng.choice((4, 8, 16, 24, 32, 48, 64))
        configs.append(AcceleratorConfig(
            name=f"sweep-{i}", rows=n, cols=rng.choice((n // 2 or 1, n, 2 * n)),
            dataflow=rng.choice(("ws", "os", "is")),
            ifmap_sram_bytes=rng.choice((32, 64, 128, 256, 512)) * kib,
            weight_sram_bytes=rng.choice((32, 64, 128, 256, 512)) * kib,
            ofmap_sram_bytes=rng.choice((32, 64, 128, 256)) * kib,
            dram_bytes_per_cycle=rng.choice((2.0, 4.0, 8.0, 16.0, 32.0, 64.0)),
            clock_mhz=rng.choice((200.0, 400.0, 800.0)),
            vector_lanes=rng.choice((4, 8, 16, 32, 64)),
            double_buffer=rng.random() < 0.5,
        ))
    return configs


def _scalesim_block(workdir: Path) -> tuple[float, list[tuple[str, int]]]:
    """Run SCALE-Sim on the first ViT-Tiny block; returns (seconds, [(layer, cycles)])."""
    import scalesim.memory.double_buffered_scratchpad_mem as dbsp
    from scalesim.scale_sim import scalesim

    def _max(*args, **kwargs):
        value = builtins.max(*args, **kwargs)
        if isinstance(value, np.ndarray) and value.size == 1:
            return value.reshape(-1)[0]
        return value

    dbsp.max = _max  # the NumPy 2.4 fix described in the module docstring
    lines = to_scalesim(build_model("vit-tiny")).splitlines()
    rows = [line for line in lines[1:] if line.startswith(BLOCK_PREFIX)]
    topology = workdir / "vit_tiny_block0.csv"
    topology.write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    layout = workdir / "layout.csv"
    layout.write_text("Layer name,\n", encoding="utf-8")  # no custom layouts
    config = workdir / "scale.cfg"
    config.write_text(SCALESIM_CFG, encoding="utf-8")
    out = workdir / "out"
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(config),
                       topology=str(topology), layout=str(layout), input_type_gemm=False)
        sim.run_scale(top_path=str(out))
    seconds = time.perf_counter() - t0
    report = next(out.rglob("COMPUTE_REPORT.csv"))
    with report.open(encoding="utf-8") as f:
        table = list(csv.reader(f))[1:]
    names = [r.split(",")[0] for r in rows]
    cycles = [(name, int(row[2])) for name, row in zip(names, table, strict=True)]
    return seconds, cycles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21, help="timed runs per figure (median)")
    ap.add_argument("--configs", type=int, default=1000, help="configs in the sweep")
    ap.add_argument("--skip-scalesim", action="store_true",
                    help="do not run SCALE-Sim (about a minute)")
    args = ap.parse_args(argv)
    cfg = PRESETS["edge-16"]
    figures: list[tuple[str, float, str]] = []

    print("== edgetron timing-only cost on edge-16 (median of "
          f"{args.runs} runs after warm-up) ==")
    per_model = {}
    for name in ("vit-tiny", "resnet18"):
        trace = build_model(name)
        flat = engine.flatten(trace)
        engine.simulate(flat, cfg)  # JIT warm-up (or cache load)
        conv_t = _median_time(lambda t=trace: engine._flatten(t), args.runs)
        run_t = _median_time(lambda f=flat: engine.simulate(f, cfg), args.runs)
        kern = _kernel_time(flat, cfg, args.runs)
        whole = conv_t + run_t
        per_model[name] = whole
        print(f"{name:<9} {len(trace):>4} ops  conversion {conv_t * 1e3:7.3f} ms + simulate "
              f"{run_t * 1e3:7.3f} ms = {whole * 1e3:7.3f} ms   (Numba kernel "
              f"{kern * 1e6:6.1f} us)")
        figures.append((f"edgetron_{name.replace('-', '_')}_edge16_ms", whole * 1e3, "ms"))
        figures.append((f"edgetron_{name.replace('-', '_')}_edge16_kernel_us", kern * 1e6,
                        "us"))

    if args.skip_scalesim:
        print("\n(SCALE-Sim skipped)")
    else:
        print("\n== SCALE-Sim 3.0 on ONE ViT-Tiny block, 16x16 ws, stock settings ==")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                seconds, cycles = _scalesim_block(Path(tmp))
            except ImportError:
                print("scalesim is not installed: pip install -e '.[bench]'", file=sys.stderr)
                return 1
        block = engine.simulate(build_model("vit-tiny"), cfg)
        ours = {op.name: op.values for op in block.ops if op.name.startswith(BLOCK_PREFIX)}
        # The export writes one row per head of an attention product (``<op>.h<i>``); our
        # op costs all heads, so it is shared out over the rows it became.
        base_of = {name: name.rsplit(".h", 1)[0] if name not in ours else name
                   for name, _ in cycles}
        rows_of = collections.Counter(base_of.values())
        print(f"{'layer':<26} {'SCALE-Sim cycles':>16} {'edgetron GEMM-unit cycles':>26}")
        for name, cyc in cycles:
            base = base_of[name]
            per_row = ours[base]["compute_cycles"] // rows_of[base]
            print(f"{name:<26} {cyc:>16,} {per_row:>26,}")
        ratio = seconds / per_model["vit-tiny"]
        print(f"SCALE-Sim, one block: {seconds:.1f} s; edgetron, whole 12-block model: "
              f"{per_model['vit-tiny'] * 1e3:.3f} ms; ratio {ratio:,.0f}x (target >= 10,000x)")
        figures.append(("scalesim_vit_tiny_one_block_s", seconds, "s"))
        figures.append(("scalesim_block_over_edgetron_model_ratio", ratio, "x"))

    print(f"\n== sweep: {args.configs} random configs x one trace, one Numba call ==")
    configs = _random_configs(args.configs, seed=0)
    for name in ("vit-tiny", "resnet18"):
        flat = engine.flatten(build_model(name))
        engine.sweep(flat, configs[:2])  # warm-up
        # A sweep costs far more than one run: fewer timed repeats, at least three.
        t = _median_time(lambda f=flat: engine.sweep(f, configs), max(3, args.runs // 7))
        # A config stops at the first op it cannot run: count only the ops it evaluated.
        err = engine.sweep(flat, configs)["error_op"]
        layers = int(np.where(err < 0, len(flat.ops), err + 1).sum())
        rate = layers / t
        print(f"{name:<9} {len(flat.ops):>4} ops  {t:.3f} s  {rate:,.0f} (configs x layers)/s "
              "(target >= 100,000 per core)")
        figures.append((f"sweep_{name.replace('-', '_')}_config_layers_per_s", rate, "1/s"))

    print()
    for name, value, unit in figures:
        print(f"{name}: {value:.6g} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
