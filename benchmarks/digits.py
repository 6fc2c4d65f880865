"""The trained digits models deployed on edge-16: float and integer accuracy beside cost.

Deploys ``tests/data/onnx/digits_vit.onnx`` and ``digits_cnn.onnx`` as ``edgetron
deploy`` does: calibrated on the first ``--calib`` images of the training split of
scikit-learn's digits, evaluated on the 359 held-out images (image ``i`` with
``i % 5 == 4``, the split of ``scripts/train_digits.py``), every inference run through
functional mode in the config's tile order and checked bit for bit against golden.
Prints the side-by-side table of ``edgetron compare --data``, then one ``name: value
unit`` line per figure: float (onnxruntime) and integer top-1, agreement, per-layer
cosine, latency, energy, utilization, cycles and the deploy time (import + calibrate +
evaluate, wall clock, after one warm-up deployment that loads the compiled kernels).

Usage::

    python benchmarks/digits.py [--config edge-16] [--calib 256] [--percentile P]
    python benchmarks/digits.py --save DIR   # only write the data as .npy files for
        # edgetron deploy/compare: digits_calib.npy (the first --calib training images),
        # digits_test.npy and digits_test_labels.npy (the 359 held-out images, labels)

Needs scikit-learn (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from edgetron.config_file import load_config
from edgetron.deploy import Samples, deploy
from edgetron.report import format_comparison

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "onnx"
MODELS = ("digits_vit", "digits_cnn")


def split() -> dict[str, np.ndarray]:
    """Training and held-out images ``[N, 1, 8, 8]`` in [0, 1], and labels."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    held = np.arange(len(x)) % 5 == 4
    return {"train": x[~held], "test": x[held], "test_labels": d.target[held]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="edge-16")
    parser.add_argument("--calib", type=int, default=256,
                        help="calibration images: the first CALIB of the training split")
    parser.add_argument("--percentile", type=float, default=None)
    parser.add_argument("--save", type=Path, metavar="DIR",
                        help="write the calibration and test data as .npy files and stop")
    args = parser.parse_args(argv)
    d = split()
    if args.save is not None:
        for name, arr in (("digits_calib", d["train"][:args.calib]),
                          ("digits_test", d["test"]), ("digits_test_labels", d["test_labels"])):
            np.save(args.save / f"{name}.npy", arr)
            print(f"wrote {args.save / name}.npy {list(arr.shape)} {arr.dtype}")
        return 0
    cfg = load_config(args.config)
    shape = (1, 1, 8, 8)
    calib = Samples(d["train"][:args.calib], shape, f"digits train[:{args.calib}]")
    test = Samples(d["test"], shape, "digits held out")
    deploy(DATA / "digits_cnn.onnx", d["train"][:1], config=cfg)  # warm-up: load the kernels
    reports = [deploy(DATA / f"{name}.onnx", calib, data=test, labels=d["test_labels"],
                      config=cfg, percentile=args.percentile) for name in MODELS]
    print(format_comparison([r.cost for r in reports], deployments=reports))
    print()
    for r in reports:
        t = r.cost.totals
        cs = r.cosine_summary()
        key = f"digits.{r.model}"
        print(f"{key}.float_top1: {100 * r.top1('float'):.2f} % (onnxruntime, "
              f"{r.samples} held out)")
        print(f"{key}.int_top1: {100 * r.top1('int'):.2f} % (functional mode, "
              f"{'bit-exact' if r.bit_exact else 'NOT bit-exact'} with golden)")
        print(f"{key}.agreement: {100 * r.agreement:.2f} %")
        print(f"{key}.cosine_min: {cs['min']:.4f} (op {cs['min_op']})")
        print(f"{key}.cosine_median: {cs['median']:.4f}")
        print(f"{key}.latency: {t['latency_ms'] * 1e3:.2f} us ({cfg.name}, batch {r.batch})")
        print(f"{key}.energy: {t['energy_uj']:.2f} uJ")
        print(f"{key}.utilization: {100 * t['utilization']:.1f} %")
        print(f"{key}.cycles: {t['cycles']} cycles")
        s = r.seconds
        print(f"{key}.deploy_time: {s['total']:.2f} s (import {s['import']:.2f}, calibrate "
              f"{s['calibrate']:.2f} on {r.calib_samples}, evaluate {s['evaluate']:.2f} on "
              f"{r.samples})")
    return 0 if all(r.bit_exact for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
