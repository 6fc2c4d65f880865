"""Export torchvision's ResNet-18 and MobileNetV2 and timm's DeiT-Tiny to ONNX (random weights).

Needs the ``train`` extra (torch, torchvision, timm; ``pip install -e .[train]``); nothing
is downloaded (architectures only, ``weights=None`` / ``pretrained=False``). Every
parameter and batch-norm statistic is re-drawn from a fixed seed so that no bias is zero
(exporters drop zero biases, which would hide a missing one).

Each model is exported by both PyTorch exporters, at the opsets that exercise the
importer's paths: the TorchScript exporter (``dynamo=False``: shape subgraphs,
``Split``, the decomposed LayerNorm at opset 14) and the ``torch.export`` one
(``dynamo=True``: LayerNormalization at opset 18, the Gelu op at opset 20).

``--strip`` writes the committed CI fixtures: every float tensor of more than
``STRIP_ABOVE`` elements keeps its dimensions but loses its data, replaced by an
external-data reference to ``edgetron:stripped`` (``docs/onnx.md``, shape-only models).

    python scripts/export_onnx_fixtures.py OUT_DIR [--strip]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

#: (fixture name, model, exporter, opset).
EXPORTS = (
    ("resnet18_torchscript_op13", "resnet18", "torchscript", 13),
    ("resnet18_dynamo_op18", "resnet18", "dynamo", 18),
    ("mobilenetv2_torchscript_op13", "mobilenetv2", "torchscript", 13),
    ("mobilenetv2_dynamo_op18", "mobilenetv2", "dynamo", 18),
    ("deit_tiny_torchscript_op14", "deit_tiny", "torchscript", 14),
    ("deit_tiny_dynamo_op18", "deit_tiny", "dynamo", 18),
    ("deit_tiny_dynamo_op20", "deit_tiny", "dynamo", 20),
)
#: Float tensors above this many elements lose their data in a stripped fixture.
STRIP_ABOVE = 16
#: Where a stripped tensor's data "lives" (the importer's shape-only marker).
STRIPPED = "edgetron:stripped"
SEED = 0


def build(model: str):
    """The model in eval mode with every parameter and BN statistic drawn from SEED."""
    import timm
    import torch
    import torchvision

    torch.manual_seed(SEED)
    if model == "resnet18":
        net = torchvision.models.resnet18(weights=None)
    elif model == "mobilenetv2":
        net = torchvision.models.mobilenet_v2(weights=None)
    else:
        net = timm.create_model("deit_tiny_patch16_224", pretrained=False)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.05)
        for name, b in net.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
    return net.eval()


def export(model: str, exporter: str, opset: int, path: Path) -> None:
    """Export ``model`` for a 1x3x224x224 input to ``path`` (data inside the file)."""
    import torch

    net = build(model)
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(net, (x,), str(path), dynamo=True, opset_version=opset,
                              external_data=False, verbose=False)
        else:
            torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=opset)


def strip(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` with every large float tensor's data left out."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(src))
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)
    for t in model.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type in floats and n > STRIP_ABOVE:
            t.ClearField("raw_data")
            for field in ("float_data", "double_data", "int32_data"):
                t.ClearField(field)
            t.data_location = TensorProto.EXTERNAL
            del t.external_data[:]
            entry = t.external_data.add()
            entry.key, entry.value = "location", STRIPPED
    # Exporter metadata (stack traces, per-node provenance) is most of a fixture's size and
    # nothing the importer reads; shape inference recomputes value_info.
    for node in model.graph.node:
        node.ClearField("metadata_props")
        node.ClearField("doc_string")
    for field in ("value_info", "metadata_props"):
        model.graph.ClearField(field)
    model.ClearField("metadata_props")
    model.graph.doc_string = "edgetron fixture: large float tensors are shape-only"
    onnx.save(model, str(dst))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--strip", action="store_true", help="write shape-only fixtures")
    parser.add_argument("--only", help="export only the fixtures whose name contains this")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model, exporter, opset in EXPORTS:
        if args.only and args.only not in name:
            continue
        full = args.out / f"{name}.full.onnx" if args.strip else args.out / f"{name}.onnx"
        export(model, exporter, opset, full)
        if args.strip:
            strip(full, args.out / f"{name}.onnx")
            full.unlink()
        print(f"{name}: {(args.out / f'{name}.onnx').stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
