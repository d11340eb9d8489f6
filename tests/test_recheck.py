"""The independent re-check fails loudly on a corrupted plan (a re-check that always passed would
pass every other test)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from planner.errors import SolverError
from planner.optimize import _checked
from planner.recheck import recheck
from tests.fixtures import request_for


@pytest.fixture(scope="module")
def planned():
    from planner.optimize import make_plan

    request = request_for("ocr")
    return request, make_plan(request)


def _with_stage(plan, index: int, **changes):
    stages = list(plan.stages)
    stages[index] = replace(stages[index], **changes)
    return replace(plan, stages=tuple(stages))


def test_the_plan_as_made_rechecks_clean(planned):
    request, plan = planned
    assert recheck(plan, request.spec, request.catalog, request.profiles) == []


@pytest.mark.parametrize("corrupt, says", [
    (lambda p: _with_stage(p, 0, predicted_latency_ms=p.stages[0].predicted_latency_ms * 0.5), "latency model gives"),
    (lambda p: _with_stage(p, 0, usd_per_hour=p.stages[0].usd_per_hour * 0.5), "!= its hardware's price at the planned load"),
    (lambda p: _with_stage(p, 0, batch_size=3), "no profile row"),
    (lambda p: replace(p, cost_usd_per_hour=p.cost_usd_per_hour * 0.9), "total cost"),
    (lambda p: replace(p, accuracy=min(1.0, p.accuracy * 1.1)), "accuracy"),
    (lambda p: replace(p, predicted_p99_ms=p.predicted_p99_ms * 0.5), "predicted p99: model gives"),
])
def test_a_corrupted_plan_fails_the_recheck_and_the_planner_refuses_it(planned, corrupt, says):
    request, plan = planned
    bad = corrupt(plan)
    problems = recheck(bad, request.spec, request.catalog, request.profiles)
    assert any(says in p for p in problems), problems
    with pytest.raises(SolverError, match="disagrees with the latency model"):
        _checked(request, bad)


def test_a_plan_with_too_few_replicas_fails_on_utilisation(planned):
    """Cost and totals kept consistent: only the busiest stage's replica count is wrong."""
    request, plan = planned
    i = max(range(len(plan.stages)), key=lambda k: plan.stages[k].replicas)
    assert plan.stages[i].replicas > 1
    price = request.catalog.by_name()[plan.stages[i].hardware].usd_per_hour
    bad = _with_stage(plan, i, replicas=1, usd_per_hour=price)
    bad = replace(bad, cost_usd_per_hour=sum(s.usd_per_hour for s in bad.stages))
    problems = recheck(bad, request.spec, request.catalog, request.profiles)
    assert any("exceeds max_utilization" in p for p in problems), problems


def test_the_recheck_holds_the_plan_to_the_path_rule_not_the_sum_of_stage_p99s():
    """video (arrival CV 1): the predicted p99 is the path rule's, below the sum of stage p99s; a
    plan claiming that sum instead disagrees with the re-check."""
    from planner.estimate.paths import longest_path_ms
    from planner.optimize import make_plan
    from tests.fixtures import video_request

    request = video_request()
    plan = make_plan(request)
    stage_sum = longest_path_ms(request.spec, {s.stage: s.predicted_latency_ms for s in plan.stages})
    assert plan.predicted_p99_ms < stage_sum * (1 - 1e-3)
    problems = recheck(replace(plan, predicted_p99_ms=stage_sum), request.spec, request.catalog, request.profiles)
    assert any("predicted p99: model gives" in p for p in problems), problems
