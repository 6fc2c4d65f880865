"""``edgetron deploy`` and ``edgetron compare --data`` on the command line: reports, JSON,
exit status, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgetron.cli import main
from edgetron.sim.units import gemm as gemm_unit

from .helpers import DATA, digits, small_cnn


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A few digits as .npy files: 32 calibration images, 24 test images and labels."""
    d = digits()
    tmp = tmp_path_factory.mktemp("digits")
    paths = {"calib": tmp / "calib.npy", "x": tmp / "x.npy", "y": tmp / "y.npy"}
    np.save(paths["calib"], d["train"][:32])
    np.save(paths["x"], d["test"][:24])
    np.save(paths["y"], d["test_labels"][:24])
    return {k: str(v) for k, v in paths.items()}


def test_deploy_prints_accuracy_cosine_and_cost(files, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    argv = ["deploy", str(DATA / "digits_cnn.onnx"), "--calib", files["calib"], "--eval",
            files["x"], "--labels", files["y"], "--config", "edge-8", "--per-op", "--json",
            str(out_json)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "calibrated on 32 samples of" in out and "evaluated on 24 samples of" in out
    assert "top-1 on 24 samples: float (onnxruntime)" in out
    assert "functional: 24 runs x 6 ops" in out and "bit-exact with golden" in out
    assert "per-layer cosine (integer vs float): min" in out
    assert "node_avg_pool2d" in out  # --per-op lists every op
    assert "cost per inference (batch 1): latency" in out
    doc = json.loads(out_json.read_text())
    assert doc["config"] == "edge-8" and doc["evaluation"]["samples"] == 24
    assert doc["functional"]["bit_exact"] and doc["functional"]["runs"] == 24
    assert doc["accuracy"]["int_correct"] <= 24 and 0 <= doc["accuracy"]["agreement"] <= 1
    assert len(doc["ops"]) == 6 and set(doc["cost"]) == {
        "cycles", "macs", "latency_ms", "energy_uj", "utilization"}
    assert set(doc["seconds"]) == {"import", "calibrate", "evaluate", "total"}


def test_deploy_json_to_stdout_and_without_labels(files, capsys):
    argv = ["deploy", str(DATA / "digits_cnn.onnx"), "--calib", files["calib"], "--json", "-"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["evaluation"] == {"data": files["calib"], "samples": 32, "labelled": False}
    assert doc["accuracy"]["float_top1"] is None and doc["accuracy"]["agreement"] > 0.9


def test_deploy_exits_1_when_an_op_differs_from_golden(tmp_path, monkeypatch, capsys):
    real = gemm_unit.gemm_tiled

    def off_by_one(*args):
        calls, ok = real(*args)
        args[-1][0, 0, 0] += 1
        return calls, ok

    monkeypatch.setattr(gemm_unit, "gemm_tiled", off_by_one)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32))
    assert main(["deploy", str(small_cnn(tmp_path, batch=1)), "--calib", str(x)]) == 1
    out = capsys.readouterr().out
    # The ops on the GEMM unit: the conv and the Gemm (the depthwise conv runs in the
    # array's depthwise mode, not through gemm_tiled).
    assert "functional: 2 ops differ from golden" in out
    assert "op 0 ('Conv_0'): 2 values in 2 runs" in out and "op 4 ('Gemm_7')" in out


@pytest.mark.parametrize("extra, message", [
    (["--labels", "{x}"], "x.npy: dtype float32: expected integer class labels"),
    (["--eval", "{x}", "--labels", "{short}"], "short.npy: 23 labels for the 24 samples of"),
    (["--percentile", "0"], "percentile: expected a number in (0, 100] or None, got 0.0"),
    (["--config", "edge-99"], "edge-99"),
])
def test_deploy_errors_are_one_line(files, tmp_path, capsys, extra, message):
    np.save(tmp_path / "short.npy", np.zeros(23, dtype=np.int64))
    names = {"x": files["x"], "short": str(tmp_path / "short.npy")}
    argv = ["deploy", str(DATA / "digits_cnn.onnx"), "--calib", files["calib"]]
    assert main(argv + [a.format(**names) for a in extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgetron deploy: error: ") and err.count("\n") == 1
    assert message in err


def test_deploy_refuses_a_wrong_shape(files, tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros((4, 64), dtype=np.float32))
    assert main(["deploy", str(DATA / "digits_vit.onnx"), "--calib",
                 str(tmp_path / "flat.npy")]) == 1
    err = capsys.readouterr().err
    assert err == (f"edgetron deploy: error: {tmp_path / 'flat.npy'}: shape [4, 64]: expected "
                   "[N, 1, 8, 8] (N samples of the model input [1, 1, 8, 8])\n")


def test_compare_with_data_adds_accuracy_rows(files, tmp_path, capsys):
    out_json = tmp_path / "c.json"
    argv = ["compare", str(DATA / "digits_vit.onnx"), str(DATA / "digits_cnn.onnx"),
            "--data", files["x"], "--labels", files["y"], "--calib", files["calib"],
            "--json", str(out_json)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "accuracy on" in out and "(24 samples), calibrated on 32 samples of" in out
    for row in ("float top-1", "integer top-1", "agreement", "min layer cosine",
                "bit-exact", "latency", "energy", "utilization"):
        assert row in out
    lines = out.splitlines()
    header = next(line for line in lines if "digits_vit" in line and "digits_cnn" in line)
    assert header.index("digits_vit") < header.index("digits_cnn")
    assert next(line for line in lines if line.startswith("bit-exact")).split()[1:] == [
        "yes", "yes"]
    doc = json.loads(out_json.read_text())
    assert [m["trace"] for m in doc["models"]] == ["digits_vit", "digits_cnn"]
    for m in doc["models"]:
        assert m["deploy"]["functional"]["bit_exact"]
        assert m["deploy"]["cost"]["cycles"] == m["totals"]["cycles"]
        assert m["deploy"]["calibration"]["samples"] == 32


def test_compare_data_needs_onnx_models_and_data_flags_need_data(files, capsys):
    assert main(["compare", "vit-tiny", str(DATA / "digits_cnn.onnx"), "--data",
                 files["x"]]) == 1
    err = capsys.readouterr().err
    assert "--data: model 'vit-tiny' is not an ONNX model (.onnx)" in err
    assert main(["compare", "vit-tiny", "resnet18", "--labels", files["y"]]) == 1
    err = capsys.readouterr().err
    assert err == ("edgetron compare: error: --labels goes with --data (the samples to "
                   "deploy the models on); add --data\n")


def test_compare_checks_every_models_data_before_deploying(files, monkeypatch, capsys):
    def no_deploy(*args, **kwargs):
        raise AssertionError("deployed before checking the data")

    monkeypatch.setattr("edgetron.deploy.deploy", no_deploy)
    assert main(["compare", str(DATA / "digits_vit.onnx"), str(DATA / "digits_cnn.onnx"),
                 "--data", files["x"], "--labels", files["calib"]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgetron compare: error: ") and err.count("\n") == 1
    assert "calib.npy: dtype float32: expected integer class labels" in err
    assert main(["compare", str(DATA / "digits_cnn.onnx"), "--data", files["x"],
                 "--percentile", "200"]) == 1
    assert "percentile: expected a number in (0, 100]" in capsys.readouterr().err
