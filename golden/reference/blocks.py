"""Float64 reference blocks: pre-norm ViT encoder block, ViT classifier, ResNet basic block.

Each takes an optional ``record`` dict that receives its intermediate
activations (the calibration of :func:`edgetron.golden.models.calibrate`).
"""

from __future__ import annotations

import math

import numpy as np

from .ops import batchnorm, conv2d, gelu, layernorm, linear, softmax
from .params import (
    BasicBlockParams,
    ConvBNParams,
    EncoderBlockParams,
    ViTParams,
    _input,
    _params,
)

__all__ = ["basic_block", "encoder_block", "vit_forward"]


def _record(record: dict | None, prefix: str, name: str, value: np.ndarray) -> None:
    if record is not None:
        record[prefix + name] = value


def _tokens(x, embed: int) -> np.ndarray:
    v = _input(x, "x", 2)
    if v.ndim not in (2, 3) or v.shape[-1] != embed:
        raise ValueError(
            f"x must have shape (tokens, {embed}) or (batch, tokens, {embed}), got {v.shape}"
        )
    return v


def encoder_block(p: EncoderBlockParams, x, record: dict | None = None,
                  prefix: str = "") -> np.ndarray:
    """One pre-norm encoder block on ``x`` of shape (T, D) or (B, T, D).

    ``record`` (optional) receives the float activations under ``prefix`` +
    ``ln1``, ``q``, ``k``, ``v``, ``scores`` (already scaled by ``1/sqrt(d)``),
    ``probs``, ``context``, ``proj``, ``res1``, ``ln2``, ``fc1``, ``gelu``,
    ``fc2`` and ``out``; q, k, v and context are (B, T, D), scores and probs
    (B, H, T, T).

    Parameters
    ----------
    p : EncoderBlockParams
        The block's parameters.
    x : array of float, shape (T, D) or (B, T, D)
        Input tokens.
    record : dict, optional
        Receives the activations listed above.
    prefix : str
        Prepended to every ``record`` key.

    Returns
    -------
    numpy.ndarray of float64
        The block output, the shape of ``x``.

    Raises
    ------
    TypeError
        ``p`` not an EncoderBlockParams, or non-numeric ``x``.
    ValueError
        ``x`` of the wrong shape or non-finite.
    """
    _params(p, EncoderBlockParams)
    v = _tokens(x, p.embed)
    squeeze = v.ndim == 2
    xb = v[None] if squeeze else v
    b, t, d = xb.shape
    h, hd = p.heads, p.head_dim

    def rec(name, value):
        _record(record, prefix, name, value)

    y = layernorm(xb, p.ln1)
    rec("ln1", y)
    qkv = linear(y, p.qkv)
    q, k, vv = (qkv[..., j * d:(j + 1) * d] for j in range(3))
    for name, val in (("q", q), ("k", k), ("v", vv)):
        rec(name, val)
    qh, kh, vh = (a.reshape(b, t, h, hd).transpose(0, 2, 1, 3) for a in (q, k, vv))
    scores = (qh @ kh.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(hd))
    rec("scores", scores)
    probs = softmax(scores)
    rec("probs", probs)
    context = (probs @ vh).transpose(0, 2, 1, 3).reshape(b, t, d)
    rec("context", context)
    proj = linear(context, p.proj)
    rec("proj", proj)
    res1 = xb + proj
    rec("res1", res1)
    y2 = layernorm(res1, p.ln2)
    rec("ln2", y2)
    f1 = linear(y2, p.fc1)
    rec("fc1", f1)
    g = gelu(f1)
    rec("gelu", g)
    f2 = linear(g, p.fc2)
    rec("fc2", f2)
    out = res1 + f2
    rec("out", out)
    return out[0] if squeeze else out


def vit_forward(p: ViTParams, images, record: dict | None = None) -> np.ndarray:
    """ViT classifier on NCHW ``images``: logits (N, classes) from the class token.

    ``record`` receives ``tokens`` (N, tokens, embed: the class token and the
    patch embeddings), ``embed`` (after the position embedding),
    ``blocks.<i>.<name>`` (:func:`encoder_block`), ``norm`` and ``logits``.

    Parameters
    ----------
    p : ViTParams
        The model's parameters.
    images : array of float, shape (N, C, H, W)
        ``H`` and ``W`` multiples of the patch size, with ``(H/P) * (W/P) + 1``
        equal to the number of position embeddings.
    record : dict, optional
        Receives the activations listed above.

    Returns
    -------
    numpy.ndarray of float64, shape (N, classes)
        The logits.

    Raises
    ------
    TypeError
        ``p`` not a ViTParams, or non-numeric ``images``.
    ValueError
        ``images`` of the wrong shape or non-finite.
    """
    _params(p, ViTParams)
    v = _input(images, "images", 4)
    n, c, hgt, wid = v.shape
    pt = p.patch
    if v.ndim != 4 or c != p.channels or hgt % pt or wid % pt:
        raise ValueError(
            f"images must have shape (N, {p.channels}, H, W) with H and W multiples of the "
            f"patch {pt}, got {v.shape}"
        )
    grid = (hgt // pt) * (wid // pt)
    if grid + 1 != p.tokens:
        raise ValueError(
            f"images of {hgt}x{wid} give {grid} patches + 1 class token, but pos_embed has "
            f"{p.tokens} tokens"
        )
    patches = conv2d(v, p.patch_weight, p.patch_bias, stride=pt)
    patches = patches.reshape(n, p.embed, grid).transpose(0, 2, 1)
    cls = np.broadcast_to(p.cls_token, (n, 1, p.embed))
    tokens = np.concatenate([cls, patches], axis=1)
    _record(record, "", "tokens", tokens)
    x = tokens + p.pos_embed
    _record(record, "", "embed", x)
    for i, blk in enumerate(p.blocks):
        x = encoder_block(blk, x, record, prefix=f"blocks.{i}.")
    y = layernorm(x, p.norm)
    _record(record, "", "norm", y)
    logits = linear(y[:, 0], p.head)
    _record(record, "", "logits", logits)
    return logits


def basic_block(p: BasicBlockParams, x, record: dict | None = None) -> np.ndarray:
    """ResNet basic block on NCHW ``x``.

    ``record`` receives ``conv1`` (after BN and ReLU), ``conv2`` (after BN),
    ``downsample`` (after BN; absent for the identity shortcut) and ``out``
    (after the add and the ReLU).

    Parameters
    ----------
    p : BasicBlockParams
        The block's parameters.
    x : array of float, shape (N, C, H, W)
        Input with ``C = p.conv1.in_channels``.
    record : dict, optional
        Receives the activations listed above.

    Returns
    -------
    numpy.ndarray of float64, shape (N, K, Ho, Wo)
        The block output (after the final ReLU).

    Raises
    ------
    TypeError
        ``p`` not a BasicBlockParams, or non-numeric ``x``.
    ValueError
        ``x`` of the wrong shape or non-finite, or a spatial size the kernels
        do not fit.
    """
    _params(p, BasicBlockParams)
    v = _input(x, "x", 4)
    if v.ndim != 4 or v.shape[1] != p.conv1.in_channels:
        raise ValueError(
            f"x must have shape (N, {p.conv1.in_channels}, H, W), got {v.shape}"
        )

    def conv_bn(c: ConvBNParams, inp):
        return batchnorm(conv2d(inp, c.weight, stride=c.stride, padding=c.padding), c)

    h = np.maximum(conv_bn(p.conv1, v), 0.0)
    _record(record, "", "conv1", h)
    h2 = conv_bn(p.conv2, h)
    _record(record, "", "conv2", h2)
    if p.downsample is None:
        short = v
    else:
        short = conv_bn(p.downsample, v)
        _record(record, "", "downsample", short)
    out = np.maximum(h2 + short, 0.0)
    _record(record, "", "out", out)
    return out
