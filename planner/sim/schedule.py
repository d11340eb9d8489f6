"""Simulation of a pipeline whose replicas change over time (the tuner's evaluation engine).

A :class:`Schedule` gives every stage a list of replica *windows*: a replica is launched at
``launch_ms`` (it costs from then), may start its first batch at ``ready_ms`` (after hardware
start-up and model load) and starts no batch at or after ``stop_ms`` (a batch already running
finishes). Each window serves with one of the stage's configurations (batch size, timeout and
service curve of one variant on one hardware), so a stage can switch variant or batch size while
old and new replicas overlap.

The batching rule is the one kernel's (planner.sim.kernel): for the oldest waiting item, the batch
goes to the window that can start it first. The plain simulator is this engine with the plan's
constant windows (every replica ready at 0, never stopped); a test holds the two paths to
bit-identical results. Time-varying windows need central queues.

Preemptions (spot replicas, :func:`with_preemptions`): each window of a preemptible configuration
is preempted at the first point of a Poisson process of rate ``lambda`` (per replica) after it is
ready; it then stops (it finishes its running batch: providers warn 30 s to 2 min ahead) and a
replacement window of the same configuration is launched at the preemption, ready
``replacement_ms`` later, stopped where the original would have been, and preempted in turn.
The draws come from a generator seeded by the caller, one stream per stage.
"""

from __future__ import annotations

import numpy as np

from planner.plan import Plan
from planner.sim.config import ReplicaWindow, Schedule, SimConfig, StageModel, StageSchedule, prepare
from dataclasses import dataclass, replace

from planner.sim.engine import MeteredBatches, ScheduleRun, run_stages
from planner.sim.result import SimResult, summarise
from planner.traces import Trace

__all__ = ["MeteredBatches", "Preemptible", "Preemptions", "ReplicaWindow", "Schedule", "ScheduleRun",
           "StageSchedule", "constant_schedule", "run_schedule", "simulate_schedule", "stage_models",
           "with_preemptions"]


@dataclass(frozen=True)
class Preemptible:
    """How a configuration's replicas are taken back: mean preemptions per replica-ms, and the delay to a
    serving replacement (ms)."""

    rate_per_ms: float
    replacement_ms: float


@dataclass(frozen=True)
class Preemptions:
    """What :func:`with_preemptions` did: per stage (schedule order), the preemption times (ms)."""

    stages: tuple[str, ...]
    times_ms: tuple[tuple[float, ...], ...]

    @property
    def count(self) -> int:
        return sum(len(t) for t in self.times_ms)


def with_preemptions(schedule: Schedule, preemptible: dict[str, tuple[Preemptible | None, ...]], horizon_ms: float,
                     seed: int | tuple[int, ...]) -> tuple[Schedule, Preemptions]:
    """``schedule`` with seeded Poisson preemptions of the windows whose configuration is preemptible.

    ``preemptible[stage][c]`` describes configuration ``c`` of the stage (None: never preempted).
    Windows are processed in order; a replacement is appended after the originals. Only
    preemptions before ``horizon_ms`` (the trace's end) are drawn. ``seed``: an int, or a tuple of
    ints (the entropy of a stream kept apart from another use of the same int seed).
    """
    streams = np.random.SeedSequence(seed).spawn(len(schedule.stages))
    stages, times = [], []
    for st, stream in zip(schedule.stages, streams):
        kinds = preemptible.get(st.stage, ())
        rng = np.random.default_rng(stream)
        out: list[ReplicaWindow] = []
        hits: list[float] = []
        for w in st.replicas:
            model = kinds[w.config] if w.config < len(kinds) else None
            while model is not None and model.rate_per_ms > 0:
                at = w.ready_ms + float(rng.exponential(1.0 / model.rate_per_ms))
                if at >= min(w.stop_ms, horizon_ms):
                    break
                out.append(replace(w, stop_ms=at))
                hits.append(at)
                w = ReplicaWindow(w.config, at, at + model.replacement_ms, w.stop_ms)
            out.append(w)
        stages.append(StageSchedule(st.stage, st.configs, tuple(out)))
        times.append(tuple(sorted(hits)))
    return Schedule(tuple(stages)), Preemptions(tuple(s.stage for s in schedule.stages), tuple(times))


def stage_models(plan: Plan, config: SimConfig = SimConfig()) -> dict[str, StageModel]:
    """The simulator's per-stage models (batching and service curve) of a plan, by stage name."""
    empty = Trace(np.empty(0), 0.0, "empty")
    return {s.name: s for s in prepare(plan, empty, config).stages}


def constant_schedule(plan: Plan, config: SimConfig = SimConfig()) -> Schedule:
    """The plan's replicas, all ready at 0 and never stopped (what planner.sim.simulate runs)."""
    return prepare(plan, Trace(np.empty(0), 0.0, "empty"), config).constant_schedule()


def run_schedule(prep, schedule: Schedule, keep_detail: bool = True, use_jit: bool | None = None) -> ScheduleRun:
    """Simulate every stage in topological order with its replica windows."""
    return run_stages(prep, schedule, use_jit, keep_detail)


def simulate_schedule(plan: Plan, schedule: Schedule, trace: Trace, config: SimConfig = SimConfig()
                      ) -> tuple[SimResult, ScheduleRun]:
    """Replay ``trace`` through the time-varying replicas of ``schedule``.

    ``plan`` fixes the pipeline's shape (stages, fan-out) and the random draws; its per-stage
    replicas and batching are replaced by the schedule's. Per-stage utilisation in the result is
    relative to ``plan``'s replica counts.
    """
    prep = prepare(plan, trace, config)
    run = run_stages(prep, schedule, None if config.accelerate else False, config.keep_detail)
    return summarise(plan, trace, config, prep, run.raw), run
