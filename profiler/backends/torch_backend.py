"""torch backend: a module from a factory, on CPU (``torch.set_num_threads``) or CUDA (timed with
CUDA events, so the latency is the device's, not the host's launch time)."""

from __future__ import annotations

import importlib
import time
from typing import Any

import numpy as np

from profiler.errors import VariantError
from profiler.manifest import Device, HardwareSetting


def build_module(factory: str, kwargs: dict[str, Any]):
    """Import 'package.module:function' and call it with kwargs."""
    module_name, _, function_name = factory.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise VariantError(f"torch factory '{factory}' cannot be imported ({exc}); check the module path.") from None
    return function(**kwargs)


class TorchModel:
    """A torch.nn.Module in eval mode on one hardware setting."""

    def __init__(self, module: Any, setting: HardwareSetting, half: bool = False) -> None:
        import torch

        self._torch = torch
        if setting.device is Device.CUDA:
            if not torch.cuda.is_available():
                raise VariantError(f"hardware '{setting.name}' asks for CUDA but torch sees no GPU.")
            self._device = torch.device("cuda")
        else:
            if half:
                raise VariantError("fp16 variants run on CUDA only; CPU half precision is emulated and slow.")
            torch.set_num_threads(setting.threads)
            self._device = torch.device("cpu")
        self._half = half
        self._module = module.eval().to(self._device)
        if half:
            self._module = self._module.half()

    def _tensor(self, batch: np.ndarray):
        tensor = self._torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)
        return tensor.half() if self._half and tensor.is_floating_point() else tensor

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        with self._torch.inference_mode():
            out = self._module(self._tensor(batch))
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().cpu().numpy() for o in outputs]

    def timed_run(self, batch: np.ndarray) -> float:
        torch = self._torch
        with torch.inference_mode():
            if self._device.type == "cuda":
                x = self._tensor(batch)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self._module(x)
                end.record()
                end.synchronize()
                return float(start.elapsed_time(end))
            begin = time.perf_counter()
            self._module(self._tensor(batch))
            return (time.perf_counter() - begin) * 1000.0

    def close(self) -> None:
        self._module = None
