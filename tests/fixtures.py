"""Shared builders for tests: in-memory specs, catalogs, profile tables, and an exhaustive solver."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from planner.estimate import flow
from planner.estimate import latency as lat
from planner.estimate.candidates import timeouts_for
from planner.estimate.paths import aggregate_accuracy, longest_path_ms
from planner.optimize import PlanRequest
from planner.spec import HardwareCatalog, MaxAccuracy, MinCost, PipelineSpec, Weighted
from profiler.schema import ProfileRow

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SYNTHETIC = CONFIGS / "synthetic"  # synthetic-profile examples: fixed inputs of golden plans and tuner tests


def make_catalog(entries: list[dict]) -> HardwareCatalog:
    return HardwareCatalog.model_validate({"schema_version": 1, "hardware": entries})


def make_spec(**fields) -> PipelineSpec:
    return PipelineSpec.model_validate({"schema_version": 1, "name": "t", **fields})


def linear_profile(model: str, variant: str, hardware: str, batches, overhead_ms: float,
                   per_item_ms: float, accuracy: float, spread: float = 1.2) -> list[ProfileRow]:
    """Rows with latency(b) = overhead + per_item * b (the INFaaS linear fit)."""
    rows = []
    for b in batches:
        p50 = overhead_ms + per_item_ms * b
        rows.append(ProfileRow(model, variant, hardware, b, p50, p50 * spread, 1000.0 * b / p50, accuracy))
    return rows


@dataclass(frozen=True)
class Brute:
    """The best plan found by enumerating every configuration (same latency model, no pruning)."""

    feasible: bool
    objective: float | None = None
    cost: float | None = None
    accuracy: float | None = None


def stage_configs(request: PlanRequest, stage_name: str, request_scv: float) -> list[tuple]:
    """Every (variant, hardware, batch, timeout, replicas) of a stage that carries its load, with
    (cost, latency_ms, accuracy, hardware, replicas), at this arrival scv; replicas scanned 1..max_replicas."""
    spec, rows = request.spec, request.profiles.rows
    stage = spec.stage(stage_name)
    hardware = request.catalog.by_name()
    load = spec.arrival_rps * stage.fanout
    batches = stage.batch_sizes or spec.batch_sizes
    by_vh: dict[tuple[str, str], dict[int, object]] = {}
    for row in rows:
        if row.model == stage.model and row.batch_size in batches:
            by_vh.setdefault((row.variant, row.hardware), {})[row.batch_size] = row
    out = []
    for row in rows:
        if row.model != stage.model or row.batch_size not in batches:
            continue
        if stage.variants and row.variant not in stage.variants:
            continue
        allowed_hw = stage.hardware or spec.hardware
        if allowed_hw and row.hardware not in allowed_hw:
            continue
        hw = hardware[row.hardware]
        service = flow.batch_service(by_vh[(row.variant, row.hardware)], batches, row.batch_size)
        for timeout in timeouts_for(row.batch_size, load, spec.batch_timeout_quantiles):
            queue = lat.StageQueue(service, load, timeout, flow.item_scv(request_scv, stage.fanout), stage.fanout)
            for est in queue.scan(1, stage.max_replicas or spec.max_replicas):
                if est.utilization > spec.max_utilization * (1 + 1e-9):
                    continue
                out.append((est.replicas * hw.usd_per_hour, est.latency.total_ms, row.accuracy, row.hardware,
                            est.replicas))
    return out


def brute_force(request: PlanRequest, request_scv: dict[str, float] | None = None) -> Brute:
    """The optimum by enumeration, each later stage at the given arrival scv (default: the pipeline's cv^2)."""
    spec = request.spec
    names = [s.name for s in spec.stages]
    scv = {s.name: (request_scv or {}).get(s.name, spec.arrival_cv ** 2) for s in spec.stages}
    per_stage = [stage_configs(request, n, scv[n]) for n in names]
    caps = {h.name: h.max_units for h in request.catalog.hardware if h.max_units is not None}
    objective = spec.objective
    best: tuple | None = None
    for combo in itertools.product(*per_stage):
        latency = longest_path_ms(spec, {n: c[1] for n, c in zip(names, combo)})
        if latency > spec.slo_ms:
            continue
        if caps:
            used: dict[str, int] = {}
            for c in combo:
                used[c[3]] = used.get(c[3], 0) + c[4]
            if any(used.get(h, 0) > cap for h, cap in caps.items()):
                continue
        cost = sum(c[0] for c in combo)
        acc = aggregate_accuracy([c[2] for c in combo], spec.accuracy)
        if isinstance(objective, MinCost):
            if acc < objective.min_accuracy * (1 - 1e-9):
                continue
            key = (cost, -acc)
        elif isinstance(objective, MaxAccuracy):
            if cost > objective.budget_usd_per_hour * (1 + 1e-9):
                continue
            key = (-acc, cost)
        else:
            assert isinstance(objective, Weighted)
            key = (-(objective.accuracy_weight * acc - objective.cost_weight * cost), cost)
        if best is None or key < best[0]:
            best = (key, cost, acc)
    if best is None:
        return Brute(False)
    key, cost, acc = best
    return Brute(True, key[0], cost, acc)


def objective_value(plan, spec: PipelineSpec) -> float:
    """The same objective key[0] as brute_force uses, computed from a plan."""
    objective = spec.objective
    if isinstance(objective, MinCost):
        return plan.cost_usd_per_hour
    if isinstance(objective, MaxAccuracy):
        return -plan.accuracy
    return -(objective.accuracy_weight * plan.accuracy - objective.cost_weight * plan.cost_usd_per_hour)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
