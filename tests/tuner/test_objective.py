"""Objective-aware switching, capacity honesty, targets, the policy registry and the backlog estimate."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from planner.optimize import PlanRequest
from planner.spec import MinCost
from planner.traces import poisson
from planner.tuner import POLICIES, PlanBook, PlaybackPolicy, PolicyKind, TuneSettings, compare, compare_rows, tune
from planner.tuner.capacity import uncap_throughput
from planner.tuner.planbook import StageKey, plan_pin
from planner.tuner.policies import BacklogEstimate, Observation, switch_cost_usd_per_hour, switch_pays
from planner.tuner.replay import tune_policy
from planner.tuner.targets import shortfall
from profiler.schema import ProfileRow, ProfileTable
from tests.fixtures import linear_profile, make_catalog, make_spec


@lru_cache(maxsize=None)
def weighted_request() -> PlanRequest:
    """One stage, two variants of the SAME cost and speed on one machine, one more accurate."""
    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 1, "usd_per_hour": 1.0, "startup_s": 0}])
    rows = (linear_profile("m", "low", "cpu", (1, 2), 10.0, 20.0, 0.5)
            + linear_profile("m", "high", "cpu", (1, 2), 10.0, 20.0, 0.8))
    spec = make_spec(stages=[{"name": "s", "model": "m"}], slo_ms=2000, arrival_rps=5, batch_sizes=[1, 2],
                     max_replicas=16, objective={"kind": "weighted", "accuracy_weight": 2.0, "cost_weight": 1.0})
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)))


def test_a_switch_to_a_more_accurate_configuration_of_the_same_cost_pays_under_a_weighted_objective():
    book = PlanBook(weighted_request())
    best = book.plan(10.0)
    assert best.stages[0].variant == "high"
    pin = (("s", StageKey("low", best.stages[0].hardware, best.stages[0].batch_size)),)
    keep = book.pinned(10.0, pin)
    assert keep is not None and math.isclose(keep.cost_usd_per_hour, best.cost_usd_per_hour)
    # no start-up: the switch is free, and +0.3 accuracy x 2 = +0.6 score beats a 0.5 hysteresis, not 0.7
    assert switch_cost_usd_per_hour(keep, best, 300.0) == 0.0
    assert switch_pays(book, keep, best, hysteresis=0.5, amortize_s=300.0)
    assert not switch_pays(book, keep, best, hysteresis=0.7, amortize_s=300.0)
    # the predictive policy started on the less accurate variant moves to the better one at once
    counts = np.full(60, 10)
    trace = poisson(10.0, 60.0, np.random.default_rng(1))

    def factory(c, cvs):
        policy = POLICIES[PolicyKind.PREDICTIVE].__call__  # the registry's factory, then start it elsewhere
        from planner.tuner.policies import PolicyInputs, PredictivePolicy
        inputs = PolicyInputs(book, counts, TuneSettings().policy, tuple(cvs))
        assert policy(inputs).name == "predictive"
        return PredictivePolicy(book, keep, TuneSettings().policy)

    result = tune_policy(book, trace, factory, TuneSettings(seed=2))
    assert [p.stages[0].variant for p in result.plans[:2]] == ["low", "high"]


def test_a_switch_is_charged_for_the_old_replicas_while_the_new_ones_load():
    book = PlanBook(weighted_request())
    best = book.plan(10.0)
    slow = replace(best, stages=tuple(replace(s, startup_s=60.0) for s in best.stages))
    keep = book.pinned(10.0, (("s", StageKey("low", best.stages[0].hardware, best.stages[0].batch_size)),))
    charge = switch_cost_usd_per_hour(keep, slow, amortize_s=120.0)
    assert charge == pytest.approx(keep.stages[0].usd_per_hour * 60.0 / 120.0)
    assert switch_cost_usd_per_hour(keep, keep, 120.0) == 0.0  # no switch, no charge


def test_min_cost_never_switches_for_accuracy_alone():
    req = weighted_request()
    req = replace(req, spec=req.spec.model_copy(update={"objective": MinCost(kind="min_cost", min_accuracy=0.0)}))
    book = PlanBook(req)
    a = book.pinned(10.0, (("s", StageKey("low", "cpu", 2)),))
    b = book.pinned(10.0, (("s", StageKey("high", "cpu", 2)),))
    assert a is not None and b is not None and math.isclose(a.cost_usd_per_hour, b.cost_usd_per_hour)
    assert not switch_pays(book, a, b, 0.0, 300.0)


def test_the_backlog_grows_only_by_arrivals_beyond_the_full_capacity_and_drains_by_the_spare():
    backlog = BacklogEstimate()
    arrivals = np.arange(100) * 100.0  # 100 requests in 10 s
    assert backlog.update(Observation(0.0, 10_000.0, arrivals, capacity_req_per_s=5.0)) == pytest.approx(50.0)
    # the next 10 s bring 100 more at a capacity of 12/s: 20 of the 50 drain
    assert backlog.update(Observation(10_000.0, 20_000.0, arrivals + 10_000.0, 12.0)) == pytest.approx(30.0)
    # a load at 97-100% of the capacity is a stable queue, not a growing backlog
    assert BacklogEstimate().update(Observation(0.0, 10_000.0, arrivals, 10.0)) == 0.0
    assert BacklogEstimate().update(Observation(0.0, 10_000.0, arrivals, 10.2)) == 0.0


def test_every_policy_kind_has_a_factory():
    assert set(POLICIES) == set(PolicyKind)


def _capped_rows() -> list[ProfileRow]:
    """A fast variant profiled at an offered 20/s (throughput flat at 20) and a slow one (service-bound)."""
    rows = []
    for b, p50 in ((1, 25.0), (2, 40.0), (8, 120.0), (32, 400.0)):
        rows.append(ProfileRow("m", "fast", "cpu", b, p50, 1.3 * p50, 20.0 if b > 1 else 19.8, 0.9))
    for b, p50 in ((1, 100.0), (2, 190.0), (8, 700.0)):
        rows.append(ProfileRow("m", "slow", "cpu", b, p50, 1.3 * p50, 1000.0 * b / p50, 0.8))
    return rows


def test_throughput_capped_by_the_offered_load_is_planned_from_latency():
    table, notes = uncap_throughput(ProfileTable(tuple(_capped_rows())), fill_s=1.0)
    by = {(r.variant, r.batch_size): r for r in table.rows}
    assert len(notes) == 1 and notes[0].variant == "fast" and notes[0].offered_rps == pytest.approx(20.0)
    assert by[("fast", 8)].throughput_rps == pytest.approx(8 * 1000.0 / 120.0)
    assert by[("fast", 2)].throughput_rps == pytest.approx(50.0)
    assert ("fast", 32) not in by and notes[0].dropped_batches == (32,)  # 32 > 20/s x 1 s: it could not fill
    assert by[("slow", 8)].throughput_rps == pytest.approx(8000.0 / 700.0)  # service-bound rows are kept
    assert "capped by the offered profiling load" in str(notes[0])
    unchanged, none = uncap_throughput(ProfileTable(tuple(r for r in _capped_rows() if r.variant == "slow")))
    assert none == () and unchanged.rows == tuple(r for r in _capped_rows() if r.variant == "slow")


def test_targets_include_the_constraint_and_agree_between_a_single_run_and_a_comparison():
    book = PlanBook(weighted_request())
    trace = poisson(8.0, 60.0, np.random.default_rng(5))
    both = compare(book, trace, (PolicyKind.ORACLE, PolicyKind.PREDICTIVE), TuneSettings(seed=1))
    every = compare(book, trace, None, TuneSettings(seed=1))
    single = {r.policy: r for r in compare_rows(book.request.spec, both)}
    full = {r.policy: r for r in compare_rows(book.request.spec, every)}
    assert single["predictive"] == full["predictive"]
    assert full["oracle"].shortfall_vs_oracle == 0.0 and full["oracle"].constraint == "none"
    with pytest.raises(ValueError, match="oracle"):
        compare_rows(book.request.spec, [r for r in both if r.summary.policy != "oracle"])
    # a min_cost floor above what the plans reach is reported as missed, by how much
    req = replace(weighted_request(), spec=weighted_request().spec.model_copy(
        update={"objective": MinCost(kind="min_cost", min_accuracy=0.0)}))
    results = compare(PlanBook(req), trace, (PolicyKind.ORACLE, PolicyKind.STATIC_MEAN), TuneSettings(seed=1))
    strict = req.spec.model_copy(update={"objective": MinCost(kind="min_cost", min_accuracy=0.9)})
    rows = {r.policy: r for r in compare_rows(strict, results)}
    assert rows["static-mean"].constraint == "accuracy >= 0.9"
    worst = min(r.accuracy for r in next(x for x in results if x.summary.policy == "static-mean").timeline)
    assert rows["static-mean"].constraint_margin == pytest.approx(worst - 0.9) and worst < 0.9
    assert not rows["static-mean"].meets_targets


def test_shortfall_is_signed_by_the_objectives_direction():
    assert shortfall(-2.2, -2.0, maximize=True) == pytest.approx(0.1)
    assert shortfall(1.15, 1.0, maximize=False) == pytest.approx(0.15)
    assert shortfall(0.9, 1.0, maximize=False) < 0


def test_playback_replays_given_plans_and_the_timeline_records_deployed_batch_timeouts():
    book = PlanBook(weighted_request())
    plans = (book.plan(5.0), book.plan(20.0))
    trace = poisson(8.0, 30.0, np.random.default_rng(3))
    result = tune_policy(book, trace, lambda c, v: PlaybackPolicy("logged", plans), TuneSettings(seed=1))
    assert result.summary.policy == "logged"
    assert [p.arrival_rps for p in result.plans] == [plans[0].arrival_rps, plans[1].arrival_rps,
                                                     plans[1].arrival_rps]
    for row, plan in zip(result.timeline, result.plans):
        assert row.stages[0].batch_timeout_ms >= 0.0
    first = result.timeline[0].stages[0]
    assert first.batch_timeout_ms == pytest.approx(plans[0].stages[0].batch_timeout_ms)
    assert plan_pin(result.plans[0])  # the plans are real plans
    default = tune(book, trace, PolicyKind.PREDICTIVE, TuneSettings(seed=1))
    assert default.summary.objective_unit == "weighted_score"
    assert default.summary.objective_value == pytest.approx(
        2.0 * default.summary.time_mean_accuracy - default.summary.mean_cost_usd_per_hour)
