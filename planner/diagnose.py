"""Explain an infeasible planning problem: which constraint binds and the nearest relaxation that works.

Checks run from the hardest limit to the softest: a stage that cannot carry its load at all, the
latency SLO, hardware unit limits, then the accuracy floor or the budget. Each message gives a
number the user can act on (the smallest achievable p99, the highest sustainable load, the highest
reachable accuracy, the cheapest budget).
"""

from __future__ import annotations

import math

from planner.estimate.candidates import CandidateSet, build_candidates
from planner.estimate.paths import aggregate_accuracy, longest_path_ms
from planner.ilp.formulation import Goal, Problem
from planner.solve import PlanRequest, solve_problem
from planner.spec import MaxAccuracy


def _min_p99_ms(request: PlanRequest, candidates: CandidateSet) -> float:
    """A lower bound on the smallest achievable end-to-end p99 under the path rule
    (planner.estimate.paths): no plan beats the fastest p99 of any stage, nor the longest path of
    each stage's least path term."""
    best = {s.stage: s.best_latency_ms for s in candidates.stages}
    if any(math.isinf(v) for v in best.values()):
        return math.inf
    terms = {s.stage: s.best_path_latency_ms for s in candidates.stages}
    return max(max(best.values()), longest_path_ms(request.spec, terms))


def highest_load_rps(request: PlanRequest, upper_rps: float, iterations: int = 16) -> float:
    """About the highest arrival rate whose fastest configuration meets the SLO (bisection)."""
    low, high = 0.0, upper_rps
    for _ in range(iterations):
        mid = (low + high) / 2
        cands = build_candidates(request.spec, request.catalog, request.profiles, request.sources, arrival_rps=mid)
        if _min_p99_ms(request, cands) <= request.spec.slo_ms:
            low = mid
        else:
            high = mid
    return low


def _capacity_message(request: PlanRequest, candidates: CandidateSet) -> str | None:
    spec = request.spec
    short = [s for s in candidates.stages if math.isinf(s.best_latency_ms)]
    if not short:
        return None
    s = short[0]
    stage = spec.stage(s.stage)
    limit_rps = min(c.max_capacity_items_per_s / c.load_items_per_s * spec.arrival_rps for c in candidates.stages)
    return (
        f"No plan: stage '{s.stage}' must serve {s.load_items_per_s:.4g} items/s (arrival_rps {spec.arrival_rps:g} x "
        f"fanout {stage.fanout:g}), but its fastest option with at most "
        f"{stage.max_replicas or spec.max_replicas} replicas at max_utilization {spec.max_utilization:g} carries "
        f"only {s.max_capacity_items_per_s:.4g} items/s. Raise max_replicas (or the hardware's max_units), allow faster "
        f"hardware or variants, or lower arrival_rps to at most {limit_rps:.4g} (the highest load the pipeline "
        "can carry at all)."
    )


def diagnose(request: PlanRequest, candidates: CandidateSet) -> str:
    """One paragraph saying why no plan exists and what would work."""
    spec = request.spec
    message = _capacity_message(request, candidates)
    if message:
        return message
    min_p99 = _min_p99_ms(request, candidates)
    if min_p99 > spec.slo_ms:
        rate = highest_load_rps(request, spec.arrival_rps)
        fastest = ", ".join(f"{s.stage} {s.best_latency_ms:.4g} ms" for s in candidates.stages)
        if rate < spec.arrival_rps * 1e-3:
            load_hint = "no load meets this SLO (the service times alone exceed it)"
        else:
            load_hint = f"lower arrival_rps to at most about {rate:.4g} (the highest load this SLO sustains)"
        return (
            f"No plan: the latency SLO binds. At {spec.arrival_rps:g} rps the smallest achievable end-to-end p99 "
            f"is at least {min_p99:.4g} ms (fastest option per stage: {fastest}), above slo_ms {spec.slo_ms:g}. Raise "
            f"slo_ms to at least {math.ceil(min_p99 * 1000) / 1000:g}; {load_hint}; or allow faster variants "
            "or hardware."
        )
    agg = spec.accuracy
    free = solve_problem(request, candidates, Problem(Goal.MIN_COST, agg))
    if free is None:
        uncapped = build_candidates(spec, request.catalog, request.profiles, request.sources, unit_caps=False)
        unlimited = solve_problem(request, uncapped, Problem(Goal.MIN_COST, agg, enforce_units=False))
        if unlimited is not None:
            used: dict[str, int] = {}
            for o in unlimited.options.values():
                used[o.hardware] = used.get(o.hardware, 0) + o.replicas
            caps = {h.name: h.max_units for h in request.catalog.hardware if h.max_units is not None}
            over = ", ".join(f"'{h}' needs {used[h]} units but has max_units {caps[h]}"
                             for h in sorted(caps) if used.get(h, 0) > caps[h])
            return (
                "No plan: hardware unit limits bind. Meeting the SLO at this load takes more units than the "
                f"catalog allows: the cheapest plan without the limits uses {over}. Raise those max_units, "
                "allow other hardware, or lower arrival_rps."
            )
        return "No plan meets the SLO with the allowed options; relax slo_ms or allow more variants or hardware."
    objective = spec.objective
    floor = getattr(objective, "min_accuracy", 0.0)
    if floor and isinstance(objective, MaxAccuracy):
        # The floor binds only when no plan meeting the SLO reaches it; otherwise the budget does.
        best = solve_problem(request, candidates, Problem(Goal.MAX_ACCURACY, agg))
        if best is not None and aggregate_accuracy([o.accuracy for o in best.options.values()], agg) >= floor:
            floored = solve_problem(request, candidates, Problem(Goal.MIN_COST, agg, accuracy_floor=floor))
            cheapest = sum(o.usd_per_hour for o in floored.options.values()) if floored else math.nan
            return (
                f"No plan: the budget binds under the accuracy floor. The cheapest plan that meets slo_ms "
                f"{spec.slo_ms:g} at {spec.arrival_rps:g} rps with accuracy >= min_accuracy {floor:g} costs "
                f"{cheapest:.6g} USD/h, above budget_usd_per_hour {objective.budget_usd_per_hour:g}. Raise the "
                f"budget to at least {math.ceil(cheapest * 1e6) / 1e6:g}, or lower min_accuracy (below it only "
                "variants whose accuracy collapsed may fit)."
            )
    if floor:
        best = solve_problem(request, candidates, Problem(Goal.MAX_ACCURACY, agg))
        reach = aggregate_accuracy([o.accuracy for o in best.options.values()], agg) if best else float("nan")
        return (
            f"No plan: the accuracy floor binds. The most accurate plan that meets slo_ms {spec.slo_ms:g} at "
            f"{spec.arrival_rps:g} rps reaches accuracy {reach:.6g} ({agg.value} over stages), below min_accuracy "
            f"{floor:g}. Lower min_accuracy to at most {math.floor(reach * 1e6) / 1e6:g}, relax "
            "slo_ms, or profile more accurate variants."
        )
    if isinstance(objective, MaxAccuracy):
        cheapest = sum(o.usd_per_hour for o in free.options.values())
        return (
            f"No plan: the budget binds. The cheapest plan that meets slo_ms {spec.slo_ms:g} at "
            f"{spec.arrival_rps:g} rps costs {cheapest:.6g} USD/h, above budget_usd_per_hour "
            f"{objective.budget_usd_per_hour:g}. Raise the budget to at least {math.ceil(cheapest * 1e6) / 1e6:g}."
        )
    return "No plan found, although a plan meeting the SLO exists; this is a bug in pipeplan, please report it."
