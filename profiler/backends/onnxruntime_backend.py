"""onnxruntime backend: CPU execution provider with ``intra_op_num_threads`` as the hardware
setting, CUDA execution provider when the device is cuda and the provider exists."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from profiler.errors import VariantError
from profiler.manifest import Device, HardwareSetting


class OrtModel:
    """An onnxruntime InferenceSession pinned to one hardware setting."""

    def __init__(self, path: Path, setting: HardwareSetting, input_name: str | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = setting.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        if setting.device is Device.CUDA:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise VariantError(f"hardware '{setting.name}' asks for CUDA but this onnxruntime has no "
                                   "CUDAExecutionProvider; install onnxruntime-gpu on a GPU machine.")
            providers = ["CUDAExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise VariantError(f"{path}: onnxruntime cannot load the model ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}).") from None
        names = [i.name for i in self._session.get_inputs()]
        if input_name is not None and input_name not in names:
            raise VariantError(f"{path}: the manifest names input '{input_name}', the model has {names}.")
        self.input_name = input_name or names[0]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self.input_name: batch})

    def timed_run(self, batch: np.ndarray) -> float:
        # Outputs are copied to the host before run() returns, so wall time is synchronised.
        start = time.perf_counter()
        self._session.run(None, {self.input_name: batch})
        return (time.perf_counter() - start) * 1000.0

    def close(self) -> None:
        self._session = None
