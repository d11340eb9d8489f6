"""The batching kernel compiled ahead of time: built into ``planner.sim._kernel_aot`` at install.

setup.py calls :func:`extension` while ``pip install .`` builds the package: numba's ahead-of-time
compiler (``numba.pycc``) compiles planner/sim/kernel.py's ``fifo_windows`` for the one signature
the engine calls it with (:data:`SIGNATURE`) into a plain extension module. Loading that module at
run time takes milliseconds and needs no numba; loading numba and its on-disk cache instead costs
~0.45 s of CPU per process (numba's import and its target context, which imports all its NumPy
lowering and scipy.linalg), most of a ``pipeplan simulate`` run. It is the same source compiled by
the same LLVM, so the results are bit-identical to the interpreted and the JIT kernels (tested).

The module also answers :func:`kernel_digest` of the source it was built from: planner.sim.jit uses
it only while it matches kernel.py (an editable install whose kernel was edited after the build
falls back to the JIT). This module imports nothing heavy: setup.py loads it by path, before the
package's dependencies are installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

MODULE = "planner.sim._kernel_aot"
_KERNEL_PY = Path(__file__).with_name("kernel.py")
# fifo_windows' arguments as planner.sim.engine.queue_batches passes them (contiguous 1-D arrays).
SIGNATURE = ("i8(f8[::1], f8[::1], b1, f8[::1], i8, i8, i8, i8[::1], f8[::1], f8[::1], f8[::1], i8, i8[::1], "
             "f8[::1], f8[::1], i8[::1], f8[::1], f8[::1], f8[::1], i4[::1], f8[::1], f8[::1], i4[::1], i4[::1], "
             "f8[::1], f8[::1], i8[::1])")


def kernel_digest() -> int:
    """The first 63 bits of SHA-256 over kernel.py's bytes (fits numba's int64)."""
    return int.from_bytes(hashlib.sha256(_KERNEL_PY.read_bytes()).digest()[:8], "big") >> 1


def extension():
    """The setuptools Extension of :data:`MODULE` (setup.py; needs numba and a C compiler).

    ``optional``: where it cannot be built (no C compiler) the install goes on without it, and the
    simulator uses numba's JIT.
    """
    import warnings

    spec = importlib.util.spec_from_file_location("planner.sim.kernel", _KERNEL_PY)
    kernel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel)
    with warnings.catch_warnings():
        # pycc is numba's ahead-of-time compiler; numba marks it pending deprecation (no replacement yet).
        warnings.filterwarnings("ignore", message="The 'pycc' module is pending deprecation")
        from numba.pycc import CC

    digest = kernel_digest()

    def source_digest():
        return digest

    compiler = CC(MODULE.rpartition(".")[2], source_module=kernel)  # named planner.sim._kernel_aot
    compiler.export("fifo_windows", SIGNATURE)(kernel.fifo_windows)
    compiler.export("source_digest", "i8()")(source_digest)
    return compiler.distutils_extension(optional=True)
