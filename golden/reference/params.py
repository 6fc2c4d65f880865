"""Parameter dataclasses of the float reference models; each validates its fields.

Parameter layout
----------------
* Linear weights are ``(in, out)`` (the ``(K, N)`` layout of
  :func:`edgetron.golden.gemm.gemm_int`), biases ``(out,)``.
* The fused QKV projection has columns ``[Q | K | V]``, each ``embed`` wide;
  head ``h`` owns columns ``h * d : (h + 1) * d`` of each (``d = embed / heads``),
  as in timm's ``Attention``.
* Convolution weights are ``(K, C, R, S)`` and activations NCHW (PyTorch).
* The ViT patch embedding is a ``P x P`` convolution with stride ``P``; its
  output grid is flattened row-major into ``(H/P) * (W/P)`` tokens, the class
  token is prepended and ``pos_embed`` (``tokens x embed``) added.

Every container is a frozen dataclass whose ``__post_init__`` converts its
arrays to float64 and checks ranks, shapes and ranges, raising a ``TypeError``
or ``ValueError`` that names the bad field (``EncoderBlockParams.fc1.weight``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quant import real_array

__all__ = [
    "BN_EPS",
    "LN_EPS",
    "BasicBlockParams",
    "ConvBNParams",
    "EncoderBlockParams",
    "LayerNormParams",
    "LinearParams",
    "ViTParams",
]

#: LayerNorm epsilon of timm's ViT / DeiT.
LN_EPS = 1e-6
#: BatchNorm epsilon of PyTorch / torchvision's ResNet.
BN_EPS = 1e-5


# ---- parameter containers ----------------------------------------------------------------
def _field_array(obj, name: str, ndim: int) -> np.ndarray:
    """Validate field ``name`` of ``obj`` as a finite float64 array of rank ``ndim``; store it."""
    label = f"{type(obj).__name__}.{name}"
    arr = real_array(getattr(obj, name), label)
    if arr.ndim != ndim:
        raise ValueError(f"{label} must be {ndim}-D, got shape {arr.shape}")
    object.__setattr__(obj, name, arr)
    return arr


def _expect_shape(arr: np.ndarray, shape: tuple, label: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{label} must have shape {shape}, got {arr.shape}")


def _check_type(obj, name: str, cls) -> None:
    value = getattr(obj, name)
    if not isinstance(value, cls):
        raise TypeError(
            f"{type(obj).__name__}.{name} must be {cls.__name__}, got {type(value).__name__}"
        )


def _positive_int(obj, name: str) -> int:
    value = getattr(obj, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{type(obj).__name__}.{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{type(obj).__name__}.{name} must be >= 1, got {value}")
    object.__setattr__(obj, name, int(value))
    return int(value)


def _eps(obj) -> None:
    eps = obj.eps
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, (int, float, np.number)) or not (
        math.isfinite(float(eps)) and eps >= 0
    ):
        raise ValueError(f"{type(obj).__name__}.eps must be a finite number >= 0, got {eps!r}")
    object.__setattr__(obj, "eps", float(eps))


@dataclass(frozen=True)
class LayerNormParams:
    """LayerNorm over the last axis: ``gamma * (x - mean) / sqrt(var + eps) + beta``."""

    gamma: np.ndarray  #: (C,)
    beta: np.ndarray  #: (C,)
    eps: float = LN_EPS

    def __post_init__(self) -> None:
        g = _field_array(self, "gamma", 1)
        _expect_shape(_field_array(self, "beta", 1), g.shape, "LayerNormParams.beta")
        _eps(self)

    @property
    def channels(self) -> int:
        return self.gamma.shape[0]


@dataclass(frozen=True)
class LinearParams:
    """``y = x @ weight + bias`` with ``weight`` (in, out) and ``bias`` (out,)."""

    weight: np.ndarray  #: (in, out)
    bias: np.ndarray  #: (out,)

    def __post_init__(self) -> None:
        w = _field_array(self, "weight", 2)
        _expect_shape(_field_array(self, "bias", 1), (w.shape[1],), "LinearParams.bias")

    @property
    def in_features(self) -> int:
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]


@dataclass(frozen=True)
class EncoderBlockParams:
    """One pre-norm ViT encoder block (see the module docstring for the QKV layout)."""

    heads: int
    ln1: LayerNormParams
    qkv: LinearParams  #: (embed, 3 * embed), columns [Q | K | V]
    proj: LinearParams  #: (embed, embed)
    ln2: LayerNormParams
    fc1: LinearParams  #: (embed, mlp)
    fc2: LinearParams  #: (mlp, embed)

    def __post_init__(self) -> None:
        heads = _positive_int(self, "heads")
        for name, cls in (("ln1", LayerNormParams), ("qkv", LinearParams),
                          ("proj", LinearParams), ("ln2", LayerNormParams),
                          ("fc1", LinearParams), ("fc2", LinearParams)):
            _check_type(self, name, cls)
        d = self.ln1.channels
        if d % heads:
            raise ValueError(f"EncoderBlockParams: embed {d} is not a multiple of heads {heads}")
        mlp = self.fc1.out_features
        for label, got, want in (
            ("ln2.gamma", (self.ln2.channels,), (d,)),
            ("qkv.weight", self.qkv.weight.shape, (d, 3 * d)),
            ("proj.weight", self.proj.weight.shape, (d, d)),
            ("fc1.weight", self.fc1.weight.shape, (d, mlp)),
            ("fc2.weight", self.fc2.weight.shape, (mlp, d)),
        ):
            if got != want:
                raise ValueError(
                    f"EncoderBlockParams.{label} must have shape {want} (embed {d}, mlp {mlp}), "
                    f"got {got}"
                )

    @property
    def embed(self) -> int:
        return self.ln1.channels

    @property
    def head_dim(self) -> int:
        return self.embed // self.heads

    @property
    def mlp(self) -> int:
        return self.fc1.out_features


@dataclass(frozen=True)
class ViTParams:
    """A ViT classifier: patch embedding, class token, position embedding, blocks, norm, head."""

    patch_weight: np.ndarray  #: (embed, channels, P, P): the P x P / stride P convolution
    patch_bias: np.ndarray  #: (embed,)
    cls_token: np.ndarray  #: (embed,)
    pos_embed: np.ndarray  #: (tokens, embed)
    blocks: tuple  #: of EncoderBlockParams
    norm: LayerNormParams
    head: LinearParams  #: (embed, classes)

    def __post_init__(self) -> None:
        w = _field_array(self, "patch_weight", 4)
        d = w.shape[0]
        if w.shape[2] != w.shape[3]:
            raise ValueError(f"ViTParams.patch_weight must have square patches, got {w.shape}")
        _expect_shape(_field_array(self, "patch_bias", 1), (d,), "ViTParams.patch_bias")
        _expect_shape(_field_array(self, "cls_token", 1), (d,), "ViTParams.cls_token")
        pos = _field_array(self, "pos_embed", 2)
        if pos.shape[1] != d or pos.shape[0] < 2:
            raise ValueError(
                f"ViTParams.pos_embed must have shape (tokens, {d}) with tokens >= 2, "
                f"got {pos.shape}"
            )
        _check_type(self, "norm", LayerNormParams)
        _check_type(self, "head", LinearParams)
        blocks = tuple(self.blocks)
        if not blocks:
            raise ValueError("ViTParams.blocks must hold at least one EncoderBlockParams")
        for i, b in enumerate(blocks):
            if not isinstance(b, EncoderBlockParams):
                raise TypeError(
                    f"ViTParams.blocks[{i}] must be EncoderBlockParams, got {type(b).__name__}"
                )
            if b.embed != d:
                raise ValueError(f"ViTParams.blocks[{i}] has embed {b.embed}, expected {d}")
        object.__setattr__(self, "blocks", blocks)
        if self.norm.channels != d or self.head.in_features != d:
            raise ValueError(
                f"ViTParams.norm and ViTParams.head must take {d} features, got "
                f"{self.norm.channels} and {self.head.in_features}"
            )

    @property
    def patch(self) -> int:
        return self.patch_weight.shape[2]

    @property
    def embed(self) -> int:
        return self.patch_weight.shape[0]

    @property
    def channels(self) -> int:
        return self.patch_weight.shape[1]

    @property
    def tokens(self) -> int:
        return self.pos_embed.shape[0]

    @property
    def classes(self) -> int:
        return self.head.out_features


@dataclass(frozen=True)
class ConvBNParams:
    """A bias-free convolution followed by inference-mode BatchNorm (ResNet's conv-bn)."""

    weight: np.ndarray  #: (K, C, R, S)
    gamma: np.ndarray  #: (K,)
    beta: np.ndarray  #: (K,)
    mean: np.ndarray  #: (K,) running mean
    var: np.ndarray  #: (K,) running variance, >= 0
    stride: int = 1
    padding: int = 0
    eps: float = BN_EPS

    def __post_init__(self) -> None:
        k = _field_array(self, "weight", 4).shape[0]
        for name in ("gamma", "beta", "mean", "var"):
            _expect_shape(_field_array(self, name, 1), (k,), f"ConvBNParams.{name}")
        if (self.var < 0).any():
            raise ValueError("ConvBNParams.var must be >= 0")
        _positive_int(self, "stride")
        pad = self.padding
        if isinstance(pad, (bool, np.bool_)) or not isinstance(pad, (int, np.integer)) or pad < 0:
            raise ValueError(f"ConvBNParams.padding must be an integer >= 0, got {pad!r}")
        object.__setattr__(self, "padding", int(pad))
        _eps(self)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]


@dataclass(frozen=True)
class BasicBlockParams:
    """ResNet basic block: conv-bn-relu, conv-bn, shortcut (identity or conv-bn), add, relu."""

    conv1: ConvBNParams  #: 3x3, stride s
    conv2: ConvBNParams  #: 3x3, stride 1
    downsample: ConvBNParams | None = None  #: 1x1, stride s; None for the identity shortcut

    def __post_init__(self) -> None:
        _check_type(self, "conv1", ConvBNParams)
        _check_type(self, "conv2", ConvBNParams)
        if self.downsample is not None:
            _check_type(self, "downsample", ConvBNParams)
        c1, c2, ds = self.conv1, self.conv2, self.downsample
        if c2.in_channels != c1.out_channels:
            raise ValueError(
                f"BasicBlockParams.conv2 takes {c2.in_channels} channels but conv1 gives "
                f"{c1.out_channels}"
            )
        if ds is None:
            if c1.stride != 1 or c2.out_channels != c1.in_channels:
                raise ValueError(
                    "BasicBlockParams.downsample is required when the block changes the "
                    f"stride ({c1.stride}) or the channels ({c1.in_channels} -> "
                    f"{c2.out_channels})"
                )
        elif (ds.in_channels, ds.out_channels, ds.stride) != (
            c1.in_channels, c2.out_channels, c1.stride
        ):
            raise ValueError(
                f"BasicBlockParams.downsample must map {c1.in_channels} -> {c2.out_channels} "
                f"channels with stride {c1.stride}, got {ds.in_channels} -> {ds.out_channels} "
                f"with stride {ds.stride}"
            )


# ---- argument checks shared by the float ops and blocks ----------------------------------
def _input(x, name: str, min_ndim: int) -> np.ndarray:
    arr = real_array(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {arr.shape}")
    return arr


def _params(p, cls, name: str = "p"):
    """``p`` itself if it is a ``cls``; TypeError naming ``name`` otherwise."""
    if not isinstance(p, cls):
        raise TypeError(f"{name} must be {cls.__name__}, got {type(p).__name__}")
    return p
