"""Random parameters for the float reference models (ViT-Tiny and ResNet shapes by default).

:func:`random_encoder_block`, :func:`random_vit` and :func:`random_basic_block`
draw Xavier-uniform linear weights (Glorot and Bengio 2010; ``U(-a, a)`` with
``a = sqrt(6 / (fan_in + fan_out))``), He-normal convolution weights (He et al.
2015, ``std = sqrt(2 / fan_in)``), biases ``N(0, 0.02**2)``, LayerNorm and
BatchNorm affines ``gamma ~ 1 + N(0, 0.1**2)``, ``beta ~ N(0, 0.1**2)``, class
token and position embedding ``N(0, 0.02**2)``, BatchNorm running means
``N(0, 0.1**2)`` and variances ``U(0.5, 1.5)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..intops import int_param
from .params import (
    BasicBlockParams,
    ConvBNParams,
    EncoderBlockParams,
    LayerNormParams,
    LinearParams,
    ViTParams,
)

__all__ = ["random_basic_block", "random_encoder_block", "random_vit"]


def _xavier(rng: np.random.Generator, fan_in: int, fan_out: int, shape) -> np.ndarray:
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def _linear(rng: np.random.Generator, n_in: int, n_out: int) -> LinearParams:
    return LinearParams(_xavier(rng, n_in, n_out, (n_in, n_out)), rng.normal(0.0, 0.02, n_out))


def _norm(rng: np.random.Generator, c: int) -> LayerNormParams:
    return LayerNormParams(1.0 + rng.normal(0.0, 0.1, c), rng.normal(0.0, 0.1, c))


def _generator(rng) -> np.random.Generator:
    """``rng`` itself if it is a NumPy Generator; TypeError otherwise."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _sizes(**sizes) -> None:
    """Check that every size is an integer >= 1 (TypeError / ValueError naming it)."""
    for name, value in sizes.items():
        int_param(value, name, 1, (1 << 31) - 1)


def random_encoder_block(rng: np.random.Generator, embed: int = 192, heads: int = 3,
                         mlp: int = 768) -> EncoderBlockParams:
    """Random encoder block (defaults: ViT-Tiny), distributions as in the module docstring.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    embed : int
        Embedding width ``D``, a multiple of ``heads``.
    heads : int
        Number of attention heads.
    mlp : int
        Hidden width of the MLP.

    Returns
    -------
    EncoderBlockParams

    Raises
    ------
    TypeError
        ``rng`` not a Generator, or a size that is not an integer.
    ValueError
        A size below 1, or ``embed`` not a multiple of ``heads``.
    """
    _generator(rng)
    _sizes(embed=embed, heads=heads, mlp=mlp)
    return EncoderBlockParams(
        heads=heads,
        ln1=_norm(rng, embed),
        qkv=_linear(rng, embed, 3 * embed),
        proj=_linear(rng, embed, embed),
        ln2=_norm(rng, embed),
        fc1=_linear(rng, embed, mlp),
        fc2=_linear(rng, mlp, embed),
    )


def random_vit(rng: np.random.Generator, image_size: int = 224, patch: int = 16,
               channels: int = 3, embed: int = 192, heads: int = 3, depth: int = 12,
               mlp: int = 768, classes: int = 1000) -> ViTParams:
    """Random ViT (defaults: ViT-Tiny / DeiT-Tiny at 224 x 224, 1000 classes).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    image_size : int
        Side of the square input image; ``(image_size // patch)**2`` patches.
    patch : int
        Side of a square patch, at most ``image_size``.
    channels : int
        Image channels.
    embed, heads, mlp : int
        As :func:`random_encoder_block`.
    depth : int
        Number of encoder blocks.
    classes : int
        Width of the classification head.

    Returns
    -------
    ViTParams

    Raises
    ------
    TypeError
        ``rng`` not a Generator, or a size that is not an integer.
    ValueError
        A size below 1, a patch larger than the image, or ``embed`` not a
        multiple of ``heads``.
    """
    _generator(rng)
    _sizes(image_size=image_size, patch=patch, channels=channels, embed=embed, heads=heads,
           depth=depth, mlp=mlp, classes=classes)
    if patch > image_size:
        raise ValueError(f"patch {patch} must not exceed image_size {image_size}")
    tokens = (image_size // patch) ** 2 + 1
    fan_in = channels * patch * patch
    return ViTParams(
        patch_weight=_xavier(rng, fan_in, embed, (embed, channels, patch, patch)),
        patch_bias=rng.normal(0.0, 0.02, embed),
        cls_token=rng.normal(0.0, 0.02, embed),
        pos_embed=rng.normal(0.0, 0.02, (tokens, embed)),
        blocks=tuple(random_encoder_block(rng, embed, heads, mlp) for _ in range(depth)),
        norm=_norm(rng, embed),
        head=_linear(rng, embed, classes),
    )


def _conv_bn(rng: np.random.Generator, c_in: int, c_out: int, kernel: int, stride: int,
             padding: int) -> ConvBNParams:
    std = math.sqrt(2.0 / (c_in * kernel * kernel))
    return ConvBNParams(
        weight=rng.normal(0.0, std, (c_out, c_in, kernel, kernel)),
        gamma=1.0 + rng.normal(0.0, 0.1, c_out),
        beta=rng.normal(0.0, 0.1, c_out),
        mean=rng.normal(0.0, 0.1, c_out),
        var=rng.uniform(0.5, 1.5, c_out),
        stride=stride,
        padding=padding,
    )


def random_basic_block(rng: np.random.Generator, in_channels: int = 64,
                       out_channels: int = 64, stride: int = 1) -> BasicBlockParams:
    """Random ResNet basic block; a 1x1 downsample is added when stride or channels change.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    in_channels, out_channels : int
        Channels of the block's input and output.
    stride : int
        Stride of the first 3x3 convolution (and of the downsample).

    Returns
    -------
    BasicBlockParams

    Raises
    ------
    TypeError
        ``rng`` not a Generator, or a size that is not an integer.
    ValueError
        A size below 1.
    """
    _generator(rng)
    _sizes(in_channels=in_channels, out_channels=out_channels, stride=stride)
    ds = None
    if stride != 1 or in_channels != out_channels:
        ds = _conv_bn(rng, in_channels, out_channels, 1, stride, 0)
    return BasicBlockParams(
        conv1=_conv_bn(rng, in_channels, out_channels, 3, stride, 1),
        conv2=_conv_bn(rng, out_channels, out_channels, 3, 1, 1),
        downsample=ds,
    )
