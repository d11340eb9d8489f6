"""What-ifs: the optimal plan re-solved with one input changed (SLO, load, accuracy floor).

Each point is :func:`planner.optimize.make_plan` on a copy of the spec (``model_copy(update=...)``);
a point with no plan keeps the planner's one-line reason, so the figure can show it as infeasible
instead of dropping it. Nothing is cached across calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from planner.errors import InfeasibleError
from planner.estimate.paths import aggregate_accuracy
from planner.optimize import PlanRequest, make_plan
from planner.plan import Plan
from pydantic import TypeAdapter

from planner.spec import MinCost, Objective, PipelineSpec


class WhatIfKind(str, Enum):
    SLO = "slo"
    LOAD = "load"
    ACCURACY_FLOOR = "accuracy_floor"


# Axis label (with unit) and a short phrase for titles, per kind.
AXIS_LABEL = {
    WhatIfKind.SLO: "end-to-end p99 SLO (ms)",
    WhatIfKind.LOAD: "arrival rate (requests/s)",
    WhatIfKind.ACCURACY_FLOOR: "accuracy floor (pipeline accuracy, 0-1)",
}


@dataclass(frozen=True)
class WhatIfPoint:
    value: float  # the changed input, in the unit of AXIS_LABEL[kind]
    plan: Plan | None  # None when no plan exists
    reason: str = ""  # why not, when plan is None (first sentence of the planner's diagnosis)


@dataclass(frozen=True)
class WhatIfSweep:
    kind: WhatIfKind
    current_value: float  # the value the plan was made for
    objective: str  # what each re-solve optimised, in words
    points: tuple[WhatIfPoint, ...]


def _solve(request: PlanRequest, spec: PipelineSpec, value: float) -> WhatIfPoint:
    try:
        return WhatIfPoint(value, make_plan(replace(request, spec=spec, record_timing=False)))
    except InfeasibleError as exc:
        text = str(exc)
        return WhatIfPoint(value, None, text.split(". ")[0].rstrip(".") + ".")


def objective_words(objective: Objective | dict) -> str:
    """What an objective (or a plan's record of one) optimises, in words."""
    o = TypeAdapter(Objective).validate_python(objective) if isinstance(objective, dict) else objective
    if o.kind == "min_cost":
        return f"cheapest plan with accuracy >= {o.min_accuracy:g}" if o.min_accuracy else "cheapest plan"
    if o.kind == "max_accuracy":
        return f"most accurate plan within {o.budget_usd_per_hour:g} USD/h"
    return f"best {o.accuracy_weight:g} x accuracy - {o.cost_weight:g} x USD/h"


def slo_sweep(request: PlanRequest, factors=(0.5, 0.625, 0.75, 0.875, 1.0, 1.5, 2.0)) -> WhatIfSweep:
    """The spec's objective re-solved at each ``factor x slo_ms``."""
    spec = request.spec
    points = tuple(_solve(request, spec.model_copy(update={"slo_ms": spec.slo_ms * f}), spec.slo_ms * f)
                   for f in factors)
    return WhatIfSweep(WhatIfKind.SLO, spec.slo_ms, objective_words(spec.objective), points)


def load_sweep(request: PlanRequest, factors=(0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)) -> WhatIfSweep:
    """The spec's objective re-solved at each ``factor x arrival_rps``."""
    spec = request.spec
    points = tuple(_solve(request, spec.model_copy(update={"arrival_rps": spec.arrival_rps * f}),
                          spec.arrival_rps * f) for f in factors)
    return WhatIfSweep(WhatIfKind.LOAD, spec.arrival_rps, objective_words(spec.objective), points)


def best_reachable_accuracy(request: PlanRequest) -> float:
    """The pipeline accuracy of the most accurate allowed variant per stage (ignoring SLO and cost)."""
    spec, rows = request.spec, request.profiles.rows
    best = []
    for stage in spec.stages:
        allowed = set(stage.variants) if stage.variants else None
        best.append(max(r.accuracy for r in rows if r.model == stage.model and (allowed is None or r.variant in allowed)))
    return aggregate_accuracy(best, spec.accuracy)


def accuracy_floor_sweep(request: PlanRequest, plan: Plan, points: int = 7,
                         lowest: float | None = None) -> WhatIfSweep:
    """The cheapest plan (min_cost) at ``points`` accuracy floors from ``lowest`` (default: a little
    below the plan's accuracy) up to the best accuracy any variants reach; floors above what the SLO
    allows come out infeasible, which is the answer there."""
    spec = request.spec
    top = best_reachable_accuracy(request)
    current = spec.objective.min_accuracy if isinstance(spec.objective, MinCost) else plan.accuracy
    low = lowest if lowest is not None else max(0.0, min(current, plan.accuracy) - (top - plan.accuracy) - 1e-3)
    floors = sorted({float(f"{v:.6g}") for v in np.linspace(low, top, points)} | {float(f"{current:.6g}")})
    out = []
    for f in floors:
        objective = MinCost(kind="min_cost", min_accuracy=min(1.0, max(0.0, f)))
        out.append(_solve(request, spec.model_copy(update={"objective": objective}), f))
    return WhatIfSweep(WhatIfKind.ACCURACY_FLOOR, current, "cheapest plan with accuracy >= floor", tuple(out))


def all_sweeps(request: PlanRequest, plan: Plan) -> tuple[WhatIfSweep, ...]:
    return (slo_sweep(request), load_sweep(request), accuracy_floor_sweep(request, plan))

