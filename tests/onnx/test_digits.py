"""The two models trained on scikit-learn's digits (``scripts/train_digits.py``) import, and
the imported trace with its weights classifies the held-out split exactly as onnxruntime
does, at the recorded float accuracy."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_digits

from edgetron.workload import vit
from edgetron.workload.onnx import import_onnx, output_of, run_float

from .helpers import DATA
from .test_exporters import _signature

RESULTS = json.loads((DATA / "digits.json").read_text())
MODELS = ("digits_cnn", "digits_vit")


def held_out() -> tuple[np.ndarray, np.ndarray]:
    """The split of ``scripts/train_digits.py``: image i held out when i % 5 == 4."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    keep = np.arange(len(x)) % 5 == 4
    return x[keep], d.target[keep]


@pytest.mark.parametrize("name", MODELS)
def test_digits_model_imports(name):
    path = DATA / f"{name}.onnx"
    assert path.stat().st_size < 200_000
    trace, weights = import_onnx(path)
    kinds = {op.kind for op in trace}
    if name == "digits_cnn":
        assert kinds == {"conv2d", "maxpool", "avgpool", "gemm"}
    else:
        assert kinds == {"conv2d", "concat", "add", "layernorm", "gemm", "softmax", "gelu"}
        assert sum(op.kind == "gemm" and not op.weights for op in trace) == 4
    assert trace[-1].kind == "gemm" and trace[-1].out_bits == 32
    assert weights is not None and set(weights) >= {"0.weight", "input.perm", "output.op"}


def test_digits_vit_is_the_builders_vit():
    """The trained ViT imports as ``vit()`` of the same sizes, op for op."""
    trace, _ = import_onnx(DATA / "digits_vit.onnx")
    ref = vit(image_size=8, patch=2, embed=32, heads=2, depth=2, mlp_ratio=2, channels=1,
              classes=10)
    assert [_signature(op) for op in trace] == [_signature(op) for op in ref]
    assert trace.macs == ref.macs == 317_888


@pytest.mark.parametrize("name", MODELS)
def test_float_accuracy_matches_onnxruntime(name):
    x, y = held_out()
    assert len(y) == RESULTS["held_out"] == 359
    path = DATA / f"{name}.onnx"
    trace, weights = import_onnx(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0].name
    ours, theirs = [], []
    for i in range(len(x)):
        ref = session.run(None, {inp: x[i:i + 1]})[0]
        got = output_of(weights, run_float(trace, weights, x[i:i + 1]))
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        ours.append(int(np.argmax(got)))
        theirs.append(int(np.argmax(ref)))
    correct = int(np.sum(np.asarray(theirs) == y))
    assert correct == RESULTS[name]["correct"]
    assert ours == theirs
    assert correct / len(y) > 0.9
