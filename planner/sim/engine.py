"""The stage-by-stage engine: the pipeline simulated stage by stage in topological order.

A stage's input is fully known once its parents are simulated: a request is ready at a stage when
its latest parent completes (NaN, dropped upstream, propagates and the request sends no items), and
brings ``items_per_request`` items. Each queue of the stage is then batched by the one kernel
(planner.sim.kernel, compiled by planner.sim.jit when numba is present), with the stage's replica
windows; the plain simulator runs the plan's constant windows. A request is done at a stage when
all its items are (dropped if any item was), and done overall when every sink is.

Memory: per-item arrays live for one stage at a time (the stage is tallied at once); a parent's
per-request completion column is released when its last child has read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import SpecError
from planner.sim import jit, kernel
from planner.sim.config import Prepared, QueueMode, Schedule, ServiceModel, StageModel, StageSchedule, stage_draws
from planner.sim.run import RawRun, StageRun, StageTally, tally, wait_tally

_KIND = {ServiceModel.LOGNORMAL: kernel.LOGNORMAL, ServiceModel.EXPONENTIAL: kernel.EXPONENTIAL,
         ServiceModel.DETERMINISTIC: kernel.DETERMINISTIC}


@dataclass(frozen=True)
class Batches:
    """What one stage's queues did: per item its batch (-1: dropped), per batch items/start/end/window."""

    item_batch: np.ndarray  # int32
    takes: np.ndarray  # int32
    start_ms: np.ndarray
    end_ms: np.ndarray
    window: np.ndarray  # int32, index into the stage's windows
    last_end_ms: np.ndarray  # per window: end of its last batch (-inf: never served)


@dataclass(frozen=True)
class MeteredBatches:
    """The batches a stage ran on windows of metered (per-use billed) configurations."""

    window: np.ndarray  # int32, index into the stage's windows
    start_ms: np.ndarray
    end_ms: np.ndarray
    items: np.ndarray  # int32

    @staticmethod
    def empty() -> "MeteredBatches":
        return MeteredBatches(np.empty(0, np.int32), np.empty(0), np.empty(0), np.empty(0, np.int32))


@dataclass(frozen=True)
class ScheduleRun:
    """What the replicas did: per stage, the window of each batch and when each window last finished."""

    raw: RawRun
    stage_names: tuple[str, ...]  # topological order, as in the per-stage tuples below
    batch_window: tuple[np.ndarray, ...]  # per stage (topological order), window of each batch
    last_end_ms: tuple[np.ndarray, ...]  # per stage, per window: end of its last batch (-inf: never served)
    metered: tuple[MeteredBatches, ...] = ()  # per stage: batches on per-use billed windows (empty if none)


def _tables(configs: tuple[StageModel, ...]) -> tuple[list[int], list[float], list[float], list[float], int]:
    width = max(c.batch_size for c in configs) + 1
    base = [0.0] * (width * len(configs))
    sigma = [0.0] * (width * len(configs))
    for c, cfg in enumerate(configs):
        base[c * width: c * width + len(cfg.base_ms)] = cfg.base_ms
        sigma[c * width: c * width + len(cfg.sigma)] = cfg.sigma
    return [c.batch_size for c in configs], [c.batch_timeout_ms for c in configs], base, sigma, width


def queue_batches(arr: np.ndarray, deadline: np.ndarray | None, draws: np.ndarray, pos0: int, stride: int,
                  kind: int, schedule: StageSchedule, use_jit: bool) -> Batches:
    """Run the kernel over one queue (sorted ready times ``arr``) served by ``schedule``'s windows."""
    n, n_windows = arr.size, len(schedule.replicas)
    sizes, timeouts, base, sigma, width = _tables(schedule.configs)
    windows = schedule.replicas
    order = sorted(range(n_windows), key=lambda w: (windows[w].ready_ms, w))
    # per item batch index: the kernel writes it only with deadlines (otherwise it follows from takes)
    item_batch = np.full(n if deadline is not None else 0, -1, dtype=np.int32)
    win = ([w.config for w in windows], [w.ready_ms for w in windows], [w.stop_ms for w in windows], order)
    cold = [c.cold_start_ms for c in schedule.configs]
    warm = [c.keep_warm_ms for c in schedule.configs]
    spill = [c.spill_ms for c in schedule.configs]
    if use_jit:
        f64 = np.float64
        takes, owner = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
        starts, ends = np.empty(n), np.empty(n)
        last_end, free, active = np.empty(n_windows), np.empty(n_windows), np.empty(n_windows, dtype=np.int64)
        count = jit.fifo_windows()(
            np.ascontiguousarray(arr, dtype=f64), np.ascontiguousarray(arr if deadline is None else deadline, dtype=f64),
            deadline is not None, np.ascontiguousarray(draws if draws.size else np.zeros(1), dtype=f64), pos0, stride,
            kind, np.asarray(sizes, dtype=np.int64), np.asarray(timeouts, dtype=f64), np.asarray(base, dtype=f64),
            np.asarray(sigma, dtype=f64), width, np.asarray(win[0], dtype=np.int64), np.asarray(win[1], dtype=f64),
            np.asarray(win[2], dtype=f64), np.asarray(order, dtype=np.int64), np.asarray(cold, dtype=f64),
            np.asarray(warm, dtype=f64), np.asarray(spill, dtype=f64), takes, starts, ends, owner, item_batch,
            last_end, free, active)
    else:
        takes, owner, starts, ends = [0] * n, [0] * n, [0.0] * n, [0.0] * n
        last_end, free, active = [0.0] * n_windows, [0.0] * n_windows, [0] * n_windows
        batch_of = [-1] * n if deadline is not None else []
        count = kernel.fifo_windows(
            arr.tolist(), [] if deadline is None else deadline.tolist(), deadline is not None, draws.tolist(), pos0,
            stride, kind, sizes, timeouts, base, sigma, width, *win, cold, warm, spill, takes, starts, ends, owner, batch_of, last_end,
            free, active)
        if deadline is not None:
            item_batch = np.asarray(batch_of, dtype=np.int32)
    if count < 0:
        raise SpecError(f"schedule of stage '{schedule.stage}': no replica can serve items waiting from "
                        f"{float(arr[-1 - count]):.1f} ms (every window has stopped); keep at least one replica "
                        "without a stop time.")
    takes_a = np.array(takes[:count], dtype=np.int32)  # copies: the n-long buffers are released
    if deadline is None:
        item_batch = np.repeat(np.arange(count, dtype=np.int32), takes_a)
    return Batches(item_batch, takes_a, np.array(starts[:count], dtype=np.float64),
                   np.array(ends[:count], dtype=np.float64), np.array(owner[:count], dtype=np.int32),
                   np.array(last_end, dtype=np.float64))


def serve_stage(prep: Prepared, j: int, schedule: StageSchedule, ready: np.ndarray, deadline: np.ndarray | None,
                draws: np.ndarray, use_jit: bool) -> Batches:
    """One stage's queue(s) on sorted ready times: one central queue, or one queue per replica window."""
    kind = _KIND[prep.service]
    if prep.queue_mode is QueueMode.CENTRAL or len(schedule.replicas) == 1:
        return queue_batches(ready, deadline, draws, 0, 1, kind, schedule, use_jit)
    if not schedule.constant:
        raise SpecError(f"schedule of stage '{schedule.stage}': per-replica queues need every replica ready at 0 "
                        "and never stopped; use queue_mode=central for time-varying replicas.")
    groups = len(schedule.replicas)
    parts = []
    for r, window in enumerate(schedule.replicas):
        one = StageSchedule(schedule.stage, schedule.configs, (window,))
        parts.append(queue_batches(ready[r::groups], None if deadline is None else deadline[r::groups], draws, r,
                                   groups, kind, one, use_jit))
    item_batch = np.empty(ready.size, dtype=np.int32)
    offset = 0
    for r, part in enumerate(parts):
        item_batch[r::groups] = np.where(part.item_batch >= 0, part.item_batch + offset, -1)
        offset += part.takes.size
    return Batches(item_batch, np.concatenate([p.takes for p in parts]), np.concatenate([p.start_ms for p in parts]),
                   np.concatenate([p.end_ms for p in parts]),
                   np.concatenate([np.full(p.takes.size, r, dtype=np.int32) for r, p in enumerate(parts)]),
                   np.concatenate([p.last_end_ms for p in parts]))


def ready_at(stage: StageModel, arrival_ms: np.ndarray, completion: list[np.ndarray | None],
             overhead_ms: float = 0.0) -> np.ndarray:
    """Per request, when it is ready at ``stage``: its arrival, or the latest completion among its parents,
    plus the engine's overhead of the visit."""
    if not stage.parents:
        return arrival_ms + overhead_ms if overhead_ms else arrival_ms
    ready = completion[stage.parents[0]]
    for p in stage.parents[1:]:
        ready = np.maximum(ready, completion[p])
    return ready + overhead_ms if overhead_ms else ready


def stage_items(ready_req: np.ndarray, items_per_request: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                                np.ndarray]:
    """(requests that reach the stage, their item counts, request of each item, ready time of each item),
    items in queue order: by ready time, ties by (request, item)."""
    index = np.int32 if ready_req.size < 2**31 else np.int64
    reached = ~np.isnan(ready_req)
    if reached.all():  # the common case, without the copies
        reqs, counts = np.arange(ready_req.size, dtype=index), items_per_request
    else:
        reqs = np.flatnonzero(reached).astype(index)
        counts = items_per_request[reqs]
    del reached
    one_each = counts.size > 0 and counts.min() == 1 and counts.max() == 1
    item_req = reqs if one_each else np.repeat(reqs, counts)
    # every request, one item each: the items are the requests, in order (no gather; nothing writes to it)
    item_ready = ready_req if one_each and reqs.size == ready_req.size else ready_req[item_req]
    # Items are laid out by (request, item); a stable sort by ready time keeps that order for ties.
    if item_ready.size > 1 and np.any(item_ready[1:] < item_ready[:-1]):
        order = np.argsort(item_ready, kind="stable")
        item_req, item_ready = item_req[order], item_ready[order]
    return reqs, counts, item_req, item_ready


def stage_completion(n: int, ready_req: np.ndarray, reqs: np.ndarray, counts: np.ndarray, item_req: np.ndarray,
                     item_end: np.ndarray) -> np.ndarray:
    """Per request: when all its items are done at the stage (its ready time if it sends none; NaN if dropped)."""
    one_each = counts.size > 0 and counts.min() == 1 and counts.max() == 1
    if one_each and reqs.size == n:  # every request, one item each: item_req is a permutation of 0..n-1
        done = np.empty(n)
        done[item_req] = item_end
        return done
    done = np.full(n, np.nan)
    done[reqs] = ready_req[reqs]  # requests sending no items pass straight through
    if one_each:
        done[item_req] = item_end  # one item per request: its end is the request's (NaN if dropped)
    else:
        done[item_req] = -np.inf
        np.fmax.at(done, item_req, item_end)  # fmax ignores NaN: drops are marked below
        done[item_req[np.isnan(item_end)]] = np.nan
    return done


def sinks_completion(prep: Prepared, completion: list[np.ndarray | None]) -> np.ndarray:
    """Per request: every sink done (the latest sink completion; NaN if any sink dropped it)."""
    final = completion[prep.sinks[0]]
    for s in prep.sinks[1:]:
        final = np.maximum(final, completion[s])
    return final


def from_stage_runs(prep: Prepared, runs: tuple[StageRun, ...], final: np.ndarray, keep_detail: bool) -> RawRun:
    """Tally stage runs that kept every item (the reference event loop's output)."""
    completion = [r.completion_ms for r in runs]
    tallies = tuple(tally(wait_tally(r.ready_ms, r.batch, r.batch_start_ms), r.batch.size, r.batch_start_ms,
                          r.batch_end_ms, r.batch_items,
                          ready_at(stage, prep.arrival_ms, completion, prep.engine_overhead_ms), r.completion_ms)
                    for stage, r in zip(prep.stages, runs))
    return RawRun(tallies, final, runs if keep_detail else None)


def run_stages(prep: Prepared, schedule: Schedule, use_jit: bool | None = None, keep_detail: bool = True) -> ScheduleRun:
    """Simulate every stage in topological order with its replica windows.

    ``use_jit``: run the numba-compiled kernel (default: when numba is installed); both give
    identical results. ``keep_detail``: keep every stage's per-item arrays in the result.
    """
    use_jit = jit.AVAILABLE if use_jit is None else use_jit
    if use_jit and not jit.AVAILABLE:
        raise RuntimeError("use_jit=True needs numba; install it (pip install numba) or pass use_jit=False")
    arrival = prep.arrival_ms
    n = arrival.size
    readers = [sum(j in s.parents for s in prep.stages) + (j in prep.sinks) for j in range(len(prep.stages))]
    completion: list[np.ndarray | None] = []
    tallies: list[StageTally] = []
    runs: list[StageRun] = []
    owners, last_ends, metered = [], [], []
    for j, stage in enumerate(prep.stages):
        plan_stage = schedule.stage(stage.name)
        if not plan_stage.replicas:
            raise SpecError(f"schedule of stage '{stage.name}' has no replica windows; give it at least one.")
        ready_req = ready_at(stage, arrival, completion, prep.engine_overhead_ms)
        draws = stage_draws(prep, j)
        reqs, counts, item_req, item_ready = stage_items(ready_req, draws.items_per_request)
        deadline = None if prep.request_timeout_ms is None else arrival[item_req] + prep.request_timeout_ms
        b = serve_stage(prep, j, plan_stage, item_ready, deadline, draws.service, use_jit)
        del deadline, draws
        if prep.request_timeout_ms is None:  # nothing dropped: every item has a batch
            end = b.end_ms[b.item_batch]
        else:
            served = b.item_batch >= 0
            end = np.where(served, b.end_ms[np.where(served, b.item_batch, 0)] if b.end_ms.size else 0.0, np.nan)
        if keep_detail:
            start = np.where(b.item_batch >= 0, b.start_ms[b.item_batch] if b.start_ms.size else 0.0, np.nan)
            detail = (item_req, item_ready, start, end, b.item_batch, b.start_ms, b.end_ms, b.takes)
        waits = wait_tally(item_ready, b.item_batch, b.start_ms)
        del item_ready
        done = stage_completion(n, ready_req, reqs, counts, item_req, end)
        del end, reqs, counts, item_req
        if keep_detail:
            runs.append(StageRun(*detail, done))
            del detail
        tallies.append(tally(waits, b.item_batch.size, b.start_ms, b.end_ms, b.takes, ready_req, done))
        completion.append(done)
        owners.append(b.window)
        last_ends.append(b.last_end_ms)
        metered.append(_metered(plan_stage, b))
        for p in stage.parents:  # release a parent's column once every reader has used it
            readers[p] -= 1
            if readers[p] == 0:
                completion[p] = None
    final = sinks_completion(prep, completion)
    raw = RawRun(tuple(tallies), final, tuple(runs) if keep_detail else None)
    return ScheduleRun(raw, tuple(s.name for s in prep.stages), tuple(owners), tuple(last_ends), tuple(metered))


def _metered(schedule: StageSchedule, b: Batches) -> MeteredBatches:
    flagged = [c for c, cfg in enumerate(schedule.configs) if cfg.metered]
    if not flagged or b.window.size == 0:
        return MeteredBatches.empty()
    config_of = np.array([w.config for w in schedule.replicas], dtype=np.int32)
    keep = np.isin(config_of[b.window], flagged)
    return MeteredBatches(b.window[keep], b.start_ms[keep], b.end_ms[keep], b.takes[keep])


def run_fast(prep: Prepared, use_jit: bool | None = None, keep_detail: bool = True) -> RawRun:
    """The plain simulator: the stage-by-stage engine with the plan's constant replica windows."""
    return run_stages(prep, prep.constant_schedule(), use_jit, keep_detail).raw
