"""Functional mode (sim/functional.py): bit-exact with golden in the hardware's tile order."""

from __future__ import annotations

import numpy as np
import pytest

from edgetron.config import PRESETS
from edgetron.sim.engine import simulate
from edgetron.sim.functional import gemm_tiled, prepare, run_functional
from edgetron.workload import Gemm, Trace, mobilenetv2, resnet18, vit

CONFIGS = [(p, d) for p in ("edge-8", "edge-16") for d in ("ws", "os", "is")]


@pytest.fixture(scope="module")
def vit_block():
    """ViT-Tiny with one full encoder block (patch embedding and head included)."""
    return prepare(vit(depth=1), seed=1)


@pytest.fixture(scope="module")
def resnet_small():
    """ResNet-18, every layer, at 32 x 32 input (spatial sizes 16 down to 1)."""
    return prepare(resnet18(image_size=32), seed=2)


@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_vit_block_is_bit_exact(vit_block, preset, dataflow):
    res = run_functional(vit_block, PRESETS[preset].replace(dataflow=dataflow))
    assert res.ok, res.summary()
    kinds = {c.kind for c in res.checks}
    assert {"gemm", "conv2d", "softmax", "layernorm", "gelu", "add", "concat"} <= kinds


@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_resnet18_reduced_is_bit_exact(resnet_small, preset, dataflow):
    cfg = PRESETS[preset].replace(dataflow=dataflow)
    res = run_functional(resnet_small, cfg)
    assert res.ok, res.summary()
    assert {"conv2d", "maxpool", "add", "avgpool", "gemm"} <= {c.kind for c in res.checks}


def test_k_split_partial_sums_are_exercised_and_exact(resnet_small):
    # edge-8's 32 KiB weight buffer cannot hold layer4's K = 4608 in one call.
    cfg = PRESETS["edge-8"]
    timing = simulate(resnet_small.trace, cfg)
    split = [op.name for op in timing.ops if op.values["k_chunks"] > 1]
    assert "layer4.0.conv2" in split
    res = run_functional(resnet_small, cfg)
    assert res.ok, res.summary()
    calls = {c.name: c.calls for c in res.checks}
    assert calls["layer4.0.conv2"] == timing.op_dict(
        [o.name for o in timing.ops].index("layer4.0.conv2"))["calls"] > 1


def test_depthwise_and_relu6_are_exact():
    data = prepare(mobilenetv2(image_size=32), seed=3)
    res = run_functional(data, PRESETS["edge-16"])
    assert res.ok, res.summary()
    assert "dwconv2d" in {c.kind for c in res.checks}


def test_small_buffers_force_many_calls_and_stay_exact(vit_block):
    cfg = PRESETS["edge-8"].replace(ifmap_sram_bytes=2048, weight_sram_bytes=2048,
                                    ofmap_sram_bytes=8192, dataflow="ws")
    res = run_functional(vit_block, cfg)
    assert res.ok, res.summary()
    qkv = next(c for c in res.checks if c.name == "blocks.0.qkv")
    assert qkv.calls == qkv.expected_calls > 10


def test_a_wrong_output_is_reported(vit_block):
    trace = vit_block.trace
    i = next(j for j, op in enumerate(trace) if op.name == "blocks.0.softmax")
    saved = vit_block.ops[i].golden.copy()
    try:
        vit_block.ops[i].golden.flat[5] += 1
        res = run_functional(vit_block, PRESETS["edge-16"])
    finally:
        vit_block.ops[i].golden[...] = saved
    assert not res.ok
    assert [c.index for c in res.failures] == [i]
    bad = res.failures[0]
    assert bad.mismatches == 1 and bad.first_mismatch is not None
    assert "blocks.0.softmax" in res.summary()


def test_gemm_kernel_matches_numpy_in_every_dataflow():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, size=(2, 13, 37)).astype(np.int64)
    w = rng.integers(-128, 128, size=(2, 37, 11)).astype(np.int64)
    bias = rng.integers(-1000, 1000, size=(2, 11)).astype(np.int64)
    ref = np.matmul(a, w) + bias[:, None, :]
    zeros = np.zeros((2, 11), dtype=np.int64)
    for dataflow in (0, 1, 2):
        for tile in ((13, 37, 11), (5, 16, 4), (1, 3, 1)):
            out = np.empty((2, 13, 11), dtype=np.int64)
            calls, ok = gemm_tiled(a, w, bias, zeros, zeros, 1, -(1 << 31), (1 << 31) - 1,
                                   *tile, 4, 4, dataflow, out)
            assert ok
            np.testing.assert_array_equal(out, ref)
            assert calls == 2 * -(-13 // tile[0]) * -(-37 // tile[1]) * -(-11 // tile[2])


def test_given_inputs_are_used_and_checked():
    trace = Trace(name="t", batch=1, ops=(
        Gemm(name="fc", inputs=("input",), batch=1, m=4, k=8, n=8, weights=True,
             requant="channel"),
    ))
    x = np.arange(-16, 16).reshape(1, 4, 8)
    data = prepare(trace, seed=0, inputs=x)
    np.testing.assert_array_equal(data.ops[0].operands[0], x)
    assert run_functional(data, PRESETS["edge-8"]).ok
    with pytest.raises(ValueError, match=r"op 0 \('fc'\): inputs\[0\] must be integers of "
                                         r"shape \[1, 4, 8\]"):
        prepare(trace, inputs=np.zeros((1, 4, 7), dtype=np.int64))
    with pytest.raises(ValueError, match="int8 values"):
        prepare(trace, inputs={0: np.full((1, 4, 8), 300)})


def test_same_seed_same_data():
    a = prepare(vit(image_size=32, embed=32, heads=2, depth=1, classes=10), seed=7)
    b = prepare(vit(image_size=32, embed=32, heads=2, depth=1, classes=10), seed=7)
    for x, y in zip(a.ops, b.ops, strict=True):
        np.testing.assert_array_equal(x.golden, y.golden)


@pytest.mark.slow
@pytest.mark.parametrize("preset, dataflow", CONFIGS)
def test_vit_tiny_all_blocks_bit_exact(preset, dataflow):
    data = prepare(vit(), seed=5)
    res = run_functional(data, PRESETS[preset].replace(dataflow=dataflow))
    assert res.ok, res.summary()
    assert len(res.checks) == len(data.trace) == 3 + 12 * 12 + 2
