"""Integer models built from the golden kernels: ViT encoder block, whole ViT, ResNet basic block.

Two steps, as in every integer-only inference flow (Jacob et al. 2018; I-BERT,
Kim et al. 2021):

1. :func:`calibrate` (ahead of time, floats allowed) runs the float64
   reference (:mod:`edgetron.golden.reference`) on a calibration input,
   records every activation, sets each per-tensor scale to
   ``max|x| / 127`` (or a percentile, :func:`edgetron.golden.quant.activation_scale`),
   quantizes the weights per output channel and derives every integer constant
   (dyadic multipliers, kernel constants) from the real scales. The result is
   an integer model: a frozen dataclass of integer arrays, integer constants
   and, for documentation and dequantization only, the real scales they came
   from.
2. :func:`forward_int` (run time) takes int8 inputs and uses only integer
   kernels and the integer constants: no float scale is read.

The op sequence of the encoder block is that of :func:`edgetron.workload.vit.vit`
(each op below is one trace op; ``docs/integer-kernels.md`` gives the ViT-Tiny
shapes and MAC counts):

===========  ===============  ============================================  ===================
op           kernel           integer operation                             output
===========  ===============  ============================================  ===================
ln1          layernorm_int    int8 x (S_x) -> LayerNorm                     int8, S_ln1
qkv          gemm_requant     ln1 @ W_qkv + b, requantized per column group int8, S_q / S_k / S_v
attn_scores  matmul_int       Q_h @ K_h^T, all heads batched (K = d)        int32, S_q S_k
softmax      softmax_apply    softmax at the real scale S_q S_k / sqrt(d)   int8 [0,127], 2**-7
attn_v       matmul_int,      P_h @ V_h, all heads batched (K = T),         int8, S_ctx
             requantize       requantized
proj         gemm_requant     ctx @ W_proj + b                              int8, S_proj
add1         residual_add     x + proj                                      int8, S_res1
ln2          layernorm_int    LayerNorm of res1                             int8, S_ln2
fc1          gemm_int         ln2 @ W_fc1 + b (no requantization)           int32, S_ln2 S_w1
gelu         gelu_int8_apply  i-GELU of the int32 accumulator, requantized  int8, S_gelu
fc2          gemm_requant     gelu @ W_fc2 + b                              int8, S_fc2
add2         residual_add     res1 + fc2                                    int8, S_out
===========  ===============  ============================================  ===================

The attention scores and the fc1 output stay int32, as in the trace: the
1/sqrt(d) of the scores is folded into the softmax's real input scale (no
integer operation), and GELU reads the fc1 accumulator directly. GELU's
constants depend on one input scale, so fc1's weights get **one** scale per
tensor; every other weight is quantized per output channel. The Q, K and V
column groups of the fused QKV GEMM get their own output scales through
per-channel requantization constants. ``docs/integer-kernels.md`` tabulates
every scale and width.

The ViT adds the patch embedding (a ``P x P`` / stride ``P`` convolution,
computed as one GEMM of the non-overlapping patches, equal to
:func:`edgetron.golden.conv.conv2d_requant`), the class token (quantized at
the patch embedding's output scale, so that the two concatenate), the position
embedding (an int8 tensor at its own scale, added by :func:`residual_add`),
the final LayerNorm and the head (int32 logits, one scale per class). The
ResNet basic block folds each BatchNorm into its convolution's weights and
bias (:func:`edgetron.golden.reference.fold_batchnorm`); ReLU is
``max(q, 0)`` on int8 (same scale), and the scales of ReLU outputs are
calibrated on the ReLU outputs, so negative saturation before a ReLU is
harmless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import singledispatch
from types import MappingProxyType

import numpy as np

from . import reference as ref
from .add import ResidualConstants, residual_add, residual_constants
from .conv import conv2d_requant
from .dyadic import requant_constants
from .gelu import GeluInt8Constants, gelu_int8_apply, gelu_int8_constants
from .gemm import accumulator_bound, gemm_int, gemm_requant, matmul_int
from .intops import INT8_MAX, INT8_MIN, as_int64, check_range, requantize
from .layernorm import LayerNormConstants, layernorm_constants, layernorm_int
from .quant import (
    activation_scale,
    dequantize,
    quantize,
    quantize_bias,
    weight_scales,
)
from .softmax import SoftmaxConstants, softmax_apply, softmax_constants

__all__ = [
    "IntBasicBlock",
    "IntConvBN",
    "IntEncoderBlock",
    "IntLinear",
    "IntViT",
    "calibrate",
    "dequantize_output",
    "forward_int",
    "quantize_input",
]


# ---- integer layers ---------------------------------------------------------------------
@dataclass(frozen=True)
class IntLinear:
    """An int8 linear layer ``y = x @ weight + bias``, optionally requantized to int8.

    ``weight`` is ``np.int8`` (K, N); ``bias`` int32 values (N,) at the
    accumulator scale ``in_scale * weight_scale[c]``. With ``m``/``s`` the
    output is requantized per channel to int8 at ``out_scale[c]``; without
    them it is the int32 accumulator.
    """

    weight: np.ndarray  #: int8 (K, N)
    bias: np.ndarray  #: int64 (N,), int32 values
    m: np.ndarray | None  #: int64 (N,) dyadic multipliers, or None (int32 output)
    s: np.ndarray | None  #: int64 (N,) shifts, or None
    in_scale: float  #: S_x (calibration record)
    weight_scale: np.ndarray  #: S_w (N,) (calibration record)
    out_scale: np.ndarray | None  #: S_y (N,), or None for an int32 output

    @property
    def acc_scale(self) -> np.ndarray:
        """Real scale of the int32 accumulator, ``S_x * S_w[c]``."""
        return self.in_scale * self.weight_scale

    @property
    def acc_bound(self) -> int:
        """Largest accumulator magnitude the shapes and bias allow (sets its width)."""
        return accumulator_bound(self.weight.shape[0], int(np.abs(self.bias).max()))


def _int_linear(p: ref.LinearParams, in_scale: float, out_scale=None,
                per_channel: bool = True) -> IntLinear:
    """Quantize a float linear layer for an input at ``in_scale``.

    ``out_scale`` (a scalar or one value per output channel) requests int8
    output; ``per_channel=False`` gives the weights a single scale.
    """
    n = p.out_features
    if per_channel:
        sw = weight_scales(p.weight, axis=1)
    else:
        sw = np.full(n, activation_scale(p.weight))
    w = quantize(p.weight, sw, axis=1).astype(np.int8)
    b = quantize_bias(p.bias, in_scale, sw)
    m = s = out = None
    if out_scale is not None:
        out = np.broadcast_to(np.asarray(out_scale, dtype=np.float64), (n,)).copy()
        m, s = requant_constants(in_scale, sw, out)
    return IntLinear(weight=w, bias=b, m=m, s=s, in_scale=float(in_scale), weight_scale=sw,
                     out_scale=out)


def _linear(layer: IntLinear, x: np.ndarray) -> np.ndarray:
    if layer.m is None:
        return gemm_int(x, layer.weight, layer.bias)
    return gemm_requant(x, layer.weight, layer.bias, layer.m, layer.s)


@dataclass(frozen=True)
class IntConvBN:
    """A convolution with BatchNorm folded in, requantized to int8, optionally with ReLU."""

    weight: np.ndarray  #: int8 (K, C, R, S), folded weights
    bias: np.ndarray  #: int64 (K,), int32 values, folded bias at S_x * S_w[k]
    m: np.ndarray  #: int64 (K,)
    s: np.ndarray  #: int64 (K,)
    stride: int
    padding: int
    relu: bool  #: apply max(y, 0) after requantization
    in_scale: float
    weight_scale: np.ndarray  #: (K,)
    out_scale: float


def _int_conv_bn(p: ref.ConvBNParams, in_scale: float, out_scale: float,
                 relu: bool) -> IntConvBN:
    w, b = ref.fold_batchnorm(p)
    sw = weight_scales(w, axis=0)
    m, s = requant_constants(in_scale, sw, out_scale)
    return IntConvBN(
        weight=quantize(w, sw, axis=0).astype(np.int8),
        bias=quantize_bias(b, in_scale, sw),
        m=m, s=s, stride=p.stride, padding=p.padding, relu=relu,
        in_scale=float(in_scale), weight_scale=sw, out_scale=float(out_scale),
    )


def _conv_bn(layer: IntConvBN, x: np.ndarray) -> np.ndarray:
    y = conv2d_requant(x, layer.weight, layer.bias, layer.m, layer.s, layer.stride,
                       layer.padding)
    return np.maximum(y, 0) if layer.relu else y


# ---- models ----------------------------------------------------------------------------
@dataclass(frozen=True)
class IntEncoderBlock:
    """Integer ViT encoder block (module docstring); int8 (T, D) or (B, T, D) in and out."""

    heads: int
    ln1: LayerNormConstants
    qkv: IntLinear  #: int8 output; out_scale is [S_q]*D + [S_k]*D + [S_v]*D
    softmax: SoftmaxConstants  #: for the int32 scores at real scale S_q S_k / sqrt(d)
    attn_m: int  #: requantization of P @ V: dyadic of 2**-7 * S_v / S_ctx
    attn_s: int
    proj: IntLinear
    add1: ResidualConstants  #: x (S_x) + proj (S_proj) -> S_res1
    ln2: LayerNormConstants
    fc1: IntLinear  #: int32 output, one weight scale
    gelu: GeluInt8Constants  #: int32 fc1 accumulator -> int8 at S_gelu
    fc2: IntLinear
    add2: ResidualConstants  #: res1 (S_res1) + fc2 (S_fc2) -> S_out
    in_scale: float  #: S_x
    scales: Mapping[str, float]  #: every real activation scale by name (read-only record)

    @property
    def embed(self) -> int:
        return self.ln1.channels

    @property
    def head_dim(self) -> int:
        return self.embed // self.heads

    @property
    def out_scale(self) -> float:
        return self.scales["out"]


@dataclass(frozen=True)
class IntViT:
    """Integer ViT classifier: int8 NCHW images in, int32 logits (one scale per class) out."""

    patch: int
    patch_embed: IntLinear  #: (C*P*P, D) GEMM of the flattened patches, int8 at S_tok
    cls_token: np.ndarray  #: int8 (D,) at S_tok
    pos_embed: np.ndarray  #: int8 (T, D) at S_pos
    add_pos: ResidualConstants  #: tokens (S_tok) + pos (S_pos) -> S_embed
    blocks: tuple  #: of IntEncoderBlock
    norm: LayerNormConstants
    head: IntLinear  #: int32 output at head.acc_scale
    in_scale: float  #: S_img
    scales: Mapping[str, float]  #: S_img ("in"), S_tok, S_pos, S_embed, S_norm (read-only)

    @property
    def out_scale(self) -> np.ndarray:
        return self.head.acc_scale


@dataclass(frozen=True)
class IntBasicBlock:
    """Integer ResNet basic block: int8 NCHW in, int8 NCHW (ReLU output) out."""

    conv1: IntConvBN  #: with ReLU
    conv2: IntConvBN
    downsample: IntConvBN | None
    add: ResidualConstants  #: shortcut + conv2 -> out_scale, then ReLU
    in_scale: float
    out_scale: float


# ---- calibration -----------------------------------------------------------------------
def _scales(record: dict, prefix: str, names, percentile) -> dict:
    return {n: activation_scale(record[prefix + n], percentile=percentile) for n in names}


def _calibrate_block(p: ref.EncoderBlockParams, record: dict, prefix: str, in_scale: float,
                     percentile) -> IntEncoderBlock:
    sc = _scales(record, prefix, ("ln1", "q", "k", "v", "context", "proj", "res1", "ln2",
                                  "gelu", "fc2", "out"), percentile)
    d, hd = p.embed, p.head_dim
    qkv = _int_linear(p.qkv, sc["ln1"], np.repeat([sc["q"], sc["k"], sc["v"]], d))
    smc = softmax_constants(sc["q"] * sc["k"] / math.sqrt(hd))
    attn_m, attn_s = requant_constants(smc.out_scale, sc["v"], sc["context"])
    fc1 = _int_linear(p.fc1, sc["ln2"], per_channel=False)
    return IntEncoderBlock(
        heads=p.heads,
        ln1=layernorm_constants(p.ln1.gamma, p.ln1.beta, in_scale, sc["ln1"], p.ln1.eps),
        qkv=qkv,
        softmax=smc,
        attn_m=attn_m,
        attn_s=attn_s,
        proj=_int_linear(p.proj, sc["context"], sc["proj"]),
        add1=residual_constants(in_scale, sc["proj"], sc["res1"]),
        ln2=layernorm_constants(p.ln2.gamma, p.ln2.beta, sc["res1"], sc["ln2"], p.ln2.eps),
        fc1=fc1,
        gelu=gelu_int8_constants(float(fc1.acc_scale[0]), sc["gelu"], in_bits=32),
        fc2=_int_linear(p.fc2, sc["gelu"], sc["fc2"]),
        add2=residual_constants(sc["res1"], sc["fc2"], sc["out"]),
        in_scale=float(in_scale),
        scales=MappingProxyType({"in": float(in_scale), **sc,
                                 "scores": smc.iexp.in_scale, "probs": smc.out_scale}),
    )


@singledispatch
def calibrate(params, x, *, in_scale: float | None = None,
              percentile: float | None = None):
    """Derive the integer model from float parameters and a float calibration input.

    Parameters
    ----------
    params : EncoderBlockParams, ViTParams or BasicBlockParams
        Float parameters (:mod:`edgetron.golden.reference`).
    x : array of float
        Calibration input: tokens (T, D) or (B, T, D) for a block, NCHW images
        for a ViT, an NCHW tensor for a basic block.
    in_scale : float, optional
        Scale of the int8 input; by default calibrated on ``x`` (a block inside
        a model takes its predecessor's output scale).
    percentile : float, optional
        Calibrate each activation scale on this percentile of ``|x|``
        instead of its maximum.

    Returns
    -------
    IntEncoderBlock, IntViT or IntBasicBlock

    Raises
    ------
    TypeError
        ``params`` of another type, non-numeric ``x``.
    ValueError
        ``x`` of the wrong shape (named), non-finite values, or scales that
        cannot be represented (from :mod:`edgetron.golden.quant`).
    """
    raise TypeError(
        "calibrate needs EncoderBlockParams, ViTParams or BasicBlockParams, got "
        f"{type(params).__name__}"
    )


@calibrate.register
def _(params: ref.EncoderBlockParams, x, *, in_scale=None, percentile=None) -> IntEncoderBlock:
    record: dict = {}
    ref.encoder_block(params, x, record)
    s_in = activation_scale(x, percentile=percentile) if in_scale is None else in_scale
    return _calibrate_block(params, record, "", s_in, percentile)


@calibrate.register
def _(params: ref.ViTParams, x, *, in_scale=None, percentile=None) -> IntViT:
    record: dict = {}
    ref.vit_forward(params, x, record)
    s_img = activation_scale(x, percentile=percentile) if in_scale is None else in_scale
    sc = _scales(record, "", ("tokens", "embed", "norm"), percentile)
    sc["pos"] = activation_scale(params.pos_embed)
    d, pt = params.embed, params.patch
    pe = ref.LinearParams(params.patch_weight.reshape(d, -1).T, params.patch_bias)
    blocks = []
    s_prev = sc["embed"]
    for i, bp in enumerate(params.blocks):
        blk = _calibrate_block(bp, record, f"blocks.{i}.", s_prev, percentile)
        blocks.append(blk)
        s_prev = blk.out_scale
    return IntViT(
        patch=pt,
        patch_embed=_int_linear(pe, s_img, sc["tokens"]),
        cls_token=quantize(params.cls_token, sc["tokens"]).astype(np.int8),
        pos_embed=quantize(params.pos_embed, sc["pos"]).astype(np.int8),
        add_pos=residual_constants(sc["tokens"], sc["pos"], sc["embed"]),
        blocks=tuple(blocks),
        norm=layernorm_constants(params.norm.gamma, params.norm.beta, s_prev, sc["norm"],
                                 params.norm.eps),
        head=_int_linear(params.head, sc["norm"]),
        in_scale=float(s_img),
        scales=MappingProxyType({"in": float(s_img), **sc}),
    )


@calibrate.register
def _(params: ref.BasicBlockParams, x, *, in_scale=None, percentile=None) -> IntBasicBlock:
    record: dict = {}
    ref.basic_block(params, x, record)
    s_in = activation_scale(x, percentile=percentile) if in_scale is None else in_scale
    names = ("conv1", "conv2", "out") + (() if params.downsample is None else ("downsample",))
    sc = _scales(record, "", names, percentile)
    ds = None
    s_short = s_in
    if params.downsample is not None:
        ds = _int_conv_bn(params.downsample, s_in, sc["downsample"], relu=False)
        s_short = sc["downsample"]
    return IntBasicBlock(
        conv1=_int_conv_bn(params.conv1, s_in, sc["conv1"], relu=True),
        conv2=_int_conv_bn(params.conv2, sc["conv1"], sc["conv2"], relu=False),
        downsample=ds,
        add=residual_constants(s_short, sc["conv2"], sc["out"]),
        in_scale=float(s_in),
        out_scale=sc["out"],
    )


# ---- run time ---------------------------------------------------------------------------
def _int8_input(q, name: str, shape_ok, expected: str) -> np.ndarray:
    v = as_int64(q, name)
    if not shape_ok(v.shape):
        raise ValueError(f"{name} must have shape {expected}, got {v.shape}")
    check_range(v, INT8_MIN, INT8_MAX, name)
    return v


def _block_int(m: IntEncoderBlock, x: np.ndarray) -> np.ndarray:
    """The encoder block on validated int8 tokens (B, T, D)."""
    b, t, d = x.shape
    h, hd = m.heads, m.head_dim
    y = layernorm_int(x, m.ln1).reshape(b * t, d)
    qkv = _linear(m.qkv, y).reshape(b, t, 3, h, hd).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, d)
    scores = matmul_int(qkv[0], qkv[1].transpose(0, 1, 3, 2))  # int32 at S_q S_k
    probs = softmax_apply(scores, m.softmax)  # int8 [0, 127] at 2**-7
    ctx = requantize(matmul_int(probs, qkv[2]), m.attn_m, m.attn_s)
    ctx = ctx.transpose(0, 2, 1, 3).reshape(b * t, d)
    res1 = residual_add(x.reshape(b * t, d), _linear(m.proj, ctx), *m.add1)
    f1 = _linear(m.fc1, layernorm_int(res1, m.ln2))  # int32
    f2 = _linear(m.fc2, gelu_int8_apply(f1, m.gelu))
    return residual_add(res1, f2, *m.add2).reshape(b, t, d)


@singledispatch
def forward_int(model, q) -> np.ndarray:
    """Run an integer model on int8 input (integers only; see the module docstring).

    Parameters
    ----------
    model : IntEncoderBlock, IntViT or IntBasicBlock
        From :func:`calibrate`.
    q : array of int8 values
        Tokens (T, D) or (B, T, D) for a block, images (N, C, H, W) for a ViT,
        (N, C, H, W) for a basic block, at ``model.in_scale``
        (:func:`quantize_input`).

    Returns
    -------
    numpy.ndarray of int64
        int8 tokens of the input's shape (block, at ``model.out_scale``);
        int32 logits (N, classes) (ViT, at ``model.out_scale[c]``); int8 NCHW
        (basic block, at ``model.out_scale``).

    Raises
    ------
    TypeError
        Not an integer model, or non-integer ``q``.
    ValueError
        ``q`` of the wrong shape or outside int8 (named).
    """
    raise TypeError(
        "forward_int needs an IntEncoderBlock, IntViT or IntBasicBlock, got "
        f"{type(model).__name__}"
    )


@forward_int.register
def _(model: IntEncoderBlock, q) -> np.ndarray:
    d = model.embed
    x = _int8_input(q, "q", lambda s: len(s) in (2, 3) and s[-1] == d,
                    f"(tokens, {d}) or (batch, tokens, {d})")
    out = _block_int(model, x if x.ndim == 3 else x[None])
    return out if x.ndim == 3 else out[0]


@forward_int.register
def _(model: IntViT, q) -> np.ndarray:
    pt = model.patch
    d = model.patch_embed.weight.shape[1]
    c = model.patch_embed.weight.shape[0] // (pt * pt)
    tokens = model.pos_embed.shape[0]
    x = _int8_input(
        q, "q",
        lambda s: len(s) == 4 and s[1] == c and (s[2] // pt) * (s[3] // pt) + 1 == tokens
        and s[2] % pt == 0 and s[3] % pt == 0,
        f"(N, {c}, H, W) with H, W multiples of {pt} and (H/{pt})*(W/{pt}) = {tokens - 1}",
    )
    n, _, hgt, wid = x.shape
    gh, gw = hgt // pt, wid // pt
    patches = x.reshape(n, c, gh, pt, gw, pt).transpose(0, 2, 4, 1, 3, 5)
    emb = _linear(model.patch_embed, patches.reshape(n * gh * gw, c * pt * pt))
    cls = np.broadcast_to(model.cls_token.astype(np.int64), (n, 1, d))
    toks = np.concatenate([cls, emb.reshape(n, gh * gw, d)], axis=1)
    pos = np.broadcast_to(model.pos_embed.astype(np.int64), toks.shape)
    y = residual_add(toks, pos, *model.add_pos)
    for blk in model.blocks:
        y = _block_int(blk, y)
    y = layernorm_int(y[:, 0], model.norm)
    return _linear(model.head, y)


@forward_int.register
def _(model: IntBasicBlock, q) -> np.ndarray:
    cin = model.conv1.weight.shape[1]
    x = _int8_input(q, "q", lambda s: len(s) == 4 and s[1] == cin, f"(N, {cin}, H, W)")
    h = _conv_bn(model.conv2, _conv_bn(model.conv1, x))
    short = x if model.downsample is None else _conv_bn(model.downsample, x)
    if short.shape != h.shape:
        raise ValueError(f"shortcut shape {short.shape} does not match the branch {h.shape}")
    return np.maximum(residual_add(short, h, *model.add), 0)


# ---- edges of the model ------------------------------------------------------------------
def _check_model(model) -> None:
    if not isinstance(model, (IntEncoderBlock, IntViT, IntBasicBlock)):
        raise TypeError(
            "model must be an IntEncoderBlock, IntViT or IntBasicBlock, got "
            f"{type(model).__name__}"
        )


def quantize_input(model, x) -> np.ndarray:
    """Float input -> int8 values at ``model.in_scale`` (the model's input quantizer).

    Parameters
    ----------
    model : IntEncoderBlock, IntViT or IntBasicBlock
        From :func:`calibrate`.
    x : array of float
        Real input of the shape :func:`forward_int` expects.

    Returns
    -------
    numpy.ndarray of int64
        ``saturate_int8(floor(x / model.in_scale + 1/2))``, the shape of ``x``.

    Raises
    ------
    TypeError
        Not an integer model, or non-numeric ``x``.
    ValueError
        Non-finite ``x``.
    """
    _check_model(model)
    return quantize(x, model.in_scale)


def dequantize_output(model, q) -> np.ndarray:
    """Integer output -> float64: ``q * model.out_scale`` (per class for the ViT logits).

    Parameters
    ----------
    model : IntEncoderBlock, IntViT or IntBasicBlock
        From :func:`calibrate`.
    q : array of int
        Output of :func:`forward_int` (for the ViT, classes on the last axis).

    Returns
    -------
    numpy.ndarray of float64
        The shape of ``q``.

    Raises
    ------
    TypeError
        Not an integer model, or non-integer ``q``.
    ValueError
        A ViT output whose last axis is not one value per class.
    """
    _check_model(model)
    sc = model.out_scale
    v = as_int64(q, "q")
    if np.ndim(sc):
        return dequantize(v, sc, axis=-1)
    return dequantize(v, sc)
