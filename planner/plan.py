"""The Plan: per-stage choices plus totals, solver report and provenance. Serialises to stable JSON.

The simulator, tuner, emitters and reports read this type, never the ILP.
"""

from __future__ import annotations

import json
import bisect
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Mapping

from planner.resource_class import ResourceClass

PLAN_SCHEMA_VERSION = 2
# Plan-file fields renamed by each schema version (old name -> new name, per stage); a plan file of
# an older version is read by applying these renames in order (planner.io.load_plan).
PLAN_FIELD_RENAMES: dict[int, dict[str, str]] = {
    # version 2: the per-stage rates are items/s (arrival x fanout), not requests/s; say so.
    2: {"capacity_rps": "capacity_items_per_s", "load_rps": "load_items_per_s"},
}


@dataclass(frozen=True)
class ServicePoint:
    """Service time of one batch: median and 99th percentile (ms)."""

    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class ServiceCurve:
    """Service time of the chosen variant on the chosen hardware at each profiled batch size.

    The one rule for a partial batch of ``m`` items, shared by the latency model, the simulator and
    the emitted configs: a batch of m items is charged the profiled time at m when m was profiled,
    otherwise the linear interpolation between the neighbouring profiled sizes b_lo < m < b_hi,

        t(m) = t(b_lo) + (m - b_lo) / (b_hi - b_lo) * (t(b_hi) - t(b_lo)),

    for p50 and p99 separately; below the smallest profiled size it is charged that size's time
    (a smaller batch is never assumed faster than measured). Real engines run the m items they
    have, so interpolation is closer to them than rounding m up to the next profiled size.
    """

    batch_sizes: tuple[int, ...]
    p50_ms: tuple[float, ...]
    p99_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.batch_sizes)
        if n == 0 or len(self.p50_ms) != n or len(self.p99_ms) != n:
            raise ValueError("a ServiceCurve needs one p50 and one p99 per batch size, and at least one size")
        if any(b >= c for b, c in zip(self.batch_sizes, self.batch_sizes[1:])):
            raise ValueError(f"ServiceCurve batch sizes must increase, found {self.batch_sizes}")

    @classmethod
    def from_points(cls, points: Mapping[int, ServicePoint]) -> ServiceCurve:
        sizes = tuple(sorted(points))
        return cls(sizes, tuple(points[b].p50_ms for b in sizes), tuple(points[b].p99_ms for b in sizes))

    def __contains__(self, batch_size: object) -> bool:
        return batch_size in self.batch_sizes

    def profiled(self, batch_size: int) -> ServicePoint:
        """The measured point at a profiled batch size (KeyError if it was not profiled)."""
        i = self.batch_sizes.index(batch_size) if batch_size in self.batch_sizes else -1
        if i < 0:
            raise KeyError(batch_size)
        return ServicePoint(self.p50_ms[i], self.p99_ms[i])

    def at(self, items: int) -> ServicePoint:
        """Service time of a batch of ``items`` (>= 1) under the partial-batch rule above."""
        sizes = self.batch_sizes
        if items <= sizes[0]:
            return ServicePoint(self.p50_ms[0], self.p99_ms[0])
        if items >= sizes[-1]:
            return ServicePoint(self.p50_ms[-1], self.p99_ms[-1])
        hi = bisect.bisect_left(sizes, items)
        if sizes[hi] == items:
            return ServicePoint(self.p50_ms[hi], self.p99_ms[hi])
        lo = hi - 1
        w = (items - sizes[lo]) / (sizes[hi] - sizes[lo])
        return ServicePoint(self.p50_ms[lo] + w * (self.p50_ms[hi] - self.p50_ms[lo]),
                            self.p99_ms[lo] + w * (self.p99_ms[hi] - self.p99_ms[lo]))

    def up_to(self, batch_size: int) -> ServiceCurve:
        """The curve restricted to profiled sizes <= batch_size."""
        keep = [i for i, b in enumerate(self.batch_sizes) if b <= batch_size]
        return ServiceCurve(tuple(self.batch_sizes[i] for i in keep), tuple(self.p50_ms[i] for i in keep),
                            tuple(self.p99_ms[i] for i in keep))


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
    load_items_per_s: float
    capacity_items_per_s: float
    utilization: float
    predicted_latency_ms: float
    accuracy: float
    usd_per_hour: float


@dataclass(frozen=True)
class StageResource:
    """How a stage's hardware is bought when it is not on demand: the catalog entry's class terms
    (planner.spec.Hardware), copied into the plan so the simulator needs no catalog. Terms of the
    other class are None (and absent from the JSON)."""

    resource_class: ResourceClass  # spot | serverless
    preemptions_per_hour: float | None = None  # spot: mean preemptions per replica-hour
    replacement_s: float | None = None  # spot: from a preemption to a serving replacement
    cold_start_ms: float | None = None  # serverless: extra delay of a batch on a cold instance
    keep_warm_s: float | None = None  # serverless: an idle instance stays warm this long
    max_concurrency: int | None = None  # serverless: instances per stage at most
    usd_per_second: float | None = None  # serverless: per busy second of one instance
    usd_per_request: float | None = None  # serverless: per item served


@dataclass(frozen=True)
class StageRisk:
    """What one spot or serverless stage risks, by the first-order formulas of planner.resources."""

    stage: str
    hardware: str
    resource_class: ResourceClass
    replicas: int
    down_share: float  # spot: share of time one replica is down (q); serverless: 0
    degraded_share: float  # spot: share of time too few replicas serve (utilisation >= 1); serverless: 0
    preemptions_per_hour: float  # spot: expected preemptions of the stage's replicas per hour; serverless: 0
    cold_share: float  # serverless: expected share of batches that start on a cold instance; spot: 0
    cold_starts_per_hour: float  # serverless: expected cold starts per hour (after the first use); spot: 0
    miss_share: float  # expected share of the stage's requests pushed past the SLO by this class
    billed_usd_per_hour: float  # expected bill at the planned load (spot: the hourly price x replicas)


@dataclass(frozen=True)
class PlanRisk:
    """A plan's expected SLO attainment under its stages' resource classes (planner.resources.plan_risk).

    ``attainment_factor`` = prod over stages (1 - miss_share); ``expected_slo_attainment`` = 0.99 x
    the factor (the plan's p99 is within the SLO, so at least 99% meet it without these events).
    """

    stages: tuple[StageRisk, ...]  # spot and serverless stages, in plan order
    attainment_factor: float
    expected_slo_attainment: float


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
    capacity_items_per_s: float  # items/s the replicas serve back to back at full batches
    utilization: float  # load / effective capacity (partial batches counted)
    predicted_latency_ms: float  # stage p99 = fill + wait + service
    latency_fill_ms: float
    latency_wait_ms: float
    latency_service_ms: float
    accuracy: float
    usd_per_hour: float
    load_items_per_s: float  # items/s this stage receives (arrival_rps x fanout)
    fanout: float
    after: tuple[str, ...]
    # The chosen variant's service time on the chosen hardware at every allowed batch size up to
    # batch_size; partial batches are charged by ServiceCurve.at.
    service_ms_by_batch: ServiceCurve
    load_time_s: float | None = None
    startup_s: float = 0.0
    routes: tuple[RoutePlan, ...] = ()  # challenger / mirror; absent from the JSON when empty
    resource: StageResource | None = None  # spot / serverless terms; None (absent from the JSON): on demand


class SolveStatus(str, Enum):
    """How a solve ended. Only OPTIMAL and TIME_LIMIT come with a plan."""

    OPTIMAL = "optimal"  # proven optimal
    TIME_LIMIT = "time_limit"  # the best plan found when the time limit hit; not proven optimal
    INFEASIBLE = "infeasible"  # proven: no plan meets the constraints
    NO_SOLUTION = "no_solution"  # the time limit hit before any plan was found (may be feasible)
    ERROR = "error"  # the solver failed
    # The ILP's plan, then improved by a local search under the simulator (planner.localsearch,
    # ``plan --verify``): its simulated p99 meets the SLO; not proven optimal, model SLO not binding.
    LOCAL_SEARCH = "local_search"

    @property
    def has_plan(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT, SolveStatus.LOCAL_SEARCH)


@dataclass(frozen=True)
class SolverReport:
    """Which solver planned, how it ended, and the plan's objective value in the objective's unit
    (``usd_per_hour`` for min_cost, ``accuracy`` for max_accuracy, ``weighted_score`` for weighted)."""

    name: str
    status: SolveStatus
    objective_value: float
    objective_unit: str
    gap: float | None  # relative optimality gap; 0 when proven optimal, None when unknown
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
    risk: PlanRisk | None = None  # None (absent from the JSON): every stage on demand

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
    data["solver"]["status"] = plan.solver.status.value
    for stage, sp in zip(data["stages"], plan.stages):
        curve = sp.service_ms_by_batch
        stage["service_ms_by_batch"] = {
            str(b): {"p50": p50, "p99": p99} for b, p50, p99 in zip(curve.batch_sizes, curve.p50_ms, curve.p99_ms)
        }
        if not stage["routes"]:  # plans without routing keep their bytes
            del stage["routes"]
        if sp.resource is None:  # on-demand stages keep their bytes
            del stage["resource"]
        else:
            stage["resource"] = {k: v for k, v in stage["resource"].items() if v is not None}
            stage["resource"]["resource_class"] = sp.resource.resource_class.value
    if plan.risk is None:
        del data["risk"]
    else:
        for entry, risk in zip(data["risk"]["stages"], plan.risk.stages):
            entry["resource_class"] = risk.resource_class.value
    return _round(data)


def plan_to_json(plan: Plan) -> str:
    """Stable JSON: sorted keys, fixed float precision, trailing newline."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True) + "\n"


def upgrade_plan_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A plan dict of an older schema version, brought to PLAN_SCHEMA_VERSION by field renames."""
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < PLAN_SCHEMA_VERSION:
        return data
    stages = [dict(s) if isinstance(s, dict) else s for s in data.get("stages", ())]
    for step in range(version + 1, PLAN_SCHEMA_VERSION + 1):
        renames = PLAN_FIELD_RENAMES.get(step, {})
        for stage in stages:
            if not isinstance(stage, dict):
                continue
            for old, new in renames.items():
                if old in stage and new not in stage:
                    stage[new] = stage.pop(old)
            for route in stage.get("routes", ()) if isinstance(stage.get("routes"), list) else ():
                if isinstance(route, dict):
                    for old, new in renames.items():
                        if old in route and new not in route:
                            route[new] = route.pop(old)
    return {**data, "stages": stages, "schema_version": PLAN_SCHEMA_VERSION}


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Inverse of plan_to_dict (no validation beyond types: plans are written by pipeplan)."""
    stages = []
    for s in data["stages"]:
        s = dict(s)
        if s.get("resource") is not None:
            r = dict(s["resource"])
            s["resource"] = StageResource(**{**r, "resource_class": ResourceClass(r["resource_class"])})
        s["after"] = tuple(s["after"])
        s["service_ms_by_batch"] = ServiceCurve.from_points({
            int(b): ServicePoint(float(v["p50"]), float(v["p99"])) for b, v in s["service_ms_by_batch"].items()
        })
        s["routes"] = tuple(RoutePlan(**r) for r in s.get("routes", ()))
        stages.append(StagePlan(**s))
    rest = {k: v for k, v in data.items() if k not in ("stages", "solver", "risk")}
    risk = data.get("risk")
    if risk is not None:
        risk = PlanRisk(
            stages=tuple(StageRisk(**{**r, "resource_class": ResourceClass(r["resource_class"])}) for r in risk["stages"]),
            attainment_factor=risk["attainment_factor"], expected_slo_attainment=risk["expected_slo_attainment"])
    return Plan(stages=tuple(stages), solver=SolverReport(**{**data["solver"], "status": SolveStatus(data["solver"]["status"])}),
                risk=risk, **rest)
