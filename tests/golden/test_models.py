"""Integer models (golden/models.py) against their kernels and the float blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.golden import models as M
from edgetron.golden import reference as R
from edgetron.golden.add import residual_add
from edgetron.golden.conv import conv2d_requant
from edgetron.golden.gelu import gelu_int8
from edgetron.golden.gemm import gemm_int, gemm_requant, matmul_int
from edgetron.golden.intops import INT8_MAX, INT8_MIN, INT32_MAX, INT32_MIN, requantize
from edgetron.golden.layernorm import layernorm_int
from edgetron.golden.softmax import softmax_int

COSINE_TARGET = 0.99


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def small_block(seed: int = 0, embed: int = 48, heads: int = 3, mlp: int = 96):
    rng = np.random.default_rng(seed)
    return R.random_encoder_block(rng, embed, heads, mlp), rng


def composed_block(m: M.IntEncoderBlock, x: np.ndarray) -> np.ndarray:
    """The encoder block of one image (T, D) spelled out kernel by kernel, one head at a time.

    Uses the scale-taking kernel entry points (softmax_int, gelu_int8) with the
    model's recorded scales, so it also checks that the stored constants are
    the ones those scales give.
    """
    s = m.scales
    d, hd = m.embed, m.head_dim
    h = layernorm_int(x, m.ln1)
    qkv = gemm_requant(h, m.qkv.weight, m.qkv.bias, m.qkv.m, m.qkv.s)
    heads = []
    for i in range(m.heads):
        cols = slice(i * hd, (i + 1) * hd)
        q, k, v = (qkv[:, j * d:(j + 1) * d][:, cols] for j in range(3))
        scores = matmul_int(q, k.T)
        probs = softmax_int(scores, s["q"] * s["k"] / math.sqrt(hd))
        heads.append(requantize(matmul_int(probs, v), m.attn_m, m.attn_s))
    ctx = np.concatenate(heads, axis=1)
    proj = gemm_requant(ctx, m.proj.weight, m.proj.bias, m.proj.m, m.proj.s)
    res1 = residual_add(x, proj, *m.add1)
    f1 = gemm_int(layernorm_int(res1, m.ln2), m.fc1.weight, m.fc1.bias)
    g = gelu_int8(f1, float(m.fc1.acc_scale[0]), s["gelu"], in_bits=32)
    f2 = gemm_requant(g, m.fc2.weight, m.fc2.bias, m.fc2.m, m.fc2.s)
    return residual_add(res1, f2, *m.add2)


# ---- encoder block ---------------------------------------------------------------------
def test_block_equals_composition_of_kernels():
    p, rng = small_block()
    x = rng.normal(size=(2, 17, p.embed))
    m = M.calibrate(p, x)
    q = M.quantize_input(m, x)
    out = M.forward_int(m, q)
    assert out.shape == (2, 17, p.embed) and out.dtype == np.int64
    for b in range(2):
        np.testing.assert_array_equal(out[b], composed_block(m, q[b]))
    # A single image without the batch axis gives the same rows.
    np.testing.assert_array_equal(M.forward_int(m, q[1]), out[1])


def test_block_scales_and_constants_are_consistent():
    p, rng = small_block(1)
    x = rng.normal(size=(9, p.embed))
    m = M.calibrate(p, x)
    s = m.scales
    d = p.embed
    assert s["in"] == m.in_scale == pytest.approx(np.abs(x).max() / INT8_MAX, rel=1e-15)
    np.testing.assert_array_equal(m.qkv.out_scale, np.repeat([s["q"], s["k"], s["v"]], d))
    assert m.softmax.iexp.in_scale == pytest.approx(s["q"] * s["k"] / math.sqrt(m.head_dim))
    assert s["probs"] == m.softmax.out_scale == 2.0**-7
    np.testing.assert_array_equal(m.fc1.weight_scale, m.fc1.weight_scale[0])  # one fc1 scale
    assert m.fc1.m is None and m.fc1.out_scale is None  # fc1 stays int32 for GELU
    assert m.gelu.gelu.in_scale == float(m.fc1.acc_scale[0]) and m.gelu.out_scale == s["gelu"]
    assert (m.ln1.in_scale, m.ln1.out_scale) == (s["in"], s["ln1"])
    assert (m.ln2.in_scale, m.ln2.out_scale) == (s["res1"], s["ln2"])
    assert m.out_scale == s["out"]
    for layer in (m.qkv, m.proj, m.fc1, m.fc2):
        assert layer.weight.dtype == np.int8
        assert layer.acc_bound < 2**31
    # The block inside a model takes the previous output scale as its input scale.
    m2 = M.calibrate(p, x, in_scale=0.05)
    assert m2.in_scale == 0.05 and m2.ln1.in_scale == 0.05


def test_vit_tiny_block_tracks_the_float_block():
    rng = np.random.default_rng(2024)
    p = R.random_encoder_block(rng)  # ViT-Tiny: embed 192, 3 heads, MLP 768
    x = rng.normal(size=(197, 192))
    m = M.calibrate(p, x)
    y = M.dequantize_output(m, M.forward_int(m, M.quantize_input(m, x)))
    assert cosine(y, R.encoder_block(p, x)) >= COSINE_TARGET
    # Also on an input the scales were not calibrated on.
    x2 = rng.normal(size=(197, 192))
    y2 = M.dequantize_output(m, M.forward_int(m, M.quantize_input(m, x2)))
    assert cosine(y2, R.encoder_block(p, x2)) >= COSINE_TARGET


def test_block_saturates_instead_of_wrapping():
    # Inputs at the int8 extremes pass every kernel's width checks and give exactly the
    # kernel-by-kernel composition (each kernel saturates, see its own tests).
    p, rng = small_block(3)
    m = M.calibrate(p, rng.normal(size=(9, p.embed)))
    for v in (INT8_MIN, INT8_MAX):
        q = np.full((9, p.embed), v)
        out = M.forward_int(m, q)
        assert out.min() >= INT8_MIN and out.max() <= INT8_MAX
        np.testing.assert_array_equal(out, composed_block(m, q))
    q = np.where(np.arange(p.embed) % 2, INT8_MAX, INT8_MIN) * np.ones((9, 1), dtype=np.int64)
    out = M.forward_int(m, q)
    assert out.min() >= INT8_MIN and out.max() <= INT8_MAX
    assert M.forward_int(m, q).tolist() == out.tolist()
    np.testing.assert_array_equal(out, composed_block(m, q))
    # Alternating extremes drive the output residual add into saturation at both ends.
    assert out.min() == INT8_MIN and out.max() == INT8_MAX


# ---- ResNet basic block ------------------------------------------------------------------
def composed_basic_block(m: M.IntBasicBlock, x: np.ndarray) -> np.ndarray:
    def conv(layer, inp):
        return conv2d_requant(inp, layer.weight, layer.bias, layer.m, layer.s, layer.stride,
                              layer.padding)

    h = np.maximum(conv(m.conv1, x), 0)
    h2 = conv(m.conv2, h)
    short = x if m.downsample is None else conv(m.downsample, x)
    return np.maximum(residual_add(short, h2, *m.add), 0)


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(16, 16, 1), (16, 32, 2)])
def test_basic_block_equals_kernels_and_tracks_float(c_in, c_out, stride):
    rng = np.random.default_rng(c_out)
    p = R.random_basic_block(rng, c_in, c_out, stride)
    assert (p.downsample is None) == (stride == 1 and c_in == c_out)
    x = rng.normal(size=(2, c_in, 12, 12))
    m = M.calibrate(p, x)
    q = M.quantize_input(m, x)
    out = M.forward_int(m, q)
    assert out.shape == (2, c_out, 12 // stride, 12 // stride)
    assert out.min() >= 0 and out.max() <= INT8_MAX  # ReLU output
    np.testing.assert_array_equal(out, composed_basic_block(m, q))
    assert m.conv1.relu and not m.conv2.relu
    ref = R.basic_block(p, x)
    assert cosine(M.dequantize_output(m, out), ref) >= COSINE_TARGET


# ---- whole ViT ---------------------------------------------------------------------------
def tiny_vit(seed: int = 0, depth: int = 2):
    rng = np.random.default_rng(seed)
    p = R.random_vit(rng, image_size=32, patch=8, embed=48, heads=3, depth=depth, mlp=96,
                     classes=10)
    return p, rng.normal(size=(2, 3, 32, 32))


def test_vit_equals_patch_conv_blocks_norm_and_head():
    p, img = tiny_vit()
    m = M.calibrate(p, img)
    q = M.quantize_input(m, img)
    logits = M.forward_int(m, q)
    assert logits.shape == (2, 10)
    assert logits.min() >= INT32_MIN and logits.max() <= INT32_MAX
    # Patch embedding as the golden convolution, flattened row-major.
    pe = m.patch_embed
    w_conv = pe.weight.T.reshape(48, 3, 8, 8)
    conv = conv2d_requant(q, w_conv, pe.bias, pe.m, pe.s, stride=8)
    tokens = np.concatenate(
        [np.broadcast_to(m.cls_token, (2, 1, 48)), conv.reshape(2, 48, 16).transpose(0, 2, 1)],
        axis=1,
    )
    x = residual_add(tokens, np.broadcast_to(m.pos_embed, tokens.shape), *m.add_pos)
    for blk in m.blocks:
        x = M.forward_int(blk, x)
    y = layernorm_int(x[:, 0], m.norm)
    np.testing.assert_array_equal(logits, gemm_int(y, m.head.weight, m.head.bias))
    # Block i's input scale is block i-1's output scale.
    assert m.blocks[0].in_scale == m.scales["embed"]
    assert m.blocks[1].in_scale == m.blocks[0].out_scale
    assert m.norm.in_scale == m.blocks[-1].out_scale
    np.testing.assert_array_equal(m.out_scale, m.head.acc_scale)


@pytest.fixture(scope="module")
def vit_tiny():
    rng = np.random.default_rng(7)
    p = R.random_vit(rng)  # ViT-Tiny: 224x224, patch 16, embed 192, 3 heads, 12 blocks
    img = rng.normal(size=(1, 3, 224, 224))
    return p, M.calibrate(p, img), img


def test_vit_tiny_12_block_integer_forward_runs(vit_tiny):
    """Functional guard for the speed of golden: the whole integer ViT-Tiny forward.

    benchmarks/golden_speed.py measures the time; here it must simply run (a
    slow regression makes this test slow), give the right shapes, stay finite
    and be deterministic.
    """
    p, m, img = vit_tiny
    assert len(m.blocks) == 12 and m.patch == 16
    q = M.quantize_input(m, img)
    assert q.shape == (1, 3, 224, 224)
    logits = M.forward_int(m, q)
    assert logits.shape == (1, 1000) and logits.dtype == np.int64
    assert logits.min() >= INT32_MIN and logits.max() <= INT32_MAX
    real = M.dequantize_output(m, logits)
    assert np.isfinite(real).all() and np.abs(real).max() > 0
    np.testing.assert_array_equal(M.forward_int(m, q), logits)
    assert real.shape == (1, p.classes)


# ---- bad inputs --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def block():
    p, rng = small_block(11)
    return p, M.calibrate(p, rng.normal(size=(5, p.embed)))


@pytest.mark.parametrize(
    ("q", "exc", "match"),
    [
        (np.zeros((5, 48)), TypeError, "q must hold integers"),
        (np.zeros((5, 47), dtype=np.int64), ValueError, r"q must have shape \(tokens, 48\)"),
        (np.zeros((1, 2, 5, 48), dtype=np.int64), ValueError, "q must have shape"),
        (np.full((5, 48), 128), ValueError, r"q must lie in \[-128, 127\]"),
        (np.full((5, 48), -129), ValueError, r"q must lie in \[-128, 127\]"),
    ],
)
def test_forward_int_rejects_bad_tokens(block, q, exc, match):
    with pytest.raises(exc, match=match):
        M.forward_int(block[1], q)


def test_bad_models_and_params(block):
    p, m = block
    with pytest.raises(TypeError, match="forward_int needs an IntEncoderBlock"):
        M.forward_int(p, np.zeros((5, 48), dtype=np.int64))
    with pytest.raises(TypeError, match="calibrate needs EncoderBlockParams"):
        M.calibrate(m, np.zeros((5, 48)))
    with pytest.raises(ValueError, match=r"x must have shape \(tokens, 48\)"):
        M.calibrate(p, np.ones((5, 40)))
    with pytest.raises(ValueError, match="x contains nan or inf"):
        M.calibrate(p, np.full((5, 48), np.nan))
    with pytest.raises(ValueError, match="x is all zeros"):
        M.calibrate(p, np.zeros((5, 48)))
    with pytest.raises(TypeError, match="model must be an IntEncoderBlock"):
        M.quantize_input(p, np.zeros((5, 48)))
    with pytest.raises(TypeError, match="q must hold integers"):
        M.dequantize_output(m, np.zeros((5, 48)))


def test_bad_vit_and_basic_block_inputs():
    p, img = tiny_vit(depth=1)
    m = M.calibrate(p, img)
    with pytest.raises(ValueError, match=r"q must have shape \(N, 3, H, W\) with H, W multiples"):
        M.forward_int(m, np.zeros((1, 3, 30, 32), dtype=np.int64))
    with pytest.raises(ValueError, match=r"q must have shape \(N, 3, H, W\)"):
        M.forward_int(m, np.zeros((1, 3, 40, 32), dtype=np.int64))  # 21 patches, not 16
    with pytest.raises(ValueError, match="pos_embed has 17 tokens"):
        R.vit_forward(p, np.zeros((1, 3, 40, 32)))
    rng = np.random.default_rng(1)
    bp = R.random_basic_block(rng, 8, 8)
    bm = M.calibrate(bp, rng.normal(size=(1, 8, 6, 6)))
    with pytest.raises(ValueError, match=r"q must have shape \(N, 8, H, W\)"):
        M.forward_int(bm, np.zeros((1, 4, 6, 6), dtype=np.int64))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 8, H, W\)"):
        M.calibrate(bp, np.ones((1, 4, 6, 6)))
