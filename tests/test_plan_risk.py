"""A plan's resource classes (planner.resources.with_resources, planner.plan.PlanRisk) and their JSON."""

from __future__ import annotations

import json
import math

from planner.plan import plan_from_dict, plan_to_json
from planner.resources import plan_risk
from planner.spec import ResourceClass
from tests.fixtures import classes_request, plan_on


def test_a_spot_plan_records_its_risk_and_an_on_demand_plan_does_not():
    spot = plan_on(classes_request(), "cpu-spot", 20.0)
    stage = spot.stages[0]
    assert stage.resource.resource_class is ResourceClass.SPOT
    assert (stage.resource.preemptions_per_hour, stage.resource.replacement_s) == (1.0, 60.0)
    risk = spot.risk
    assert [r.stage for r in risk.stages] == [stage.stage]
    lam_d = 1.0 * 60 / 3600
    assert math.isclose(risk.stages[0].preemptions_per_hour, stage.replicas * 1.0 / (1 + lam_d))
    # one replica: degraded while it is down, and missing until the backlog of the outage drains
    assert stage.replicas == 1
    assert math.isclose(risk.stages[0].degraded_share, lam_d / (1 + lam_d))
    assert math.isclose(risk.stages[0].miss_share, risk.stages[0].degraded_share / (1 - stage.utilization))
    assert math.isclose(risk.attainment_factor, 1 - risk.stages[0].miss_share)
    assert math.isclose(risk.expected_slo_attainment, 0.99 * risk.attainment_factor)
    assert risk.expected_slo_attainment < 0.99
    data = json.loads(plan_to_json(spot))
    assert data["risk"]["stages"][0]["resource_class"] == "spot"
    assert data["stages"][0]["resource"] == {"resource_class": "spot", "preemptions_per_hour": 1.0,
                                             "replacement_s": 60.0}
    assert plan_to_json(plan_from_dict(data)) == plan_to_json(spot)  # round trip (10 significant digits)

    on_demand = plan_on(classes_request(), "cpu", 20.0)
    assert on_demand.risk is None and all(s.resource is None for s in on_demand.stages)
    text = plan_to_json(on_demand)
    assert '"risk"' not in text and '"resource"' not in text  # on-demand plans keep their bytes


def test_a_serverless_plan_records_cold_starts_and_its_bill_at_the_planned_load():
    plan = plan_on(classes_request(), "fn", 5.0)
    stage = plan.stages[0]
    r = plan.risk.stages[0]
    assert r.resource_class is ResourceClass.SERVERLESS and r.preemptions_per_hour == 0.0
    assert 0.0 <= r.cold_share <= 1.0 and r.cold_starts_per_hour >= 0.0
    # usd_per_second 0.0001 for u x r busy instances, usd_per_request 1e-6 per item
    expected = 3600 * (0.0001 * stage.utilization * stage.replicas + 1e-6 * stage.load_items_per_s)
    assert math.isclose(r.billed_usd_per_hour, expected)
    assert r.billed_usd_per_hour == stage.usd_per_hour  # the planner prices it so (planner.pricing)
    assert plan_to_json(plan_from_dict(json.loads(plan_to_json(plan)))) == plan_to_json(plan)
    assert plan_risk(plan) == plan.risk


def test_the_risk_line_prints_vanishing_expectations_as_below_a_millionth():
    from planner.cli.plan import risk_line

    line = risk_line(plan_on(classes_request(), "fn", 5.0).risk)  # cold starts ~1e-120 per hour at 5 rps
    assert "e-1" not in line and "< 1e-06 cold starts/h" in line
