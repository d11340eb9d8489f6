"""Planning: estimate options, solve the ILP for the spec's objective, build and re-check the Plan.

Three separate steps, as in SkyPilot's optimizer: estimation (planner.estimate.candidates), solving
(planner.ilp), and an independent re-check (planner.recheck) of the chosen plan.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable

from planner import __version__
from planner.diagnose import diagnose
from planner.errors import InfeasibleError, SolverError
from planner.estimate import flow
from planner.estimate.candidates import CandidateSet, build_candidates
from planner.estimate.paths import aggregate_accuracy, end_to_end_p99_ms
from planner.ilp.backends import SolverName
from planner.ilp.fixing import fixed_out, rounded_objective
from planner.ilp.formulation import Formulation, Goal, Problem, formulate
from planner.plan import Plan, ServiceCurve, ServicePoint, SolverReport, SolveStatus, StagePlan
from planner.recheck import recheck
from planner.resources import with_resources
from planner.routing import with_routes
from planner.solve import PlanRequest, Solved, hardware_units, solve_problem
from planner.spec import AccuracyAggregation, MaxAccuracy, MinCost, PipelineSpec, Weighted

__all__ = ["PlanRequest", "build_plan", "frontier", "make_plan"]


# Relative step of the frontier walk's accuracy floor: above the solvers' integrality tolerance
# (1e-6), far below any accuracy difference a profile can resolve.
_FLOOR_STEP = 1e-5
# Second (tie-breaking) solves accept this relative slack on the first solve's optimum, so that
# integer rounding (CP-SAT) or integrality tolerance cannot cut off the optimum itself.
_TIE_REL = 1e-6
# Rounds of raising the assumed arrival scv of later stages, and the factor it is raised by.
_FLOW_ROUNDS = 6
_FLOW_STEP = 1.05


def build_plan(request: PlanRequest, solved: Solved, solve_time_ms: float | None = None) -> Plan:
    """Turn chosen options into a Plan (deterministic: stages in the spec's order)."""
    spec, rows = request.spec, request.profiles.index()
    hardware = request.catalog.by_name()
    # Each stage at the arrival variability this plan itself passes down (<= what its option assumed).
    evaluated = flow.evaluate(spec, rows, {name: flow.StageChoice(o.variant, o.hardware, o.batch_size,
                                                                  o.batch_timeout_ms, o.replicas)
                                           for name, o in solved.options.items()})
    stages = []
    for stage in spec.stages:
        o = solved.options[stage.name]
        est = evaluated[stage.name].estimate
        allowed = stage.batch_sizes or spec.batch_sizes
        curve = ServiceCurve.from_points({
            b: ServicePoint(rows[(o.model, o.variant, o.hardware, b)].latency_p50_ms,
                            rows[(o.model, o.variant, o.hardware, b)].latency_p99_ms)
            for b in allowed if b <= o.batch_size})
        row = rows[(o.model, o.variant, o.hardware, o.batch_size)]
        stages.append(StagePlan(
            stage=stage.name, model=o.model, variant=o.variant, hardware=o.hardware,
            batch_size=o.batch_size, batch_timeout_ms=o.batch_timeout_ms, replicas=o.replicas,
            capacity_items_per_s=o.capacity_items_per_s, utilization=est.utilization,
            predicted_latency_ms=est.latency.total_ms, latency_fill_ms=est.latency.fill_ms,
            latency_wait_ms=est.latency.wait_ms, latency_service_ms=est.latency.service_ms,
            accuracy=o.accuracy, usd_per_hour=o.usd_per_hour, load_items_per_s=o.load_items_per_s,
            fanout=stage.fanout, after=stage.after, service_ms_by_batch=curve,
            load_time_s=row.load_time_s, startup_s=hardware[o.hardware].startup_s,
        ))
    cost = sum(s.usd_per_hour for s in stages)
    accuracy = aggregate_accuracy([s.accuracy for s in stages], spec.accuracy)
    solution = solved.solution
    # Spot / serverless stages carry their class terms and the plan its risk (absent when all on demand).
    return with_resources(Plan(
        pipeline=spec.name,
        stages=tuple(stages),
        cost_usd_per_hour=cost,
        accuracy=accuracy,
        accuracy_aggregation=spec.accuracy.value,
        predicted_p99_ms=end_to_end_p99_ms(spec, {n: e.estimate.mean_ms for n, e in evaluated.items()},
                                           {s.stage: s.predicted_latency_ms for s in stages}),
        arrival_rps=spec.arrival_rps,
        slo_ms=spec.slo_ms,
        objective=spec.objective.model_dump(mode="json"),
        solver=SolverReport(
            name=solution.solver,
            status=solution.status,
            objective_value=spec.objective.value(cost, accuracy),
            objective_unit=spec.objective.unit,
            gap=solution.gap,
            solve_time_ms=(solve_time_ms if solve_time_ms is not None else solution.solve_time_ms)
            if request.record_timing else None,
        ),
        provenance={**request.provenance, "pipeplan_version": __version__},
    ), request.catalog)


def _checked(request: PlanRequest, plan: Plan) -> Plan:
    problems = recheck(plan, request.spec, request.catalog, request.profiles)
    if problems:
        raise SolverError(
            f"the {plan.solver.name} solution disagrees with the latency model: " + "; ".join(problems)
            + ". This is a bug in pipeplan; please report it with the spec, profiles and catalog."
        )
    return with_routes(request, plan)


def _accuracy_floor_problem(spec: PipelineSpec, floor: float | None, budget: float | None) -> Problem:
    return Problem(Goal.MIN_COST, spec.accuracy, accuracy_floor=floor, budget_usd_per_hour=budget)


def frontier(request: PlanRequest, candidates: CandidateSet | None = None, max_points: int = 200,
             stop_below: Weighted | None = None, check: bool = True) -> list[Plan]:
    """The cost-accuracy Pareto frontier under the SLO, cheapest first; each point an optimal plan.

    Walks floors upward: the cheapest plan at floor F has accuracy A >= F; the next floor is just
    above A. With ``stop_below`` (a weighted objective) the walk stops once no costlier point can
    beat the best weighted value found (accuracy cannot exceed its upper bound). Without
    ``candidates`` the options of later stages are estimated for the largest arrival scv their
    parents' options can emit, so every point re-checks; ``check=False`` leaves the re-check to
    the caller (make_plan, which first makes the assumed and the plan's own scv agree).
    """
    spec = request.spec
    candidates = candidates or build_candidates(spec, request.catalog, request.profiles, request.sources)
    objective = spec.objective
    floor = getattr(objective, "min_accuracy", 0.0) or None  # min_cost's and max_accuracy's floor
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
        plan = build_plan(request, solved)
        if check:
            plan = _checked(request, plan)
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
            best_value = max(best_value, stop_below.value(plan.cost_usd_per_hour, plan.accuracy))
            if stop_below.value(plan.cost_usd_per_hour, best_possible) <= best_value:
                break
        if plan.accuracy >= best_possible * (1 - 1e-12):
            break
        floor = plan.accuracy * (1 + step)
    return points


def _tie_break(request: PlanRequest, candidates: CandidateSet, problem: Problem) -> Solved | None:
    """The second, tie-breaking solve; None (keep the first answer) if it finds nothing in time."""
    try:
        return solve_problem(request, candidates, problem)
    except SolverError:
        if request.time_limit_s is None:
            raise
        return None


def _keep(candidates: CandidateSet, form: Formulation, out: frozenset[str]) -> CandidateSet:
    """The options that are columns of ``form`` and not fixed out."""
    keep = {id(option) for name, (_, option) in form.choice.items() if name not in out}
    return CandidateSet(tuple(replace(s, options=tuple(o for o in s.options if id(o) in keep))
                              for s in candidates.stages))


def _narrowed(candidates: CandidateSet, solved: Solved, bound: float) -> tuple[CandidateSet, float]:
    """The options of ``solved``'s program that can be in a plan whose objective is as good as
    ``bound`` (reduced-cost fixing, planner.ilp.fixing), and the LP's time (ms). A tie-break solve
    over them has the same feasible plans as over all the candidates, so the same optimum."""
    if solved.form is None:
        return candidates, 0.0
    started = time.perf_counter()
    narrowed = _keep(candidates, solved.form, fixed_out(solved.form.model, bound, solved.form.relaxation))
    return narrowed, (time.perf_counter() - started) * 1000.0


def _presolved(request: PlanRequest, candidates: CandidateSet,
               problem: Problem) -> tuple[CandidateSet, Formulation | None, float]:
    """Before a first min-cost solve: the options that can be in a plan no dearer than the LP's
    rounded solution, when that rounding keeps every row (planner.ilp.fixing), and the time (ms).
    Every optimal plan is among them. Where no rounding keeps every row: the candidates as they
    came, and their program, formulated (its LP solved once, reused by the tie-breaks' fixing)."""
    if any(not s.options for s in candidates.stages) or request.solver is SolverName.CPSAT:
        # CP-SAT solves the rows scaled to integers and rounded to the safe side (planner.ilp.backends):
        # a stricter program, which a point that keeps the exact rows need not keep, so the rounded
        # point's cost bounds only the exact program's optimum, not CP-SAT's.
        return candidates, None, 0.0
    started = time.perf_counter()
    form = formulate(request.spec, candidates, hardware_units(request.catalog), problem)
    relaxation = form.relaxation
    incumbent = rounded_objective(relaxation) if relaxation is not None else None
    if incumbent is not None:
        candidates = _keep(candidates, form, fixed_out(form.model, incumbent * (1 + 10 * _TIE_REL), relaxation))
        form = None
    return candidates, form, (time.perf_counter() - started) * 1000.0


def _min_cost(request: PlanRequest, candidates: CandidateSet) -> Plan | None:
    spec, objective = request.spec, request.spec.objective
    floor = objective.min_accuracy or None
    first = _accuracy_floor_problem(spec, floor, None)
    candidates, form, presolve_ms = _presolved(request, candidates, first)
    solved = solve_problem(request, candidates, first, form)
    if solved is None:
        return None
    total_ms = presolve_ms + solved.solution.solve_time_ms
    if solved.solution.status is SolveStatus.OPTIMAL:
        # Every plan the tie-breaks may return costs at most the optimum (x (1 + _TIE_REL)).
        candidates, lp_ms = _narrowed(candidates, solved, solved.solution.objective * (1 + 10 * _TIE_REL))
        total_ms += lp_ms
    # Ties on cost go to the more accurate plan: maximise accuracy at the optimal cost.
    tie = _tie_break(request, candidates, Problem(
        Goal.MAX_ACCURACY, spec.accuracy, accuracy_floor=floor,
        budget_usd_per_hour=solved.solution.objective * (1 + _TIE_REL)))
    if tie is not None and tie.solution.status is SolveStatus.OPTIMAL and solved.solution.status is SolveStatus.OPTIMAL:
        solved = Solved(tie.options, replace(tie.solution, objective=solved.solution.objective))
        total_ms += tie.solution.solve_time_ms
        achieved = aggregate_accuracy([o.accuracy for o in tie.options.values()], spec.accuracy)
        solved, extra_ms = _latency_tie_break(request, candidates, solved, achieved, solved.solution.objective)
        total_ms += extra_ms
    return build_plan(request, solved, solve_time_ms=total_ms)


def _latency_tie_break(request: PlanRequest, candidates: CandidateSet, solved: Solved, accuracy: float,
                       cost_usd_per_hour: float) -> tuple[Solved, float]:
    """Among plans of this cost and accuracy, the one with the most latency headroom (so every solver
    returns the same plan); the answer kept as it is if that solve finds nothing in time. Returns the
    plan and the extra solve time (ms)."""
    third = _tie_break(request, candidates, Problem(
        Goal.MIN_LATENCY, request.spec.accuracy, accuracy_floor=accuracy * (1 - _TIE_REL),
        budget_usd_per_hour=cost_usd_per_hour * (1 + _TIE_REL)))
    if third is None or third.solution.status is not SolveStatus.OPTIMAL:
        return solved, 0.0
    return Solved(third.options, replace(third.solution, objective=solved.solution.objective)), third.solution.solve_time_ms


def _max_accuracy(request: PlanRequest, candidates: CandidateSet) -> Plan | None:
    spec, objective = request.spec, request.spec.objective
    first = solve_problem(request, candidates, Problem(
        Goal.MAX_ACCURACY, spec.accuracy, accuracy_floor=objective.min_accuracy or None,
        budget_usd_per_hour=objective.budget_usd_per_hour))
    if first is None:
        return None
    achieved = aggregate_accuracy([o.accuracy for o in first.options.values()], spec.accuracy)
    total_ms = first.solution.solve_time_ms
    if first.solution.status is SolveStatus.OPTIMAL:
        # The second solve's floor is the achieved accuracy (x (1 - _TIE_REL)); in the first
        # program's own units (ln a, mean a or the min) that is within 1e-5 of its optimum.
        value = first.solution.objective
        candidates, lp_ms = _narrowed(candidates, first, value - 1e-5 * max(1.0, abs(value)))
        total_ms += lp_ms
    # Ties on accuracy go to the cheaper plan.
    second = _tie_break(request, candidates, _accuracy_floor_problem(
        spec, achieved * (1 - _TIE_REL), objective.budget_usd_per_hour))
    chosen = second if second is not None and first.solution.status is SolveStatus.OPTIMAL else first
    total_ms += second.solution.solve_time_ms if second else 0.0
    if chosen is second and second.solution.status is SolveStatus.OPTIMAL:
        candidates, lp_ms = _narrowed(candidates, second, second.solution.objective * (1 + 10 * _TIE_REL))
        chosen, extra_ms = _latency_tie_break(request, candidates, second, achieved, second.solution.objective)
        total_ms += lp_ms + extra_ms
    return build_plan(request, chosen, solve_time_ms=total_ms)


def _weighted(request: PlanRequest, candidates: CandidateSet) -> Plan | None:
    spec, objective = request.spec, request.spec.objective
    if spec.accuracy is AccuracyAggregation.PRODUCT:
        # A product of accuracies is not linear in the choices: walk the frontier instead (each
        # point optimal), stopping once no costlier point can win.
        points = frontier(request, candidates, max_points=10_000, stop_below=objective, check=False)
        if not points:
            return None
        return max(points, key=lambda p: (p.solver.objective_value, -p.cost_usd_per_hour))
    solved = solve_problem(request, candidates, Problem(
        Goal.WEIGHTED, spec.accuracy, accuracy_weight=objective.accuracy_weight, cost_weight=objective.cost_weight))
    return None if solved is None else build_plan(request, solved)


# One planning strategy per objective kind; each returns None when no plan meets the constraints.
_STRATEGIES: dict[type, Callable[[PlanRequest, CandidateSet], Plan | None]] = {
    MinCost: _min_cost, MaxAccuracy: _max_accuracy, Weighted: _weighted,
}


def primary_problem(spec: PipelineSpec) -> Problem:
    """The first program the spec's objective solves (the one ``pipeplan plan --lp`` writes)."""
    objective = spec.objective
    if isinstance(objective, MinCost):
        return _accuracy_floor_problem(spec, objective.min_accuracy or None, None)
    if isinstance(objective, MaxAccuracy):
        return Problem(Goal.MAX_ACCURACY, spec.accuracy, accuracy_floor=objective.min_accuracy or None,
                       budget_usd_per_hour=objective.budget_usd_per_hour)
    if spec.accuracy is AccuracyAggregation.PRODUCT:
        return _accuracy_floor_problem(spec, None, None)  # the frontier walk's first point
    return Problem(Goal.WEIGHTED, spec.accuracy, accuracy_weight=objective.accuracy_weight,
                   cost_weight=objective.cost_weight)


def primary_program(request: PlanRequest, candidates: CandidateSet | None = None):
    """The LinearModel of :func:`primary_problem` (constraint names as in planner.ilp.formulation)."""
    candidates = candidates or build_candidates(request.spec, request.catalog, request.profiles, request.sources)
    return formulate(request.spec, candidates, hardware_units(request.catalog), primary_problem(request.spec)).model


def _flow_consistent(request: PlanRequest, plan: Plan, assumed: dict[str, float]) -> dict[str, float] | None:
    """None when every stage's own arrival scv is within what its options assumed; else the raised assumption."""
    spec = request.spec
    evaluated = flow.evaluate(spec, request.profiles.index(), {
        s.stage: flow.StageChoice(s.variant, s.hardware, s.batch_size, s.batch_timeout_ms, s.replicas)
        for s in plan.stages})
    raised = dict(assumed)
    consistent = True
    for name, value in assumed.items():
        actual = evaluated[name].request_scv_in
        if actual > value * (1 + 1e-9) + 1e-12:
            consistent = False
            raised[name] = max(actual * _FLOW_STEP, actual + 0.01)
    return None if consistent else raised


def make_plan(request: PlanRequest) -> Plan:
    """The optimal plan for the spec's objective, re-checked; raises InfeasibleError with a diagnosis.

    Later stages' options depend on the arrival scv their parents pass on (planner.estimate.flow),
    which depends on what the parents run. Start by assuming the pipeline's cv^2 everywhere; solve;
    wherever the chosen plan passes on a larger scv than assumed, raise the assumption there and
    solve again (assumptions only rise, so this ends). The returned plan is optimal among plans
    whose stages see at most the assumed scv, and each stage's latency is the model's at the scv
    the plan itself passes on. After ``_FLOW_ROUNDS`` rounds the bound over every parent option is
    used instead (always consistent); it also decides when a round finds no plan.
    """
    spec = request.spec
    strategy = _STRATEGIES[type(spec.objective)]
    assumed: dict[str, float] | None = {s.name: flow.source_scv(spec) for s in spec.stages if s.after}
    for _ in range(_FLOW_ROUNDS):
        candidates = build_candidates(spec, request.catalog, request.profiles, request.sources,
                                      request_scv=assumed)
        plan = strategy(request, candidates)
        if plan is None:
            break  # the bound below decides (the first round's candidates are the least pessimistic)
        raised = _flow_consistent(request, plan, assumed) if assumed else None
        if raised is None:
            return _checked(request, _with_assumption(plan, candidates))
        assumed = raised
    candidates = build_candidates(spec, request.catalog, request.profiles, request.sources)
    plan = strategy(request, candidates)
    if plan is None:
        raise InfeasibleError(diagnose(request, candidates))
    return _checked(request, _with_assumption(plan, candidates))


def _with_assumption(plan: Plan, candidates: CandidateSet) -> Plan:
    """Record the arrival scv each stage's options were estimated for (the plan is optimal under it)."""
    assumed = {s.stage: round(s.request_scv_in, 6) for s in candidates.stages}
    return replace(plan, provenance={**plan.provenance, "planned_arrival_scv": assumed})
