"""The committed digits models deployed on real data: the integer model's top-1 accuracy on
the 359 held-out images is within 1 percentage point of the float model's, and every op of
every inference is bit-exact with golden in the tile order of edge-16."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.deploy import deploy
from edgetron.workload.onnx import import_onnx, output_of, run_float

from .helpers import CALIB, DATA, MODELS, RESULTS, digits


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def reports(data):
    return {name: deploy(DATA / f"{name}.onnx", data["train"][:CALIB], data=data["test"],
                         labels=data["test_labels"], config=PRESETS["edge-16"])
            for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_integer_top1_within_one_point_of_float(reports, name):
    r = reports[name]
    assert r.samples == RESULTS["held_out"] == 359
    # The float model is onnxruntime's, at the accuracy recorded when it was trained.
    assert round(r.top1("float") * 359) == RESULTS[name]["correct"]
    assert abs(r.top1("int") - r.top1("float")) <= 0.01
    assert r.agreement >= 0.97


@pytest.mark.parametrize("name", MODELS)
def test_every_op_of_every_inference_is_bit_exact(reports, name):
    r = reports[name]
    ops = len(r.cost.trace_ops)
    assert r.bit_exact and not r.evaluation.failures
    assert r.evaluation.runs == 359  # one functional run per image, at the model's batch 1
    per_run = sum(op.out_elements for op in r.cost.trace_ops)
    assert r.evaluation.values == 359 * per_run
    doc = r.to_dict()
    assert doc["functional"] == {"bit_exact": True, "runs": 359, "ops_checked": ops,
                                 "values_checked": 359 * per_run, "failures": []}


@pytest.mark.parametrize("name", MODELS)
def test_per_layer_cosine_and_cost(reports, name):
    r = reports[name]
    cos = r.evaluation.cosine
    assert cos.shape == (len(r.cost.trace_ops),)
    assert 0.99 < cos.min() <= np.median(cos) <= 1.0 + 1e-12
    s = r.cosine_summary()
    assert s["min"] == cos.min() and s["median"] == np.median(cos)
    # The cost is the timing model's of one inference on edge-16.
    t = r.cost.totals
    assert r.cost.config.name == "edge-16" and t["macs"] == import_onnx(
        DATA / f"{name}.onnx").trace.macs
    assert t["latency_ms"] > 0 and t["energy_uj"] > 0 and 0 < t["utilization"] <= 1


def test_calibration_covers_the_class_token(data):
    """The ViT's patch embedding feeds the class-token concat: its scale is calibrated on
    the concat's whole output, so a class token larger than every patch is not saturated."""
    from edgetron.deploy import Model, Samples, calibrate

    m = Model(DATA / "digits_vit.onnx")
    x = data["train"][:CALIB]
    assert m.trace[1].kind == "concat" and m.trace[1].inputs[0].op == 0
    patches = np.abs(m.float_outputs(x)[0]).max()
    token = m.weights["1.weight"]
    m = Model(DATA / "digits_vit.onnx")
    m.weights["1.weight"] = np.where(np.arange(token.size) == 3, 3 * patches,
                                     token).astype(np.float32)
    q = calibrate(m, Samples(x, m.input_shape, "calib"))
    assert q.ops[0].out_scale == pytest.approx(3 * patches / 127, rel=1e-6)
    assert q.ops[1].out_scale is None  # a concat keeps its input's scale
    q = calibrate(Model(DATA / "digits_vit.onnx"), Samples(x, m.input_shape, "calib"))
    assert q.ops[0].out_scale == pytest.approx(max(patches, np.abs(token).max()) / 127,
                                               rel=1e-6)


def test_rebatched_float_run_equals_per_sample_runs(data):
    """The float reference runs blocks of samples on the trace rebatched: the same values as
    one sample at a time (the import's own run_float at batch 1)."""
    from edgetron.deploy import Model

    x = data["test"][:5]
    for name in MODELS:
        m = Model(DATA / f"{name}.onnx")
        block = m.float_outputs(x)
        for i in range(len(x)):
            one = run_float(m.trace, m.weights, x[i:i + 1])
            for a, b in zip(block, one, strict=True):
                np.testing.assert_allclose(a[i:i + 1], b, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(m.predictions([o[i:i + 1] for o in block]),
                                       output_of(m.weights, one).reshape(1, -1), rtol=1e-12)
