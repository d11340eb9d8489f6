"""A plan's resource classes in the simulator: spot stages preempted, serverless stages cold-starting.

:func:`simulate_classes` runs the schedule engine (planner.sim.schedule) on the plan's replicas,
with each stage's class terms as the plan carries them (planner.plan.StageResource):

- spot: every replica is preempted at seeded Poisson times of rate ``preemptions_per_hour``
  (:func:`planner.sim.schedule.with_preemptions`; it finishes its running batch) and replaced
  ``replacement_s`` later, the replacement preempted in turn;
- serverless: the stage's ``min(replicas, max_concurrency)`` instances exist for the whole run and
  a batch on an instance that never served or idled longer than ``keep_warm_s`` starts
  ``cold_start_ms`` late (planner.sim.kernel); the request pays it.

On-demand stages run as in :func:`planner.sim.simulate`, and a plan with no spot or serverless stage
gives that function's result exactly (the engines agree to the bit). The preemption draws use
their own stream of the run's seed, apart from the service and fan-out draws, so a seed gives the
same service draws with and without preemptions. It always runs the stage-by-stage engine
(``SimConfig.engine`` is not consulted): the reference event loop has no replica windows.

Cold starts are counted from the batches: on an instance, a batch is cold exactly when it starts
more than ``K + C`` after the instance's previous batch ended (``K`` keep-warm, ``C`` cold start:
a warm batch starts within ``K``, a cold one after ``K`` plus the ``C`` it paid); the test uses
``K + C / 2``, half a cold start clear of both cases.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from planner.errors import SpecError
from planner.plan import Plan, StagePlan
from planner.sim.config import QueueMode, ReplicaWindow, Schedule, SimConfig, StageSchedule, prepare
from planner.sim.engine import MeteredBatches, run_stages
from planner.sim.result import ClassEvents, SimResult, StageEvents, summarise
from planner.sim.schedule import Preemptible, with_preemptions
from planner.traces import Trace

PREEMPTION_STREAM = 1  # second entropy word of the preemption draws' seed: (seed, 1)
MS_PER_S = 1000.0
MS_PER_HOUR = 3.6e6

__all__ = ["has_classes", "simulate_classes"]


def has_classes(plan: Plan) -> bool:
    """Whether any stage of ``plan`` is on spot or serverless hardware."""
    return any(s.resource is not None for s in plan.stages)


def _serverless(stage: StagePlan) -> bool:
    return stage.resource is not None and stage.resource.cold_start_ms is not None


def _instances(stage: StagePlan) -> int:
    cap = stage.resource.max_concurrency if _serverless(stage) else None
    return min(stage.replicas, cap) if cap else stage.replicas


def _cold_starts(metered: MeteredBatches, stage: StagePlan) -> int:
    """Batches that started cold (rule in the module docstring)."""
    if metered.window.size == 0:
        return 0
    cold_ms = stage.resource.cold_start_ms or 0.0
    if cold_ms <= 0:
        return 0
    order = np.lexsort((metered.start_ms, metered.window))
    window, start, end = metered.window[order], metered.start_ms[order], metered.end_ms[order]
    first = np.ones(window.size, dtype=bool)
    first[1:] = window[1:] != window[:-1]
    gap = np.empty(window.size)
    gap[1:] = start[1:] - end[:-1]
    limit = (stage.resource.keep_warm_s or 0.0) * MS_PER_S + cold_ms / 2.0
    return int(np.count_nonzero(first | (gap > limit)))


def simulate_classes(plan: Plan, trace: Trace, config: SimConfig = SimConfig()) -> SimResult:
    """Every request of ``trace`` through ``plan`` with its stages' resource classes (see the module);
    deterministic given ``config.seed``. The result's ``resources`` lists the spot/serverless stages."""
    prep = prepare(plan, trace, config)
    by_name = {s.stage: s for s in plan.stages}
    stages, preemptible = [], {}
    for model in prep.stages:
        stage = by_name[model.name]
        if _serverless(stage):
            r = stage.resource
            model = replace(model, cold_start_ms=float(r.cold_start_ms), keep_warm_ms=float(r.keep_warm_s) * MS_PER_S,
                            metered=True)
        elif stage.resource is not None and (stage.resource.preemptions_per_hour or 0.0) > 0:
            preemptible[stage.stage] = (Preemptible(stage.resource.preemptions_per_hour / MS_PER_HOUR,
                                                    (stage.resource.replacement_s or 0.0) * MS_PER_S),)
        stages.append(StageSchedule(model.name, (model,),
                                    tuple(ReplicaWindow(0, 0.0, 0.0) for _ in range(_instances(stage)))))
    schedule = Schedule(tuple(stages))
    preempted = {}
    if preemptible:
        if config.queue_mode is QueueMode.PER_REPLICA:
            raise SpecError(f"plan stage(s) {sorted(preemptible)} run on spot hardware, whose preempted replicas "
                            "need the central queue; simulate with --queue-mode central, or without the resource "
                            "classes (--no-resource-classes).")
        schedule, drawn = with_preemptions(schedule, preemptible, trace.duration_ms, (config.seed, PREEMPTION_STREAM))
        preempted = {name: len(times) for name, times in zip(drawn.stages, drawn.times_ms)}
    run = run_stages(prep, schedule, None if config.accelerate else False, config.keep_detail)
    result = summarise(plan, trace, config, prep, run.raw)
    events = tuple(
        StageEvents(stage=name, resource_class=by_name[name].resource.resource_class,
                    instances=_instances(by_name[name]), preemptions=preempted.get(name, 0),
                    cold_starts=_cold_starts(metered, by_name[name]) if _serverless(by_name[name]) else 0,
                    batches=run.raw.tallies[j].batches)
        for j, (name, metered) in enumerate(zip(run.stage_names, run.metered)) if by_name[name].resource is not None)
    return replace(result, resources=ClassEvents(events))
