"""The digits data of the committed models, and a small ONNX model with a symbolic batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnx import helper
from sklearn.datasets import load_digits

from tests.onnx.helpers import const, model, rand, save

DATA = Path(__file__).resolve().parents[1] / "data" / "onnx"
RESULTS = json.loads((DATA / "digits.json").read_text())
MODELS = ("digits_cnn", "digits_vit")
#: The fixed calibration subset: the first CALIB images of the training split.
CALIB = 256


def digits() -> dict[str, np.ndarray]:
    """The split of ``scripts/train_digits.py`` (``digits.json``): image i held out when
    i % 5 == 4; images ``/ 16`` as ``[N, 1, 8, 8]`` float32."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    held = np.arange(len(x)) % 5 == 4
    return {"train": x[~held], "train_labels": d.target[~held],
            "test": x[held], "test_labels": d.target[held]}


def small_cnn(tmp_path: Path, batch="N") -> Path:
    """Conv+ReLU, depthwise conv+ReLU6, max pool, global average pool, flatten, Gemm; the
    batch dimension ``batch`` (symbolic by default)."""
    h = helper.make_node
    nodes = [
        h("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        h("Relu", ["c1"], ["r1"]),
        h("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=4),
        h("Clip", ["c2", "lo", "hi"], ["r2"]),
        h("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        h("GlobalAveragePool", ["p"], ["g"]),
        h("Flatten", ["g"], ["f"]),
        h("Gemm", ["f", "w3", "b3"], ["y"], transB=1),
    ]
    inits = [const("w1", rand(4, 1, 3, 3)), const("b1", rand(4)),
             const("w2", rand(4, 1, 3, 3)), const("b2", rand(4)),
             const("lo", np.float32(0)), const("hi", np.float32(6)),
             const("w3", rand(3, 4)), const("b3", rand(3))]
    return save(model(nodes, [batch, 1, 6, 6], [batch, 3], inits), tmp_path, "small.onnx")
