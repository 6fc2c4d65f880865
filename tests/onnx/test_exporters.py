"""Graphs from the real PyTorch exporters import as our builders' traces.

CI imports the committed shape-only fixtures (``tests/data/onnx/exporters``, written by
``scripts/export_onnx_fixtures.py --strip``): torchvision's ResNet-18 and MobileNetV2 and
timm's DeiT-Tiny, each from the TorchScript and the ``torch.export`` exporter. Every op
must equal the builder's op (kind, shapes, widths, requantization, activation, head
layout, attention scale) except its name, so MAC totals are exact.

The slow test regenerates the graphs with torch, full weights included, and also checks
the float values against onnxruntime.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetron.workload import build_model
from edgetron.workload.onnx import import_onnx

from .helpers import DATA, check_float

FIXTURES = DATA / "exporters"
ROOT = Path(__file__).resolve().parents[2]
#: Fixture name prefix -> (builder preset, MACs of the builder's trace).
MODELS = {
    "resnet18": ("resnet18", 1_814_073_344),
    "mobilenetv2": ("mobilenetv2", build_model("mobilenetv2").macs),
    "deit_tiny": ("vit-tiny", 1_253_683_200),
}
NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))


def _signature(op) -> dict:
    d = op.to_dict(0)
    del d["id"], d["name"]
    if "scale" in d:
        d["scale"] = round(d["scale"], 6)
    return d


def _preset(name: str) -> tuple[str, int]:
    return next(v for k, v in MODELS.items() if name.startswith(k))


def check_against_builder(path: Path) -> None:
    trace, _ = import_onnx(path)
    preset, macs = _preset(path.stem)
    ref = build_model(preset)
    assert trace.macs == ref.macs == macs
    assert [op.kind for op in trace] == [op.kind for op in ref]
    for i, (got, want) in enumerate(zip(trace, ref, strict=True)):
        assert _signature(got) == _signature(want), f"op {i} ({got.name}, {ref[i].name})"
    assert trace.params == ref.params


def test_all_fixtures_present():
    assert len(NAMES) == 7
    assert {name.split("_")[0] for name in NAMES} == {"resnet18", "mobilenetv2", "deit"}


@pytest.mark.parametrize("name", NAMES)
def test_exporter_fixture_is_the_builders_trace(name):
    path = FIXTURES / f"{name}.onnx"
    assert path.stat().st_size < 200_000
    _, weights = import_onnx(path)
    assert weights is None  # shape-only fixture
    check_against_builder(path)


def test_attention_scale_and_layout_of_deit():
    trace, _ = import_onnx(FIXTURES / "deit_tiny_dynamo_op18.onnx")
    scores = trace[5]
    assert scores.kind == "gemm" and not scores.weights and scores.count == 3
    assert scores.scale == pytest.approx(1 / 8, rel=1e-6)
    assert scores.inputs[0].cols == (0, 192) and scores.inputs[1].cols == (192, 384)


@pytest.mark.slow
def test_exporters_regenerated_with_torch(tmp_path):
    """Export again with torch (full weights), import, compare with the builders and
    check the values against onnxruntime. Needs the ``train`` extra."""
    if importlib.util.find_spec("torch") is None:
        pytest.fail("torch is not installed: pip install -e .[train] (see docs/onnx.md)")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "export_onnx_fixtures.py"),
                    str(tmp_path)], check=True, capture_output=True)
    for name in NAMES:
        path = tmp_path / f"{name}.onnx"
        check_against_builder(path)
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        check_float(path, rtol=1e-4, x=x)
