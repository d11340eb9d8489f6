"""Tuning policies behind one ask/tell protocol (Model Analyzer's search-strategy shape), chosen from the registry in planner.tuner.registry.

Every interval the replay *tells* a policy what arrived in the interval that just ended
(:class:`Observation`) and *asks* it for the plan to apply next. Policies keep their own history
(they are the classes that hold state over time) and take plans from a shared
:class:`~planner.tuner.planbook.PlanBook`, so no policy solves an ILP twice for the same rate.
Every plan the book returns is optimal for the spec's objective (min_cost, max_accuracy or weighted)
at its rate; where a policy chooses between plans itself it compares them by that objective too
(:func:`switch_pays`).

- ``reactive`` (InferLine's tuner): keeps the initial plan's configuration and changes replica
  counts only. Scale up as soon as the traffic envelope of the last interval needs a higher rate
  than the deployed plan was sized for; scale down only when the peak 5 s rate over the last
  ``down_window_s`` seconds, plus a margin, is below the deployed rate by the hysteresis, and not
  within ``cooldown_s`` of the last scale-up.
- ``predictive`` (IPA): every interval, forecast the peak rate over the time a new replica needs to
  come up plus one interval (planner.tuner.forecast), and re-solve the ILP at it, which may switch
  variants, hardware and batch sizes. The optimum is taken over the best plan that keeps the
  deployed configuration when, charged for the switch, it is better by the objective
  (:func:`switch_pays`).
- Both adaptive policies add ``backlog / drain_s`` to the rate they plan for (the backlog is
  estimated from arrivals beyond the full serving capacity, :class:`BacklogEstimate`; at most
  doubling the rate), and plan for the largest inter-arrival CV of
  their last intervals (``measure_cv``).
- ``static-peak`` / ``static-mean``: one plan for the trace's peak interval rate / mean rate.
- ``oracle``: with hindsight, each interval's optimal plan for the peak rate that actually arrives
  in it, reconfigured for free at the interval's start (planner.tuner.deployment).
- ``burst``: the predictive policy's VM base plus serverless instances that take the queue's
  overflow (planner.tuner.burst); needs a serverless entry in the catalog.
- :class:`PlaybackPolicy` (no kind: it needs the plans): a given plan per interval, e.g. another
  system's logged decisions, replayed through the same simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from planner.plan import Plan
from planner.tuner.forecast import (envelope_rate_rps, envelope_windows_s, gaps_cv, interval_peaks_rps,
                                    make_forecaster)
from planner.tuner.planbook import PlanBook, plan_pin
from planner.tuner.settings import MS_PER_S, PolicyKind, PolicySettings, ms


@dataclass(frozen=True)
class Observation:
    """What arrived in the interval ``[start_ms, end_ms)`` (arrival times in ms from the trace start),
    and the pipeline's serving capacity over it in requests/s (the mean of its start, middle and end;
    replicas still starting do not count), from which a policy estimates the backlog to drain."""

    start_ms: float
    end_ms: float
    arrival_ms: np.ndarray
    capacity_req_per_s: float = math.inf

    def counts_per_s(self) -> np.ndarray:
        """Arrivals in each whole second of the interval (at least one second)."""
        a = np.asarray(self.arrival_ms)
        seconds = max(1, int(round((self.end_ms - self.start_ms) / MS_PER_S)))
        if not a.size:
            return np.zeros(seconds)
        return np.bincount(np.minimum(((a - self.start_ms) // MS_PER_S).astype(np.int64), seconds - 1),
                           minlength=seconds).astype(np.float64)


class BacklogEstimate:
    """Requests left waiting: grows by arrivals beyond the serving capacity, shrinks by spare capacity.

    A backlogged replica serves back to back, at its full capacity, so over an interval
    ``served = capacity * seconds`` and ``backlog = max(0, backlog + arrivals - served)``. A plan
    sized for the arrival rate alone leaves a backlog built during a start-up delay in the queues
    for minutes; sizing for ``rate + backlog / drain_s`` drains it. (Counting only the spec's
    ``max_utilization`` of the capacity as served, as this did before, saw a backlog grow whenever
    the load ran between the cap and the capacity, where the queue is stable: on IPA's world that
    phantom backlog over-sized every burst's aftermath, 10.1% / 10.3% short of the oracle on the
    bursty / fluctuating windows against 8.3% / 8.5% now; docs/benchmarks.md.)
    """

    def __init__(self) -> None:
        self.requests = 0.0

    def update(self, observation: Observation) -> float:
        seconds = (observation.end_ms - observation.start_ms) / MS_PER_S
        served = observation.capacity_req_per_s * seconds
        self.requests = max(0.0, self.requests + observation.arrival_ms.size - served)
        return self.requests


class Policy(Protocol):
    name: str  # what the timeline and the comparison call it
    instant: bool  # reconfigure for free and at once (the hindsight oracle only)

    def tell(self, observation: Observation) -> None:
        """Record what arrived in the interval that just ended."""

    def ask(self) -> Plan:
        """The plan to apply for the next interval."""


class RecentCv:
    """The largest inter-arrival CV of the last few intervals (None when not measured or not wanted)."""

    def __init__(self, settings: PolicySettings):
        self.settings = settings
        self.values: list[float] = []

    def update(self, observation: Observation) -> None:
        cv = gaps_cv(observation.arrival_ms)
        if cv is not None:
            self.values = (self.values + [cv])[-self.settings.cv_intervals:]

    @property
    def value(self) -> float | None:
        return max(self.values) if self.values and self.settings.measure_cv else None


def objective_value(book: PlanBook, plan: Plan, extra_usd_per_hour: float = 0.0) -> float:
    """The spec's objective of ``plan`` (its own unit), charged ``extra_usd_per_hour`` on top."""
    return book.request.spec.objective.value(plan.cost_usd_per_hour + extra_usd_per_hour, plan.accuracy)


def switch_cost_usd_per_hour(current: Plan, target: Plan, amortize_s: float) -> float:
    """What switching ``current`` to ``target`` costs, as USD/h over ``amortize_s``.

    The switched stages' current replicas keep serving while the new ones start and load
    (make-before-break, planner.tuner.deployment), so each switched stage is paid twice for its
    start-up delay: ``sum over switched stages of usd_per_hour * delay_s / amortize_s``.
    """
    old = {s.stage: s for s in current.stages}
    total = 0.0
    for s in target.stages:
        o = old.get(s.stage)
        if o is None or (o.variant, o.hardware, o.batch_size) != (s.variant, s.hardware, s.batch_size):
            delay_s = s.startup_s + (s.load_time_s or 0.0)
            total += (o.usd_per_hour if o is not None else 0.0) * delay_s / max(amortize_s, 1e-9)
    return total


def switch_pays(book: PlanBook, keep: Plan, switch: Plan, hysteresis: float, amortize_s: float) -> bool:
    """Whether ``switch``, charged for the switch, beats ``keep`` by more than ``hysteresis`` (objective units).

    The spec's objective decides (``Objective.value``, higher or lower is better by ``maximize``):
    under a weighted or accuracy objective a switch to a more accurate configuration of the same
    cost pays; under min_cost only a cheaper one does.
    """
    objective = book.request.spec.objective
    gain = (objective_value(book, switch, switch_cost_usd_per_hour(keep, switch, amortize_s))
            - objective_value(book, keep))
    if not objective.maximize:
        gain = -gain
    return gain > hysteresis


class StaticPolicy:
    """One plan for the whole trace."""

    instant = False

    def __init__(self, name: str, plan: Plan):
        self.name, self._plan = name, plan

    def tell(self, observation: Observation) -> None:
        pass

    def ask(self) -> Plan:
        return self._plan


class PlaybackPolicy:
    """A given plan per interval (the last one repeats): another system's decisions, replayed."""

    def __init__(self, name: str, plans: tuple[Plan, ...], instant: bool = False):
        if not plans:
            raise ValueError("PlaybackPolicy needs at least one plan")
        self.name, self.plans, self.instant = name, plans, instant
        self.interval = 0

    def tell(self, observation: Observation) -> None:
        self.interval += 1

    def ask(self) -> Plan:
        return self.plans[min(self.interval, len(self.plans) - 1)]


class OraclePolicy:
    """Hindsight: the optimal plan for each interval's actual peak rate."""

    name = PolicyKind.ORACLE.value
    instant = True

    def __init__(self, book: PlanBook, peaks_req_per_s: np.ndarray, cvs: list[float | None]):
        self.book, self.peaks, self.cvs = book, np.asarray(peaks_req_per_s), cvs
        self.interval = 0

    def tell(self, observation: Observation) -> None:
        self.interval += 1

    def ask(self) -> Plan:
        k = min(self.interval, self.peaks.size - 1)
        return self.book.plan(float(self.peaks[k]), self.cvs[k])


def _pipeline_service_s(plan: Plan) -> float:
    """Sum of batch-1 p50 service times along the stages (the shortest envelope window)."""
    return sum(s.service_ms_by_batch.p50_ms[0] for s in plan.stages) / MS_PER_S


class ReactivePolicy:
    """InferLine-style replica scaling on traffic envelopes, configuration fixed."""

    name = PolicyKind.REACTIVE.value
    instant = False

    def __init__(self, book: PlanBook, initial: Plan, settings: PolicySettings):
        self.book, self.settings = book, settings
        self.plan = initial
        self.pin = plan_pin(initial)
        self.windows_s = envelope_windows_s(_pipeline_service_s(initial), settings.reactive.history_s)
        self.recent: list[np.ndarray] = []
        self.now_ms = 0.0
        self.last_up_ms = -math.inf
        self.backlog = BacklogEstimate()
        self.cv = RecentCv(settings)

    def tell(self, observation: Observation) -> None:
        self.backlog.update(observation)
        self.cv.update(observation)
        self.now_ms = observation.end_ms
        self.recent.append(np.asarray(observation.arrival_ms))
        keep_ms = ms(max(self.settings.reactive.history_s, self.settings.reactive.down_window_s))
        self.recent = [a for a in self.recent if a.size and a[-1] >= self.now_ms - keep_ms]

    def _plan_at(self, rps: float) -> Plan:
        # Replicas only: above the configuration's reach (max_replicas) it keeps its largest plan.
        pinned = self.book.pinned_capped(rps, self.pin, self.cv.value)
        if pinned is not None:
            return pinned
        plan = self.book.plan(rps, self.cv.value)  # the configuration carries no rate at all under this spec: re-plan
        self.pin = plan_pin(plan)
        return plan

    def ask(self) -> Plan:
        r = self.settings.reactive
        if not self.recent:
            return self.plan
        arrivals = np.concatenate(self.recent)
        last = arrivals[arrivals >= self.now_ms - ms(self.settings.interval_s)]
        need = envelope_rate_rps(last, self.windows_s, float(self.settings.interval_s))
        need += min(need, self.backlog.requests / r.drain_s)  # drain, at most doubling the rate
        deployed = self.plan.arrival_rps
        if need > deployed:
            self.plan = self._plan_at(need * (1.0 + r.up_margin))
            self.last_up_ms = self.now_ms
            return self.plan
        if self.now_ms - self.last_up_ms < ms(r.cooldown_s):
            return self.plan
        start_ms = self.now_ms - ms(r.down_window_s)
        recent = arrivals[arrivals >= start_ms]
        counts = np.bincount(((recent - start_ms) // MS_PER_S).astype(np.int64), minlength=int(r.down_window_s))
        peak5 = float(np.convolve(counts, np.ones(5), mode="valid").max()) / 5.0 if counts.size >= 5 else 0.0
        target = max(peak5, need) * (1.0 + r.down_margin)
        if target < deployed * (1.0 - r.hysteresis):
            self.plan = self._plan_at(target)
        return self.plan


class PredictivePolicy:
    """IPA-style: forecast the coming peak, re-solve the ILP, switch configuration when the objective says it pays."""

    name = PolicyKind.PREDICTIVE.value
    instant = False

    def __init__(self, book: PlanBook, initial: Plan, settings: PolicySettings, track_backlog: bool = True):
        self.book, self.settings = book, settings
        self.plan = initial
        self.peaks: list[float] = []
        self.backlog = BacklogEstimate()
        self.track_backlog = track_backlog  # off when something else (a serverless pool) takes the overflow
        self.cv = RecentCv(settings)
        self.forecaster = make_forecaster(settings.predictive.forecast)

    def tell(self, observation: Observation) -> None:
        if self.track_backlog:
            self.backlog.update(observation)
        self.cv.update(observation)
        counts = observation.counts_per_s()
        self.peaks.append(float(interval_peaks_rps(counts, counts.size, self.settings.peak_window_s)[0]))

    def forecast_rate_rps(self, horizon: float) -> float:
        """The rate to size for over ``horizon`` intervals, before the margin and the drain term."""
        return self.forecaster.forecast(np.asarray(self.peaks), horizon)

    def ask(self) -> Plan:
        p = self.settings.predictive
        if not self.peaks:
            return self.plan
        delay_s = max(s.startup_s + (s.load_time_s or 0.0) for s in self.plan.stages)
        horizon = (delay_s + self.settings.interval_s) / self.settings.interval_s
        rate = self.forecast_rate_rps(horizon) * (1.0 + p.margin)
        rate += min(rate, self.backlog.requests / p.drain_s)  # drain, at most doubling the rate
        cv = self.cv.value
        best = self.book.plan(rate, cv)
        if plan_pin(best) != plan_pin(self.plan):
            # A switch serves nothing new until the new replicas load: never while a backlog
            # drains (then the configuration's largest plan is kept), otherwise when it pays.
            if self.backlog.requests > 0:
                keep = self.book.pinned_capped(rate, plan_pin(self.plan), cv)
            else:
                keep = self.book.pinned(rate, plan_pin(self.plan), cv)
            if keep is not None and (self.backlog.requests > 0 or
                                     not switch_pays(self.book, keep, best, p.switch_hysteresis, p.switch_amortize_s)):
                best = keep
        self.plan = best
        return best


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy factory may read: the plan cache, the trace's per-second counts and per-interval
    gap CVs (baselines and the oracle read them whole), and the settings."""

    book: PlanBook
    counts_per_s: np.ndarray
    settings: PolicySettings
    interval_cvs: tuple[float | None, ...]

    @property
    def peaks_req_per_s(self) -> np.ndarray:
        return interval_peaks_rps(self.counts_per_s, self.settings.interval_s, self.settings.peak_window_s)

    def initial(self) -> Plan:
        """Every adaptive policy starts from the first interval's optimum."""
        return self.book.plan(float(self.peaks_req_per_s[0]), self.interval_cvs[0])
