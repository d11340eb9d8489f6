"""The compiled twin of planner.sim.kernel.fifo_windows: the same source, compiled.

Two ways to the compiled kernel, the first that is there:

1. built ahead of time at install (planner.sim.aot: ``planner.sim._kernel_aot``); loading it costs
   milliseconds and needs no numba. Used only while it was built from the kernel.py now installed.
2. numba's JIT (``cache=True``): numba is a core dependency, imported only when a simulation first
   needs it (import plus loading the cached kernel cost ~0.45 s of CPU that other commands should not
   pay); only the first run after an install or a kernel edit pays the compile (~1-2 s).

The interpreted kernel runs where neither is there. The same arithmetic in the same order gives
bit-identical results; tests hold all three to it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from planner.sim import aot, kernel

log = logging.getLogger(__name__)

AVAILABLE = importlib.util.find_spec(aot.MODULE) is not None or importlib.util.find_spec("numba") is not None
_compiled = None


def fifo_windows():
    """The compiled kernel (loaded, or compiled by numba, on first use)."""
    global _compiled
    if _compiled is None:
        _compiled = ahead_of_time() or numba_jit()
    return _compiled


def ahead_of_time():
    """The kernel compiled at install, or None where it was not built or was built from another kernel.py."""
    try:
        module = importlib.import_module(aot.MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != aot.MODULE:
            raise
        return None
    if module.source_digest() != aot.kernel_digest():
        log.warning("%s was built from another version of planner/sim/kernel.py; using numba's JIT instead "
                    "(reinstall pipeplan, e.g. pip install -e ., to rebuild it).", aot.MODULE)
        return None
    return module.fifo_windows


def numba_jit():
    """The kernel compiled by numba (or loaded from numba's on-disk cache)."""
    import numba

    return numba.njit(cache=True, nogil=True)(kernel.fifo_windows)
