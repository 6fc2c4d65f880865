"""CNN traces: ResNet-18 (He et al., 2016) and MobileNetV2 width 1.0 (Sandler et al., 2018).

Layers follow torchvision's definitions, in execution order. Batch normalization is
folded into the preceding convolution (its shift becomes the int32 conv bias), and each
ReLU / ReLU6 is fused into the requantization of the op before it (``act``), the usual
int8 deployment. Convolutions requantize per output channel to int8; residual adds
rescale both operands to a common scale and requantize per tensor; the classifier
logits stay int32. MobileNetV2's 3x3 depthwise convolutions are ``dwconv2d`` ops.
"""

from __future__ import annotations

from typing import Any

from edgetron.errors import TraceError
from edgetron.workload.trace.graph import Trace
from edgetron.workload.trace.limits import ACC_BITS, show_value
from edgetron.workload.trace.matrix import AvgPool, Conv2d, DwConv2d, Gemm, MaxPool
from edgetron.workload.trace.op import Op, append_op
from edgetron.workload.trace.vector import Add

__all__ = ["MOBILENETV2_SETTINGS", "RESNET18_STAGES", "mobilenetv2", "resnet18"]

#: ResNet-18 stages: (output channels, stride of the first block); two basic blocks each.
RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))

#: MobileNetV2 inverted-residual stages (expansion t, output channels c, repeats n,
#: first stride s), Table 2 of Sandler et al. (2018).
MOBILENETV2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class _Net:
    """Ops under construction plus the current feature-map shape (per sample).

    ``model`` (e.g. ``resnet18 (batch 1)``) starts the message of an op that cannot be
    built.
    """

    def __init__(self, model: str, batch: int, h: int, w: int, c: int) -> None:
        self.ops: list[Op] = []
        self.model = model
        self.batch = batch
        self.h, self.w, self.c = h, w, c

    def add(self, cls: type[Op], **fields: Any) -> int:
        """Build a ``cls`` op from ``fields`` and append it; returns its index."""
        return append_op(self.ops, self.model, cls, **fields)

    def window(self, cls: type[Op], **fields: Any) -> int:
        """Append a conv or pool on the current map; the map becomes its output."""
        i = self.add(cls, n=self.batch, h=self.h, w=self.w, c=self.c, **fields)
        _, self.h, self.w, self.c = self.ops[i].out_shape
        return i

    def conv(self, name: str, x: int | str, k: int, kernel: int, stride: int, act: str,
             *, depthwise: bool = False) -> int:
        """A conv (BN folded, activation fused) with padding ``kernel // 2`` on every side."""
        return self.window(
            DwConv2d if depthwise else Conv2d, name=name, inputs=(x,), k=k, r=kernel,
            s=kernel, stride_h=stride, stride_w=stride, **_same(kernel), bias=True, act=act,
            requant="channel",
        )

    def classifier(self, x: int, classes: int) -> None:
        """Global average pool and a fully connected layer with int32 logits."""
        pool = self.window(AvgPool, name="avgpool", inputs=(x,), r=self.h, s=self.w)
        self.add(
            Gemm, name="fc", inputs=(pool,), batch=self.batch, m=1, k=self.c, n=classes,
            weights=True, bias=True, out_bits=ACC_BITS, requant="none",
        )


def _same(kernel: int) -> dict[str, int]:
    """PyTorch's symmetric padding ``kernel // 2`` on every side (odd kernels)."""
    return dict.fromkeys(("pad_top", "pad_bottom", "pad_left", "pad_right"), kernel // 2)


def _check_args(builder: str, **values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TraceError(
                f"{builder}: {key}: expected a positive integer, got {show_value(value)}"
            )


def resnet18(*, batch: int = 1, image_size: int = 224, classes: int = 1000,
             name: str = "resnet18") -> Trace:
    """The trace of ResNet-18 (torchvision layout).

    Parameters
    ----------
    batch : int
        Images per inference.
    image_size : int
        Input height and width in pixels (224 for the reference shapes of
        ``docs/workloads.md``).
    classes : int
        Outputs of the fully connected layer.
    name : str
        Trace name.

    Returns
    -------
    Trace
        ``conv1``, ``maxpool``, then per basic block ``layer<s>.<b>.conv1``, ``.conv2``,
        ``.downsample`` (first block of stages 2-4), ``.add`` (with the fused ReLU),
        then ``avgpool`` and ``fc``.

    Raises
    ------
    TraceError
        For a bad argument (naming it), or sizes that make an op exceed a limit of the
        trace format (naming the model, the op and its field).
    """
    _check_args("resnet18", batch=batch, image_size=image_size, classes=classes)
    net = _Net(f"{name} (batch {batch})", batch, image_size, image_size, 3)
    x = net.conv("conv1", "input", 64, 7, 2, "relu")
    x = net.window(
        MaxPool, name="maxpool", inputs=(x,), r=3, s=3, stride_h=2, stride_w=2, **_same(3),
    )
    for stage, (channels, first_stride) in enumerate(RESNET18_STAGES, start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            stride = first_stride if block == 0 else 1
            shape_in = (net.h, net.w, net.c)
            y = net.conv(f"{prefix}.conv1", x, channels, 3, stride, "relu")
            y = net.conv(f"{prefix}.conv2", y, channels, 3, 1, "none")
            shortcut = x
            if stride != 1 or shape_in[2] != channels:
                # The 1x1 projection reads the block input and yields conv2's output
                # shape (the add below checks it).
                net.h, net.w, net.c = shape_in
                shortcut = net.conv(f"{prefix}.downsample", x, channels, 1, stride, "none")
            x = net.add(
                Add, name=f"{prefix}.add", inputs=(y, shortcut),
                shape=(batch, net.h, net.w, net.c), act="relu",
            )
    net.classifier(x, classes)
    return Trace(
        name=name, batch=batch, ops=tuple(net.ops),
        description=f"ResNet-18 {image_size}x{image_size}, {classes} classes, BN folded",
    )


def mobilenetv2(*, batch: int = 1, image_size: int = 224, classes: int = 1000,
                name: str = "mobilenetv2") -> Trace:
    """The trace of MobileNetV2, width multiplier 1.0 (torchvision layout).

    Parameters
    ----------
    batch : int
        Images per inference.
    image_size : int
        Input height and width in pixels (224 for the published ~300 M MACs).
    classes : int
        Outputs of the classifier.
    name : str
        Trace name.

    Returns
    -------
    Trace
        ``conv1`` (3x3 stride 2, ReLU6), 17 inverted-residual blocks
        ``block<i>.expand`` (1x1, ReLU6; absent when t = 1), ``block<i>.dw`` (3x3
        ``dwconv2d``, ReLU6), ``block<i>.project`` (1x1, linear), ``block<i>.add`` (when
        the stride is 1 and the channels match), then ``conv_last`` (1x1 to 1280,
        ReLU6), ``avgpool`` and ``fc``.

    Raises
    ------
    TraceError
        As for :func:`resnet18`.
    """
    _check_args("mobilenetv2", batch=batch, image_size=image_size, classes=classes)
    net = _Net(f"{name} (batch {batch})", batch, image_size, image_size, 3)
    x = net.conv("conv1", "input", 32, 3, 2, "relu6")
    index = 0
    for t, c, n, s in MOBILENETV2_SETTINGS:
        for repeat in range(n):
            index += 1
            prefix = f"block{index}"
            stride = s if repeat == 0 else 1
            residual = stride == 1 and net.c == c
            y = x
            if t != 1:
                y = net.conv(f"{prefix}.expand", y, net.c * t, 1, 1, "relu6")
            y = net.conv(f"{prefix}.dw", y, net.c, 3, stride, "relu6", depthwise=True)
            y = net.conv(f"{prefix}.project", y, c, 1, 1, "none")
            if residual:
                y = net.add(
                    Add, name=f"{prefix}.add", inputs=(x, y), shape=(batch, net.h, net.w, net.c),
                )
            x = y
    x = net.conv("conv_last", x, 1280, 1, 1, "relu6")
    net.classifier(x, classes)
    return Trace(
        name=name, batch=batch, ops=tuple(net.ops),
        description=f"MobileNetV2 1.0 {image_size}x{image_size}, {classes} classes, BN folded",
    )
