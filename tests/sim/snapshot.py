"""The simulator's results on every preset model and config, frozen (tests/data/sim_snapshot.json).

A restructuring must not change a single result. :func:`collect` costs every preset model
on every preset config (and the other dataflows and single buffering of the default
preset), keeps the totals and every op's cycle columns, tiling and a SHA-256 of its whole
result row, and adds the checksums of a functional run of ViT-Tiny and ResNet-18 at a fixed
seed. ``tests/sim/test_snapshot.py`` asserts the committed file equals a fresh collection.

A change that is meant to change results regenerates the file and says so in its commit::

    python tests/sim/snapshot.py --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from edgetron.config import DEFAULT_PRESET, PRESETS, AcceleratorConfig
from edgetron.sim.engine import simulate
from edgetron.sim.functional import prepare, run_functional
from edgetron.workload import MODELS, build_model

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "sim_snapshot.json"
#: Per-op columns stored as values (the rest of the row is covered by its hash).
OP_COLUMNS = ("cycles", "compute_cycles", "vector_cycles", "stall_cycles", "energy_pj",
              "dram_read_bytes", "dram_write_bytes", "calls", "tile_m", "tile_k", "tile_n",
              "k_chunks", "double_buffered")
#: Models whose functional run is checksummed, and its seed and config.
FUNCTIONAL_MODELS = ("vit-tiny", "resnet18")
FUNCTIONAL_SEED = 0


def configs() -> dict[str, AcceleratorConfig]:
    """Every preset, plus the default preset's other dataflows and single buffering."""
    out = dict(PRESETS)
    base = PRESETS[DEFAULT_PRESET]
    for df in ("os", "is"):
        out[f"{DEFAULT_PRESET}+dataflow={df}"] = base.replace(dataflow=df)
    out[f"{DEFAULT_PRESET}+double_buffer=false"] = base.replace(double_buffer=False)
    out["edge-8+dataflow=os"] = PRESETS["edge-8"].replace(dataflow="os")
    return out


def _row_hash(table: np.ndarray, i: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(table[i]).tobytes()).hexdigest()[:16]


def collect() -> dict:
    """A fresh snapshot (plain JSON data)."""
    runs = {}
    for cname, cfg in configs().items():
        for model in MODELS:
            res = simulate(build_model(model), cfg)
            ops = []
            for i, op in enumerate(res.op_dicts()):
                ops.append([op[c] for c in OP_COLUMNS] + [_row_hash(res.table, i)])
            totals = {k: v for k, v in res.totals.items() if k != "energy_by_event_uj"}
            runs[f"{model} on {cname}"] = {"totals": totals, "ops": ops}
    functional = {}
    cfg = PRESETS[DEFAULT_PRESET]
    for model in FUNCTIONAL_MODELS:
        data = prepare(build_model(model), seed=FUNCTIONAL_SEED)
        result = run_functional(data, cfg)
        digest = hashlib.sha256()
        for d in data.ops:
            digest.update(np.ascontiguousarray(d.golden, dtype=np.int64).tobytes())
        functional[model] = {"ok": result.ok, "ops": len(data.ops),
                             "outputs_sha256": digest.hexdigest()}
    return {"op_columns": [*OP_COLUMNS, "row_sha256"], "runs": runs, "functional": functional}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {SNAPSHOT}")
    args = parser.parse_args()
    snap = collect()
    if args.write:
        SNAPSHOT.write_text(json.dumps(snap, indent=None, separators=(",", ":")) + "\n",
                            encoding="utf-8")
        print(f"wrote {SNAPSHOT} ({len(snap['runs'])} runs)")
    else:
        print(json.dumps(snap["functional"], indent=2))


if __name__ == "__main__":
    main()
