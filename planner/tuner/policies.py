"""Tuning policies behind one ask/tell protocol (Model Analyzer's search-strategy shape).

Every interval the replay *tells* a policy what arrived in the interval that just ended
(:class:`Observation`) and *asks* it for the plan to apply next. Policies keep their own history
(they are the classes that hold state over time) and take plans from a shared
:class:`~planner.tuner.planbook.PlanBook`, so no policy solves an ILP twice for the same rate.

- ``reactive`` (InferLine's tuner): keeps the initial plan's configuration and changes replica
  counts only. Scale up as soon as the traffic envelope of the last interval needs a higher rate
  than the deployed plan was sized for; scale down only when the peak 5 s rate over the last
  ``down_window_s`` seconds, plus a margin, is below the deployed rate by the hysteresis, and not
  within ``cooldown_s`` of the last scale-up.
- ``predictive`` (IPA): every interval, forecast the peak rate over the time a new replica needs to
  come up plus one interval (planner.tuner.forecast), and re-solve the ILP at it, which may switch
  variants and batch sizes. A switch is taken only when it saves more than ``switch_saving`` of
  the cost of keeping the configuration (a switch runs old and new replicas side by side while the
  new ones load).
- Both adaptive policies add ``backlog / drain_s`` to the rate they plan for (the backlog is
  estimated from arrivals beyond the serving capacity, :class:`BacklogEstimate`; at most doubling
  the rate), and plan for the largest inter-arrival CV of their last intervals (``measure_cv``).
- ``static-peak`` / ``static-mean``: one plan for the trace's peak interval rate / mean rate.
- ``oracle``: with hindsight, each interval's optimal plan for the peak rate that actually arrives
  in it, reconfigured for free at the interval's start (planner.tuner.deployment): the cost floor of
  any policy sized for each interval's actual peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np

from planner.plan import Plan
from planner.tuner.forecast import PeakForecaster, envelope_rate_rps, envelope_windows_s, gaps_cv, interval_peaks_rps
from planner.tuner.planbook import PlanBook, plan_pin


class PolicyKind(str, Enum):
    REACTIVE = "reactive"
    PREDICTIVE = "predictive"
    STATIC_PEAK = "static-peak"
    STATIC_MEAN = "static-mean"
    ORACLE = "oracle"


@dataclass(frozen=True)
class Observation:
    """What arrived in the interval ``[start_s, end_s)`` (arrival times in ms from the trace start),
    and the pipeline's serving capacity over it (mean of its start, middle and end; replicas still
    starting do not count), from which a policy estimates the backlog it has to drain."""

    start_s: float
    end_s: float
    arrival_ms: np.ndarray
    capacity_rps: float = math.inf


class BacklogEstimate:
    """Requests left waiting: grows by arrivals beyond the serving capacity, shrinks by spare capacity.

    A plan sized for the arrival rate alone leaves a backlog built during a start-up delay in the
    queues for minutes; sizing for ``rate + backlog / drain_s`` drains it.
    """

    def __init__(self) -> None:
        self.requests = 0.0

    def update(self, observation: Observation) -> float:
        seconds = observation.end_s - observation.start_s
        served = 0.9 * observation.capacity_rps * seconds  # capacity at full batches, less the utilisation cap
        self.requests = max(0.0, self.requests + observation.arrival_ms.size - served)
        return self.requests


@dataclass(frozen=True)
class ReactiveSettings:
    history_s: float = 60.0  # longest envelope window and how far back scale-up looks
    up_margin: float = 0.05  # plan this much above the envelope rate when scaling up
    down_window_s: float = 30.0  # InferLine: max 5 s rate over the last 30 s
    down_margin: float = 0.15  # plan this much above that rate when scaling down
    hysteresis: float = 0.20  # scale down only when the new rate is this much below the deployed one
    cooldown_s: float = 30.0  # no scale-down this soon after a scale-up
    drain_s: float = 30.0  # plan to drain an estimated backlog within this time


@dataclass(frozen=True)
class PredictiveSettings:
    forecaster: PeakForecaster = field(default_factory=PeakForecaster)
    margin: float = 0.05  # plan this much above the forecast
    switch_saving: float = 0.10  # switch configuration only when it saves this share of the cost
    drain_s: float = 30.0  # plan to drain an estimated backlog within this time


@dataclass(frozen=True)
class PolicySettings:
    interval_s: int = 10
    peak_window_s: int = 5  # the interval peak rate's window (planner.tuner.forecast)
    # Plan for the measured burstiness (CV of gaps within an interval; the oracle's own interval,
    # adaptive policies the largest of their last ``cv_intervals``) instead of the spec's arrival_cv.
    measure_cv: bool = True
    cv_intervals: int = 3
    reactive: ReactiveSettings = field(default_factory=ReactiveSettings)
    predictive: PredictiveSettings = field(default_factory=PredictiveSettings)


class Policy(Protocol):
    kind: PolicyKind
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


class StaticPolicy:
    """One plan for the whole trace."""

    instant = False

    def __init__(self, kind: PolicyKind, plan: Plan):
        self.kind, self._plan = kind, plan

    def tell(self, observation: Observation) -> None:
        pass

    def ask(self) -> Plan:
        return self._plan


class OraclePolicy:
    """Hindsight: the optimal plan for each interval's actual peak rate."""

    kind = PolicyKind.ORACLE
    instant = True

    def __init__(self, book: PlanBook, peaks_rps: np.ndarray, cvs: list[float | None]):
        self.book, self.peaks, self.cvs = book, np.asarray(peaks_rps), cvs
        self.interval = 0

    def tell(self, observation: Observation) -> None:
        self.interval += 1

    def ask(self) -> Plan:
        k = min(self.interval, self.peaks.size - 1)
        return self.book.plan(float(self.peaks[k]), self.cvs[k])


def _pipeline_service_s(plan: Plan) -> float:
    """Sum of batch-1 p50 service times along the stages (the shortest envelope window)."""
    return sum(s.service_ms_by_batch.p50_ms[0] for s in plan.stages) / 1000.0


class ReactivePolicy:
    """InferLine-style replica scaling on traffic envelopes, configuration fixed."""

    kind = PolicyKind.REACTIVE
    instant = False

    def __init__(self, book: PlanBook, initial: Plan, settings: PolicySettings):
        self.book, self.settings = book, settings
        self.plan = initial
        self.pin = plan_pin(initial)
        self.windows_s = envelope_windows_s(_pipeline_service_s(initial), settings.reactive.history_s)
        self.recent: list[np.ndarray] = []
        self.now_s = 0.0
        self.last_up_s = -math.inf
        self.backlog = BacklogEstimate()
        self.cv = RecentCv(settings)

    def tell(self, observation: Observation) -> None:
        self.backlog.update(observation)
        self.cv.update(observation)
        self.now_s = observation.end_s
        self.recent.append(np.asarray(observation.arrival_ms))
        keep_s = max(self.settings.reactive.history_s, self.settings.reactive.down_window_s)
        cutoff_ms = 1000.0 * (self.now_s - keep_s)
        self.recent = [a for a in self.recent if a.size and a[-1] >= cutoff_ms]

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
        last = arrivals[arrivals >= 1000.0 * (self.now_s - self.settings.interval_s)]
        need = envelope_rate_rps(last, self.windows_s, float(self.settings.interval_s))
        need += min(need, self.backlog.requests / r.drain_s)  # drain, at most doubling the rate
        deployed = self.plan.arrival_rps
        if need > deployed:
            self.plan = self._plan_at(need * (1.0 + r.up_margin))
            self.last_up_s = self.now_s
            return self.plan
        if self.now_s - self.last_up_s < r.cooldown_s:
            return self.plan
        start_ms = 1000.0 * (self.now_s - r.down_window_s)
        recent = arrivals[arrivals >= start_ms]
        counts = np.bincount(((recent - start_ms) // 1000.0).astype(np.int64), minlength=int(r.down_window_s))
        peak5 = float(np.convolve(counts, np.ones(5), mode="valid").max()) / 5.0 if counts.size >= 5 else 0.0
        target = max(peak5, need) * (1.0 + r.down_margin)
        if target < deployed * (1.0 - r.hysteresis):
            self.plan = self._plan_at(target)
        return self.plan


class PredictivePolicy:
    """IPA-style: forecast the coming peak, re-solve the ILP, switch configuration when it pays."""

    kind = PolicyKind.PREDICTIVE
    instant = False

    def __init__(self, book: PlanBook, initial: Plan, settings: PolicySettings):
        self.book, self.settings = book, settings
        self.plan = initial
        self.peaks: list[float] = []
        self.backlog = BacklogEstimate()
        self.cv = RecentCv(settings)

    def tell(self, observation: Observation) -> None:
        self.backlog.update(observation)
        self.cv.update(observation)
        a = np.asarray(observation.arrival_ms)
        seconds = max(1, int(round(observation.end_s - observation.start_s)))
        counts = np.bincount(np.minimum(((a - 1000.0 * observation.start_s) // 1000.0).astype(np.int64), seconds - 1),
                             minlength=seconds) if a.size else np.zeros(seconds)
        self.peaks.append(float(interval_peaks_rps(counts, seconds, self.settings.peak_window_s)[0]))

    def ask(self) -> Plan:
        p = self.settings.predictive
        if not self.peaks:
            return self.plan
        delay_s = max(s.startup_s + (s.load_time_s or 0.0) for s in self.plan.stages)
        horizon = (delay_s + self.settings.interval_s) / self.settings.interval_s
        rate = p.forecaster.forecast(np.asarray(self.peaks), horizon) * (1.0 + p.margin)
        rate += min(rate, self.backlog.requests / p.drain_s)  # drain, at most doubling the rate
        cv = self.cv.value
        best = self.book.plan(rate, cv)
        if plan_pin(best) != plan_pin(self.plan):
            # A switch serves nothing new until the new replicas load: never while a backlog
            # drains (then the configuration's largest plan is kept), and only for a real saving.
            if self.backlog.requests > 0:
                keep = self.book.pinned_capped(rate, plan_pin(self.plan), cv)
            else:
                keep = self.book.pinned(rate, plan_pin(self.plan), cv)
            if keep is not None and (self.backlog.requests > 0 or
                                     best.cost_usd_per_hour > keep.cost_usd_per_hour * (1.0 - p.switch_saving)):
                best = keep
        self.plan = best
        return best


def make_policy(kind: PolicyKind, book: PlanBook, counts_per_s: np.ndarray, settings: PolicySettings,
                interval_cvs: list[float | None] | None = None) -> Policy:
    """A policy for a trace given by its per-second counts and per-interval gap CVs (baselines and
    the oracle read them whole)."""
    peaks = interval_peaks_rps(counts_per_s, settings.interval_s, settings.peak_window_s)
    cvs = list(interval_cvs) if interval_cvs is not None and settings.measure_cv else [None] * peaks.size
    if kind is PolicyKind.STATIC_PEAK:
        return StaticPolicy(kind, book.plan(float(peaks.max())))
    if kind is PolicyKind.STATIC_MEAN:
        return StaticPolicy(kind, book.plan(float(np.mean(counts_per_s))))
    if kind is PolicyKind.ORACLE:
        return OraclePolicy(book, peaks, cvs)
    initial = book.plan(float(peaks[0]), cvs[0])  # every adaptive policy starts from the first interval's optimum
    if kind is PolicyKind.REACTIVE:
        return ReactivePolicy(book, initial, settings)
    return PredictivePolicy(book, initial, settings)
