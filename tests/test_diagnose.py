"""Infeasible problems are explained: which constraint binds, and the nearest relaxation that works."""

from __future__ import annotations

import re

import pytest

from planner.errors import InfeasibleError
from planner.optimize import PlanRequest, make_plan
from profiler.schema import ProfileTable
from tests.fixtures import linear_profile, make_catalog, make_spec

BATCHES = [1, 4]


def request(max_units=None, **spec_fields) -> PlanRequest:
    catalog = make_catalog([
        {"name": "small", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1},
        {"name": "big", "kind": "cpu", "cores": 8, "usd_per_hour": 0.4, "max_units": max_units},
    ])
    rows = []
    rows += linear_profile("m", "fast", "small", BATCHES, 2.0, 8.0, 0.7)
    rows += linear_profile("m", "fast", "big", BATCHES, 1.0, 2.0, 0.7)
    rows += linear_profile("m", "good", "small", BATCHES, 4.0, 30.0, 0.9)
    rows += linear_profile("m", "good", "big", BATCHES, 2.0, 7.0, 0.9)
    fields = {"stages": [{"name": "a", "model": "m"}], "slo_ms": 200.0, "arrival_rps": 20.0,
              "batch_sizes": BATCHES, "max_replicas": 8}
    fields.update(spec_fields)
    return PlanRequest(spec=make_spec(**fields), catalog=catalog, profiles=ProfileTable(tuple(rows)))


def message(req: PlanRequest) -> str:
    with pytest.raises(InfeasibleError) as info:
        make_plan(req)
    return str(info.value)


def number_after(text: str, phrase: str) -> float:
    return float(re.search(re.escape(phrase) + r"\s*([0-9.eE+-]+)", text).group(1).rstrip("."))


def test_capacity_names_the_stage_and_the_load_it_could_carry():
    text = message(request(arrival_rps=5000.0))
    assert "stage 'a' must serve 5000 items/s" in text
    limit = number_after(text, "lower arrival_rps to at most")
    make_plan(request(arrival_rps=limit * 0.999))  # the suggested load does have a plan


def test_slo_gives_the_smallest_achievable_p99_and_it_works():
    text = message(request(slo_ms=3.0))
    assert "latency SLO binds" in text
    smallest = number_after(text, "Raise slo_ms to at least")
    plan = make_plan(request(slo_ms=smallest))
    assert plan.predicted_p99_ms <= smallest


def test_units_binding_is_reported_per_hardware():
    # Only 'big' is fast enough for this SLO at this load, and it has 1 unit.
    text = message(request(max_units=1, arrival_rps=300.0, slo_ms=11.0))
    assert "hardware unit limits bind" in text and "'big' needs" in text


def test_accuracy_floor_reports_the_reachable_accuracy():
    text = message(request(objective={"kind": "min_cost", "min_accuracy": 0.95}))
    assert "accuracy floor binds" in text
    reach = number_after(text, "Lower min_accuracy to at most")
    assert reach == pytest.approx(0.9, abs=1e-6)
    make_plan(request(objective={"kind": "min_cost", "min_accuracy": reach}))


def test_budget_reports_the_cheapest_plan():
    text = message(request(objective={"kind": "max_accuracy", "budget_usd_per_hour": 0.05}))
    assert "budget binds" in text
    cheapest = number_after(text, "Raise the budget to at least")
    plan = make_plan(request(objective={"kind": "max_accuracy", "budget_usd_per_hour": cheapest}))
    assert plan.cost_usd_per_hour <= cheapest * (1 + 1e-9)
