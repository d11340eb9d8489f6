"""Verified planning: re-plan until the simulated p99 meets the SLO, with both figures recorded."""

from __future__ import annotations

import numpy as np
import pytest

from planner import io
from planner.errors import InfeasibleError
from planner.optimize import PlanRequest, make_plan
from planner.sim import SimConfig, simulate
from planner.traces import gamma, poisson
from planner.verify import Knob, verify_plan
from tests.fixtures import SYNTHETIC


def _request(name: str) -> PlanRequest:
    return io.load_request(SYNTHETIC / f"{name}.yaml")


def test_a_plan_that_verifies_at_once_is_the_optimal_plan():
    request = _request("video")
    trace = poisson(request.spec.arrival_rps, 300.0, np.random.default_rng(1))
    plan, report = verify_plan(request, trace, seed=1)
    optimal = make_plan(request)
    assert report.verified and len(report.rounds) == 1 and report.rounds[0].knob is Knob.NONE
    assert plan.cost_usd_per_hour == optimal.cost_usd_per_hour
    assert report.simulated_p99_ms <= request.spec.slo_ms
    assert plan.provenance["verification"]["simulated_p99_ms"] == report.simulated_p99_ms
    assert plan.provenance["verification"]["predicted_p99_ms"] == plan.predicted_p99_ms


def test_a_bursty_trace_forces_a_costlier_plan_that_then_verifies():
    request = _request("video")
    trace = gamma(request.spec.arrival_rps, 3.0, 600.0, np.random.default_rng(3))
    optimal = make_plan(request)
    assert simulate(optimal, trace, SimConfig(seed=1)).summary.p99_ms > request.spec.slo_ms  # the premise
    plan, report = verify_plan(request, trace, seed=1)
    assert report.verified and len(report.rounds) > 1
    assert plan.slo_ms == request.spec.slo_ms  # the tightened budget is not what the plan promises
    assert plan.cost_usd_per_hour > optimal.cost_usd_per_hour
    assert not report.rounds[0].verified and any(r.verified for r in report.rounds)
    # along each path, every re-plan cut off the rejected plan: a budget below its predicted p99, or
    # a utilisation cap below its busiest stage; a path stops at its first verified plan
    for knob in (Knob.LATENCY_BUDGET, Knob.HEADROOM):
        path = [report.rounds[0]] + [r for r in report.rounds if r.knob is knob]
        for before, after in zip(path, path[1:]):
            assert not before.verified
            assert (after.latency_budget_ms < before.predicted_p99_ms if knob is Knob.LATENCY_BUDGET
                    else after.max_utilization < before.max_utilization)
    # the verified figure is reproducible from the returned plan and the same seed
    again = simulate(plan, trace, SimConfig(seed=1, slo_ms=request.spec.slo_ms))
    assert again.summary.p99_ms == pytest.approx(report.simulated_p99_ms)
    assert {s.stage for s in report.stages} == {s.stage for s in plan.stages}


def test_no_verifiable_plan_raises_with_the_closest_miss():
    request = _request("video")
    trace = gamma(request.spec.arrival_rps * 1.8, 4.0, 300.0, np.random.default_rng(5))
    with pytest.raises(InfeasibleError, match="no plan verified.*Closest: round.*To fix"):
        verify_plan(request, trace, seed=1, max_rounds=2)


def test_the_better_path_wins_and_a_repeated_configuration_is_not_simulated_twice(monkeypatch):
    import planner.verify as verify

    request = _request("video")
    trace = gamma(request.spec.arrival_rps, 3.0, 600.0, np.random.default_rng(3))
    calls = []
    real = verify.simulate
    monkeypatch.setattr(verify, "simulate", lambda *a, **k: calls.append(1) or real(*a, **k))
    plan, report = verify_plan(request, trace, seed=1)
    configurations = [r.configuration for r in report.rounds]
    assert len(calls) == len(set(configurations))
    verified = [r for r in report.rounds if r.verified]
    assert plan.cost_usd_per_hour == min(r.cost_usd_per_hour for r in verified)
    assert {r.knob for r in report.rounds} >= {Knob.LATENCY_BUDGET, Knob.HEADROOM}
