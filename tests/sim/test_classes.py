"""Resource classes in the simulator (planner.sim.classes): spot preemptions, serverless cold starts."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from planner.errors import SpecError
from planner.plan import StageResource
from planner.resources import plan_risk
from planner.sim import SimConfig, ServiceModel, QueueMode, result_to_json, simulate
from planner.sim.classes import has_classes, simulate_classes
from planner.spec import ResourceClass
from planner.traces import Trace, poisson
from tests.fixtures import classes_request, plan_of, plan_on, stage

HARSH_SPOT = StageResource(ResourceClass.SPOT, preemptions_per_hour=6.0, replacement_s=120.0)


def _with(plan, resource):
    return replace(plan, stages=tuple(replace(s, resource=resource) for s in plan.stages))


def test_a_spot_plan_under_frequent_preemptions_is_preempted_and_meets_the_slo_less_often():
    plan = _with(plan_on(classes_request(), "cpu-spot", 20.0), HARSH_SPOT)
    trace = poisson(20.0, 3600.0, np.random.default_rng(5))
    config = SimConfig(seed=1)
    on_demand = simulate(plan, trace, config)
    spot = simulate_classes(plan, trace, config)
    assert spot.resources.preemptions > 0
    assert spot.summary.slo_attainment < on_demand.summary.slo_attainment
    assert spot.summary.completed == spot.summary.requests  # conserved: every request is still served
    # the count is what the formula expects, replicas x lambda / (1 + lambda D) per hour, within 4 sd
    often = _with(plan, StageResource(ResourceClass.SPOT, preemptions_per_hour=60.0, replacement_s=12.0))
    expected = plan_risk(often).stages[0].preemptions_per_hour
    count = simulate_classes(often, trace, config).resources.preemptions
    assert abs(count - expected) < 4 * math.sqrt(expected), (count, expected)
    again = simulate_classes(plan, trace, config)
    assert result_to_json(again) == result_to_json(spot)  # same seed, same bytes
    other = simulate_classes(plan, trace, replace(config, seed=2))
    assert result_to_json(other) != result_to_json(spot)


def test_spot_without_preemptions_and_on_demand_plans_simulate_exactly_as_the_plain_simulator():
    trace = poisson(20.0, 120.0, np.random.default_rng(2))
    config = SimConfig(seed=3)
    calm = _with(plan_on(classes_request(), "cpu-spot", 20.0),
                 StageResource(ResourceClass.SPOT, preemptions_per_hour=0.0, replacement_s=60.0))
    plain = simulate(calm, trace, config)
    classed = simulate_classes(calm, trace, config)
    assert classed.resources.preemptions == 0
    assert result_to_json(replace(classed, resources=None)) == result_to_json(plain)
    on_demand = plan_on(classes_request(), "cpu", 20.0)
    assert not has_classes(on_demand) and simulate_classes(on_demand, trace, config).resources.stages == ()


def test_a_serverless_stage_pays_the_cold_start_exactly_when_an_instance_idled_past_keep_warm():
    cold_ms, warm_s = 500.0, 1.0
    fn = StageResource(ResourceClass.SERVERLESS, cold_start_ms=cold_ms, keep_warm_s=warm_s, max_concurrency=1,
                       usd_per_second=0.0001, usd_per_request=0.0)
    plan = plan_of(replace(stage("f", replicas=3, p50_ms=10.0), resource=fn), slo_ms=100.0)
    # 0 s: cold (never used; done at 0.51 s); 0.8 s: idle 0.29 s, warm; 5 s: idle 4.2 s > 1 s, cold;
    # 5.8 s: warm; 9 s: cold
    arrivals = np.array([0.0, 800.0, 5000.0, 5800.0, 9000.0])
    trace = Trace(arrivals, 10_000.0, "sparse")
    result = simulate_classes(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC))
    assert result.resources.stages[0].instances == 1  # max_concurrency caps the plan's 3 replicas
    assert result.resources.cold_starts == 3
    np.testing.assert_allclose(result.latency_ms, [10.0 + cold_ms, 10.0, 10.0 + cold_ms, 10.0, 10.0 + cold_ms])
    assert math.isclose(result.summary.slo_attainment, 2 / 5)
    assert simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC)).summary.slo_attainment == 1.0


def test_the_cold_share_formula_is_near_the_simulated_share():
    fn = StageResource(ResourceClass.SERVERLESS, cold_start_ms=300.0, keep_warm_s=2.0, max_concurrency=8,
                       usd_per_second=0.0001, usd_per_request=0.0)
    s = replace(stage("f", replicas=4, p50_ms=10.0), resource=fn, load_items_per_s=1.0, utilization=0.0025)
    plan = plan_of(s, slo_ms=100.0, arrival_rps=1.0)
    trace = poisson(1.0, 7200.0, np.random.default_rng(4))
    result = simulate_classes(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC))
    stage_events = result.resources.stages[0]
    simulated = stage_events.cold_starts / stage_events.batches
    risk = plan_risk(plan).stages[0]
    assert risk.cold_share == pytest.approx(simulated, abs=0.05)  # P(Poisson(2) < 4) = 0.857
    assert risk.miss_share == risk.cold_share  # 300 ms of cold start is more than the 100 ms of slack


def test_preempted_replicas_need_the_central_queue():
    plan = _with(plan_on(classes_request(), "cpu-spot", 20.0), HARSH_SPOT)
    trace = poisson(20.0, 60.0, np.random.default_rng(1))
    with pytest.raises(SpecError, match="central queue"):
        simulate_classes(plan, trace, SimConfig(queue_mode=QueueMode.PER_REPLICA))
