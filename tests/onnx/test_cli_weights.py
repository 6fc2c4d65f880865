"""``edgetron import`` and the weights file: written, read back with checks, refused when bad."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from edgetron.cli import main
from edgetron.errors import TraceError
from edgetron.workload import load_trace
from edgetron.workload.onnx import (
    import_onnx,
    load_weights,
    output_of,
    run_float,
    save_weights,
    weights_path,
)

from .helpers import DATA, check_float
from .test_ops import attention


def test_import_command_writes_trace_and_weights(tmp_path, capsys):
    model = attention(tmp_path)
    out = tmp_path / "att.json"
    assert main(["import", str(model), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"wrote {out} (7 ops, ") and "att.weights.npz" in text
    trace = load_trace(out)
    weights = load_weights(weights_path(out), trace)
    ref_trace, ref_weights = check_float(model)
    assert trace == ref_trace
    x = np.random.default_rng(3).standard_normal((1, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(output_of(weights, run_float(trace, weights, x)),
                                  output_of(ref_weights, run_float(ref_trace, ref_weights, x)))


def test_import_command_shape_only_and_errors(tmp_path, capsys):
    out = tmp_path / "r.json"
    fixture = DATA / "exporters" / "resnet18_dynamo_op18.onnx"
    assert main(["import", str(fixture), "-o", str(out), "--name", "r18"]) == 0
    assert "shape-only model: no weights file" in capsys.readouterr().out
    assert load_trace(out).name == "r18" and not weights_path(out).exists()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08")
    assert main(["import", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgetron import: error: ") and err.count("\n") == 1


@pytest.fixture()
def imported(tmp_path):
    trace, weights = import_onnx(attention(tmp_path))
    return trace, weights, tmp_path / "w.npz"


def test_weights_round_trip(imported):
    trace, weights, path = imported
    save_weights(path, weights)
    back = load_weights(path, trace)
    assert set(back) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(back[key], value)
    assert back["1.weight"].shape == (1, 8, 24) and back["0.eps"].shape == ()
    assert weights_path("a/b/net.json").name == "net.weights.npz"


@pytest.mark.parametrize("change, message", [
    (lambda w: w.pop("1.weight"), "missing arrays: 1.weight"),
    (lambda w: w.update({"1.weight": np.zeros((1, 8, 25), np.float32)}),
     r"1.weight: shape \[1, 8, 25\] but the trace needs \[1, 8, 24\]"),
    (lambda w: w.update({"1.weight": np.zeros((1, 8, 24), np.int64)}), "dtype int64 is not"),
    (lambda w: w.update({"99.weight": np.zeros(3, np.float32)}), "99.weight: unexpected array"),
    (lambda w: w.update({"output.offset": np.asarray(10**6)}), "the view leaves op"),
    (lambda w: w.update({"input.perm": np.asarray([0, 0, 1])}), "not a permutation"),
])
def test_weights_file_refused(imported, change, message):
    trace, weights, path = imported
    weights = dict(weights)
    change(weights)
    save_weights(path, weights)
    with pytest.raises(TraceError, match=message):
        load_weights(path, trace)


def test_weights_file_without_pickles_or_zip(imported):
    trace, weights, path = imported
    path.write_bytes(b"not a zip")
    with pytest.raises(TraceError, match="not a weights file"):
        load_weights(path, trace)
    save_weights(path, weights)
    with zipfile.ZipFile(path, "a") as zf:
        with zf.open("obj.npy", "w") as f:
            np.lib.format.write_array(f, np.asarray([{"a": 1}], dtype=object),
                                      allow_pickle=True)
    with pytest.raises(TraceError, match="obj: unexpected array"):
        load_weights(path, trace)


def test_import_help_names_the_supported_opsets(capsys):
    from edgetron.workload.onnx import OPSETS

    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert f"opsets {OPSETS[0]}-{OPSETS[1]}" in " ".join(capsys.readouterr().out.split())
