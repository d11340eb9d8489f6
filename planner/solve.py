"""Solving one program: a PlanRequest (everything one planning run needs) and the call that
formulates, solves and reads back the chosen option per stage.

Below both planner.optimize (which solves for an objective) and planner.diagnose (which solves
relaxations to explain infeasibility), so neither imports the other inside a function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.errors import SolverError
from planner.estimate.candidates import CandidateSet, Option, Sources
from planner.ilp.backends import SolverName, solve
from planner.ilp.formulation import Formulation, Problem, formulate
from planner.ilp.program import Solution
from planner.plan import SolveStatus
from planner.spec import HardwareCatalog, PipelineSpec
from profiler.schema import ProfileTable


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
class Solved:
    options: dict[str, Option]
    solution: Solution
    form: Formulation | None = None  # the program solved (None where a plan was not solved for)


def hardware_units(catalog: HardwareCatalog) -> dict[str, int]:
    return {h.name: h.max_units for h in catalog.hardware if h.max_units is not None}


def solve_problem(request: PlanRequest, candidates: CandidateSet, problem: Problem,
                  form: Formulation | None = None) -> Solved | None:
    """Solve one program (``form``: it already formulated from these candidates); None when
    infeasible. Raises SolverError on solver failure."""
    if any(not s.options for s in candidates.stages):
        return None
    form = form or formulate(request.spec, candidates, hardware_units(request.catalog), problem)
    solution = solve(form.model, request.solver, request.time_limit_s)
    if solution.status is SolveStatus.INFEASIBLE:
        return None
    if solution.status is SolveStatus.NO_SOLUTION:
        raise SolverError(
            f"{request.solver.value} found no plan within the time limit of {request.time_limit_s} s "
            "(the problem may still be feasible); raise --time-limit or try another --solver."
        )
    if not solution.status.has_plan:
        raise SolverError(f"{request.solver.value} failed (status {solution.status.value}); try another --solver.")
    chosen: dict[str, Option] = {}
    for name, (stage, option) in form.choice.items():
        if solution.values.get(name, 0.0) > 0.5:
            if stage in chosen:
                raise SolverError(f"{request.solver.value} chose two options for stage '{stage}'; this is a bug.")
            chosen[stage] = option
    missing = [s.name for s in request.spec.stages if s.name not in chosen]
    if missing:
        raise SolverError(f"{request.solver.value} chose no option for stage(s) {missing}; this is a bug.")
    return Solved(chosen, solution, form)
