"""Train a tiny CNN and a tiny ViT on scikit-learn's handwritten digits; export both to ONNX.

Needs the ``train`` extra (``pip install -e .[train]``: torch, scikit-learn, onnxruntime).
Nothing is downloaded: ``sklearn.datasets.load_digits`` ships its 1,797 8x8 images.

* Data: ``images / 16`` (values in [0, 1]) as ``[N, 1, 8, 8]`` float32, labels 0-9.
* Split (fixed, no randomness): image ``i`` is held out when ``i % 5 == 4`` (359 images);
  the other 1,438 train. :func:`split` is the rule; the tests use the same function.
* Models (:class:`DigitsCNN`, :class:`DigitsViT`) are built from ops the importer maps
  (``docs/onnx.md``): convolutions with batch norm and ReLU, max and average pooling, a
  classifier on a flattened 2x2 map (CNN); a 2x2 patch embedding, a class token, position
  embeddings, two pre-norm blocks with two-head attention and a GELU MLP, a final norm
  and a head on the class token (ViT).
* Training: seed 0, AdamW, cross-entropy, one-pixel random shifts as augmentation.
* Export: ``torch.onnx.export`` (the ``torch.export`` exporter, opset 18) for a batch of
  one, the exporter's per-node metadata dropped (:func:`compact`), then top-1 accuracy
  on the held-out split with onnxruntime, written to ``digits.json`` beside the models.

    python scripts/train_digits.py [OUT_DIR]      # default tests/data/onnx
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

SEED = 0
#: Held-out rule: image i is held out when i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1.
HOLD_OUT_EVERY = 5


def load() -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``[1797, 1, 8, 8]`` float32 in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return x, d.target.astype(np.int64)


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out indices: held out when ``i % 5 == 4``."""
    i = np.arange(n)
    held = i % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    return i[~held], i[held]


def _models():
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        """8x8 -> conv16 -> conv32 -> maxpool 4x4 -> conv32 -> avgpool 2x2 -> fc 10."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                nn.AvgPool2d(2),
            )
            self.fc = nn.Linear(32 * 2 * 2, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))

    class Block(nn.Module):
        def __init__(self, dim: int, heads: int, mlp: int) -> None:
            super().__init__()
            self.heads, self.scale = heads, (dim // heads) ** -0.5
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.fc1, self.fc2, self.act = nn.Linear(dim, mlp), nn.Linear(mlp, dim), nn.GELU()

        def forward(self, x):
            b, n, c = x.shape
            qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
            return x + self.fc2(self.act(self.fc1(self.norm2(x))))

    class DigitsViT(nn.Module):
        """2x2 patches (16 tokens) + class token, 2 blocks of width 32, 2 heads, MLP 64."""

        def __init__(self, dim: int = 32, depth: int = 2, heads: int = 2, mlp: int = 64):
            super().__init__()
            self.patch = nn.Conv2d(1, dim, 2, stride=2)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.02)
            self.blocks = nn.Sequential(*(Block(dim, heads, mlp) for _ in range(depth)))
            self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), dim=1) + self.pos
            return self.head(self.norm(self.blocks(x))[:, 0])

    return DigitsCNN, DigitsViT


def train(model, x: np.ndarray, y: np.ndarray, epochs: int, lr: float):
    """AdamW with cosine decay, batches of 64, random one-pixel shifts."""
    import torch
    import torch.nn.functional as F

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            xb = xt[idx]
            dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def compact(path: Path) -> None:
    """Drop the exporter's per-node metadata (stack traces), most of the file's size."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        node.ClearField("metadata_props")
        node.ClearField("doc_string")
    model.graph.ClearField("value_info")
    model.ClearField("metadata_props")
    onnx.save(model, str(path))


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> int:
    """Correct top-1 predictions of the ONNX model on ``x`` (onnxruntime, one at a time)."""
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    pred = [int(np.argmax(s.run(None, {name: x[i:i + 1]})[0])) for i in range(len(x))]
    return int(np.sum(np.asarray(pred) == y))


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("tests/data/onnx"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    x, y = load()
    tr, held = split(len(x))
    cnn_cls, vit_cls = _models()
    results = {"split": f"held out: image i of load_digits() with i % {HOLD_OUT_EVERY} == "
                        f"{HOLD_OUT_EVERY - 1}", "held_out": len(held), "seed": SEED,
               "torch": torch.__version__}
    for name, cls, epochs, lr in (("digits_cnn", cnn_cls, 40, 3e-3),
                                  ("digits_vit", vit_cls, 150, 2e-3)):
        torch.manual_seed(SEED)
        model = train(cls(), x[tr], y[tr], epochs, lr)
        path = args.out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.from_numpy(x[:1]),), str(path), dynamo=True,
                              opset_version=18, external_data=False, verbose=False)
        compact(path)
        correct = onnx_accuracy(path, x[held], y[held])
        results[name] = {"correct": correct, "top1": round(correct / len(held), 4),
                         "parameters": sum(p.numel() for p in model.parameters()),
                         "bytes": path.stat().st_size}
        print(f"{name}: float top-1 {correct}/{len(held)} = {correct / len(held):.4f} "
              f"({path}, {path.stat().st_size} bytes)")
    (args.out / "digits.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
