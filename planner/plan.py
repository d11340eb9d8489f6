"""The Plan: per-stage choices plus totals, solver report and provenance. Serialises to stable JSON.

The simulator, tuner, emitters and reports read this type, never the ILP.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RoutePlan:
    """A stage's challenger (a share of its requests) or mirror (a copy of all of them), sized after the
    ILP: a challenger no slower than the champion at its share of the load, a mirror at the full load
    with no latency bound (it is off the critical path). Not counted in the plan's cost_usd_per_hour."""

    role: str  # challenger | mirror
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    percent: int  # challenger: share of the stage's requests; mirror: 100 (a copy)
    load_rps: float
    capacity_rps: float
    utilization: float
    predicted_latency_ms: float
    accuracy: float
    usd_per_hour: float


@dataclass(frozen=True)
class StagePlan:
    """One stage's configuration and what the latency model predicts for it."""

    stage: str
    model: str
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    capacity_rps: float  # items/s the replicas serve back to back at full batches
    utilization: float  # load / effective capacity (partial batches counted)
    predicted_latency_ms: float  # stage p99 = fill + wait + service
    latency_fill_ms: float
    latency_wait_ms: float
    latency_service_ms: float
    accuracy: float
    usd_per_hour: float
    load_rps: float  # items/s this stage receives (arrival_rps x fanout)
    fanout: float
    after: tuple[str, ...]
    # batch size -> (p50 ms, p99 ms) of the chosen variant on the chosen hardware, for every allowed
    # batch size up to batch_size: the simulator serves partial batches from it.
    service_ms_by_batch: dict[int, tuple[float, float]] = field(default_factory=dict)
    load_time_s: float | None = None
    startup_s: float = 0.0
    routes: tuple[RoutePlan, ...] = ()  # challenger / mirror; absent from the JSON when empty


@dataclass(frozen=True)
class SolverReport:
    name: str
    status: str  # optimal | time_limit
    objective: float
    gap: float | None
    solve_time_ms: float | None  # None unless timing is recorded (keeps plan files byte-identical)


@dataclass(frozen=True)
class Plan:
    pipeline: str
    stages: tuple[StagePlan, ...]
    cost_usd_per_hour: float
    accuracy: float
    accuracy_aggregation: str
    predicted_p99_ms: float
    arrival_rps: float
    slo_ms: float
    objective: dict[str, Any]
    solver: SolverReport
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = PLAN_SCHEMA_VERSION

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.stage == name)


def _round(value: Any) -> Any:
    """Fixed precision for floats (10 significant digits), recursively; keeps files stable."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    data = asdict(plan)
    for stage in data["stages"]:
        stage["service_ms_by_batch"] = {
            str(b): {"p50": p50, "p99": p99} for b, (p50, p99) in sorted(stage["service_ms_by_batch"].items())
        }
        if not stage["routes"]:  # plans without routing keep their bytes
            del stage["routes"]
    return _round(data)


def plan_to_json(plan: Plan) -> str:
    """Stable JSON: sorted keys, fixed float precision, trailing newline."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True) + "\n"


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Inverse of plan_to_dict (no validation beyond types: plans are written by pipeplan)."""
    stages = []
    for s in data["stages"]:
        s = dict(s)
        s["after"] = tuple(s["after"])
        s["routes"] = tuple(RoutePlan(**r) for r in s.get("routes", ()))
        s["service_ms_by_batch"] = {
            int(b): (float(v["p50"]), float(v["p99"])) for b, v in s["service_ms_by_batch"].items()
        }
        stages.append(StagePlan(**s))
    rest = {k: v for k, v in data.items() if k not in ("stages", "solver")}
    return Plan(stages=tuple(stages), solver=SolverReport(**data["solver"]), **rest)
