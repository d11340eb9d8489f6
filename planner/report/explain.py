"""Why this plan: which constraints bind, the slack of the others, the cheapest change that would
improve the plan, and per stage why this option and not the next-cheaper one.

A constraint *binds* when removing it lets the planner find a better plan (cheaper for min_cost,
more accurate for max_accuracy, a higher weighted value): each test is one re-solve with that
constraint lifted. The *cheapest change* of a binding constraint is the smallest relaxation that
already improves the plan; since relaxing a constraint only enlarges the feasible set, "improves"
is monotone in the relaxation and a bisection finds it (to ``_BISECT_STEPS`` halvings). The
per-stage reason substitutes the stage's next-cheaper option (at the planned load, SLO and unit
limits lifted so that it is listed at all) into the plan, other stages fixed, and lists what it
breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable

from planner.errors import InfeasibleError, SpecError
from planner.estimate.candidates import Option, build_candidates
from planner.estimate import flow
from planner.estimate.paths import aggregate_accuracy, path_latency_ms, stage_tail_weights
from planner.optimize import PlanRequest, make_plan
from planner.plan import Plan
from planner.report.whatif import objective_words
from planner.spec import HardwareCatalog, MaxAccuracy, MinCost, PipelineSpec, Weighted

_BISECT_STEPS = 10
_REL = 1e-9
# "Lifted" limits: far beyond anything a real pipeline plans for, within the spec's validators.
_NO_SLO_MS = 1e7
_NO_BUDGET_USD_PER_HOUR = 1e9
_MAX_UTILIZATION_CEILING = 0.99


class ConstraintKind(str, Enum):
    SLO = "latency SLO"
    BUDGET = "budget"
    ACCURACY_FLOOR = "accuracy floor"
    CAPACITY = "capacity (max_utilization)"
    UNITS = "hardware units"


@dataclass(frozen=True)
class ConstraintStatus:
    """One constraint as the plan meets it: limit, what the plan uses, slack (>= 0), and whether it binds."""

    kind: ConstraintKind
    subject: str  # the path, stage or hardware it applies to ("" for the whole pipeline)
    limit: float
    used: float
    unit: str
    slack: float  # how far the plan is from the limit, in unit
    binding: bool


@dataclass(frozen=True)
class Change:
    """The smallest relaxation of one binding constraint that already gives a better plan."""

    kind: ConstraintKind
    subject: str
    from_value: float
    to_value: float
    unit: str
    plan: Plan  # the better plan at to_value

    @property
    def relative_change(self) -> float:
        return abs(self.to_value - self.from_value) / abs(self.from_value) if self.from_value else math.inf


@dataclass(frozen=True)
class StageReason:
    """Why a stage runs its option and not the next-cheaper one."""

    stage: str
    chosen: str
    chosen_usd_per_hour: float
    alternative: str | None  # None: the chosen option is already the stage's cheapest
    alternative_usd_per_hour: float | None
    violations: tuple[str, ...]  # what the alternative would break or make worse


@dataclass(frozen=True)
class Explanation:
    objective: str
    constraints: tuple[ConstraintStatus, ...]
    changes: tuple[Change, ...]
    stages: tuple[StageReason, ...]

    @property
    def cheapest_change(self) -> Change | None:
        """The binding constraint whose improving relaxation is the smallest relative change."""
        return min(self.changes, key=lambda c: c.relative_change, default=None)


def better(candidate: Plan, plan: Plan, spec: PipelineSpec) -> bool:
    """Whether ``candidate`` beats ``plan`` under the spec's objective."""
    o = spec.objective
    cheaper = candidate.cost_usd_per_hour < plan.cost_usd_per_hour * (1 - _REL) - 1e-12
    if isinstance(o, MinCost):
        return cheaper
    if isinstance(o, MaxAccuracy):
        tie = math.isclose(candidate.accuracy, plan.accuracy, rel_tol=1e-9)
        return (candidate.accuracy > plan.accuracy and not tie) or (tie and cheaper)
    assert isinstance(o, Weighted)
    value = lambda p: o.accuracy_weight * p.accuracy - o.cost_weight * p.cost_usd_per_hour
    return value(candidate) > value(plan) + 1e-12


def _try(request: PlanRequest, spec: PipelineSpec, catalog: HardwareCatalog | None = None) -> Plan | None:
    try:
        return make_plan(replace(request, spec=spec, catalog=catalog or request.catalog, record_timing=False))
    except InfeasibleError:
        return None


def paths(spec: PipelineSpec) -> list[tuple[str, ...]]:
    """Every source-to-sink path of the DAG, in file order."""
    children = {s.name: [c.name for c in spec.stages if s.name in c.after] for s in spec.stages}
    out: list[tuple[str, ...]] = []

    def walk(path: tuple[str, ...]) -> None:
        kids = children[path[-1]]
        if not kids:
            out.append(path)
        for k in kids:
            walk(path + (k,))

    for s in spec.stages:
        if not s.after:
            walk((s.name,))
    return out


def _bisect(improves: Callable[[float], Plan | None], start: float, relaxed: float) -> tuple[float, Plan] | None:
    """Smallest value between start (no improvement) and relaxed (improves) that still improves."""
    best = improves(relaxed)
    if best is None:
        return None
    lo, hi = start, relaxed
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2
        found = improves(mid)
        if found is None:
            lo = mid
        else:
            hi, best = mid, found
    return hi, best


def _units_used(plan: Plan) -> dict[str, int]:
    used: dict[str, int] = {}
    for s in plan.stages:
        used[s.hardware] = used.get(s.hardware, 0) + s.replicas
    return used


def _with_units(catalog: HardwareCatalog, name: str, units: int | None) -> HardwareCatalog:
    hardware = tuple(h.model_copy(update={"max_units": units}) if h.name == name else h for h in catalog.hardware)
    return catalog.model_copy(update={"hardware": hardware})


def _constraints(request: PlanRequest, plan: Plan) -> tuple[list[ConstraintStatus], list[Change]]:
    spec, catalog = request.spec, request.catalog
    statuses: list[ConstraintStatus] = []
    changes: list[Change] = []

    def improves_with(make_spec: Callable[[float], PipelineSpec]) -> Callable[[float], Plan | None]:
        def check(value: float) -> Plan | None:
            found = _try(request, make_spec(value))
            return found if found is not None and better(found, plan, spec) else None
        return check

    # SLO: one row per source-to-sink path; the SLO binds as a whole, on the path with the least slack.
    lat = {s.stage: s.predicted_latency_ms for s in plan.stages}
    terms = _path_terms(request, plan)
    slo_check = improves_with(lambda v: spec.model_copy(update={"slo_ms": v}))
    relaxed = slo_check(_NO_SLO_MS)
    path_ms = [(p, _path_p99_ms(p, terms, lat)) for p in paths(spec)]
    tightest = max(ms for _, ms in path_ms)
    for p, ms in path_ms:
        statuses.append(ConstraintStatus(ConstraintKind.SLO, " -> ".join(p), spec.slo_ms, ms, "ms", spec.slo_ms - ms,
                                         relaxed is not None and math.isclose(ms, tightest)))
    if relaxed is not None:
        found = _bisect(slo_check, spec.slo_ms, max(relaxed.predicted_p99_ms, spec.slo_ms))
        if found:
            changes.append(Change(ConstraintKind.SLO, "slo_ms", spec.slo_ms, found[0], "ms", found[1]))

    o = spec.objective
    if isinstance(o, MaxAccuracy):
        check = improves_with(lambda v: spec.model_copy(update={"objective": o.model_copy(update={"budget_usd_per_hour": v})}))
        relaxed = check(_NO_BUDGET_USD_PER_HOUR)
        statuses.append(ConstraintStatus(ConstraintKind.BUDGET, "", o.budget_usd_per_hour, plan.cost_usd_per_hour,
                                         "USD/h", o.budget_usd_per_hour - plan.cost_usd_per_hour, relaxed is not None))
        if relaxed is not None:
            found = _bisect(check, o.budget_usd_per_hour, max(relaxed.cost_usd_per_hour, o.budget_usd_per_hour))
            if found:
                changes.append(Change(ConstraintKind.BUDGET, "budget_usd_per_hour", o.budget_usd_per_hour, found[0],
                                      "USD/h", found[1]))
    if isinstance(o, MinCost) and o.min_accuracy:
        check = improves_with(lambda v: spec.model_copy(update={"objective": o.model_copy(update={"min_accuracy": v})}))
        relaxed = check(0.0)
        statuses.append(ConstraintStatus(ConstraintKind.ACCURACY_FLOOR, "", o.min_accuracy, plan.accuracy, "",
                                         plan.accuracy - o.min_accuracy, relaxed is not None))
        if relaxed is not None:
            found = _bisect(check, o.min_accuracy, relaxed.accuracy)
            if found:
                changes.append(Change(ConstraintKind.ACCURACY_FLOOR, "min_accuracy", o.min_accuracy, found[0], "",
                                      found[1]))

    check = improves_with(lambda v: spec.model_copy(update={"max_utilization": v}))
    relaxed = check(_MAX_UTILIZATION_CEILING) if spec.max_utilization < _MAX_UTILIZATION_CEILING else None
    worst = max(s.utilization for s in plan.stages)
    for s in plan.stages:
        statuses.append(ConstraintStatus(ConstraintKind.CAPACITY, s.stage, spec.max_utilization, s.utilization, "",
                                         spec.max_utilization - s.utilization,
                                         relaxed is not None and math.isclose(s.utilization, worst)))
    if relaxed is not None:
        found = _bisect(check, spec.max_utilization, _MAX_UTILIZATION_CEILING)
        if found:
            changes.append(Change(ConstraintKind.CAPACITY, "max_utilization", spec.max_utilization, found[0], "",
                                  found[1]))

    used = _units_used(plan)
    for h in catalog.hardware:
        if h.max_units is None:
            continue
        relaxed = _try(request, spec, _with_units(catalog, h.name, None))
        binding = relaxed is not None and better(relaxed, plan, spec)
        statuses.append(ConstraintStatus(ConstraintKind.UNITS, h.name, h.max_units, used.get(h.name, 0), "units",
                                         h.max_units - used.get(h.name, 0), binding))
        if binding:
            for units in range(h.max_units + 1, _units_used(relaxed).get(h.name, h.max_units) + 1):
                found = _try(request, spec, _with_units(catalog, h.name, units))
                if found is not None and better(found, plan, spec):
                    changes.append(Change(ConstraintKind.UNITS, f"{h.name} max_units", h.max_units, units, "units",
                                          found))
                    break
    return statuses, changes


def _describe(o: Option) -> str:
    return f"{o.variant}@{o.hardware} b{o.batch_size} x{o.replicas}"


def _path_terms(request: PlanRequest, plan: Plan) -> dict[str, float]:
    """Each stage's term in a path sum under the planner's path rule (planner.estimate.paths)."""
    evaluated = flow.evaluate(request.spec, request.profiles.index(), {
        s.stage: flow.StageChoice(s.variant, s.hardware, s.batch_size, s.batch_timeout_ms, s.replicas)
        for s in plan.stages}, plan.arrival_rps)
    weights = stage_tail_weights(request.spec)
    return {s.stage: path_latency_ms(evaluated[s.stage].estimate.mean_ms, s.predicted_latency_ms, weights[s.stage])
            for s in plan.stages}


def _path_p99_ms(path: tuple[str, ...], terms: dict[str, float], p99_ms: dict[str, float]) -> float:
    """One path's p99 by the path rule: its stage terms' sum, never below a stage's own p99."""
    return max(sum(terms[s] for s in path), max(p99_ms[s] for s in path))


def _stage_reasons(request: PlanRequest, plan: Plan) -> list[StageReason]:
    spec = request.spec
    open_spec = spec.model_copy(update={"slo_ms": _NO_SLO_MS})
    candidates = build_candidates(open_spec, request.catalog, request.profiles, request.sources,
                                  arrival_rps=plan.arrival_rps, unit_caps=False)
    caps = {h.name: h.max_units for h in request.catalog.hardware if h.max_units is not None}
    o = spec.objective
    reasons = []
    terms = _path_terms(request, plan)
    for sp in plan.stages:
        chosen = f"{sp.variant}@{sp.hardware} b{sp.batch_size} x{sp.replicas}"
        cheaper = [c for c in candidates.of(sp.stage).options if c.usd_per_hour < sp.usd_per_hour * (1 - _REL)]
        notes: list[str] = []  # capacity of this very option
        if sp.replicas > 1:
            fewer = sp.utilization * sp.replicas / (sp.replicas - 1)
            if fewer > spec.max_utilization:
                notes.append(f"capacity: with {sp.replicas - 1} replica(s) utilisation would be {fewer:.2f} > "
                             f"max_utilization {spec.max_utilization:g}")
        if not cheaper:
            reasons.append(StageReason(sp.stage, chosen, sp.usd_per_hour, None, None, tuple(notes)))
            continue
        alt = max(cheaper, key=lambda c: (c.usd_per_hour, c.accuracy, -c.latency_ms))
        latency = {s.stage: s.predicted_latency_ms for s in plan.stages} | {sp.stage: alt.latency_ms}
        alt_terms = terms | {sp.stage: alt.path_latency_ms}
        slow = max(paths(spec), key=lambda p: _path_p99_ms(p, alt_terms, latency))
        p99 = _path_p99_ms(slow, alt_terms, latency)
        accuracy = aggregate_accuracy([alt.accuracy if s.stage == sp.stage else s.accuracy for s in plan.stages],
                                      spec.accuracy)
        broken: list[str] = []
        if p99 > spec.slo_ms * (1 + _REL):
            broken.append(f"latency SLO: end-to-end p99 {p99:.4g} ms > slo_ms {spec.slo_ms:g} (path "
                         f"{' -> '.join(slow)}; this stage {alt.latency_ms:.4g} ms instead of "
                         f"{sp.predicted_latency_ms:.4g} ms)")
        if isinstance(o, MinCost) and o.min_accuracy and accuracy < o.min_accuracy * (1 - _REL):
            broken.append(f"accuracy floor: pipeline accuracy {accuracy:.4f} < min_accuracy {o.min_accuracy:g}")
        used = {h: n - (sp.replicas if h == sp.hardware else 0) for h, n in _units_used(plan).items()}
        used[alt.hardware] = used.get(alt.hardware, 0) + alt.replicas
        for h, cap in sorted(caps.items()):
            if used.get(h, 0) > cap:
                broken.append(f"hardware units: {used[h]} units of '{h}' > max_units {cap}")
        if isinstance(o, (MaxAccuracy, Weighted)) and accuracy < plan.accuracy * (1 - _REL):
            broken.append(f"objective: pipeline accuracy would drop from {plan.accuracy:.4f} to {accuracy:.4f}")
        if not broken:
            broken.append("nothing on its own: a cheaper plan may need this stage's option together with other "
                         "stages' changes, or the plan was not made by this spec's optimum (e.g. --verify "
                         "tightened it)")
        reasons.append(StageReason(sp.stage, chosen, sp.usd_per_hour, _describe(alt), alt.usd_per_hour,
                                   tuple(broken + notes)))
    return reasons


def check_matches(request: PlanRequest, plan: Plan) -> None:
    """Raise SpecError unless the spec has the plan's stages and models (what-ifs and reasons need that)."""
    spec_stages = [(s.name, s.model) for s in request.spec.stages]
    plan_stages = [(s.stage, s.model) for s in plan.stages]
    if spec_stages != plan_stages:
        raise SpecError(f"{request.sources.spec}: its stages (name, model) {spec_stages} are not the plan's "
                        f"{plan_stages}; pass the spec the plan '{plan.pipeline}' was made from (--spec).")


def explain(request: PlanRequest, plan: Plan) -> Explanation:
    """The plan's binding constraints, slacks, cheapest improving changes and per-stage reasons."""
    check_matches(request, plan)
    statuses, changes = _constraints(request, plan)
    return Explanation(objective_words(request.spec.objective), tuple(statuses), tuple(changes),
                       tuple(_stage_reasons(request, plan)))
