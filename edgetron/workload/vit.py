"""Vision Transformer (ViT / DeiT) traces: patch embedding, encoder blocks, classifier head.

The op sequence of one encoder block is that of ``docs/workloads.md``: layernorm, fused QKV
projection, per-head attention scores (scaled by ``1/sqrt(head_dim)``), softmax, per-head
attention x V, output projection, residual add, layernorm, MLP fc1, GELU, fc2, residual
add. The ``heads`` per-head products of one block are one :class:`~.trace.Gemm` with
``count = heads`` whose operands are column slices of the QKV output, with the head
layout explicit: Q, K and V hold head ``h`` in columns ``h * head_dim ...`` (``a_heads``
/ ``b_heads`` ``cols``), the scores read K transposed (``b_transposed``), the softmax
output stacks the heads' score rows (``a_heads`` ``rows``), and attention x V writes
head ``h`` to columns ``h * head_dim ...`` of a ``[tokens, embed]`` output
(``out_heads`` ``cols``, the head merge), which the projection reads as is.

Integer widths follow the I-BERT split (``docs/integer-kernels.md``): int8 operands, int32
accumulators; the attention scores and fc1 outputs stay int32 (``requant`` ``none``) so
that softmax and GELU see them at full precision; every other op requantizes to int8.
The classifier logits stay int32.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from edgetron.errors import TraceError
from edgetron.workload.trace.graph import Trace
from edgetron.workload.trace.limits import ACC_BITS, MAX_DIM, MAX_OPS, show_value
from edgetron.workload.trace.matrix import Conv2d, Gemm
from edgetron.workload.trace.op import Op, Ref, append_op
from edgetron.workload.trace.vector import Add, Concat, Gelu, LayerNorm, Softmax

__all__ = ["VIT_PRESETS", "vit"]

#: Ops per encoder block, and outside the blocks (patch_embed, cls_token, pos_embed, norm,
#: head).
_BLOCK_OPS = 12
_OUTSIDE_BLOCKS = 5

#: Named configurations (DeiT, Touvron et al. 2021): embed dim, heads; depth 12, MLP ratio 4.
VIT_PRESETS: dict[str, dict[str, int]] = {
    "vit-tiny": {"embed": 192, "heads": 3},
    "deit-small": {"embed": 384, "heads": 6},
    "deit-base": {"embed": 768, "heads": 12},
}


def vit(
    *,
    image_size: int = 224,
    patch: int = 16,
    embed: int = 192,
    heads: int = 3,
    depth: int = 12,
    mlp_ratio: float = 4.0,
    channels: int = 3,
    classes: int = 1000,
    batch: int = 1,
    name: str | None = None,
) -> Trace:
    """The trace of a ViT classifier (defaults: ViT-Tiny / DeiT-Tiny at 224 x 224).

    Parameters
    ----------
    image_size : int
        Input height and width in pixels; a multiple of ``patch``.
    patch : int
        Patch size in pixels (the embedding is a ``patch x patch`` convolution with
        stride ``patch``).
    embed : int
        Embedding dimension; a multiple of ``heads``.
    heads : int
        Attention heads per block (head dimension ``embed // heads``).
    depth : int
        Encoder blocks.
    mlp_ratio : float
        MLP hidden size over ``embed``; ``embed * mlp_ratio`` must be an integer.
    channels : int
        Input image channels.
    classes : int
        Outputs of the classifier head.
    batch : int
        Images per inference.
    name : str, optional
        Trace name; default ``vit-<embed>-<heads>h-<depth>``.

    Returns
    -------
    Trace
        ``patch_embed`` (conv2d), ``cls_token`` (concat), ``pos_embed`` (add of a
        constant), ``depth`` blocks of 12 ops named ``blocks.<i>.<op>``, ``norm``
        (layernorm) and ``head`` (gemm on the class token).

    Raises
    ------
    TraceError
        If the sizes are inconsistent (the message names the parameter) or make an op
        exceed a limit of the trace format (the message names the model, the op and
        its field).
    """
    for key, value in (("image_size", image_size), ("patch", patch), ("embed", embed),
                       ("heads", heads), ("depth", depth), ("channels", channels),
                       ("classes", classes), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TraceError(f"vit: {key}: expected a positive integer, got {show_value(value)}")
    if image_size % patch:
        raise TraceError(f"vit: image_size: {image_size} is not a multiple of patch {patch}")
    if embed % heads:
        raise TraceError(f"vit: embed: {embed} is not a multiple of heads {heads}")
    max_depth = (MAX_OPS - _OUTSIDE_BLOCKS) // _BLOCK_OPS
    if depth > max_depth:
        raise TraceError(
            f"vit: depth: {show_value(depth)} blocks exceed the {max_depth} that fit in a trace "
            f"of at most {MAX_OPS} ops"
        )
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)):
        raise TraceError(f"vit: mlp_ratio: expected a number, got {show_value(mlp_ratio)}")
    hidden = embed * mlp_ratio  # exact for an int ratio; may be inf or nan for a float
    if not (1 <= hidden <= MAX_DIM and float(hidden).is_integer()):
        raise TraceError(
            f"vit: mlp_ratio: embed * mlp_ratio = {show_value(hidden)} is not an integer in "
            f"[1, {MAX_DIM}]"
        )
    mlp = int(hidden)
    grid = image_size // patch
    tokens = grid * grid + 1
    head_dim = embed // heads
    name = name or f"vit-{embed}-{heads}h-{depth}"
    ops: list[Op] = []
    add = functools.partial(append_op, ops, f"{name} (batch {batch})")

    x = add(
        Conv2d, name="patch_embed", inputs=("input",), n=batch, h=image_size, w=image_size,
        c=channels, k=embed, r=patch, s=patch, stride_h=patch, stride_w=patch,
        bias=True, requant="channel",
    )
    x = add(
        Concat, name="cls_token", inputs=(x,), batch=batch, rows=(grid * grid,), cols=embed,
        const_rows=1,
    )
    x = add(Add, name="pos_embed", inputs=(x,), shape=(batch, tokens, embed), weights=True)
    for i in range(depth):
        x = _block(add, f"blocks.{i}", x, batch, tokens, embed, heads, head_dim, mlp)
    x = add(
        LayerNorm, name="norm", inputs=(x,), batch=batch, rows=tokens, cols=embed, bias=True,
    )
    add(
        Gemm, name="head", inputs=(Ref(x, rows=(0, 1)),), batch=batch, m=1, k=embed,
        n=classes, weights=True, bias=True, out_bits=ACC_BITS, requant="none",
    )
    return Trace(
        name=name,
        batch=batch,
        ops=tuple(ops),
        description=(
            f"ViT {image_size}x{image_size}, patch {patch}, embed {embed}, {heads} heads, "
            f"depth {depth}, MLP {mlp}, {classes} classes"
        ),
    )


def _block(
    add: Callable[..., int], prefix: str, x: int, batch: int, tokens: int, embed: int,
    heads: int, head_dim: int, mlp: int,
) -> int:
    """Append one encoder block reading op ``x``; returns the index of its output.

    ``add(cls, **fields)`` builds and appends an op (:func:`~.trace.op.append_op`).
    """
    ln1 = add(
        LayerNorm, name=f"{prefix}.ln1", inputs=(x,), batch=batch, rows=tokens, cols=embed,
        bias=True,
    )
    qkv = add(
        Gemm, name=f"{prefix}.qkv", inputs=(ln1,), batch=batch, m=tokens, k=embed,
        n=3 * embed, weights=True, bias=True, requant="channel",
    )
    q, k, v = (Ref(qkv, cols=(j * embed, (j + 1) * embed)) for j in range(3))
    scores = add(  # Q K^T per head: [heads, tokens, tokens], rows stacked by head
        Gemm, name=f"{prefix}.attn_scores", inputs=(q, k), batch=batch, count=heads,
        m=tokens, k=head_dim, n=tokens, weights=False, a_heads="cols", b_heads="cols",
        b_transposed=True, out_bits=ACC_BITS, requant="none", scale=1 / math.sqrt(head_dim),
    )
    probs = add(
        Softmax, name=f"{prefix}.softmax", inputs=(scores,), batch=batch,
        rows=heads * tokens, cols=tokens, in_bits=ACC_BITS,
    )
    context = add(  # P V per head, heads merged into [tokens, embed]
        Gemm, name=f"{prefix}.attn_v", inputs=(probs, v), batch=batch, count=heads,
        m=tokens, k=tokens, n=head_dim, weights=False, b_heads="cols", out_heads="cols",
    )
    proj = add(
        Gemm, name=f"{prefix}.proj", inputs=(context,), batch=batch, m=tokens, k=embed,
        n=embed, weights=True, bias=True, requant="channel",
    )
    res1 = add(Add, name=f"{prefix}.add1", inputs=(x, proj), shape=(batch, tokens, embed))
    ln2 = add(
        LayerNorm, name=f"{prefix}.ln2", inputs=(res1,), batch=batch, rows=tokens,
        cols=embed, bias=True,
    )
    fc1 = add(
        Gemm, name=f"{prefix}.fc1", inputs=(ln2,), batch=batch, m=tokens, k=embed, n=mlp,
        weights=True, bias=True, out_bits=ACC_BITS, requant="none",
    )
    act = add(
        Gelu, name=f"{prefix}.gelu", inputs=(fc1,), shape=(batch, tokens, mlp),
        in_bits=ACC_BITS,
    )
    fc2 = add(
        Gemm, name=f"{prefix}.fc2", inputs=(act,), batch=batch, m=tokens, k=mlp, n=embed,
        weights=True, bias=True, requant="channel",
    )
    return add(Add, name=f"{prefix}.add2", inputs=(res1, fc2), shape=(batch, tokens, embed))
