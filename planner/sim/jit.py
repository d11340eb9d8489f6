"""The numba twin of planner.sim.kernel.fifo_windows: the same source, compiled.

numba is a core dependency; it is still imported only when a simulation first needs it (importing
it costs ~0.2 s that other commands should not pay), and the interpreted kernel runs where numba
is missing. The compiled kernel is cached on disk (``cache=True``), so only the first run after an
install pays the compile (~1-2 s). The same arithmetic in the same order gives bit-identical
results; tests hold the two to it.
"""

from __future__ import annotations

import importlib.util

from planner.sim import kernel

AVAILABLE = importlib.util.find_spec("numba") is not None
_compiled = None


def fifo_windows():
    """The compiled kernel (compiled, or loaded from numba's on-disk cache, on first use)."""
    global _compiled
    if _compiled is None:
        import numba

        _compiled = numba.njit(cache=True, nogil=True)(kernel.fifo_windows)
    return _compiled
