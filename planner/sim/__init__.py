"""The simulator: replay a trace through a Plan's batched queues and measure latency.

``simulate(plan, trace, SimConfig(...)) -> SimResult``. planner.sim.kernel holds the one batching
rule (compiled by planner.sim.jit), planner.sim.engine runs it stage by stage, and
planner.sim.events is the independent reference event loop it is checked against.
"""

from __future__ import annotations

from planner.plan import Plan
from planner.sim.config import Engine, QueueMode, ServiceModel, SimConfig, prepare
from planner.sim.engine import run_stages
from planner.sim.result import LatencySummary, SimResult, StageStats, result_to_json, summarise
from planner.traces import Trace

__all__ = ["Engine", "LatencySummary", "QueueMode", "ServiceModel", "SimConfig", "SimResult", "StageStats",
           "result_to_json", "simulate"]


def simulate(plan: Plan, trace: Trace, config: SimConfig = SimConfig()) -> SimResult:
    """Every request of ``trace`` through ``plan``; deterministic given ``config.seed``."""
    prep = prepare(plan, trace, config)
    if config.engine is Engine.FAST:
        run = run_stages(prep, prep.constant_schedule(), None if config.accelerate else False, config.keep_detail).raw
    else:
        from planner.sim.events import run_events  # the reference loop: imported only when asked for

        run = run_events(prep, config.keep_detail)
    return summarise(plan, trace, config, prep, run)
