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
from planner.sim.schedule import simulate_schedule
from planner.traces import Trace, counts_per_second
from planner.tuner.forecast import gaps_cv, interval_peaks_rps
from planner.tuner.planbook import PlanBook
from planner.tuner.policies import Observation, PolicyKind, PolicySettings, make_policy
from planner.tuner.deployment import Deployment

log = logging.getLogger(__name__)

TUNE_SCHEMA_VERSION = 1


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
    reconfigurations: int  # intervals whose plan launched or stopped replicas
    config_switches: int  # stage configuration changes (variant, hardware or batch size)
    replicas_launched: int
    plans_solved: int  # ILPs solved so far by the shared plan cache
    wall_s: float  # replay time (not deterministic; left out of the files' comparisons)


@dataclass(frozen=True)
class TuneResult:
    summary: TuneSummary
    timeline: tuple[IntervalRow, ...]
    plans: tuple[Plan, ...]  # the target of each interval


def tune(book: PlanBook, trace: Trace, kind: PolicyKind, settings: TuneSettings = TuneSettings()) -> TuneResult:
    """Replay ``trace`` under policy ``kind``; plans come from ``book`` (shared across policies)."""
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
    counts = counts_per_second(trace)
    intervals = math.ceil(counts.size / interval_s)
    bounds = np.searchsorted(trace.arrival_ms, 1000.0 * interval_s * np.arange(intervals + 1), side="left")
    cvs = [gaps_cv(trace.arrival_ms[bounds[k]:bounds[k + 1]]) for k in range(intervals)]
    policy = make_policy(kind, book, counts, settings.policy, cvs)
    sim_config = SimConfig(seed=settings.seed, service=settings.service, slo_ms=book.request.spec.slo_ms)
    deployment = Deployment(sim_config)
    plans: list[Plan] = []
    launched = switches = reconfigurations = 0
    for k in range(intervals):
        t_s = float(k * interval_s)
        if k > 0:
            capacity = float(np.mean([deployment.capacity_rps(1000.0 * (t_s - f * interval_s)) for f in (1.0, 0.5, 1e-9)]))
            policy.tell(Observation(t_s - interval_s, t_s, trace.arrival_ms[bounds[k - 1]:bounds[k]], capacity))
        plan = policy.ask()
        change = deployment.apply(1000.0 * t_s, plan, instant=policy.instant, initial=k == 0)
        plans.append(plan)
        if k > 0:
            launched += change.launched
            switches += len(change.switched_stages)
            reconfigurations += int(change.changed)
    first = plans[0]
    result, run = simulate_schedule(first, deployment.schedule(), trace, sim_config)
    slo_ms = sim_config.slo_ms
    latency = np.where(np.isnan(result.latency_ms), np.inf, result.latency_ms)
    horizon_ms = trace.duration_ms
    last_end = {name: run.last_end_ms[i].tolist() for i, name in enumerate(run.stage_names)}
    peaks = _peaks(counts, settings.policy)
    rows = []
    for k, plan in enumerate(plans):
        lo_ms, hi_ms = 1000.0 * k * interval_s, min(horizon_ms, 1000.0 * (k + 1) * interval_s)
        lat = latency[bounds[k]:bounds[k + 1]]
        cost = sum(deployment.stage_cost_usd(s.stage, last_end[s.stage], lo_ms, hi_ms, horizon_ms) for s in plan.stages)
        rows.append(IntervalRow(
            time_s=lo_ms / 1000.0, arrival_rps=lat.size / max((hi_ms - lo_ms) / 1000.0, 1e-9),
            peak_rps=float(peaks[k]), planned_rps=plan.arrival_rps,
            stages=tuple(StageRow(s.stage, s.variant, s.hardware, s.batch_size, s.replicas,
                                  deployment.serving(s.stage, lo_ms)) for s in plan.stages),
            cost_usd=cost, requests=int(lat.size), p99_ms=quantile(lat, 0.99) if lat.size else math.nan,
            slo_attainment=float(np.mean(lat <= slo_ms)) if lat.size else math.nan, accuracy=plan.accuracy))
    total_cost = sum(r.cost_usd for r in rows)
    weights = np.array([r.requests for r in rows], dtype=np.float64)
    summary = TuneSummary(
        policy=kind.value, trace=trace.name, requests=trace.requests, duration_s=trace.duration_s,
        interval_s=interval_s, seed=settings.seed, slo_ms=slo_ms, total_cost_usd=total_cost,
        mean_cost_usd_per_hour=total_cost / (trace.duration_s / 3600.0),
        slo_attainment=result.summary.slo_attainment, p99_ms=result.summary.p99_ms,
        mean_accuracy=float(np.average([r.accuracy for r in rows], weights=weights)),
        reconfigurations=reconfigurations, config_switches=switches, replicas_launched=launched,
        plans_solved=book.solves, wall_s=time.perf_counter() - started)
    log.info("%s on %s: %.4f USD, %.3f%% within SLO, %d reconfigurations", kind.value, trace.name, total_cost,
             100 * summary.slo_attainment, reconfigurations)
    return TuneResult(summary, tuple(rows), tuple(plans))


def _peaks(counts: np.ndarray, settings: PolicySettings) -> np.ndarray:
    return interval_peaks_rps(counts, settings.interval_s, settings.peak_window_s)


@dataclass(frozen=True)
class CompareRow:
    policy: str
    total_cost_usd: float
    cost_vs_oracle: float  # NaN when the oracle was not run
    slo_attainment: float
    mean_accuracy: float
    reconfigurations: int
    meets_targets: bool  # attainment >= 99% and cost <= 1.15 x the oracle's


ATTAINMENT_TARGET = 0.99
COST_TARGET = 1.15


def compare_rows(results: list[TuneResult]) -> list[CompareRow]:
    """Each policy's cost relative to the oracle's, attainment and accuracy."""
    oracle = next((r.summary.total_cost_usd for r in results if r.summary.policy == PolicyKind.ORACLE.value), None)
    rows = []
    for r in results:
        s = r.summary
        ratio = s.total_cost_usd / oracle if oracle else math.nan
        rows.append(CompareRow(s.policy, s.total_cost_usd, ratio, s.slo_attainment, s.mean_accuracy,
                               s.reconfigurations,
                               s.slo_attainment >= ATTAINMENT_TARGET and (ratio <= COST_TARGET if oracle else False)))
    return rows


def compare(book: PlanBook, trace: Trace, kinds: tuple[PolicyKind, ...] = tuple(PolicyKind),
            settings: TuneSettings = TuneSettings(),
            on_result: Callable[[TuneResult], None] | None = None) -> list[TuneResult]:
    """Run each policy on the same trace (oracle first); ``on_result`` sees each result as soon as it is done."""
    ordered = sorted(kinds, key=lambda k: k is not PolicyKind.ORACLE)
    results = []
    for kind in ordered:
        result = tune(book, trace, kind, settings)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
