"""What a run did: per-stage tallies (always), per-item detail (only when asked), completions.

A stage's tally is taken as soon as the stage is simulated, so the engine keeps per-item arrays of
one stage at a time; only the per-request completion columns a later stage or the summary needs
stay alive. Quantiles are exact (``inverted_cdf`` over the float64 columns while they exist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StageRun:
    """What one stage did, items in the stage's FIFO order (ties: request, then item index)."""

    request: np.ndarray  # request index of each item
    ready_ms: np.ndarray  # when the item joined the queue
    start_ms: np.ndarray  # when its batch started (NaN: dropped)
    end_ms: np.ndarray  # when its batch finished (NaN: dropped)
    batch: np.ndarray  # batch index (-1: dropped)
    batch_start_ms: np.ndarray
    batch_end_ms: np.ndarray
    batch_items: np.ndarray
    completion_ms: np.ndarray  # per request: all its items done here (NaN: never reached or dropped)


@dataclass(frozen=True)
class StageTally:
    """One stage's totals, enough for planner.sim.result.StageStats once the run's span is known."""

    items: int
    dropped_items: int
    batches: int
    mean_batch_size: float
    max_batch_size: int
    busy_ms: float  # sum over batches of (end - start)
    wait_sum_ms: float  # sum over served items of (batch start - ready)
    mean_wait_ms: float
    p99_wait_ms: float
    p99_latency_ms: float  # request's time at the stage (ready -> all its items done)
    last_end_ms: float  # the stage's last batch end (-inf: no batch)


@dataclass(frozen=True)
class RawRun:
    tallies: tuple[StageTally, ...]  # topological order
    completion_ms: np.ndarray  # per request: every sink done (NaN: dropped)
    stages: tuple[StageRun, ...] | None = None  # per-item detail, when the engine was asked to keep it


def quantile_rank(n: int, q: float) -> int:
    """The 0-based rank of the ``inverted_cdf`` q-quantile of n values: ``ceil(n q) - 1``, clipped at 0,
    computed as numpy computes it (``i = n q - 1``; ``floor(i)`` when i is whole, else ``floor(i) + 1``)."""
    index = n * q - 1.0
    previous = math.floor(index)
    return max(previous if index - previous == 0 else previous + 1, 0)


_SAMPLE = 4096  # about this many values estimate where a high quantile lies


def quantile(values: np.ndarray, q: float, overwrite: bool = False) -> float:
    """The smallest value with at least a share q at or below it (so p99 <= SLO iff 99% meet it).

    Exactly ``np.quantile(values, q, method="inverted_cdf")`` (NaN if any value is NaN), without
    partitioning the whole column for a high quantile. With k = :func:`quantile_rank` and a
    threshold t read off a strided sample a little below the sample's own q-quantile: if the
    c values below t number at most k, the k-th smallest value is the (k - c)-th smallest of the
    values >= t, a short tail; otherwise (a sample that misled) the whole column is partitioned.
    The sample decides only the speed, never the answer.

    ``overwrite``: the whole-column partition may reorder ``values`` in place (the caller is done
    with its order).
    """
    n = values.size
    if n == 0:
        return math.nan
    if math.isnan(values.max()):
        return math.nan
    k = quantile_rank(n, q)
    step = n // _SAMPLE
    if step >= 4 and n - k <= n // 8:
        sample = values[::step].copy()
        # 4 standard deviations of the sample's rank error below the sample's own rank of the quantile
        j = int(k / step - 4.0 * math.sqrt(sample.size * (1.0 - q) + 1.0)) - 1
        if 0 < j < sample.size:
            sample.partition(j)
            tail = values[values >= sample[j]]
            below = n - tail.size
            if below <= k:
                r = k - below
                tail.partition(r)
                return float(tail[r])
    column = values if overwrite else values.copy()
    column.partition(k)
    return float(column[k])


@dataclass(frozen=True)
class WaitTally:
    """The served items' waits (batch start - ready): what a tally needs of the per-item arrays."""

    served: int
    sum_ms: float
    mean_ms: float
    p99_ms: float


def wait_tally(ready_ms: np.ndarray, item_batch: np.ndarray, batch_start_ms: np.ndarray) -> WaitTally:
    """Waits of the items with a batch (``item_batch >= 0``); exact p99."""
    served = item_batch >= 0
    count = int(np.count_nonzero(served))
    if count < item_batch.size:
        wait = batch_start_ms[item_batch[served]] - ready_ms[served]
    else:
        wait = batch_start_ms[item_batch] if batch_start_ms.size else np.empty(0)
        wait -= ready_ms
    del served
    sum_ms = float(wait.sum())
    mean_ms = float(wait.mean()) if wait.size else math.nan
    return WaitTally(count, sum_ms, mean_ms, quantile(wait, 0.99, overwrite=True))


def tally(waits: WaitTally, items: int, batch_start_ms: np.ndarray, batch_end_ms: np.ndarray,
          batch_items: np.ndarray, ready_req_ms: np.ndarray, completion_ms: np.ndarray) -> StageTally:
    """A stage's tally from its waits, item count, batches and per-request ready/completion times."""
    done = ~np.isnan(completion_ms)
    if done.all():  # nothing dropped: no selection (the same values, in the same order)
        sojourn = completion_ms - ready_req_ms
    else:
        sojourn = completion_ms[done]
        sojourn -= ready_req_ms[done]
    del done
    return StageTally(
        items=items, dropped_items=items - waits.served, batches=int(batch_items.size),
        mean_batch_size=float(batch_items.mean()) if batch_items.size else math.nan,
        max_batch_size=int(batch_items.max()) if batch_items.size else 0,
        busy_ms=float(np.sum(batch_end_ms - batch_start_ms)),
        wait_sum_ms=waits.sum_ms, mean_wait_ms=waits.mean_ms, p99_wait_ms=waits.p99_ms,
        p99_latency_ms=quantile(sojourn, 0.99, overwrite=True),
        last_end_ms=float(batch_end_ms.max()) if batch_end_ms.size else -math.inf,
    )
