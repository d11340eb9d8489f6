"""The one compiled part of the package: the simulator's batching kernel, built ahead of time.

Everything else about the package is in pyproject.toml. planner/sim/aot.py says what is compiled
and why; it is loaded by path because the package's own dependencies are not installed yet.
"""

import importlib.util
from pathlib import Path

from setuptools import setup

_spec = importlib.util.spec_from_file_location("_pipeplan_aot", Path(__file__).parent / "planner" / "sim" / "aot.py")
_aot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_aot)

try:
    _extensions = [_aot.extension()]
except ImportError as exc:  # a numba without its ahead-of-time compiler (pycc): the simulator uses the JIT
    import warnings

    warnings.warn(f"the simulator's kernel is not compiled ahead of time ({exc}); numba's JIT will compile it")
    _extensions = []

setup(ext_modules=_extensions)
