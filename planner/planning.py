"""Planning: estimate options, solve the ILP for the spec's objective, build and re-check the Plan.

Three separate steps, as in SkyPilot's optimizer: estimation (planner.candidates), solving
(planner.ilp), and an independent re-check (planner.check) of the chosen plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from planner import __version__
from planner.candidates import CandidateSet, Option, Sources, build_candidates
from planner.check import aggregate_accuracy, longest_path_ms, recheck
from planner.errors import InfeasibleError, SolverError
from planner.ilp.backends import SolverName, solve
from planner.ilp.formulation import Goal, Problem, formulate
from planner.ilp.model import Solution
from planner.plan import Plan, SolverReport, StagePlan
from planner.spec import AccuracyAggregation, HardwareCatalog, MaxAccuracy, MinCost, PipelineSpec, Weighted
from profiler.schema import ProfileTable


# Relative step of the frontier walk's accuracy floor: above the solvers' integrality tolerance
# (1e-6), far below any accuracy difference a profile can resolve.
_FLOOR_STEP = 1e-5
# Second (tie-breaking) solves accept this relative slack on the first solve's optimum, so that
# integer rounding (CP-SAT) or integrality tolerance cannot cut off the optimum itself.
_TIE_REL = 1e-6


@dataclass(frozen=True)
class PlanRequest:
    """Everything one planning run needs; the CLI builds it from files."""

    spec: PipelineSpec
    catalog: HardwareCatalog
    profiles: ProfileTable
    solver: SolverName = SolverName.CBC
    time_limit_s: float | None = None
    sources: Sources = Sources()
    provenance: dict[str, Any] = field(default_factory=dict)
    record_timing: bool = False


@dataclass(frozen=True)
class _Solved:
    options: dict[str, Option]
    solution: Solution


def hardware_units(catalog: HardwareCatalog) -> dict[str, int]:
    return {h.name: h.max_units for h in catalog.hardware if h.max_units is not None}


def solve_problem(request: PlanRequest, candidates: CandidateSet, problem: Problem) -> _Solved | None:
    """Solve one program; None when infeasible. Raises SolverError on solver failure."""
    if any(not s.options for s in candidates.stages):
        return None
    form = formulate(request.spec, candidates, hardware_units(request.catalog), problem)
    solution = solve(form.model, request.solver, request.time_limit_s)
    if solution.status == "infeasible":
        return None
    if solution.status == "no_solution":
        raise SolverError(
            f"{request.solver.value} found no plan within the time limit of {request.time_limit_s} s "
            "(the problem may still be feasible); raise --time-limit or try another --solver."
        )
    if solution.status not in ("optimal", "time_limit"):
        raise SolverError(f"{request.solver.value} failed (status {solution.status}); try another --solver.")
    chosen: dict[str, Option] = {}
    for name, (stage, option) in form.choice.items():
        if solution.values.get(name, 0.0) > 0.5:
            if stage in chosen:
                raise SolverError(f"{request.solver.value} chose two options for stage '{stage}'; this is a bug.")
            chosen[stage] = option
    missing = [s.name for s in request.spec.stages if s.name not in chosen]
    if missing:
        raise SolverError(f"{request.solver.value} chose no option for stage(s) {missing}; this is a bug.")
    return _Solved(chosen, solution)


def build_plan(request: PlanRequest, solved: _Solved, objective_value: float | None = None,
               solve_time_ms: float | None = None) -> Plan:
    """Turn chosen options into a Plan (deterministic: stages in the spec's order)."""
    spec, rows = request.spec, request.profiles.index()
    hardware = request.catalog.by_name()
    stages = []
    for stage in spec.stages:
        o = solved.options[stage.name]
        allowed = stage.batch_sizes or spec.batch_sizes
        curve = {b: (rows[(o.model, o.variant, o.hardware, b)].latency_p50_ms,
                     rows[(o.model, o.variant, o.hardware, b)].latency_p99_ms)
                 for b in allowed if b <= o.batch_size}
        row = rows[(o.model, o.variant, o.hardware, o.batch_size)]
        stages.append(StagePlan(
            stage=stage.name, model=o.model, variant=o.variant, hardware=o.hardware,
            batch_size=o.batch_size, batch_timeout_ms=o.batch_timeout_ms, replicas=o.replicas,
            capacity_rps=o.capacity_rps, utilization=o.utilization,
            predicted_latency_ms=o.latency_ms, latency_fill_ms=o.latency.fill_ms,
            latency_wait_ms=o.latency.wait_ms, latency_service_ms=o.latency.service_ms,
            accuracy=o.accuracy, usd_per_hour=o.usd_per_hour, load_rps=o.load_rps,
            fanout=stage.fanout, after=stage.after, service_ms_by_batch=curve,
            load_time_s=row.load_time_s, startup_s=hardware[o.hardware].startup_s,
        ))
    cost = sum(s.usd_per_hour for s in stages)
    solution = solved.solution
    return Plan(
        pipeline=spec.name,
        stages=tuple(stages),
        cost_usd_per_hour=cost,
        accuracy=aggregate_accuracy([s.accuracy for s in stages], spec.accuracy),
        accuracy_aggregation=spec.accuracy.value,
        predicted_p99_ms=longest_path_ms(spec, {s.stage: s.predicted_latency_ms for s in stages}),
        arrival_rps=spec.arrival_rps,
        slo_ms=spec.slo_ms,
        objective=spec.objective.model_dump(mode="json"),
        solver=SolverReport(
            name=solution.solver,
            status=solution.status,
            objective=solution.objective if objective_value is None else objective_value,
            gap=solution.gap,
            solve_time_ms=(solve_time_ms if solve_time_ms is not None else solution.solve_time_ms)
            if request.record_timing else None,
        ),
        provenance={**request.provenance, "pipeplan_version": __version__},
    )


def _checked(request: PlanRequest, plan: Plan) -> Plan:
    problems = recheck(plan, request.spec, request.catalog, request.profiles)
    if problems:
        raise SolverError(
            f"the {plan.solver.name} solution disagrees with the latency model: " + "; ".join(problems)
            + ". This is a bug in pipeplan; please report it with the spec, profiles and catalog."
        )
    from planner.routing import with_routes

    return with_routes(request, plan)


def _accuracy_floor_problem(spec: PipelineSpec, floor: float | None, budget: float | None) -> Problem:
    return Problem(Goal.MIN_COST, spec.accuracy, accuracy_floor=floor, budget_usd_per_hour=budget)


def frontier(request: PlanRequest, candidates: CandidateSet | None = None, max_points: int = 200,
             stop_below: Weighted | None = None) -> list[Plan]:
    """The cost-accuracy Pareto frontier under the SLO, cheapest first; each point an optimal plan.

    Walks floors upward: the cheapest plan at floor F has accuracy A >= F; the next floor is just
    above A. With ``stop_below`` (a weighted objective) the walk stops once no costlier point can
    beat the best weighted value found (accuracy cannot exceed its upper bound).
    """
    spec = request.spec
    candidates = candidates or build_candidates(spec, request.catalog, request.profiles, request.sources)
    objective = spec.objective
    floor = objective.min_accuracy if isinstance(objective, MinCost) and objective.min_accuracy else None
    budget = objective.budget_usd_per_hour if isinstance(objective, MaxAccuracy) else None
    best_possible = aggregate_accuracy(
        [max((o.accuracy for o in s.options), default=0.0) for s in candidates.stages], spec.accuracy)
    points: list[Plan] = []
    best_value = -math.inf
    step = _FLOOR_STEP
    for _ in range(3 * max_points):
        if len(points) >= max_points:
            break
        solved = solve_problem(request, candidates, _accuracy_floor_problem(spec, floor, budget))
        if solved is None:
            break
        plan = _checked(request, build_plan(request, solved))
        if points and plan.accuracy <= points[-1].accuracy:
            # The solver met the raised floor only within its integrality tolerance: step further.
            step *= 10
            floor = points[-1].accuracy * (1 + step)
            continue
        step = _FLOOR_STEP
        if points and plan.cost_usd_per_hour <= points[-1].cost_usd_per_hour * (1 + 1e-12):
            points[-1] = plan  # same cost, higher accuracy: the earlier point was dominated
        else:
            points.append(plan)
        if stop_below is not None:
            value = stop_below.accuracy_weight * plan.accuracy - stop_below.cost_weight * plan.cost_usd_per_hour
            best_value = max(best_value, value)
            if stop_below.accuracy_weight * best_possible - stop_below.cost_weight * plan.cost_usd_per_hour <= best_value:
                break
        if plan.accuracy >= best_possible * (1 - 1e-12):
            break
        floor = plan.accuracy * (1 + step)
    return points


def _tie_break(request: PlanRequest, candidates: CandidateSet, problem: Problem) -> _Solved | None:
    """The second, tie-breaking solve; None (keep the first answer) if it finds nothing in time."""
    try:
        return solve_problem(request, candidates, problem)
    except SolverError:
        if request.time_limit_s is None:
            raise
        return None


def make_plan(request: PlanRequest) -> Plan:
    """The optimal plan for the spec's objective, re-checked; raises InfeasibleError with a diagnosis."""
    from planner.diagnose import diagnose

    spec = request.spec
    candidates = build_candidates(spec, request.catalog, request.profiles, request.sources)
    objective = spec.objective
    if isinstance(objective, MinCost):
        floor = objective.min_accuracy or None
        solved = solve_problem(request, candidates, _accuracy_floor_problem(spec, floor, None))
        if solved is None:
            raise InfeasibleError(diagnose(request, candidates))
        total_ms = solved.solution.solve_time_ms
        # Ties on cost go to the more accurate plan: maximise accuracy at the optimal cost.
        tie = _tie_break(request, candidates, Problem(
            Goal.MAX_ACCURACY, spec.accuracy, accuracy_floor=floor,
            budget_usd_per_hour=solved.solution.objective * (1 + _TIE_REL)))
        if tie is not None and tie.solution.status == "optimal" and solved.solution.status == "optimal":
            solved = _Solved(tie.options, replace(tie.solution, objective=solved.solution.objective))
            total_ms += tie.solution.solve_time_ms
        return _checked(request, build_plan(request, solved, solve_time_ms=total_ms))
    if isinstance(objective, MaxAccuracy):
        first = solve_problem(request, candidates, Problem(
            Goal.MAX_ACCURACY, spec.accuracy, budget_usd_per_hour=objective.budget_usd_per_hour))
        if first is None:
            raise InfeasibleError(diagnose(request, candidates))
        achieved = aggregate_accuracy([o.accuracy for o in first.options.values()], spec.accuracy)
        # Ties on accuracy go to the cheaper plan.
        second = _tie_break(request, candidates, _accuracy_floor_problem(
            spec, achieved * (1 - _TIE_REL), objective.budget_usd_per_hour))
        chosen = second if second is not None and first.solution.status == "optimal" else first
        total_ms = first.solution.solve_time_ms + (second.solution.solve_time_ms if second else 0.0)
        return _checked(request, build_plan(request, chosen, objective_value=first.solution.objective,
                                            solve_time_ms=total_ms))
    assert isinstance(objective, Weighted)
    if spec.accuracy is AccuracyAggregation.PRODUCT:
        points = frontier(request, candidates, max_points=10_000, stop_below=objective)
        if not points:
            raise InfeasibleError(diagnose(request, candidates))
        value = lambda p: objective.accuracy_weight * p.accuracy - objective.cost_weight * p.cost_usd_per_hour
        best = max(points, key=lambda p: (value(p), -p.cost_usd_per_hour))
        return replace(best, solver=replace(best.solver, objective=value(best)))
    solved = solve_problem(request, candidates, Problem(
        Goal.WEIGHTED, spec.accuracy, accuracy_weight=objective.accuracy_weight, cost_weight=objective.cost_weight))
    if solved is None:
        raise InfeasibleError(diagnose(request, candidates))
    return _checked(request, build_plan(request, solved))
