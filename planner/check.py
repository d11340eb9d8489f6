"""The independent re-check: evaluate a Plan with the latency model and list every disagreement.

The planner runs it on every plan it returns, so a formulation or solver bug fails loudly instead
of producing a plan that silently misses its SLO.
"""

from __future__ import annotations

import math

from planner import latency as lat
from planner.plan import Plan
from planner.spec import AccuracyAggregation, HardwareCatalog, PipelineSpec
from profiler.measure import P99_SAMPLES
from profiler.schema import ProfileTable

_REL = 1e-6


def aggregate_accuracy(values: list[float], aggregation: AccuracyAggregation) -> float:
    if aggregation is AccuracyAggregation.PRODUCT:
        return math.prod(values)
    if aggregation is AccuracyAggregation.MIN:
        return min(values)
    return sum(values) / len(values)


def longest_path_ms(spec: PipelineSpec, stage_latency_ms: dict[str, float]) -> float:
    """End-to-end p99 as the slowest path of stage p99s through the DAG."""
    finish: dict[str, float] = {}
    for name in spec.topological_order():
        start = max((finish[p] for p in spec.stage(name).after), default=0.0)
        finish[name] = start + stage_latency_ms[name]
    return max(finish[s] for s in spec.sinks())


def unstable_choices(plan: Plan, profiles: ProfileTable) -> list[str]:
    """The plan's stages whose chosen profile row is flagged ``stable = false``: their figures did not
    pass the profiler's stability or sample-count rule, so the predicted p99 rests on a shaky number.
    Each note says which it was and what would help."""
    rows = profiles.index()
    notes = []
    for s in plan.stages:
        row = rows.get((s.model, s.variant, s.hardware, s.batch_size))
        if row is None or row.stable is not False:
            continue
        head = f"stage '{s.stage}': the profile row {s.variant} on {s.hardware} at batch {s.batch_size} is flagged unstable"
        if row.samples is not None and row.samples < P99_SAMPLES:
            notes.append(f"{head}: {row.samples} samples < {P99_SAMPLES} for a p99; re-profile it with a larger "
                         "method.max_point_s, or check the plan with --verify")
        else:
            spread = "" if row.latency_p50_spread_frac is None else f" by {row.latency_p50_spread_frac:.0%}"
            notes.append(f"{head}: its measurement rounds disagree{spread}; the machine may drift (python "
                         "benchmarks/bench_profiler.py drift); allow for that margin or check the plan with --verify")
    return notes


def recheck(plan: Plan, spec: PipelineSpec, catalog: HardwareCatalog, profiles: ProfileTable) -> list[str]:
    """Every way ``plan`` disagrees with the model or breaks a constraint; empty when it is sound."""
    problems: list[str] = []
    rows = profiles.index()
    hardware = catalog.by_name()
    latencies: dict[str, float] = {}
    units: dict[str, int] = {}
    for sp in plan.stages:
        stage = spec.stage(sp.stage)
        row = rows.get((stage.model, sp.variant, sp.hardware, sp.batch_size))
        if row is None:
            problems.append(f"stage '{sp.stage}': no profile row for {sp.variant} on {sp.hardware} at batch {sp.batch_size}")
            continue
        load_rps = plan.arrival_rps * stage.fanout * stage.champion_share
        terms, utilization = lat.stage_latency(
            lat.ServicePoint(row.batch_size, row.latency_p50_ms, row.latency_p99_ms, row.throughput_rps),
            sp.replicas, load_rps, sp.batch_timeout_ms, spec.arrival_cv, stage.fanout, source=not stage.after,
        )
        latencies[sp.stage] = terms.total_ms
        if not math.isclose(terms.total_ms, sp.predicted_latency_ms, rel_tol=_REL, abs_tol=1e-6):
            problems.append(f"stage '{sp.stage}': latency model gives {terms.total_ms:.6f} ms, plan says "
                            f"{sp.predicted_latency_ms:.6f} ms")
        if utilization > spec.max_utilization * (1 + _REL):
            problems.append(f"stage '{sp.stage}': utilisation {utilization:.4f} exceeds max_utilization "
                            f"{spec.max_utilization}")
        expected_cost = sp.replicas * hardware[sp.hardware].usd_per_hour
        if not math.isclose(expected_cost, sp.usd_per_hour, rel_tol=_REL):
            problems.append(f"stage '{sp.stage}': cost {sp.usd_per_hour} != replicas x price {expected_cost}")
        units[sp.hardware] = units.get(sp.hardware, 0) + sp.replicas
    if problems:
        return problems
    p99_ms = longest_path_ms(spec, latencies)
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
