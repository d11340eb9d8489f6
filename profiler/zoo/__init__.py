"""Built-in model families that need no network: ``digits`` (trained in seconds on scikit-learn's
bundled digits) and ``ocr`` (the ONNX models shipped inside rapidocr-onnxruntime).

Each family module offers ``build(model, cache_dir) -> Path`` (an ONNX file), ``evaluator(name)``
and ``calibration(name)``. Data set references look like ``zoo:digits/test``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from profiler.accuracy import Evaluator
from profiler.errors import ManifestError

FAMILIES = ("digits", "ocr")


def _family(name: str):
    if name not in FAMILIES:
        raise ManifestError(f"unknown zoo '{name}'; built-in zoos: {list(FAMILIES)}.")
    return importlib.import_module(f"profiler.zoo.{name}")


def split_ref(ref: str) -> tuple[str, str]:
    """'zoo:digits/test' -> ('digits', 'test')."""
    body = ref.removeprefix("zoo:")
    family, _, name = body.partition("/")
    if not name:
        raise ManifestError(f"data set '{ref}': expected 'zoo:FAMILY/NAME', e.g. 'zoo:digits/test'.")
    return family, name


def build(family: str, model: str, cache_dir: Path) -> Path:
    """The ONNX file of a zoo member (trained or located on first use, then cached)."""
    return _family(family).build(model, cache_dir)


def evaluator(ref: str) -> Evaluator:
    family, name = split_ref(ref)
    return _family(family).evaluator(name)


def calibration(ref: str) -> np.ndarray:
    family, name = split_ref(ref)
    return _family(family).calibration(name)
