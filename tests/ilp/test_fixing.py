"""Reduced-cost fixing (planner.ilp.fixing): it never rules out a column some point within the bound uses."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

import planner.optimize as optimize
from planner.ilp.fixing import fixed_out, relax, rounded_objective
from planner.ilp.program import Constraint, LinearModel, Sense, Variable, VarKind
from tests.fixtures import model_misranked_request


def _choice_model(costs: list[list[float]], weights: list[list[float]], capacity: float, maximize: bool = False):
    """One option per group (rows ==), a knapsack row on the weights (<=), objective the costs."""
    variables, objective, rows, knapsack = [], [], [], []
    for g, group in enumerate(costs):
        names = [f"x_{g}_{k}" for k in range(len(group))]
        variables += [Variable(n, VarKind.BINARY) for n in names]
        objective += list(zip(names, group))
        rows.append(Constraint(f"one_{g}", tuple((n, 1.0) for n in names), Sense.EQ, 1.0))
        knapsack += list(zip(names, weights[g]))
    rows.append(Constraint("knapsack", tuple(knapsack), Sense.LE, capacity))
    return LinearModel("m", tuple(variables), tuple(rows), tuple(objective), maximize)


def test_a_column_whose_reduced_cost_exceeds_the_gap_is_fixed_out():
    model = _choice_model([[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]], 1.0)
    assert fixed_out(model, 1.0) == {"x_0_1", "x_0_2"}  # only the optimum is as good as 1
    assert fixed_out(model, 2.5) == {"x_0_2"}
    assert fixed_out(model, 3.0) == frozenset()  # a point exactly at the bound stays
    best = _choice_model([[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]], 1.0, maximize=True)
    assert fixed_out(best, 2.5) == {"x_0_0", "x_0_1"}


@pytest.mark.parametrize("seed", range(12))
def test_no_point_within_the_bound_uses_a_fixed_column(seed):
    rng = np.random.default_rng(seed)
    groups, per = 4, 4
    costs = rng.uniform(1.0, 5.0, (groups, per)).round(3).tolist()
    weights = rng.uniform(0.0, 3.0, (groups, per)).round(3).tolist()
    capacity = float(np.sort(np.array(weights), axis=1)[:, 1].sum())  # binding, never empty
    maximize = bool(seed % 2)
    model = _choice_model(costs, weights, capacity, maximize)
    points = [(sum(costs[g][k] for g, k in enumerate(pick)), pick)
              for pick in itertools.product(range(per), repeat=groups)
              if sum(weights[g][k] for g, k in enumerate(pick)) <= capacity]
    best = (max if maximize else min)(v for v, _ in points)
    for slack in (0.0, 0.5, 2.0):
        bound = best - slack if maximize else best + slack
        out = fixed_out(model, bound)
        used = {f"x_{g}_{k}" for v, pick in points if (v >= bound if maximize else v <= bound)
                for g, k in enumerate(pick)}
        assert not out & used
    assert fixed_out(model, best)  # and at the optimum it rules something out (these LPs are tight enough)


@pytest.mark.parametrize("seed", range(8))
def test_fixing_holds_with_a_continuous_epigraph_variable(seed):
    # max z subject to z <= sum_k a_gk x_gk for every group (the min-accuracy epigraph, z in [0, 1]):
    # the points within a bound are the picks whose least accuracy reaches it
    rng = np.random.default_rng(200 + seed)
    groups, per = 3, 4
    acc = rng.uniform(0.5, 1.0, (groups, per)).round(3)
    variables = [Variable(f"x_{g}_{k}", VarKind.BINARY) for g in range(groups) for k in range(per)]
    variables.append(Variable("z", VarKind.CONTINUOUS, 0.0, 1.0))
    rows = [Constraint(f"one_{g}", tuple((f"x_{g}_{k}", 1.0) for k in range(per)), Sense.EQ, 1.0) for g in range(groups)]
    rows += [Constraint(f"epi_{g}", (("z", 1.0),) + tuple((f"x_{g}_{k}", -float(acc[g, k])) for k in range(per)),
                        Sense.LE, 0.0) for g in range(groups)]
    model = LinearModel("epi", tuple(variables), tuple(rows), (("z", 1.0),), True)
    best = min(acc.max(axis=1))
    for bound in (best, best - 0.05, best - 0.2):
        out = fixed_out(model, bound)
        used = {f"x_{g}_{k}" for pick in itertools.product(range(per), repeat=groups)
                if min(acc[g, k] for g, k in enumerate(pick)) >= bound for g, k in enumerate(pick)}
        assert not out & used
    assert fixed_out(model, best)  # columns below the best least accuracy are ruled out


@pytest.mark.parametrize("seed", range(12))
def test_a_rounded_lp_solution_is_a_feasible_point_so_its_cost_bounds_the_optimum(seed):
    rng = np.random.default_rng(100 + seed)
    groups, per = 4, 4
    costs = rng.uniform(1.0, 5.0, (groups, per)).round(3).tolist()
    weights = rng.uniform(0.0, 3.0, (groups, per)).round(3).tolist()
    capacity = float(np.sort(np.array(weights), axis=1)[:, 1].sum())
    maximize = bool(seed % 2)
    model = _choice_model(costs, weights, capacity, maximize)
    values = {sum(costs[g][k] for g, k in enumerate(pick))
              for pick in itertools.product(range(per), repeat=groups)
              if sum(weights[g][k] for g, k in enumerate(pick)) <= capacity}
    rounded = rounded_objective(relax(model))
    if rounded is not None:
        assert any(abs(rounded - v) < 1e-9 for v in values)  # the cost of a point that keeps every row
        assert (rounded <= max(values) + 1e-9) if maximize else (rounded >= min(values) - 1e-9)


def test_rounding_declines_a_model_with_a_continuous_variable():
    base = _choice_model([[1.0, 2.0]], [[0.0, 0.0]], 1.0)
    model = replace(base, variables=base.variables + (Variable("f", VarKind.CONTINUOUS, 0.0, 5.0),))
    assert rounded_objective(relax(model)) is None


def test_the_planner_returns_the_same_plan_with_and_without_fixing(monkeypatch):
    request = model_misranked_request()
    for spec in (request.spec, request.spec.model_copy(update={"slo_ms": request.spec.slo_ms * 1.5})):
        req = replace(request, spec=spec)
        fixed = optimize.make_plan(req)
        monkeypatch.setattr(optimize, "_narrowed", lambda candidates, solved, bound: (candidates, 0.0))
        monkeypatch.setattr(optimize, "_presolved", lambda request, candidates, problem: (candidates, None, 0.0))
        plain = optimize.make_plan(req)
        monkeypatch.undo()
        assert fixed.stages == plain.stages and fixed.cost_usd_per_hour == plain.cost_usd_per_hour


def test_highs_still_solves_after_the_fixing_lp_ran_in_the_same_process():
    # HiGHS keeps one thread scheduler per process: the fixing LP must ask for the thread count
    # the HiGHS backend asks for, or every later HiGHS solve fails (it did: "no plan found").
    from planner.ilp.backends import SolverName

    request = model_misranked_request()
    optimize.make_plan(request)  # CBC; the tie-breaks ran the fixing LP
    assert optimize.make_plan(replace(request, solver=SolverName.HIGHS)).solver.status.value == "optimal"


def test_cp_sat_plans_a_floor_met_exactly_without_the_rounded_presolve():
    # Three stages, a cheap 0.9 and a dear 0.95 variant each, floor 0.9^3: the LP's rounded point
    # (every stage at 0.9) keeps the exact rows, but CP-SAT's rows are scaled to integers and
    # rounded to the safe side, so it may need a 0.95 variant; had the presolve fixed those out
    # (cost 1 above the LP's 3), CP-SAT would have found the program infeasible.
    from planner.ilp.backends import SolverName
    from planner.optimize import PlanRequest
    from profiler.schema import ProfileTable
    from tests.fixtures import linear_profile, make_catalog, make_spec

    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 1.0},
                            {"name": "big", "kind": "cpu", "cores": 4, "usd_per_hour": 2.0}])
    rows = []
    for k in range(3):
        rows += linear_profile(f"m{k}", "cheap", "cpu", (1,), 1.0, 1.0, 0.9)
        rows += linear_profile(f"m{k}", "dear", "big", (1,), 1.0, 1.0, 0.95)
    spec = make_spec(stages=[{"name": f"s{k}", "model": f"m{k}", **({"after": [f"s{k - 1}"]} if k else {})}
                             for k in range(3)],
                     slo_ms=100.0, arrival_rps=1.0, batch_sizes=[1], objective={"kind": "min_cost",
                                                                                 "min_accuracy": 0.9 ** 3})
    request = PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)), solver=SolverName.CPSAT)
    plan = optimize.make_plan(request)
    assert plan.accuracy >= 0.9 ** 3 * (1 - 1e-6) and plan.solver.status.value == "optimal"
