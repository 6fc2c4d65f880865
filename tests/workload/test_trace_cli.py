"""``edgetron trace show`` and ``edgetron trace save``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edgetron.cli import main
from edgetron.workload import build_model, load_trace, parse_scalesim, to_scalesim
from edgetron.workload.scalesim import CONV_HEADER


def run(capsys, *argv):
    status = main(["trace", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_show_preset_table(capsys):
    status, out, err = run(capsys, "show", "vit-tiny")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("vit-tiny: 149 ops, batch 1")
    assert any("blocks.0.qkv" in line and "197x192 @ 192x576" in line and "21,786,624" in line
               for line in lines)
    assert any("blocks.0.softmax" in line and "591 rows x 197" in line for line in lines)
    total = next(line for line in lines if line.split()[:1] == ["total"])
    assert "1,253,683,200" in total
    assert lines[-1].startswith("1253.7 M MACs, 5.717 M parameters")


def test_show_json(capsys):
    status, out, _ = run(capsys, "show", "resnet18", "--json", "--batch", "2")
    assert status == 0
    data = json.loads(out)
    trace = build_model("resnet18", batch=2)
    assert data["name"] == "resnet18" and data["batch"] == 2
    assert data["totals"]["macs"] == 2 * 1_814_073_344 == trace.macs
    assert data["totals"]["ops"] == len(data["ops"]) == len(trace)
    first = data["ops"][0]
    assert first == {
        "index": 0, "name": "conv1", "kind": "conv2d", "unit": "array",
        "shape": "224x224x3 -> 112x112x64 k7x7 s2 p3", "macs": 2 * 118_013_952,
        "params": 64 * 3 * 49 + 64, "param_bytes": 64 * 3 * 49 + 4 * 64,
        "in_bytes": 2 * 224 * 224 * 3, "out_bytes": 2 * 112 * 112 * 64,
    }


def test_save_json_and_show_it(capsys, tmp_path):
    path = tmp_path / "m.json"
    status, out, _ = run(capsys, "save", "mobilenetv2", "-o", str(path))
    assert status == 0 and "64 ops" in out
    assert path.read_text() == build_model("mobilenetv2").to_json()
    status, out, _ = run(capsys, "show", str(path))
    assert status == 0 and out.startswith("mobilenetv2: 64 ops")
    # save -> load -> save through the command line is byte-identical
    again = tmp_path / "again.json"
    assert run(capsys, "save", str(path), "-o", str(again))[0] == 0
    assert again.read_bytes() == path.read_bytes()


def test_save_scalesim_both_forms_and_show_the_csv(capsys, tmp_path):
    conv, gemm = tmp_path / "v.csv", tmp_path / "v_gemm.txt"
    assert run(capsys, "save", "vit-tiny", "-o", str(conv))[0] == 0
    assert conv.read_text() == to_scalesim(build_model("vit-tiny"))
    status, out, _ = run(capsys, "save", "vit-tiny", "-o", str(gemm), "--format",
                         "scalesim-gemm")
    n_vector = sum(op.gemm is None for op in build_model("vit-tiny"))
    assert status == 0 and f"122 layer rows; {n_vector} vector and memory ops dropped" in out
    assert gemm.read_text() == to_scalesim(build_model("vit-tiny"), form="gemm")
    status, out, _ = run(capsys, "show", str(conv), "--batch", "3")
    assert status == 0 and out.startswith("v: 122 ops, batch 3")
    assert f"{3 * 1_253_683_200:,}" in out


def _assert_one_line_error(status, out, err, *words):
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("edgetron trace: error: ")
    for word in words:
        assert word in err, (word, err)


def test_bad_trace_file_is_one_line_error(capsys, tmp_path):
    doc = json.loads(build_model("resnet18").to_json())
    doc["ops"][1]["kind"] = "minpool"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    _assert_one_line_error(*run(capsys, "show", str(path)), str(path), "op 1", "kind",
                           "minpool")
    doc["ops"][1]["kind"] = "maxpool"
    doc["ops"][5]["c"] = 65
    path.write_text(json.dumps(doc))
    _assert_one_line_error(*run(capsys, "save", str(path), "-o", str(tmp_path / "x.json")),
                           "op 5", "inputs[0]")
    assert not (tmp_path / "x.json").exists()
    doc["ops"][5]["c"] = 64
    doc["version"] = 3
    path.write_text(json.dumps(doc))
    _assert_one_line_error(*run(capsys, "show", str(path)), "version", "3")


def test_bad_csv_is_one_line_error(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(CONV_HEADER + "\nok,8,8,3,3,4,4,1,\nbad,8,8,3,3,four,4,1,\n")
    _assert_one_line_error(*run(capsys, "show", str(path)), f"{path}:3:", "Channels", "'four'")


def test_other_errors(capsys, tmp_path):
    _assert_one_line_error(*run(capsys, "show", "resnet50"), "resnet50", "neither a preset")
    path = tmp_path / "t.json"
    build_model("resnet18").save(path)
    _assert_one_line_error(*run(capsys, "show", str(path), "--batch", "2"), "batch")
    _assert_one_line_error(*run(capsys, "show", "vit-tiny", "--batch", "0"), "batch")
    norm_only = tmp_path / "norm.json"
    doc = json.loads(build_model("vit-tiny").to_json())
    doc["ops"] = [dict(doc["ops"][3], inputs=["input"], id=0)]
    norm_only.write_text(json.dumps(doc))
    assert load_trace(norm_only).ops[0].kind == "layernorm"
    _assert_one_line_error(*run(capsys, "save", str(norm_only), "-o", str(tmp_path / "n.csv")),
                           "nothing to run")


def test_batch_errors_name_the_model_and_op(capsys, tmp_path):
    _assert_one_line_error(*run(capsys, "show", "vit-tiny", "--batch", str(1 << 24)),
                           "vit-tiny (batch 16777216): op 0 ('patch_embed'): inputs[0]:",
                           "exceed the limit")
    # Batch 2000 is a valid trace but too many SCALE-Sim rows: refused, nothing written.
    out = tmp_path / "v.csv"
    _assert_one_line_error(*run(capsys, "save", "vit-tiny", "--batch", "2000", "-o", str(out)),
                           "vit-tiny: op 101 ('blocks.8.attn_scores')", "100000 layer rows")
    assert not out.exists()


def test_roundtrip_of_an_imported_csv_through_the_cli(capsys, tmp_path):
    text = CONV_HEADER + "\nstem,230,230,7,7,3,64,2,\nx_DP,58,58,3,3,64,1,1,\n"
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text)
    status, out, _ = run(capsys, "save", str(src), "-o", str(dst))
    assert status == 0 and "2 layer rows;" in out and "dropped" not in out
    assert dst.read_text() == text
    assert parse_scalesim(dst.read_text()).macs == parse_scalesim(text).macs


@pytest.mark.parametrize("argv", [["show", "bad.json"], ["save", "bad.json", "-o", "x.json"]])
def test_command_process_exits_nonzero_without_traceback(tmp_path, argv):
    (tmp_path / "bad.json").write_text('{"format": "edgetron-trace", "version": 1, "name": "b",'
                                       ' "batch": 1, "ops": [{"id": 0, "kind": "conv9"}]}')
    proc = subprocess.run([sys.executable, "-m", "edgetron.cli", "trace", *argv],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip() == ("edgetron trace: error: bad.json: op 0: kind: 'conv9' is not "
                                   "one of gemm, conv2d, dwconv2d, maxpool, avgpool, softmax, "
                                   "layernorm, gelu, add, concat")


def test_closed_stdout_pipe_ends_quietly():
    # `edgetron trace show vit-tiny | head`: the reader is gone before the table is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "edgetron.cli", "trace", "show", "vit-tiny"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")
