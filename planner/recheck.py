"""The independent re-check: evaluate a Plan with the latency model and list every disagreement.

Each stage is re-derived from the profile rows at the arrival variability the plan itself passes
down the DAG (planner.estimate.flow.evaluate), not from the candidate options, and the end-to-end
p99 from those stages' means and p99s by the path rule (planner.estimate.paths.end_to_end_p99_ms),
not from the ILP's rows.

The planner runs it on every plan it returns, so a formulation or solver bug fails loudly instead
of producing a plan that silently misses its SLO.
"""

from __future__ import annotations

import math

from planner.estimate import flow
from planner.estimate.paths import aggregate_accuracy, end_to_end_p99_ms
from planner.plan import Plan
from planner.pricing import hardware_usd_per_hour
from planner.spec import HardwareCatalog, PipelineSpec
from profiler.schema import ProfileTable

_REL = 1e-6


def recheck(plan: Plan, spec: PipelineSpec, catalog: HardwareCatalog, profiles: ProfileTable) -> list[str]:
    """Every way ``plan`` disagrees with the model or breaks a constraint; empty when it is sound."""
    problems: list[str] = []
    rows = profiles.index()
    hardware = catalog.by_name()
    latencies: dict[str, float] = {}
    means: dict[str, float] = {}
    units: dict[str, int] = {}
    for sp in plan.stages:
        stage = spec.stage(sp.stage)
        if (stage.model, sp.variant, sp.hardware, sp.batch_size) not in rows:
            problems.append(f"stage '{sp.stage}': no profile row for {sp.variant} on {sp.hardware} at batch {sp.batch_size}")
    if problems:
        return problems
    evaluated = flow.evaluate(spec, rows, {
        sp.stage: flow.StageChoice(sp.variant, sp.hardware, sp.batch_size, sp.batch_timeout_ms, sp.replicas)
        for sp in plan.stages}, plan.arrival_rps)
    for sp in plan.stages:
        est = evaluated[sp.stage].estimate
        total_ms = est.latency.total_ms
        latencies[sp.stage] = total_ms
        means[sp.stage] = est.mean_ms
        if not math.isclose(total_ms, sp.predicted_latency_ms, rel_tol=_REL, abs_tol=1e-6):
            problems.append(f"stage '{sp.stage}': latency model gives {total_ms:.6f} ms, plan says "
                            f"{sp.predicted_latency_ms:.6f} ms")
        if est.utilization > spec.max_utilization * (1 + _REL):
            problems.append(f"stage '{sp.stage}': utilisation {est.utilization:.4f} exceeds max_utilization "
                            f"{spec.max_utilization}")
        expected_cost = hardware_usd_per_hour(hardware[sp.hardware], sp.replicas, sp.load_items_per_s,
                                              sp.capacity_items_per_s / sp.replicas)
        if not math.isclose(expected_cost, sp.usd_per_hour, rel_tol=_REL):
            problems.append(f"stage '{sp.stage}': cost {sp.usd_per_hour} != its hardware's price at the planned "
                            f"load {expected_cost} (planner.pricing)")
        units[sp.hardware] = units.get(sp.hardware, 0) + sp.replicas
    if problems:
        return problems
    p99_ms = end_to_end_p99_ms(spec, means, latencies)
    if p99_ms > spec.slo_ms * (1 + _REL):
        problems.append(f"predicted p99 {p99_ms:.3f} ms exceeds the SLO {spec.slo_ms} ms")
    if not math.isclose(p99_ms, plan.predicted_p99_ms, rel_tol=_REL, abs_tol=1e-6):
        problems.append(f"predicted p99: model gives {p99_ms:.6f} ms, plan says {plan.predicted_p99_ms:.6f} ms")
    for name, used in sorted(units.items()):
        cap = hardware[name].max_units
        if cap is not None and used > cap:
            problems.append(f"hardware '{name}': {used} units used, {cap} available")
    total = sum(s.usd_per_hour for s in plan.stages)
    if not math.isclose(total, plan.cost_usd_per_hour, rel_tol=_REL, abs_tol=1e-9):
        problems.append(f"total cost {plan.cost_usd_per_hour} != sum of stages {total}")
    accuracy = aggregate_accuracy([s.accuracy for s in plan.stages], spec.accuracy)
    if not math.isclose(accuracy, plan.accuracy, rel_tol=_REL):
        problems.append(f"accuracy {plan.accuracy} != aggregate of stages {accuracy}")
    objective = spec.objective
    floor = getattr(objective, "min_accuracy", 0.0)
    if floor and accuracy < floor * (1 - _REL):
        problems.append(f"accuracy {accuracy:.6f} is below the floor {floor}")
    budget = getattr(objective, "budget_usd_per_hour", None)
    if budget is not None and total > budget * (1 + _REL):
        problems.append(f"cost {total:.6f} USD/h exceeds the budget {budget}")
    return problems
