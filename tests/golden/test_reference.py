"""Float64 reference blocks (golden/reference.py): the spec the integer models approximate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetron.golden import reference as R
from edgetron.golden.conv import conv2d_int


def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7.0, 7.0, 200_001), [0.0, -0.0, 1e-300, 40.0, -40.0]])
    want = np.array([math.erf(v) for v in x])
    assert np.abs(R.erf(x) - want).max() <= 1e-14
    np.testing.assert_array_equal(R.erf([40.0, -40.0]), [1.0, -1.0])
    x = np.linspace(-6.0, 6.0, 1001)
    np.testing.assert_allclose(R.gelu(x), x / 2 * (1 + np.array([math.erf(v / math.sqrt(2))
                                                                for v in x])), atol=1e-14)


def test_conv_and_linear_match_the_integer_kernels_on_integers():
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, size=(2, 4, 9, 9))
    w = rng.integers(-128, 128, size=(6, 4, 3, 3))
    np.testing.assert_array_equal(R.conv2d(x, w, stride=2, padding=1),
                                  conv2d_int(x, w, stride=2, padding=1))
    lin = R.LinearParams(rng.integers(-128, 128, size=(5, 7)).astype(float), np.zeros(7))
    a = rng.integers(-128, 128, size=(3, 4, 5))
    np.testing.assert_array_equal(R.linear(a, lin), np.einsum("btk,kn->btn", a, lin.weight))


def test_fold_batchnorm_is_the_same_convolution():
    rng = np.random.default_rng(5)
    c = R.random_basic_block(rng, 8, 8).conv1
    x = rng.normal(size=(1, 8, 6, 6))
    w, b = R.fold_batchnorm(c)
    folded = R.conv2d(x, w, b, stride=c.stride, padding=c.padding)
    plain = R.batchnorm(R.conv2d(x, c.weight, stride=c.stride, padding=c.padding), c)
    np.testing.assert_allclose(folded, plain, rtol=1e-12, atol=1e-12)


def test_encoder_block_records_and_shapes():
    rng = np.random.default_rng(6)
    p = R.random_encoder_block(rng, embed=24, heads=2, mlp=48)
    x = rng.normal(size=(2, 5, 24))
    rec: dict = {}
    y = R.encoder_block(p, x, rec, prefix="b.")
    assert y.shape == x.shape
    assert rec["b.scores"].shape == rec["b.probs"].shape == (2, 2, 5, 5)
    np.testing.assert_allclose(rec["b.probs"].sum(axis=-1), 1.0)
    np.testing.assert_allclose(rec["b.res1"], x + rec["b.proj"])
    np.testing.assert_allclose(rec["b.out"], y)
    # Head h uses columns h*d:(h+1)*d of Q and K: the scores of head 1 by hand.
    q, k = rec["b.q"][0][:, 12:], rec["b.k"][0][:, 12:]
    np.testing.assert_allclose(rec["b.scores"][0, 1], q @ k.T / math.sqrt(12))
    np.testing.assert_allclose(R.encoder_block(p, x[1]), y[1])


def test_param_dataclasses_name_the_bad_field():
    p = R.random_encoder_block(np.random.default_rng(4), 48, 3, 96)
    with pytest.raises(ValueError, match="embed 48 is not a multiple of heads 5"):
        R.EncoderBlockParams(5, p.ln1, p.qkv, p.proj, p.ln2, p.fc1, p.fc2)
    with pytest.raises(ValueError, match=r"EncoderBlockParams\.proj\.weight must have shape"):
        R.EncoderBlockParams(3, p.ln1, p.qkv, p.fc1, p.ln2, p.fc1, p.fc2)
    with pytest.raises(TypeError, match=r"EncoderBlockParams\.ln2 must be LayerNormParams"):
        R.EncoderBlockParams(3, p.ln1, p.qkv, p.proj, p.fc1, p.fc1, p.fc2)
    with pytest.raises(ValueError, match=r"LinearParams\.bias must have shape \(3,\)"):
        R.LinearParams(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"LayerNormParams\.gamma contains nan or inf"):
        R.LayerNormParams(np.array([1.0, np.inf]), np.zeros(2))
    with pytest.raises(ValueError, match=r"LayerNormParams\.eps must be a finite number >= 0"):
        R.LayerNormParams(np.ones(2), np.zeros(2), eps=-1.0)
    rng = np.random.default_rng(0)
    c1 = R.random_basic_block(rng, 8, 16, 2)
    with pytest.raises(ValueError, match="downsample is required"):
        R.BasicBlockParams(c1.conv1, c1.conv2)
    with pytest.raises(ValueError, match=r"ConvBNParams\.var must be >= 0"):
        R.ConvBNParams(np.ones((2, 1, 1, 1)), np.ones(2), np.zeros(2), np.zeros(2), -np.ones(2))
    pv = R.random_vit(rng, image_size=32, patch=8, embed=48, heads=3, depth=1, mlp=96,
                      classes=10)
    with pytest.raises(ValueError, match=r"ViTParams\.blocks must hold at least one"):
        R.ViTParams(pv.patch_weight, pv.patch_bias, pv.cls_token, pv.pos_embed, (), pv.norm,
                    pv.head)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"stride": 0}, ValueError, r"stride must lie in \[1, "),
        ({"stride": 1.5}, TypeError, "stride must be an integer, got float"),
        ({"padding": -1}, ValueError, r"padding must lie in \[0, "),
        ({"w": np.ones((2, 3, 7, 3))}, ValueError, r"kernel 7x3 must be non-empty and fit the "
                                                   r"padded input 5x5"),
        ({"w": np.ones((2, 3, 0, 3))}, ValueError, "kernel 0x3 must be non-empty"),
        ({"bias": np.ones(3)}, ValueError, r"bias must have shape \(2,\), got \(3,\)"),
    ],
)
def test_float_conv2d_rejects_bad_arguments(kwargs, exc, match):
    args = {"x": np.ones((1, 3, 5, 5)), "w": np.ones((2, 3, 3, 3)), "bias": None, "stride": 1,
            "padding": 0}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        R.conv2d(**args)


def test_reference_functions_check_parameter_types_and_sizes():
    rng = np.random.default_rng(6)
    c = R.random_basic_block(rng, 4, 4).conv1
    with pytest.raises(TypeError, match="p must be LayerNormParams, got ConvBNParams"):
        R.layernorm(np.ones((2, 4)), c)
    with pytest.raises(TypeError, match="p must be LinearParams, got NoneType"):
        R.linear(np.ones((2, 4)), None)
    with pytest.raises(TypeError, match="p must be ConvBNParams, got dict"):
        R.fold_batchnorm({})
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4, H, W\), got \(1, 3, 2, 2\)"):
        R.batchnorm(np.ones((1, 3, 2, 2)), c)
    with pytest.raises(TypeError, match="p must be EncoderBlockParams, got ConvBNParams"):
        R.encoder_block(c, np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator, got int"):
        R.random_encoder_block(3)
    with pytest.raises(ValueError, match=r"embed must lie in \[1, "):  # was ZeroDivisionError
        R.random_encoder_block(rng, embed=0, heads=1, mlp=4)
    with pytest.raises(TypeError, match="mlp must be an integer, got float"):
        R.random_encoder_block(rng, 8, 2, 16.0)
    with pytest.raises(ValueError, match="patch 16 must not exceed image_size 8"):
        R.random_vit(rng, image_size=8, depth=1)
    with pytest.raises(ValueError, match=r"stride must lie in \[1, "):
        R.random_basic_block(rng, 4, 4, 0)
