"""The simulator: replay a trace through a Plan's batched queues and measure latency.

``simulate(plan, trace, SimConfig(...)) -> SimResult``. See planner.sim.fast for the method and
planner.sim.events for the reference event loop it is checked against.
"""

from __future__ import annotations

from planner.plan import Plan
from planner.sim.events import run_events
from planner.sim.fast import run_fast
from planner.sim.config import Engine, QueueMode, ServiceModel, SimConfig, prepare
from planner.sim.result import LatencySummary, SimResult, StageStats, result_to_json, summarise
from planner.traces import Trace

__all__ = ["Engine", "LatencySummary", "QueueMode", "ServiceModel", "SimConfig", "SimResult", "StageStats",
           "result_to_json", "simulate"]


def simulate(plan: Plan, trace: Trace, config: SimConfig = SimConfig()) -> SimResult:
    """Every request of ``trace`` through ``plan``; deterministic given ``config.seed``."""
    prep = prepare(plan, trace, config)
    if config.engine is Engine.FAST:
        run = run_fast(prep, use_jit=None if config.accelerate else False)
    else:
        run = run_events(prep)
    slo_ms = config.slo_ms if config.slo_ms is not None else plan.slo_ms
    predicted = {s.stage: s.predicted_latency_ms for s in plan.stages}
    return summarise(plan.pipeline, trace.name, config, prep, run, slo_ms, trace.duration_ms, predicted,
                     plan.predicted_p99_ms)
