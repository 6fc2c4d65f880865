"""SCALE-Sim topology CSV import and export."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from edgetron.workload import (
    MODELS,
    Conv2d,
    DwConv2d,
    Gemm,
    ScaleSimError,
    build_model,
    parse_scalesim,
    read_scalesim,
    to_scalesim,
    write_scalesim,
)
from edgetron.workload import scalesim as scalesim_module
from edgetron.workload.scalesim import CONV_HEADER, CONV_HEADER_2STRIDES, GEMM_HEADER

# A small network in SCALE-Sim's canonical conv form (padding folded into the IFMAP size).
CONV_CSV = CONV_HEADER + """
stem,230,230,7,7,3,64,2,
block_DP,58,58,3,3,64,1,1,
block_pw,56,56,1,1,64,128,1,
wide,17,33,3,5,16,8,2,
fc,1,512,1,512,1,1000,1,
"""

# The same layers written the way real topology files are: spaces, tabs, a blank line,
# "#dw" comments after the trailing comma, a row without trailing comma, two stride
# columns (SCALE-Sim v2) on one row.
QUIRKY_CSV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, \
Channels, Num Filter, Strides,

stem, 230, 230, 7, 7, 3, 64, 2,
\tblock_DP, 58, 58, 3, 3, 64, 1, 1,#dw
block_pw,56,56,1,1,64,128,1
wide,17,33,3,5,16,8,2,2,
fc, 1, 512, 1, 512, 1, 1000, 1,   # a GEMM in SCALE-Sim's own conv mapping
"""

GEMM_CSV = GEMM_HEADER + """
L0,196,192,384,
L1,196,1176,64,
attnDP,197,197,64,
"""


def scalesim_macs(h, w, r, s, c, nf, sh, sw):
    """SCALE-Sim's own formula (topology_utils.topo_calc_hyperparams), as an oracle."""
    oh = math.ceil((h - r + sh) / sh)
    ow = math.ceil((w - s + sw) / sw)
    return oh * ow * r * s * c * nf


def _rows(text):
    return [line for line in text.splitlines()[1:] if line]


# ---- import -------------------------------------------------------------------------------
def test_conv_form_import():
    trace = parse_scalesim(CONV_CSV, name="net")
    assert trace.name == "net" and trace.batch == 1
    stem, dw, pw, wide, fc = trace.ops
    assert isinstance(stem, Conv2d)
    assert (stem.h, stem.w, stem.r, stem.c, stem.k, stem.stride_h) == (230, 230, 7, 3, 64, 2)
    # SCALE-Sim: ceil((230 - 7 + 2) / 2) = 113 windows, the last one half in padding
    assert (stem.pad_top, stem.pad_bottom, stem.pad_left, stem.pad_right) == (0, 1, 0, 1)
    assert (stem.out_h, stem.out_w) == (113, 113)
    assert isinstance(dw, DwConv2d) and (dw.c, dw.k, dw.out_h) == (64, 64, 56)
    assert isinstance(pw, Conv2d) and pw.k == 128
    assert (wide.r, wide.s, wide.stride_h, wide.stride_w, wide.out_h, wide.out_w) == (
        3, 5, 2, 2, 8, 15)
    # SCALE-Sim's GEMM mapping inside the conv form comes back as a gemm
    assert isinstance(fc, Gemm) and (fc.m, fc.k, fc.n, fc.weights) == (1, 512, 1000, True)
    assert all(op.inputs[0].op is None for op in trace)
    oracle = [
        scalesim_macs(230, 230, 7, 7, 3, 64, 2, 2),
        64 * scalesim_macs(58, 58, 3, 3, 1, 1, 1, 1),  # SCALE-Sim runs DP per channel
        scalesim_macs(56, 56, 1, 1, 64, 128, 1, 1),
        scalesim_macs(17, 33, 3, 5, 16, 8, 2, 2),
        scalesim_macs(1, 512, 1, 512, 1, 1000, 1, 1),
    ]
    assert [op.macs for op in trace] == oracle


def test_quirky_conv_form_reads_like_the_canonical_one():
    assert parse_scalesim(QUIRKY_CSV, name="net").ops == parse_scalesim(CONV_CSV, name="net").ops


def test_two_stride_columns():
    text = CONV_HEADER + "\nc,9,20,3,3,2,4,1,3,\n"
    op = parse_scalesim(text).ops[0]
    # (20 - 3) is not a multiple of 3: SCALE-Sim's partial 7th window is right padding
    assert (op.stride_h, op.stride_w, op.pad_right, op.out_h, op.out_w) == (1, 3, 1, 7, 7)
    assert op.macs == scalesim_macs(9, 20, 3, 3, 2, 4, 1, 3)
    assert to_scalesim(parse_scalesim(text)).splitlines()[1:] == ["c,9,20,3,3,2,4,1,3,"]


def test_two_stride_export_writes_the_nine_column_header_and_reads_back():
    text = CONV_HEADER + "\nsquare,9,9,3,3,2,4,2,\nwide,9,20,3,3,2,4,1,3,\n"
    written = to_scalesim(parse_scalesim(text))
    assert written.splitlines() == [
        CONV_HEADER_2STRIDES, "square,9,9,3,3,2,4,2,2,", "wide,9,20,3,3,2,4,1,3,"]
    assert CONV_HEADER_2STRIDES.split(", ")[7:] == ["Stride Height", "Stride Width,"]
    assert parse_scalesim(written).ops == parse_scalesim(text).ops
    assert to_scalesim(parse_scalesim(written)) == written
    # SCALE-Sim's own writer spells the columns in lower case
    lower = written.replace("Stride Height, Stride Width", "Stride height, Stride width")
    assert parse_scalesim(lower).ops == parse_scalesim(text).ops


def test_cr_only_line_endings_read_like_lf():
    # SCALE-Sim reads topology files in universal-newlines mode: LF, CRLF or a lone CR.
    assert parse_scalesim(CONV_CSV.replace("\n", "\r")).ops == parse_scalesim(CONV_CSV).ops
    bad = CONV_HEADER + "\ra,10,10,3,3,4,4,1,\rb,10,10,3,3,x,4,1,\r"
    with pytest.raises(ScaleSimError, match=r"^net\.csv:3: Channels: expected a positive "
                                            r"integer, got 'x'$"):
        parse_scalesim(bad, source="net.csv")


def test_depthwise_channel_multiplier():
    op = parse_scalesim(CONV_HEADER + "\nx_DP,10,10,3,3,8,2,1,\n").ops[0]
    assert isinstance(op, DwConv2d) and (op.c, op.k, op.multiplier) == (8, 16, 2)
    assert op.macs == 8 * scalesim_macs(10, 10, 3, 3, 1, 2, 1, 1)


def test_gemm_form_import_maps_m_n_k_like_scalesim():
    trace = parse_scalesim(GEMM_CSV)
    l0, l1, attn = trace.ops
    # columns are M, N, K: (M x K) activations @ (K x N) weights
    assert (l0.m, l0.k, l0.n) == (196, 384, 192)
    assert (l1.m, l1.k, l1.n) == (196, 64, 1176)
    assert isinstance(attn, Gemm) and attn.name == "attnDP"  # DP means nothing in GEMM form
    # SCALE-Sim: IFMAP M x K, filter 1 x K, 1 channel, N filters
    assert l0.macs == scalesim_macs(196, 384, 1, 384, 1, 192, 1, 1) == 196 * 192 * 384
    assert all(op.weights for op in trace)


def test_batch_applies_to_every_layer():
    trace = parse_scalesim(CONV_CSV, batch=4)
    assert trace.batch == 4
    assert trace.macs == 4 * parse_scalesim(CONV_CSV).macs


MALFORMED = [
    # (csv text, words the message must contain)
    (CONV_HEADER + "\na,10,10,3,3,x,4,1,\n", ["net.csv:2:", "Channels", "'x'"]),
    (CONV_HEADER + "\na,10,10,3,3,4,-4,1,\n", ["net.csv:2:", "Num Filter", "'-4'"]),
    (CONV_HEADER + "\na,10,10,3,3,4,0,1,\n", ["net.csv:2:", "Num Filter", "out of range"]),
    (CONV_HEADER + "\na,10,10,3,3,4,4,1.5,\n", ["net.csv:2:", "Strides", "'1.5'"]),
    (CONV_HEADER + "\n\nok,4,4,1,1,1,2,1,\na,10,,3,3,4,4,1,\n",
     ["net.csv:4:", "IFMAP Width", "''"]),
    (CONV_HEADER + "\na,10,10,3,3,4,4,\n", ["net.csv:2:", "expected 8 fields", "got 7"]),
    (CONV_HEADER + "\na,10,10,3,3,4,4,1,1,1,\n", ["net.csv:2:", "got 10"]),
    (CONV_HEADER + "\na,2,10,3,3,4,4,1,\n", ["net.csv:2:", "Filter Height", "IFMAP Height"]),
    (CONV_HEADER + "\na,10,2,3,3,4,4,1,\n", ["net.csv:2:", "Filter Width", "IFMAP Width"]),
    (CONV_HEADER + "\n ,10,10,3,3,4,4,1,\n", ["net.csv:2:", "Layer name", "empty"]),
    (CONV_HEADER + f"\na,{2**24 + 1},10,3,3,4,4,1,\n", ["net.csv:2:", "IFMAP Height"]),
    (CONV_HEADER + "\na,10,10,3,3,4,6,1,\nb_DP,10,10,3,3,4,1,1,\nc,10,10,3,3,4,4,0,\n",
     ["net.csv:4:", "Strides"]),
    # every column of the header must name the column SCALE-Sim reads at its position
    (CONV_HEADER.replace("Strides", "Batch Size") + "\na,10,10,3,3,4,4,2,\n",
     ["net.csv:1: column 8: 'Batch Size' is not Strides; SCALE-Sim reads the conv form's "
      "columns by position, in the order Layer name, IFMAP Height, IFMAP Width, Filter "
      "Height, Filter Width, Channels, Num Filter, Strides[, Stride Width]"]),
    (CONV_HEADER + " Batch Size,\na,10,10,3,3,4,4,1,2,\n",
     ["net.csv:1: column 9: 'Batch Size' is not Stride Width;"]),
    (CONV_HEADER + " Sparsity\na,10,10,3,3,4,4,1,1:4,\n",
     ["net.csv:1: column 9: 'Sparsity' is not Stride Width;"]),
    (CONV_HEADER + " Stride Width, Dilation,\na,10,10,3,3,4,4,1,\n",
     ["net.csv:1: the conv-form header has 10 columns; expected 8 or 9: Layer name, "]),
    (CONV_HEADER.replace("IFMAP Height, IFMAP Width", "IFMAP Width, IFMAP Height")
     + "\na,10,20,3,3,4,4,1,\n",
     ["net.csv:1: column 2: 'IFMAP Width' is not IFMAP Height;"]),
    (CONV_HEADER.replace("Filter Height, Filter Width", "Filter Width, Filter Height")
     + "\na,10,20,3,5,4,4,1,\n", ["net.csv:1: column 4: 'Filter Width' is not Filter Height;"]),
    (CONV_HEADER.replace("Channels, Num Filter", "Num Filter, Channels")
     + "\na,10,20,3,5,4,8,1,\n", ["net.csv:1: column 6: 'Num Filter' is not Channels;"]),
    (CONV_HEADER.replace("Layer name", "Name") + "\na,10,10,3,3,4,4,1,\n",
     ["net.csv:1: column 1: 'Name' is not Layer name;"]),
    ("Layer, M, K, N,\nL0,196,192,384,\n",
     ["net.csv:1: column 3: 'K' is not N; SCALE-Sim reads the GEMM form's columns by "
      "position, in the order Layer, M, N, K"]),
    ("Layer, N, M, K,\nL0,196,192,384,\n", ["net.csv:1: column 2: 'N' is not M;"]),
    ("Layer, M, N, K, Sparsity,\nL0,196,192,384,\n",
     ["net.csv:1: the GEMM-form header has 5 columns; expected 4: Layer, M, N, K"]),
    # integers of hundreds or thousands of digits: named by their size, never converted
    (CONV_HEADER + "\na,10,10,3,3," + "9" * 400 + ",4,1,\n",
     ["net.csv:2: Channels: an integer of 400 digits is out of range; allowed [1, 16777216]"]),
    (GEMM_HEADER + "\nL0,196," + "1" * 5000 + ",384,\n",
     ["net.csv:2: N: an integer of 5000 digits is out of range; allowed [1, 16777216]"]),
    (GEMM_HEADER + "\nL0,196," + "0" * 5000 + "16777217,384,\n",
     ["net.csv:2: N: 16777217 is out of range; allowed [1, 16777216]"]),
    (GEMM_HEADER + "\nL0,196,N" + "x" * 5000 + ",384,\n",
     ["net.csv:2: N: expected a positive integer, got 'Nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."]),
    # a tensor too large names the CSV columns, not the trace's fields
    (CONV_HEADER + "\na,200000,100000,1,1,1,4,1,\n",
     ["net.csv:2:", "IFMAP Height x IFMAP Width x Channels", "20000000000 elements"]),
    (CONV_HEADER + "\na,10,10,10,10,100000,100000,1,\n",
     ["net.csv:2:", "Filter Height x Filter Width x Channels x Num Filter"]),
    (CONV_HEADER + "\na,1,100000,1,1,1,200000,1,\n",
     ["net.csv:2:", "the output (1 x 100000 x 200000"]),
    (CONV_HEADER + "\na_DP,10,10,3,3,100000,1000,1,\n",
     ["net.csv:2:", "Channels x Num Filter", "100000000 output channels"]),
    (GEMM_HEADER + "\nL0,200000,1,100000,\n", ["net.csv:2:", "M x K:"]),
    (GEMM_HEADER + "\nL0,1,200000,100000,\n", ["net.csv:2:", "K x N:"]),
    (GEMM_HEADER + "\nL0,200000,100000,1,\n", ["net.csv:2:", "M x N:"]),
    (GEMM_HEADER + "\n" + "x" * 201 + ",1,1,1,\n", ["net.csv:2:", "Layer:", "200 printable"]),
    (GEMM_HEADER + "\nL0,196,192,\n", ["net.csv:2:", "expected 4 fields"]),
    (GEMM_HEADER + "\nL0,196,192,384,1:1,\n", ["net.csv:2:", "expected 4 fields", "got 5"]),
    (GEMM_HEADER + "\nL0,196,N,384,\n", ["net.csv:2:", "N:", "'N'"]),
    ("stem,230,230,7,7,3,64,2,\n", ["net.csv:1:", "header line"]),
    ("Name,Height,Width,\nstem,230,230,7,7,3,64,2,\n", ["net.csv:1:", "header not recognised"]),
    ("\n\n", ["net.csv", "empty file"]),
    (CONV_HEADER + "\n# only a comment\n", ["net.csv", "no layer rows"]),
]


# Header spellings found in SCALE-Sim's own topologies and written by its own writer.
SCALESIM_HEADERS = [
    "Layer name,Ifmap height,ifmap width,filter height,filter width,channels,num filters,"
    "strides,",
    "Layer name,Ifmap height,ifmap width,filter height,filter width,channel,num filters,"
    "strides,",
    "Layer name,IFMAP height,IFMAP width,Filter height,Filter width,Channels,Num filter,"
    "Stride height,Stride width,",
    "Layer name\t, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides",
    # DeepBench and MLPerf topologies name column 2 "IFMAP Width" as well; SCALE-Sim reads
    # it as the height, by position.
    "Layer, IFMAP Width, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,",
]


@pytest.mark.parametrize("header", SCALESIM_HEADERS)
def test_scalesim_header_spellings_are_read_by_position(header):
    row = "\nDeepSpeech_1,700,161,20,5,1,32,2,\n"
    assert parse_scalesim(header + row).ops == parse_scalesim(CONV_HEADER + row).ops


def test_gemm_header_spellings():
    assert parse_scalesim("Layer Name, M, N, K,\nL0,196,192,384,\n").ops == parse_scalesim(
        "Layer,M,N,K,\nL0,196,192,384,\n").ops


@pytest.mark.parametrize(("text", "words"), MALFORMED)
def test_malformed_csv_names_line_and_column(text, words):
    with pytest.raises(ScaleSimError) as info:
        parse_scalesim(text, source="net.csv")
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_batch_is_checked_and_named_with_the_columns():
    with pytest.raises(ScaleSimError, match=r"^net\.csv: batch: 0 is out of range"):
        parse_scalesim(GEMM_CSV, batch=0, source="net.csv")
    with pytest.raises(ScaleSimError, match=r"^net\.csv:2: M x K: 225792000000 elements at "
                                            r"batch 3000000 exceed the limit"):
        parse_scalesim(GEMM_CSV, batch=3_000_000, source="net.csv")


def test_read_scalesim_file(tmp_path, monkeypatch):
    path = tmp_path / "my_net.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CONV_CSV.replace("\n", "\r\n").encode())
    trace = read_scalesim(path)
    assert trace.name == "my_net" and len(trace) == 5
    path.write_bytes(CONV_CSV.encode() + b"bad,\xff\n")
    with pytest.raises(ScaleSimError, match="not UTF-8"):
        read_scalesim(path)
    monkeypatch.setattr(scalesim_module, "MAX_FILE_BYTES", 10)
    with pytest.raises(ScaleSimError, match="exceeds the limit of 10 bytes"):
        read_scalesim(path)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_read_scalesim_limit_counts_the_bytes_read(monkeypatch):
    monkeypatch.setattr(scalesim_module, "MAX_FILE_BYTES", 100)
    with pytest.raises(ScaleSimError, match="maps: the file exceeds the limit of 100 bytes"):
        read_scalesim("/proc/self/maps")


# ---- export and round trips --------------------------------------------------------------------
@pytest.mark.parametrize(("text", "form"), [(CONV_CSV, "conv"), (GEMM_CSV, "gemm")])
def test_csv_round_trip_is_exact(text, form):
    assert to_scalesim(parse_scalesim(text), form=form) == text


def test_quirky_csv_round_trip_keeps_every_layer():
    written = to_scalesim(parse_scalesim(QUIRKY_CSV))
    assert _rows(written) == _rows(CONV_CSV)


@pytest.mark.parametrize("preset", list(MODELS))
@pytest.mark.parametrize("form", ["conv", "gemm"])
def test_trace_to_csv_to_trace_keeps_every_matrix_product(preset, form):
    trace = build_model(preset)
    text = to_scalesim(trace, form=form)
    back = parse_scalesim(text)
    array_ops = [op for op in trace if op.gemm is not None]
    assert back.macs == sum(op.macs for op in array_ops) == trace.macs
    assert to_scalesim(back, form=form) == text  # stable from here on
    if form == "conv":
        # one row per head for the attention products, one per layer otherwise
        rows_per_op = [op.count if isinstance(op, Gemm) else 1 for op in array_ops]
        kinds = [type(op) for op, rows in zip(array_ops, rows_per_op, strict=True)
                 for _ in range(rows)]
        assert [type(op) for op in back] == kinds


@pytest.mark.parametrize("preset", list(MODELS))
def test_scalesim_formula_on_exported_rows_gives_our_macs(preset):
    trace = build_model(preset, batch=2)
    total = 0
    for row in _rows(to_scalesim(trace)):
        name, *values = row.rstrip(",").split(",")
        h, w, r, s, c, nf, stride = map(int, values)
        if "DP" in name:  # SCALE-Sim: Channels one-channel layers
            total += c * scalesim_macs(h, w, r, s, 1, nf, stride, stride)
        else:
            total += scalesim_macs(h, w, r, s, c, nf, stride, stride)
    assert total == trace.macs
    gemm_rows = [map(int, row.rstrip(",").split(",")[1:])
                 for row in _rows(to_scalesim(trace, form="gemm"))]
    assert sum(m * n * k for m, n, k in gemm_rows) == trace.macs


def test_mobilenetv2_exports_depthwise_as_dp_rows():
    trace = build_model("mobilenetv2")
    rows = _rows(to_scalesim(trace))
    dp = [row for row in rows if "DP" in row.split(",")[0]]
    assert len(dp) == 17
    assert dp[0] == "block1.dw_DP,114,114,3,3,32,1,1,"  # 112 + 2 x padding
    back = parse_scalesim(to_scalesim(trace))
    dws = [op for op in trace if isinstance(op, DwConv2d)]
    assert [op.macs for op in back if isinstance(op, DwConv2d)] == [op.macs for op in dws]


def test_vit_export_rows():
    rows = _rows(to_scalesim(build_model("vit-tiny")))
    assert rows[0] == "patch_embed,224,224,16,16,3,192,16,"
    assert rows[1] == "blocks.0.qkv,197,192,1,192,1,576,1,"
    assert rows[2:5] == [f"blocks.0.attn_scores.h{j},197,64,1,64,1,197,1," for j in range(3)]
    assert rows[5] == "blocks.0.attn_v.h0,197,197,1,197,1,64,1,"
    assert rows[-1] == "head,1,192,1,192,1,1000,1,"
    assert len(rows) == 1 + 12 * 10 + 1
    gemm_rows = _rows(to_scalesim(build_model("vit-tiny"), form="gemm"))
    assert gemm_rows[:3] == ["patch_embed,196,192,768,", "blocks.0.qkv,197,576,192,",
                             "blocks.0.attn_scores.h0,197,197,64,"]


def test_batch_export():
    trace = build_model("vit-tiny", batch=2)
    rows = _rows(to_scalesim(trace))
    assert rows[0:2] == ["patch_embed.b0,224,224,16,16,3,192,16,",
                         "patch_embed.b1,224,224,16,16,3,192,16,"]
    assert rows[2] == "blocks.0.qkv,394,192,1,192,1,576,1,"  # weights shared: batch in M
    assert rows[3:9] == [f"blocks.0.attn_scores.b{b}.h{j},197,64,1,64,1,197,1,"
                         for b in range(2) for j in range(3)]
    assert parse_scalesim(to_scalesim(trace)).macs == trace.macs
    assert parse_scalesim(to_scalesim(trace, form="gemm")).macs == trace.macs


def test_grouped_conv_and_names_are_made_safe(tmp_path):
    ops = parse_scalesim(CONV_HEADER + "\nx,10,10,3,3,8,4,1,\n").ops
    grouped = Conv2d(name="ADPX, #1", inputs=("input",), n=1, h=8, w=8, c=8, k=4, r=3, s=3,
                     pad_top=1, pad_bottom=1, pad_left=1, pad_right=1, groups=2)
    trace = type(parse_scalesim(CONV_CSV))(name="t", batch=1, ops=(*ops, grouped))
    rows = _rows(to_scalesim(trace))
    assert rows == ["x,10,10,3,3,8,4,1,", "ADpX_ _1.g0,10,10,3,3,4,2,1,",
                    "ADpX_ _1.g1,10,10,3,3,4,2,1,"]
    assert parse_scalesim(to_scalesim(trace)).macs == trace.macs
    path = tmp_path / "g.csv"
    write_scalesim(trace, path, form="gemm")
    assert _rows(path.read_text())[1:] == ["ADPX_ _1.g0,64,2,36,", "ADPX_ _1.g1,64,2,36,"]


def test_export_refuses_more_rows_than_a_csv_may_have():
    # Batch 2000 unrolls each attention product into 6000 rows: past the 100000 rows a
    # CSV may have (the import limit) at block 8.
    trace = build_model("vit-tiny", batch=2000)
    for form in ("conv", "gemm"):
        with pytest.raises(ScaleSimError, match=r"^vit-tiny: op 101 \('blocks\.8\.attn_scores'\): "
                                                r"the CSV would have more than 100000 layer rows"):
            to_scalesim(trace, form=form)


def test_export_errors():
    trace = parse_scalesim(CONV_CSV)
    with pytest.raises(ScaleSimError, match="form: 'onnx'"):
        to_scalesim(trace, form="onnx")
    norm = dataclasses.replace(build_model("vit-tiny")[3], inputs=("input",))
    vector_only = type(trace)(name="v", batch=1, ops=(norm,))
    with pytest.raises(ScaleSimError, match="nothing to run"):
        to_scalesim(vector_only)
