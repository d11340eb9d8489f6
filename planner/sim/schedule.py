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
"""

from __future__ import annotations

import numpy as np

from planner.plan import Plan
from planner.sim.config import ReplicaWindow, Schedule, SimConfig, StageModel, StageSchedule, prepare
from planner.sim.engine import ScheduleRun, run_stages
from planner.sim.result import SimResult, summarise
from planner.traces import Trace

__all__ = ["ReplicaWindow", "Schedule", "ScheduleRun", "StageSchedule", "constant_schedule", "run_schedule",
           "simulate_schedule", "stage_models"]


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
