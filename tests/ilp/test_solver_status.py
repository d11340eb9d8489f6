"""Solver statuses are mapped explicitly, and a plan that is not proven optimal is marked as such."""

from dataclasses import replace

import pulp

from planner.cli import console, print_plan
from planner.ilp.backends import _pulp_status
from planner.plan import SolveStatus
from tests.fixtures import plan_for


def test_pulp_status_mapping():
    assert _pulp_status(pulp.LpStatusOptimal, pulp.LpSolutionOptimal) == "optimal"
    assert _pulp_status(pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible) == "time_limit"
    assert _pulp_status(pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible) == "infeasible"
    assert _pulp_status(pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound) == "no_solution"
    assert _pulp_status(pulp.LpStatusUndefined, pulp.LpSolutionUnbounded) == "error"


def test_time_limited_plan_is_marked_not_optimal():
    plan = plan_for("video")
    limited = replace(plan, solver=replace(plan.solver, status=SolveStatus.TIME_LIMIT, gap=0.031))
    with console.capture() as captured:
        print_plan(limited, None)
    text = captured.get()
    assert "NOT proven optimal" in text and "0.031" in text
    with console.capture() as captured:
        print_plan(plan, None)
    assert "proven optimal" in captured.get() and "NOT" not in captured.get()
