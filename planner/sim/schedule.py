"""Simulation of a pipeline whose replicas change over time (the tuner's evaluation engine).

A :class:`Schedule` gives every stage a list of replica *windows*: a replica is launched at
``launch_ms`` (it costs from then), may start its first batch at ``ready_ms`` (after hardware
start-up and model load) and starts no batch at or after ``stop_ms`` (a batch already running
finishes). Each window serves with one of the stage's configurations (batch size, timeout and
service curve of one variant on one hardware), so a stage can switch variant or batch size while
old and new replicas overlap.

The engine generalises the FIFO batching loop of planner.sim.fast: stages are simulated one by one
in topological order; within a stage, for the oldest waiting item ``s``, every eligible replica
``r`` could start its next batch at ``t_r = max(free_r, ready_r, min(a[s + b_r - 1], a[s] +
timeout_r))`` (``b_r``/``timeout_r`` from its configuration), and the batch goes to the replica
with the earliest ``t_r`` (ties: the earliest free, then the lowest window index), provided ``t_r <
stop_r``. With one configuration and every window ready at 0 and never stopped this is exactly the
heap of replica free times of planner.sim.fast, and a test holds the two to bit-identical results.

Inputs are compiled by planner.sim.config.prepare (the same fan-out counts and service draws);
results reuse planner.sim.result.summarise. Central queues only, no request timeouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.errors import SpecError
from planner.plan import Plan
from planner.sim.fast import _DET, _kind, batch_due_ms, batch_stop, service_ms, stage_items
from planner.sim.config import Prepared, QueueMode, RawRun, SimConfig, StageModel, StageRun, prepare
from planner.sim.result import SimResult, summarise
from planner.traces import Trace



@dataclass(frozen=True)
class ReplicaWindow:
    """One replica's life: launched (costs from here), ready (may serve), stopped (starts no new batch)."""

    config: int  # index into StageSchedule.configs
    launch_ms: float
    ready_ms: float
    stop_ms: float = math.inf


@dataclass(frozen=True)
class StageSchedule:
    """A stage's configurations and the replica windows that serve it."""

    stage: str
    configs: tuple[StageModel, ...]
    replicas: tuple[ReplicaWindow, ...]


@dataclass(frozen=True)
class Schedule:
    stages: tuple[StageSchedule, ...]  # matched to the plan's stages by name

    def stage(self, name: str) -> StageSchedule:
        return next(s for s in self.stages if s.stage == name)


@dataclass(frozen=True)
class ScheduleRun:
    """What the replicas did: per stage, the window of each batch and when each window last finished."""

    raw: RawRun
    stage_names: tuple[str, ...]  # topological order, as in the per-stage tuples below
    batch_window: tuple[np.ndarray, ...]  # per stage (topological order), window index of each batch
    last_end_ms: tuple[np.ndarray, ...]  # per stage, per window: end of its last batch (-inf: never served)


def stage_models(plan: Plan, config: SimConfig = SimConfig()) -> dict[str, StageModel]:
    """The simulator's per-stage models (batching and service curve) of a plan, by stage name."""
    empty = Trace(np.empty(0), 0.0, "empty")
    return {s.name: s for s in prepare(plan, empty, config).stages}


def constant_schedule(plan: Plan, config: SimConfig = SimConfig()) -> Schedule:
    """The plan's replicas, all ready at 0 and never stopped (what planner.sim.simulate runs)."""
    models = stage_models(plan, config)
    return Schedule(tuple(
        StageSchedule(s.stage, (models[s.stage],), tuple(ReplicaWindow(0, 0.0, 0.0) for _ in range(s.replicas)))
        for s in plan.stages))


def schedule_batches(arr: list[float], draws: list[float], kind: int, configs: tuple[StageModel, ...],
                     windows: tuple[ReplicaWindow, ...], stage: str = "") -> tuple[list[int], list[float], list[float],
                                                                                 list[int], list[float]]:
    """FIFO batches of one stage served by time-windowed replicas.

    Returns (items per batch, starts, ends, window of each batch, last batch end of each window).
    """
    n = len(arr)
    order = sorted(range(len(windows)), key=lambda w: (windows[w].ready_ms, w))
    free = {w: windows[w].ready_ms for w in order}
    last_end = [-math.inf] * len(windows)
    takes: list[int] = []
    starts: list[float] = []
    ends: list[float] = []
    owner: list[int] = []
    active: list[int] = []
    nxt = 0
    s = 0
    while s < n:
        a_s = arr[s]
        active = [w for w in active if windows[w].stop_ms > a_s]  # a batch starts no earlier than a[s]
        best_w, best_t, best_free = -1, math.inf, math.inf
        pos = 0
        while True:
            while pos < len(active):
                w = active[pos]
                pos += 1
                cfg = configs[windows[w].config]
                trigger = batch_due_ms(arr, s, n, cfg.batch_size, cfg.batch_timeout_ms)
                f = free[w]
                t = f if f > trigger else trigger
                if t >= windows[w].stop_ms:
                    continue
                if t < best_t or (t == best_t and (f < best_free or (f == best_free and w < best_w))):
                    best_w, best_t, best_free = w, t, f
            # A window not yet admitted starts no earlier than its ready time.
            if nxt < len(order) and windows[order[nxt]].ready_ms < best_t:
                active.append(order[nxt])
                nxt += 1
                continue
            break
        if best_w < 0:
            raise SpecError(f"schedule of stage '{stage}': no replica can serve items waiting from {a_s:.1f} ms "
                            "(every window has stopped); keep at least one replica without a stop time.")
        cfg = configs[windows[best_w].config]
        e = batch_stop(arr, s, n, cfg.batch_size, best_t)
        m = e - s
        end = best_t + service_ms(kind, cfg.base_ms, cfg.sigma, draws, m, s)
        free[best_w] = end
        last_end[best_w] = end
        takes.append(m)
        starts.append(best_t)
        ends.append(end)
        owner.append(best_w)
        s = e
    return takes, starts, ends, owner, last_end


def run_schedule(prep: Prepared, schedule: Schedule) -> ScheduleRun:
    """Simulate every stage in topological order with its replica windows."""
    if prep.queue_mode is not QueueMode.CENTRAL or prep.request_timeout_ms is not None:
        raise SpecError("the schedule simulator models central queues without request timeouts; use "
                        "queue_mode=central and no request_timeout_ms.")
    kind = _kind(prep.service)
    arrival = prep.arrival_ms
    n = arrival.size
    completion: list[np.ndarray] = []
    runs: list[StageRun] = []
    owners: list[np.ndarray] = []
    last_ends: list[np.ndarray] = []
    for j, stage in enumerate(prep.stages):
        plan_stage = schedule.stage(stage.name)
        if not plan_stage.replicas:
            raise SpecError(f"schedule of stage '{stage.name}' has no replica windows; give it at least one.")
        ready_req, reqs, counts, item_req, item_ready = stage_items(prep, j, arrival, completion)
        draws = prep.service_draws[j].tolist() if kind != _DET else []
        takes, b_start, b_end, owner, last_end = schedule_batches(
            item_ready.tolist(), draws, kind, plan_stage.configs, plan_stage.replicas, stage.name)
        takes_a = np.asarray(takes, dtype=np.int64)
        b_start_a = np.asarray(b_start, dtype=np.float64)
        b_end_a = np.asarray(b_end, dtype=np.float64)
        item_batch = np.repeat(np.arange(takes_a.size, dtype=np.int64), takes_a)
        start = b_start_a[item_batch] if item_batch.size else np.empty(0)
        end = b_end_a[item_batch] if item_batch.size else np.empty(0)
        done = np.full(n, np.nan)
        done[reqs] = ready_req[reqs]
        if counts.size and counts.min() == 1 and counts.max() == 1:
            done[item_req] = end
        else:
            done[item_req] = -np.inf
            np.fmax.at(done, item_req, end)
        completion.append(done)
        runs.append(StageRun(item_req, item_ready, start, end, item_batch, b_start_a, b_end_a, takes_a, done))
        owners.append(np.asarray(owner, dtype=np.int64))
        last_ends.append(np.asarray(last_end, dtype=np.float64))
    final = completion[prep.sinks[0]]
    for s in prep.sinks[1:]:
        final = np.maximum(final, completion[s])
    return ScheduleRun(RawRun(tuple(runs), final), tuple(s.name for s in prep.stages), tuple(owners),
                       tuple(last_ends))


def simulate_schedule(plan: Plan, schedule: Schedule, trace: Trace, config: SimConfig = SimConfig()
                      ) -> tuple[SimResult, ScheduleRun]:
    """Replay ``trace`` through the time-varying replicas of ``schedule``.

    ``plan`` fixes the pipeline's shape (stages, fan-out) and the random draws; its per-stage
    replicas and batching are replaced by the schedule's. Per-stage utilisation in the result is
    relative to ``plan``'s replica counts.
    """
    prep = prepare(plan, trace, config)
    run = run_schedule(prep, schedule)
    slo_ms = config.slo_ms if config.slo_ms is not None else plan.slo_ms
    predicted = {s.stage: s.predicted_latency_ms for s in plan.stages}
    result = summarise(plan.pipeline, trace.name, config, prep, run.raw, slo_ms, trace.duration_ms, predicted,
                       plan.predicted_p99_ms)
    return result, run
