"""The plan explanation on small instances whose answer is known, and on the bundled examples."""

from __future__ import annotations

import pytest

from planner.optimize import PlanRequest, make_plan
from planner.report.explain import ConstraintKind, better, explain
from planner.spec import MinCost
from profiler.schema import ProfileTable
from tests.fixtures import SYNTHETIC, linear_profile, make_catalog, make_spec
from tests.report.conftest import request_for


def _request(spec, catalog, rows) -> PlanRequest:
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)))


def test_the_slo_binds_when_the_cheaper_variant_is_too_slow():
    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 1, "usd_per_hour": 1.0},
                            {"name": "gpu", "kind": "gpu", "cores": 4, "gpus": 1, "usd_per_hour": 2.0}])
    rows = linear_profile("m", "slow", "cpu", [1], 100.0, 0.0, 0.9) + linear_profile("m", "fast", "gpu", [1], 10.0, 0.0, 0.9)
    spec = make_spec(stages=[{"name": "s", "model": "m"}], slo_ms=50, arrival_rps=1, batch_sizes=[1])
    request = _request(spec, catalog, rows)
    plan = make_plan(request)
    assert plan.stages[0].variant == "fast"
    e = explain(request, plan)
    slo = next(c for c in e.constraints if c.kind is ConstraintKind.SLO)
    assert slo.binding and slo.subject == "s" and slo.slack == pytest.approx(50 - plan.predicted_p99_ms)
    change = e.cheapest_change
    assert change.kind is ConstraintKind.SLO and change.plan.stages[0].variant == "slow"
    slow_ms = change.plan.predicted_p99_ms
    # The smallest SLO admitting the slow variant is its p99; bisection lands just above it.
    assert slow_ms <= change.to_value <= slow_ms + (slow_ms - 50) / 2 ** 9
    reason = e.stages[0]
    assert reason.alternative.startswith("slow@cpu") and reason.violations[0].startswith("latency SLO")


def test_unit_limits_bind_when_the_cheap_hardware_runs_out():
    catalog = make_catalog([{"name": "cheap", "kind": "cpu", "cores": 1, "usd_per_hour": 1.0, "max_units": 1},
                            {"name": "dear", "kind": "cpu", "cores": 1, "usd_per_hour": 3.0}])
    rows = linear_profile("m", "v", "cheap", [1], 10.0, 0.0, 0.9) + linear_profile("m", "v", "dear", [1], 10.0, 0.0, 0.9)
    spec = make_spec(stages=[{"name": "s", "model": "m"}], slo_ms=1000, arrival_rps=150, batch_sizes=[1])
    request = _request(spec, catalog, rows)
    plan = make_plan(request)
    assert (plan.stages[0].hardware, plan.stages[0].replicas) == ("dear", 2)
    e = explain(request, plan)
    units = next(c for c in e.constraints if c.kind is ConstraintKind.UNITS and c.subject == "cheap")
    assert units.binding and units.slack == 1  # 1 unit, none used
    change = next(c for c in e.changes if c.kind is ConstraintKind.UNITS)
    assert (change.from_value, change.to_value) == (1, 2) and change.plan.cost_usd_per_hour == pytest.approx(2.0)
    assert not any(c.binding for c in e.constraints if c.kind is ConstraintKind.SLO)


def test_the_accuracy_floor_binds_in_the_video_example_and_its_change_is_real(video):
    request, plan = video
    e = explain(request, plan)
    floor = next(c for c in e.constraints if c.kind is ConstraintKind.ACCURACY_FLOOR)
    assert floor.binding and floor.slack == pytest.approx(plan.accuracy - 0.4)
    change = next(c for c in e.changes if c.kind is ConstraintKind.ACCURACY_FLOOR)
    assert change.to_value < change.from_value
    # Re-solve independently at the reported floor: it is cheaper than the plan.
    spec = request.spec.model_copy(update={"objective": MinCost(kind="min_cost", min_accuracy=change.to_value)})
    again = make_plan(PlanRequest(spec=spec, catalog=request.catalog, profiles=request.profiles))
    assert better(again, plan, request.spec)
    for reason in e.stages:
        if reason.alternative is not None:
            assert reason.alternative_usd_per_hour < reason.chosen_usd_per_hour and reason.violations


def test_every_slo_path_of_a_dag_is_listed_and_the_slowest_binds():
    request = request_for(SYNTHETIC / "ocr.yaml")
    plan = make_plan(request)
    e = explain(request, plan)
    paths = {c.subject: c for c in e.constraints if c.kind is ConstraintKind.SLO}
    assert sorted(paths) == ["detect -> angle -> recognise", "detect -> layout"]
    slowest = max(paths.values(), key=lambda c: c.used)
    assert slowest.used == pytest.approx(plan.predicted_p99_ms)
    assert slowest.binding and not paths["detect -> layout"].binding
