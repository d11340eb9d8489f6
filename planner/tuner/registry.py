"""The policy registry: each PolicyKind's factory, the policies a request can run, the default.

Its own module, above both planner.tuner.policies and planner.tuner.burst (which builds on the
predictive policy), so that neither imports the other's back.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from planner.resources import serverless_hardware
from planner.tuner.burst import BurstPolicy
from planner.tuner.planbook import PlanBook
from planner.tuner.policies import (OraclePolicy, Policy, PolicyInputs, PredictivePolicy, ReactivePolicy, StaticPolicy,
                                    interval_peaks_rps)
from planner.tuner.settings import DEFAULT_POLICY, PolicyKind, PolicySettings

POLICIES: dict[PolicyKind, Callable[[PolicyInputs], Policy]] = {
    PolicyKind.STATIC_PEAK: lambda i: StaticPolicy(PolicyKind.STATIC_PEAK.value,
                                                   i.book.plan(float(i.peaks_req_per_s.max()))),
    PolicyKind.STATIC_MEAN: lambda i: StaticPolicy(PolicyKind.STATIC_MEAN.value,
                                                   i.book.plan(float(np.mean(i.counts_per_s)))),
    PolicyKind.ORACLE: lambda i: OraclePolicy(i.book, i.peaks_req_per_s, list(i.interval_cvs)),
    PolicyKind.REACTIVE: lambda i: ReactivePolicy(i.book, i.initial(), i.settings),
    PolicyKind.PREDICTIVE: lambda i: PredictivePolicy(i.book, i.initial(), i.settings),
    PolicyKind.BURST: BurstPolicy,
}




def available_kinds(request) -> tuple[PolicyKind, ...]:
    """The policies a request can run: all, less ``burst`` when its catalog has no serverless entry."""
    return tuple(k for k in PolicyKind if k is not PolicyKind.BURST or serverless_hardware(request.catalog))


def default_policy(request) -> PolicyKind:
    """``burst`` when the request's catalog has a serverless entry, else ``predictive`` (docs/benchmarks.md)."""
    return PolicyKind.BURST if PolicyKind.BURST in available_kinds(request) else DEFAULT_POLICY


def make_policy(kind: PolicyKind, book: PlanBook, counts_per_s: np.ndarray, settings: PolicySettings,
                interval_cvs: list[float | None] | None = None) -> Policy:
    """The policy ``kind`` for a trace given by its per-second counts and per-interval gap CVs."""
    intervals = interval_peaks_rps(counts_per_s, settings.interval_s, settings.peak_window_s).size
    cvs = tuple(interval_cvs) if interval_cvs is not None and settings.measure_cv else (None,) * intervals
    return POLICIES[kind](PolicyInputs(book, np.asarray(counts_per_s), settings, cvs))
