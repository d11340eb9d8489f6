"""Optional numba-compiled kernels of planner.sim.fast (used when numba is installed).

The same arithmetic as the pure-Python kernels, in the same order (sums, comparisons and one
``exp`` per batch), so results are identical to the last bit; tests hold them to it. numba is an
optional dependency: without it the pure-Python kernels run, about 3x slower.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

# numba is optional, and imported only when a simulation first needs it (importing it costs ~1 s,
# which every other pipeplan command should not pay).
AVAILABLE = importlib.util.find_spec("numba") is not None
_compiled = None


def _heap_replace(heap: np.ndarray, value: float) -> None:
    """Replace the smallest element of a binary min-heap and restore the heap property."""
    size = heap.size
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and heap[right] < heap[left]:
            child = right
        if heap[child] < value:
            heap[i] = heap[child]
            i = child
        else:
            break
    heap[i] = value


def _service(kind: int, base: np.ndarray, sigma: np.ndarray, draws: np.ndarray, m: int, p: int) -> float:
    if kind == 0:
        return base[m] * math.exp(sigma[m] * draws[p])
    if kind == 1:
        return base[m] * draws[p]
    return base[m]


def _fifo(arr, deadline, use_deadline, draws, draw_pos, base, sigma, b, timeout, servers, kind,
          takes, starts, ends, item_batch):
    """Both kernels in one: returns the number of batches; fills takes/starts/ends (and item_batch)."""
    n = arr.size
    free = np.zeros(servers)
    count = 0
    s = 0
    while s < n:
        a_s = arr[s]
        j = s + b - 1
        trigger = a_s + timeout
        if j < n and arr[j] < trigger:
            trigger = arr[j]
        t = free[0]
        if trigger > t:
            t = trigger
        first = -1
        m = 0
        i = s
        if use_deadline:
            while i < n and m < b and arr[i] <= t:
                if deadline[i] > t:
                    item_batch[i] = count
                    if first < 0:
                        first = i
                    m += 1
                i += 1
            s = i
            if m == 0:
                continue
        else:
            while i < n and i < s + b and arr[i] <= t:
                i += 1
            m = i - s
            first = s
            s = i
        service = _service(kind, base, sigma, draws, m, draw_pos[first])
        end = t + service
        _heap_replace(free, end)
        takes[count] = m
        starts[count] = t
        ends[count] = end
        count += 1
    return count


def _kernel():
    """The compiled kernel (compiled, or loaded from numba's cache, on first use)."""
    global _compiled, _heap_replace, _service
    if _compiled is None:
        import numba

        # _fifo calls these by their global names, so compile them first and rebind.
        _heap_replace = numba.njit(cache=True)(_heap_replace)
        _service = numba.njit(cache=True)(_service)
        _compiled = numba.njit(cache=True)(_fifo)
    return _compiled


def fifo(arr: np.ndarray, deadline: np.ndarray | None, draws: np.ndarray, draw_pos: np.ndarray,
         base: tuple[float, ...], sigma: tuple[float, ...], batch_size: int, timeout_ms: float, servers: int,
         kind: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(items per batch, starts, ends, batch of each item or -1) for one FIFO queue; needs numba."""
    n = arr.size
    takes = np.empty(n, dtype=np.int64)
    starts = np.empty(n)
    ends = np.empty(n)
    item_batch = np.full(n, -1, dtype=np.int64)
    use_deadline = deadline is not None
    count = _kernel()(np.ascontiguousarray(arr, dtype=np.float64),
                  np.ascontiguousarray(deadline if use_deadline else arr, dtype=np.float64), use_deadline,
                  np.ascontiguousarray(draws if draws.size else np.zeros(1), dtype=np.float64),
                  np.ascontiguousarray(draw_pos, dtype=np.int64), np.asarray(base, dtype=np.float64),
                  np.asarray(sigma, dtype=np.float64), batch_size, float(timeout_ms), servers, kind,
                  takes, starts, ends, item_batch)
    if not use_deadline:
        item_batch = np.repeat(np.arange(count, dtype=np.int64), takes[:count])
    return takes[:count], starts[:count], ends[:count], item_batch
