"""The fast engine: the pipeline simulated stage by stage in topological order.

A stage's input is fully known once its parents are simulated (each request's ready time is the
latest completion among its parents), and a FIFO batching queue dispatches batches in FIFO order at
non-decreasing times, each to the replica that frees first. So each stage reduces to one tight loop
over batches: with ``s`` the oldest waiting item and ``R`` the earliest free replica, the next batch
starts at ``t = max(R, min(a[s + b - 1], a[s] + timeout))`` and takes the items that have arrived by
``t``, at most ``b``. That is exactly the batching rule of planner.estimate.latency (a free replica takes
``b`` items once ``b`` wait, otherwise when the oldest has waited the timeout), and the reference
event loop (planner.sim.events) reproduces it event by event.

The loop runs in pure Python below, or compiled by numba (planner.sim.jit) when it is installed;
the two give identical results. Everything around the loop is vectorised numpy.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right

import numpy as np

from planner.sim import jit
from planner.sim.config import Prepared, QueueMode, RawRun, ServiceModel, StageModel, StageRun

_LOG, _EXP, _DET = 0, 1, 2


def _kind(service: ServiceModel) -> int:
    return {ServiceModel.LOGNORMAL: _LOG, ServiceModel.EXPONENTIAL: _EXP}.get(service, _DET)


def batch_due_ms(arr: list[float], s: int, n: int, b: int, timeout_ms: float) -> float:
    """When the batch headed by item ``s`` is due: its b-th item arrives or the head has waited the timeout."""
    due = arr[s] + timeout_ms
    j = s + b - 1
    if j < n and arr[j] < due:
        due = arr[j]
    return due


def batch_stop(arr: list[float], s: int, n: int, b: int, t: float) -> int:
    """One past the last item of a batch dispatched at ``t``: the items arrived by then, at most ``b``."""
    j = s + b - 1
    if j < n and arr[j] <= t:
        return j + 1
    return bisect_right(arr, t, s, j + 1 if j < n else n)


def service_ms(kind: int, base: tuple[float, ...], sigma: tuple[float, ...], draws: list[float], m: int,
               p: int) -> float:
    """Service time of an m-item batch whose random draw is ``draws[p]`` (the jit kernel mirrors this)."""
    if kind == _LOG:
        return base[m] * math.exp(sigma[m] * draws[p])
    if kind == _EXP:
        return base[m] * draws[p]
    return base[m]


def fifo_batches(arr: list[float], draws: list[float], draw_pos: list[int] | None, stage: StageModel,
                 servers: int, kind: int) -> tuple[list[int], list[float], list[float]]:
    """Batches of a FIFO queue with ``servers`` replicas and no drops: (items per batch, starts, ends).

    Batches are contiguous runs of ``arr`` (sorted ready times). A batch's service draw is the one
    at its first item's position (``draw_pos`` maps local to stage positions when the queue holds a
    subset of the stage's items).
    """
    n = len(arr)
    b, timeout = stage.batch_size, stage.batch_timeout_ms
    base, sigma = stage.base_ms, stage.sigma
    free = [0.0] * servers  # a heap of the times replicas become free
    takes: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    s = 0
    while s < n:
        t = max(free[0], batch_due_ms(arr, s, n, b, timeout))
        e = batch_stop(arr, s, n, b, t)
        m = e - s
        p = s if draw_pos is None else draw_pos[s]
        end = t + service_ms(kind, base, sigma, draws, m, p)
        if servers == 1:
            free[0] = end
        else:
            heapq.heapreplace(free, end)
        takes.append(m)
        starts.append(t)
        ends.append(end)
        s = e
    return takes, starts, ends


def fifo_batches_deadlines(arr: list[float], deadline: list[float], draws: list[float], draw_pos: list[int] | None,
                           stage: StageModel, servers: int, kind: int
                           ) -> tuple[list[int], list[float], list[float], list[int]]:
    """As :func:`fifo_batches`, with request deadlines: (items per batch, starts, ends, batch of each item or -1).

    Drops are lazy: an expired item stays queued (and counts toward filling a batch) until a replica
    dequeues it at time t >= its deadline; then it is discarded and the batch fills from the items behind.
    """
    n = len(arr)
    b, timeout = stage.batch_size, stage.batch_timeout_ms
    base, sigma = stage.base_ms, stage.sigma
    free = [0.0] * servers
    takes: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    item_batch = [-1] * n
    s = 0
    while s < n:
        t = max(free[0], batch_due_ms(arr, s, n, b, timeout))
        batch = len(takes)
        first = -1
        m = 0
        i = s
        while i < n and m < b and arr[i] <= t:
            if deadline[i] > t:
                item_batch[i] = batch
                if first < 0:
                    first = i
                m += 1
            i += 1
        s = i
        if m == 0:
            continue  # everything dequeued had expired; the replica stays free
        p = first if draw_pos is None else draw_pos[first]
        end = t + service_ms(kind, base, sigma, draws, m, p)
        if servers == 1:
            free[0] = end
        else:
            heapq.heapreplace(free, end)
        takes.append(m)
        starts.append(t)
        ends.append(end)
    return takes, starts, ends, item_batch


def _serve(prep: Prepared, stage_index: int, ready: np.ndarray, deadline: np.ndarray | None, use_jit: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run one stage's queue(s) on sorted ready times: per item batch index, and per batch takes/starts/ends."""
    stage = prep.stages[stage_index]
    kind = _kind(prep.service)
    n = ready.size
    if prep.queue_mode is QueueMode.CENTRAL or stage.replicas == 1:
        groups = [(None, stage.replicas)]
    else:
        groups = [(np.arange(r, n, stage.replicas), 1) for r in range(stage.replicas)]
    draws_array = prep.service_draws[stage_index]
    draws = draws_array.tolist() if kind != _DET and not use_jit else []
    item_batch = np.empty(n, dtype=np.int64)
    takes_all, starts_all, ends_all = [], [], []
    offset = 0
    for positions, servers in groups:
        arr = ready if positions is None else ready[positions]
        dl = None if deadline is None else (deadline if positions is None else deadline[positions])
        if use_jit:
            pos = np.arange(n) if positions is None else positions
            takes, starts, ends, local = jit.fifo(arr, dl, draws_array, pos, stage.base_ms, stage.sigma,
                                                  stage.batch_size, stage.batch_timeout_ms, servers, kind)
            local = np.where(local >= 0, local + offset, -1)
        elif dl is None:
            pos = None if positions is None else positions.tolist()
            takes, starts, ends = fifo_batches(arr.tolist(), draws, pos, stage, servers, kind)
            local = np.repeat(np.arange(len(takes), dtype=np.int64), takes) + offset
        else:
            pos = None if positions is None else positions.tolist()
            takes, starts, ends, batch_of = fifo_batches_deadlines(arr.tolist(), dl.tolist(), draws, pos, stage,
                                                                   servers, kind)
            local = np.asarray(batch_of, dtype=np.int64)
            local = np.where(local >= 0, local + offset, -1)
        if positions is None:
            item_batch[:] = local
        else:
            item_batch[positions] = local
        takes_all.append(np.asarray(takes, dtype=np.int64))
        starts_all.append(np.asarray(starts, dtype=np.float64))
        ends_all.append(np.asarray(ends, dtype=np.float64))
        offset += len(takes)
    return item_batch, np.concatenate(takes_all), np.concatenate(starts_all), np.concatenate(ends_all)


def stage_items(prep: Prepared, j: int, arrival: np.ndarray, completion: list[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stage ``j``'s input: (ready time of each request, requests that reach it, their item counts,
    request of each item, ready time of each item), items in queue order.

    A request is ready at a stage when its latest parent completes (NaN, dropped upstream,
    propagates and the request sends no items); it brings ``items_per_request`` items.
    """
    stage = prep.stages[j]
    if stage.parents:
        ready_req = completion[stage.parents[0]]
        for p in stage.parents[1:]:
            ready_req = np.maximum(ready_req, completion[p])
    else:
        ready_req = arrival
    reqs = np.flatnonzero(~np.isnan(ready_req))
    counts = prep.items_per_request[j][reqs]
    item_req = np.repeat(reqs, counts)
    item_ready = ready_req[item_req]
    # Items are laid out by (request, item); a stable sort by ready time keeps that order for ties.
    if item_ready.size > 1 and np.any(item_ready[1:] < item_ready[:-1]):
        order = np.argsort(item_ready, kind="stable")
        item_req, item_ready = item_req[order], item_ready[order]
    return ready_req, reqs, counts, item_req, item_ready


def run_fast(prep: Prepared, use_jit: bool | None = None) -> RawRun:
    """Simulate every stage in topological order; returns what each stage did.

    ``use_jit``: run the numba-compiled kernels (default: when numba is installed). Both kernels
    give identical results.
    """
    use_jit = jit.AVAILABLE if use_jit is None else use_jit
    if use_jit and not jit.AVAILABLE:
        raise RuntimeError("use_jit=True needs numba; install it (pip install numba) or pass use_jit=False")
    arrival = prep.arrival_ms
    n = arrival.size
    completion: list[np.ndarray] = []
    runs: list[StageRun] = []
    for j, stage in enumerate(prep.stages):
        ready_req, reqs, counts, item_req, item_ready = stage_items(prep, j, arrival, completion)
        deadline = None
        if prep.request_timeout_ms is not None:
            deadline = arrival[item_req] + prep.request_timeout_ms
        item_batch, takes, b_start, b_end = _serve(prep, j, item_ready, deadline, use_jit)
        served = item_batch >= 0
        safe = np.where(served, item_batch, 0)
        start = np.where(served, b_start[safe] if b_start.size else 0.0, np.nan)
        end = np.where(served, b_end[safe] if b_end.size else 0.0, np.nan)
        done = np.full(n, np.nan)
        done[reqs] = ready_req[reqs]  # requests sending no items pass straight through
        if counts.size and counts.min() == 1 and counts.max() == 1:
            done[item_req] = end  # one item per request: its end is the request's (NaN if dropped)
        else:
            done[item_req] = -np.inf
            np.fmax.at(done, item_req, end)  # fmax ignores NaN: drops are marked below
        dropped_req = item_req[~served]
        done[dropped_req] = np.nan
        completion.append(done)
        runs.append(StageRun(item_req, item_ready, start, end, item_batch, b_start, b_end, takes, done))
    final = completion[prep.sinks[0]]
    for s in prep.sinks[1:]:
        final = np.maximum(final, completion[s])
    return RawRun(tuple(runs), final)
