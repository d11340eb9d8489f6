"""Accuracy metrics and the evaluation of a loaded variant on a data set.

Data sets are ``.npz`` files with arrays ``inputs`` (items stacked on axis 0) and ``labels``, or
built-in sets named ``zoo:NAME`` (see :mod:`profiler.zoo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from profiler.backends import LoadedModel
from profiler.errors import ManifestError
from profiler.manifest import InputSpec, Metric, VariantSpec


def classification_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose arg-max class equals the label."""
    predicted = np.asarray(logits).reshape(len(labels), -1).argmax(axis=1)
    return float((predicted == np.asarray(labels).reshape(-1)).mean())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """1 - (total edit distance / total ground-truth characters), floored at 0 (the usual OCR CAR)."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} ground-truth strings")
    total = sum(len(t) for t in truth)
    if total == 0:
        raise ValueError("the ground truth has no characters")
    errors = sum(edit_distance(p, t) for p, t in zip(predicted, truth))
    return max(0.0, 1.0 - errors / total)


@dataclass(frozen=True)
class EvalContext:
    """What an evaluator may use: the loaded model, its file (ONNX variants) and its manifest entry."""

    model: LoadedModel
    path: Path | None
    variant: VariantSpec
    input: InputSpec
    metric: Metric
    max_items: int | None
    threads: int


Evaluator = Callable[[EvalContext], float]


@dataclass(frozen=True)
class ArrayDataset:
    inputs: np.ndarray
    labels: np.ndarray


def load_npz(path: Path) -> ArrayDataset:
    """An .npz data set with arrays 'inputs' and 'labels'."""
    try:
        with np.load(path) as data:
            return ArrayDataset(np.asarray(data["inputs"]), np.asarray(data["labels"]))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such data set file; paths are relative to the manifest.") from None
    except KeyError as exc:
        raise ManifestError(f"{path}: the data set needs arrays 'inputs' and 'labels'; missing {exc}.") from None


def array_evaluator(dataset: ArrayDataset, batch_size: int = 64) -> Evaluator:
    """Evaluate classification accuracy on an in-memory data set, in batches."""

    def evaluate(ctx: EvalContext) -> float:
        if ctx.metric is not Metric.CLASSIFICATION_ACCURACY:
            raise ManifestError(f"metric '{ctx.metric.value}' needs a built-in evaluator (zoo:...), "
                                "an .npz data set supports classification_accuracy only.")
        n = len(dataset.inputs) if ctx.max_items is None else min(ctx.max_items, len(dataset.inputs))
        inputs = dataset.inputs[:n].astype(ctx.input.dtype.value, copy=False)
        outputs = [ctx.model.run(inputs[i:i + batch_size])[0] for i in range(0, n, batch_size)]
        return classification_accuracy(np.concatenate(outputs, axis=0), dataset.labels[:n])

    return evaluate
