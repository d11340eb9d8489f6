"""The onnxruntime backend's CUDA path: run where onnxruntime-gpu and a GPU exist, a clear error elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.errors import VariantError
from profiler.manifest import HardwareSetting
from tests.fixtures import tiny_setup

pytest.importorskip("onnx", reason="building test models needs onnx (the 'profile' extra)")


@pytest.mark.gpu
def test_onnxruntime_cuda_provider(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu with a CUDA GPU")
    from profiler.backends.onnxruntime_backend import OrtModel

    model = OrtModel(tiny_setup(tmp_path), HardwareSetting(name="gpu", device="cuda"), "input")
    assert model.timed_run(np.zeros((8, 4), dtype=np.float32)) > 0


def test_onnxruntime_cuda_setting_without_provider_is_a_variant_error(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    from profiler.backends.onnxruntime_backend import OrtModel

    with pytest.raises(VariantError, match="CUDAExecutionProvider"):
        OrtModel(tiny_setup(tmp_path), HardwareSetting(name="gpu", device="cuda"), "input")
