"""The ILP against exhaustive enumeration on random small instances (same latency model)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.estimate.candidates import build_candidates
from planner.recheck import recheck
from planner.errors import InfeasibleError
from planner.ilp.backends import SolverName
from planner.optimize import PlanRequest, make_plan
from profiler.schema import ProfileTable
from tests.fixtures import brute_force, close, linear_profile, make_catalog, make_spec, objective_value


@st.composite
def instances(draw):
    n_hw = draw(st.integers(1, 2))
    hw = []
    for i in range(n_hw):
        hw.append({
            "name": f"hw{i}", "kind": "cpu", "cores": 2,
            "usd_per_hour": draw(st.sampled_from([0.1, 0.25, 0.4, 0.7])),
            "max_units": draw(st.one_of(st.none(), st.integers(2, 6))),
        })
    n_stages = draw(st.integers(1, 3))
    shape = draw(st.sampled_from(["chain", "fork", "join"]))
    batches = draw(st.sampled_from([[1], [1, 4], [1, 2, 4]]))
    stages, rows = [], []
    base_ms = 0.0  # typical batch-1 p99 summed over stages: the SLO is drawn relative to it
    for s in range(n_stages):
        parents = {"chain": [f"s{s - 1}"], "fork": ["s0"], "join": [f"s{p}" for p in range(s)]}[shape]
        after = parents if s else []
        stages.append({"name": f"s{s}", "model": f"m{s}", "after": after,
                       "fanout": draw(st.sampled_from([1.0, 1.0, 2.0, 0.5]))})
        stage_ms = []
        for v in range(draw(st.integers(1, 2))):
            accuracy = draw(st.floats(0.5, 1.0))
            for h in hw:
                stage_rows = linear_profile(
                    f"m{s}", f"v{v}", h["name"], batches,
                    overhead_ms=draw(st.floats(0.5, 10.0)), per_item_ms=draw(st.floats(0.2, 10.0)),
                    accuracy=accuracy, spread=draw(st.floats(1.0, 2.0)))
                stage_ms.append(stage_rows[0].latency_p99_ms)
                rows += stage_rows
        base_ms += sum(stage_ms) / len(stage_ms)
    kind = draw(st.sampled_from(["min_cost", "max_accuracy", "weighted"]))
    if kind == "min_cost":
        objective = {"kind": kind, "min_accuracy": draw(st.sampled_from([0.0, 0.3, 0.6, 0.8]))}
    elif kind == "max_accuracy":
        objective = {"kind": kind, "budget_usd_per_hour": draw(st.floats(0.1, 3.0))}
    else:
        objective = {"kind": kind, "accuracy_weight": draw(st.floats(0.5, 10.0)),
                     "cost_weight": draw(st.floats(0.1, 5.0))}
    spec = make_spec(
        stages=stages, slo_ms=base_ms * draw(st.floats(0.8, 4.0)), arrival_rps=draw(st.floats(1.0, 80.0)),
        arrival_cv=draw(st.sampled_from([0.5, 1.0, 2.0])), objective=objective,
        accuracy=draw(st.sampled_from(["product", "min", "mean"])), batch_sizes=batches,
        max_replicas=draw(st.integers(1, 5)), batch_timeout_quantiles=[0.5, 0.99],
    )
    return spec, make_catalog(hw), ProfileTable(tuple(rows))


def _check(spec, catalog, profiles, solver: SolverName) -> None:
    request = PlanRequest(spec=spec, catalog=catalog, profiles=profiles, solver=solver)
    try:
        plan = make_plan(request)
    except InfeasibleError:
        # No plan even when every later stage is estimated for the largest scv its parents can emit.
        bound = build_candidates(spec, catalog, profiles)
        expected = brute_force(request, {s.stage: s.request_scv_in for s in bound.stages})
        assert not expected.feasible, f"ILP says infeasible, enumeration found {expected}"
        return
    # The plan is optimal among plans whose stages see at most the arrival scv it was planned for.
    expected = brute_force(request, plan.provenance["planned_arrival_scv"])
    assert expected.feasible, "ILP returned a plan, enumeration found none"
    assert recheck(plan, spec, catalog, profiles) == []
    assert close(objective_value(plan, spec), expected.objective), (plan.cost_usd_per_hour, plan.accuracy, expected)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(instances())
def test_cbc_matches_enumeration(instance):
    _check(*instance, SolverName.CBC)


@pytest.mark.parametrize("solver", [SolverName.HIGHS, SolverName.CPSAT])
def test_other_solvers_match_enumeration(solver):
    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
    @given(instances())
    def run(instance):
        _check(*instance, solver)

    run()


def test_weighted_mean_objective_counts_accuracy_and_cost():
    """Regression: the weighted objective names each x twice (accuracy and cost); both must count."""
    from profiler.schema import ProfileRow

    spec = make_spec(stages=[{"name": "s0", "model": "m0"}, {"name": "s1", "model": "m1", "after": ["s0"]}],
                     slo_ms=4.75, arrival_rps=1.0, arrival_cv=0.5, accuracy="mean", batch_sizes=[1], max_replicas=1,
                     objective={"kind": "weighted", "accuracy_weight": 1.0, "cost_weight": 1.0})
    catalog = make_catalog([{"name": "hw0", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1}])
    rows = (ProfileRow("m0", "v0", "hw0", 1, 2.0, 2.0, 500.0, 1.0), ProfileRow("m0", "v1", "hw0", 1, 1.5, 1.5, 2000 / 3, 0.5),
            ProfileRow("m1", "v0", "hw0", 1, 2.0, 2.0, 500.0, 0.5), ProfileRow("m1", "v1", "hw0", 1, 2.0, 4.0, 500.0, 1.0))
    for solver in SolverName:
        _check(spec, catalog, ProfileTable(rows), solver)
