"""The ``digits`` family: linear, MLP and CNN classifiers of several widths, trained in seconds with
torch on scikit-learn's bundled 8x8 digits and exported to ONNX (opset 17, weights inside the file).

The split is fixed (seeded, stratified 75/25): the test quarter measures accuracy, the training
part trains the models and calibrates static int8 quantisation. Training is seeded, so a rebuild
gives the same weights up to float non-determinism; files are cached by member name and recipe
(:data:`RECIPE_VERSION` and the member's settings).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from profiler.accuracy import ArrayDataset, Evaluator, array_evaluator
from profiler.errors import ManifestError, VariantError
from pipeplan_files.write import atomic_target

log = logging.getLogger(__name__)

RECIPE_VERSION = 1
INPUT_SHAPE = (1, 8, 8)


@dataclass(frozen=True)
class Member:
    kind: str  # linear | mlp | cnn
    widths: tuple[int, ...] = ()
    epochs: int = 60


MEMBERS: dict[str, Member] = {
    "linear": Member("linear", epochs=40),
    "mlp16": Member("mlp", (16,)),
    "mlp128": Member("mlp", (128,), epochs=30),
    "mlp2x512": Member("mlp", (512, 512), epochs=20),
    "cnn8": Member("cnn", (8,), epochs=30),
    "cnn32": Member("cnn", (32,), epochs=15),
    "cnn64": Member("cnn", (64,), epochs=15),
}


@lru_cache(maxsize=1)
def split() -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test): images scaled to [0, 1] as float32 of shape (n, 1, 8, 8)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.25, random_state=0, stratify=digits.target)
    return ArrayDataset(x_train, y_train), ArrayDataset(x_test, y_test)


def evaluator(name: str) -> Evaluator:
    if name != "test":
        raise ManifestError(f"zoo:digits/{name}: unknown evaluation set; use zoo:digits/test.")
    return array_evaluator(split()[1])


def calibration(name: str) -> np.ndarray:
    if name != "train":
        raise ManifestError(f"zoo:digits/{name}: unknown calibration set; use zoo:digits/train.")
    return split()[0].inputs


def _module(member: Member):
    import torch.nn as nn

    if member.kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    if member.kind == "mlp":
        layers: list = [nn.Flatten()]
        width_in = 64
        for width in member.widths:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        return nn.Sequential(*layers, nn.Linear(width_in, 10))
    channels = member.widths[0]
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 4, 10),
    )


def train(member: Member, seed: int = 0):
    """Train one member on the training split (Adam, mini-batches of 64); returns the module."""
    import torch

    torch.manual_seed(seed)
    train_set, _ = split()
    x = torch.from_numpy(train_set.inputs)
    y = torch.from_numpy(train_set.labels)
    module = _module(member)
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(member.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            optimiser.zero_grad()
            loss_fn(module(x[idx]), y[idx]).backward()
            optimiser.step()
    return module.eval()


def build(name: str, cache_dir: Path) -> Path:
    """Train and export member ``name`` to ONNX (cached)."""
    if name not in MEMBERS:
        raise ManifestError(f"zoo 'digits' has no member '{name}'; members: {sorted(MEMBERS)}.")
    recipe = hashlib.sha256(f"{RECIPE_VERSION}:{MEMBERS[name]!r}".encode()).hexdigest()[:10]
    out = cache_dir / f"digits-{name}.{recipe}.onnx"
    if out.exists():
        return out
    try:
        import torch
    except ImportError:
        raise VariantError("the digits zoo trains with torch; install it with `pip install torch==2.13.0` "
                           "(the 'torch' extra).") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        module = train(MEMBERS[name])
    finally:
        torch.set_num_threads(threads)
    example = torch.zeros((2,) + INPUT_SHAPE)
    with atomic_target(out) as tmp:
        # The TorchScript exporter (dynamo=False) keeps weights inside the file and needs no onnxscript.
        torch.onnx.export(module, (example,), str(tmp), dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17)
    log.info("trained and exported digits/%s to %s", name, out)
    return out
