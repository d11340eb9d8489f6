"""Builders shared by the profiler tests: tiny ONNX models and manifests made on the spot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

FAST_METHOD = {"warmup_runs": 1, "warmup_ms": 0, "window_ms": 5, "min_window_requests": 5,
               "max_windows": 3, "max_point_s": 0.3}


def tiny_classifier(path: Path, seed: int = 0, hidden: int = 16) -> Path:
    """An MLP 4 -> hidden -> 3 (MatMul + Add + Relu) with a dynamic batch, as an ONNX file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(4, hidden)).astype(np.float32)
    b1 = rng.normal(size=(hidden,)).astype(np.float32)
    w2 = rng.normal(size=(hidden, 3)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def predict(path: Path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": inputs})[0].argmax(axis=1)


def dataset_with_accuracy(model_path: Path, out: Path, n: int = 40, correct: int = 30) -> Path:
    """An .npz whose labels agree with the model's predictions on exactly ``correct`` of ``n`` items."""
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(n, 4)).astype(np.float32)
    labels = predict(model_path, inputs)
    labels[correct:] = (labels[correct:] + 1) % 3
    np.savez(out, inputs=inputs, labels=labels)
    return out


def write_manifest(folder: Path, variants: list[dict], batch_sizes=(1, 2), hardware=None, extra=None) -> Path:
    """A manifest with one model 'tiny' (input [4]) evaluated on 'eval.npz' in ``folder``."""
    data = {
        "schema_version": 1,
        "name": "tiny",
        "hardware": hardware or [{"name": "cpu-1", "threads": 1}],
        "batch_sizes": list(batch_sizes),
        "method": FAST_METHOD,
        "models": [{
            "name": "tiny",
            "input": {"name": "input", "shape": [4]},
            "evaluation": {"dataset": "eval.npz"},
            "calibration": "eval.npz",
            "variants": variants,
        }],
    }
    data.update(extra or {})
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tiny_setup(folder: Path) -> Path:
    """tiny.onnx, broken.onnx and eval.npz (accuracy 0.75 for tiny.onnx) in ``folder``."""
    model = tiny_classifier(folder / "tiny.onnx")
    (folder / "broken.onnx").write_bytes(b"this is not an onnx file")
    dataset_with_accuracy(model, folder / "eval.npz")
    return model


def tiny_torch_module(hidden: int = 8):
    """A torch factory for manifests: 'tests.test_profiler_fixtures:tiny_torch_module'."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))


def misbehaving_torch_module(how: str):
    """A torch factory whose forward pass crashes the process ('segfault') or never returns ('hang'),
    as a broken runtime or custom op would: 'tests.test_profiler_fixtures:misbehaving_torch_module'."""
    import os
    import signal
    import time

    import torch

    class Misbehaving(torch.nn.Module):
        def forward(self, x):
            if how == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)
            return x

    return Misbehaving()


def torch_module_failing_above(max_batch: int):
    """A torch factory whose forward pass raises for batches larger than ``max_batch`` (as an out-of-
    memory error would): 'tests.test_profiler_fixtures:torch_module_failing_above'."""
    import torch

    class Limited(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] > max_batch:
                raise RuntimeError(f"out of memory at batch {x.shape[0]}")
            return x * 2.0

    return Limited()
