"""Replay a trace under a policy: ask/tell every interval, build the replica schedule, simulate, account.

``tune(book, trace, kind, settings)`` returns a :class:`TuneResult`: one :class:`IntervalRow` per
interval (the timeline) and a :class:`TuneSummary`. ``compare`` runs several policies on the same
trace (sharing the plan cache) and reports each one's cost relative to the oracle's.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from planner.errors import TraceError
from planner.plan import Plan
from planner.sim.config import ServiceModel, SimConfig
from planner.sim.run import quantile
from planner.sim.schedule import simulate_schedule, with_preemptions
from planner.traces import Trace, counts_per_second
from planner.tuner.forecast import gaps_cv, interval_peaks_rps
from planner.tuner.planbook import PlanBook
from planner.tuner.deployment import Deployment
from planner.tuner.policies import Observation, Policy
from planner.tuner.registry import available_kinds, make_policy
from planner.tuner.settings import MS_PER_S, PolicyKind, PolicySettings, ms

log = logging.getLogger(__name__)

TUNE_SCHEMA_VERSION = 3  # 2: batch timeouts in the timeline; objective value and unit in the summary;
# 3: preemptions, serverless_cost_usd and serverless_share in the summary


@dataclass(frozen=True)
class TuneSettings:
    """One replay's settings; the same settings and seed give the same result."""

    policy: PolicySettings = field(default_factory=PolicySettings)
    seed: int = 0
    service: ServiceModel = ServiceModel.LOGNORMAL


@dataclass(frozen=True)
class StageRow:
    stage: str
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float  # of the configuration as deployed (fixed when it was first deployed)
    replicas: int  # the target for the interval
    serving: int  # replicas able to serve at the interval's start


@dataclass(frozen=True)
class IntervalRow:
    """One interval of the timeline."""

    time_s: float
    arrival_rps: float  # mean over the interval
    peak_rps: float  # the interval peak rate (planner.tuner.forecast)
    planned_rps: float  # the rate the target plan was sized for
    stages: tuple[StageRow, ...]
    cost_usd: float  # every replica alive during the interval
    requests: int  # arriving in the interval
    p99_ms: float  # of those requests (NaN: none)
    slo_attainment: float  # share of those requests within the SLO (NaN: none)
    accuracy: float  # of the target plan


@dataclass(frozen=True)
class TuneSummary:
    policy: str
    trace: str
    requests: int
    duration_s: float
    interval_s: int
    seed: int
    slo_ms: float
    total_cost_usd: float
    mean_cost_usd_per_hour: float
    slo_attainment: float  # over all requests
    p99_ms: float
    mean_accuracy: float  # request-weighted accuracy of each interval's target plan
    time_mean_accuracy: float  # time-weighted accuracy of the target plans
    objective_value: float  # the spec's objective at the mean cost per hour and the time-mean accuracy
    objective_unit: str
    reconfigurations: int  # intervals whose plan launched or stopped replicas
    config_switches: int  # stage configuration changes (variant, hardware or batch size)
    replicas_launched: int
    plans_solved: int  # ILPs solved so far by the shared plan cache
    wall_s: float  # replay time (not deterministic; left out of the files' comparisons)
    preemptions: int = 0  # spot replicas taken back (seeded draws)
    serverless_cost_usd: float = 0.0  # of total_cost_usd: billed per use on serverless instances
    serverless_share: float = 0.0  # of the first stage's items served on serverless instances


@dataclass(frozen=True)
class TuneResult:
    summary: TuneSummary
    timeline: tuple[IntervalRow, ...]
    plans: tuple[Plan, ...]  # the target of each interval


def tune(book: PlanBook, trace: Trace, kind: PolicyKind, settings: TuneSettings = TuneSettings()) -> TuneResult:
    """Replay ``trace`` under policy ``kind``; plans come from ``book`` (shared across policies)."""
    def factory(counts: np.ndarray, cvs: list[float | None]) -> Policy:
        return make_policy(kind, book, counts, settings.policy, cvs)
    return tune_policy(book, trace, factory, settings)


def tune_policy(book: PlanBook, trace: Trace, factory: Callable[[np.ndarray, list[float | None]], Policy],
                settings: TuneSettings = TuneSettings()) -> TuneResult:
    """Replay ``trace`` under the policy ``factory(counts_per_s, interval_cvs)`` builds (any :class:`Policy`)."""
    started = time.perf_counter()
    interval_s = settings.policy.interval_s
    if trace.requests == 0:
        raise TraceError(f"trace '{trace.name}' has no requests; tune needs arrivals.")
    if interval_s < 1:
        raise TraceError(f"interval_s must be a whole number of seconds >= 1, found {interval_s}.")
    if trace.duration_ms < 1000.0:
        # Rates, costs per hour and intervals are all per unit of time: a trace whose arrivals all
        # fall at one instant (one request, or all at t=0) has none (it divided by zero here).
        raise TraceError(f"trace '{trace.name}' lasts {trace.duration_ms:g} ms; tune replays it in intervals of "
                         "seconds and needs a trace of at least one second (all arrivals at one instant have no "
                         "rate). Give a longer trace, or set its duration_ms header.")
    interval_ms = ms(interval_s)
    counts = counts_per_second(trace)
    intervals = math.ceil(counts.size / interval_s)
    bounds = np.searchsorted(trace.arrival_ms, interval_ms * np.arange(intervals + 1), side="left")
    cvs = [gaps_cv(trace.arrival_ms[bounds[k]:bounds[k + 1]]) for k in range(intervals)]
    policy = factory(counts, cvs)
    sim_config = SimConfig(seed=settings.seed, service=settings.service, slo_ms=book.request.spec.slo_ms)
    deployment = Deployment(sim_config, book.request.catalog)
    plans: list[Plan] = []
    targets = []
    launched = switches = reconfigurations = 0
    for k in range(intervals):
        t_ms = k * interval_ms
        if k > 0:
            capacity = float(np.mean([deployment.capacity_req_per_s(t_ms - f * interval_ms) for f in (1.0, 0.5, 1e-9)]))
            policy.tell(Observation(t_ms - interval_ms, t_ms, trace.arrival_ms[bounds[k - 1]:bounds[k]], capacity))
        plan = policy.ask()
        change = deployment.apply(t_ms, plan, instant=policy.instant, initial=k == 0)
        plans.append(plan)
        targets.append(change.targets)
        if k > 0:
            launched += change.launched
            switches += len(change.switched_stages)
            reconfigurations += int(change.changed)
    pool = getattr(policy, "pool", None)  # a burst policy's serverless instances (planner.tuner.burst)
    if pool is not None:
        deployment.add_pool(pool.plan, pool.slots, pool.spill_ms)
    first = plans[0]
    schedule = deployment.schedule()
    preemptible = deployment.preemptible()
    preemptions = 0
    if preemptible:
        schedule, drawn = with_preemptions(schedule, preemptible, trace.duration_ms, settings.seed)
        preemptions = drawn.count
    result, run = simulate_schedule(first, schedule, trace, sim_config)
    slo_ms = sim_config.slo_ms
    latency = np.where(np.isnan(result.latency_ms), np.inf, result.latency_ms)
    horizon_ms = trace.duration_ms
    last_end = {name: run.last_end_ms[i].tolist() for i, name in enumerate(run.stage_names)}
    metered = dict(zip(run.stage_names, run.metered))
    peaks = _peaks(counts, settings.policy)
    rows = []
    serverless_cost = 0.0
    for k, plan in enumerate(plans):
        lo_ms, hi_ms = k * interval_ms, min(horizon_ms, (k + 1) * interval_ms)
        lat = latency[bounds[k]:bounds[k + 1]]
        cost = sum(deployment.stage_cost_usd(s.stage, schedule.stage(s.stage), last_end[s.stage], metered[s.stage],
                                             lo_ms, hi_ms, horizon_ms) for s in plan.stages)
        serverless_cost += sum(deployment.stage_cost_usd(s.stage, schedule.stage(s.stage), last_end[s.stage],
                                                         metered[s.stage], lo_ms, hi_ms, horizon_ms, vms=False)
                               for s in plan.stages) if pool is not None else 0.0
        rows.append(IntervalRow(
            time_s=lo_ms / MS_PER_S, arrival_rps=lat.size / max((hi_ms - lo_ms) / MS_PER_S, 1e-9),
            peak_rps=float(peaks[k]), planned_rps=plan.arrival_rps,
            stages=tuple(StageRow(s.stage, s.variant, s.hardware, s.batch_size, d.batch_timeout_ms, s.replicas,
                                  deployment.serving(s.stage, lo_ms)) for s, d in zip(plan.stages, targets[k])),
            cost_usd=cost, requests=int(lat.size), p99_ms=quantile(lat, 0.99) if lat.size else math.nan,
            slo_attainment=float(np.mean(lat <= slo_ms)) if lat.size else math.nan, accuracy=plan.accuracy))
    total_cost = sum(r.cost_usd for r in rows)
    weights = np.array([r.requests for r in rows], dtype=np.float64)
    lengths = np.array([min(horizon_ms, (k + 1) * interval_ms) - k * interval_ms for k in range(len(rows))])
    time_accuracy = float(np.average([r.accuracy for r in rows], weights=np.maximum(lengths, 1e-9)))
    mean_cost = total_cost / (trace.duration_s / 3600.0)
    objective = book.request.spec.objective
    summary = TuneSummary(
        policy=policy.name, trace=trace.name, requests=trace.requests, duration_s=trace.duration_s,
        interval_s=interval_s, seed=settings.seed, slo_ms=slo_ms, total_cost_usd=total_cost,
        mean_cost_usd_per_hour=mean_cost,
        slo_attainment=result.summary.slo_attainment, p99_ms=result.summary.p99_ms,
        mean_accuracy=float(np.average([r.accuracy for r in rows], weights=weights)),
        time_mean_accuracy=time_accuracy, objective_value=objective.value(mean_cost, time_accuracy),
        objective_unit=objective.unit,
        reconfigurations=reconfigurations, config_switches=switches, replicas_launched=launched,
        plans_solved=book.solves, wall_s=time.perf_counter() - started, preemptions=preemptions,
        serverless_cost_usd=serverless_cost, serverless_share=_serverless_share(run, deployment))
    log.info("%s on %s: %.4f USD, %.3f%% within SLO, %d reconfigurations", policy.name, trace.name, total_cost,
             100 * summary.slo_attainment, reconfigurations)
    return TuneResult(summary, tuple(rows), tuple(plans))


def _serverless_share(run, deployment: Deployment) -> float:
    """Share of the first stage's items served by serverless instances (0 without a pool)."""
    if not run.metered or run.metered[0].items.size == 0:
        return 0.0
    return float(np.sum(run.metered[0].items)) / max(float(run.raw.tallies[0].items), 1.0)


def _peaks(counts: np.ndarray, settings: PolicySettings) -> np.ndarray:
    return interval_peaks_rps(counts, settings.interval_s, settings.peak_window_s)


def compare(book: PlanBook, trace: Trace, kinds: tuple[PolicyKind, ...] | None = None,
            settings: TuneSettings = TuneSettings(),
            on_result: Callable[[TuneResult], None] | None = None) -> list[TuneResult]:
    """Run each policy on the same trace (oracle first); ``on_result`` sees each result as soon as it is done.

    ``kinds`` default: every policy the request can run (planner.tuner.registry.available_kinds).
    """
    kinds = available_kinds(book.request) if kinds is None else kinds
    ordered = sorted(kinds, key=lambda k: k is not PolicyKind.ORACLE)
    results = []
    for kind in ordered:
        result = tune(book, trace, kind, settings)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
