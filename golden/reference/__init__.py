"""Float64 reference models: the real-valued blocks the integer models approximate.

This is the float baseline, not the specification: golden's integer kernels
(:mod:`edgetron.golden.gemm`, :mod:`~edgetron.golden.softmax`, ...) are the
spec of every result, and these functions say *what* they approximate. The
integer models (:mod:`edgetron.golden.models`) are built and calibrated from
them: :func:`edgetron.golden.models.calibrate` runs them with a ``record`` dict
to collect the float activations every integer scale is derived from.

The models: a ViT encoder block (pre-norm, as in ViT / DeiT, Dosovitskiy et al.
2021, Touvron et al. 2021), a whole ViT classifier and a ResNet basic block (He
et al. 2016). Everything runs in float64 with the exact GELU
``x/2 (1 + erf(x / sqrt 2))`` (timm's ``nn.GELU`` default) and LayerNorm
``eps = 1e-6`` (timm's ViT).

Modules
-------
* :mod:`.params`: the parameter dataclasses, which validate shapes and name the
  bad field (and the parameter layout).
* :mod:`.ops`: elementary float ops (LayerNorm, linear, softmax, erf, GELU,
  convolution, BatchNorm and its folding).
* :mod:`.blocks`: the encoder block, the ViT and the ResNet basic block.
* :mod:`.random_params`: random parameters (Xavier / He initialisation).

Every public name is importable from :mod:`edgetron.golden.reference` itself.
"""

from .blocks import basic_block, encoder_block, vit_forward
from .ops import batchnorm, conv2d, erf, fold_batchnorm, gelu, layernorm, linear, softmax
from .params import (
    BN_EPS,
    LN_EPS,
    BasicBlockParams,
    ConvBNParams,
    EncoderBlockParams,
    LayerNormParams,
    LinearParams,
    ViTParams,
)
from .random_params import random_basic_block, random_encoder_block, random_vit

__all__ = [
    "BN_EPS",
    "LN_EPS",
    "BasicBlockParams",
    "ConvBNParams",
    "EncoderBlockParams",
    "LayerNormParams",
    "LinearParams",
    "ViTParams",
    "basic_block",
    "batchnorm",
    "conv2d",
    "encoder_block",
    "erf",
    "fold_batchnorm",
    "gelu",
    "layernorm",
    "linear",
    "random_basic_block",
    "random_encoder_block",
    "random_vit",
    "softmax",
    "vit_forward",
]
