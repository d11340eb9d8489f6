"""The built-in zoos: digits (trained with torch) and ocr (rapidocr's shipped models), plus metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler.accuracy import EvalContext, character_accuracy, classification_accuracy, edit_distance
from profiler.manifest import HardwareSetting, InputSpec, Metric, VariantSpec


def test_edit_distance_and_character_accuracy():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert character_accuracy(["abc", "de"], ["abc", "df"]) == pytest.approx(1 - 1 / 5)
    assert character_accuracy(["zzzzzzzz"], ["ab"]) == 0.0  # floored at 0
    with pytest.raises(ValueError):
        character_accuracy(["a"], ["a", "b"])


def test_classification_accuracy():
    import numpy as np

    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert classification_accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)


def _context(path: Path, shape, metric, max_items=None, model=None) -> EvalContext:
    variant = VariantSpec(name="v", source={"kind": "onnx", "path": str(path)})
    return EvalContext(model, path, variant, InputSpec(shape=shape), metric, max_items, 1)


def test_digits_member_trains_exports_and_is_accurate(tmp_path):
    pytest.importorskip("torch", reason="the digits zoo trains with torch (the 'torch' extra)")
    pytest.importorskip("sklearn", reason="the digits data ship with scikit-learn (the 'profile' extra)")
    pytest.importorskip("onnxruntime", reason="needs onnxruntime (the 'profile' extra)")
    from profiler.backends.onnxruntime_backend import OrtModel
    from profiler.zoo import digits

    path = digits.build("mlp16", tmp_path)
    assert path.stat().st_size < 1_000_000 and digits.build("mlp16", tmp_path) == path  # cached
    model = OrtModel(path, HardwareSetting(name="cpu-1"), "input")
    accuracy = digits.evaluator("test")(_context(path, (1, 8, 8), Metric.CLASSIFICATION_ACCURACY, model=model))
    assert accuracy > 0.9
    train, test = digits.split()
    assert len(train.inputs) + len(test.inputs) == 1797 and len(digits.calibration("train")) == len(train.inputs)


def test_ocr_stages_read_rendered_text():
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr zoo uses rapidocr-onnxruntime's models (the 'profile' extra)")
    from profiler.zoo import ocr

    docs = ocr.documents()
    assert len(docs) == 12 and all(d.image_bgr.shape == (480, 640, 3) and d.lines for d in docs)
    assert ocr.evaluate_cls(_context(ocr.build("cls", None), (3, 48, 192), Metric.CLASSIFICATION_ACCURACY, 8)) >= 0.75
    assert ocr.evaluate_rec(_context(ocr.build("rec", None), (3, 48, 320), Metric.CHARACTER_ACCURACY, 4)) > 0.9
    assert ocr.evaluate_det(_context(ocr.build("det", None), (3, 352, 480), Metric.CHARACTER_ACCURACY, 1)) > 0.8
    assert ocr.calibration("cls").shape[1:] == (3, 48, 192)
