"""The end-to-end path rule (planner.estimate.paths) on hand-computed cases, and its safety on a
seeded simulated pipeline."""

import math

import numpy as np
import pytest

from planner.estimate import latency as lat
from planner.estimate import paths
from planner.optimize import PlanRequest, make_plan
from planner.plan import ServiceCurve, ServicePoint
from planner.sim import SimConfig, simulate
from planner.traces import gamma
from profiler.schema import ProfileTable
from tests.fixtures import linear_profile, make_catalog, make_spec


def _spec(stages):
    return make_spec(stages=stages, slo_ms=1000, arrival_rps=10)


CHAIN2 = [{"name": "a", "model": "m"}, {"name": "b", "model": "m", "after": ["a"]}]
# a -> (b -> c) and a -> d: paths a-b-c (3 stages) and a-d (2 stages)
FORK = [{"name": "a", "model": "m"}, {"name": "b", "model": "m", "after": ["a"]},
        {"name": "c", "model": "m", "after": ["b"]}, {"name": "d", "model": "m", "after": ["a"]}]


def test_tail_weight_is_one_for_a_single_stage_and_the_normal_sum_rule_for_equal_tails():
    assert paths.tail_weight(1, rho=0.5) == 1.0
    assert paths.tail_weight(2, rho=0.5) == pytest.approx(math.sqrt(0.75))
    assert paths.tail_weight(4, rho=0.5) == pytest.approx(math.sqrt(0.625))
    assert paths.tail_weight(4, rho=0.0) == pytest.approx(0.5)  # independent: sqrt(n) d / (n d)
    assert paths.tail_weight(7, rho=1.0) == 1.0  # fully correlated: the plain sum of p99s
    # n equal tails d with pairwise correlation rho: sd of the sum = d sqrt(n + n (n - 1) rho)
    n, d, rho = 3, 5.0, 0.4
    assert paths.tail_weight(n, rho) * n * d == pytest.approx(d * math.sqrt(n + n * (n - 1) * rho))


def test_two_stage_chain_by_hand():
    spec = _spec(CHAIN2)
    # (m, q) = (10, 30) and (20, 40): w(2) = sqrt(0.75); 10 + 20 w + 20 + 20 w = 64.641 ms
    got = paths.end_to_end_p99_ms(spec, {"a": 10.0, "b": 20.0}, {"a": 30.0, "b": 40.0}, rho=0.5)
    assert got == pytest.approx(30.0 + 40.0 * math.sqrt(0.75))
    assert got < 70.0  # below the sum of stage p99s
    assert paths.end_to_end_p99_ms(spec, {"a": 10.0, "b": 20.0}, {"a": 30.0, "b": 40.0}, rho=1.0) == pytest.approx(70.0)


def test_never_below_the_slowest_stage_and_deterministic_stages_add_exactly():
    spec = _spec(CHAIN2)
    # one dominant stage: 50 + 50 w + 1 = 94.3 < 100, so its own p99 (100) decides
    assert paths.end_to_end_p99_ms(spec, {"a": 50.0, "b": 1.0}, {"a": 100.0, "b": 1.0}, rho=0.5) == 100.0
    # zero tails: the path is the sum of the (constant) latencies
    assert paths.end_to_end_p99_ms(spec, {"a": 7.0, "b": 5.0}, {"a": 7.0, "b": 5.0}, rho=0.3) == pytest.approx(12.0)


def test_a_dag_charges_each_stage_by_its_shortest_path():
    spec = _spec(FORK)
    assert paths.shortest_paths_through(spec) == {"a": 2, "b": 3, "c": 3, "d": 2}
    mean = {s: 10.0 for s in "abcd"}
    p99 = {s: 20.0 for s in "abcd"}
    w2, w3 = paths.tail_weight(2, 0.5), paths.tail_weight(3, 0.5)
    # path a-b-c: a at w(2), b and c at w(3); path a-d: both at w(2)
    abc = 30.0 + 10.0 * (w2 + 2 * w3)
    ad = 20.0 + 10.0 * 2 * w2
    assert paths.end_to_end_p99_ms(spec, mean, p99, rho=0.5) == pytest.approx(max(abc, ad))
    assert paths.path_latency_ms(25.0, 20.0, 0.5) == 20.0  # a mean above the p99 is capped


def test_the_stage_mean_is_below_its_p99_and_above_its_service_mean():
    curve = ServiceCurve.from_points({b: ServicePoint(2.0 + b, (2.0 + b) * 1.3) for b in (1, 2, 4, 8)})
    service = lat.BatchService.from_curve(curve, 8)
    for timeout_ms in (0.0, 5.0):
        for est in lat.StageQueue(service, 900.0, timeout_ms, 1.5).scan(1, 6):
            if not math.isfinite(est.latency.total_ms):
                continue
            assert service.mean(1) <= est.mean_ms <= est.latency.total_ms
    # an idle b = 1 stage: no wait, so the mean is the service mean (plus the overhead)
    idle = lat.StageQueue(lat.BatchService.from_curve(curve, 1), 0.001, 0.0, 1.0, overhead_ms=0.5).at(4)
    assert idle.mean_ms == pytest.approx(service.mean(1) + 0.5)


def test_harmonic_numbers():
    assert lat.harmonic(1.0) == 1.0 and lat.harmonic(0.5) == 1.0
    assert lat.harmonic(3.0) == pytest.approx(1 + 1 / 2 + 1 / 3)


def test_a_planned_chain_is_safe_in_simulation():
    """A seeded 3-stage chain at arrival CV 1 planned under the path rule: the simulated
    end-to-end p99 stays within the SLO and the prediction (not optimistic by more than 5%)."""
    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1},
                            {"name": "fast", "kind": "cpu", "cores": 2, "usd_per_hour": 0.5}])
    rows = []
    for s, (cpu_ms, gpu_ms) in enumerate([(8.0, 2.0), (12.0, 3.0), (5.0, 1.5)]):
        rows += linear_profile(f"m{s}", "v", "cpu", (1, 2, 4, 8), cpu_ms, cpu_ms / 2, 0.9, spread=1.4)
        rows += linear_profile(f"m{s}", "v", "fast", (1, 2, 4, 8), gpu_ms, gpu_ms / 8, 0.9, spread=1.4)
    spec = make_spec(stages=[{"name": "s0", "model": "m0"}, {"name": "s1", "model": "m1", "after": ["s0"]},
                             {"name": "s2", "model": "m2", "after": ["s1"]}],
                     slo_ms=120, arrival_rps=60, arrival_cv=1.0, batch_sizes=[1, 2, 4, 8], max_replicas=16)
    plan = make_plan(PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows))))
    stage_sum = sum(s.predicted_latency_ms for s in plan.stages)
    assert plan.predicted_p99_ms < stage_sum  # the rule is tighter than the sum of stage p99s
    trace = gamma(plan.arrival_rps, 1.0, 600.0, np.random.default_rng(3))
    result = simulate(plan, trace, SimConfig(seed=1))
    assert result.summary.p99_ms <= 1.05 * plan.predicted_p99_ms
    assert result.summary.p99_ms <= spec.slo_ms


def test_the_assumed_correlation_rises_with_arrival_burstiness():
    assert paths.stage_correlation(0.5) == 0.5 and paths.stage_correlation(1.0) == 0.5
    assert paths.stage_correlation(1.5) == pytest.approx(1.0) and paths.stage_correlation(2.0) == 1.0
    # linear in the scv between CV 1 and 1.5: scv 1.625 is half way
    assert paths.stage_correlation(math.sqrt(1.625)) == pytest.approx(0.75)
    bursty = make_spec(stages=CHAIN2, slo_ms=1000, arrival_rps=10, arrival_cv=2.0)
    # at rho = 1 the rule is the plain sum of stage p99s
    assert paths.end_to_end_p99_ms(bursty, {"a": 10.0, "b": 20.0}, {"a": 30.0, "b": 40.0}) == pytest.approx(70.0)
