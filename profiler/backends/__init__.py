"""Backends: load a variant on a hardware setting, run a batch, time it.

torch and onnxruntime are imported inside the backend modules only, so ``import profiler`` stays
light. Every loaded model offers the same small interface, :class:`LoadedModel`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class LoadedModel(Protocol):
    """A variant ready to run on one hardware setting."""

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; outputs as numpy arrays on the host."""

    def timed_run(self, batch: np.ndarray) -> float:
        """Run one batch and return its latency in milliseconds (device-synchronised)."""

    def close(self) -> None:
        """Release the session / module."""


