"""A cache of optimal plans by arrival rate, so a replay solves tens of ILPs instead of thousands.

Rates are quantised to a geometric grid ``base_rps * (1 + step) ** i`` (default steps of 5%), and a
rate is served by the plan for the next grid point *up* (never under-provisioned by the rounding;
at most ``step`` over-provisioned). A plan may also be *pinned*: every stage keeps its variant,
hardware and batch size and only the replica counts are solved (what a replica-only tuner does).
A plan may also be made for a measured burstiness: the coefficient of variation of inter-arrival
times (the spec's ``arrival_cv``), rounded to the nearest ``cv_step`` (default 0.25).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from planner.errors import InfeasibleError
from planner.plan import Plan
from planner.optimize import PlanRequest, make_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageKey:
    """What identifies a deployed stage configuration (changing it means loading new replicas)."""

    variant: str
    hardware: str
    batch_size: int


Pin = tuple[tuple[str, StageKey], ...]  # (stage name, key) for every stage


def plan_pin(plan: Plan) -> Pin:
    """The configuration keys of a plan's stages."""
    return tuple((s.stage, StageKey(s.variant, s.hardware, s.batch_size)) for s in plan.stages)


class PlanBook:
    """Optimal plans per grid rate (and per pinned configuration), solved once and remembered."""

    def __init__(self, request: PlanRequest, step: float = 0.05, base_rps: float = 0.1, cv_step: float = 0.25):
        if not step > 0 or not base_rps > 0 or not cv_step > 0:
            raise ValueError(f"PlanBook needs step, base_rps and cv_step > 0, found {step}, {base_rps}, {cv_step}")
        self.request = request
        self.step = step
        self.base_rps = base_rps
        self.cv_step = cv_step
        self._plans: dict[tuple[int, Pin | None, float], Plan | None] = {}
        self.solves = 0

    def grid_cv(self, cv: float | None) -> float:
        """The burstiness a plan is made for: the spec's arrival_cv, or ``cv`` rounded to the grid."""
        if cv is None or not math.isfinite(cv):
            return self.request.spec.arrival_cv
        return max(self.cv_step, round(cv / self.cv_step) * self.cv_step)

    def grid_index(self, rps: float) -> int:
        """Index of the smallest grid rate >= ``rps`` (rates below the base map to the base)."""
        if not rps > self.base_rps:
            return 0
        return max(0, math.ceil(math.log(rps / self.base_rps) / math.log1p(self.step) - 1e-9))

    def grid_rps(self, index: int) -> float:
        return self.base_rps * (1.0 + self.step) ** index

    def _solve(self, index: int, pin: Pin | None, cv: float | None = None) -> Plan | None:
        grid_cv = self.grid_cv(cv)
        key = (index, pin, grid_cv)
        if key not in self._plans:
            spec = self.request.spec
            update: dict = {"arrival_rps": self.grid_rps(index), "arrival_cv": grid_cv}
            if pin is not None:
                keys = dict(pin)
                update["stages"] = tuple(
                    st.model_copy(update={"variants": (keys[st.name].variant,),
                                          "hardware": (keys[st.name].hardware,),
                                          "batch_sizes": (keys[st.name].batch_size,)})
                    for st in spec.stages)
            self.solves += 1
            try:
                self._plans[key] = make_plan(replace(self.request, spec=spec.model_copy(update=update)))
            except InfeasibleError:
                self._plans[key] = None
        return self._plans[key]

    def pinned(self, rps: float, pin: Pin, cv: float | None = None) -> Plan | None:
        """The cheapest replica counts for the pinned configuration at ``rps`` (rounded up); None if none fits."""
        return self._solve(self.grid_index(rps), pin, cv)

    def pinned_capped(self, rps: float, pin: Pin, cv: float | None = None) -> Plan | None:
        """As :meth:`pinned`, but above the configuration's reach the largest pinned plan (None if none)."""
        index = self.grid_index(rps)
        found = self._solve(index, pin, cv)
        if found is not None or self._solve(0, pin, cv) is None:
            return found
        return self._solve(self._highest_feasible(index, pin, cv), pin, cv)

    def _highest_feasible(self, infeasible: int, pin: Pin | None, cv: float | None) -> int:
        """The highest grid index below ``infeasible`` with a plan, by bisection (index 0 has one)."""
        lo, hi = 0, infeasible
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._solve(mid, pin, cv) is None:
                hi = mid
            else:
                lo = mid
        return lo

    def plan(self, rps: float, cv: float | None = None) -> Plan:
        """The optimal plan for ``rps`` rounded up to the grid.

        Above the highest feasible rate the plan for the highest feasible grid rate is returned (a
        warning is logged): a tuner cannot do better than its largest plan. Raises InfeasibleError
        when no rate down to the grid's base has a plan.
        """
        index = self.grid_index(rps)
        found = self._solve(index, None, cv)
        if found is not None:
            return found
        if self._solve(0, None, cv) is None:
            # Let the planner's own diagnosis explain why nothing fits.
            make_plan(replace(self.request, spec=self.request.spec.model_copy(update={"arrival_rps": self.grid_rps(0)})))
            raise InfeasibleError(f"no plan exists even at {self.grid_rps(0):g} rps; check the spec.")
        lo = self._highest_feasible(index, None, cv)
        log.warning("no plan serves %.2f rps; using the plan for %.2f rps, the highest feasible grid rate",
                    rps, self.grid_rps(lo))
        plan = self._solve(lo, None, cv)
        assert plan is not None
        return plan
